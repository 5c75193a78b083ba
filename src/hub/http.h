/* The hub's HTTP and WebSocket front: libwebsockets on the hub's libuv loop. It
 * reads requests (with a capped body, or streamed to a route's sink), authenticates
 * them, hands them to the API router, and writes responses: whole buffers,
 * synchronously or later (http_defer), or streamed from a producer as the socket
 * drains (http_reply_stream). */
#ifndef LABBOOK_HUB_HTTP_H
#define LABBOOK_HUB_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

struct hub;
struct lws;
struct http_req;
struct http_pending;

enum http_method {
    HTTP_GET,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_HEAD,
    HTTP_OPTIONS
};

/* What a handler may read of a request; valid until the response is written. */
struct http_req_view {
    enum http_method method;
    const char *method_name;
    const char *path; /* percent-decoded by libwebsockets, no query */
    const char *body;
    size_t body_len;
    bool authed;
    bool by_cookie;
    bool token_expired; /* not authed: the token given has expired (answer 401) */
    struct user user;
};

/* Starts serving on the hub's loop. Returns 0, or a negative errno with *err set. */
int http_start(struct hub *h, char **err);
/* Stops accepting and tears libwebsockets down (after the loop has stopped). */
void http_destroy(struct hub *h);
/* What the hub listens on, read back from its sockets: "http://127.0.0.1:8888/", several
 * joined with " and " (a name with more than one address). Returns how many sockets. */
size_t http_listening(char *out, size_t n);

const struct http_req_view *http_view(struct http_req *req);
/* Hands the request body over to the caller (who frees it); the view's body becomes
 * empty. */
char *http_body_steal(struct http_req *req, size_t *len);
/* Query argument by name (urldecoded), copied into a buffer owned by req; NULL if absent. */
const char *http_query(struct http_req *req, const char *name);
/* Request header by lowercase name with colon ("x-xsrftoken:"), owned by req; NULL if absent. */
const char *http_header(struct http_req *req, const char *name);
/* Adds a response header ("location:", value); call before replying. Every response
 * carries a strict content-security-policy, x-frame-options: deny, nosniff,
 * referrer-policy: same-origin and cache-control: no-store unless the handler adds its own header
 * of that name. */
void http_add_header(struct http_req *req, const char *name, const char *value);

/* Replies; each takes ownership of what it is given. */
void http_reply(struct http_req *req, int status, const char *content_type, char *body, size_t len);
void http_reply_json(struct http_req *req, int status, json_t *body);
void http_reply_error(struct http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_reply_empty(struct http_req *req, int status);

/* Takes the request out of the synchronous path: the handler returns and the answer
 * comes later through http_pending_*. If the client goes away first, the pending
 * answer is dropped silently. Each pending must be answered exactly once. */
struct http_pending *http_defer(struct http_req *req);
bool http_pending_alive(struct http_pending *p);
struct http_req *http_pending_req(struct http_pending *p); /* NULL if the client left */
void http_pending_reply_json(struct http_pending *p, int status, json_t *body);
void http_pending_reply_error(struct http_pending *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_pending_reply_raw(struct http_pending *p, int status, const char *content_type,
                            char *body, size_t len, char *location);

/* The connection behind a request (for auth helpers); NULL once it is gone. */
struct lws *http_wsi(struct http_req *req);

/* Parses the request body as a JSON object into *out (caller's; NULL for an empty body
 * when allow_empty). Returns 0, or -EINVAL after answering 400 with the parser's
 * message. */
int http_body_json(struct http_req *req, bool allow_empty, json_t **out);

/* --- Streamed request bodies ---
 * A route that wants a body as it arrives (uploads) sees the request in
 * api_route_head() before any body byte is read, and either answers at once (the
 * body is then read and thrown away before the answer goes out) or installs a sink.
 * A sink's body is not capped by max_body: the route caps it itself. */
struct http_body_sink {
    /* Called for each piece of the body as it arrives, on the loop. Return 0 to go
     * on, or a negative errno to take no more: the rest is read and dropped. */
    int (*chunk)(void *ctx, const char *data, size_t len);
    /* Called exactly once: when the whole body has arrived (req valid: reply, now or
     * through http_defer), or with req NULL when the client left first (clean up). */
    void (*end)(void *ctx, struct http_req *req);
};
void http_take_body(struct http_req *req, const struct http_body_sink *sink, void *ctx);
/* For a refusal made in api_route_head() of a request whose body nobody should hold
 * (unauthenticated): the answer goes out at once, without a 100 Continue, and the body
 * is thrown away unread as it arrives. */
void http_discard_body(struct http_req *req);
/* A buffered body can be watched as it arrives, to get ahead on work its route will
 * do with it (a contents upload decodes its base64 while the rest comes in). Set in
 * api_route_head() (which then returns false): see() is called on the loop after each
 * piece, with the whole body so far. The route takes ctx back with
 * http_take_body_watcher() (NULL if none); a request that ends otherwise calls
 * drop(ctx). */
void http_watch_body(struct http_req *req, void (*see)(void *ctx, const char *body, size_t len),
                     void (*drop)(void *ctx), void *ctx);
void *http_take_body_watcher(struct http_req *req);
/* The request's Content-Length: -1 when it has none. */
int64_t http_content_length(struct http_req *req);

/* --- Streamed responses ---
 * The producer is called only when the socket can take more (backpressure). It
 * writes up to cap bytes into buf and returns how many (> 0), sets *last with the
 * final piece; returns 0 when it has nothing ready yet (it then calls
 * http_stream_wake once it has), or a negative errno to cut the response off (the
 * connection is closed). close() is called exactly once, when the response is done
 * or the client has gone; after it the producer must not touch req. */
struct http_stream_ops {
    ssize_t (*produce)(void *ctx, char *buf, size_t cap, bool *last);
    void (*close)(void *ctx);
};
/* Answers with a body from ops. length >= 0 is sent as Content-Length (the producer
 * must give exactly that many bytes); -1 means unknown: the connection closes at the
 * end. Headers added with http_add_header go along. HEAD gets the headers only. */
void http_reply_stream(struct http_req *req, int status, const char *content_type, int64_t length,
                       const struct http_stream_ops *ops, void *ctx);
/* Asks for the producer to be called again (after it returned 0). */
void http_stream_wake(struct http_req *req);

/* Appends s to b percent-encoded, leaving only unreserved characters (and '/' with
 * keep_slash: a path) as they are. */
struct buf;
void http_url_encode(struct buf *b, const char *s, bool keep_slash);

/* JSON error body {"message": msg, "reason": reason-or-null}, new reference. */
json_t *http_error_body(const char *message, const char *reason);
/* The reason phrase for a status code. */
const char *http_status_text(int status);

#endif
