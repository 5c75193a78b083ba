/* The drive's trash: entries DRIVE/.labbook/trash/<id>/{info.json,item}, their listing,
 * restore, deletion and expiry, and the /api/drive/trash routes. A runtime's kernel sees
 * the drive, trash included, so everything read back from there is treated as hostile:
 * entries are opened O_NOFOLLOW, sidecars are size-capped and their paths re-checked. */
#include "hub/trash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/base64.h"
#include "common/fsat.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"

#define INFO_NAME "info.json"
#define ITEM_NAME "item"
#define GONE_PREFIX ".gone-"
#define INFO_MAX 65536
#define MAX_SCAN 100000     /* entries read per listing or sweep */
#define LEFTOVER_AGE_S 3600 /* an entry without its item is a crash's leftover after this */
#define MAX_RESTORE_NAMES 1000

static bool id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return false;
    return n == TRASH_ID_LEN;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fsync_fd(int fd)
{
    if (fd >= 0)
        (void)fsync(fd);
}

/* The trash folder beneath the drive's root fd, made if create. */
static int open_trash(int root_fd, bool create)
{
    if (create)
        return drive_mkdirs(root_fd, TRASH_DIR);
    return fs_open_beneath(root_fd, TRASH_DIR, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
}

static int open_root(const char *root)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Writes the sidecar into the entry folder: temporary, fsync, rename, fsync. */
static int write_info(int efd, const char *norm, double deleted, bool dir)
{
    json_t *j = json_pack("{s:o, s:f, s:s}", "path", json_text(norm), "deleted", deleted, "type",
                          dir ? "directory" : "file");
    if (!utf8_valid_str(norm)) {
        /* the exact bytes, for the restore; "path" is for people */
        size_t n = strlen(norm);
        char *b = xmalloc(base64_encoded_len(n) + 1);
        base64_encode((const uint8_t *)norm, n, b);
        json_object_set_new(j, "raw_path", json_string(b));
        free(b);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int r = 0;
    int fd =
        openat(efd, INFO_NAME ".tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    r = write_all(fd, text, strlen(text));
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(efd, INFO_NAME ".tmp", efd, INFO_NAME) < 0)
        r = -errno;
out:
    free(text);
    return r;
}

/* What an entry's sidecar says; path is normalized, not hidden, not the root. */
struct info {
    char *path;
    double deleted;
};

static int read_info(int efd, struct info *inf)
{
    inf->path = NULL;
    int fd = openat(efd, INFO_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    char *text = NULL;
    json_t *j = NULL;
    int r = -EBADMSG;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > INFO_MAX)
        goto out;
    text = xmalloc((size_t)st.st_size + 1);
    ssize_t n = pread(fd, text, (size_t)st.st_size, 0);
    if (n != st.st_size)
        goto out;
    j = json_loadb(text, (size_t)n, 0, NULL);
    const char *path = json_string_value(json_object_get(j, "path"));
    const char *raw = json_string_value(json_object_get(j, "raw_path"));
    json_t *del = json_object_get(j, "deleted");
    if (!path || !json_is_number(del))
        goto out;
    char *decoded = NULL;
    if (raw) {
        size_t len = strlen(raw), outlen = 0;
        decoded = xmalloc(base64_decoded_max(len) + 1);
        if (base64_decode(raw, len, (uint8_t *)decoded, &outlen) < 0 ||
            memchr(decoded, 0, outlen)) {
            free(decoded);
            goto out;
        }
        decoded[outlen] = '\0';
        path = decoded;
    }
    char *norm = NULL;
    if (fs_path_normalize(path, &norm) == 0 && norm[0] && !drive_path_hidden(norm) &&
        !strcmp(norm, path)) {
        inf->path = norm;
        norm = NULL;
        inf->deleted = json_number_value(del);
        r = 0;
    }
    free(norm);
    free(decoded);
out:
    json_decref(j);
    free(text);
    close(fd);
    return r;
}

/* Takes entry id out of the trash folder: renamed to a hidden name first (it is gone from
 * listings at once), then removed. */
static int remove_entry(int tfd, const char *id)
{
    char gone[64];
    snprintf(gone, sizeof gone, GONE_PREFIX "%s", id);
    if (renameat(tfd, id, tfd, gone) < 0)
        return errno == ENOTDIR ? -ENOENT : -errno;
    fsync_fd(tfd);
    return fs_remove_tree(tfd, gone, 0);
}

int trash_put(int root_fd, const char *norm, char id[TRASH_ID_LEN + 1])
{
    if (!norm[0] || drive_path_hidden(norm))
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    const char *slash = strrchr(norm, '/');
    char *parent = slash ? xstrndup(norm, (size_t)(slash - norm)) : xstrdup("");
    const char *base = slash ? slash + 1 : norm;
    int tfd = -1, pfd = -1, efd = -1, r;
    pfd = fs_open_beneath(root_fd, parent, O_RDONLY | O_DIRECTORY, 0);
    if (pfd < 0) {
        r = pfd == -ENOTDIR || pfd == -EXDEV || pfd == -ELOOP ? -ENOENT : pfd;
        goto out;
    }
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
        goto out;
    }
    tfd = open_trash(root_fd, true);
    if (tfd < 0) {
        r = tfd;
        goto out;
    }
    unsigned char rnd[TRASH_ID_LEN / 2];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(id, TRASH_ID_LEN + 1, rnd, sizeof rnd);
    if (mkdirat(tfd, id, 0700) < 0) {
        r = -errno;
        goto out;
    }
    efd = openat(tfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (efd < 0) {
        r = -errno;
        goto out;
    }
    /* The sidecar is on disk before the item moves: a crash in between leaves an entry
     * without its item (swept later) and the item where it was. */
    r = write_info(efd, norm, now_s(), S_ISDIR(st.st_mode));
    if (r == 0) {
        fsync_fd(efd);
        fsync_fd(tfd);
        if (renameat(pfd, base, efd, ITEM_NAME) < 0)
            r = -errno;
    }
    if (r < 0) {
        close(efd);
        efd = -1;
        fs_remove_tree(tfd, id, 0);
        goto out;
    }
    fsync_fd(efd);
    fsync_fd(pfd);
out:
    if (efd >= 0)
        close(efd);
    if (tfd >= 0)
        close(tfd);
    if (pfd >= 0)
        close(pfd);
    free(parent);
    return r;
}

/* One listed entry. */
struct ent {
    char id[TRASH_ID_LEN + 1];
    char *path;
    double deleted;
    struct stat st;
};

static int ent_newest_first(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    return x->deleted < y->deleted ? 1 : x->deleted > y->deleted ? -1 : strcmp(x->id, y->id);
}

/* Opens entry name of tfd and reads it: 0 with *inf and the item's lstat, -ENOENT when it
 * is no complete entry. */
static int entry_read(int tfd, const char *name, struct info *inf, struct stat *st, int *efd_out)
{
    int efd = openat(tfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (efd < 0)
        return -ENOENT;
    if (read_info(efd, inf) < 0 || fstatat(efd, ITEM_NAME, st, AT_SYMLINK_NOFOLLOW) < 0) {
        free(inf->path);
        inf->path = NULL;
        close(efd);
        return -ENOENT;
    }
    if (efd_out)
        *efd_out = efd;
    else
        close(efd);
    return 0;
}

static int64_t item_size(int tfd, const char *id, const struct stat *st)
{
    if (S_ISREG(st->st_mode))
        return st->st_size;
    if (!S_ISDIR(st->st_mode))
        return 0;
    char rel[64];
    snprintf(rel, sizeof rel, "%s/" ITEM_NAME, id);
    int fd = fs_open_beneath(tfd, rel, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
    return fd < 0 ? 0 : fs_tree_size(fd);
}

int trash_list(const char *root, int64_t max_age_s, json_t **out)
{
    *out = NULL;
    int rfd = open_root(root);
    if (rfd < 0)
        return rfd;
    json_t *items = json_array();
    bool truncated = false;
    int tfd = open_trash(rfd, false);
    close(rfd);
    if (tfd < 0 && tfd != -ENOENT && tfd != -ENOTDIR) {
        json_decref(items);
        return tfd;
    }
    struct ent *ents = NULL;
    size_t n = 0, cap = 0;
    DIR *d = tfd >= 0 ? fdopendir(dup(tfd)) : NULL;
    double now = now_s();
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!id_ok(de->d_name))
            continue;
        if (n >= MAX_SCAN) {
            truncated = true;
            break;
        }
        struct info inf;
        struct stat st;
        if (entry_read(tfd, de->d_name, &inf, &st, NULL) < 0)
            continue;
        if (max_age_s >= 0 && inf.deleted + (double)max_age_s <= now) {
            free(inf.path);
            remove_entry(tfd, de->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ents = xrealloc(ents, cap * sizeof(*ents));
        }
        memcpy(ents[n].id, de->d_name, sizeof ents[n].id); /* id_ok: 32 digits and NUL */
        ents[n].path = inf.path;
        ents[n].deleted = inf.deleted;
        ents[n].st = st;
        n++;
    }
    if (d)
        closedir(d);
    if (n)
        qsort(ents, n, sizeof(*ents), ent_newest_first);
    for (size_t i = 0; i < n; i++) {
        if (i >= TRASH_MAX_LIST) {
            truncated = true;
        } else {
            char when[32];
            iso8601_from_time(ents[i].deleted, when);
            const char *slash = strrchr(ents[i].path, '/');
            json_array_append_new(items,
                                  json_pack("{s:s, s:o, s:o, s:s, s:s, s:I}", "id", ents[i].id,
                                            "name", json_text(slash ? slash + 1 : ents[i].path),
                                            "path", json_text(ents[i].path), "type",
                                            S_ISDIR(ents[i].st.st_mode) ? "directory" : "file",
                                            "deleted", when, "size",
                                            (json_int_t)item_size(tfd, ents[i].id, &ents[i].st)));
        }
        free(ents[i].path);
    }
    free(ents);
    if (tfd >= 0)
        close(tfd);
    *out = json_pack("{s:o, s:b}", "items", items, "truncated", truncated);
    return 0;
}

/* "stem (restored).ext", "stem (restored 2).ext", ...; folders keep no extension apart. */
static char *restored_name(const char *name, bool dir, int k)
{
    const char *dot = dir ? NULL : strrchr(name, '.');
    if (dot == name)
        dot = NULL;
    size_t stem = dot ? (size_t)(dot - name) : strlen(name);
    char mark[32];
    if (k == 1)
        snprintf(mark, sizeof mark, " (restored)");
    else
        snprintf(mark, sizeof mark, " (restored %d)", k);
    return xasprintf("%.*s%s%s", (int)stem, name, mark, dot ? dot : "");
}

int trash_restore(const char *root, const char *id, char **path)
{
    *path = NULL;
    if (!id_ok(id))
        return -EINVAL;
    int rfd = open_root(root);
    if (rfd < 0)
        return rfd;
    int tfd = -1, efd = -1, pfd = -1, r;
    char *parent = NULL, *name = NULL;
    struct info inf = {0};
    struct stat st;
    tfd = open_trash(rfd, false);
    if (tfd < 0) {
        r = -ENOENT;
        goto out;
    }
    r = entry_read(tfd, id, &inf, &st, &efd);
    if (r < 0)
        goto out;
    const char *slash = strrchr(inf.path, '/');
    const char *base = slash ? slash + 1 : inf.path;
    parent = slash ? xstrndup(inf.path, (size_t)(slash - inf.path)) : xstrdup("");
    pfd = fs_open_beneath(rfd, parent, O_RDONLY | O_DIRECTORY, 0);
    if (pfd < 0) {
        /* its folder is gone: to the drive's root, as Drive does */
        free(parent);
        parent = xstrdup("");
        pfd = fs_open_beneath(rfd, "", O_RDONLY | O_DIRECTORY, 0);
        if (pfd < 0) {
            r = pfd;
            goto out;
        }
    }
    for (int k = 0;; k++) {
        if (k > MAX_RESTORE_NAMES) {
            r = -EEXIST;
            goto out;
        }
        free(name);
        name = k ? restored_name(base, S_ISDIR(st.st_mode), k) : xstrdup(base);
        if (!fs_name_ok(name)) {
            r = -ENAMETOOLONG;
            goto out;
        }
        if (syscall(SYS_renameat2, efd, ITEM_NAME, pfd, name, RENAME_NOREPLACE) == 0)
            break;
        if (errno != EEXIST) {
            r = errno == ENOENT ? -ENOENT : -errno;
            goto out;
        }
    }
    fsync_fd(pfd);
    fsync_fd(efd);
    /* the sidecar left alone is not an entry any more; remove it */
    remove_entry(tfd, id);
    *path = parent[0] ? xasprintf("%s/%s", parent, name) : xstrdup(name);
    r = 0;
out:
    if (pfd >= 0)
        close(pfd);
    if (efd >= 0)
        close(efd);
    if (tfd >= 0)
        close(tfd);
    close(rfd);
    free(inf.path);
    free(parent);
    free(name);
    return r;
}

int trash_delete(const char *root, const char *id)
{
    if (!id_ok(id))
        return -EINVAL;
    int rfd = open_root(root);
    if (rfd < 0)
        return rfd;
    int tfd = open_trash(rfd, false);
    close(rfd);
    if (tfd < 0)
        return -ENOENT;
    struct info inf;
    struct stat st;
    int r = entry_read(tfd, id, &inf, &st, NULL);
    if (r == 0) {
        free(inf.path);
        r = remove_entry(tfd, id);
    }
    close(tfd);
    return r;
}

int trash_sweep(const char *root, int64_t max_age_s)
{
    int rfd = open_root(root);
    if (rfd < 0)
        return rfd;
    int tfd = open_trash(rfd, false);
    close(rfd);
    if (tfd < 0)
        return tfd == -ENOENT || tfd == -ENOTDIR ? 0 : tfd;
    DIR *d = fdopendir(dup(tfd));
    if (!d) {
        close(tfd);
        return -errno;
    }
    int count = 0, seen = 0;
    double now = now_s();
    struct dirent *de;
    while ((de = readdir(d)) && seen++ < MAX_SCAN) {
        if (str_starts_with(de->d_name, GONE_PREFIX)) {
            fs_remove_tree(tfd, de->d_name, 0); /* a removal that was cut short */
            continue;
        }
        if (!id_ok(de->d_name))
            continue;
        struct info inf;
        struct stat st;
        if (entry_read(tfd, de->d_name, &inf, &st, NULL) == 0) {
            free(inf.path);
            if (max_age_s < 0 || inf.deleted + (double)max_age_s <= now) {
                if (remove_entry(tfd, de->d_name) == 0)
                    count++;
            }
            continue;
        }
        /* no item (a crash between the sidecar and the move, or after a restore's move):
         * removed once it is surely not an operation in progress */
        struct stat est;
        if (fstatat(tfd, de->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(est.st_mode) &&
            (max_age_s < 0 || est.st_mtime + LEFTOVER_AGE_S < (time_t)now))
            remove_entry(tfd, de->d_name);
    }
    closedir(d);
    close(tfd);
    return count;
}

/* ---- the hub's side --------------------------------------------------------------------- */

enum trash_op { OP_LIST, OP_RESTORE, OP_DELETE, OP_EMPTY };

struct trash_job {
    uv_work_t work;
    struct hub *h;
    struct http_pending *p;
    enum trash_op op;
    char user[64];
    char id[TRASH_ID_LEN + 1];
    char *root;
    int64_t max_age_s;
    int err;
    int count;
    json_t *out;
    char *path;
};

static void job_work(uv_work_t *w)
{
    struct trash_job *j = w->data;
    switch (j->op) {
    case OP_LIST:
        j->err = trash_list(j->root, j->max_age_s, &j->out);
        break;
    case OP_RESTORE:
        j->err = trash_restore(j->root, j->id, &j->path);
        break;
    case OP_DELETE:
        j->err = trash_delete(j->root, j->id);
        break;
    case OP_EMPTY:
        j->count = trash_sweep(j->root, -1);
        j->err = j->count < 0 ? j->count : 0;
        break;
    }
    drive_usage_forget(j->h->drive, j->user);
}

static void job_done(uv_work_t *w, int status)
{
    (void)status;
    struct trash_job *j = w->data;
    if (j->err == -ENOENT)
        http_pending_reply_error(j->p, 404, "No such item in the trash");
    else if (j->err == -EEXIST || j->err == -ENAMETOOLONG)
        http_pending_reply_error(j->p, 409, "Cannot restore: no free name for it in its folder");
    else if (j->err)
        http_pending_reply_error(j->p, 500, "The trash is unavailable: %s", strerror(-j->err));
    else if (j->op == OP_LIST) {
        json_object_set_new(j->out, "days", json_real((double)j->h->cfg.trash_s / 86400));
        http_pending_reply_json(j->p, 200, j->out);
        j->out = NULL;
    } else if (j->op == OP_RESTORE) {
        const char *slash = strrchr(j->path, '/');
        http_pending_reply_json(j->p, 200,
                                json_pack("{s:o, s:o}", "path", json_text(j->path), "name",
                                          json_text(slash ? slash + 1 : j->path)));
    } else if (j->op == OP_EMPTY)
        http_pending_reply_json(j->p, 200, json_pack("{s:i}", "deleted", j->count));
    else
        http_pending_reply_raw(j->p, 204, NULL, NULL, 0, NULL);
    json_decref(j->out);
    free(j->path);
    free(j->root);
    free(j);
}

void trash_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    enum trash_op op;
    char id[TRASH_ID_LEN + 1] = "";
    if (!rest[0] || !strcmp(rest, "/")) {
        if (v->method == HTTP_GET || v->method == HTTP_HEAD)
            op = OP_LIST;
        else if (v->method == HTTP_DELETE)
            op = OP_EMPTY;
        else {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
    } else {
        const char *s = rest + 1;
        const char *end = strchr(s, '/');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n != TRASH_ID_LEN) {
            http_reply_error(req, 400, "Not a trash item id (%d hex digits)", TRASH_ID_LEN);
            return;
        }
        memcpy(id, s, n);
        id[n] = '\0';
        if (!id_ok(id)) {
            http_reply_error(req, 400, "Not a trash item id (%d hex digits)", TRASH_ID_LEN);
            return;
        }
        if (!end && v->method == HTTP_DELETE)
            op = OP_DELETE;
        else if (end && !strcmp(end, "/restore") && v->method == HTTP_POST)
            op = OP_RESTORE;
        else if (!end || !strcmp(end, "/restore")) {
            http_reply_error(req, 405, "method not allowed");
            return;
        } else {
            http_reply_error(req, 404, "Not Found");
            return;
        }
    }
    struct trash_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->op = op;
    memcpy(j->id, id, sizeof j->id);
    j->max_age_s = h->cfg.trash_s;
    snprintf(j->user, sizeof(j->user), "%s", v->user.name);
    j->root = hub_user_drive(h, &v->user);
    j->p = http_defer(req);
    if (uv_queue_work(h->loop, &j->work, job_work, job_done) < 0) {
        job_work(&j->work);
        job_done(&j->work, 0);
    }
}

/* ---- expiry: every user's trash, on the thread pool ---- */

struct sweep_job {
    uv_work_t work;
    struct hub *h;
    char *drive_dir;
    int64_t max_age_s;
    int deleted;
};

static void sweep_work(uv_work_t *w)
{
    struct sweep_job *j = w->data;
    DIR *top = opendir(j->drive_dir);
    if (!top)
        return;
    struct dirent *u;
    while ((u = readdir(top)) && !j->h->drive->stopping) {
        if (u->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(top), u->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        char *root = xasprintf("%s/%s", j->drive_dir, u->d_name);
        int n = trash_sweep(root, j->max_age_s);
        if (n > 0) {
            j->deleted += n;
            drive_usage_forget(j->h->drive, u->d_name);
        }
        free(root);
    }
    closedir(top);
}

static void sweep_done(uv_work_t *w, int status)
{
    (void)status;
    struct sweep_job *j = w->data;
    if (j->deleted)
        log_info("deleted %d expired items from the drives' trash", j->deleted);
    j->h->drive->trash_sweeping = false;
    free(j->drive_dir);
    free(j);
}

void trash_tick(struct hub *h)
{
    struct drive *d = h->drive;
    uint64_t period = (uint64_t)h->cfg.trash_s * 1000 / 4;
    if (period < 1000)
        period = 1000;
    if (period > 600 * 1000 || !h->cfg.trash_s)
        period = 600 * 1000;
    uint64_t now = now_ms();
    if (d->trash_sweeping || (d->trash_last_sweep && now - d->trash_last_sweep < period) ||
        h->stopping)
        return;
    d->trash_last_sweep = now;
    d->trash_sweeping = true;
    struct sweep_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->drive_dir = xstrdup(h->drive_dir);
    j->max_age_s = h->cfg.trash_s;
    if (uv_queue_work(h->loop, &j->work, sweep_work, sweep_done) < 0) {
        sweep_work(&j->work);
        sweep_done(&j->work, 0);
    }
}
