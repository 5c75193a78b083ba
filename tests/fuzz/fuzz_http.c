/* libFuzzer target: one HTTP request, end to end through the hub's router and every
 * handler behind it (contents, drive, tus, downloads, kernels, sessions, runtimes),
 * as a signed-in user, on a real data folder and the hub's own loop. The socket side
 * (libwebsockets, src/hub/http.c) is replaced by an in-memory implementation of
 * http.h below: the input is "METHOD TARGET\n", header lines "name: value\n", an
 * empty line, then the body. The target is percent-decoded as libwebsockets does;
 * the query is split at '&'. Deferred answers are waited for by running the loop,
 * streamed ones are drained. No kernelspec exists, so nothing starts a runtime.
 * Every response must be well formed: a status in 100..599 and, where the body is
 * JSON, valid UTF-8 JSON. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/config.h"
#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/api.h"
#include "hub/drive.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/scheduler.h"
#include "sandbox/gpu.h"

#define MAX_ARGS 32
#define MAX_HDRS 32

struct http_req {
    struct hub *hub;
    struct http_req_view v;
    struct buf body;
    char *args[MAX_ARGS]; /* "name=value", decoded */
    size_t nargs;
    char *hname[MAX_HDRS], *hval[MAX_HDRS];
    size_t nhdrs;
    int64_t clen;
    char **allocs;
    size_t nallocs;
    bool responded;
    int status;
    char *ctype, *resp;
    size_t resp_len;
    struct http_pending *pending;
    const struct http_body_sink *sink;
    void *sink_ctx;
    bool sink_ended;
    void (*watch)(void *ctx, const char *body, size_t len);
    void (*watch_drop)(void *ctx);
    void *watch_ctx;
    const struct http_stream_ops *stream;
    void *stream_ctx;
    bool stream_woken;
};

struct http_pending {
    struct http_req *req;
};

/* ---- http.h, in memory ---- */

int http_start(struct hub *h, char **err)
{
    (void)h;
    (void)err;
    return 0;
}

void http_destroy(struct hub *h)
{
    (void)h;
}

const char *http_status_text(int status)
{
    return status >= 500 ? "Server Error" : "Error";
}

json_t *http_error_body(const char *message, const char *reason)
{
    return json_pack("{s:o, s:o}", "message", json_text(message), "reason",
                     reason ? json_text(reason) : json_null());
}

const struct http_req_view *http_view(struct http_req *req)
{
    return &req->v;
}

char *http_body_steal(struct http_req *req, size_t *len)
{
    char *b = buf_steal(&req->body, len);
    if (!b) {
        b = xstrdup("");
        if (len)
            *len = 0;
    }
    req->v.body = "";
    req->v.body_len = 0;
    return b;
}

static const char *keep(struct http_req *req, char *s)
{
    req->allocs = xrealloc(req->allocs, (req->nallocs + 1) * sizeof(char *));
    req->allocs[req->nallocs++] = s;
    return s;
}

const char *http_query(struct http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nargs; i++) {
        if (!strncmp(req->args[i], name, n) && req->args[i][n] == '=')
            return keep(req, xstrdup(req->args[i] + n + 1));
        if (!strcmp(req->args[i], name))
            return keep(req, xstrdup(""));
    }
    return NULL;
}

const char *http_header(struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (!strcmp(req->hname[i], name))
            return req->hval[i];
    return NULL;
}

void http_add_header(struct http_req *req, const char *name, const char *value)
{
    (void)req;
    if (!name || !value || strchr(value, '\n') || strchr(value, '\r'))
        abort(); /* a header that would split the response */
}

void http_reply(struct http_req *req, int status, const char *content_type, char *body, size_t len)
{
    if (req->responded) {
        free(body);
        return;
    }
    if (status < 100 || status > 599)
        abort();
    req->responded = true;
    req->status = status;
    req->ctype = content_type ? xstrdup(content_type) : NULL;
    req->resp = body;
    req->resp_len = body ? len : 0;
}

void http_reply_json(struct http_req *req, int status, json_t *body)
{
    char *s = NULL;
    if (body) {
        s = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    if (!s)
        abort(); /* a handler built no JSON: a client would have got nothing */
    http_reply(req, status, "application/json", s, strlen(s));
}

static void reply_error_v(struct http_req *req, int status, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    http_reply_json(req, status, http_error_body(msg, NULL));
    free(msg);
}

void http_reply_error(struct http_req *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(req, status, fmt, ap);
    va_end(ap);
}

void http_reply_empty(struct http_req *req, int status)
{
    http_reply(req, status, NULL, NULL, 0);
}

struct http_pending *http_defer(struct http_req *req)
{
    struct http_pending *p = xcalloc(1, sizeof(*p));
    p->req = req;
    req->pending = p;
    return p;
}

bool http_pending_alive(struct http_pending *p)
{
    return p->req != NULL;
}

struct http_req *http_pending_req(struct http_pending *p)
{
    return p->req;
}

static void pending_done(struct http_pending *p)
{
    if (p->req)
        p->req->pending = NULL;
    free(p);
}

void http_pending_reply_json(struct http_pending *p, int status, json_t *body)
{
    if (p->req)
        http_reply_json(p->req, status, body);
    else
        json_decref(body);
    pending_done(p);
}

void http_pending_reply_error(struct http_pending *p, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (p->req)
        reply_error_v(p->req, status, fmt, ap);
    va_end(ap);
    pending_done(p);
}

void http_pending_reply_raw(struct http_pending *p, int status, const char *content_type,
                            char *body, size_t len, char *location)
{
    if (p->req)
        http_reply(p->req, status, content_type, body, len);
    else
        free(body);
    free(location);
    pending_done(p);
}

struct lws *http_wsi(struct http_req *req)
{
    (void)req;
    return NULL;
}

int http_body_json(struct http_req *req, bool allow_empty, json_t **out)
{
    *out = NULL;
    if (allow_empty && req->v.body_len == 0)
        return 0;
    json_error_t je;
    json_t *b = json_loadb(req->v.body, req->v.body_len, 0, &je);
    if (!json_is_object(b)) {
        json_decref(b);
        http_reply_error(req, 400, "Invalid JSON in request body: %s",
                         b ? "not a JSON object" : je.text);
        return -EINVAL;
    }
    *out = b;
    return 0;
}

void http_take_body(struct http_req *req, const struct http_body_sink *sink, void *ctx)
{
    req->sink = sink;
    req->sink_ctx = ctx;
}

void http_watch_body(struct http_req *req, void (*see)(void *ctx, const char *body, size_t len),
                     void (*drop)(void *ctx), void *ctx)
{
    if (req->watch_drop)
        req->watch_drop(req->watch_ctx);
    req->watch = see;
    req->watch_drop = drop;
    req->watch_ctx = ctx;
}

void *http_take_body_watcher(struct http_req *req)
{
    void *ctx = req->watch_ctx;
    req->watch = NULL;
    req->watch_drop = NULL;
    req->watch_ctx = NULL;
    return ctx;
}

int64_t http_content_length(struct http_req *req)
{
    return req->clen;
}

void http_reply_stream(struct http_req *req, int status, const char *content_type, int64_t length,
                       const struct http_stream_ops *ops, void *ctx)
{
    (void)length;
    if (req->responded) {
        ops->close(ctx);
        return;
    }
    req->stream = ops;
    req->stream_ctx = ctx;
    http_reply(req, status, content_type, NULL, 0);
}

void http_stream_wake(struct http_req *req)
{
    req->stream_woken = true;
}

/* ---- the hub ---- */

static struct hub hub;
static char *base;
static const struct user alice = {.id = 1, .name = "alice"};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void cleanup(void)
{
    if (base)
        nftw(base, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    log_set_level(LOG_ERROR); /* quiet */
    char tmpl[] = "/tmp/labbook-fuzz-http-XXXXXX";
    if (!mkdtemp(tmpl))
        abort();
    base = xstrdup(tmpl);
    atexit(cleanup);
    struct hub *h = &hub;
    char *err = NULL;
    if (config_load(NULL, &h->cfg, &err) < 0)
        abort();
    h->cfg.max_body = 1 << 20;
    h->data_dir = xstrdup(base);
    h->drive_dir = xasprintf("%s/drive", base);
    h->runtimes_dir = xasprintf("%s/runtimes", base);
    h->sock_path = xasprintf("%s/run/hub.sock", base);
    h->self_exe = xstrdup("/bin/false");
    mkdir_p(h->drive_dir, 0711);
    mkdir_p(h->runtimes_dir, 0700);
    char *db = xasprintf("%s/labbook.db", base);
    if (store_open(db, &h->store, &err) < 0)
        abort();
    free(db);
    store_user_add(h->store, "alice", false, NULL);
    if (gpu_provider_open("none", &h->gpus, &err) < 0)
        abort();
    h->sched = scheduler_new(0);
    h->drive = drive_new(h->data_dir);
    mkdir_p(h->drive->uploads_dir, 0700);
    h->loop = uv_default_loop();
    iso8601_now(h->started);
    hub_touch(h);
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) ('+' stays); NUL bytes end it, as in a C string. */
static char *decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static const struct {
    const char *name;
    enum http_method m;
} methods[] = {{"GET", HTTP_GET},        {"POST", HTTP_POST},     {"PUT", HTTP_PUT},
               {"PATCH", HTTP_PATCH},    {"DELETE", HTTP_DELETE}, {"HEAD", HTTP_HEAD},
               {"OPTIONS", HTTP_OPTIONS}};

/* Parses the input into req; false if it is not a request at all. */
static bool parse(struct http_req *req, const char *d, size_t n)
{
    const char *end = d + n;
    const char *nl = memchr(d, '\n', n);
    if (!nl)
        return false;
    const char *sp = memchr(d, ' ', (size_t)(nl - d));
    if (!sp)
        return false;
    bool found = false;
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++)
        if ((size_t)(sp - d) == strlen(methods[i].name) &&
            !memcmp(d, methods[i].name, (size_t)(sp - d))) {
            req->v.method = methods[i].m;
            req->v.method_name = methods[i].name;
            found = true;
        }
    if (!found)
        return false;
    const char *t = sp + 1, *q = memchr(t, '?', (size_t)(nl - t));
    const char *pend = q ? q : nl;
    if (pend == t || *t != '/')
        return false;
    req->v.path = decode(t, (size_t)(pend - t));
    if (q) {
        const char *a = q + 1;
        while (a < nl && req->nargs < MAX_ARGS) {
            const char *amp = memchr(a, '&', (size_t)(nl - a));
            const char *ae = amp ? amp : nl;
            req->args[req->nargs++] = decode(a, (size_t)(ae - a));
            a = ae + 1;
        }
    }
    const char *p = nl + 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        if (e == p) { /* the empty line */
            p = e + 1;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon && req->nhdrs < MAX_HDRS) {
            char *name = xmalloc((size_t)(colon - p) + 2);
            for (size_t i = 0; i < (size_t)(colon - p); i++)
                name[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
            name[colon - p] = ':';
            name[colon - p + 1] = '\0';
            const char *v = colon + 1;
            while (v < e && *v == ' ')
                v++;
            req->hname[req->nhdrs] = name;
            req->hval[req->nhdrs] = xstrndup(v, (size_t)(e - v));
            req->nhdrs++;
        }
        p = e + 1;
    }
    if (p > end)
        p = end;
    buf_append(&req->body, p, (size_t)(end - p));
    req->clen = (int64_t)(end - p);
    req->v.body = req->body.data ? req->body.data : "";
    req->v.body_len = req->body.len;
    return true;
}

static void req_free(struct http_req *req)
{
    if (req->pending)
        req->pending->req = NULL;
    if (req->sink && !req->sink_ended) {
        req->sink_ended = true;
        req->sink->end(req->sink_ctx, NULL);
    }
    if (req->stream)
        req->stream->close(req->stream_ctx);
    if (req->watch_drop)
        req->watch_drop(req->watch_ctx);
    buf_free(&req->body);
    for (size_t i = 0; i < req->nargs; i++)
        free(req->args[i]);
    for (size_t i = 0; i < req->nhdrs; i++) {
        free(req->hname[i]);
        free(req->hval[i]);
    }
    for (size_t i = 0; i < req->nallocs; i++)
        free(req->allocs[i]);
    free(req->allocs);
    free((char *)req->v.path);
    free(req->ctype);
    free(req->resp);
}

/* Runs the loop until the request is answered (thread-pool work included), or gives
 * up after a while (an answer that never comes is the client's timeout, not a bug
 * this target looks for). */
static void settle(struct http_req *req)
{
    for (int i = 0; i < 200 && !req->responded; i++)
        uv_run(hub.loop, UV_RUN_ONCE);
}

static void drain_stream(struct http_req *req)
{
    char *chunk = xmalloc(1 << 16);
    for (int i = 0; i < 10000 && req->stream; i++) {
        bool last = false;
        req->stream_woken = false;
        ssize_t n = req->stream->produce(req->stream_ctx, chunk, 1 << 16, &last);
        if (n < 0 || last)
            break;
        if (n == 0) {
            for (int k = 0; k < 200 && !req->stream_woken; k++)
                uv_run(hub.loop, UV_RUN_ONCE);
            if (!req->stream_woken)
                break;
        }
    }
    free(chunk);
}

static void check_answer(struct http_req *req)
{
    if (!req->responded || !req->ctype || strcmp(req->ctype, "application/json"))
        return;
    if (!utf8_valid(req->resp, req->resp_len))
        abort();
    json_t *j = json_loadb(req->resp, req->resp_len, JSON_DECODE_ANY, NULL);
    if (!j)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16))
        return 0;
    struct http_req req = {.hub = &hub, .clen = -1};
    req.v.authed = true;
    req.v.user = alice;
    if (!parse(&req, (const char *)data, size)) {
        req_free(&req);
        return 0;
    }
    if (!api_route_head(&hub, &req)) {
        if (req.watch)
            req.watch(req.watch_ctx, req.v.body, req.v.body_len);
        api_route(&hub, &req);
    } else if (req.sink) {
        int r = 0;
        for (size_t off = 0; off < req.body.len && r == 0; off += 4096) {
            size_t n = req.body.len - off < 4096 ? req.body.len - off : 4096;
            r = req.sink->chunk(req.sink_ctx, req.body.data + off, n);
        }
        req.sink_ended = true;
        req.sink->end(req.sink_ctx, &req);
    }
    settle(&req);
    check_answer(&req);
    drain_stream(&req);
    req_free(&req);
    /* Whatever the request left running (extractions, zips) finishes before the next. */
    for (int i = 0; i < 1000 && uv_loop_alive(hub.loop); i++)
        uv_run(hub.loop, UV_RUN_NOWAIT);
    return 0;
}
