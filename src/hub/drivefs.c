/* The drive's file-system helpers, shared by uploads, extraction and downloads and
 * free of hub state (the fuzz target links them): folders made beneath a root
 * without following symlinks, trees removed without following them. */
#include "hub/drive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsat.h"
#include "common/util.h"

void drive_human(int64_t bytes, char out[32])
{
    if (bytes >= (int64_t)1 << 30)
        snprintf(out, 32, "%.1f GiB", (double)bytes / (double)(1 << 30));
    else if (bytes >= 1 << 20)
        snprintf(out, 32, "%.1f MiB", (double)bytes / (double)(1 << 20));
    else if (bytes >= 1 << 10)
        snprintf(out, 32, "%.1f KiB", (double)bytes / 1024.0);
    else
        snprintf(out, 32, "%lld bytes", (long long)bytes);
}

int drive_mkdirs(int rootfd, const char *rel)
{
    int fd = fs_open_beneath(rootfd, "", O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (fd < 0)
        return fd;
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char name[256];
        if (n == 0 || n >= sizeof(name)) {
            close(fd);
            return -EINVAL;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST) {
            int e = -errno;
            close(fd);
            return e;
        }
        int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = next < 0 ? -errno : 0;
        close(fd);
        if (next < 0)
            return e == -ELOOP ? -ENOTDIR : e;
        fd = next;
        p += n;
        if (*p == '/')
            p++;
    }
    return fd;
}

bool drive_path_hidden(const char *norm)
{
    for (const char *p = norm; *p;) {
        if (*p == '.')
            return true;
        const char *slash = strchr(p, '/');
        if (!slash)
            break;
        p = slash + 1;
    }
    return false;
}
