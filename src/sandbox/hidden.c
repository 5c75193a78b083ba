/* The host's entries that "other" could not read, and their stand-ins in a runtime's
 * overlay (hidden.h): a walk of the root filesystem that enters only folders "other"
 * may list and enter, a cache of its result per image and skip set, and the empty
 * stand-ins that hide each entry in the upper layer while leaving it writable. */
#include "sandbox/hidden.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define MAX_ENTRIES 100000 /* a host with more hidden entries than this is refused */
#define MAX_DEPTH 128

struct walk {
    struct hidden_list *out;
    dev_t dev;
    const char *const *skip;
    size_t nskip;
    size_t cap;
    int err;
    char path[PATH_MAX];
};

static void add(struct walk *w, char type, size_t plen)
{
    if (w->out->count >= MAX_ENTRIES) {
        w->err = -E2BIG;
        return;
    }
    size_t need = w->out->len + plen + 2;
    if (need > w->cap) {
        w->cap = need * 2 > 65536 ? need * 2 : 65536;
        w->out->buf = xrealloc(w->out->buf, w->cap);
    }
    w->out->buf[w->out->len++] = type;
    memcpy(w->out->buf + w->out->len, w->path, plen);
    w->out->len += plen;
    w->out->buf[w->out->len++] = 0;
    w->out->count++;
}

static bool skipped(const struct walk *w)
{
    for (size_t i = 0; i < w->nskip; i++)
        if (!strcmp(w->skip[i], w->path))
            return true;
    return false;
}

/* Whether "other" could not use the entry: read a file, list and enter a folder,
 * connect to a socket or open a FIFO for writing. */
static int hidden_type(mode_t m)
{
    if (S_ISLNK(m))
        return 0;
    if (S_ISDIR(m))
        return (m & S_IROTH) && (m & S_IXOTH) ? 0 : 'd';
    if (S_ISSOCK(m) || S_ISFIFO(m))
        return m & S_IWOTH ? 0 : 'f';
    return m & S_IROTH ? 0 : 'f';
}

/* w->path (length plen, "" for the root) is the folder open at fd (closed here).
 * getdents64 into the stack: nothing is allocated per folder. */
static void walk_dir(struct walk *w, int fd, size_t plen, int depth)
{
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n && !w->err;) {
            struct linux_dirent64 {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *e = (void *)(buf + off);
            off += e->reclen;
            if (!strcmp(e->name, ".") || !strcmp(e->name, "..") || e->type == DT_LNK)
                continue;
            size_t nl = strlen(e->name);
            if (plen + 1 + nl >= sizeof(w->path))
                continue;
            w->path[plen] = '/';
            memcpy(w->path + plen + 1, e->name, nl + 1);
            size_t len = plen + 1 + nl;
            struct stat st;
            if (fstatat(fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            if (st.st_dev != w->dev || skipped(w))
                continue; /* another filesystem: an empty mount point in the overlay */
            int t = hidden_type(st.st_mode);
            if (t) {
                add(w, (char)t, len);
                continue;
            }
            if (!S_ISDIR(st.st_mode) || depth >= MAX_DEPTH)
                continue;
            int sub = openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk_dir(w, sub, len, depth + 1);
        }
        if (w->err)
            break;
    }
    close(fd);
    w->path[plen] = 0;
}

int hidden_walk(const char *root_image, const char *const *skip, size_t nskip,
                struct hidden_list *out, struct sandbox_error *err)
{
    memset(out, 0, sizeof(*out));
    struct walk w = {.out = out, .skip = skip, .nskip = nskip};
    int fd = open(root_image, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        sandbox_set_error(err, e, "hidden files: open %s", root_image);
        return -e;
    }
    w.dev = st.st_dev;
    w.path[0] = 0;
    walk_dir(&w, fd, 0, 0);
    if (w.err) {
        sandbox_set_error(err, -w.err, "hidden files: more than %d entries in %s", MAX_ENTRIES,
                          root_image);
        hidden_list_free(out);
        return w.err;
    }
    return 0;
}

void hidden_list_free(struct hidden_list *l)
{
    if (!l)
        return;
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

/* ---- the cache ---- */

static char *cache_path(const char *root_image, const char *const *skip, size_t nskip)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the image and the skip set */
    const char *parts[1] = {root_image};
    for (size_t i = 0; i < nskip + 1; i++) {
        const char *s = i ? skip[i - 1] : parts[0];
        for (; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return xasprintf(HIDDEN_CACHE_DIR "/hidden-v1-%016llx", (unsigned long long)h);
}

static int cache_write(const char *path, const struct hidden_list *l)
{
    if (mkdir(HIDDEN_CACHE_DIR, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(HIDDEN_CACHE_DIR, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
        return -EPERM;
    return write_file_atomic(path, l->buf ? l->buf : "", l->len, 0600);
}

static int cache_read(const char *path, struct hidden_list *l, time_t *mtime)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077))
        return -EPERM;
    char *s = NULL;
    size_t n = 0;
    int r = read_file(path, (size_t)MAX_ENTRIES * (PATH_MAX + 2), &s, &n);
    if (r < 0)
        return r;
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < n; i++)
        l->count += s[i] == 0;
    if (n && s[n - 1] != 0) { /* torn: not ours */
        free(s);
        return -EINVAL;
    }
    l->buf = s;
    l->len = n;
    *mtime = st.st_mtime;
    return 0;
}

struct refresh {
    char *root_image, *path;
    char **skip;
    size_t nskip;
};

static atomic_bool refreshing;

static void *refresh_main(void *arg)
{
    struct refresh *rf = arg;
    struct hidden_list l;
    struct sandbox_error err;
    if (hidden_walk(rf->root_image, (const char *const *)rf->skip, rf->nskip, &l, &err) == 0)
        cache_write(rf->path, &l);
    hidden_list_free(&l);
    for (size_t i = 0; i < rf->nskip; i++)
        free(rf->skip[i]);
    free(rf->skip);
    free(rf->root_image);
    free(rf->path);
    free(rf);
    atomic_store(&refreshing, false);
    return NULL;
}

static void refresh_later(const char *root_image, const char *const *skip, size_t nskip,
                          const char *path)
{
    if (atomic_exchange(&refreshing, true))
        return;
    struct refresh *rf = xcalloc(1, sizeof(*rf));
    rf->root_image = xstrdup(root_image);
    rf->path = xstrdup(path);
    rf->skip = xcalloc(nskip + 1, sizeof(char *));
    for (size_t i = 0; i < nskip; i++)
        rf->skip[i] = xstrdup(skip[i]);
    rf->nskip = nskip;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, refresh_main, rf) != 0)
        refresh_main(rf); /* no thread: refresh now */
    pthread_attr_destroy(&a);
}

int hidden_get(const char *root_image, const char *const *skip, size_t nskip,
               struct hidden_list *out, struct sandbox_error *err)
{
    char *path = cache_path(root_image, skip, nskip);
    time_t mtime = 0;
    int r = cache_read(path, out, &mtime);
    if (r == 0) {
        if (time(NULL) - mtime > HIDDEN_REFRESH_S)
            refresh_later(root_image, skip, nskip, path);
        free(path);
        return 0;
    }
    r = hidden_walk(root_image, skip, nskip, out, err);
    if (r == 0)
        cache_write(path, out); /* best effort: without a cache every start walks */
    free(path);
    return r;
}

/* ---- stand-ins in the upper layer ---- */

static uid_t shift(uid_t id, uid_t base)
{
    return base + (id < 65536 ? id : 65534);
}

static bool is_opaque(const char *p)
{
    char v[4];
    ssize_t n = lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

/* Makes upper/rel as the stand-in of image/rel (type 'd', 'f', or 'p' for a parent:
 * a plain folder with the original's attributes). Returns 1 when the lower entry is
 * already out of view (something non-folder or an opaque folder above it), 0 when
 * made or present, or a negative errno. */
static int stand_in(const char *image, const char *upper, const char *rel, char type, uid_t base)
{
    char lp[PATH_MAX], up[PATH_MAX];
    if (snprintf(lp, sizeof(lp), "%s%s", strcmp(image, "/") ? image : "", rel) >= (int)sizeof(lp) ||
        snprintf(up, sizeof(up), "%s%s", upper, rel) >= (int)sizeof(up))
        return -ENAMETOOLONG;
    struct stat ust, lst;
    if (lstat(up, &ust) == 0) {
        if (type != 'p')
            return 0;
        return !S_ISDIR(ust.st_mode) || is_opaque(up) ? 1 : 0;
    }
    if (errno != ENOENT)
        return -errno;
    if (lstat(lp, &lst) < 0)
        return errno == ENOENT ? 1 : -errno;
    mode_t mode = lst.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
    if (type == 'f') {
        int fd = open(up, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        int r =
            fchown(fd, shift(lst.st_uid, base), shift(lst.st_gid, base)) < 0 || fchmod(fd, mode) < 0
                ? -errno
                : 0;
        close(fd);
        return r;
    }
    if (!S_ISDIR(lst.st_mode))
        return 1;
    if (mkdir(up, 0700) < 0)
        return -errno;
    if (lchown(up, shift(lst.st_uid, base), shift(lst.st_gid, base)) < 0 ||
        chmod(up, lst.st_mode & 07777) < 0)
        return -errno;
    if (type == 'd' && lsetxattr(up, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return -errno;
    struct timespec ts[2] = {lst.st_atim, lst.st_mtim};
    utimensat(AT_FDCWD, up, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
}

int hidden_prepare_upper(const struct hidden_list *l, const char *root_image, const char *upper,
                         uid_t id_base, struct sandbox_error *err)
{
    for (size_t off = 0; off < l->len;) {
        char type = l->buf[off];
        const char *rel = l->buf + off + 1;
        off += strlen(l->buf + off) + 1;
        if ((type != 'd' && type != 'f') || rel[0] != '/' || strstr(rel, "/../") ||
            strstr(rel, "/./"))
            continue;
        /* Parents first, each as the original (what a copy-up would make). */
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", rel);
        int r = 0;
        for (char *s = strchr(p + 1, '/'); s && r == 0; s = strchr(s + 1, '/')) {
            *s = 0;
            r = stand_in(root_image, upper, p, 'p', id_base);
            *s = '/';
        }
        if (r == 0)
            r = stand_in(root_image, upper, rel, type, id_base);
        if (r < 0) {
            sandbox_set_error(err, -r, "hide %s in the runtime's layer", rel);
            return r;
        }
    }
    return 0;
}
