/* Extraction jobs: POST /api/drive/extract and GET /api/drive/extract/{id}, each
 * job running extract_run on the thread pool with the [drive] limits and the
 * user's free quota. */
#include "hub/extract.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "store/store.h"

#define KEEP_FINISHED_MS (3600 * 1000)
#define RESTARTED "the server restarted during extraction; nothing was extracted"

/* --- jobs --- */

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED };
static const char *const states[] = {"running", "done", "failed"};

struct extract_job {
    struct extract_job *next;
    struct hub *h;
    uv_work_t work;
    char id[33];
    struct user user;
    char *to;
    size_t keep; /* bytes of `to` that existed before: the folders beyond are the job's */
    int archive_fd;
    /* the tus upload the archive is, or NULL: DATA/uploads/<user>, id, path, filename */
    char *up_dir, *up_id, *up_path, *up_name;
    enum job_state state; /* the loop's view: set when the job has left the pool */
    enum job_state final; /* written by the worker */
    struct extract_limits lim;
    struct extract_result res;
    int64_t finished_ms; /* wall clock (ms since 1970), also across restarts */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(struct extract_job *j)
{
    if (j->archive_fd >= 0)
        close(j->archive_fd);
    free(j->to);
    free(j->up_dir);
    free(j->up_id);
    free(j->up_path);
    free(j->up_name);
    free(j);
}

/* Records the job in the store (kind "extract"), as the loop sees it. */
static void job_save(struct extract_job *j, enum job_state state)
{
    json_t *m = json_pack("{s:I, s:s, s:s, s:I, s:s, s:I, s:I, s:I}", "owner",
                          (json_int_t)j->user.id, "user", j->user.name, "to", j->to, "keep",
                          (json_int_t)j->keep, "state", states[state], "entries",
                          (json_int_t)__atomic_load_n(&j->res.entries, __ATOMIC_RELAXED), "bytes",
                          (json_int_t)__atomic_load_n(&j->res.bytes, __ATOMIC_RELAXED), "finished",
                          (json_int_t)j->finished_ms);
    json_object_set_new(m, "error", state == JOB_FAILED ? json_text(j->res.error) : json_null());
    if (j->up_dir)
        json_object_set_new(m, "upload",
                            json_pack("{s:s, s:s, s:s, s:s}", "dir", j->up_dir, "id", j->up_id,
                                      "path", j->up_path, "filename", j->up_name));
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    int r = store_state_put(j->h->store, "extract", j->id, text);
    if (r < 0)
        log_warn("cannot record extraction %s: %s", j->id, strerror(-r));
    free(text);
}

void extract_free_all(struct drive *d)
{
    struct extract_job **pp = &d->extracts;
    while (*pp) {
        struct extract_job *j = *pp;
        if (j->state == JOB_RUNNING) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        job_free(j);
    }
}

static void prune(struct hub *h)
{
    int64_t now = wall_ms();
    struct extract_job **pp = &h->drive->extracts;
    while (*pp) {
        struct extract_job *j = *pp;
        if (j->state != JOB_RUNNING && now - j->finished_ms > KEEP_FINISHED_MS) {
            *pp = j->next;
            store_state_delete(h->store, "extract", j->id);
            job_free(j);
        } else {
            pp = &j->next;
        }
    }
}

/* How much of the folder path rel exists already: the length of its longest
 * existing prefix of whole components, each reached beneath rootfd without a link. */
static size_t existing_prefix(int rootfd, const char *rel)
{
    size_t len = strlen(rel), best = 0;
    char *p = xstrdup(rel);
    for (size_t i = 0; i <= len; i++) {
        if (rel[i] != '/' && rel[i] != '\0')
            continue;
        p[i] = '\0';
        int fd = fs_open_beneath(rootfd, p, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
        if (fd < 0)
            break;
        close(fd);
        best = i;
        p[i] = rel[i];
    }
    free(p);
    return best;
}

/* Moves an uploaded archive whose extraction the server cut off into the drive, at
 * the folder and name its upload asked for ("name (2).zip" when that is taken), so
 * that nothing is lost; kept gets the path it now has. Blocking. */
static int keep_archive(struct extract_job *j, int rootfd, char *kept, size_t kept_len)
{
    int updir = open(j->up_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (updir < 0)
        return -errno;
    char part[64];
    snprintf(part, sizeof(part), "%s.part", j->up_id);
    int destfd = drive_mkdirs(rootfd, j->up_path);
    int rc = destfd;
    if (destfd >= 0) {
        const char *dot = strrchr(j->up_name, '.');
        size_t stem = dot && dot != j->up_name ? (size_t)(dot - j->up_name) : strlen(j->up_name);
        rc = -EEXIST;
        for (int n = 1; n < 100 && rc == -EEXIST; n++) {
            char name[NAME_MAX + 16];
            if (n == 1)
                snprintf(name, sizeof(name), "%s", j->up_name);
            else
                snprintf(name, sizeof(name), "%.*s (%d)%s", (int)stem, j->up_name, n,
                         j->up_name + stem);
            if (strlen(name) > NAME_MAX)
                break;
            fchmodat(updir, part, 0644, 0);
            rc = renameat2(updir, part, destfd, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
            if (rc == 0) {
                fsync(destfd);
                snprintf(kept, kept_len, "%s%s%s", j->up_path, j->up_path[0] ? "/" : "", name);
            }
        }
        close(destfd);
    }
    close(updir);
    return rc;
}

/* After a job that came by tus: the archive leaves the uploads folder, into the drive
 * when the server cut the job off (cut), else away. Appends what happened to the
 * job's error. Blocking. */
static void job_upload_end(struct extract_job *j, int rootfd, bool cut)
{
    if (!j->up_dir)
        return;
    if (!cut) {
        char *pp = xasprintf("%s/%s.part", j->up_dir, j->up_id);
        unlink(pp);
        free(pp);
        return;
    }
    char kept[PATH_MAX] = "";
    int r = rootfd < 0 ? -EBADF : keep_archive(j, rootfd, kept, sizeof(kept));
    size_t n = strlen(j->res.error);
    if (r == 0)
        snprintf(j->res.error + n, sizeof(j->res.error) - n,
                 "; the uploaded archive is kept in your drive as \"%s\"", kept);
    else if (r != -ENOENT)
        snprintf(j->res.error + n, sizeof(j->res.error) - n,
                 "; the uploaded archive could not be kept: %s", strerror(-r));
}

static void job_work(uv_work_t *w)
{
    struct extract_job *j = w->data;
    struct hub *h = j->h;
    char *root = hub_user_drive(h, &j->user);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        free(root);
        snprintf(j->res.error, sizeof(j->res.error), "cannot open the drive");
        j->final = JOB_FAILED;
        return;
    }
    j->lim.quota_free = -1;
    if (h->cfg.drive_quota > 0) {
        int64_t f = 0;
        drive_free_bytes(h, j->user.name, root, &f);
        j->lim.quota_free = f;
    }
    free(root);
    int tofd = drive_mkdirs(rootfd, j->to);
    int rc = tofd;
    if (tofd < 0) {
        snprintf(j->res.error, sizeof(j->res.error), "cannot make the folder \"%s\": %s", j->to,
                 strerror(-tofd));
        j->final = JOB_FAILED;
    } else {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".labbook-extract-%s", j->id);
        rc = extract_run(j->archive_fd, tofd, tmp, &j->lim, &j->res);
        j->final = rc < 0 ? JOB_FAILED : JOB_DONE;
        close(tofd);
    }
    if (j->final == JOB_FAILED) /* the folders it made, never through a link */
        fs_remove_empty_dirs(rootfd, j->to, j->keep);
    if (rc == -ECANCELED) {
        snprintf(j->res.error, sizeof(j->res.error),
                 "the server stopped during extraction; nothing was extracted");
    }
    job_upload_end(j, rootfd, rc == -ECANCELED);
    close(rootfd);
}

static void job_done(uv_work_t *w, int status)
{
    (void)status;
    struct extract_job *j = w->data;
    close(j->archive_fd);
    j->archive_fd = -1;
    j->state = j->final;
    j->finished_ms = wall_ms();
    job_save(j, j->state);
    drive_usage_forget(j->h->drive, j->user.name);
    char q[300];
    if (j->state == JOB_FAILED)
        log_info("extraction %s for %s failed: %s", j->id, j->user.name,
                 log_quote(j->res.error, q, sizeof(q)));
    else
        log_info("extraction %s for %s: %lld entries, %lld bytes", j->id, j->user.name,
                 (long long)j->res.entries, (long long)j->res.bytes);
}

int extract_start(struct hub *h, const struct user *u, int archive_fd, const char *to,
                  const struct extract_upload *up, char id_out[64], char **err)
{
    prune(h);
    int running = 0;
    for (struct extract_job *j = h->drive->extracts; j; j = j->next)
        if (j->state == JOB_RUNNING && j->user.id == u->id)
            running++;
    if (running >= h->cfg.extracts_per_user) {
        close(archive_fd);
        *err = xasprintf("too many extractions running (limit %d, max_extracts_per_user)",
                         h->cfg.extracts_per_user);
        return -EAGAIN;
    }
    struct extract_job *j = xcalloc(1, sizeof(*j));
    j->h = h;
    j->work.data = j;
    j->user = *u;
    j->to = xstrdup(to);
    j->archive_fd = archive_fd;
    if (up) {
        j->up_dir = xstrdup(up->dir);
        j->up_id = xstrdup(up->id);
        j->up_path = xstrdup(up->path);
        j->up_name = xstrdup(up->filename);
    }
    /* Which folders of `to` exist now (a few opens): those beyond are the job's own,
     * to remove if it fails, by this hub or the next. */
    char *root = hub_user_drive(h, u);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(root);
    if (rootfd >= 0) {
        j->keep = existing_prefix(rootfd, j->to);
        close(rootfd);
    }
    j->lim = (struct extract_limits){.max_bytes = h->cfg.extract_max,
                                     .max_entries = h->cfg.extract_max_entries,
                                     .max_entry = h->cfg.extract_max_entry,
                                     .max_ratio = h->cfg.extract_max_ratio,
                                     .cancel = &h->drive->stopping};
    unsigned char raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(j->id, sizeof(j->id), raw, sizeof(raw));
    j->next = h->drive->extracts;
    h->drive->extracts = j;
    snprintf(id_out, 64, "%s", j->id);
    job_save(j, JOB_RUNNING); /* before the first entry is written */
    if (uv_queue_work(h->loop, &j->work, job_work, job_done) < 0) {
        job_work(&j->work);
        job_done(&j->work, 0);
    }
    return 0;
}

/* --- after a restart --- */

static const char *str_of(json_t *m, const char *key)
{
    const char *v = json_string_value(json_object_get(m, key));
    return v ? v : "";
}

static bool job_id_ok(const char *id)
{
    if (strlen(id) != 32)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Finishes or undoes a job that was running when the last hub ended. Blocking. */
static void job_recover(struct extract_job *j)
{
    char q[300], *root = hub_user_drive(j->h, &j->user);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(root);
    int tofd = rootfd < 0 ? -1
                          : fs_open_beneath(rootfd, j->to, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                            RESOLVE_NO_SYMLINKS);
    int r = 0;
    if (tofd >= 0) {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".labbook-extract-%s", j->id);
        r = extract_recover_dir(tofd, tmp, &j->res);
        close(tofd);
    }
    if (r == 1) {
        j->state = JOB_DONE;
        log_info("extraction %s for %s: finished after the restart (%lld entries)", j->id,
                 j->user.name, (long long)j->res.entries);
        job_upload_end(j, rootfd, false);
    } else {
        j->state = JOB_FAILED;
        if (r < 0)
            snprintf(j->res.error, sizeof(j->res.error),
                     "the server restarted while moving the files into place, and they could "
                     "not all be moved: %s",
                     strerror(-r));
        else
            snprintf(j->res.error, sizeof(j->res.error), "%s", RESTARTED);
        if (rootfd >= 0 && r == 0)
            fs_remove_empty_dirs(rootfd, j->to, j->keep);
        job_upload_end(j, rootfd, true);
        log_info("extraction %s for %s: %s", j->id, j->user.name,
                 log_quote(j->res.error, q, sizeof(q)));
    }
    if (rootfd >= 0)
        close(rootfd);
    j->finished_ms = wall_ms();
    job_save(j, j->state);
    drive_usage_forget(j->h->drive, j->user.name);
}

static void recover_one(void *ctx, const char *id, const char *text)
{
    struct hub *h = ctx;
    json_t *m = json_loads(text, 0, NULL);
    struct user u;
    int64_t finished = json_integer_value(json_object_get(m, "finished"));
    const char *state = str_of(m, "state");
    bool running = !strcmp(state, "running");
    if (!json_is_object(m) || !job_id_ok(id) ||
        store_user_get_id(h->store, json_integer_value(json_object_get(m, "owner")), &u) < 0 ||
        (!running && wall_ms() - finished > KEEP_FINISHED_MS)) {
        /* unreadable, its user deleted, or finished long ago */
        store_state_delete(h->store, "extract", id);
        json_decref(m);
        return;
    }
    struct extract_job *j = xcalloc(1, sizeof(*j));
    j->h = h;
    j->work.data = j;
    j->user = u;
    j->archive_fd = -1;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->to = xstrdup(str_of(m, "to"));
    j->keep = (size_t)json_integer_value(json_object_get(m, "keep"));
    if (j->keep > strlen(j->to))
        j->keep = strlen(j->to);
    j->res.entries = json_integer_value(json_object_get(m, "entries"));
    j->res.bytes = json_integer_value(json_object_get(m, "bytes"));
    snprintf(j->res.error, sizeof(j->res.error), "%s", str_of(m, "error"));
    json_t *up = json_object_get(m, "upload");
    if (json_is_object(up) && job_id_ok(str_of(up, "id"))) {
        j->up_dir = xasprintf("%s/%s", h->drive->uploads_dir, u.name); /* not from the record */
        j->up_id = xstrdup(str_of(up, "id"));
        char *p = NULL;
        j->up_path = fs_path_normalize(str_of(up, "path"), &p) == 0 ? p : xstrdup("");
        const char *fname = str_of(up, "filename");
        j->up_name = xstrdup(fs_name_ok(fname) && fname[0] != '.' ? fname : "archive");
    }
    char *nt = NULL;
    bool to_ok = fs_path_normalize(j->to, &nt) == 0 && !strcmp(nt, j->to);
    free(nt);
    j->finished_ms = finished;
    j->state = !strcmp(state, "done") ? JOB_DONE : JOB_FAILED;
    json_decref(m);
    j->next = h->drive->extracts;
    h->drive->extracts = j;
    if (running && to_ok)
        job_recover(j);
    else if (running) {
        snprintf(j->res.error, sizeof(j->res.error), "%s", RESTARTED);
        j->finished_ms = wall_ms();
        job_save(j, JOB_FAILED);
    }
}

void extract_recover(struct hub *h)
{
    store_state_list(h->store, "extract", recover_one, h);
}

static json_t *job_model(struct extract_job *j)
{
    enum job_state s = j->state;
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", j->id, "state", states[s], "to", j->to,
                          "entries", (json_int_t)__atomic_load_n(&j->res.entries, __ATOMIC_RELAXED),
                          "bytes", (json_int_t)__atomic_load_n(&j->res.bytes, __ATOMIC_RELAXED));
    /* The message quotes archive entry names, and may be cut mid-character. */
    json_object_set_new(m, "error", s == JOB_FAILED ? json_text(j->res.error) : json_null());
    return m;
}

void extract_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    if ((!*rest || !strcmp(rest, "/")) && v->method == HTTP_GET) {
        prune(h);
        json_t *list = json_array();
        for (struct extract_job *j = h->drive->extracts; j; j = j->next)
            if (j->user.id == v->user.id)
                json_array_append_new(list, job_model(j));
        http_reply_json(req, 200, list);
        return;
    }
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method != HTTP_POST) {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
        json_t *body;
        if (http_body_json(req, false, &body) < 0)
            return;
        const char *path = json_string_value(json_object_get(body, "path"));
        const char *to = json_string_value(json_object_get(body, "to"));
        char *np = NULL, *nt = NULL;
        if (!path || fs_path_normalize(path, &np) < 0 || !np[0] || drive_path_hidden(np)) {
            http_reply_error(req, 400, "\"path\" must name an archive in your drive");
            goto out;
        }
        if (!to) {
            const char *slash = strrchr(np, '/');
            nt = slash ? xstrndup(np, (size_t)(slash - np)) : xstrdup("");
        } else if (fs_path_normalize(to, &nt) < 0 || drive_path_hidden(nt)) {
            http_reply_error(req, 400, "\"to\" must be a folder path in your drive");
            goto out;
        }
        char *root = hub_user_drive(h, &v->user);
        int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(root);
        int fd = rootfd < 0 ? -errno : fs_open_beneath(rootfd, np, O_RDONLY | O_NONBLOCK, 0);
        if (rootfd >= 0)
            close(rootfd);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            http_reply_error(req, 404, "No such file: %s", np);
            goto out;
        }
        char id[64];
        char *err = NULL;
        int r = extract_start(h, &v->user, fd, nt, NULL, id, &err);
        if (r < 0) {
            http_reply_error(req, r == -EAGAIN ? 429 : 500, "%s", err);
            free(err);
        } else {
            http_reply_json(req, 202, json_pack("{s:s}", "id", id));
        }
    out:
        free(np);
        free(nt);
        json_decref(body);
        return;
    }
    if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    for (struct extract_job *j = h->drive->extracts; j; j = j->next)
        if (j->user.id == v->user.id && !strcmp(j->id, rest + 1)) {
            http_reply_json(req, 200, job_model(j));
            return;
        }
    http_reply_error(req, 404, "no such extraction");
}
