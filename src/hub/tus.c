/* tus 1.0 uploads: the protocol's headers, upload records on disk, PATCH bodies
 * written to the upload's part file as they arrive (on the loop: page-cache writes),
 * and the completion on the thread pool: fsync, then one rename into the drive (or
 * an extraction). */
#include "hub/tus.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/base64.h"
#include "common/fsat.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/extract.h"
#include "hub/http.h"
#include "hub/hub.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,creation-with-upload,termination,expiration,checksum"
#define MAX_METADATA 4096
#define FLUSH_EVERY (8 << 20)
#define TUS_KEEP_DONE 64 /* completed uploads whose records a user keeps (for HEAD) */

/* --- parsers --- */

int tus_parse_size(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return -EINVAL;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int tus_metadata_get(const char *header, const char *key, char **out)
{
    size_t klen = strlen(key);
    const char *p = header;
    if (strlen(header) > MAX_METADATA)
        return -EINVAL;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *kend = sp ? sp : end;
        if (kend == p)
            return -EINVAL; /* an empty key */
        if ((size_t)(kend - p) == klen && !memcmp(p, key, klen)) {
            const char *val = sp ? sp + 1 : end;
            size_t vlen = (size_t)(end - val);
            while (vlen && val[vlen - 1] == ' ')
                vlen--;
            uint8_t *dec = xmalloc(base64_decoded_max(vlen) + 1);
            size_t dlen = 0;
            if (base64_decode(val, vlen, dec, &dlen) < 0 || memchr(dec, '\0', dlen)) {
                free(dec);
                return -EINVAL;
            }
            dec[dlen] = '\0';
            *out = (char *)dec;
            return 0;
        }
        p = *end ? end + 1 : end;
    }
    return -ENOENT;
}

int tus_parse_checksum(const char *header, enum tus_algo *algo, unsigned char digest[32],
                       size_t *len)
{
    const char *sp = strchr(header, ' ');
    if (!sp || sp == header)
        return -EINVAL;
    size_t want;
    if ((size_t)(sp - header) == 4 && !memcmp(header, "sha1", 4)) {
        *algo = TUS_SHA1;
        want = 20;
    } else if ((size_t)(sp - header) == 6 && !memcmp(header, "sha256", 6)) {
        *algo = TUS_SHA256;
        want = 32;
    } else {
        return -ENOTSUP;
    }
    const char *b = sp + 1;
    size_t blen = strlen(b);
    if (blen == 0 || blen > 64)
        return -EINVAL;
    uint8_t tmp[64];
    size_t dlen = 0;
    if (base64_decode(b, blen, tmp, &dlen) < 0 || dlen != want)
        return -EINVAL;
    memcpy(digest, tmp, want);
    *len = want;
    return 0;
}

bool tus_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= NAME_MAX && name[0] != '.' && !strchr(name, '/');
}

/* --- upload records --- */

/* One PATCH (or creation-with-upload) in progress: owned by the loop. */
struct tus_active {
    struct tus_active *next;
    struct hub *h;
    struct user user;
    char id[33];
    char *dir; /* DATA/uploads/<user> */
    int fd;
    int64_t start, offset, length;
    int64_t flushed; /* written back up to here (sync_file_range) */
    bool creating;
    bool head;    /* completion started by a HEAD: it answers 200 */
    bool partial; /* not all there yet: only fdatasync, no completion */
    int err;
    EVP_MD_CTX *md;
    unsigned char want[32];
    size_t want_len;
    json_t *rec;
    /* completion */
    uv_work_t work;
    struct http_pending *p;
    int status;
    char *message;
    char *extract_to;
    int extract_fd;
};

static char *user_dir(struct hub *h, const struct user *u)
{
    char *d = xasprintf("%s/%s", h->drive->uploads_dir, u->name);
    mkdir_p(d, 0700);
    return d;
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static void http_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Whether the record is of an upload already completed (kept so that a HEAD after a
 * restart still answers its full offset). */
static bool rec_done(const json_t *rec)
{
    return json_is_true(json_object_get(rec, "done"));
}

/* Loads <id>.json and stats <id>.part (for a completed upload, whose part may be gone,
 * the record: its size reads as the upload's length); an expired upload is deleted and
 * reads as missing. Returns 0 or -ENOENT. */
static int rec_load(struct hub *h, const char *dir, const char *id, json_t **rec, struct stat *part)
{
    char *jp = xasprintf("%s/%s.json", dir, id), *pp = xasprintf("%s/%s.part", dir, id);
    char *text = NULL;
    size_t len;
    int r = -ENOENT;
    if (read_file(jp, 1 << 20, &text, &len) < 0)
        goto out;
    *rec = json_loadb(text, len, 0, NULL);
    if (!json_is_object(*rec)) {
        json_decref(*rec);
        goto out;
    }
    bool done = rec_done(*rec);
    if (done ? stat(jp, part) < 0 : stat(pp, part) < 0) {
        json_decref(*rec);
        goto out;
    }
    if (done)
        part->st_size = json_integer_value(json_object_get(*rec, "length"));
    if (part->st_mtime + h->cfg.upload_expire_s < time(NULL)) {
        json_decref(*rec);
        unlink(pp);
        unlink(jp);
        goto out;
    }
    r = 0;
out:
    free(text);
    free(jp);
    free(pp);
    return r;
}

static void rec_delete(const char *dir, const char *id)
{
    char *jp = xasprintf("%s/%s.json", dir, id), *pp = xasprintf("%s/%s.part", dir, id);
    unlink(pp);
    unlink(jp);
    free(jp);
    free(pp);
}

static struct tus_active *active_find(struct hub *h, const char *user, const char *id)
{
    for (struct tus_active *a = h->drive->uploads; a; a = a->next)
        if (!strcmp(a->id, id) && !strcmp(a->user.name, user))
            return a;
    return NULL;
}

static void active_free(struct tus_active *a)
{
    struct tus_active **pp = &a->h->drive->uploads;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp)
        *pp = a->next;
    if (a->fd >= 0)
        close(a->fd);
    if (a->extract_fd >= 0)
        close(a->extract_fd);
    EVP_MD_CTX_free(a->md);
    json_decref(a->rec);
    free(a->dir);
    free(a->message);
    free(a->extract_to);
    free(a);
}

static void tus_headers(struct http_req *req)
{
    http_add_header(req, "tus-resumable:", TUS_VERSION);
}

static void reply_tus_error(struct http_req *req, int status, const char *reason, const char *msg)
{
    tus_headers(req);
    http_reply_json(req, status, http_error_body(msg, reason));
}

/* --- creation --- */

struct create_job {
    uv_work_t work;
    struct hub *h;
    struct http_pending *p;
    struct user user;
    char *dir, *root;
    int64_t length;
    json_t *rec;
    char id[33];
    int status;
    char *message;
    const char *reason;
};

/* A completed upload's record, while the user's records are counted. */
struct done_rec {
    char id[33];
    time_t mtime;
};

static int done_cmp(const void *a, const void *b)
{
    time_t x = ((const struct done_rec *)a)->mtime, y = ((const struct done_rec *)b)->mtime;
    return x < y ? -1 : x > y;
}

/* Counts the user's unfinished uploads (deleting expired ones) and the bytes they
 * have reserved, checks the caps and the quota, and creates the record. Blocking. */
static void create_blocking(struct create_job *j)
{
    struct hub *h = j->h;
    DIR *d = opendir(j->dir);
    struct done_rec *done = NULL;
    size_t ndone = 0;
    int count = 0;
    int64_t reserved = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n != 37 || strcmp(e->d_name + 32, ".json"))
                continue;
            char id[33];
            memcpy(id, e->d_name, 32);
            id[32] = '\0';
            json_t *rec;
            struct stat st;
            if (rec_load(h, j->dir, id, &rec, &st) < 0)
                continue;
            if (rec_done(rec)) {
                /* kept for HEAD; the oldest beyond TUS_KEEP_DONE go */
                done = xrealloc(done, (ndone + 1) * sizeof(*done));
                memcpy(done[ndone].id, id, sizeof(id));
                done[ndone].mtime = st.st_mtime;
                ndone++;
                json_decref(rec);
                continue;
            }
            count++;
            reserved += json_integer_value(json_object_get(rec, "length")) - st.st_size;
            json_decref(rec);
        }
        closedir(d);
    }
    if (ndone > TUS_KEEP_DONE) {
        qsort(done, ndone, sizeof(*done), done_cmp);
        for (size_t i = 0; i < ndone - TUS_KEEP_DONE; i++) {
            char *jp = xasprintf("%s/%s.json", j->dir, done[i].id);
            unlink(jp);
            free(jp);
        }
    }
    free(done);
    if (count >= h->cfg.uploads_per_user) {
        j->status = 429;
        j->message = xasprintf("too many unfinished uploads (limit %d): finish or delete one",
                               h->cfg.uploads_per_user);
        return;
    }
    if (h->cfg.drive_quota > 0) {
        int64_t used = 0;
        drive_usage(h->drive, j->user.name, j->root, &used);
        int64_t free_b = h->cfg.drive_quota - used - reserved;
        if (free_b < 0)
            free_b = 0;
        if (j->length > free_b) {
            char f[32], q[32], n[32];
            drive_human(free_b, f);
            drive_human(h->cfg.drive_quota, q);
            drive_human(j->length, n);
            j->status = 413;
            j->reason = "quota";
            j->message = xasprintf("not enough space in your drive: %s free of your %s quota, "
                                   "the upload needs %s",
                                   f, q, n);
            return;
        }
    }
    unsigned char raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(j->id, sizeof(j->id), raw, sizeof(raw));
    char *pp = xasprintf("%s/%s.part", j->dir, j->id), *jp = xasprintf("%s/%s.json", j->dir, j->id);
    int fd = open(pp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    char *text = json_dumps(j->rec, JSON_COMPACT);
    int r = fd < 0 ? -errno : write_file_atomic(jp, text, strlen(text), 0600);
    if (r < 0) {
        /* A full disk is the server's state, not a fault: 507, as for a full write. */
        j->status = r == -ENOSPC || r == -EDQUOT ? 507 : 500;
        j->message = xasprintf("cannot create the upload: %s", strerror(-r));
        unlink(pp);
    } else {
        j->status = 201;
    }
    if (fd >= 0)
        close(fd);
    free(text);
    free(pp);
    free(jp);
}

static void created_headers(struct hub *h, struct http_req *req, const char *id)
{
    char *loc = xasprintf("/api/uploads/%s", id);
    http_add_header(req, "location:", loc);
    free(loc);
    char date[40];
    http_date(time(NULL) + h->cfg.upload_expire_s, date);
    http_add_header(req, "upload-expires:", date);
    tus_headers(req);
}

static void create_work(uv_work_t *w)
{
    create_blocking(w->data);
}

static void create_job_free(struct create_job *j)
{
    json_decref(j->rec);
    free(j->dir);
    free(j->root);
    free(j->message);
    free(j);
}

static void create_done(uv_work_t *w, int status)
{
    (void)status;
    struct create_job *j = w->data;
    struct http_req *req = http_pending_req(j->p);
    if (req && j->status == 201) {
        created_headers(j->h, req, j->id);
        http_add_header(req, "upload-offset:", "0");
        http_pending_reply_raw(j->p, 201, NULL, NULL, 0, NULL);
    } else if (req) {
        tus_headers(req);
        http_pending_reply_json(j->p, j->status, http_error_body(j->message, j->reason));
    } else {
        http_pending_reply_raw(j->p, 500, NULL, NULL, 0, NULL);
    }
    create_job_free(j);
}

static void patch_begin(struct hub *h, struct http_req *req, char *dir, const char *id,
                        int64_t claimed, bool creating);

static void op_create(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    if (http_header(req, "upload-defer-length:")) {
        reply_tus_error(req, 400, NULL, "Upload-Defer-Length is not supported: give Upload-Length");
        return;
    }
    int64_t length;
    if (tus_parse_size(http_header(req, "upload-length:"), &length) < 0) {
        reply_tus_error(req, 400, NULL, "Upload-Length missing or not a size");
        return;
    }
    if (length > h->cfg.upload_max) {
        char m[32];
        drive_human(h->cfg.upload_max, m);
        char *msg = xasprintf("the upload is larger than the largest allowed (%s)", m);
        reply_tus_error(req, 413, "max_upload_mb", msg);
        free(msg);
        return;
    }
    const char *md = http_header(req, "upload-metadata:");
    char *filename = NULL, *path = NULL, *extract = NULL;
    if (md && !utf8_valid_str(md)) { /* it is kept in the upload's JSON record */
        reply_tus_error(req, 400, NULL, "Upload-Metadata is not UTF-8");
        return;
    }
    if (!md || tus_metadata_get(md, "filename", &filename) < 0 || !tus_name_ok(filename)) {
        free(filename);
        reply_tus_error(req, 400, NULL,
                        "Upload-Metadata needs a filename: one name, not hidden, no '/'");
        return;
    }
    if (!utf8_valid_str(filename)) {
        free(filename);
        reply_tus_error(req, 400, NULL, "Upload-Metadata filename is not UTF-8");
        return;
    }
    char *norm = NULL;
    int r = tus_metadata_get(md, "path", &path);
    if (r == 0 && !utf8_valid_str(path)) {
        free(filename);
        free(path);
        reply_tus_error(req, 400, NULL, "Upload-Metadata path is not UTF-8");
        return;
    }
    if (r == -EINVAL || (r == 0 && fs_path_normalize(path, &norm) < 0) ||
        (norm && drive_path_hidden(norm))) {
        free(filename);
        free(path);
        free(norm);
        reply_tus_error(req, 400, NULL, "Upload-Metadata path is not a folder path in the drive");
        return;
    }
    bool ex = false;
    if (tus_metadata_get(md, "extract", &extract) == 0)
        ex = !strcmp(extract, "1") || !strcmp(extract, "true");
    struct create_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->user = v->user;
    j->dir = user_dir(h, &v->user);
    j->root = hub_user_drive(h, &v->user);
    j->length = length;
    j->rec = json_pack("{s:I, s:s, s:s, s:b, s:s}", "length", (json_int_t)length, "filename",
                       filename, "path", norm ? norm : "", "extract", ex, "metadata", md);
    free(filename);
    free(path);
    free(norm);
    free(extract);
    int64_t cl = http_content_length(req);
    if (cl <= 0) {
        j->p = http_defer(req);
        if (uv_queue_work(h->loop, &j->work, create_work, create_done) < 0) {
            create_work(&j->work);
            create_done(&j->work, 0);
        }
        return;
    }
    /* creation-with-upload: the body follows, so the record is made now, on the loop
     * (a few small files; the usage figure is usually cached). */
    const char *ct = http_header(req, "content-type:");
    if (!ct || strcmp(ct, "application/offset+octet-stream")) {
        create_job_free(j);
        reply_tus_error(req, 415, NULL, "Content-Type must be application/offset+octet-stream");
        return;
    }
    create_blocking(j);
    if (j->status != 201) {
        reply_tus_error(req, j->status, j->reason, j->message);
        create_job_free(j);
        return;
    }
    char *dir = j->dir;
    j->dir = NULL;
    patch_begin(h, req, dir, j->id, 0, true);
    create_job_free(j);
}

/* --- PATCH --- */

static void finish_work(uv_work_t *w)
{
    struct tus_active *a = w->data;
    struct hub *h = a->h;
    if (fdatasync(a->fd) < 0) {
        a->status = 500;
        a->message = xasprintf("cannot save the upload: %s", strerror(errno));
        return;
    }
    if (a->partial) {
        a->status = 204;
        return;
    }
    const char *filename = json_string_value(json_object_get(a->rec, "filename"));
    const char *path = json_string_value(json_object_get(a->rec, "path"));
    bool ex = json_is_true(json_object_get(a->rec, "extract"));
    char *root = hub_user_drive(h, &a->user);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(root);
    int destfd = rootfd < 0 ? -errno : drive_mkdirs(rootfd, path ? path : "");
    if (rootfd >= 0)
        close(rootfd);
    if (destfd < 0) {
        a->status = 409;
        a->message =
            xasprintf("cannot make the folder \"%s\" in the drive: %s", path, strerror(-destfd));
        return;
    }
    char part[64];
    snprintf(part, sizeof(part), "%s.part", a->id);
    int dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ex) {
        /* The archive is read through our fd; its file leaves the uploads folder. */
        close(destfd);
        a->extract_fd = dirfd < 0 ? -1 : openat(dirfd, part, O_RDONLY | O_CLOEXEC);
        if (a->extract_fd < 0) {
            a->status = 500;
            a->message = xasprintf("cannot reopen the upload: %s", strerror(errno));
            goto out;
        }
        a->extract_to = xstrdup(path ? path : "");
        a->status = 204;
    } else {
        struct stat old;
        int64_t replaced = 0;
        if (fstatat(destfd, filename, &old, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(old.st_mode)) {
                a->status = 409;
                a->message = xasprintf("a folder named \"%s\" is in the way", filename);
                goto out;
            }
            if (S_ISREG(old.st_mode))
                replaced = old.st_size;
        }
        fchmod(a->fd, 0644);
        if (renameat(dirfd, part, destfd, filename) < 0) {
            a->status = 500;
            a->message = xasprintf("cannot move the upload into the drive: %s", strerror(errno));
            goto out;
        }
        fsync(destfd);
        drive_usage_add(h->drive, a->user.name, a->length - replaced);
        a->status = 204;
    }
    /* The record stays, marked done: a HEAD after a restart (the client never got
     * this answer) reports the whole upload instead of 404, and it is not completed
     * twice. With extract, the part stays too, until the extraction ends. */
    json_object_set_new(a->rec, "done", json_true());
    char *text = json_dumps(a->rec, JSON_COMPACT);
    char *jp = xasprintf("%s/%s.json", a->dir, a->id);
    if (write_file_atomic(jp, text, strlen(text), 0600) < 0)
        unlink(jp);
    free(jp);
    free(text);
out:
    if (dirfd >= 0)
        close(dirfd);
    if (destfd >= 0 && !ex)
        close(destfd);
}

static void finish_done(uv_work_t *w, int status)
{
    (void)status;
    struct tus_active *a = w->data;
    struct http_req *req = a->p ? http_pending_req(a->p) : NULL;
    char idbuf[64] = "";
    if (a->status == 204 && a->extract_to) {
        char *err = NULL;
        const char *fname = json_string_value(json_object_get(a->rec, "filename"));
        struct extract_upload up = {.dir = a->dir,
                                    .id = a->id,
                                    .path = a->extract_to,
                                    .filename = fname ? fname : "archive"};
        int r = extract_start(a->h, &a->user, a->extract_fd, a->extract_to, &up, idbuf, &err);
        a->extract_fd = -1; /* owned by the extraction now */
        if (r < 0) {        /* the archive is not kept: the client is told to send it again */
            char *pp = xasprintf("%s/%s.part", a->dir, a->id);
            unlink(pp);
            free(pp);
            a->status = r == -EAGAIN ? 429 : 500;
            free(a->message);
            a->message = err;
        }
    }
    if (a->status != 204) {
        char q[600];
        log_warn("upload %s of %s not completed: %s", a->id, a->user.name,
                 log_quote(a->message ? a->message : "", q, sizeof(q)));
    }
    if (!a->p) {
        /* completed after the client left: nobody to answer */
    } else if (!req) {
        http_pending_reply_raw(a->p, 500, NULL, NULL, 0, NULL);
    } else if (a->status == 204) {
        if (!a->head) /* op_head has added it */
            tus_headers(req);
        char off[32];
        snprintf(off, sizeof(off), "%lld", (long long)a->offset);
        http_add_header(req, "upload-offset:", off);
        if (a->head) {
            snprintf(off, sizeof(off), "%lld", (long long)a->length);
            http_add_header(req, "upload-length:", off);
        }
        if (idbuf[0])
            http_add_header(req, "labbook-extract-id:", idbuf);
        if (a->creating)
            created_headers(a->h, req, a->id);
        http_pending_reply_raw(a->p, a->head ? 200 : a->creating ? 201 : 204, NULL, NULL, 0, NULL);
    } else {
        if (!a->head) /* op_head has added it */
            tus_headers(req);
        http_pending_reply_json(a->p, a->status, http_error_body(a->message, NULL));
    }
    active_free(a);
}

/* Completes an upload whose bytes have all arrived: fdatasync and rename (or
 * extraction) on the thread pool, then the answer to req (none when NULL). */
static void finish_start(struct tus_active *a, struct http_req *req)
{
    a->p = req ? http_defer(req) : NULL;
    a->work.data = a;
    if (uv_queue_work(a->h->loop, &a->work, finish_work, finish_done) < 0) {
        finish_work(&a->work);
        finish_done(&a->work, 0);
    }
}

static int patch_chunk(void *ctx, const char *data, size_t len)
{
    struct tus_active *a = ctx;
    if ((int64_t)len > a->length - a->offset) {
        a->err = -EFBIG;
        return -EFBIG;
    }
    int r = write_all(a->fd, data, len);
    if (r < 0) {
        a->err = r;
        return r;
    }
    if (a->md)
        EVP_DigestUpdate(a->md, data, len);
    a->offset += (int64_t)len;
    if (a->offset - a->flushed >= FLUSH_EVERY) {
        /* Start writing back what has arrived (it does not wait), so that the disk
         * works while the network does and the final fdatasync has little left. */
        sync_file_range(a->fd, a->flushed, a->offset - a->flushed, SYNC_FILE_RANGE_WRITE);
        a->flushed = a->offset;
    }
    return 0;
}

static void patch_end(void *ctx, struct http_req *req)
{
    struct tus_active *a = ctx;
    bool mismatch = false;
    if (a->md && req && !a->err) {
        unsigned char got[EVP_MAX_MD_SIZE];
        unsigned int glen = 0;
        EVP_DigestFinal_ex(a->md, got, &glen);
        mismatch = glen != a->want_len || memcmp(got, a->want, glen);
    }
    /* What arrived stays, unless it cannot be checked (a checksum and a dropped
     * connection), failed its check, or a write failed part way. */
    if ((a->md && (!req || mismatch)) || a->err) {
        int64_t keep = a->err ? a->offset : a->start;
        if (ftruncate(a->fd, keep) == 0)
            a->offset = keep;
    }
    if (!req) {
        char q[300];
        log_info("upload %s of %s: connection dropped at offset %lld",
                 log_quote(a->id, q, sizeof(q)), a->user.name, (long long)a->offset);
        if (a->err) {
            active_free(a);
        } else {
            /* What arrived is made durable, so that the offset the next HEAD
             * reports survives a crash; every byte in: complete it all the same. */
            a->partial = a->offset != a->length;
            finish_start(a, NULL);
        }
        return;
    }
    if (mismatch || a->err) {
        char off[32];
        snprintf(off, sizeof(off), "%lld", (long long)a->offset);
        tus_headers(req);
        http_add_header(req, "upload-offset:", off);
        if (mismatch)
            http_reply_json(req, 460, http_error_body("Checksum Mismatch", "checksum"));
        else if (a->err == -EFBIG)
            http_reply_json(req, 413, http_error_body("the body goes past Upload-Length", NULL));
        else
            http_reply_json(req, a->err == -ENOSPC || a->err == -EDQUOT ? 507 : 500,
                            http_error_body("cannot write the upload", strerror(-a->err)));
        active_free(a);
        return;
    }
    /* The offset is answered once what arrived is on disk (fdatasync), and the
     * upload completed when every byte is in: both on the thread pool. Until then
     * the upload stays busy (423 to another PATCH). */
    a->partial = a->offset != a->length;
    finish_start(a, req);
}

static const struct http_body_sink patch_sink = {patch_chunk, patch_end};

/* Validates a PATCH (or creation-with-upload) against the upload's state and takes
 * its body. dir is handed over. */
static void patch_begin(struct hub *h, struct http_req *req, char *dir, const char *id,
                        int64_t claimed, bool creating)
{
    const struct http_req_view *v = http_view(req);
    json_t *rec = NULL;
    struct stat st;
    if (active_find(h, v->user.name, id)) {
        free(dir);
        reply_tus_error(req, 423, NULL, "this upload is already receiving data");
        return;
    }
    if (rec_load(h, dir, id, &rec, &st) < 0) {
        free(dir);
        reply_tus_error(req, 404, NULL, "no such upload");
        return;
    }
    if (rec_done(rec)) {
        /* Completed already (its answer lost to a restart): nothing more to take. */
        char off[32];
        snprintf(off, sizeof(off), "%lld", (long long)st.st_size);
        http_add_header(req, "upload-offset:", off);
        json_decref(rec);
        free(dir);
        if (claimed == st.st_size && http_content_length(req) <= 0) {
            tus_headers(req);
            http_reply_empty(req, 204);
        } else {
            reply_tus_error(req, 409, NULL, "this upload is complete");
        }
        return;
    }
    struct tus_active *a = xcalloc(1, sizeof(*a));
    a->h = h;
    a->user = v->user;
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->dir = dir;
    a->rec = rec;
    a->fd = -1;
    a->extract_fd = -1;
    a->creating = creating;
    a->length = json_integer_value(json_object_get(rec, "length"));
    a->start = a->offset = a->flushed = st.st_size;
    a->next = h->drive->uploads;
    h->drive->uploads = a;
    char off[32];
    snprintf(off, sizeof(off), "%lld", (long long)st.st_size);
    if (claimed != st.st_size) {
        char *m = xasprintf("Upload-Offset %lld is not the upload's offset, %lld",
                            (long long)claimed, (long long)st.st_size);
        http_add_header(req, "upload-offset:", off);
        reply_tus_error(req, 409, NULL, m);
        free(m);
        active_free(a);
        return;
    }
    int64_t cl = http_content_length(req);
    if (cl > a->length - a->offset) {
        reply_tus_error(req, 413, NULL, "the body goes past Upload-Length");
        active_free(a);
        return;
    }
    const char *ck = http_header(req, "upload-checksum:");
    if (ck) {
        enum tus_algo algo;
        int r = tus_parse_checksum(ck, &algo, a->want, &a->want_len);
        if (r < 0) {
            reply_tus_error(req, 400, NULL,
                            r == -ENOTSUP ? "checksum algorithm not supported (sha1, sha256)"
                                          : "malformed Upload-Checksum");
            active_free(a);
            return;
        }
        a->md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(a->md, algo == TUS_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
    }
    char *pp = xasprintf("%s/%s.part", dir, id);
    a->fd = open(pp, O_WRONLY | O_CLOEXEC);
    free(pp);
    if (a->fd < 0 || lseek(a->fd, a->offset, SEEK_SET) < 0) {
        reply_tus_error(req, 500, NULL, "cannot open the upload");
        active_free(a);
        return;
    }
    http_take_body(req, &patch_sink, a);
}

static void op_patch(struct hub *h, struct http_req *req, const char *id)
{
    const struct http_req_view *v = http_view(req);
    const char *ct = http_header(req, "content-type:");
    if (!ct || strcmp(ct, "application/offset+octet-stream")) {
        reply_tus_error(req, 415, NULL, "Content-Type must be application/offset+octet-stream");
        return;
    }
    int64_t claimed;
    if (tus_parse_size(http_header(req, "upload-offset:"), &claimed) < 0) {
        reply_tus_error(req, 400, NULL, "Upload-Offset missing or not a size");
        return;
    }
    patch_begin(h, req, user_dir(h, &v->user), id, claimed, false);
}

static void op_head(struct hub *h, struct http_req *req, const char *id)
{
    const struct http_req_view *v = http_view(req);
    char *dir = user_dir(h, &v->user);
    json_t *rec;
    struct stat st;
    tus_headers(req);
    if (rec_load(h, dir, id, &rec, &st) < 0) {
        free(dir);
        http_reply_empty(req, 404);
        return;
    }
    int64_t length = json_integer_value(json_object_get(rec, "length"));
    if (st.st_size == length && !rec_done(rec) && !active_find(h, v->user.name, id)) {
        /* All there but never completed (the hub stopped in between): complete it
         * now, so that a client that trusts this HEAD finds its file. */
        char *pp = xasprintf("%s/%s.part", dir, id);
        int fd = open(pp, O_RDONLY | O_CLOEXEC);
        free(pp);
        if (fd >= 0) {
            struct tus_active *a = xcalloc(1, sizeof(*a));
            a->h = h;
            a->user = v->user;
            snprintf(a->id, sizeof(a->id), "%s", id);
            a->dir = dir;
            a->rec = rec;
            a->fd = fd;
            a->extract_fd = -1;
            a->head = true;
            a->length = a->offset = a->start = a->flushed = length;
            a->next = h->drive->uploads;
            h->drive->uploads = a;
            finish_start(a, req);
            return;
        }
    }
    char buf[40];
    snprintf(buf, sizeof(buf), "%lld", (long long)st.st_size);
    http_add_header(req, "upload-offset:", buf);
    snprintf(buf, sizeof(buf), "%lld",
             (long long)json_integer_value(json_object_get(rec, "length")));
    http_add_header(req, "upload-length:", buf);
    const char *md = json_string_value(json_object_get(rec, "metadata"));
    if (md && *md)
        http_add_header(req, "upload-metadata:", md);
    http_date(st.st_mtime + h->cfg.upload_expire_s, buf);
    http_add_header(req, "upload-expires:", buf);
    json_decref(rec);
    free(dir);
    http_reply_empty(req, 200);
}

static void op_delete(struct hub *h, struct http_req *req, const char *id)
{
    const struct http_req_view *v = http_view(req);
    if (active_find(h, v->user.name, id)) {
        reply_tus_error(req, 423, NULL, "this upload is receiving data");
        return;
    }
    char *dir = user_dir(h, &v->user);
    json_t *rec;
    struct stat st;
    if (rec_load(h, dir, id, &rec, &st) < 0) {
        free(dir);
        reply_tus_error(req, 404, NULL, "no such upload");
        return;
    }
    json_decref(rec);
    rec_delete(dir, id);
    free(dir);
    tus_headers(req);
    http_reply_empty(req, 204);
}

/* --- expiration --- */

struct sweep_job {
    uv_work_t work;
    struct hub *h;
    char *dir;
    int expire_s;
    int deleted;
};

static void sweep_work(uv_work_t *w)
{
    struct sweep_job *j = w->data;
    DIR *top = opendir(j->dir);
    if (!top)
        return;
    time_t now = time(NULL);
    struct dirent *u;
    while ((u = readdir(top))) {
        if (u->d_name[0] == '.')
            continue;
        int ufd = openat(dirfd(top), u->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *ud = ufd >= 0 ? fdopendir(ufd) : NULL;
        if (!ud) {
            if (ufd >= 0)
                close(ufd);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(ud))) {
            size_t n = strlen(e->d_name);
            if (n != 37 || (strcmp(e->d_name + 32, ".json") && strcmp(e->d_name + 32, ".part")))
                continue;
            /* an upload's age is its part file's (the last data), else the record's */
            char part[40];
            memcpy(part, e->d_name, 32);
            memcpy(part + 32, ".part", 6);
            struct stat st;
            if (fstatat(ufd, part, &st, 0) < 0 && fstatat(ufd, e->d_name, &st, 0) < 0)
                continue;
            if (st.st_mtime + j->expire_s < now && unlinkat(ufd, e->d_name, 0) == 0)
                j->deleted++;
        }
        closedir(ud);
    }
    closedir(top);
}

static void sweep_done(uv_work_t *w, int status)
{
    (void)status;
    struct sweep_job *j = w->data;
    if (j->deleted)
        log_info("deleted %d files of expired uploads", j->deleted);
    j->h->drive->sweeping = false;
    free(j->dir);
    free(j);
}

void tus_tick(struct hub *h)
{
    struct drive *d = h->drive;
    uint64_t now = now_ms();
    if (d->sweeping || (d->last_sweep && now - d->last_sweep < 600 * 1000) || h->stopping)
        return;
    d->last_sweep = now;
    d->sweeping = true;
    struct sweep_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->dir = xstrdup(d->uploads_dir);
    j->expire_s = h->cfg.upload_expire_s;
    if (uv_queue_work(h->loop, &j->work, sweep_work, sweep_done) < 0) {
        sweep_work(&j->work);
        sweep_done(&j->work, 0);
    }
}

void tus_handle(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    if (v->method == HTTP_OPTIONS) {
        char max[32];
        snprintf(max, sizeof(max), "%lld", (long long)h->cfg.upload_max);
        tus_headers(req);
        http_add_header(req, "tus-version:", TUS_VERSION);
        http_add_header(req, "tus-extension:", TUS_EXTENSIONS);
        http_add_header(req, "tus-max-size:", max);
        http_add_header(req, "tus-checksum-algorithm:", "sha1,sha256");
        http_reply_empty(req, 204);
        return;
    }
    const char *tr = http_header(req, "tus-resumable:");
    if (!tr || strcmp(tr, TUS_VERSION)) {
        http_add_header(req, "tus-version:", TUS_VERSION);
        reply_tus_error(req, 412, NULL, "Tus-Resumable: 1.0.0 is required");
        return;
    }
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method == HTTP_POST)
            op_create(h, req);
        else
            reply_tus_error(req, 405, NULL, "method not allowed");
        return;
    }
    const char *id = rest + 1;
    if (!id_ok(id)) {
        reply_tus_error(req, 404, NULL, "no such upload");
        return;
    }
    switch (v->method) {
    case HTTP_HEAD:
        op_head(h, req, id);
        break;
    case HTTP_PATCH:
        op_patch(h, req, id);
        break;
    case HTTP_DELETE:
        op_delete(h, req, id);
        break;
    default:
        reply_tus_error(req, 405, NULL, "method not allowed");
    }
}
