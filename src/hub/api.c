/* The router and the small API areas: /api, /api/status, /api/me, /api/kernelspecs,
 * /kernelspecs/ resources, /api/kernels, and /api/contents (run on the thread pool),
 * plus the pages (/login, /logout, and the UI's through web.c); the drive's routes
 * (/api/uploads, /api/drive, /files) dispatch into their own files. */
#include "hub/api.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/b64scan.h"
#include "common/base64.h"
#include "common/jsonbig.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/api_runtimes.h"
#include "hub/auth.h"
#include "hub/contents.h"
#include "hub/download.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/secrets.h"
#include "hub/sessions.h"
#include "hub/tus.h"
#include "hub/web.h"

#define LABBOOK_VERSION "0.1.0"

static bool changes_state(enum http_method m)
{
    return m == HTTP_POST || m == HTTP_PUT || m == HTTP_PATCH || m == HTTP_DELETE;
}

/* --- /api/kernels --- */

int api_start_status(int err)
{
    switch (err) {
    case -ENOENT:
        return 404;
    case -E2BIG:
        return 400; /* a runtime type this server cannot hold */
    case -EDQUOT:
        return 403; /* the user's limit of runtimes of that type */
    case -EAGAIN:
        return 503; /* the queue is full */
    default:
        return 500;
    }
}

static void on_started(void *ctx, struct kernel *k, int err, const char *reason)
{
    struct http_pending *p = ctx;
    if (err < 0) {
        if (k)
            kernel_shutdown(k, NULL, NULL);
        http_pending_reply_error(p, 500, "the kernel failed to start: %s",
                                 reason ? reason : "unknown reason");
        return;
    }
    json_t *m = kernel_model(k);
    char *body = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    http_pending_reply_raw(p, 201, "application/json", body, strlen(body),
                           xasprintf("/api/kernels/%s", k->id));
}

static void on_restarted(void *ctx, struct kernel *k, int err, const char *reason)
{
    struct http_pending *p = ctx;
    if (err < 0)
        http_pending_reply_error(p, 500, "the kernel failed to restart: %s",
                                 reason ? reason : "unknown reason");
    else
        http_pending_reply_json(p, 200, kernel_model(k));
}

static void on_gone(void *ctx, struct kernel *k, int err, const char *reason)
{
    (void)k;
    (void)err;
    (void)reason;
    http_pending_reply_raw(ctx, 204, NULL, NULL, 0, NULL);
}

static void kernels_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method == HTTP_GET) {
            json_t *list = json_array();
            for (struct kernel *k = h->kernels; k; k = k->next)
                if (k->owner == v->user.id && k->life != KERNEL_STOPPING)
                    json_array_append_new(list, kernel_model(k));
            http_reply_json(req, 200, list);
            return;
        }
        if (v->method != HTTP_POST) {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
        json_t *body;
        if (http_body_json(req, true, &body) < 0)
            return;
        const char *name = json_string_value(json_object_get(body, "name"));
        if (!name)
            name = h->cfg.default_kernel;
        char *cwd = hub_user_drive(h, &v->user);
        struct kernel *k;
        char *err = NULL;
        struct http_pending *p = http_defer(req);
        int r = kernel_start(h, &v->user, name, cwd, NULL, on_started, p, &k, &err);
        free(cwd);
        json_decref(body);
        if (r == KERNEL_QUEUED) { /* answered now: it starts when its turn comes */
            json_t *m = kernel_model(k);
            char *text = json_dumps(m, JSON_COMPACT);
            json_decref(m);
            http_pending_reply_raw(p, 201, "application/json", text, strlen(text),
                                   xasprintf("/api/kernels/%s", k->id));
        } else if (r < 0) {
            http_pending_reply_error(p, api_start_status(r), "%s", err);
            free(err);
        }
        return;
    }
    char id[64];
    const char *s = rest + 1, *slash = strchr(s, '/');
    size_t idlen = slash ? (size_t)(slash - s) : strlen(s);
    if (idlen >= sizeof(id)) {
        http_reply_error(req, 404, "Kernel does not exist");
        return;
    }
    memcpy(id, s, idlen);
    id[idlen] = '\0';
    struct kernel *k = kernel_find(h, &v->user, id);
    if (!k) {
        http_reply_error(req, 404, "Kernel does not exist: %s", id);
        return;
    }
    const char *action = slash ? slash : "";
    if (!*action && v->method == HTTP_GET) {
        http_reply_json(req, 200, kernel_model(k));
    } else if (!*action && v->method == HTTP_DELETE) {
        kernel_shutdown(k, on_gone, http_defer(req));
    } else if (!strcmp(action, "/interrupt") && v->method == HTTP_POST) {
        kernel_interrupt(k);
        http_reply_empty(req, 204);
    } else if (!strcmp(action, "/restart") && v->method == HTTP_POST) {
        kernel_restart(k, on_restarted, http_defer(req));
    } else if (!strcmp(action, "/channels")) {
        http_reply_error(req, 400, "this is a WebSocket endpoint: connect with an Upgrade request");
    } else {
        http_reply_error(req, 405, "method not allowed");
    }
}

/* --- /api/contents, on the thread pool --- */

/* A request or answer this big gives its memory back to the system afterwards. */
#define BIG_WORK (4 << 20)

struct contents_job {
    uv_work_t work;
    struct hub *h;
    struct user user;
    struct http_pending *p;
    struct contents_req req;
    char *root, *method, *path, *cp_id, *q_type, *q_format, *q_content, *q_hash;
    char *body_text;
    size_t body_len;
    struct b64scan *scan; /* the body's "content", decoded while it arrived; or NULL */
    char *decoded;        /* its whole decoding, until contents_handle takes it */
    bool bad_json;
    char *json_err;
    int status;
    char *out;
    size_t out_len;
    char *location;
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void contents_work(uv_work_t *w)
{
    struct contents_job *j = w->data;
    json_t *body = NULL;
    char *owned = NULL;
    if (j->body_len) {
        json_error_t je;
        struct json_big big;
        size_t at = 0, chars = 0, bytes = 0;
        uint8_t *pre = j->scan ? b64scan_take(j->scan, &at, &chars, &bytes) : NULL;
        body = json_load_big_known(j->body_text, j->body_len, "content", at, chars, &big, &je);
        if (body && big.raw)
            j->req.content_raw = json_big_value(&big, &j->req.content_raw_len, &owned);
        /* What was decoded while the body arrived is the start of this string: decode
         * the rest after it. Anything else (text, escapes, bad base64) takes the
         * ordinary way, which also says what is wrong. */
        const char *fmt = json_string_value(json_object_get(body, "format"));
        size_t tail;
        if (pre && big.raw == j->body_text + at && !big.escaped && chars <= big.raw_len &&
            at + big.raw_len <= j->scan->max && fmt && !strcmp(fmt, "base64") &&
            base64_decode(big.raw + chars, big.raw_len - chars, pre + bytes, &tail) == 0) {
            j->decoded = (char *)pre;
            j->req.content_decoded = &j->decoded;
            j->req.content_decoded_len = bytes + tail;
            pre = NULL;
        }
        free(pre);
        if (!j->req.content_raw) {
            /* Parsed, and no string of the model points into it: a notebook's text
             * goes now rather than after the save. */
            free(j->body_text);
            j->body_text = NULL;
        }
        if (!json_is_object(body)) {
            json_decref(body);
            j->status = 400;
            json_t *e = http_error_body("Invalid JSON in request body", je.text);
            j->out = json_dumps(e, JSON_COMPACT);
            j->out_len = strlen(j->out);
            json_decref(e);
            return;
        }
    }
    j->req.body = body;
    json_t *out = NULL;
    int64_t quota = j->h->cfg.drive_quota;
    if (quota > 0 && !strcmp(j->method, "PUT") && body && !j->req.checkpoint) {
        /* A save must fit in the quota: the new bytes, less those it replaces are
         * not counted (a conservative check). */
        const char *fmt = json_string_value(json_object_get(body, "format"));
        int64_t size = j->req.content_raw ? (int64_t)j->req.content_raw_len : (int64_t)j->body_len;
        if (fmt && !strcmp(fmt, "base64"))
            size = size / 4 * 3;
        int64_t free_b = 0;
        if (drive_free_bytes(j->h, j->user.name, j->root, &free_b) == 0 && size > free_b) {
            char f[32], q[32], n[32];
            drive_human(free_b, f);
            drive_human(quota, q);
            drive_human(size, n);
            char *msg = xasprintf("not enough space in your drive: %s free of your %s quota, the "
                                  "file needs %s",
                                  f, q, n);
            out = http_error_body(msg, "quota");
            free(msg);
            j->status = 413;
            goto done;
        }
    }
    j->req.to_trash = j->h->cfg.trash_s > 0;
    j->status = contents_handle(&j->req, &out, &j->location);
    if (strcmp(j->method, "GET"))
        drive_usage_forget(j->h->drive, j->user.name);
done:
    json_decref(body);
    free(owned);
    free(j->decoded); /* if the handler did not take it */
    j->decoded = NULL;
    if (out) {
        j->out = json_dumps(out, JSON_COMPACT);
        j->out_len = strlen(j->out);
        json_decref(out);
    }
    /* A big model was many small blocks, now free: glibc keeps them in this thread's
     * arena unless asked to give them back. */
    if (j->body_len >= BIG_WORK || j->out_len >= BIG_WORK)
        malloc_trim(0);
}

static void contents_done(uv_work_t *w, int status)
{
    (void)status;
    struct contents_job *j = w->data;
    http_pending_reply_raw(j->p, j->status, j->out ? "application/json" : NULL, j->out, j->out_len,
                           j->location);
    contents_start_writes(); /* an upload chunk's bytes, now that its answer is out */
    free(j->root);
    free(j->method);
    free(j->path);
    free(j->cp_id);
    free(j->q_type);
    free(j->q_format);
    free(j->q_content);
    free(j->q_hash);
    free(j->body_text);
    if (j->scan)
        b64scan_free(j->scan);
    free(j->scan);
    free(j);
}

static void contents_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    struct contents_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->user = v->user;
    j->root = hub_user_drive(h, &v->user);
    j->method = xstrdup(v->method == HTTP_HEAD ? "GET" : v->method_name);
    /* ".../checkpoints" and ".../checkpoints/{id}" address a file's checkpoints. */
    char *path = xstrdup(rest);
    char *cp = strstr(path, "/checkpoints");
    while (cp) {
        char *after = cp + strlen("/checkpoints");
        if (*after == '\0' || (*after == '/' && !strchr(after + 1, '/'))) {
            j->req.checkpoint = true;
            if (*after == '/' && after[1])
                j->cp_id = xstrdup(after + 1);
            *cp = '\0';
            break;
        }
        cp = strstr(cp + 1, "/checkpoints");
    }
    j->path = path;
    j->q_type = dup_or_null(http_query(req, "type"));
    j->q_format = dup_or_null(http_query(req, "format"));
    j->q_content = dup_or_null(http_query(req, "content"));
    j->q_hash = dup_or_null(http_query(req, "hash"));
    j->scan = http_take_body_watcher(req);
    if (v->body_len)
        j->body_text = http_body_steal(req, &j->body_len);
    j->req = (struct contents_req){.root = j->root,
                                   .method = j->method,
                                   .path = j->path,
                                   .checkpoint = j->req.checkpoint,
                                   .checkpoint_id = j->cp_id,
                                   .q_type = j->q_type,
                                   .q_format = j->q_format,
                                   .q_content = j->q_content,
                                   .q_hash = j->q_hash,
                                   .max_file_size = h->cfg.max_file_get,
                                   .max_notebook = h->cfg.max_notebook,
                                   .write_behind = true};
    j->p = http_defer(req);
    if (uv_queue_work(h->loop, &j->work, contents_work, contents_done) < 0) {
        contents_work(&j->work);
        contents_done(&j->work, 0);
    }
}

/* --- small areas --- */

/* Each runtime type other than the default appears as a variant of every kernelspec:
 * python3 in the "gpu" profile is "python3-gpu", shown as "Python 3 (ipykernel) (GPU)". */
static void add_profile_variants(struct hub *h, json_t *all)
{
    json_t *specs = json_object_get(all, "kernelspecs");
    json_t *variants = json_object();
    const char *name;
    json_t *entry;
    json_object_foreach(specs, name, entry)
    {
        json_object_set_new(json_object_get(json_object_get(entry, "spec"), "metadata")
                                ?: json_object_get(entry, "spec"),
                            "labbook_profile", json_string(h->cfg.profiles[0].name));
        for (int i = 1; i < h->cfg.nprofiles; i++) {
            const struct profile *p = &h->cfg.profiles[i];
            json_t *v = json_deep_copy(entry);
            char *vname = xasprintf("%s-%s", name, p->name);
            json_t *spec = json_object_get(v, "spec");
            const char *dn = json_string_value(json_object_get(spec, "display_name"));
            char *vdisplay = xasprintf("%s (%s)", dn ? dn : name, p->display_name);
            json_object_set_new(v, "name", json_string(vname));
            json_object_set_new(spec, "display_name", json_string(vdisplay));
            json_t *md = json_object_get(spec, "metadata");
            if (!json_is_object(md)) {
                md = json_object();
                json_object_set_new(spec, "metadata", md);
            }
            json_object_set_new(md, "labbook_profile", json_string(p->name));
            json_object_set_new(md, "labbook_gpus", json_integer(p->gpus));
            json_object_set_new(variants, vname, v);
            free(vname);
            free(vdisplay);
        }
    }
    json_object_update(specs, variants);
    json_decref(variants);
}

static void kernelspecs_api(struct hub *h, struct http_req *req, const char *rest)
{
    struct kernelspec *specs;
    size_t n;
    if (kernelspec_scan(&specs, &n) == 0) {
        kernelspec_list_free(h->specs, h->nspecs);
        h->specs = specs;
        h->nspecs = n;
    }
    json_t *all = kernelspec_list_model(h->specs, h->nspecs, h->cfg.default_kernel);
    add_profile_variants(h, all);
    if (!*rest || !strcmp(rest, "/")) {
        http_reply_json(req, 200, all);
        return;
    }
    json_t *one = json_object_get(json_object_get(all, "kernelspecs"), rest + 1);
    if (one)
        http_reply_json(req, 200, json_incref(one));
    else
        http_reply_error(req, 404, "Kernel spec %s not found", rest + 1);
    json_decref(all);
}

static const char *mime_of(const char *path)
{
    if (str_ends_with(path, ".png"))
        return "image/png";
    if (str_ends_with(path, ".svg"))
        return "image/svg+xml";
    if (str_ends_with(path, ".js"))
        return "application/javascript";
    if (str_ends_with(path, ".json"))
        return "application/json";
    if (str_ends_with(path, ".css"))
        return "text/css";
    return "application/octet-stream";
}

static void kernelspec_resource(struct hub *h, struct http_req *req, const char *rest)
{
    const char *s = rest[0] == '/' ? rest + 1 : rest;
    const char *slash = strchr(s, '/');
    if (!slash) {
        http_reply_error(req, 404, "not found");
        return;
    }
    char *name = xstrndup(s, (size_t)(slash - s));
    char *path = NULL;
    char *data = NULL;
    size_t len;
    if (kernelspec_resource_path(h->specs, h->nspecs, name, slash + 1, &path) == 0 &&
        read_file(path, 16 << 20, &data, &len) == 0)
        http_reply(req, 200, mime_of(path), data, len);
    else
        http_reply_error(req, 404, "Kernel spec resource not found");
    free(name);
    free(path);
}

static void status_api(struct hub *h, struct http_req *req)
{
    int kernels = 0, conns = 0;
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (k->life != KERNEL_STOPPING) {
            kernels++;
            conns += kernel_count_clients(k);
        }
    http_reply_json(req, 200,
                    json_pack("{s:s, s:s, s:i, s:i}", "started", h->started, "last_activity",
                              h->last_activity, "connections", conns, "kernels", kernels));
}

/* jupyter_server's /api/me, plus what labbook's UI tells its user about the server:
 * whether their code runs sandboxed (else the UI warns, as the log does). */
static void me_api(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    char initials[3] = {0};
    initials[0] = (char)(v->user.name[0] >= 'a' && v->user.name[0] <= 'z' ? v->user.name[0] - 32
                                                                          : v->user.name[0]);
    http_reply_json(req, 200,
                    json_pack("{s:{s:s, s:s, s:s, s:s, s:n, s:n}, s:{}, s:{s:b, s:b}}", "identity",
                              "username", v->user.name, "name", v->user.name, "display_name",
                              v->user.name, "initials", initials, "avatar_url", "color",
                              "permissions", "labbook", "sandboxed", h->sandboxed, "admin",
                              v->user.admin));
}

/* Bodies smaller than this are decoded when complete: the scan would gain nothing. */
#define SCAN_MIN_BODY (64 << 10)

static void scan_see(void *ctx, const char *body, size_t len)
{
    b64scan_feed(ctx, body, len);
}

static void scan_drop(void *ctx)
{
    b64scan_free(ctx);
    free(ctx);
}

/* Paths name files, kernels and runtimes, and come back in JSON: one that is not UTF-8
 * (once percent-decoded) is refused here, for every route, as jupyter_server (tornado)
 * refuses it. Returns true after answering 400. */
static bool refuse_path_not_text(struct http_req *req)
{
    if (utf8_valid_str(http_view(req)->path))
        return false;
    http_reply_error(req, 400, "the request path is not UTF-8 (once percent-decoded)");
    return true;
}

bool api_route_head(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    const char *path = v->path;
    if (refuse_path_not_text(req))
        return true;
    int64_t cl = http_content_length(req);
    if (!v->authed && cl > 0) {
        /* Nothing unauthenticated is held: only the sign-in form's small body is read. */
        bool form = v->method == HTTP_POST && !strcmp(path, "/login");
        if (!form || cl > AUTH_FORM_MAX) {
            http_discard_body(req);
            if (form)
                http_reply_error(req, 413, "sign-in form too large");
            else
                http_reply_error(req, 403, "Forbidden: authentication required");
            return true;
        }
    }
    if (v->method == HTTP_PUT && v->authed && str_starts_with(path, "/api/contents/") &&
        str_ends_with(path, ".ipynb") && cl > h->cfg.max_notebook) {
        /* Refused before the body is read: parsing it would cost several times its size. */
        http_reply_error(req, 413,
                         "the notebook is over %lld MiB, the largest this server saves "
                         "(max_notebook_mb): clear some outputs, or upload it to the drive",
                         (long long)(h->cfg.max_notebook >> 20));
        return true;
    }
    if (v->method == HTTP_PUT && v->authed && str_starts_with(path, "/api/contents/") &&
        cl >= SCAN_MIN_BODY && cl <= h->cfg.max_body) {
        /* A file saved or uploaded in chunks: its base64 is decoded as it arrives. */
        struct b64scan *s = xmalloc(sizeof(*s));
        b64scan_init(s, "content", (size_t)cl);
        http_watch_body(req, scan_see, scan_drop, s);
        return false;
    }
    if (!str_starts_with(path, "/api/uploads") || (path[12] != '\0' && path[12] != '/'))
        return false;
    if (!v->authed) {
        if (v->token_expired)
            http_reply_error(req, 401, "Unauthorized: the token has expired");
        else
            http_reply_error(req, 403, "Forbidden: authentication required");
        return true;
    }
    if (v->by_cookie && changes_state(v->method) && auth_check_change(req, false) < 0)
        return true;
    tus_handle(h, req, path + 12);
    return true;
}

void api_route(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    const char *path = v->path;
    if (refuse_path_not_text(req))
        return;
    if (!strcmp(path, "/login")) {
        auth_login_page(h, req);
        return;
    }
    if (!strcmp(path, "/logout")) {
        auth_logout(h, req);
        return;
    }
    if (!strcmp(path, "/api") || !strcmp(path, "/api/")) {
        http_reply_json(req, 200,
                        json_pack("{s:s, s:s}", "version", "2.0.0", "labbook", LABBOOK_VERSION));
        return;
    }
    if (!strcmp(path, "/metrics")) {
        metrics_api(h, req);
        return;
    }
    if (web_is_page(path) && (v->method == HTTP_GET || v->method == HTTP_HEAD) &&
        http_query(req, "token")) {
        auth_page_link(h, req); /* /tree?token=T: sign in, then the page without it */
        return;
    }
    if (!v->authed) {
        bool api = str_starts_with(path, "/api/") || str_starts_with(path, "/kernelspecs/");
        if (api && v->token_expired) {
            http_reply_error(req, 401, "Unauthorized: the token has expired");
        } else if (api) {
            http_reply_error(req, 403, "Forbidden: authentication required");
        } else {
            /* Back to the page asked for after signing in (login only follows paths
             * on this server). */
            struct buf loc = {0};
            buf_append(&loc, "/login?next=", 12);
            http_url_encode(&loc, web_is_page(path) ? path : "/", true);
            char *l = buf_steal(&loc, NULL);
            http_add_header(req, "location:", l);
            free(l);
            http_reply_empty(req, 302);
        }
        return;
    }
    if (v->by_cookie && changes_state(v->method) &&
        auth_check_change(req, str_starts_with(path, "/api/")) < 0)
        return;
    if (web_is_page(path) && (v->method == HTTP_GET || v->method == HTTP_HEAD)) {
        web_page(h, req);
    } else if (str_starts_with(path, "/assets/") &&
               (v->method == HTTP_GET || v->method == HTTP_HEAD)) {
        web_asset(h, req, path + strlen("/assets/"));
    } else if (!strcmp(path, "/api/status")) {
        status_api(h, req);
    } else if (!strcmp(path, "/api/me")) {
        me_api(h, req);
    } else if (str_starts_with(path, "/api/kernelspecs") && (path[16] == '\0' || path[16] == '/')) {
        kernelspecs_api(h, req, path + 16);
    } else if (str_starts_with(path, "/kernelspecs/")) {
        kernelspec_resource(h, req, path + strlen("/kernelspecs"));
    } else if (str_starts_with(path, "/api/kernels") && (path[12] == '\0' || path[12] == '/')) {
        kernels_api(h, req, path + 12);
    } else if (str_starts_with(path, "/api/sessions") && (path[13] == '\0' || path[13] == '/')) {
        sessions_handle(h, req, path + 13);
    } else if (str_starts_with(path, "/api/contents") && (path[13] == '\0' || path[13] == '/')) {
        contents_api(h, req, path + 13);
    } else if (str_starts_with(path, "/api/runtimes") && (path[13] == '\0' || path[13] == '/')) {
        runtimes_api(h, req, path + 13);
    } else if (str_starts_with(path, "/api/secrets") && (path[12] == '\0' || path[12] == '/')) {
        secrets_api(h, req, path + 12);
    } else if (str_starts_with(path, "/api/drive/")) {
        drive_api(h, req, path + 10);
    } else if (str_starts_with(path, "/files/")) {
        download_file(h, req, path + 6);
    } else if (!strcmp(path, "/api/terminals")) {
        http_reply_json(req, 200, json_array());
    } else {
        http_reply_error(req, 404, "Not Found");
    }
}
