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
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"

#define KEEP_FINISHED_MS (3600 * 1000)

/* --- jobs --- */

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct extract_job {
    struct extract_job *next;
    struct hub *h;
    uv_work_t work;
    char id[33];
    struct user user;
    char *to;
    int archive_fd;
    enum job_state state; /* the loop's view: set when the job has left the pool */
    enum job_state final; /* written by the worker */
    struct extract_limits lim;
    struct extract_result res;
    uint64_t finished_ms;
};

static void job_free(struct extract_job *j)
{
    if (j->archive_fd >= 0)
        close(j->archive_fd);
    free(j->to);
    free(j);
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

static void prune(struct drive *d)
{
    uint64_t now = now_ms();
    struct extract_job **pp = &d->extracts;
    while (*pp) {
        struct extract_job *j = *pp;
        if (j->state != JOB_RUNNING && now - j->finished_ms > KEEP_FINISHED_MS) {
            *pp = j->next;
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

static void job_work(uv_work_t *w)
{
    struct extract_job *j = w->data;
    struct hub *h = j->h;
    char *root = hub_user_drive(h, &j->user);
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        snprintf(j->res.error, sizeof(j->res.error), "cannot open the drive");
        j->final = JOB_FAILED;
        free(root);
        return;
    }
    j->lim.quota_free = -1;
    if (h->cfg.drive_quota > 0) {
        int64_t f = 0;
        drive_free_bytes(h, j->user.name, root, &f);
        j->lim.quota_free = f;
    }
    size_t existing = existing_prefix(rootfd, j->to);
    int tofd = drive_mkdirs(rootfd, j->to);
    if (tofd < 0) {
        snprintf(j->res.error, sizeof(j->res.error), "cannot make the folder \"%s\": %s", j->to,
                 strerror(-tofd));
        j->final = JOB_FAILED;
    } else {
        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".labbook-extract-%s", j->id);
        int rc = extract_run(j->archive_fd, tofd, tmp, &j->lim, &j->res);
        j->final = rc < 0 ? JOB_FAILED : JOB_DONE;
        close(tofd);
    }
    if (j->final == JOB_FAILED) /* the folders it made, never through a link */
        fs_remove_empty_dirs(rootfd, j->to, existing);
    close(rootfd);
    free(root);
}

static void job_done(uv_work_t *w, int status)
{
    (void)status;
    struct extract_job *j = w->data;
    close(j->archive_fd);
    j->archive_fd = -1;
    j->state = j->final;
    j->finished_ms = now_ms();
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
                  char id_out[64], char **err)
{
    prune(h->drive);
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
    if (uv_queue_work(h->loop, &j->work, job_work, job_done) < 0) {
        job_work(&j->work);
        job_done(&j->work, 0);
    }
    return 0;
}

static json_t *job_model(struct extract_job *j)
{
    static const char *states[] = {"running", "done", "failed"};
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
        prune(h->drive);
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
        int r = extract_start(h, &v->user, fd, nt, id, &err);
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
