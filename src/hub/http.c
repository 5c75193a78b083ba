/* libwebsockets on the hub's libuv loop: request parsing with a capped body (or a
 * route's sink taking it as it arrives), authentication, dispatch to the API router,
 * buffered and streamed responses written as the socket drains, deferred answers,
 * and the WebSocket plumbing for kernel channels. */
#include "hub/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/api.h"
#include "hub/auth.h"
#include "hub/channels.h"
#include "hub/hub.h"

#define V1_PROTOCOL "v1.kernel.websocket.jupyter.org"
#define WRITE_CHUNK (256 * 1024)

struct http_req {
    struct lws *wsi;
    struct hub *hub;
    struct http_req_view v;
    struct buf body;
    bool body_too_big;
    bool dispatched;
    char **allocs;
    size_t nallocs;
    /* response */
    bool responded;
    int status;
    char *ctype;
    char *resp;
    size_t resp_len, resp_off;
    struct buf hdrs; /* "name:\0value\0" pairs */
    bool headers_done;
    struct http_pending *pending;
    uint64_t t0;
    int64_t clen; /* Content-Length, -1 if none */
    /* a streamed request body (http_take_body) */
    const struct http_body_sink *sink;
    void *sink_ctx;
    bool sink_stopped, sink_ended;
    bool body_pending; /* the body is still arriving: the answer waits for it */
    bool discard_body; /* answered at once; libwebsockets throws the body away unread */
    /* a buffered body's watcher (http_watch_body) */
    void (*watch)(void *ctx, const char *body, size_t len);
    void (*watch_drop)(void *ctx);
    void *watch_ctx;
    /* a streamed response (http_reply_stream) */
    const struct http_stream_ops *stream;
    void *stream_ctx;
    int64_t stream_len, stream_sent;
    bool stream_waiting;
    bool stream_closing; /* all written, close once libwebsockets has sent it */
};

struct http_pending {
    struct http_req *req;
};

/* Per-connection slot libwebsockets allocates for us. */
struct conn_slot {
    struct http_req *req;
    struct client *client;
};

static unsigned char scratch[LWS_PRE + WRITE_CHUNK];

static const char *method_names[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

const char *http_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

void http_url_encode(struct buf *b, const char *s, bool keep_slash)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[4];
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-_.~", *c) || (keep_slash && *c == '/'))
            buf_append(b, (const char *)c, 1);
        else
            buf_append(b, esc, (size_t)snprintf(esc, sizeof(esc), "%%%02X", *c));
    }
}

json_t *http_error_body(const char *message, const char *reason)
{
    /* Messages quote what the client sent (paths, names): never refused for its bytes. */
    return json_pack("{s:o, s:o}", "message", json_text(message), "reason",
                     reason ? json_text(reason) : json_null());
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

struct lws *http_wsi(struct http_req *req)
{
    return req->wsi;
}

const struct http_req_view *http_view(struct http_req *req)
{
    return &req->v;
}

static char *req_keep(struct http_req *req, char *s)
{
    req->allocs = xrealloc(req->allocs, (req->nallocs + 1) * sizeof(char *));
    req->allocs[req->nallocs++] = s;
    return s;
}

char *http_body_steal(struct http_req *req, size_t *len)
{
    char *b = buf_steal(&req->body, len);
    req->v.body = "";
    req->v.body_len = 0;
    return b;
}

const char *http_query(struct http_req *req, const char *name)
{
    if (!req->wsi)
        return NULL;
    char key[64];
    snprintf(key, sizeof(key), "%s=", name);
    size_t klen = strlen(key);
    char tmp[8192];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(req->wsi, tmp, sizeof(tmp), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            return NULL;
        if ((size_t)n >= klen && !strncmp(tmp, key, klen))
            return req_keep(req, xstrdup(tmp + klen));
        if (!strcmp(tmp, name)) /* "?content" with no value */
            return req_keep(req, xstrdup(""));
    }
}

const char *http_header(struct http_req *req, const char *name)
{
    if (!req->wsi)
        return NULL;
    static const struct {
        const char *name;
        enum lws_token_indexes tok;
    } known[] = {
        {"authorization:", WSI_TOKEN_HTTP_AUTHORIZATION},
        {"cookie:", WSI_TOKEN_HTTP_COOKIE},
        {"content-type:", WSI_TOKEN_HTTP_CONTENT_TYPE},
        {"host:", WSI_TOKEN_HOST},
        {"origin:", WSI_TOKEN_ORIGIN},
        {"range:", WSI_TOKEN_HTTP_RANGE},
        {"referer:", WSI_TOKEN_HTTP_REFERER},
        {"if-none-match:", WSI_TOKEN_HTTP_IF_NONE_MATCH},
        {"if-range:", WSI_TOKEN_HTTP_IF_RANGE},
        {"content-length:", WSI_TOKEN_HTTP_CONTENT_LENGTH},
        {"accept-encoding:", WSI_TOKEN_HTTP_ACCEPT_ENCODING},
    };
    for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
        if (strcmp(known[i].name, name))
            continue;
        int len = lws_hdr_total_length(req->wsi, known[i].tok);
        if (len <= 0)
            return NULL;
        char *v = xmalloc((size_t)len + 1);
        if (lws_hdr_copy(req->wsi, v, len + 1, known[i].tok) < 0) {
            free(v);
            return NULL;
        }
        return req_keep(req, v);
    }
    int len = lws_hdr_custom_length(req->wsi, name, (int)strlen(name));
    if (len < 0)
        return NULL;
    char *v = xmalloc((size_t)len + 1);
    if (lws_hdr_custom_copy(req->wsi, v, len + 1, name, (int)strlen(name)) < 0) {
        free(v);
        return NULL;
    }
    return req_keep(req, v);
}

void http_add_header(struct http_req *req, const char *name, const char *value)
{
    buf_append(&req->hdrs, name, strlen(name) + 1);
    buf_append(&req->hdrs, value, strlen(value) + 1);
}

static void req_free(struct http_req *req)
{
    if (!req)
        return;
    if (req->pending)
        req->pending->req = NULL;
    if (req->sink && !req->sink_ended) {
        req->sink_ended = true;
        req->sink->end(req->sink_ctx, NULL);
    }
    if (req->stream) {
        const struct http_stream_ops *ops = req->stream;
        req->stream = NULL;
        ops->close(req->stream_ctx);
    }
    if (req->watch_drop)
        req->watch_drop(req->watch_ctx);
    buf_free(&req->body);
    buf_free(&req->hdrs);
    for (size_t i = 0; i < req->nallocs; i++)
        free(req->allocs[i]);
    free(req->allocs);
    free((char *)req->v.path);
    free(req->ctype);
    free(req->resp);
    free(req);
}

void http_reply(struct http_req *req, int status, const char *content_type, char *body, size_t len)
{
    if (req->responded) {
        free(body);
        return;
    }
    req->responded = true;
    req->status = status;
    req->ctype = content_type ? xstrdup(content_type) : NULL;
    req->resp = body;
    req->resp_len = body ? len : 0;
    if (req->wsi)
        lws_callback_on_writable(req->wsi);
}

void http_reply_json(struct http_req *req, int status, json_t *body)
{
    char *s = NULL;
    size_t len = 0;
    if (body) {
        s = json_dumps(body, JSON_COMPACT);
        len = strlen(s);
        json_decref(body);
    }
    http_reply(req, status, s ? "application/json" : NULL, s, len);
}

static json_t *error_body_v(int status, const char *fmt, va_list ap)
{
    char *msg = xvasprintf(fmt, ap);
    json_t *b = http_error_body(msg, status >= 500 ? http_status_text(status) : NULL);
    free(msg);
    return b;
}

void http_reply_error(struct http_req *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *b = error_body_v(status, fmt, ap);
    va_end(ap);
    http_reply_json(req, status, b);
}

void http_reply_empty(struct http_req *req, int status)
{
    http_reply(req, status, NULL, NULL, 0);
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

void http_discard_body(struct http_req *req)
{
    req->discard_body = true;
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
    if (req->responded) {
        ops->close(ctx);
        return;
    }
    req->stream = ops;
    req->stream_ctx = ctx;
    req->stream_len = length;
    req->stream_sent = 0;
    if (length < 0)
        http_add_header(req, "connection:", "close");
    http_reply(req, status, content_type, NULL, 0);
}

void http_stream_wake(struct http_req *req)
{
    if (req->wsi && req->stream_waiting) {
        req->stream_waiting = false;
        lws_callback_on_writable(req->wsi);
    }
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
    json_t *b = error_body_v(status, fmt, ap);
    va_end(ap);
    http_pending_reply_json(p, status, b);
}

void http_pending_reply_raw(struct http_pending *p, int status, const char *content_type,
                            char *body, size_t len, char *location)
{
    if (p->req) {
        if (location)
            http_add_header(p->req, "location:", location);
        http_reply(p->req, status, content_type, body, len);
    } else {
        free(body);
    }
    free(location);
    pending_done(p);
}

static bool has_header(struct http_req *req, const char *name);

/* Headers every response carries unless its handler set its own (the UI's pages need
 * a looser policy than the API's JSON: web.c). What libwebsockets' "best practices"
 * option sent, which cannot be changed per response. */
static const struct {
    const char *name, *value;
} default_headers[] = {
    {"content-security-policy:",
     "default-src 'none'; img-src 'self' data: ; script-src 'self'; font-src 'self'; "
     "style-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
     "form-action 'self'"},
    {"x-content-type-options:", "nosniff"},
    {"x-frame-options:", "deny"},
    /* Not no-referrer: under it a browser sends "Origin: null" on a page's own form
     * posts and fetches, and the same-origin check (auth.c) needs the real one. */
    {"referrer-policy:", "same-origin"},
    {"cache-control:", "no-store"},
};

static int add_default_headers(struct lws *wsi, struct http_req *req, unsigned char **p,
                               unsigned char *end)
{
    for (size_t i = 0; i < ARRAY_SIZE(default_headers); i++) {
        const char *name = default_headers[i].name, *val = default_headers[i].value;
        if (req && has_header(req, name))
            continue;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)val, (int)strlen(val), p, end))
            return -1;
    }
    return 0;
}

/* Writes a small complete response straight away (for refusals before a request
 * object exists). Returns 0 or -1. */
static int write_simple(struct lws *wsi, int status, const char *message)
{
    unsigned char hbuf[LWS_PRE + 1024], *start = hbuf + LWS_PRE, *p = start,
                                        *end = hbuf + sizeof(hbuf);
    json_t *b = http_error_body(message, NULL);
    char *s = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    size_t len = strlen(s);
    int r = -1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", len, &p, end) ||
        add_default_headers(wsi, NULL, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        goto out;
    unsigned char *body = xmalloc(LWS_PRE + len);
    memcpy(body + LWS_PRE, s, len);
    r = lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
    free(body);
out:
    free(s);
    return r;
}

/* Lingering close. Closing a socket whose peer is still sending makes the kernel
 * answer with a reset, and a client that gets the reset while it writes (EPIPE) never
 * reads the answer queued before it. So a connection refused before its body was read
 * is half-closed once its answer is out, and what the client still sends is read and
 * thrown away on a duplicate of the socket until it closes too, for at most
 * LINGER_MS and LINGER_BYTES, LINGER_MAX connections at a time (past that, the plain
 * close). libwebsockets closes its own descriptor as usual. */
#define LINGER_MAX 64
#define LINGER_MS 5000
#define LINGER_BYTES (64 << 20)

struct lingerer {
    uv_poll_t poll;
    uv_timer_t timer;
    int fd;
    int open_handles;
    size_t drained;
};
static size_t nlinger;

static void linger_freed(uv_handle_t *hd)
{
    struct lingerer *l = hd->data;
    if (--l->open_handles == 0) {
        close(l->fd);
        free(l);
        nlinger--;
    }
}

static void linger_end(struct lingerer *l)
{
    if (uv_is_closing((uv_handle_t *)&l->poll))
        return;
    uv_close((uv_handle_t *)&l->poll, linger_freed);
    uv_close((uv_handle_t *)&l->timer, linger_freed);
}

static void linger_timeout(uv_timer_t *t)
{
    linger_end(t->data);
}

static void linger_readable(uv_poll_t *p, int status, int events)
{
    struct lingerer *l = p->data;
    (void)events;
    char buf[16384];
    for (;;) {
        ssize_t n = status < 0 ? -1 : recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 && (l->drained += (size_t)n) <= LINGER_BYTES)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && status >= 0)
            return;
        linger_end(l); /* the peer closed, an error, or past the cap */
        return;
    }
}

static void linger_close(struct hub *h, struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0 || nlinger >= LINGER_MAX || lws_partial_buffered(wsi))
        return;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return;
    shutdown(d, SHUT_WR); /* the answer, then end of stream; the reading side stays */
    struct lingerer *l = xcalloc(1, sizeof(*l));
    l->fd = d;
    if (uv_poll_init(h->loop, &l->poll, d) < 0) {
        close(d);
        free(l);
        return;
    }
    nlinger++;
    l->open_handles = 2;
    l->poll.data = l->timer.data = l;
    uv_timer_init(h->loop, &l->timer);
    uv_timer_start(&l->timer, linger_timeout, LINGER_MS, 0);
    uv_poll_start(&l->poll, UV_READABLE | UV_DISCONNECT, linger_readable);
}

/* An error answer on a connection whose request body was not read, then its close. */
static int refuse_and_close(struct hub *h, struct lws *wsi, int status, const char *message)
{
    if (write_simple(wsi, status, message) == 0)
        linger_close(h, wsi);
    return -1;
}

static void log_request(struct http_req *req)
{
    char q[300];
    double ms = (double)(now_ms() - req->t0);
    log_info("%s %s %d %.0fms %s", req->v.method_name, log_quote(req->v.path, q, sizeof(q)),
             req->status, ms, req->v.authed ? req->v.user.name : "-");
}

/* Whether the handler added a response header of that name. */
static bool has_header(struct http_req *req, const char *name)
{
    for (size_t off = 0; off < req->hdrs.len;) {
        const char *n = req->hdrs.data + off;
        const char *val = n + strlen(n) + 1;
        if (!strcmp(n, name))
            return true;
        off += strlen(n) + strlen(val) + 2;
    }
    return false;
}

/* Writes headers, then the body in chunks; returns -1 to close, 0 otherwise. */
static int req_writeable(struct http_req *req)
{
    struct lws *wsi = req->wsi;
    if (!req->responded || req->body_pending)
        return 0;
    bool head = req->v.method == HTTP_HEAD;
    bool close_at_end = false;
    if (!req->headers_done) {
        unsigned char hbuf[LWS_PRE + 8192], *start = hbuf + LWS_PRE, *p = start,
                                            *end = hbuf + sizeof(hbuf) - 1;
        lws_filepos_t clen = req->resp_len;
        if (req->stream)
            clen = req->stream_len >= 0 ? (lws_filepos_t)req->stream_len
                                        : LWS_ILLEGAL_HTTP_CONTENT_LEN;
        if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->ctype, clen, &p, end))
            return -1;
        if (add_default_headers(wsi, req, &p, end))
            return -1;
        for (size_t off = 0; off < req->hdrs.len;) {
            const char *name = req->hdrs.data + off;
            const char *val = name + strlen(name) + 1;
            off += strlen(name) + strlen(val) + 2;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                            (const unsigned char *)val, (int)strlen(val), &p, end))
                return -1;
        }
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        req->headers_done = true;
        if (head)
            req->resp_off = req->resp_len;
        if (req->resp_off < req->resp_len || (req->stream && !head && req->stream_len != 0)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        close_at_end = req->stream && !head && req->stream_len < 0;
    } else if (req->stream_closing) {
        close_at_end = true; /* libwebsockets has sent the last piece */
    } else if (req->stream) {
        size_t cap = WRITE_CHUNK;
        if (req->stream_len >= 0 && (uint64_t)(req->stream_len - req->stream_sent) < cap)
            cap = (size_t)(req->stream_len - req->stream_sent);
        bool last = false;
        ssize_t n = req->stream->produce(req->stream_ctx, (char *)scratch + LWS_PRE, cap, &last);
        if (n < 0 || (size_t)n > cap)
            return -1;
        if (req->stream_len >= 0) {
            if (req->stream_sent + n == req->stream_len)
                last = true;
            else if (last)
                return -1; /* fewer bytes than the Content-Length promised */
        }
        if (n == 0 && !last) {
            req->stream_waiting = true;
            return 0;
        }
        if (n > 0 && lws_write(wsi, scratch + LWS_PRE, (size_t)n,
                               last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
        req->stream_sent += n;
        if (!last || req->stream_len < 0) {
            /* A body that ends with the connection is closed on the next call, once
             * what lws_write may still hold has gone out. */
            req->stream_closing = last;
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else if (req->resp_off < req->resp_len) {
        size_t n = req->resp_len - req->resp_off;
        if (n > WRITE_CHUNK)
            n = WRITE_CHUNK;
        memcpy(scratch + LWS_PRE, req->resp + req->resp_off, n);
        bool last = req->resp_off + n == req->resp_len;
        if (lws_write(wsi, scratch + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
            (int)n)
            return -1;
        req->resp_off += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    log_request(req);
    struct conn_slot *slot = lws_wsi_user(wsi);
    if (slot && slot->req == req)
        slot->req = NULL;
    req_free(req);
    if (close_at_end) /* the body of unknown length ends with the connection */
        return -1;
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static void dispatch(struct http_req *req)
{
    req->dispatched = true;
    req->v.body = req->body.data ? req->body.data : "";
    req->v.body_len = req->body.len;
    hub_touch(req->hub);
    api_route(req->hub, req);
}

static int method_of(struct lws *wsi, enum http_method *m)
{
    char *uri;
    int len;
    switch (lws_http_get_uri_and_method(wsi, &uri, &len)) {
    case LWSHUMETH_GET:
        *m = HTTP_GET;
        return 0;
    case LWSHUMETH_POST:
        *m = HTTP_POST;
        return 0;
    case LWSHUMETH_PUT:
        *m = HTTP_PUT;
        return 0;
    case LWSHUMETH_PATCH:
        *m = HTTP_PATCH;
        return 0;
    case LWSHUMETH_DELETE:
        *m = HTTP_DELETE;
        return 0;
    case LWSHUMETH_HEAD:
        *m = HTTP_HEAD;
        return 0;
    case LWSHUMETH_OPTIONS:
        *m = HTTP_OPTIONS;
        return 0;
    default:
        return -1;
    }
}

static int64_t content_length(struct lws *wsi)
{
    char v[32];
    if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return -1;
    int64_t n;
    if (str_to_i64(v, 0, INT64_MAX, &n) < 0)
        return -2;
    return n;
}

/* "Expect: 100-continue" (curl sends it for bodies over 1 MiB): the client waits for
 * an interim 100 before it sends the body. Every body is read (and a refused one
 * drained), so every such request gets it. */
static bool expects_continue(struct lws *wsi)
{
    char v[32];
    return lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_EXPECT) > 0 &&
           !strcasecmp(v, "100-continue");
}

static int send_continue(struct lws *wsi)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char b[LWS_PRE + sizeof(line)];
    memcpy(b + LWS_PRE, line, sizeof(line) - 1);
    return lws_write(wsi, b + LWS_PRE, sizeof(line) - 1, LWS_WRITE_HTTP) < 0 ? -1 : 0;
}

/* Splits "/api/kernels/{id}/channels" into the id; false if the path is not that. */
static bool channels_path(const char *path, char *id, size_t n)
{
    const char *pre = "/api/kernels/";
    if (!str_starts_with(path, pre))
        return false;
    const char *s = path + strlen(pre);
    const char *slash = strchr(s, '/');
    if (!slash || strcmp(slash, "/channels") || (size_t)(slash - s) >= n || slash == s)
        return false;
    memcpy(id, s, (size_t)(slash - s));
    id[slash - s] = '\0';
    return true;
}

static int ws_uri(struct lws *wsi, char *out, size_t n)
{
    return lws_hdr_copy(wsi, out, (int)n, WSI_TOKEN_GET_URI) > 0 ? 0 : -1;
}

/* --- Listening sockets ---
 * The hub opens its own listening sockets, bound to exactly the configured address,
 * and hands each accepted connection to libwebsockets (lws_adopt_socket_vhost).
 * libwebsockets' own listener, given an IPv4 address, opened a dual-stack [::]
 * socket and so answered on every address of the host. */

#define MAX_LISTENERS 8

struct listener {
    uv_poll_t poll;
    int fd;
    struct hub *hub;
};

static struct listener *listeners[MAX_LISTENERS];
static size_t nlisteners;
static struct lws_vhost *vhost;

/* Whether a peer address is this machine's (127/8, ::1, or 127/8 mapped into v6). */
static bool addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(in6) || (IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127);
    }
    return false;
}

/* A connection from this machine (a local reverse proxy, a local client) gets a receive
 * buffer that holds a whole upload chunk. The kernel starts each connection at
 * tcp_rmem's default (128 KiB) and grows it only round trip by round trip, so a
 * megabyte body arriving at memory speed would stall the sender a dozen times. A set
 * size turns that growth off, which costs nothing at loopback's round trip but would
 * cap a distant client's window, so other connections keep the kernel's tuning. */
static void widen_local_receive_buffer(int fd, const struct sockaddr_storage *peer)
{
    int size = 4 << 20; /* the kernel holds it to net.core.rmem_max */
    if (addr_is_loopback(peer))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static void on_listen_readable(uv_poll_t *p, int status, int events)
{
    struct listener *l = p->data;
    (void)events;
    if (status < 0)
        return;
    /* A bounded batch per wakeup: the loop has other work too. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                log_warn("accepting a connection: %s", strerror(errno));
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        widen_local_receive_buffer(fd, &peer);
        if (!vhost) {
            close(fd);
            continue;
        }
        lws_adopt_socket_vhost(vhost, fd); /* which closes fd if it fails */
    }
}

/* Writes "http://ADDR:PORT/" for a bound socket's address. */
static void format_url(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, n, "http://%s:%d/", host, port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, n, "http://[%s]:%d/", host, port);
    }
}

/* Opens one listening socket on ai. Returns the fd or a negative errno. */
static int listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1, r;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) {
        /* An IPv6 address means that address only; "::" alone keeps the dual stack
         * (every IPv6 and IPv4 address), as it means in most servers' configuration. */
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ai->ai_addr;
        int v6only = !IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 511) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

static void listener_closed(uv_handle_t *hd)
{
    struct listener *l = hd->data;
    close(l->fd);
    free(l);
}

static void close_listeners(void)
{
    for (size_t i = 0; i < nlisteners; i++)
        uv_close((uv_handle_t *)&listeners[i]->poll, listener_closed);
    nlisteners = 0;
}

/* Binds every address cfg.bind names (an IPv4 or IPv6 literal, or a host name) on
 * cfg.port. Returns 0, or a negative errno with *err set. */
static int open_listeners(struct hub *h, char **err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", h->cfg.port);
    const char *node = *h->cfg.bind ? h->cfg.bind : NULL;
    int g = getaddrinfo(node, port, &hints, &res);
    if (g != 0) {
        *err = xasprintf("cannot listen on \"%s\": %s", h->cfg.bind, gai_strerror(g));
        return -EINVAL;
    }
    int r = 0, chosen_port = 0;
    for (struct addrinfo *ai = res; ai && nlisteners < MAX_LISTENERS; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (chosen_port) /* port 0: the first address's, for the others too
                            (sin_port and sin6_port lie at the same offset) */
            ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)chosen_port);
        int fd = listen_on(ai);
        if (fd < 0) {
            char url[INET6_ADDRSTRLEN + 32];
            struct sockaddr_storage ss = {0};
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            format_url(&ss, url, sizeof(url));
            *err = xasprintf("cannot listen on %s (\"%s\"): %s", url, h->cfg.bind, strerror(-fd));
            r = fd;
            break;
        }
        struct listener *l = xcalloc(1, sizeof(*l));
        l->fd = fd;
        l->hub = h;
        l->poll.data = l;
        listeners[nlisteners++] = l;
        uv_poll_init(h->loop, &l->poll, fd);
        uv_poll_start(&l->poll, UV_READABLE, on_listen_readable);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (h->cfg.port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            chosen_port = h->cfg.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    freeaddrinfo(res);
    if (r == 0 && nlisteners == 0) {
        *err = xasprintf("cannot listen on \"%s\": it names no IPv4 or IPv6 address", h->cfg.bind);
        r = -EINVAL;
    }
    if (r < 0)
        close_listeners();
    return r;
}

size_t http_listening(char *out, size_t n)
{
    size_t used = 0;
    if (n)
        out[0] = '\0';
    for (size_t i = 0; i < nlisteners; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char url[INET6_ADDRSTRLEN + 32];
        if (getsockname(listeners[i]->fd, (struct sockaddr *)&ss, &sl) < 0)
            continue;
        format_url(&ss, url, sizeof(url));
        int w = used < n ? snprintf(out + used, n - used, "%s%s", used ? " and " : "", url) : 0;
        if (w > 0)
            used = used + (size_t)w < n ? used + (size_t)w : n;
    }
    return nlisteners;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn_slot *slot = user;
    struct lws_context *ctx = lws_get_context(wsi);
    struct hub *h = ctx ? lws_context_user(ctx) : NULL;

    /* libwebsockets may refuse a request (a NUL in the URI, say) before it gives the
     * connection its slot: nothing of ours exists yet. */
    if (!slot && reason != LWS_CALLBACK_WSI_CREATE && reason != LWS_CALLBACK_WSI_DESTROY &&
        reason != LWS_CALLBACK_HTTP_CONFIRM_UPGRADE)
        return lws_callback_http_dummy(wsi, reason, user, in, len);

    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        if (slot->req) { /* a pipelined request while one is in flight */
            req_free(slot->req);
            slot->req = NULL;
        }
        if (h->stopping)
            return refuse_and_close(h, wsi, 503, "the server is shutting down");
        struct http_req *req = xcalloc(1, sizeof(*req));
        req->wsi = wsi;
        req->hub = h;
        req->t0 = now_ms();
        if (method_of(wsi, &req->v.method) < 0) {
            free(req);
            return refuse_and_close(h, wsi, 405, "method not allowed");
        }
        req->v.method_name = method_names[req->v.method];
        req->v.path = xstrndup(in ? (const char *)in : "/", in ? strlen(in) : 1);
        req->body.cap_max = (size_t)h->cfg.max_body;
        int ar = auth_request(h, wsi, &req->v.user, &req->v.by_cookie);
        req->v.authed = ar == 0;
        req->v.token_expired = ar == -EKEYEXPIRED;
        slot->req = req;
        int64_t cl = content_length(wsi);
        if (cl == -2) {
            slot->req = NULL;
            req_free(req);
            return refuse_and_close(h, wsi, 400, "bad Content-Length");
        }
        req->clen = cl;
        if (cl < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0)
            cl = 0;
        bool want_continue = cl > 0 && expects_continue(wsi);
        if (cl >= 0 && api_route_head(h, req)) {
            /* The route answered, or took the body as it arrives (uploads). */
            req->dispatched = true;
            hub_touch(h);
            if (cl > 0 && req->discard_body && !req->sink) {
                /* Answered now, with no 100 Continue: the client need not send the
                 * body, and what it sends is discarded by libwebsockets once the
                 * answer is out (lws_http_transaction_completed before the body). */
            } else if (cl > 0) {
                if (want_continue && send_continue(wsi) < 0) {
                    slot->req = NULL;
                    req_free(req);
                    return -1;
                }
                req->body_pending = true; /* a refused body is read and dropped */
            } else if (req->sink) {
                req->sink_ended = true;
                req->sink->end(req->sink_ctx, req);
            }
            return 0;
        }
        if (want_continue && send_continue(wsi) < 0) {
            slot->req = NULL;
            req_free(req);
            return -1;
        }
        if (cl > h->cfg.max_body) {
            /* The body is read and thrown away, then refused: closing while the client
             * still sends would reset the connection before it reads the answer. */
            char q[300];
            log_warn("%s %s refused: body of %lld bytes over the %lld-byte cap", req->v.method_name,
                     log_quote(req->v.path, q, sizeof(q)), (long long)cl,
                     (long long)h->cfg.max_body);
            req->body_too_big = true;
            return 0;
        }
        if (cl < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            /* Request bodies must say their length (every Jupyter client does).
             * libwebsockets does not hand chunked bodies over, so this one cannot be
             * drained: answer and close. */
            slot->req = NULL;
            req_free(req);
            return refuse_and_close(h, wsi, 411,
                                    "request bodies need a Content-Length; chunked transfer "
                                    "encoding is not accepted");
        }
        if (cl > 0) {
            buf_reserve(&req->body, (size_t)cl); /* one allocation for the whole body */
            return 0;                            /* wait for it */
        }
        dispatch(req);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY: {
        struct http_req *req = slot->req;
        if (req && req->sink && !req->sink_ended && !req->sink_stopped &&
            req->sink->chunk(req->sink_ctx, in, len) < 0)
            req->sink_stopped = true;
        if (!req || req->dispatched)
            return 0;
        if (!req->body_too_big && buf_append(&req->body, in, len) < 0) {
            req->body_too_big = true;
            buf_free(&req->body);
        }
        if (req->watch && !req->body_too_big)
            req->watch(req->watch_ctx, req->body.data, req->body.len);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        struct http_req *req = slot->req;
        if (req && req->body_pending) {
            req->body_pending = false;
            if (req->sink && !req->sink_ended) {
                req->sink_ended = true;
                req->sink->end(req->sink_ctx, req);
            } else if (req->responded) {
                lws_callback_on_writable(wsi);
            }
            return 0;
        }
        if (!req || req->dispatched)
            return 0;
        if (req->body_too_big) {
            req->dispatched = true;
            http_reply_error(req, 413, "request body too large (limit %lld MiB)",
                             (long long)(h->cfg.max_body >> 20));
            return 0;
        }
        dispatch(req);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!slot->req)
            return 0;
        return req_writeable(slot->req);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (slot->req) {
            req_free(slot->req);
            slot->req = NULL;
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        char uri[1024], id[128];
        if (h->stopping)
            return write_simple(wsi, 503, "the server is shutting down") ? -1 : 1;
        if (ws_uri(wsi, uri, sizeof(uri)) < 0 || !channels_path(uri, id, sizeof(id)))
            return write_simple(wsi, 404, "no WebSocket here") ? -1 : 1;
        struct user u;
        bool by_cookie;
        int ar = auth_request(h, wsi, &u, &by_cookie);
        if (ar == -EKEYEXPIRED)
            return write_simple(wsi, 401, "the token has expired") ? -1 : 1;
        if (ar < 0)
            return write_simple(wsi, 403, "authentication required") ? -1 : 1;
        if (by_cookie) {
            /* Browsers send cookies on cross-site WebSocket upgrades: the Origin
             * must be this server's own. */
            char origin[512], host[512];
            if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) > 0 &&
                lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0) {
                const char *o = strstr(origin, "://");
                if (!o || strcmp(o + 3, host))
                    return write_simple(wsi, 403, "cross-origin WebSocket refused") ? -1 : 1;
            }
        }
        if (channels_check(h, &u, id) < 0)
            return write_simple(wsi, 404, "no such kernel") ? -1 : 1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        char uri[1024], id[128], sess[256] = "";
        struct user u;
        bool by_cookie;
        if (ws_uri(wsi, uri, sizeof(uri)) < 0 || !channels_path(uri, id, sizeof(id)) ||
            auth_request(h, wsi, &u, &by_cookie) < 0)
            return -1;
        const char *sv = lws_get_urlarg_by_name(wsi, "session_id=", sess, sizeof(sess));
        const struct lws_protocols *pr = lws_get_protocol(wsi);
        bool v1 = pr && pr->name && !strcmp(pr->name, V1_PROTOCOL);
        slot->client = channels_open(h, wsi, &u, id, sv ? sv : "", v1);
        return slot->client ? 0 : -1;
    }
    case LWS_CALLBACK_RECEIVE:
        if (!slot->client)
            return -1;
        return channels_receive(slot->client, in, len, lws_is_first_fragment(wsi),
                                lws_is_final_fragment(wsi), lws_frame_is_binary(wsi));
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!slot->client)
            return 0;
        return channels_writeable(slot->client);
    case LWS_CALLBACK_CLOSED:
        if (slot->client) {
            channels_closed(slot->client);
            slot->client = NULL;
        }
        return 0;
    case LWS_CALLBACK_WSI_CREATE:
        if (h)
            h->http_connections++;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (h)
            h->http_connections--;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct conn_slot), 262144, 0, NULL, 0},
    {V1_PROTOCOL, callback, sizeof(struct conn_slot), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        log_error("libwebsockets: %.*s", (int)n, line);
    else
        log_warn("libwebsockets: %.*s", (int)n, line);
}

int http_start(struct hub *h, char **err)
{
    lws_set_log_level(LLL_ERR | (h->cfg.log_level == 0 ? LLL_WARN : 0), lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {h->loop};
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the hub listens itself: open_listeners() */
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV; /* security headers: add_default_headers() */
    info.foreign_loops = loops;
    info.user = h;
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 256 * 1024;
    info.keepalive_timeout = 30;
    info.timeout_secs = 60;
    info.server_string = "labbook";
    info.options |= LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    h->lws = lws_create_context(&info);
    if (!h->lws) {
        *err = xasprintf("cannot start libwebsockets");
        return -ENOMEM;
    }
    auth_init(h);
    vhost = lws_create_vhost(h->lws, &info);
    if (!vhost) {
        *err = xasprintf("cannot start libwebsockets' server");
        return -ENOMEM;
    }
    return open_listeners(h, err);
}

void http_destroy(struct hub *h)
{
    close_listeners();
    vhost = NULL;
    auth_shutdown();
    if (h->lws)
        lws_context_destroy(h->lws);
    h->lws = NULL;
}
