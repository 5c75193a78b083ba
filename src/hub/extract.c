/* Safe archive extraction with libarchive (blocking; the jobs in api_extract.c run
 * it on the thread pool). Entries are created with *at() calls beneath a hidden
 * temporary folder (O_NOFOLLOW, O_EXCL), never through a symlink, and the result is
 * moved into place only when the whole archive is in. No HTTP or hub state here, so
 * the fuzz target links it alone. */
#include "hub/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/drive.h"

#define MAX_DEPTH 256

int extract_entry_path(const char *name, char **out)
{
    size_t len = strlen(name);
    if (len == 0 || name[0] == '/' || len >= PATH_MAX)
        return -EINVAL;
    char *res = xmalloc(len + 1);
    size_t n = 0;
    const char *p = name;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 2 && p[0] == '.' && p[1] == '.') {
            free(res);
            return -EINVAL;
        }
        if (cl > NAME_MAX) {
            free(res);
            return -EINVAL;
        }
        if (cl > 0 && !(cl == 1 && p[0] == '.')) {
            if (n)
                res[n++] = '/';
            memcpy(res + n, p, cl);
            n += cl;
        }
        p += cl;
        if (*p == '/')
            p++;
    }
    res[n] = '\0';
    *out = res;
    return 0;
}

/* --- extraction proper --- */

struct run {
    struct archive *a;
    int tmpfd;
    const struct extract_limits *lim;
    struct extract_result *res;
    int64_t archive_size;
    int64_t bytes;
    /* the last parent folder opened, reused for entries in the same folder */
    char *parent;
    int parentfd;
    bool marked; /* the marker is written: the moves have begun */
};

static int fail(struct run *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, int err, const char *fmt, ...)
{
    if (!r->res->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->res->error, sizeof(r->res->error), fmt, ap);
        va_end(ap);
    }
    return err;
}

/* The folder of rel's parent beneath tmpfd (created), and rel's last name. */
static int parent_of(struct run *r, const char *rel, const char **base)
{
    const char *slash = strrchr(rel, '/');
    *base = slash ? slash + 1 : rel;
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    if (r->parent && strlen(r->parent) == plen && !memcmp(r->parent, rel, plen))
        return r->parentfd;
    if (r->parent) {
        close(r->parentfd);
        free(r->parent);
        r->parent = NULL;
    }
    char *p = xstrndup(rel, plen);
    int fd = drive_mkdirs(r->tmpfd, p);
    if (fd < 0) {
        free(p);
        return fd;
    }
    r->parent = p;
    r->parentfd = fd;
    return fd;
}

static int check_limits(struct run *r, int64_t entry_size, const char *name)
{
    const struct extract_limits *lim = r->lim;
    char h[32];
    if (lim->max_entry && entry_size > lim->max_entry) {
        drive_human(lim->max_entry, h);
        return fail(r, -EFBIG,
                    "\"%s\" is larger than the limit of %s per file (extract_max_entry_mb)", name,
                    h);
    }
    if (lim->max_bytes && r->bytes > lim->max_bytes) {
        drive_human(lim->max_bytes, h);
        return fail(r, -EFBIG, "the archive unpacks to more than the limit of %s (extract_max_mb)",
                    h);
    }
    if (lim->max_ratio && r->bytes > (1 << 20) && r->bytes / lim->max_ratio > r->archive_size)
        return fail(r, -EFBIG,
                    "the archive unpacks to more than %lld times its size: a compression bomb? "
                    "(extract_max_ratio)",
                    (long long)lim->max_ratio);
    if (lim->quota_free >= 0 && r->bytes > lim->quota_free) {
        drive_human(lim->quota_free, h);
        return fail(r, -EDQUOT, "the archive does not fit in your drive's quota: %s free", h);
    }
    return 0;
}

static int write_file(struct run *r, struct archive_entry *e, const char *rel)
{
    const char *base;
    int dirfd = parent_of(r, rel, &base);
    if (dirfd < 0)
        return fail(r, dirfd, "cannot make the folder of \"%s\": %s", rel, strerror(-dirfd));
    mode_t mode = (archive_entry_perm(e) & 0100) ? 0755 : 0644;
    int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        /* A name twice in one archive: the later one wins, as with tar. */
        struct stat st;
        if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(dirfd, base, 0) == 0)
            fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        else
            errno = EEXIST;
    }
    if (fd < 0)
        return fail(r, -errno, "cannot create \"%s\": %s", rel, strerror(errno));
    const void *buf;
    size_t size;
    la_int64_t off;
    int64_t end = 0; /* the file's size so far: holes count, as in the drive's usage */
    int rc = 0;
    for (;;) {
        int ar = archive_read_data_block(r->a, &buf, &size, &off);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            rc = fail(r, -EIO, "the archive is damaged at \"%s\": %s", rel,
                      archive_error_string(r->a) ?: "read error");
            break;
        }
        if (off < 0 || (int64_t)size > INT64_MAX - off) {
            rc = fail(r, -EIO, "the archive is damaged at \"%s\"", rel);
            break;
        }
        if (off + (int64_t)size > end) {
            r->bytes += off + (int64_t)size - end;
            end = off + (int64_t)size;
        }
        if ((rc = check_limits(r, end, rel)) < 0)
            break;
        for (size_t done = 0; done < size;) {
            ssize_t w = pwrite(fd, (const char *)buf + done, size - done, off + (off_t)done);
            if (w < 0) {
                rc = fail(r, -errno, "cannot write \"%s\": %s", rel, strerror(errno));
                break;
            }
            done += (size_t)w;
        }
        if (rc < 0)
            break;
        __atomic_store_n(&r->res->bytes, r->bytes, __ATOMIC_RELAXED);
    }
    if (rc == 0 && archive_entry_size_is_set(e) && archive_entry_size(e) > end) {
        /* a sparse file's hole at the end: it counts too, or a tiny archive could
         * claim terabytes of apparent size */
        r->bytes += archive_entry_size(e) - end;
        __atomic_store_n(&r->res->bytes, r->bytes, __ATOMIC_RELAXED);
        if ((rc = check_limits(r, archive_entry_size(e), rel)) == 0 &&
            ftruncate(fd, archive_entry_size(e)) < 0)
            rc = fail(r, -errno, "cannot write \"%s\": %s", rel, strerror(errno));
    }
    if (rc == 0 && archive_entry_mtime_is_set(e)) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
        futimens(fd, ts);
    }
    close(fd);
    return rc;
}

static int make_hardlink(struct run *r, const char *target, const char *rel)
{
    char *t = NULL;
    if (extract_entry_path(target, &t) < 0 || !t[0]) {
        free(t);
        return fail(r, -EPERM, "\"%s\" is a hard link to an unsafe path", rel);
    }
    int tfd = fs_open_beneath(r->tmpfd, t, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    struct stat st;
    if (tfd < 0 || fstat(tfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (tfd >= 0)
            close(tfd);
        int e =
            fail(r, -EPERM, "\"%s\" is a hard link to \"%s\", which is not a file of this archive",
                 rel, t);
        free(t);
        return e;
    }
    free(t);
    const char *base;
    int dirfd = parent_of(r, rel, &base);
    if (dirfd < 0) {
        close(tfd);
        return fail(r, dirfd, "cannot make the folder of \"%s\": %s", rel, strerror(-dirfd));
    }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tfd);
    struct stat old;
    if (fstatat(dirfd, base, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode))
        unlinkat(dirfd, base, 0);
    int rc = 0;
    if (linkat(AT_FDCWD, proc, dirfd, base, AT_SYMLINK_FOLLOW) < 0)
        rc = fail(r, -errno, "cannot link \"%s\": %s", rel, strerror(errno));
    close(tfd);
    return rc;
}

static int one_entry(struct run *r, struct archive_entry *e)
{
    const char *name = archive_entry_pathname_utf8(e);
    if (!name)
        name = archive_entry_pathname(e);
    if (!name)
        return fail(r, -EINVAL, "an entry has no name");
    char *rel = NULL;
    if (extract_entry_path(name, &rel) < 0)
        return fail(r, -EPERM, "unsafe path in the archive: \"%s\" (absolute, or with \"..\")",
                    name);
    int rc = 0;
    r->res->entries++;
    __atomic_store_n(&r->res->entries, r->res->entries, __ATOMIC_RELAXED);
    if (r->lim->max_entries && r->res->entries > r->lim->max_entries) {
        rc = fail(r, -EFBIG, "the archive has more than %lld entries (extract_max_entries)",
                  (long long)r->lim->max_entries);
        goto out;
    }
    if (!rel[0])
        goto out; /* "./" itself */
    mode_t type = archive_entry_filetype(e);
    const char *hl = archive_entry_hardlink_utf8(e);
    if (!hl)
        hl = archive_entry_hardlink(e);
    if (hl) {
        rc = make_hardlink(r, hl, rel);
        goto out;
    }
    if (type == AE_IFREG && (archive_entry_mode(e) & (S_ISUID | S_ISGID))) {
        rc = fail(r, -EPERM, "\"%s\" has the setuid or setgid bit: refused", rel);
    } else if (type == AE_IFREG) {
        rc = write_file(r, e, rel);
    } else if (type == AE_IFDIR) {
        int fd = drive_mkdirs(r->tmpfd, rel);
        if (fd < 0)
            rc = fail(r, fd, "cannot make the folder \"%s\": %s", rel, strerror(-fd));
        else
            close(fd);
    } else if (type == AE_IFLNK) {
        rc = fail(r, -EPERM, "\"%s\" is a symbolic link: archives with links are refused", rel);
    } else {
        rc = fail(r, -EPERM, "\"%s\" is a device, FIFO or socket: refused", rel);
    }
out:
    free(rel);
    return rc;
}

/* Moves everything in from into to: new names are renamed (no replace), folders in
 * both are merged, files replace files. With dry, only checks for a file meeting a
 * folder. */
static int publish(int from, int to, bool dry, int depth, char *clash, size_t clash_len)
{
    if (depth > MAX_DEPTH)
        return -ELOOP;
    int dup = openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0)
        return -errno;
    DIR *d = fdopendir(dup);
    if (!d) {
        close(dup);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat src, dst;
        if (fstatat(from, e->d_name, &src, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -errno;
            break;
        }
        if (fstatat(to, e->d_name, &dst, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) {
                rc = -errno;
            } else if (!dry && renameat2(from, e->d_name, to, e->d_name, RENAME_NOREPLACE) < 0) {
                rc = -errno;
            }
            continue;
        }
        if (S_ISDIR(src.st_mode) && S_ISDIR(dst.st_mode)) {
            int f = openat(from, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int t = openat(to, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (f < 0 || t < 0)
                rc = -errno;
            else
                rc = publish(f, t, dry, depth + 1, clash, clash_len);
            if (f >= 0)
                close(f);
            if (t >= 0)
                close(t);
            if (rc == 0 && !dry)
                unlinkat(from, e->d_name, AT_REMOVEDIR);
        } else if (S_ISREG(src.st_mode) && S_ISREG(dst.st_mode)) {
            if (!dry && renameat(from, e->d_name, to, e->d_name) < 0)
                rc = -errno;
        } else {
            snprintf(clash, clash_len, "%s", e->d_name);
            rc = -EEXIST;
        }
    }
    closedir(d);
    return rc;
}

static int write_marker(int to_fd, const char *tmp_name, const struct extract_result *res);
static void marker_name(const char *tmp_name, char out[NAME_MAX + 1]);

static int run_archive(struct run *r, int archive_fd, int to_fd, const char *tmp_name)
{
    struct stat st;
    if (fstat(archive_fd, &st) < 0 || !S_ISREG(st.st_mode))
        return fail(r, -EINVAL, "the archive is not a file");
    r->archive_size = st.st_size;
    if (lseek(archive_fd, 0, SEEK_SET) < 0)
        return fail(r, -errno, "cannot read the archive: %s", strerror(errno));
    r->a = archive_read_new();
    archive_read_support_filter_all(r->a);
    archive_read_support_format_zip(r->a);
    archive_read_support_format_tar(r->a);
    archive_read_support_format_gnutar(r->a);
    archive_read_support_format_7zip(r->a);
    if (archive_read_open_fd(r->a, archive_fd, 256 * 1024) != ARCHIVE_OK)
        return fail(r, -EINVAL,
                    "not an archive this server reads (zip, tar, tar.gz, tar.bz2, "
                    "tar.xz, tar.zst, 7z): %s",
                    archive_error_string(r->a) ?: "unknown format");
    if (mkdirat(to_fd, tmp_name, 0700) < 0)
        return fail(r, -errno, "cannot make a temporary folder: %s", strerror(errno));
    r->tmpfd = openat(to_fd, tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (r->tmpfd < 0)
        return fail(r, -errno, "cannot open the temporary folder: %s", strerror(errno));
    struct archive_entry *e;
    int rc = 0;
    for (;;) {
        int ar = archive_read_next_header(r->a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            rc = fail(r, -EINVAL, "the archive is damaged: %s",
                      archive_error_string(r->a) ?: "read error");
            break;
        }
        if ((rc = one_entry(r, e)) < 0)
            break;
        if (r->lim->cancel && __atomic_load_n(r->lim->cancel, __ATOMIC_RELAXED)) {
            rc = fail(r, -ECANCELED, "the server is shutting down");
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (syncfs(r->tmpfd) < 0)
        return fail(r, -errno, "cannot save the files: %s", strerror(errno));
    char clash[NAME_MAX + 1] = "";
    rc = publish(r->tmpfd, to_fd, true, 0, clash, sizeof(clash));
    if (rc == -EEXIST)
        return fail(r, rc, "\"%s\" is in the way: a file and a folder of that name", clash);
    /* From here on the extraction is complete: the marker says so to the next hub,
     * which finishes the moves if this one dies part way through them. */
    if (rc == 0 && (rc = write_marker(to_fd, tmp_name, r->res)) < 0)
        return fail(r, rc, "cannot save the files: %s", strerror(-rc));
    r->marked = true;
    rc = publish(r->tmpfd, to_fd, false, 0, clash, sizeof(clash));
    if (rc < 0)
        return fail(r, rc, "cannot move the files into place: %s", strerror(-rc));
    fsync(to_fd);
    return 0;
}

/* The name of the marker beside the temporary folder tmp_name. */
static void marker_name(const char *tmp_name, char out[NAME_MAX + 1])
{
    snprintf(out, NAME_MAX + 1, "%s.done", tmp_name);
}

/* Writes the marker (the counts in it, for the job's record) through a temporary name
 * and a rename, and makes it durable with the folder. */
static int write_marker(int to_fd, const char *tmp_name, const struct extract_result *res)
{
    char name[NAME_MAX + 1], tmp[NAME_MAX + 8];
    marker_name(tmp_name, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = openat(to_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char text[64];
    int n =
        snprintf(text, sizeof(text), "%lld %lld\n", (long long)res->entries, (long long)res->bytes);
    int rc = write_all(fd, text, (size_t)n);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(to_fd, tmp, to_fd, name) < 0)
        rc = -errno;
    if (rc == 0 && fsync(to_fd) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(to_fd, tmp, 0);
    return rc;
}

int extract_recover_dir(int to_fd, const char *tmp_name, struct extract_result *res)
{
    char name[NAME_MAX + 1], tmp[NAME_MAX + 8];
    marker_name(tmp_name, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    unlinkat(to_fd, tmp, 0);
    int mfd = openat(to_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = 0;
    if (mfd >= 0) {
        char buf[64] = "";
        ssize_t n = read(mfd, buf, sizeof(buf) - 1);
        close(mfd);
        long long e = 0, b = 0;
        if (n > 0 && sscanf(buf, "%lld %lld", &e, &b) == 2) {
            res->entries = e;
            res->bytes = b;
        }
        int tfd = openat(to_fd, tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tfd >= 0) {
            char clash[NAME_MAX + 1] = "";
            rc = publish(tfd, to_fd, false, 0, clash, sizeof(clash));
            close(tfd);
        } else if (errno != ENOENT) {
            rc = -errno;
        }
        if (rc == 0)
            rc = 1;
    }
    fs_remove_tree(to_fd, tmp_name, FS_RM_ONE_FS);
    unlinkat(to_fd, name, 0);
    fsync(to_fd);
    return rc;
}

int extract_run(int archive_fd, int to_fd, const char *tmp_name, const struct extract_limits *lim,
                struct extract_result *res)
{
    /* Names in archives are UTF-8 more often than not; read them as such on this
     * thread whatever the process's locale. */
    locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    struct run r = {.tmpfd = -1, .lim = lim, .res = res, .parentfd = -1};
    int rc = run_archive(&r, archive_fd, to_fd, tmp_name);
    if (r.parent) {
        close(r.parentfd);
        free(r.parent);
    }
    if (r.a)
        archive_read_free(r.a);
    if (r.tmpfd >= 0) {
        close(r.tmpfd);
        fs_remove_tree(to_fd, tmp_name, 0);
    }
    if (r.marked) { /* the folder is gone: the marker has nothing left to finish */
        char name[NAME_MAX + 1];
        marker_name(tmp_name, name);
        unlinkat(to_fd, name, 0);
        fsync(to_fd);
    }
    if (loc) {
        uselocale(old);
        freelocale(loc);
    }
    return rc;
}
