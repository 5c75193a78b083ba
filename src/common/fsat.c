/* Path normalisation, openat2(RESOLVE_BENEATH), and the one remove-tree (no link ever
 * followed), shared by the contents API, the notebook recorder, extraction, and the root
 * side's clean-up of runtime folders. */
#include "common/fsat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

int fs_path_normalize(const char *in, char **out)
{
    size_t len = strlen(in);
    if (len >= PATH_MAX)
        return -ENAMETOOLONG;
    char *res = xmalloc(len + 1);
    size_t n = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if ((cl == 1 && p[0] == '.') || (cl == 2 && p[0] == '.' && p[1] == '.')) {
            free(res);
            return -EINVAL;
        }
        if (cl > NAME_MAX) {
            free(res);
            return -ENAMETOOLONG;
        }
        if (n)
            res[n++] = '/';
        memcpy(res + n, p, cl);
        n += cl;
        p += cl;
    }
    res[n] = '\0';
    *out = res;
    return 0;
}

int fs_open_beneath(int dirfd, const char *rel, int flags, uint64_t extra_resolve)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra_resolve,
    };
    for (int tries = 0; tries < 16; tries++) {
        long fd = syscall(SYS_openat2, dirfd, rel[0] ? rel : ".", &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
    }
    return -EAGAIN;
}

bool fs_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= NAME_MAX && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

/* Opens folder name of dirfd for reading, never through a link. With FS_RM_WRITABLE, a
 * folder we may not read is opened O_PATH first and made 0700 through that very inode
 * (/proc/self/fd: there is no fchmod on an O_PATH fd), then opened again beneath it. */
static int open_dir_nofollow(int dirfd, const char *name, unsigned flags)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 || errno != EACCES || !(flags & FS_RM_WRITABLE))
        return fd < 0 ? -errno : fd;
    int pfd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    int r = chmod(proc, 0700) < 0 ? -errno : 0;
    if (r == 0) {
        fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
        r = fd < 0 ? -errno : fd;
    }
    close(pfd);
    return r;
}

static int remove_at(int dirfd, const char *name, unsigned flags, dev_t dev, int depth)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (depth >= FS_RM_MAX_DEPTH)
        return -ELOOP;
    int fd = open_dir_nofollow(dirfd, name, flags);
    if (fd == -ENOENT)
        return 0;
    if (fd == -ELOOP || fd == -ENOTDIR) /* swapped for a link or a file meanwhile */
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        close(fd);
        return -EIO;
    }
    if ((flags & FS_RM_ONE_FS) && st.st_dev != dev) {
        close(fd);
        return -EXDEV; /* a mount point: not ours to empty */
    }
    if ((flags & FS_RM_WRITABLE) && (st.st_mode & 0700) != 0700)
        fchmod(fd, 0700);
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int first = 0;
    bool removed = true;
    /* Removing while reading may make readdir skip names: read again until a pass
     * removes nothing. */
    while (removed) {
        removed = false;
        rewinddir(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            int r;
            if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
                r = unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT ? -errno : 0;
            else
                r = remove_at(fd, e->d_name, flags, st.st_dev, depth + 1);
            if (r < 0 && !first)
                first = r;
            if (r == 0)
                removed = true;
        }
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !first)
        first = -errno;
    return first;
}

int fs_remove_tree(int dirfd, const char *name, unsigned flags)
{
    if (!fs_name_ok(name))
        return -EINVAL;
    struct stat st;
    if (fstatat(dirfd, "", &st, AT_EMPTY_PATH) < 0)
        return -errno;
    return remove_at(dirfd, name, flags, st.st_dev, 0);
}

int fs_remove_path(const char *path, unsigned flags)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
    int pfd = open(*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (pfd < 0)
        return -errno;
    int r = fs_remove_tree(pfd, name, flags);
    close(pfd);
    return r;
}

int fs_remove_empty_dirs(int dirfd, const char *rel, size_t keep)
{
    char *p = xstrdup(rel);
    size_t len = strlen(p);
    int r = 0;
    while (len > keep && len > 0) {
        p[len] = '\0';
        char *slash = strrchr(p, '/');
        const char *name = slash ? slash + 1 : p;
        int pfd = dirfd;
        if (slash) {
            *slash = '\0';
            pfd = fs_open_beneath(dirfd, p, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
            *slash = '/';
        }
        if (pfd < 0) {
            r = pfd;
            break;
        }
        if (!fs_name_ok(name) || unlinkat(pfd, name, AT_REMOVEDIR) < 0)
            r = fs_name_ok(name) ? -errno : -EINVAL;
        if (pfd != dirfd)
            close(pfd);
        if (r < 0)
            break;
        len = slash ? (size_t)(slash - p) : 0;
    }
    free(p);
    return r;
}

static int64_t tree_size(int dirfd, int depth)
{
    if (depth > FS_RM_MAX_DEPTH) {
        close(dirfd);
        return 0;
    }
    DIR *dir = fdopendir(dirfd);
    if (!dir) {
        close(dirfd);
        return 0;
    }
    int64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            sum += st.st_size;
        } else if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += tree_size(fd, depth + 1);
        }
    }
    closedir(dir);
    return sum;
}

int64_t fs_tree_size(int dirfd)
{
    return tree_size(dirfd, 0);
}
