/* Path normalisation and openat2(RESOLVE_BENEATH), shared by the contents API and the
 * notebook recorder. */
#include "common/fsat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
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
