/* Drive usage with a short cache, quota arithmetic, and the /api/drive router
 * (usage here; extraction jobs in api_extract.c, zips in download.c). */
#include "hub/drive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/download.h"
#include "hub/extract.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/trash.h"

#define USAGE_FRESH_MS 5000

struct usage_ent {
    struct usage_ent *next;
    char user[64];
    int64_t used;
    uint64_t at_ms;
    bool valid;
};

struct drive *drive_new(const char *data_dir)
{
    struct drive *d = xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->uploads_dir = xasprintf("%s/uploads", data_dir);
    return d;
}

void drive_free(struct drive *d)
{
    if (!d)
        return;
    while (d->usage) {
        struct usage_ent *e = d->usage;
        d->usage = e->next;
        free(e);
    }
    extract_free_all(d);
    pthread_mutex_destroy(&d->mu);
    free(d->uploads_dir);
    free(d);
}

static struct usage_ent *usage_find(struct drive *d, const char *user, bool create)
{
    for (struct usage_ent *e = d->usage; e; e = e->next)
        if (!strcmp(e->user, user))
            return e;
    if (!create)
        return NULL;
    struct usage_ent *e = xcalloc(1, sizeof(*e));
    snprintf(e->user, sizeof(e->user), "%s", user);
    e->next = d->usage;
    d->usage = e;
    return e;
}

int drive_usage(struct drive *d, const char *user, const char *root, int64_t *used)
{
    pthread_mutex_lock(&d->mu);
    struct usage_ent *e = usage_find(d, user, true);
    if (e->valid && now_ms() - e->at_ms < USAGE_FRESH_MS) {
        *used = e->used;
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    pthread_mutex_unlock(&d->mu);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int64_t sum = fs_tree_size(fd);
    pthread_mutex_lock(&d->mu);
    e = usage_find(d, user, true);
    e->used = sum;
    e->at_ms = now_ms();
    e->valid = true;
    pthread_mutex_unlock(&d->mu);
    *used = sum;
    return 0;
}

void drive_usage_add(struct drive *d, const char *user, int64_t delta)
{
    pthread_mutex_lock(&d->mu);
    struct usage_ent *e = usage_find(d, user, false);
    if (e && e->valid)
        e->used += delta;
    pthread_mutex_unlock(&d->mu);
}

void drive_usage_forget(struct drive *d, const char *user)
{
    pthread_mutex_lock(&d->mu);
    struct usage_ent *e = usage_find(d, user, false);
    if (e)
        e->valid = false;
    pthread_mutex_unlock(&d->mu);
}

int drive_free_bytes(struct hub *h, const char *user, const char *root, int64_t *free_out)
{
    if (h->cfg.drive_quota > 0) {
        int64_t used;
        int r = drive_usage(h->drive, user, root, &used);
        if (r < 0)
            return r;
        *free_out = used >= h->cfg.drive_quota ? 0 : h->cfg.drive_quota - used;
        return 0;
    }
    struct statvfs sv;
    if (statvfs(root, &sv) < 0)
        return -errno;
    *free_out = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
    return 0;
}

/* --- GET /api/drive/usage, on the thread pool --- */

struct usage_job {
    uv_work_t work;
    struct hub *h;
    struct http_pending *p;
    char user[64];
    char *root;
    int64_t used, free;
    int err;
};

static void usage_work(uv_work_t *w)
{
    struct usage_job *j = w->data;
    j->err = drive_usage(j->h->drive, j->user, j->root, &j->used);
    if (!j->err)
        j->err = drive_free_bytes(j->h, j->user, j->root, &j->free);
}

static void usage_done(uv_work_t *w, int status)
{
    (void)status;
    struct usage_job *j = w->data;
    if (j->err)
        http_pending_reply_error(j->p, 500, "cannot measure the drive: %s", strerror(-j->err));
    else
        http_pending_reply_json(j->p, 200,
                                json_pack("{s:I, s:I, s:I}", "used", (json_int_t)j->used, "quota",
                                          (json_int_t)j->h->cfg.drive_quota, "free",
                                          (json_int_t)j->free));
    free(j->root);
    free(j);
}

static void usage_api(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    struct usage_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    snprintf(j->user, sizeof(j->user), "%s", v->user.name);
    j->root = hub_user_drive(h, &v->user);
    j->p = http_defer(req);
    if (uv_queue_work(h->loop, &j->work, usage_work, usage_done) < 0) {
        usage_work(&j->work);
        usage_done(&j->work, 0);
    }
}

void drive_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    if (!strcmp(rest, "/usage")) {
        if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
        usage_api(h, req);
    } else if (!strcmp(rest, "/extract") || str_starts_with(rest, "/extract/")) {
        extract_api(h, req, rest + strlen("/extract"));
    } else if (!strcmp(rest, "/trash") || str_starts_with(rest, "/trash/")) {
        trash_api(h, req, rest + strlen("/trash"));
    } else if (!strcmp(rest, "/zip") || str_starts_with(rest, "/zip/")) {
        download_zip(h, req, rest + strlen("/zip"));
    } else {
        http_reply_error(req, 404, "Not Found");
    }
}
