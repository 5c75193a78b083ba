/* The runtime's /content over HTTP: each request becomes one STREAM_FILE request to
 * the runtime's agent (kernels.h), and the agent's reply its answer. */
#include "hub/runtime_files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/files.h"
#include "common/fsat.h"
#include "common/util.h"
#include "hub/download.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"

#define FILES_TIMEOUT_MS 30000

struct files_ctx {
    struct hub *h;
    struct http_pending *p;
    uv_timer_t timer;
    char kernel_id[40];
    int64_t req_id;
    char *path; /* normalised */
    bool download;
};

static void on_timer_closed(uv_handle_t *hd)
{
    struct files_ctx *c = hd->data;
    free(c->path);
    free(c);
}

static void finish(struct files_ctx *c)
{
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_reply(void *ctx, int err, json_t *reply, const uint8_t *data, size_t len)
{
    struct files_ctx *c = ctx;
    if (err < 0) {
        http_pending_reply_error(c->p, 503, "the runtime's agent went away before answering");
        finish(c);
        return;
    }
    int status = (int)json_integer_value(json_object_get(reply, "status"));
    const char *msg = json_string_value(json_object_get(reply, "message"));
    const char *type = json_string_value(json_object_get(reply, "type"));
    if (status >= 400 || status < 200) {
        http_pending_reply_error(c->p, status >= 400 && status < 600 ? status : 502, "%s",
                                 msg ? msg : "the runtime's agent refused");
    } else if (type && !strcmp(type, "directory")) {
        json_t *entries = json_object_get(reply, "entries");
        json_t *o =
            json_pack("{s:s, s:O}", "path", c->path, "entries", entries ? entries : json_array());
        if (json_is_true(json_object_get(reply, "truncated")))
            json_object_set_new(o, "truncated", json_true());
        http_pending_reply_json(c->p, 200, o);
    } else if (type && !strcmp(type, "file")) {
        struct http_req *req = http_pending_req(c->p);
        const char *base = strrchr(c->path, '/') ? strrchr(c->path, '/') + 1 : c->path;
        if (req) {
            http_add_header(req, "x-content-type-options:", "nosniff");
            http_add_header(req, "content-security-policy:", "sandbox");
            if (c->download) {
                char *cd = download_disposition(base);
                http_add_header(req, "content-disposition:", cd);
                free(cd);
            }
        }
        char *body = xmalloc(len + 1);
        if (len)
            memcpy(body, data, len);
        http_pending_reply_raw(c->p, 200, download_mime_of(base), body, len, NULL);
    } else {
        http_pending_reply_raw(c->p, status, NULL, NULL, 0, NULL);
    }
    finish(c);
}

static void on_timeout(uv_timer_t *t)
{
    struct files_ctx *c = t->data;
    struct kernel *k;
    for (k = c->h->kernels; k && strcmp(k->id, c->kernel_id); k = k->next)
        ;
    if (k)
        kernel_file_cancel(k, c->req_id);
    http_pending_reply_error(c->p, 504, "the runtime's agent did not answer within %d s",
                             FILES_TIMEOUT_MS / 1000);
    finish(c);
}

void runtime_files(struct hub *h, struct http_req *req, struct kernel *k, const char *path)
{
    const struct http_req_view *v = http_view(req);
    const char *op;
    if (v->method == HTTP_GET || v->method == HTTP_HEAD) {
        op = "read";
    } else if (v->method == HTTP_PUT) {
        op = "write";
    } else if (v->method == HTTP_POST) {
        const char *t = http_query(req, "type");
        if (!t || strcmp(t, "directory")) {
            http_reply_error(req, 400, "POST makes a folder: add ?type=directory");
            return;
        }
        op = "mkdir";
    } else if (v->method == HTTP_DELETE) {
        op = "delete";
    } else {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    char *norm = NULL;
    int r = fs_path_normalize(path, &norm);
    if (r < 0) {
        http_reply_error(req, 400, "bad path: \".\" and \"..\" are not allowed");
        return;
    }
    size_t len = 0;
    char *body = NULL;
    if (!strcmp(op, "write")) {
        body = http_body_steal(req, &len);
        if (len > FILES_MAX_BYTES) {
            free(body);
            free(norm);
            http_reply_error(req, 413,
                             "the file is over %zu MiB: upload big files to the drive "
                             "(/content/drive/MyDrive), which takes resumable uploads",
                             FILES_MAX_BYTES >> 20);
            return;
        }
    }
    struct files_ctx *c = xcalloc(1, sizeof(*c));
    c->h = h;
    c->path = norm;
    snprintf(c->kernel_id, sizeof(c->kernel_id), "%s", k->id);
    const char *dl = http_query(req, "download");
    c->download = dl && strcmp(dl, "0") && strcmp(dl, "false");
    int64_t id = kernel_file_request(k, op, norm, body, len, on_reply, c);
    free(body);
    if (id < 0) {
        if (id == -EMSGSIZE)
            http_reply_error(req, 413, "the file is too big for this server's agent stream");
        else
            http_reply_error(req, 503, "the runtime's agent is not connected: try again later");
        free(c->path);
        free(c);
        return;
    }
    c->req_id = id;
    c->p = http_defer(req);
    uv_timer_init(h->loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timeout, FILES_TIMEOUT_MS, 0);
}
