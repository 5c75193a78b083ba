/* Downloads: files streamed straight from the drive with single byte ranges
 * (pread as the socket drains), and folders as zips built by libarchive in bounded
 * slices on the thread pool while the response streams (no temporary copy). */
#include "hub/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"

#define ZIP_SLICE (1024 * 1024)
#define ZIP_READ (256 * 1024)
#define ZIP_DEPTH 128

static int parse_num(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
        if (++n > 18)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    if (n == 0)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

int download_parse_range(const char *header, int64_t size, int64_t *start, int64_t *end)
{
    if (!header || strncmp(header, "bytes=", 6))
        return 0;
    const char *p = header + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return 0; /* several ranges: the whole file instead */
    int64_t a, b;
    if (*p == '-') {
        p++;
        if (parse_num(&p, &b) < 0 || *p)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return 1;
    }
    if (parse_num(&p, &a) < 0 || *p != '-')
        return 0;
    p++;
    if (!*p) {
        b = size - 1;
    } else {
        if (parse_num(&p, &b) < 0 || *p || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *start = a;
    *end = b >= size ? size - 1 : b;
    return 1;
}

char *download_disposition(const char *name)
{
    struct buf b = {0};
    buf_printf(&b, "attachment; filename=\"");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        char c = (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') ? '_' : (char)*p;
        buf_append(&b, &c, 1);
    }
    buf_printf(&b, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p))
            buf_append(&b, p, 1);
        else
            buf_printf(&b, "%%%02X", *p);
    }
    size_t len;
    return buf_steal(&b, &len);
}

const char *download_mime_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/plain; charset=utf-8"},
        {".py", "text/plain; charset=utf-8"},
        {".csv", "text/csv; charset=utf-8"},
        {".json", "application/json"},
        {".ipynb", "application/json"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".tif", "image/tiff"},
        {".tiff", "image/tiff"},
        {".pdf", "application/pdf"},
        {".zip", "application/zip"},
        {".gz", "application/gzip"},
        {".mp4", "video/mp4"},
        {".wav", "audio/wav"},
        {".mp3", "audio/mpeg"},
        {".npy", "application/octet-stream"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        if (str_ends_with(name, types[i].ext))
            return types[i].type;
    /* HTML, SVG and scripts are sent as plain bytes: the drive is not a web site. */
    return "application/octet-stream";
}

/* Hidden paths are not served, except google.colab's files.download() copies below
 * .labbook/downloads/ (docs/colab.md), which the UI fetches through /files/. */
static bool download_path_hidden(const char *norm)
{
    return !str_starts_with(norm, ".labbook/downloads/") && drive_path_hidden(norm);
}

static int open_in_drive(struct hub *h, struct http_req *req, const char *path, int flags,
                         char **norm)
{
    const struct http_req_view *v = http_view(req);
    if (fs_path_normalize(path, norm) < 0)
        return -EINVAL;
    if (download_path_hidden(*norm))
        return -ENOENT;
    char *root = hub_user_drive(h, &v->user);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(root);
    if (rootfd < 0)
        return -errno;
    int fd = fs_open_beneath(rootfd, *norm, flags, 0);
    close(rootfd);
    return fd;
}

/* --- files --- */

struct file_stream {
    int fd;
    int64_t pos, end; /* end exclusive */
};

static ssize_t file_produce(void *ctx, char *buf, size_t cap, bool *last)
{
    struct file_stream *s = ctx;
    if ((int64_t)cap > s->end - s->pos)
        cap = (size_t)(s->end - s->pos);
    ssize_t n = pread(s->fd, buf, cap, s->pos);
    if (n <= 0)
        return n < 0 ? -errno : -EIO; /* the file shrank: cut the response off */
    s->pos += n;
    *last = s->pos >= s->end;
    return n;
}

static void file_close(void *ctx)
{
    struct file_stream *s = ctx;
    close(s->fd);
    free(s);
}

static const struct http_stream_ops file_ops = {file_produce, file_close};

static void http_time(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void download_file(struct hub *h, struct http_req *req, const char *path)
{
    const struct http_req_view *v = http_view(req);
    if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    char *norm = NULL;
    int fd = open_in_drive(h, req, path, O_RDONLY | O_NONBLOCK, &norm);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        http_reply_error(req, 404, "No such file: %s", norm ? norm : path);
        free(norm);
        return;
    }
    const char *base = strrchr(norm, '/') ? strrchr(norm, '/') + 1 : norm;
    char etag[64], lm[40];
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    http_time(st.st_mtime, lm);
    http_add_header(req, "etag:", etag);
    http_add_header(req, "last-modified:", lm);
    http_add_header(req, "accept-ranges:", "bytes");
    http_add_header(req, "x-content-type-options:", "nosniff");
    http_add_header(req, "content-security-policy:", "sandbox");
    const char *dl = http_query(req, "download");
    if (dl && strcmp(dl, "0") && strcmp(dl, "false")) {
        char *cd = download_disposition(base);
        http_add_header(req, "content-disposition:", cd);
        free(cd);
    }
    int64_t start = 0, end = st.st_size - 1;
    int status = 200;
    const char *range = http_header(req, "range:");
    const char *if_range = http_header(req, "if-range:");
    if (range && if_range && strcmp(if_range, etag) && strcmp(if_range, lm))
        range = NULL; /* the file changed since the client's copy: send it whole */
    int rr = download_parse_range(range, st.st_size, &start, &end);
    if (rr < 0) {
        char cr[64];
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)st.st_size);
        http_add_header(req, "content-range:", cr);
        close(fd);
        free(norm);
        http_reply_error(req, 416, "Range Not Satisfiable");
        return;
    }
    if (rr > 0) {
        char cr[96];
        snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)start, (long long)end,
                 (long long)st.st_size);
        http_add_header(req, "content-range:", cr);
        status = 206;
    }
    struct file_stream *s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->pos = start;
    s->end = end + 1;
    http_reply_stream(req, status, download_mime_of(base), s->end - s->pos, &file_ops, s);
    free(norm);
}

/* --- folders as zip --- */

struct zip_dir {
    DIR *d;
    char *prefix; /* "folder/sub/" */
};

struct zip_stream {
    struct http_req *req; /* NULL once the client is gone */
    struct hub *h;
    uv_work_t work;
    bool in_work, finished, abandoned;
    int err;
    struct archive *a;
    struct zip_dir stack[ZIP_DEPTH];
    int depth;
    int cur_fd;
    int64_t remaining;
    char *rbuf;
    struct buf out;
    size_t out_off;
    int64_t files;
};

static la_ssize_t zip_write_cb(struct archive *a, void *ctx, const void *data, size_t n)
{
    (void)a;
    struct zip_stream *z = ctx;
    buf_append(&z->out, data, n);
    return (la_ssize_t)n;
}

static int zip_next_entry(struct zip_stream *z)
{
    struct zip_dir *top = &z->stack[z->depth - 1];
    struct dirent *e = readdir(top->d);
    if (!e) {
        closedir(top->d);
        free(top->prefix);
        z->depth--;
        if (z->depth == 0) {
            archive_write_close(z->a);
            z->finished = true;
        }
        return 0;
    }
    if (e->d_name[0] == '.')
        return 0; /* hidden names, as in the file browser */
    int dfd = dirfd(top->d);
    struct stat st;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    /* Zip names are UTF-8: a name on disk that is not gets U+FFFD for its bad bytes. */
    char *fixed = utf8_lossy(e->d_name, strlen(e->d_name), NULL);
    char *name = xasprintf("%s%s", top->prefix, fixed);
    free(fixed);
    struct archive_entry *ent = archive_entry_new();
    archive_entry_set_pathname_utf8(ent, name);
    archive_entry_set_mtime(ent, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int rc = 0;
    if (S_ISDIR(st.st_mode) && z->depth < ZIP_DEPTH) {
        int fd = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *sub = fd >= 0 ? fdopendir(fd) : NULL;
        if (!sub) {
            if (fd >= 0)
                close(fd);
            goto out;
        }
        archive_entry_set_filetype(ent, AE_IFDIR);
        archive_entry_set_perm(ent, 0755);
        if (archive_write_header(z->a, ent) != ARCHIVE_OK)
            rc = -EIO;
        z->stack[z->depth].d = sub;
        z->stack[z->depth].prefix = xasprintf("%s/", name);
        z->depth++;
    } else if (S_ISREG(st.st_mode)) {
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            goto out;
        archive_entry_set_filetype(ent, AE_IFREG);
        archive_entry_set_perm(ent, st.st_mode & 0100 ? 0755 : 0644);
        archive_entry_set_size(ent, st.st_size);
        if (archive_write_header(z->a, ent) != ARCHIVE_OK) {
            close(fd);
            rc = -EIO;
            goto out;
        }
        z->cur_fd = fd;
        z->remaining = st.st_size;
        z->files++;
    }
out:
    archive_entry_free(ent);
    free(name);
    return rc;
}

static void zip_slice(uv_work_t *w)
{
    struct zip_stream *z = w->data;
    locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    while (z->out.len < ZIP_SLICE && !z->finished && !z->err && !z->abandoned) {
        if (z->cur_fd >= 0) {
            ssize_t n = 0;
            if (z->remaining > 0) {
                size_t want = z->remaining < ZIP_READ ? (size_t)z->remaining : ZIP_READ;
                n = read(z->cur_fd, z->rbuf, want);
                if (n <= 0) { /* the file shrank: pad it to the size announced */
                    n = (ssize_t)want;
                    memset(z->rbuf, 0, want);
                }
                if (archive_write_data(z->a, z->rbuf, (size_t)n) < 0) {
                    z->err = -EIO;
                    break;
                }
                z->remaining -= n;
            }
            if (z->remaining == 0) {
                archive_write_finish_entry(z->a);
                close(z->cur_fd);
                z->cur_fd = -1;
            }
        } else if (zip_next_entry(z) < 0) {
            z->err = -EIO;
        }
    }
    if (loc) {
        uselocale(old);
        freelocale(loc);
    }
}

static void zip_free(struct zip_stream *z)
{
    while (z->depth > 0) {
        z->depth--;
        closedir(z->stack[z->depth].d);
        free(z->stack[z->depth].prefix);
    }
    if (z->cur_fd >= 0)
        close(z->cur_fd);
    if (z->a)
        archive_write_free(z->a);
    buf_free(&z->out);
    free(z->rbuf);
    free(z);
}

static void zip_slice_done(uv_work_t *w, int status)
{
    (void)status;
    struct zip_stream *z = w->data;
    z->in_work = false;
    if (z->abandoned) {
        zip_free(z);
        return;
    }
    if (z->req)
        http_stream_wake(z->req);
}

static ssize_t zip_produce(void *ctx, char *buf, size_t cap, bool *last)
{
    struct zip_stream *z = ctx;
    if (z->in_work)
        return 0;
    if (z->out_off < z->out.len) {
        size_t n = z->out.len - z->out_off;
        if (n > cap)
            n = cap;
        memcpy(buf, z->out.data + z->out_off, n);
        z->out_off += n;
        if (z->out_off == z->out.len) {
            buf_reset(&z->out);
            z->out_off = 0;
            *last = z->finished;
        }
        return (ssize_t)n;
    }
    if (z->err)
        return z->err;
    if (z->finished) {
        *last = true;
        return 0;
    }
    z->in_work = true;
    if (uv_queue_work(z->h->loop, &z->work, zip_slice, zip_slice_done) < 0) {
        z->in_work = false;
        return -EIO;
    }
    return 0;
}

static void zip_close(void *ctx)
{
    struct zip_stream *z = ctx;
    z->req = NULL;
    if (z->in_work)
        z->abandoned = true; /* freed when the slice comes back */
    else
        zip_free(z);
}

static const struct http_stream_ops zip_ops = {zip_produce, zip_close};

void download_zip(struct hub *h, struct http_req *req, const char *path)
{
    const struct http_req_view *v = http_view(req);
    if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    char *norm = NULL;
    int fd = open_in_drive(h, req, path, O_RDONLY | O_DIRECTORY, &norm);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        http_reply_error(req, 404, "No such folder: %s", norm ? norm : path);
        free(norm);
        return;
    }
    const char *base = strrchr(norm, '/') ? strrchr(norm, '/') + 1 : norm;
    if (!base[0])
        base = "drive";
    const char *comp = http_query(req, "compression");
    bool store = comp && !strcmp(comp, "store");
    struct zip_stream *z = xcalloc(1, sizeof(*z));
    z->req = req;
    z->h = h;
    z->work.data = z;
    z->cur_fd = -1;
    z->rbuf = xmalloc(ZIP_READ);
    z->stack[0].d = d;
    z->stack[0].prefix = xasprintf("%s/", base);
    z->depth = 1;
    z->a = archive_write_new();
    archive_write_set_format_zip(z->a);
    archive_write_set_options(z->a, store ? "zip:compression=store" : "zip:compression=deflate");
    archive_write_set_bytes_per_block(z->a, 0);
    if (archive_write_open2(z->a, z, NULL, zip_write_cb, NULL, NULL) != ARCHIVE_OK) {
        zip_free(z);
        free(norm);
        http_reply_error(req, 500, "cannot start the zip");
        return;
    }
    char *zipname = xasprintf("%s.zip", base);
    char *cd = download_disposition(zipname);
    http_add_header(req, "content-disposition:", cd);
    free(cd);
    free(zipname);
    free(norm);
    http_reply_stream(req, 200, "application/zip", -1, &zip_ops, z);
}
