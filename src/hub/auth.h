/* Who is asking: API tokens (Authorization: token|bearer, or ?token=), the login
 * cookie, and the XSRF check on cookie-authenticated requests that change state;
 * plus the /login and /logout pages. */
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

/* Authenticates the request on wsi. Returns 0 and fills u (with the credential it
 * used, u->cred, and *by_cookie); -EKEYEXPIRED for a token past its expiry (answered
 * 401); or -EACCES when no valid credential was given. */
int auth_request(struct hub *h, struct lws *wsi, struct user *u, bool *by_cookie);
/* For cookie-authenticated state changes: the X-XSRFToken header (or _xsrf query
 * argument) must match the _xsrf cookie. Returns true when the request passes. */
bool auth_xsrf_ok(struct lws *wsi, const char *form_xsrf);
/* Reads the value of cookie name from the request into out; false if absent. */
bool auth_cookie(struct lws *wsi, const char *name, char *out, size_t n);

void auth_login_page(struct hub *h, struct http_req *req);
void auth_logout(struct hub *h, struct http_req *req);

#endif
