/* The hub's HTTP and WebSocket front: libwebsockets on the hub's libuv loop. It
 * reads requests (with a capped body), authenticates them, hands them to the API
 * router, and writes responses, synchronously or later (http_defer). */
#ifndef LABBOOK_HUB_HTTP_H
#define LABBOOK_HUB_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

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
    struct user user;
};

/* Starts serving on the hub's loop. Returns 0, or a negative errno with *err set. */
int http_start(struct hub *h, char **err);
/* Stops accepting and tears libwebsockets down (after the loop has stopped). */
void http_destroy(struct hub *h);

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
 * no-referrer and cache-control: no-store unless the handler adds its own header of
 * that name. */
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

/* JSON error body {"message": msg, "reason": reason-or-null}, new reference. */
json_t *http_error_body(const char *message, const char *reason);
/* The reason phrase for a status code. */
const char *http_status_text(int status);

#endif
