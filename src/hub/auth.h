/* Who is asking: API tokens (Authorization: token|bearer, or ?token=), the login
 * cookie, and the checks on cookie-authenticated requests that change state (same
 * origin, an XSRF token bound to the session, no cross-site form bodies); plus the
 * /login and /logout pages and sign-in links (?token= on a page). */
#ifndef LABBOOK_HUB_AUTH_H
#define LABBOOK_HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

struct hub;
struct lws;
struct http_req;

#define AUTH_COOKIE "labbook_session"
#define XSRF_COOKIE "_xsrf"
/* The largest body an unauthenticated request may send: the sign-in form's. */
#define AUTH_FORM_MAX (16 * 1024)

/* Authenticates the request on wsi. Returns 0 and fills u (with the credential it
 * used, u->cred, and *by_cookie); -EKEYEXPIRED for a token past its expiry (answered
 * 401); or -EACCES when no valid credential was given. */
int auth_request(struct hub *h, struct lws *wsi, struct user *u, bool *by_cookie);
/* The XSRF token (X-XSRFToken or X-CSRFToken header, or _xsrf query argument, or
 * form_xsrf when given) must be the one derived from the request's session cookie (a
 * keyed hash of it; the _xsrf cookie carries it to the page). True when it is. */
bool auth_xsrf_ok(struct lws *wsi, const char *form_xsrf);
/* For a cookie-authenticated request that changes state: it must come from this
 * server's own pages (Sec-Fetch-Site, Origin), carry the session's XSRF token, and on a
 * JSON route (json_route) not have a body type any page may post cross-site
 * (text/plain, urlencoded, multipart). Returns 0, or answers 403/415 and returns
 * -EACCES. */
int auth_check_change(struct http_req *req, bool json_route);
/* On a cookie-authenticated page: sets the _xsrf cookie to the session's token if the
 * browser's differs (older sessions, or a cookie another site of the host set). */
void auth_xsrf_refresh(struct http_req *req);
/* A UI page opened with ?token= (Jupyter's link convention): a valid token signs the
 * browser in and goes on to the page without the token (asking first if the browser
 * is signed in as someone else); an invalid one says the link is not valid. */
void auth_page_link(struct hub *h, struct http_req *req);
/* Sets up and tears down the sign-in rate limits and the password-check pool. */
void auth_init(struct hub *h);
void auth_shutdown(void);
/* Reads the value of cookie name from the request into out; false if absent. */
bool auth_cookie(struct lws *wsi, const char *name, char *out, size_t n);

void auth_login_page(struct hub *h, struct http_req *req);
void auth_logout(struct hub *h, struct http_req *req);

#endif
