/* The Jupyter Contents API (models, saves, uploads, renames, copies, checkpoints) over one
 * drive folder. Every path is resolved with openat2(RESOLVE_BENEATH) from an O_PATH fd of the
 * root, and every change is made with *at() calls relative to such resolved directory fds. */
#include "hub/contents.h"

#include "common/base64.h"
#include "common/fsat.h"
#include "common/nbformat.h"

#include "common/utf8.h"
#include "common/util.h"
#include "hub/trash.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHECKPOINT_DIR ".ipynb_checkpoints"
#define CHECKPOINT_ID "checkpoint"
#define MAX_LINK_HOPS 8
#define MAX_NAME_TRIES 10000
#define MAX_LIST_ENTRIES 100000
#define CONTENTS_DEFAULT_MAX_FILE ((int64_t)256 << 20) /* when the request gives none */

/* One request in flight: the root fd and where the answer goes. */
struct op {
    const struct contents_req *req;
    int root_fd;
    json_t **out;
    char **location;
};

/* ---- replies ---------------------------------------------------------------------------- */

static int reply_err(struct op *op, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reply_err(struct op *op, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    json_decref(*op->out);
    *op->out = json_pack("{s:o, s:o}", "message", json_text(msg), "reason",
                         reason ? json_text(reason) : json_null());
    free(msg);
    return status;
}

/* Maps a failed filesystem call on `path` to jupyter_server's status and message. */
static int reply_errno(struct op *op, int err, const char *path)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV: /* openat2: the path would leave the drive */
    case ELOOP:
        return reply_err(op, 404, NULL, "No such file or directory: %s", path);
    case EACCES:
    case EPERM:
    case EROFS:
        return reply_err(op, 403, NULL, "Permission denied: %s", path);
    case ENAMETOOLONG:
        return reply_err(op, 400, NULL, "File name too long: %s", path);
    case EISDIR:
        return reply_err(op, 400, NULL, "%s is a directory", path);
    case ENOSPC:
    case EDQUOT:
        return reply_err(op, 507, NULL, "No space left on the drive while writing %s", path);
    case EFBIG:
        return reply_err(op, 400, NULL, "File too large: %s", path);
    default:
        return reply_err(op, 500, NULL, "Unexpected error on %s: %s", path, strerror(err));
    }
}

/* "/api/contents/" + the path percent-encoded as jupyter_server's url_escape does. */
static char *location_for(const char *path, const char *suffix)
{
    struct buf b = {0};
    buf_printf(&b, "/api/contents/");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("_.-~/", *p))
            buf_append(&b, p, 1);
        else
            buf_printf(&b, "%%%02X", *p);
    }
    if (suffix)
        buf_printf(&b, "%s", suffix);
    return buf_steal(&b, NULL);
}

static void set_location(struct op *op, const char *path, const char *suffix)
{
    if (op->location) {
        free(*op->location);
        *op->location = location_for(path, suffix);
    }
}

/* ---- paths ------------------------------------------------------------------------------ */

/* Hidden as jupyter_server means it: some component starts with '.'. Except the
 * google.colab transfer folders (docs/colab.md): the UI writes files.upload()'s files
 * and markers into .labbook/uploads/ID/, and the browser fetches files.download()'s
 * copies from .labbook/downloads/ID/. Listings still skip .labbook itself. */
static bool path_is_hidden(const char *norm)
{
    if (str_starts_with(norm, ".labbook/uploads/") || str_starts_with(norm, ".labbook/downloads/"))
        return false;
    for (const char *p = norm; *p; p++)
        if (*p == '.' && (p == norm || p[-1] == '/'))
            return true;
    return false;
}

static const char *path_basename(const char *norm)
{
    const char *s = strrchr(norm, '/');
    return s ? s + 1 : norm;
}

static char *path_parent(const char *norm)
{
    const char *s = strrchr(norm, '/');
    return s ? xstrndup(norm, (size_t)(s - norm)) : xstrdup("");
}

static char *path_join(const char *dir, const char *name)
{
    return dir[0] ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

/* Resolves the parent directory of norm (non-empty) beneath root as an O_PATH fd. */
static int open_parent(int root_fd, const char *norm)
{
    char *parent = path_parent(norm);
    int fd = fs_open_beneath(root_fd, parent, O_PATH | O_DIRECTORY, 0);
    free(parent);
    return fd;
}

/* Finds where a write to norm lands: a directory fd and a final name, following a final
 * symlink only while its target stays beneath root (as jupyter_server writes through links).
 * Absolute link targets and links leaving the drive give -EXDEV. Caller closes *dirfd and
 * frees *name. */
static int resolve_write(int root_fd, const char *norm, int *dirfd, char **name)
{
    char *cur = xstrdup(norm);
    char *parent = NULL, *base = NULL;
    int dfd = -1, r;
    for (int hop = 0;; hop++) {
        free(parent);
        free(base);
        parent = path_parent(cur);
        base = xstrdup(path_basename(cur));
        if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
            r = -EISDIR;
            goto out;
        }
        if (dfd >= 0)
            close(dfd);
        dfd = fs_open_beneath(root_fd, parent, O_PATH | O_DIRECTORY, 0);
        if (dfd < 0) {
            r = dfd;
            goto out;
        }
        struct stat st;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT) {
                r = -errno;
                goto out;
            }
            break;
        }
        if (!S_ISLNK(st.st_mode))
            break;
        if (hop >= MAX_LINK_HOPS) {
            r = -ELOOP;
            goto out;
        }
        char target[PATH_MAX];
        ssize_t n = readlinkat(dfd, base, target, sizeof target - 1);
        if (n < 0) {
            r = -errno;
            goto out;
        }
        target[n] = '\0';
        if (n == 0 || target[0] == '/') {
            r = -EXDEV;
            goto out;
        }
        if (target[n - 1] == '/') {
            r = -EISDIR;
            goto out;
        }
        free(cur);
        cur = path_join(parent, target);
        if (strlen(cur) >= PATH_MAX) {
            r = -ENAMETOOLONG;
            goto out;
        }
    }
    *dirfd = dfd;
    dfd = -1;
    *name = base;
    base = NULL;
    r = 0;
out:
    if (dfd >= 0)
        close(dfd);
    free(cur);
    free(parent);
    free(base);
    return r;
}

/* ---- small file helpers ----------------------------------------------------------------- */

static void iso_from_ts(struct timespec ts, char out[96])
{
    struct tm tm;
    time_t sec = ts.tv_sec;
    gmtime_r(&sec, &tm);
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static json_t *json_time(struct timespec ts)
{
    char s[96];
    iso_from_ts(ts, s);
    return json_string(s);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[16];
    if (nbytes > sizeof r)
        nbytes = sizeof r;
    randombytes_buf(r, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, r, nbytes);
}

static void fsync_dir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Source of bytes for an atomic write: a buffer or an open file. */
struct src {
    const void *data;
    size_t len;
    int fd; /* -1: use data */
};

/* Writes src to dirfd/name atomically (hidden temporary beside it, fsync, rename, fsync of
 * the directory). noreplace: fail with -EEXIST rather than replace. times: set atime and
 * mtime (as a copy keeps them). The mode of a file being replaced is kept. */
static int write_atomic_at(int dirfd, const char *name, const struct src *src, bool noreplace,
                           const struct timespec *times)
{
    char hex[33], tmp[64];
    random_hex(hex, 8);
    snprintf(tmp, sizeof tmp, ".~labbook-%s.tmp", hex);
    int r = 0;
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return -errno;
    struct stat old;
    if (fstatat(dirfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode))
        fchmod(fd, old.st_mode & 07777);
    if (src->fd < 0) {
        r = write_all(fd, src->data, src->len);
    } else {
        char *chunk = xmalloc(1 << 16);
        for (;;) {
            ssize_t n = read(src->fd, chunk, 1 << 16);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                r = -errno;
                break;
            }
            if (n == 0)
                break;
            r = write_all(fd, chunk, (size_t)n);
            if (r < 0)
                break;
        }
        free(chunk);
    }
    if (r == 0 && times) {
        struct timespec ts[2] = {times[0], times[1]};
        futimens(fd, ts);
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0) {
        long rr = noreplace ? syscall(SYS_renameat2, dirfd, tmp, dirfd, name, RENAME_NOREPLACE)
                            : renameat(dirfd, tmp, dirfd, name);
        if (rr < 0)
            r = -errno;
    }
    if (r < 0)
        unlinkat(dirfd, tmp, 0);
    else
        fsync_dir(dirfd);
    return r;
}

/* Reads a whole regular file from fd, refusing more than max bytes (-EFBIG). */
static int read_fd_all(int fd, int64_t max, char **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (max >= 0 && st.st_size > max)
        return -EFBIG;
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *data = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (max >= 0 && (int64_t)n > max) {
                free(data);
                return -EFBIG;
            }
            cap *= 2;
            data = xrealloc(data, cap + 1);
        }
        ssize_t r = read(fd, data + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(data);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (max >= 0 && (int64_t)n > max) {
        free(data);
        return -EFBIG;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    return 0;
}

static void sha256_hex_of(const void *data, size_t len, char hex[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

static int sha256_hex_fd(int fd, char hex[65])
{
    crypto_hash_sha256_state s;
    crypto_hash_sha256_init(&s);
    char *chunk = xmalloc(1 << 16);
    int r = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        crypto_hash_sha256_update(&s, (const unsigned char *)chunk, (size_t)n);
    }
    free(chunk);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&s, h);
    sodium_bin2hex(hex, 65, h, sizeof h);
    return r;
}

/* Opens a regular file for reading beneath root; FIFOs and devices never block us (O_NONBLOCK)
 * and are refused with -EINVAL. */
static int open_regular_ro(int root_fd, const char *norm)
{
    int fd = fs_open_beneath(root_fd, norm, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* ---- mimetypes -------------------------------------------------------------------------- */

static const struct {
    const char *ext, *mime;
} mimetypes[] = {
    {"txt", "text/plain"},
    {"md", "text/markdown"},
    {"markdown", "text/markdown"},
    {"py", "text/x-python"},
    {"json", "application/json"},
    {"geojson", "application/geo+json"},
    {"csv", "text/csv"},
    {"tsv", "text/tab-separated-values"},
    {"html", "text/html"},
    {"htm", "text/html"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"ts", "text/x-typescript"},
    {"xml", "text/xml"},
    {"yaml", "application/x-yaml"},
    {"yml", "application/x-yaml"},
    {"sh", "application/x-sh"},
    {"c", "text/x-c"},
    {"h", "text/x-c"},
    {"tex", "application/x-tex"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml"},
    {"webp", "image/webp"},
    {"bmp", "image/bmp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tgz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"bz2", "application/x-bzip2"},
    {"xz", "application/x-xz"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/x-wav"},
    {"ogg", "audio/ogg"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"wasm", "application/wasm"},
};

/* The mimetype guessed from the extension (case-insensitive), or NULL as Python's
 * mimetypes.guess_type gives None. */
static const char *mime_guess(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return NULL;
    for (size_t i = 0; i < ARRAY_SIZE(mimetypes); i++)
        if (!strcasecmp(dot + 1, mimetypes[i].ext))
            return mimetypes[i].mime;
    return NULL;
}

/* ---- notebooks -------------------------------------------------------------------------- */

static bool is_json_mime(const char *k)
{
    return !strcmp(k, "application/json") ||
           (str_starts_with(k, "application/") && str_ends_with(k, "+json"));
}

/* Joins a list of strings into one string; leaves other values alone. */
static void rejoin_value(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v))
        return;
    struct buf b = {0};
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            buf_free(&b);
            return;
        }
        buf_append(&b, json_string_value(s), json_string_length(s));
    }
    json_object_set_new(obj, key, json_stringn(b.data ? b.data : "", b.len));
    buf_free(&b);
}

static void rejoin_bundle(json_t *data)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(data, tmp, k, v)
    {
        if (!is_json_mime(k))
            rejoin_value(data, k);
    }
}

/* Splits a string member into lines that keep their endings, as nbformat writes it. */
static void split_value(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        json_object_set_new(obj, key, nb_split_lines(json_string_value(v), json_string_length(v)));
}

static void split_bundle(json_t *data)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(data, tmp, k, v)
    {
        if (str_starts_with(k, "text/") || !strcmp(k, "application/javascript") ||
            !strcmp(k, "image/svg+xml"))
            split_value(data, k);
    }
}

/* Joins (on read) or splits (on write) one cell's multiline text, and drops the transient
 * fields nbformat strips both ways. Tolerates malformed cells. */
static void cell_transform(json_t *cell, bool split)
{
    if (!json_is_object(cell))
        return;
    json_t *cmd = json_object_get(cell, "metadata");
    if (json_is_object(cmd))
        json_object_del(cmd, "trusted");
    if (split)
        split_value(cell, "source");
    else
        rejoin_value(cell, "source");
    const char *an;
    json_t *att;
    json_object_foreach(json_object_get(cell, "attachments"), an, att)
    {
        if (json_is_object(att))
            split ? split_bundle(att) : rejoin_bundle(att);
    }
    if (!json_is_string(json_object_get(cell, "cell_type")) ||
        strcmp(json_string_value(json_object_get(cell, "cell_type")), "code"))
        return;
    size_t j;
    json_t *output;
    json_array_foreach(json_object_get(cell, "outputs"), j, output)
    {
        const char *ot = json_string_value(json_object_get(output, "output_type"));
        if (!ot)
            continue;
        json_t *data = json_object_get(output, "data");
        if (!strcmp(ot, "execute_result") || !strcmp(ot, "display_data")) {
            if (json_is_object(data))
                split ? split_bundle(data) : rejoin_bundle(data);
        } else if (!strcmp(ot, "stream") || !split) {
            split ? split_value(output, "text") : rejoin_value(output, "text");
        }
    }
}

static void metadata_transform(json_t *nb)
{
    json_t *md = json_object_get(nb, "metadata");
    if (json_is_object(md)) {
        json_object_del(md, "orig_nbformat");
        json_object_del(md, "orig_nbformat_minor");
        json_object_del(md, "signature");
    }
}

/* Walks cells and outputs, joining (on read) or splitting (on write) multiline text, and drops
 * the transient fields nbformat strips both ways. Tolerates malformed notebooks. */
static void nb_transform(json_t *nb, bool split)
{
    metadata_transform(nb);
    size_t i;
    json_t *cell;
    json_array_foreach(json_object_get(nb, "cells"), i, cell)
    {
        cell_transform(cell, split);
    }
}

static bool is_str_or_str_list(const json_t *v)
{
    if (json_is_string(v))
        return true;
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s))
            return false;
    }
    return true;
}

static bool is_int_or_null(const json_t *v)
{
    return json_is_null(v) || json_is_integer(v);
}

/* Checks the structure nbformat 4 requires (a minimal subset of its JSON schema). Returns
 * NULL when valid, else a description of the first problem (caller frees). */
static char *nb_validate(const json_t *nb)
{
    if (!json_is_object(nb))
        return xstrdup("the notebook is not a JSON object");
    json_t *v = json_object_get(nb, "nbformat");
    if (!json_is_integer(v) || json_integer_value(v) != 4)
        return xstrdup("'nbformat' must be the integer 4");
    if (!json_is_integer(json_object_get(nb, "nbformat_minor")) ||
        json_integer_value(json_object_get(nb, "nbformat_minor")) < 0)
        return xstrdup("'nbformat_minor' must be a non-negative integer");
    if (!json_is_object(json_object_get(nb, "metadata")))
        return xstrdup("'metadata' must be an object");
    json_t *cells = json_object_get(nb, "cells");
    if (!json_is_array(cells))
        return xstrdup("'cells' must be an array");
    size_t i, j;
    json_t *c, *o;
    json_array_foreach(cells, i, c)
    {
        if (!json_is_object(c))
            return xasprintf("cells[%zu] is not an object", i);
        const char *ct = json_string_value(json_object_get(c, "cell_type"));
        if (!ct || (strcmp(ct, "code") && strcmp(ct, "markdown") && strcmp(ct, "raw")))
            return xasprintf("cells[%zu].cell_type must be 'code', 'markdown' or 'raw'", i);
        if (!json_is_object(json_object_get(c, "metadata")))
            return xasprintf("cells[%zu].metadata must be an object", i);
        if (!is_str_or_str_list(json_object_get(c, "source")))
            return xasprintf("cells[%zu].source must be a string or a list of strings", i);
        json_t *id = json_object_get(c, "id");
        if (id && !json_is_string(id))
            return xasprintf("cells[%zu].id must be a string", i);
        json_t *att = json_object_get(c, "attachments");
        if (att && !json_is_object(att))
            return xasprintf("cells[%zu].attachments must be an object", i);
        if (strcmp(ct, "code"))
            continue;
        if (!is_int_or_null(json_object_get(c, "execution_count")))
            return xasprintf("cells[%zu].execution_count must be an integer or null", i);
        json_t *outs = json_object_get(c, "outputs");
        if (!json_is_array(outs))
            return xasprintf("cells[%zu].outputs must be an array", i);
        json_array_foreach(outs, j, o)
        {
            const char *ot = json_string_value(json_object_get(o, "output_type"));
            if (!json_is_object(o) || !ot)
                return xasprintf("cells[%zu].outputs[%zu] has no output_type", i, j);
            if (!strcmp(ot, "stream")) {
                if (!json_is_string(json_object_get(o, "name")) ||
                    !is_str_or_str_list(json_object_get(o, "text")))
                    return xasprintf("cells[%zu].outputs[%zu]: a stream needs name and text", i, j);
            } else if (!strcmp(ot, "display_data") || !strcmp(ot, "execute_result")) {
                if (!json_is_object(json_object_get(o, "data")) ||
                    !json_is_object(json_object_get(o, "metadata")))
                    return xasprintf("cells[%zu].outputs[%zu]: %s needs data and metadata "
                                     "objects",
                                     i, j, ot);
                if (!strcmp(ot, "execute_result") &&
                    !is_int_or_null(json_object_get(o, "execution_count")))
                    return xasprintf("cells[%zu].outputs[%zu].execution_count must be an "
                                     "integer or null",
                                     i, j);
            } else if (!strcmp(ot, "error")) {
                if (!json_is_string(json_object_get(o, "ename")) ||
                    !json_is_string(json_object_get(o, "evalue")) ||
                    !json_is_array(json_object_get(o, "traceback")))
                    return xasprintf("cells[%zu].outputs[%zu]: an error needs ename, evalue and "
                                     "traceback",
                                     i, j);
            } else {
                return xasprintf("cells[%zu].outputs[%zu].output_type '%s' is unknown", i, j, ot);
            }
        }
    }
    return NULL;
}

/* Serializes a notebook as nbformat writes it: lines split, keys sorted, indent 1, trailing
 * newline. Caller frees. */
#define NB_DUMP_FLAGS (JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY)

/* Appends v as nbformat writes it (indent 1, sorted keys) at depth levels into a
 * notebook: each line after the first is indented depth more spaces, which gives the
 * bytes json_dumps writes for v there (a dump's newlines are all between values:
 * strings have theirs escaped). */
static void dump_at(struct buf *out, const json_t *v, int depth)
{
    static const char spaces[] = "        ";
    char *s = json_dumps(v, NB_DUMP_FLAGS);
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        buf_append(out, p, n);
        if (nl)
            buf_append(out, spaces, (size_t)depth);
        p += n;
    }
    free(s);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The notebook file's bytes for content, as nbformat writes them (indent 1, sorted keys,
 * multiline text split into lines, a final newline). The cells are written one at a
 * time, each from a transformed copy of its own: the transient memory is one cell's,
 * not a second notebook's (a notebook of logs holds a JSON value per line). Caller
 * frees; *len is the size. */
static char *nb_serialize(const json_t *content, size_t *len)
{
    struct buf out = {0};
    size_t nkeys = json_object_size(content), k = 0;
    const char **keys = xcalloc(nkeys ? nkeys : 1, sizeof(*keys));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)content, key, v)
    {
        keys[k++] = key;
    }
    qsort(keys, nkeys, sizeof(*keys), key_cmp);
    buf_append(&out, "{", 1);
    for (size_t i = 0; i < nkeys; i++) {
        buf_append(&out, i ? ",\n " : "\n ", i ? 3 : 2);
        json_t *name = json_string(keys[i]);
        dump_at(&out, name, 1);
        json_decref(name);
        buf_append(&out, ": ", 2);
        v = json_object_get(content, keys[i]);
        if (!strcmp(keys[i], "cells") && json_is_array(v) && json_array_size(v)) {
            buf_append(&out, "[", 1);
            for (size_t c = 0; c < json_array_size(v); c++) {
                buf_append(&out, c ? ",\n  " : "\n  ", c ? 4 : 3);
                json_t *cell = json_deep_copy(json_array_get(v, c));
                cell_transform(cell, true);
                dump_at(&out, cell, 2);
                json_decref(cell);
            }
            buf_append(&out, "\n ]", 3);
        } else if (!strcmp(keys[i], "metadata") && json_is_object(v)) {
            json_t *shell = json_object();
            json_object_set_new(shell, "metadata", json_deep_copy(v));
            metadata_transform(shell);
            dump_at(&out, json_object_get(shell, "metadata"), 1);
            json_decref(shell);
        } else {
            dump_at(&out, v, 1);
        }
    }
    buf_append(&out, nkeys ? "\n}\n" : "}\n", nkeys ? 3 : 2);
    free(keys);
    return buf_steal(&out, len);
}

static json_t *new_notebook(void)
{
    return json_pack("{s:[], s:{}, s:i, s:i}", "cells", "metadata", "nbformat", 4, "nbformat_minor",
                     5);
}

/* ---- models ----------------------------------------------------------------------------- */

struct get_opts {
    const char *type;   /* NULL, "file", "notebook", "directory" */
    const char *format; /* NULL, "text", "base64" */
    bool content;
    bool hash;
};

static bool fd_writable(int fd)
{
    if (faccessat(fd, "", W_OK, AT_EMPTY_PATH) == 0)
        return true;
    return errno != EACCES && errno != EROFS && errno != EPERM;
}

static json_t *base_model(const char *norm, const char *type, const struct stat *st, int fd)
{
    return json_pack("{s:o, s:o, s:s, s:b, s:o, s:o, s:n, s:n, s:n, s:o, s:n, s:n}", "name",
                     json_text(path_basename(norm)), "path", json_text(norm), "type", type,
                     "writable", fd_writable(fd), "created", json_time(st->st_ctim),
                     "last_modified", json_time(st->st_mtim), "mimetype", "content", "format",
                     "size", S_ISDIR(st->st_mode) ? json_null() : json_integer(st->st_size), "hash",
                     "hash_algorithm");
}

static int model_get(struct op *op, const char *norm, const struct get_opts *g, json_t **model);

/* Fills a directory model's content with children models (no content), skipping hidden
 * names, special files and symlinks that leave the drive. A name that is not UTF-8 is
 * listed with U+FFFD for its invalid bytes (base_model), as docs/contents.md says. */
static int dir_list(struct op *op, const char *norm, json_t *model)
{
    int fd = fs_open_beneath(op->root_fd, norm, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return reply_errno(op, -fd, norm);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return reply_errno(op, errno, norm);
    }
    json_t *list = json_array();
    struct dirent *e;
    int status = 200;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files */
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
            continue;
        if (json_array_size(list) >= MAX_LIST_ENTRIES) {
            status =
                reply_err(op, 400, NULL, "Directory %s has more than %d entries, too many to list",
                          norm, MAX_LIST_ENTRIES);
            break;
        }
        char *child = path_join(norm, e->d_name);
        struct get_opts g = {0};
        json_t *cm = NULL, *err = NULL;
        struct op quiet = *op; /* a child that cannot be described is left out */
        quiet.out = &err;
        if (model_get(&quiet, child, &g, &cm) == 200)
            json_array_append_new(list, cm);
        json_decref(err);
        free(child);
    }
    closedir(d);
    if (status != 200) {
        json_decref(list);
        return status;
    }
    json_object_set_new(model, "content", list);
    json_object_set_new(model, "format", json_string("json"));
    return 200;
}

/* Builds the model of norm; on success returns 200 and *model (caller owns), else the status
 * with the error body in *op->out. */
static int model_get(struct op *op, const char *norm, const struct get_opts *g, json_t **model)
{
    int fd = -1, rfd = -1, status;
    char *data = NULL;
    size_t len = 0;
    json_t *m = NULL;
    struct stat st;

    fd = fs_open_beneath(op->root_fd, norm, O_PATH, 0);
    if (fd < 0) {
        status = reply_errno(op, -fd, norm);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        status = reply_errno(op, errno, norm);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        if (g->type && strcmp(g->type, "directory")) {
            status = reply_err(op, 400, "bad type", "%s is a directory, not a %s", norm, g->type);
            goto out;
        }
        m = base_model(norm, "directory", &st, fd);
        if (g->content) {
            status = dir_list(op, norm, m);
            if (status != 200)
                goto out;
        }
        status = 200;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        status = reply_err(op, 400, NULL, "Cannot read non-file %s", norm);
        goto out;
    }
    if (g->type && !strcmp(g->type, "directory")) {
        status = reply_err(op, 400, "bad type", "%s is not a directory", norm);
        goto out;
    }
    bool notebook = g->type ? !strcmp(g->type, "notebook") : str_ends_with(norm, ".ipynb");
    char hash[65] = "";
    if (g->content || g->hash) {
        rfd = open_regular_ro(op->root_fd, norm);
        if (rfd < 0) {
            status = reply_errno(op, -rfd, norm);
            goto out;
        }
        fstat(rfd, &st); /* describe what we read */
        if (g->content) {
            int r = read_fd_all(rfd, op->req->max_file_size, &data, &len);
            if (r == -EFBIG) {
                status = reply_err(op, 400, NULL,
                                   "%s is too large to open (%lld bytes; the limit is %lld "
                                   "bytes): download it instead",
                                   norm, (long long)st.st_size, (long long)op->req->max_file_size);
                goto out;
            }
            if (r < 0) {
                status = reply_errno(op, -r, norm);
                goto out;
            }
            if (g->hash)
                sha256_hex_of(data, len, hash);
        } else {
            int r = sha256_hex_fd(rfd, hash);
            if (r < 0) {
                status = reply_errno(op, -r, norm);
                goto out;
            }
        }
    }
    m = base_model(norm, notebook ? "notebook" : "file", &st, fd);
    if (!notebook) {
        const char *mime = mime_guess(path_basename(norm));
        if (mime)
            json_object_set_new(m, "mimetype", json_string(mime));
    }
    if (g->hash) {
        json_object_set_new(m, "hash", json_string(hash));
        json_object_set_new(m, "hash_algorithm", json_string("sha256"));
    }
    if (g->content && notebook) {
        if (op->req->max_notebook > 0 && (int64_t)len > op->req->max_notebook) {
            status = reply_err(op, 400, NULL,
                               "%s is over %lld MiB, the largest notebook this server opens "
                               "(max_notebook_mb): download it instead",
                               norm, (long long)(op->req->max_notebook >> 20));
            goto out;
        }
        json_error_t jerr;
        json_t *nb = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
        free(data); /* the tree holds it now: not both at once */
        data = NULL;
        if (!nb) {
            status = reply_err(op, 400, NULL, "Unreadable Notebook: %s: not JSON: %s (line %d)",
                               norm, jerr.text, jerr.line);
            goto out;
        }
        nb_transform(nb, false);
        char *why = nb_validate(nb);
        if (why) {
            char *msg = xasprintf("Notebook validation failed: %s", why);
            json_object_set_new(m, "message", json_text(msg));
            free(msg);
            free(why);
        }
        json_object_set_new(m, "content", nb);
        json_object_set_new(m, "format", json_string("json"));
    } else if (g->content) {
        json_t *text = NULL;
        if (!g->format || !strcmp(g->format, "text")) {
            text = json_stringn(data, len);
            if (!text && g->format) {
                status = reply_err(op, 400, "bad format", "%s is not UTF-8 encoded", norm);
                goto out;
            }
        }
        if (text) {
            json_object_set_new(m, "content", text);
            json_object_set_new(m, "format", json_string("text"));
        } else {
            size_t blen = base64_encoded_len(len);
            char *b64 = xmalloc(blen + 1);
            base64_encode((const uint8_t *)data, len, b64);
            json_object_set_new(m, "content", json_stringn_nocheck(b64, blen));
            json_object_set_new(m, "format", json_string("base64"));
            free(b64);
        }
        if (json_is_null(json_object_get(m, "mimetype")))
            json_object_set_new(m, "mimetype",
                                json_string(text ? "text/plain" : "application/octet-stream"));
    }
    status = 200;
out:
    if (status == 200) {
        *model = m;
    } else {
        json_decref(m);
    }
    free(data);
    if (fd >= 0)
        close(fd);
    if (rfd >= 0)
        close(rfd);
    return status;
}

/* Replies with norm's model without content (after a save, copy, rename). */
static int reply_model(struct op *op, const char *norm, int status, const char *message)
{
    struct get_opts g = {0};
    json_t *m = NULL;
    int s = model_get(op, norm, &g, &m);
    if (s != 200)
        return s;
    if (message)
        json_object_set_new(m, "message", json_text(message));
    json_decref(*op->out);
    *op->out = m;
    if (status == 201)
        set_location(op, norm, NULL);
    return status;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

/* "name-checkpoint.ext", splitting the extension as Python's os.path.splitext does. */
static char *checkpoint_name(const char *name)
{
    const char *lead = name;
    while (*lead == '.')
        lead++;
    const char *dot = strrchr(lead, '.');
    if (!dot || dot == lead)
        return xasprintf("%s-%s", name, CHECKPOINT_ID);
    return xasprintf("%.*s-%s%s", (int)(dot - name), name, CHECKPOINT_ID, dot);
}

/* Opens (creating when asked) the checkpoint folder inside parent_fd; never a symlink. */
static int open_checkpoint_dir(int parent_fd, bool create)
{
    int fd = fs_open_beneath(parent_fd, CHECKPOINT_DIR, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    if (fd == -ENOENT && create) {
        if (mkdirat(parent_fd, CHECKPOINT_DIR, 0777) < 0 && errno != EEXIST)
            return -errno;
        fd = fs_open_beneath(parent_fd, CHECKPOINT_DIR, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    }
    return fd;
}

static json_t *checkpoint_model(const struct stat *st)
{
    return json_pack("{s:s, s:o}", "id", CHECKPOINT_ID, "last_modified", json_time(st->st_mtim));
}

/* Stats the checkpoint of the file named `name` in parent_fd; 0 or a negative errno. */
static int checkpoint_stat(int parent_fd, const char *name, struct stat *st)
{
    int cfd = open_checkpoint_dir(parent_fd, false);
    if (cfd < 0)
        return cfd;
    char *cp = checkpoint_name(name);
    int r = fstatat(cfd, cp, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    if (r == 0 && !S_ISREG(st->st_mode))
        r = -ENOENT;
    free(cp);
    close(cfd);
    return r;
}

/* Copies the file at norm into its checkpoint; fills *st with the checkpoint's stat. */
static int checkpoint_create(int root_fd, const char *norm, struct stat *st)
{
    int pfd = -1, cfd = -1, sfd = -1, r;
    char *cp = NULL;
    sfd = open_regular_ro(root_fd, norm);
    if (sfd < 0) {
        r = sfd;
        goto out;
    }
    pfd = open_parent(root_fd, norm);
    if (pfd < 0) {
        r = pfd;
        goto out;
    }
    cfd = open_checkpoint_dir(pfd, true);
    if (cfd < 0) {
        r = cfd;
        goto out;
    }
    struct stat sst;
    fstat(sfd, &sst);
    struct timespec times[2] = {sst.st_atim, sst.st_mtim};
    cp = checkpoint_name(path_basename(norm));
    struct src src = {.fd = sfd};
    r = write_atomic_at(cfd, cp, &src, false, times);
    if (r == 0 && fstatat(cfd, cp, st, AT_SYMLINK_NOFOLLOW) < 0)
        r = -errno;
out:
    free(cp);
    if (sfd >= 0)
        close(sfd);
    if (pfd >= 0)
        close(pfd);
    if (cfd >= 0)
        close(cfd);
    return r;
}

static void checkpoint_ensure(int root_fd, const char *norm)
{
    int pfd = open_parent(root_fd, norm);
    if (pfd < 0)
        return;
    struct stat st;
    if (checkpoint_stat(pfd, path_basename(norm), &st) < 0)
        checkpoint_create(root_fd, norm, &st);
    close(pfd);
}

/* Applies fn-like actions to the checkpoint of old (rename, delete) when it exists. */
static void checkpoint_move(int root_fd, const char *old, const char *new_path)
{
    int opfd = open_parent(root_fd, old), ocfd = -1, npfd = -1, ncfd = -1;
    char *ocp = checkpoint_name(path_basename(old)), *ncp = NULL;
    struct stat st;
    if (opfd < 0 || (ocfd = open_checkpoint_dir(opfd, false)) < 0 ||
        fstatat(ocfd, ocp, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        goto out;
    if (!new_path) {
        unlinkat(ocfd, ocp, 0);
        goto out;
    }
    npfd = open_parent(root_fd, new_path);
    if (npfd < 0 || (ncfd = open_checkpoint_dir(npfd, true)) < 0)
        goto out;
    ncp = checkpoint_name(path_basename(new_path));
    renameat(ocfd, ocp, ncfd, ncp);
out:
    free(ocp);
    free(ncp);
    for (int *f = (int[]){opfd, ocfd, npfd, ncfd}, i = 0; i < 4; i++)
        if (f[i] >= 0)
            close(f[i]);
}

static int op_checkpoints(struct op *op, const char *norm)
{
    const struct contents_req *req = op->req;
    const char *method = req->method;
    int pfd = -1, status;
    if (!norm[0] || path_is_hidden(norm)) {
        status = reply_err(op, 404, NULL, "No such file or directory: %s", norm);
        goto out;
    }
    pfd = open_parent(op->root_fd, norm);
    if (pfd < 0) {
        status = reply_errno(op, -pfd, norm);
        goto out;
    }
    const char *name = path_basename(norm);
    struct stat st;
    if (!req->checkpoint_id && !strcmp(method, "GET")) {
        json_t *list = json_array();
        if (checkpoint_stat(pfd, name, &st) == 0)
            json_array_append_new(list, checkpoint_model(&st));
        *op->out = list;
        status = 200;
    } else if (!req->checkpoint_id && !strcmp(method, "POST")) {
        int r = checkpoint_create(op->root_fd, norm, &st);
        if (r == -EISDIR || r == -EINVAL) {
            status = reply_err(op, 400, NULL, "Cannot checkpoint %s: not a file", norm);
            goto out;
        }
        if (r < 0) {
            status = reply_errno(op, -r, norm);
            goto out;
        }
        *op->out = checkpoint_model(&st);
        set_location(op, norm, "/checkpoints/" CHECKPOINT_ID);
        status = 201;
    } else if (req->checkpoint_id && (!strcmp(method, "POST") || !strcmp(method, "DELETE"))) {
        if (strcmp(req->checkpoint_id, CHECKPOINT_ID) || checkpoint_stat(pfd, name, &st) < 0) {
            status = reply_err(op, 404, NULL, "Checkpoint does not exist: %s@%s", norm,
                               req->checkpoint_id);
            goto out;
        }
        int cfd = open_checkpoint_dir(pfd, false), r;
        char *cp = checkpoint_name(name);
        if (cfd < 0) {
            r = cfd;
        } else if (!strcmp(method, "DELETE")) {
            r = unlinkat(cfd, cp, 0) < 0 ? -errno : 0;
        } else {
            int sfd = openat(cfd, cp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            int dfd = -1;
            char *dname = NULL;
            r = sfd < 0 ? -errno : resolve_write(op->root_fd, norm, &dfd, &dname);
            if (r == 0) {
                struct timespec times[2] = {st.st_atim, st.st_mtim};
                struct src src = {.fd = sfd};
                r = write_atomic_at(dfd, dname, &src, false, times);
            }
            if (sfd >= 0)
                close(sfd);
            if (dfd >= 0)
                close(dfd);
            free(dname);
        }
        free(cp);
        if (cfd >= 0)
            close(cfd);
        if (r < 0) {
            status = reply_errno(op, -r, norm);
            goto out;
        }
        status = 204;
    } else {
        status = reply_err(op, 405, NULL, "Method %s not allowed on checkpoints", method);
    }
out:
    if (pfd >= 0)
        close(pfd);
    return status;
}

/* ---- saving ----------------------------------------------------------------------------- */

/* A string member of the body; -EINVAL when present but not a string or holding a NUL. */
static int body_str(const json_t *body, const char *key, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return -EINVAL;
    *out = json_string_value(v);
    return 0;
}

/* Decodes a file model's content per its format into bytes (caller frees). */
static int decode_content(struct op *op, const char *norm, const json_t *body, char **data,
                          size_t *len)
{
    const char *format = json_string_value(json_object_get(body, "format"));
    json_t *c = json_object_get(body, "content");
    if (!format || (strcmp(format, "text") && strcmp(format, "base64")))
        return reply_err(op, 400, NULL,
                         "Must specify format of file contents as 'text' or 'base64'");
    const char *s = op->req->content_raw;
    size_t sl = op->req->content_raw_len;
    if (!s) {
        if (!json_is_string(c))
            return reply_err(op, 400, NULL, "Encoding error saving %s: content is not a string",
                             norm);
        s = json_string_value(c);
        sl = json_string_length(c);
    }
    if (!strcmp(format, "base64") && op->req->content_decoded && *op->req->content_decoded) {
        *data = *op->req->content_decoded; /* decoded while the body arrived */
        *op->req->content_decoded = NULL;
        *len = op->req->content_decoded_len;
        return 0;
    }
    if (!strcmp(format, "text")) {
        *data = xmalloc(sl + 1);
        memcpy(*data, s, sl);
        *len = sl;
        return 0;
    }
    *data = xmalloc(base64_decoded_max(sl) + 1);
    if (base64_decode(s, sl, (uint8_t *)*data, len) < 0) {
        free(*data);
        *data = NULL;
        return reply_err(op, 400, NULL, "Encoding error saving %s: invalid base64", norm);
    }
    return 0;
}

/* Writes bytes to norm (following inside links), mapping failures to replies. */
static int save_bytes(struct op *op, const char *norm, const char *data, size_t len, bool noreplace)
{
    int dfd = -1, status = 0;
    char *name = NULL;
    int r = resolve_write(op->root_fd, norm, &dfd, &name);
    if (r == -EXDEV || r == -ELOOP) {
        status = reply_err(op, 400, NULL,
                           "Cannot write %s: it is a symlink that leads outside the drive", norm);
        goto out;
    }
    if (r < 0) {
        status = reply_errno(op, -r, norm);
        goto out;
    }
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        status = reply_err(op, 400, NULL, "%s is a directory", norm);
        goto out;
    }
    struct src src = {.data = data, .len = len, .fd = -1};
    r = write_atomic_at(dfd, name, &src, noreplace, NULL);
    if (r == -EEXIST) {
        status = reply_err(op, 409, NULL, "File already exists: %s", norm);
    } else if (r < 0) {
        status = reply_errno(op, -r, norm);
    }
out:
    if (dfd >= 0)
        close(dfd);
    free(name);
    return status;
}

static int save_directory(struct op *op, const char *norm)
{
    if (!norm[0])
        return 0;
    int pfd = open_parent(op->root_fd, norm);
    if (pfd < 0)
        return reply_errno(op, -pfd, norm);
    int r = mkdirat(pfd, path_basename(norm), 0777) < 0 ? -errno : 0;
    close(pfd);
    if (r == -EEXIST) {
        int fd = fs_open_beneath(op->root_fd, norm, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
            return reply_err(op, 400, NULL, "Not a directory: %s", norm);
        close(fd);
        return 0;
    }
    return r < 0 ? reply_errno(op, -r, norm) : 0;
}

/* Saves a full model to norm (jupyter_server's save()). Returns 0, or the error status. */
static int save_model(struct op *op, const char *norm, const json_t *body, bool noreplace)
{
    const char *type = json_string_value(json_object_get(body, "type"));
    if (!type)
        return reply_err(op, 400, NULL, "No file type provided");
    json_t *content = json_object_get(body, "content");
    if (!content && strcmp(type, "directory"))
        return reply_err(op, 400, NULL, "No file content provided");
    if (!strcmp(type, "directory"))
        return save_directory(op, norm);
    if (!norm[0])
        return reply_err(op, 400, NULL, "Cannot write a file at the drive's root path");
    int status;
    char *data = NULL;
    size_t len = 0;
    if (!strcmp(type, "notebook")) {
        char *why = nb_validate(content);
        if (why) {
            status = reply_err(op, 400, NULL, "Notebook validation failed: %s", why);
            free(why);
            return status;
        }
        data = nb_serialize(content, &len);
        status = save_bytes(op, norm, data, len, noreplace);
        if (status == 0)
            checkpoint_ensure(op->root_fd, norm); /* one checkpoint always exists */
    } else if (!strcmp(type, "file")) {
        status = decode_content(op, norm, body, &data, &len);
        if (status == 0)
            status = save_bytes(op, norm, data, len, noreplace);
    } else {
        status = reply_err(op, 400, NULL, "Unhandled contents type: %s", type);
    }
    free(data);
    return status;
}

/* Creates norm from a possibly partial model (jupyter_server's new()): type from the
 * extension, empty content by default. */
static int new_model(struct op *op, const char *norm, const json_t *body, bool noreplace)
{
    json_t *m = body ? json_deep_copy(body) : json_object();
    if (!json_object_get(m, "type"))
        json_object_set_new(m, "type",
                            json_string(str_ends_with(norm, ".ipynb") ? "notebook" : "file"));
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!json_object_get(m, "content") && type && strcmp(type, "directory")) {
        if (!strcmp(type, "notebook")) {
            json_object_set_new(m, "content", new_notebook());
            json_object_set_new(m, "format", json_string("json"));
        } else {
            json_object_set_new(m, "content", json_string(""));
            json_object_set_new(m, "type", json_string("file"));
            json_object_set_new(m, "format", json_string("text"));
        }
    }
    int status = save_model(op, norm, m, noreplace);
    json_decref(m);
    return status;
}

/* ---- write-behind for upload chunks -------------------------------------------------- *
 * One thread appends the queued chunks in order. The queue holds at most WB_MAX_BYTES;
 * a request that would pass that waits (on its thread-pool thread, never on the
 * loop). A chunk is written once its answer is on its way (contents_start_writes), so
 * that the writer does not compete with the request for a core. A failed append
 * removes the part file, so the upload cannot complete with a hole, and is remembered
 * by target so that the next chunk says why. */

#define WB_MAX_BYTES ((size_t)256 << 20)
#define WB_ERRORS 32

struct wb_item {
    struct wb_item *next;
    int fd, dfd;
    char *tmp, *key, *data;
    size_t len;
    uint64_t seq;
};

static pthread_mutex_t wb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wb_work = PTHREAD_COND_INITIALIZER;     /* the writer waits here */
static pthread_cond_t wb_progress = PTHREAD_COND_INITIALIZER; /* requests wait here */
static struct wb_item *wb_head, **wb_tail = &wb_head;
static size_t wb_bytes;
static uint64_t wb_queued, wb_written, wb_allowed; /* sequence numbers */
static bool wb_running;
static struct {
    char *key;
    int err;
} wb_errors[WB_ERRORS];
static unsigned wb_next_error;

static void *wb_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "lb-writer");
    /* Background work: woken as an answer is being sent, it must not preempt the thread
     * that sends it; SCHED_BATCH threads do not preempt on wake-up. */
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    pthread_mutex_lock(&wb_mu);
    for (;;) {
        while (!wb_head || wb_head->seq > wb_allowed)
            pthread_cond_wait(&wb_work, &wb_mu);
        struct wb_item *it = wb_head;
        wb_head = it->next;
        if (!wb_head)
            wb_tail = &wb_head;
        pthread_mutex_unlock(&wb_mu);
        int r = write_all(it->fd, it->data, it->len);
        /* Start writing the bytes to disk now, while the upload goes on, so that the
         * last chunk's fsync waits for its own tail rather than for the whole file. */
        off_t end = r == 0 ? lseek(it->fd, 0, SEEK_CUR) : -1;
        if (end >= (off_t)it->len)
            sync_file_range(it->fd, end - (off_t)it->len, (off_t)it->len, SYNC_FILE_RANGE_WRITE);
        if (r < 0)
            unlinkat(it->dfd, it->tmp, 0);
        close(it->fd);
        close(it->dfd);
        pthread_mutex_lock(&wb_mu);
        if (r < 0) {
            unsigned i = wb_next_error++ % WB_ERRORS;
            free(wb_errors[i].key);
            wb_errors[i].key = it->key;
            wb_errors[i].err = r;
            it->key = NULL;
        }
        wb_bytes -= it->len;
        wb_written = it->seq;
        pthread_cond_broadcast(&wb_progress);
        free(it->tmp);
        free(it->key);
        free(it->data);
        free(it);
    }
    return NULL;
}

/* Lets the writer go on to every chunk queued so far (wb_mu held). */
static void wb_allow_queued(void)
{
    if (wb_allowed < wb_queued) {
        wb_allowed = wb_queued;
        pthread_cond_signal(&wb_work);
    }
}

/* Queues an append; takes fd, dfd, tmp, key and data. Returns 0, or -EAGAIN when the
 * writer thread cannot be started (nothing taken then). */
static int wb_append(int fd, int dfd, char *tmp, char *key, char *data, size_t len)
{
    pthread_mutex_lock(&wb_mu);
    if (!wb_running) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &a, wb_main, NULL);
        pthread_attr_destroy(&a);
        if (e) {
            pthread_mutex_unlock(&wb_mu);
            return -EAGAIN;
        }
        wb_running = true;
    }
    if (wb_bytes && wb_bytes + len > WB_MAX_BYTES)
        wb_allow_queued(); /* room comes only from the writer */
    while (wb_bytes && wb_bytes + len > WB_MAX_BYTES)
        pthread_cond_wait(&wb_progress, &wb_mu);
    struct wb_item *it = xcalloc(1, sizeof(*it));
    *it = (struct wb_item){
        .fd = fd, .dfd = dfd, .tmp = tmp, .key = key, .data = data, .len = len, .seq = ++wb_queued};
    *wb_tail = it;
    wb_tail = &it->next;
    wb_bytes += len;
    pthread_mutex_unlock(&wb_mu);
    return 0;
}

void contents_start_writes(void)
{
    pthread_mutex_lock(&wb_mu);
    wb_allow_queued();
    pthread_mutex_unlock(&wb_mu);
}

void contents_flush(void)
{
    pthread_mutex_lock(&wb_mu);
    uint64_t target = wb_queued;
    wb_allow_queued();
    while (wb_written < target)
        pthread_cond_wait(&wb_progress, &wb_mu);
    pthread_mutex_unlock(&wb_mu);
}

/* The error of a failed append to key's upload, forgotten once told; 0 if none. */
static int wb_take_error(const char *key)
{
    int err = 0;
    pthread_mutex_lock(&wb_mu);
    for (unsigned i = 0; i < WB_ERRORS; i++) {
        if (wb_errors[i].key && !strcmp(wb_errors[i].key, key)) {
            err = wb_errors[i].err;
            free(wb_errors[i].key);
            wb_errors[i].key = NULL;
        }
    }
    pthread_mutex_unlock(&wb_mu);
    return err;
}

/* Name of the hidden file an upload in progress is appended to, beside the target. */
static char *upload_tmp_name(const char *name)
{
    char hex[65];
    sha256_hex_of(name, strlen(name), hex);
    hex[32] = '\0';
    return xasprintf(".~labbook-upload-%s", hex);
}

/* JupyterLab's chunked upload: chunk 1 starts a hidden file, 2..n append, -1 appends and
 * renames it onto the target, so the target never holds a partial file. */
static int save_chunk(struct op *op, const char *norm, const json_t *body, bool existed)
{
    const char *type = json_string_value(json_object_get(body, "type"));
    json_int_t chunk = json_integer_value(json_object_get(body, "chunk"));
    int dfd = -1, fd = -1, status;
    char *data = NULL, *name = NULL, *tmp = NULL, *key = NULL;
    size_t len = 0;
    if (!type)
        return reply_err(op, 400, NULL, "No file type provided");
    if (strcmp(type, "file"))
        return reply_err(op, 400, NULL, "File type \"%s\" is not supported for large file transfer",
                         type);
    if (!json_object_get(body, "content"))
        return reply_err(op, 400, NULL, "No file content provided");
    if (chunk == 0 || chunk < -1 || !json_is_integer(json_object_get(body, "chunk")))
        return reply_err(op, 400, NULL, "Invalid chunk number");
    status = decode_content(op, norm, body, &data, &len);
    if (status)
        return status;
    key = xasprintf("%s/%s", op->req->root, norm);
    /* Decoded while the previous chunk was being written; now wait for that write,
     * so that sizes are exact and the last chunk renames a whole file. */
    contents_flush();
    int werr = wb_take_error(key);
    if (werr && chunk != 1) {
        status = reply_err(op, werr == -ENOSPC || werr == -EDQUOT ? 507 : 500, NULL,
                           "Saving an earlier chunk of %s failed: %s; upload it again", norm,
                           strerror(-werr));
        goto out;
    }
    int r = resolve_write(op->root_fd, norm, &dfd, &name);
    if (r == -EXDEV || r == -ELOOP) {
        status = reply_err(op, 400, NULL,
                           "Cannot write %s: it is a symlink that leads outside the drive", norm);
        goto out;
    }
    if (r < 0) {
        status = reply_errno(op, -r, norm);
        goto out;
    }
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        status = reply_err(op, 400, NULL, "%s is a directory", norm);
        goto out;
    }
    tmp = upload_tmp_name(name);
    if (chunk == 1)
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    else
        fd = openat(dfd, tmp, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        status =
            reply_err(op, 400, NULL, "No upload in progress for %s (chunk 1 is missing)", norm);
        goto out;
    }
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        status = reply_errno(op, fd < 0 ? errno : EINVAL, norm);
        goto out;
    }
    if (chunk != -1 && op->req->write_behind) {
        off_t size = st.st_size + (off_t)len;
        if (wb_append(fd, dfd, tmp, key, data, len) == 0) {
            fd = dfd = -1; /* the writer's now */
            tmp = key = data = NULL;
            st.st_size = size;
            goto answer;
        }
    }
    r = write_all(fd, data, len);
    if (r == 0 && chunk == -1) {
        struct stat old;
        if (fstatat(dfd, name, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode))
            fchmod(fd, old.st_mode & 07777);
        if (fsync(fd) < 0)
            r = -errno;
        if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
            r = -errno;
        if (r == 0)
            fsync_dir(dfd);
    }
    if (r < 0) {
        status = reply_errno(op, -r, norm);
        goto out;
    }
    if (chunk == -1) {
        status = reply_model(op, norm, existed ? 200 : 201, NULL);
        goto out;
    }
    /* the target does not exist yet: describe the part received so far */
    fstat(fd, &st);
answer:;
    json_t *m = base_model(norm, "file", &st, fd);
    const char *mime = mime_guess(name);
    if (mime)
        json_object_set_new(m, "mimetype", json_string(mime));
    json_decref(*op->out);
    *op->out = m;
    status = 200;
    if (chunk == 1 && !existed) {
        set_location(op, norm, NULL);
        status = 201;
    }
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(data);
    free(name);
    free(tmp);
    free(key);
    return status;
}

/* ---- untitled, copy --------------------------------------------------------------------- */

/* jupyter_server's increment_filename: "Untitled.ipynb", "Untitled1.ipynb", ...; the number
 * goes before the first dot, or before ".ipynb". try_create returns 0 on success, -EEXIST to
 * try the next name, or another error. */
static int create_incremented(struct op *op, const char *dir, const char *filename,
                              const char *insert,
                              int (*try_create)(struct op *, const char *, void *), void *arg,
                              char **made)
{
    const char *dot =
        str_ends_with(filename, ".ipynb") ? strrchr(filename, '.') : strchr(filename, '.');
    size_t blen = dot ? (size_t)(dot - filename) : strlen(filename);
    const char *suffix = dot ? dot : "";
    int dfd = fs_open_beneath(op->root_fd, dir, O_PATH | O_DIRECTORY, 0);
    if (dfd < 0)
        return dfd;
    int r = -EEXIST;
    for (int i = 0; i < MAX_NAME_TRIES && r == -EEXIST; i++) {
        char *name = i ? xasprintf("%.*s%s%d%s", (int)blen, filename, insert, i, suffix)
                       : xasprintf("%.*s%s", (int)blen, filename, suffix);
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            free(name);
            continue;
        }
        char *path = path_join(dir, name);
        free(name);
        r = try_create(op, path, arg);
        if (r == 0)
            *made = path;
        else
            free(path);
    }
    close(dfd);
    return r;
}

struct untitled_arg {
    const char *type;
    int status; /* a reply already written */
};

static int try_untitled(struct op *op, const char *path, void *arg)
{
    struct untitled_arg *ua = arg;
    if (!strcmp(ua->type, "directory")) {
        int pfd = open_parent(op->root_fd, path);
        if (pfd < 0)
            return pfd;
        int r = mkdirat(pfd, path_basename(path), 0777) < 0 ? -errno : 0;
        close(pfd);
        return r;
    }
    json_t *m = json_pack("{s:s}", "type", ua->type);
    int s = new_model(op, path, m, true);
    json_decref(m);
    if (s == 409)
        return -EEXIST;
    ua->status = s;
    return s ? -ECANCELED : 0;
}

static int new_untitled(struct op *op, const char *dir, const char *type, const char *ext)
{
    int fd = fs_open_beneath(op->root_fd, dir, O_PATH | O_DIRECTORY, 0);
    if (fd < 0)
        return reply_err(op, 404, NULL, "No such directory: %s", dir);
    close(fd);
    if (!ext)
        ext = "";
    if (!type || !type[0])
        type = !strcmp(ext, ".ipynb") ? "notebook" : "file";
    const char *untitled, *insert = "";
    if (!strcmp(type, "directory")) {
        untitled = "Untitled Folder";
        insert = " ";
    } else if (!strcmp(type, "notebook")) {
        untitled = "Untitled";
        ext = ".ipynb";
    } else if (!strcmp(type, "file")) {
        untitled = "untitled";
    } else {
        return reply_err(op, 400, NULL, "Unexpected model type: '%s'", type);
    }
    if (strchr(ext, '/') || strlen(ext) > 64)
        return reply_err(op, 400, NULL, "Invalid extension: %s", ext);
    char *filename = xasprintf("%s%s", untitled, ext), *made = NULL;
    struct untitled_arg ua = {.type = type};
    int r = create_incremented(op, dir, filename, insert, try_untitled, &ua, &made);
    free(filename);
    int status;
    if (r == -ECANCELED)
        status = ua.status;
    else if (r < 0)
        status = reply_errno(op, -r, dir);
    else
        status = reply_model(op, made, 201, NULL);
    free(made);
    return status;
}

static int try_copy(struct op *op, const char *path, void *arg)
{
    const char *from = arg;
    int sfd = open_regular_ro(op->root_fd, from), dfd = -1;
    char *name = NULL;
    int r = sfd;
    if (sfd >= 0)
        r = resolve_write(op->root_fd, path, &dfd, &name);
    if (r >= 0) {
        struct src src = {.fd = sfd};
        r = write_atomic_at(dfd, name, &src, true, NULL);
    }
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    free(name);
    return r;
}

/* "a-Copy2.ipynb" -> "a.ipynb", as jupyter_server strips earlier copy numbers. */
static char *strip_copy_marks(const char *name)
{
    struct buf b = {0};
    const char *p = name;
    while (*p) {
        if (str_starts_with(p, "-Copy")) {
            const char *q = p + 5;
            while (*q >= '0' && *q <= '9')
                q++;
            if (*q == '.') {
                p = q;
                continue;
            }
        }
        buf_append(&b, p, 1);
        p++;
    }
    buf_append(&b, "", 0);
    return buf_steal(&b, NULL);
}

static int copy_file(struct op *op, const char *to, const char *copy_from)
{
    char *from = NULL, *made = NULL;
    int status, r = fs_path_normalize(copy_from, &from);
    if (r < 0) {
        status = reply_err(op, 400, NULL, "Invalid path: %s", copy_from);
        goto out;
    }
    if (path_is_hidden(from) || path_is_hidden(to)) {
        status = reply_err(op, 400, NULL, "Cannot copy file or directory '%s'", to);
        goto out;
    }
    int fd = fs_open_beneath(op->root_fd, from, O_PATH, 0);
    struct stat st;
    if (fd < 0) {
        status = reply_errno(op, -fd, from);
        goto out;
    }
    r = fstat(fd, &st);
    close(fd);
    if (r == 0 && S_ISDIR(st.st_mode)) {
        status = reply_err(op, 400, NULL, "Can't copy directories");
        goto out;
    }
    fd = fs_open_beneath(op->root_fd, to, O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
        close(fd);
        char *base = strip_copy_marks(path_basename(from));
        r = create_incremented(op, to, base, "-Copy", try_copy, from, &made);
        free(base);
    } else {
        int pfd = to[0] ? open_parent(op->root_fd, to) : -ENOENT;
        if (pfd < 0) {
            char *parent = path_parent(to);
            status =
                reply_err(op, 404, NULL, "No such parent directory: %s to copy file in", parent);
            free(parent);
            goto out;
        }
        close(pfd);
        r = try_copy(op, to, from);
        if (r == 0)
            made = xstrdup(to);
    }
    if (r == -EEXIST) {
        status = reply_err(op, 409, NULL, "File already exists: %s", to);
        goto out;
    }
    if (r == -EINVAL) {
        status = reply_err(op, 400, NULL, "Cannot copy %s: not a regular file", from);
        goto out;
    }
    if (r < 0) {
        status = reply_errno(op, -r, from);
        goto out;
    }
    if (str_ends_with(made, ".ipynb"))
        checkpoint_ensure(op->root_fd, made);
    status = reply_model(op, made, 201, NULL);
out:
    free(from);
    free(made);
    return status;
}

/* ---- methods ---------------------------------------------------------------------------- */

static int query_bool(const char *v, bool dflt, bool *out)
{
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (strcmp(v, "0") && strcmp(v, "1"))
        return -EINVAL;
    *out = v[0] == '1';
    return 0;
}

static int op_get(struct op *op, const char *norm)
{
    const struct contents_req *req = op->req;
    struct get_opts g = {.type = req->q_type, .format = req->q_format};
    if (g.type && strcmp(g.type, "directory") && strcmp(g.type, "file") &&
        strcmp(g.type, "notebook"))
        return reply_err(op, 400, NULL, "Type '%s' is invalid", g.type);
    if (g.format && strcmp(g.format, "text") && strcmp(g.format, "base64"))
        return reply_err(op, 400, NULL, "Format '%s' is invalid", g.format);
    if (query_bool(req->q_content, true, &g.content) < 0)
        return reply_err(op, 400, NULL, "Content '%s' is invalid", req->q_content);
    if (query_bool(req->q_hash, false, &g.hash) < 0)
        return reply_err(op, 400, NULL, "Hash '%s' is invalid", req->q_hash);
    if (path_is_hidden(norm))
        return reply_err(op, 404, NULL, "No such file or directory: %s", norm);
    json_t *m = NULL;
    int status = model_get(op, norm, &g, &m);
    if (status == 200) {
        json_decref(*op->out);
        *op->out = m;
    }
    return status;
}

static int op_put(struct op *op, const char *norm)
{
    const json_t *body = op->req->body;
    if (!body || (json_is_object(body) && json_object_size(body) == 0))
        return new_untitled(op, norm, NULL, NULL);
    if (!json_is_object(body))
        return reply_err(op, 400, NULL, "The body must be a JSON object (a contents model)");
    const char *bpath, *copy_from;
    if (body_str(body, "path", &bpath) < 0 || body_str(body, "copy_from", &copy_from) < 0)
        return reply_err(op, 400, NULL, "Invalid path in the model");
    if (copy_from)
        return reply_err(op, 400, NULL, "Cannot copy with PUT, only POST");
    if (path_is_hidden(norm) || (bpath && path_is_hidden(bpath)))
        return reply_err(op, 400, NULL, "Cannot create file or directory '%s'", norm);
    int fd = fs_open_beneath(op->root_fd, norm, O_PATH, 0);
    bool exists = fd >= 0;
    if (fd >= 0)
        close(fd);
    if (json_object_get(body, "chunk"))
        return save_chunk(op, norm, body, exists);
    if (exists) {
        int s = save_model(op, norm, body, false);
        return s ? s : reply_model(op, norm, 200, NULL);
    }
    int s = new_model(op, norm, body, false);
    return s ? s : reply_model(op, norm, 201, NULL);
}

static int op_post(struct op *op, const char *norm)
{
    const json_t *body = op->req->body;
    int fd = fs_open_beneath(op->root_fd, norm, O_PATH, 0);
    if (fd >= 0) {
        struct stat st;
        int r = fstat(fd, &st);
        close(fd);
        if (r == 0 && !S_ISDIR(st.st_mode))
            return reply_err(op, 400, NULL, "Cannot POST to files, use PUT instead.");
    }
    if (body && !json_is_object(body))
        return reply_err(op, 400, NULL, "The body must be a JSON object");
    const char *copy_from = NULL, *type = NULL, *ext = NULL;
    if (body && (body_str(body, "copy_from", &copy_from) < 0 || body_str(body, "type", &type) < 0 ||
                 body_str(body, "ext", &ext) < 0))
        return reply_err(op, 400, NULL, "Invalid copy_from, type or ext");
    if (copy_from && copy_from[0])
        return copy_file(op, norm, copy_from);
    if (path_is_hidden(norm))
        return reply_err(op, 400, NULL, "Cannot create file or directory '%s'", norm);
    return new_untitled(op, norm, type, ext);
}

static int op_patch(struct op *op, const char *norm)
{
    const json_t *body = op->req->body;
    if (!json_is_object(body))
        return reply_err(op, 400, NULL, "JSON body missing");
    const char *bpath;
    if (body_str(body, "path", &bpath) < 0)
        return reply_err(op, 400, NULL, "Invalid path in the model");
    char *to = NULL;
    int opfd = -1, npfd = -1, status;
    if (!bpath) {
        status = reply_model(op, norm, 200, NULL);
        goto out;
    }
    if (fs_path_normalize(bpath, &to) < 0) {
        status = reply_err(op, 400, NULL, "Invalid path: %s", bpath);
        goto out;
    }
    if (path_is_hidden(norm) || path_is_hidden(to)) {
        status = reply_err(op, 400, NULL, "Cannot rename file or directory '%s'", norm);
        goto out;
    }
    if (!strcmp(norm, to)) {
        status = reply_model(op, norm, 200, NULL);
        goto out;
    }
    if (!norm[0] || !to[0]) {
        status = reply_err(op, 400, NULL, "Cannot rename the drive's root");
        goto out;
    }
    struct stat st;
    opfd = open_parent(op->root_fd, norm);
    if (opfd < 0 || fstatat(opfd, path_basename(norm), &st, AT_SYMLINK_NOFOLLOW) < 0) {
        status = reply_errno(op, opfd < 0 ? -opfd : errno, norm);
        goto out;
    }
    npfd = open_parent(op->root_fd, to);
    if (npfd < 0) {
        char *parent = path_parent(to);
        status = reply_err(op, 404, NULL, "No such directory: %s", parent);
        free(parent);
        goto out;
    }
    if (syscall(SYS_renameat2, opfd, path_basename(norm), npfd, path_basename(to),
                RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST)
            status = reply_err(op, 409, NULL, "File already exists: %s", to);
        else if (errno == EINVAL)
            status = reply_err(op, 400, NULL, "Cannot move %s into itself", norm);
        else
            status = reply_errno(op, errno, norm);
        goto out;
    }
    fsync_dir(npfd);
    if (!S_ISDIR(st.st_mode))
        checkpoint_move(op->root_fd, norm, to);
    status = reply_model(op, to, 200, NULL);
out:
    if (opfd >= 0)
        close(opfd);
    if (npfd >= 0)
        close(npfd);
    free(to);
    return status;
}

static int op_delete(struct op *op, const char *norm)
{
    if (!norm[0])
        return reply_err(op, 400, NULL, "Can't delete root");
    if (path_is_hidden(norm))
        return reply_err(op, 400, NULL, "Cannot delete file or directory '%s'", norm);
    int pfd = open_parent(op->root_fd, norm);
    if (pfd < 0)
        return reply_err(op, 404, NULL, "File or directory does not exist: %s", norm);
    const char *name = path_basename(norm);
    struct stat st;
    int r;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        close(pfd);
        return reply_err(op, 404, NULL, "File or directory does not exist: %s", norm);
    }
    /* to the trash, except the google.colab transfer files (never listed) */
    if (op->req->to_trash && !str_starts_with(norm, ".labbook/")) {
        char id[TRASH_ID_LEN + 1];
        r = trash_put(op->root_fd, norm, id);
        if (r == 0 && op->location) {
            free(*op->location);
            *op->location = xasprintf("/api/drive/trash/%s", id);
        }
        if (r == 0 && !S_ISDIR(st.st_mode))
            checkpoint_move(op->root_fd, norm, NULL);
    } else if (S_ISDIR(st.st_mode)) {
        r = fs_remove_tree(pfd, name, 0);
    } else {
        r = unlinkat(pfd, name, 0) < 0 ? -errno : 0;
        if (r == 0)
            checkpoint_move(op->root_fd, norm, NULL);
    }
    if (r == 0)
        fsync_dir(pfd);
    close(pfd);
    return r < 0 ? reply_errno(op, -r, norm) : 204;
}

int contents_handle(const struct contents_req *req, json_t **out, char **location)
{
    *out = NULL;
    if (location)
        *location = NULL;
    if (sodium_init() < 0)
        return 500;
    struct contents_req r2 = *req;
    if (r2.max_file_size <= 0)
        r2.max_file_size = CONTENTS_DEFAULT_MAX_FILE;
    struct op op = {.req = &r2, .root_fd = -1, .out = out, .location = location};
    char *norm = NULL;
    int status;
    op.root_fd = open(req->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (op.root_fd < 0) {
        status = reply_err(&op, 500, NULL, "The drive is unavailable: %s", strerror(errno));
        goto out;
    }
    int r = fs_path_normalize(req->path ? req->path : "", &norm);
    if (r < 0) {
        status = reply_err(&op, 400, NULL,
                           r == -ENAMETOOLONG ? "Path too long: %s"
                                              : "Invalid path (\".\" and \"..\" are refused): %s",
                           req->path);
        goto out;
    }
    const char *m = req->method ? req->method : "";
    if (req->checkpoint)
        status = op_checkpoints(&op, norm);
    else if (!strcmp(m, "GET"))
        status = op_get(&op, norm);
    else if (!strcmp(m, "PUT"))
        status = op_put(&op, norm);
    else if (!strcmp(m, "POST"))
        status = op_post(&op, norm);
    else if (!strcmp(m, "PATCH"))
        status = op_patch(&op, norm);
    else if (!strcmp(m, "DELETE"))
        status = op_delete(&op, norm);
    else
        status = reply_err(&op, 405, NULL, "Method %s not allowed", m);
out:
    if (status >= 300 && location && *location) {
        free(*location);
        *location = NULL;
    }
    if (status == 204) {
        json_decref(*out);
        *out = NULL;
    }
    if (op.root_fd >= 0)
        close(op.root_fd);
    free(norm);
    return status;
}
