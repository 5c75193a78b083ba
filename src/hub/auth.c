/* Authentication of each request (token header, ?token=, login cookie); the checks on
 * cookie-authenticated state changes (from this server's own pages, with an XSRF token
 * bound to the session, and no body a cross-site form could send); the sign-in page,
 * whose password checks run on the thread pool under rate limits (login.c); and
 * sign-in links (?token= on /login or on any page), which never switch a signed-in
 * browser to another account without asking. */
#include "hub/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/login.h"
#include "hub/web.h"

/* The XSRF token of a session is a keyed hash of its cookie: a page of another site
 * on the same host can set an _xsrf cookie, but cannot compute this without the
 * HttpOnly session cookie. The key only separates this use of the cookie from the
 * store's hash of it. */
#define XSRF_KEY "labbook session xsrf token v1"
#define XSRF_HEX 33 /* 16 bytes in hex, and the NUL */

static struct login_limiter *limiter;

bool auth_cookie(struct lws *wsi, const char *name, char *out, size_t n)
{
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    if (len <= 0 || len > 16384)
        return false;
    char *c = xmalloc((size_t)len + 1);
    bool found = false;
    if (lws_hdr_copy(wsi, c, len + 1, WSI_TOKEN_HTTP_COOKIE) < 0)
        goto out;
    size_t nl = strlen(name);
    for (char *p = c; *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        char *end = strchr(p, ';');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t vl = seg - nl - 1;
            if (vl < n) {
                memcpy(out, p + nl + 1, vl);
                out[vl] = '\0';
                found = true;
            }
            break;
        }
        p += seg;
    }
out:
    free(c);
    return found;
}

static bool token_from_header(struct lws *wsi, char *out, size_t n)
{
    char v[512];
    if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return false;
    const char *p = v;
    if (!strncasecmp(p, "token ", 6))
        p += 6;
    else if (!strncasecmp(p, "bearer ", 7))
        p += 7;
    else
        return false;
    while (*p == ' ')
        p++;
    if (strlen(p) >= n)
        return false;
    memcpy(out, p, strlen(p) + 1);
    return true;
}

/* The one place an API token becomes a user: requests, sign-in links and the
 * "switch to" form all come through here. An expired token is told apart. */
static int token_user(struct hub *h, const char *token, struct user *u)
{
    if (!token || !*token)
        return -EACCES;
    int r = store_token_check(h->store, token, u);
    return r == 0 ? 0 : r == -EKEYEXPIRED ? -EKEYEXPIRED : -EACCES;
}

int auth_request(struct hub *h, struct lws *wsi, struct user *u, bool *by_cookie)
{
    char tok[512], buf[600];
    *by_cookie = false;
    if (token_from_header(wsi, tok, sizeof(tok)))
        return token_user(h, tok, u);
    const char *q = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
    if (q && *q)
        return token_user(h, q, u);
    if (auth_cookie(wsi, AUTH_COOKIE, tok, sizeof(tok)) &&
        store_login_check(h->store, tok, u) == 0) {
        *by_cookie = true;
        return 0;
    }
    return -EACCES;
}

static void xsrf_of_session(const char *session, char out[XSRF_HEX])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof(h), (const unsigned char *)session, strlen(session),
                       (const unsigned char *)XSRF_KEY, strlen(XSRF_KEY));
    sodium_bin2hex(out, XSRF_HEX, h, sizeof(h));
}

static bool same_secret(const char *given, const char *expected)
{
    return given && *expected && strlen(given) == strlen(expected) &&
           sodium_memcmp(given, expected, strlen(expected)) == 0;
}

bool auth_xsrf_ok(struct lws *wsi, const char *form_xsrf)
{
    char session[256], expected[XSRF_HEX], hdr[128];
    if (!auth_cookie(wsi, AUTH_COOKIE, session, sizeof(session)) || !*session)
        return false;
    xsrf_of_session(session, expected);
    sodium_memzero(session, sizeof(session));
    const char *given = form_xsrf;
    if (!given) {
        if (lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-xsrftoken:", 12) > 0 ||
            lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-csrftoken:", 12) > 0)
            given = hdr;
        else if (lws_get_urlarg_by_name(wsi, "_xsrf=", hdr, sizeof(hdr)))
            given = hdr + 6;
    }
    return same_secret(given, expected);
}

/* Whether a browser sent this from one of this server's pages: Sec-Fetch-Site, where
 * the browser sends it, says same-origin (or none: typed by the user); else an
 * Origin, if any, names this host ("null", a sandboxed frame's or a privacy-minded
 * page's, does not; the hub's own pages send theirs: referrer-policy same-origin). A
 * client sending neither is not a browser acting for another site's page; the XSRF
 * token still applies to it. */
static bool same_origin(struct http_req *req)
{
    const char *site = http_header(req, "sec-fetch-site:");
    if (site)
        return !strcmp(site, "same-origin") || !strcmp(site, "none");
    const char *origin = http_header(req, "origin:");
    if (!origin)
        return true;
    const char *host = http_header(req, "host:");
    const char *o = strstr(origin, "://");
    return host && o && !strcasecmp(o + 3, host);
}

/* The types a page of any site may post without the browser asking first (CORS
 * "simple" requests): never the type of a JSON API call. */
static bool form_type(const char *ctype)
{
    static const char *const simple[] = {"text/plain", "application/x-www-form-urlencoded",
                                         "multipart/form-data"};
    if (!ctype)
        return false;
    while (*ctype == ' ')
        ctype++;
    for (size_t i = 0; i < ARRAY_SIZE(simple); i++) {
        size_t n = strlen(simple[i]);
        if (!strncasecmp(ctype, simple[i], n) &&
            (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' '))
            return true;
    }
    return false;
}

int auth_check_change(struct http_req *req, bool json_route)
{
    const struct http_req_view *v = http_view(req);
    if (!same_origin(req)) {
        http_reply_error(req, 403,
                         "cross-site request refused: %s must come from this server's "
                         "own pages",
                         v->method_name);
        return -EACCES;
    }
    if (json_route && form_type(http_header(req, "content-type:"))) {
        http_reply_error(req, 415, "a form body is not accepted here: send application/json");
        return -EACCES;
    }
    if (!auth_xsrf_ok(http_wsi(req), NULL)) {
        http_reply_error(req, 403, "'_xsrf' argument missing from %s", v->method_name);
        return -EACCES;
    }
    return 0;
}

/* The user of the browser's valid session cookie, if it has one (and the cookie into
 * session, when given). */
static bool session_user(struct hub *h, struct http_req *req, struct user *u, char *session,
                         size_t n)
{
    char c[256];
    bool ok = auth_cookie(http_wsi(req), AUTH_COOKIE, c, sizeof(c)) && *c &&
              store_login_check(h->store, c, u) == 0;
    if (ok && session)
        snprintf(session, n, "%s", c);
    sodium_memzero(c, sizeof(c));
    return ok;
}

static void set_xsrf_cookie_to(struct http_req *req, const char *xsrf)
{
    char *c = xasprintf(XSRF_COOKIE "=%s; Path=/; SameSite=Lax", xsrf);
    http_add_header(req, "set-cookie:", c);
    free(c);
}

void auth_xsrf_refresh(struct http_req *req)
{
    char session[256], expected[XSRF_HEX], have[64];
    if (!http_view(req)->by_cookie ||
        !auth_cookie(http_wsi(req), AUTH_COOKIE, session, sizeof(session)))
        return;
    xsrf_of_session(session, expected);
    sodium_memzero(session, sizeof(session));
    if (!auth_cookie(http_wsi(req), XSRF_COOKIE, have, sizeof(have)) || strcmp(have, expected))
        set_xsrf_cookie_to(req, expected);
}

static char *html_escape(const char *s)
{
    struct buf b = {0};
    for (; *s; s++) {
        switch (*s) {
        case '<':
            buf_append(&b, "&lt;", 4);
            break;
        case '>':
            buf_append(&b, "&gt;", 4);
            break;
        case '&':
            buf_append(&b, "&amp;", 5);
            break;
        case '"':
            buf_append(&b, "&quot;", 6);
            break;
        case '\'':
            buf_append(&b, "&#39;", 5);
            break;
        default:
            buf_append(&b, s, 1);
        }
    }
    return buf_steal(&b, NULL);
}

/* Decodes one application/x-www-form-urlencoded value in place. */
static void form_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+')
            *o++ = ' ';
        else if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v == 0) {
                *o++ = *s;
                continue;
            }
            *o++ = (char)v;
            s += 2;
        } else
            *o++ = *s;
    }
    *o = '\0';
}

/* Finds field name in a urlencoded body; returns a new decoded string or NULL. */
static char *form_field(const char *body, size_t len, const char *name)
{
    char *copy = xstrndup(body, len), *res = NULL;
    size_t nl = strlen(name);
    for (char *p = copy; p && *p;) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            res = xstrdup(p + nl + 1);
            form_decode(res);
            break;
        }
        p = amp ? amp + 1 : NULL;
    }
    free(copy);
    return res;
}

/* Only same-site relative paths are followed after login. */
static const char *safe_next(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/')
        return "/";
    /* Browsers drop tabs and newlines and read '\\' as '/', so "/\t/evil" would
     * leave this server: refuse every control character and backslash. */
    for (const unsigned char *p = (const unsigned char *)next; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return "/";
    return next;
}

/* The sign-in page's look, matching the UI's (web/src/style.css). */
#define LOGIN_CSS                                                                                  \
    "body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#202124;background:#f8f9fa}"          \
    "main{max-width:360px;margin:12vh auto;background:#fff;border:1px solid #dadce0;"              \
    "border-radius:8px;padding:32px 36px}h1{font-weight:500;margin:0 0 16px}h1 "                   \
    "span{color:#f9ab00}"                                                                          \
    "label{display:flex;flex-direction:column;font-size:13px;color:#5f6368;margin:10px 0}"         \
    "input{font:inherit;padding:8px;border:1px solid #dadce0;border-radius:4px;margin-top:4px}"    \
    "button{font:inherit;background:#1a73e8;color:#fff;border:0;border-radius:4px;"                \
    "padding:8px 20px;margin-top:8px;cursor:pointer}p[role=alert]{color:#c5221f;margin:0}"         \
    "details{margin-top:20px;font-size:13px}summary{cursor:pointer;color:#1a73e8}"

/* The _xsrf a sign-in form of this browser carries: the session's own when the browser
 * is signed in, else its pre-session cookie (double submit). False if it has neither. */
static bool browser_xsrf(struct hub *h, struct http_req *req, char out[XSRF_HEX])
{
    char session[256];
    struct user u;
    if (session_user(h, req, &u, session, sizeof(session))) {
        xsrf_of_session(session, out);
        sodium_memzero(session, sizeof(session));
        return true;
    }
    return auth_cookie(http_wsi(req), XSRF_COOKIE, out, XSRF_HEX) && strlen(out) == XSRF_HEX - 1 &&
           strspn(out, "0123456789abcdef") == XSRF_HEX - 1;
}

/* The _xsrf for the forms of this response (browser_xsrf, or a new pre-session one);
 * the cookie is set to it if it differs. */
static void form_xsrf(struct hub *h, struct http_req *req, char out[XSRF_HEX])
{
    char have[64];
    if (!browser_xsrf(h, req, out)) {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(out, XSRF_HEX, raw, sizeof(raw));
    }
    if (!auth_cookie(http_wsi(req), XSRF_COOKIE, have, sizeof(have)) || strcmp(have, out))
        set_xsrf_cookie_to(req, out);
}

/* Whether a form posted to /login carries the _xsrf its page was given. */
static bool form_xsrf_ok(struct hub *h, struct http_req *req, const char *given)
{
    char expected[XSRF_HEX];
    return browser_xsrf(h, req, expected) && same_secret(given, expected);
}

/* Answers now (p NULL) or through p. Takes body. */
static void answer(struct http_req *req, struct http_pending *p, int status, const char *ctype,
                   char *body)
{
    size_t len = body ? strlen(body) : 0;
    if (p)
        http_pending_reply_raw(p, status, ctype, body, len, NULL);
    else
        http_reply(req, status, ctype, body, len);
}

/* An HTML page in the sign-in look around main (HTML, trusted). */
static void answer_page(struct http_req *req, struct http_pending *p, int status, const char *main)
{
    char *page = xasprintf(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in - "
        "labbook</title><meta name=\"viewport\" content=\"width=device-width\"><style>" LOGIN_CSS
        "</style></head><body><main><h1><span>&#9670;</span> labbook</h1>%s</main></body></html>",
        main);
    /* The page's own style is inline: allow that, and nothing else. */
    http_add_header(req, "content-security-policy:",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                    "frame-ancestors 'none'; base-uri 'none'");
    answer(req, p, status, "text/html; charset=utf-8", page);
}

static void login_form(struct hub *h, struct http_req *req, struct http_pending *p, int status,
                       const char *error, const char *next)
{
    char xsrf[XSRF_HEX];
    form_xsrf(h, req, xsrf);
    char *enext = html_escape(safe_next(next));
    char *eerr = error ? html_escape(error) : xstrdup("");
    char *main = xasprintf(
        "<form method=\"post\" action=\"/login\">"
        "<p role=\"alert\">%s</p>"
        "<label>User <input name=\"username\" autocomplete=\"username\" required "
        "autofocus></label>"
        "<label>Password <input name=\"password\" type=\"password\" "
        "autocomplete=\"current-password\" required></label>"
        "<input type=\"hidden\" name=\"_xsrf\" value=\"%s\">"
        "<input type=\"hidden\" name=\"next\" value=\"%s\">"
        "<button type=\"submit\">Sign in</button></form>"
        "<details><summary>Sign in with a token</summary>"
        "<form method=\"get\" action=\"/login\"><label><span>Token (from <code>labbook user "
        "token</code>, or the link <code>make run</code> printed)</span> <input name=\"token\" "
        "type=\"password\" autocomplete=\"off\" required></label>"
        "<input type=\"hidden\" name=\"next\" value=\"%s\">"
        "<button type=\"submit\">Sign in with token</button></form></details>",
        eerr, xsrf, enext, enext);
    free(enext);
    free(eerr);
    answer_page(req, p, status, main);
    free(main);
}

/* Signs the browser in as u: a new session cookie, the session's XSRF token as the
 * _xsrf cookie, and off to next. */
static void start_login(struct hub *h, struct http_req *req, struct http_pending *p,
                        const struct user *u, const char *next)
{
    char *cookie = NULL;
    if (store_login_create(h->store, u->id, h->cfg.cookie_max_age, &cookie) < 0) {
        if (p)
            http_pending_reply_error(p, 500, "cannot create a login session");
        else
            http_reply_error(req, 500, "cannot create a login session");
        return;
    }
    char xsrf[XSRF_HEX];
    xsrf_of_session(cookie, xsrf);
    char *c = xasprintf(AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld", cookie,
                        (long long)h->cfg.cookie_max_age);
    sodium_memzero(cookie, strlen(cookie));
    free(cookie);
    http_add_header(req, "set-cookie:", c);
    sodium_memzero(c, strlen(c));
    free(c);
    set_xsrf_cookie_to(req, xsrf);
    http_add_header(req, "location:", safe_next(next));
    answer(req, p, 302, NULL, NULL);
}

static void link_invalid(struct hub *h, struct http_req *req, const char *next)
{
    login_form(h, req, NULL, 401,
               "This sign-in link is not valid: its token is mistyped, or was revoked. Sign in "
               "below, or ask for a new link.",
               next);
}

/* A valid sign-in link for u was opened. A browser signed in as someone else is asked
 * first (a link must not switch accounts behind the user's back: it may be someone
 * else's); one signed in as u just goes on; any other is signed in. */
static void link_signin(struct hub *h, struct http_req *req, const struct user *u, const char *next)
{
    struct user cur;
    if (!session_user(h, req, &cur, NULL, 0)) {
        start_login(h, req, NULL, u, next);
        return;
    }
    char xsrf[XSRF_HEX];
    form_xsrf(h, req, xsrf); /* the session's, whatever the browser's cookie says */
    if (cur.id == u->id) {
        http_add_header(req, "location:", safe_next(next));
        http_reply_empty(req, 302);
        return;
    }
    const char *token = http_query(req, "token");
    char *etok = html_escape(token ? token : "");
    char *ecur = html_escape(cur.name), *enew = html_escape(u->name);
    char *enext = html_escape(safe_next(next));
    char *main =
        xasprintf("<p>This browser is signed in as <b>%s</b>. The link you opened signs in as "
                  "<b>%s</b>.</p>"
                  "<form method=\"post\" action=\"/login\">"
                  "<input type=\"hidden\" name=\"token\" value=\"%s\">"
                  "<input type=\"hidden\" name=\"_xsrf\" value=\"%s\">"
                  "<input type=\"hidden\" name=\"next\" value=\"%s\">"
                  "<button type=\"submit\">Switch to %s</button></form>"
                  "<p><a href=\"%s\">Stay signed in as %s</a></p>",
                  ecur, enew, etok, xsrf, enext, enew, enext, ecur);
    free(etok);
    free(ecur);
    free(enew);
    free(enext);
    answer_page(req, NULL, 200, main);
    free(main);
}

/* The address of this request without its token argument: where a sign-in link goes. */
static char *without_token(struct http_req *req)
{
    struct buf b = {0};
    http_url_encode(&b, http_view(req)->path, true);
    char tmp[4096];
    bool first = true;
    for (int i = 0; i < 64; i++) {
        int n = lws_hdr_copy_fragment(http_wsi(req), tmp, sizeof(tmp), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (!strncmp(tmp, "token=", 6) || !strcmp(tmp, "token"))
            continue;
        char *eq = strchr(tmp, '=');
        if (eq)
            *eq = '\0';
        buf_append(&b, first ? "?" : "&", 1);
        first = false;
        http_url_encode(&b, tmp, false);
        if (eq) {
            buf_append(&b, "=", 1);
            http_url_encode(&b, eq + 1, false);
        }
    }
    return buf_steal(&b, NULL);
}

/* A request whose address carries ?token=: a sign-in link, valid or not. */
static void token_link(struct hub *h, struct http_req *req, const char *next)
{
    struct user u;
    if (token_user(h, http_query(req, "token"), &u) == 0)
        link_signin(h, req, &u, next);
    else
        link_invalid(h, req, next);
}

void auth_page_link(struct hub *h, struct http_req *req)
{
    char *next = without_token(req);
    token_link(h, req, next);
    free(next);
}

/* A password check on the thread pool, and what its answer needs. */
struct login_attempt {
    struct hub *h;
    struct http_pending *p;
    char *name, *next;
    char addr[64];
};

static void login_checked(void *ctx, int r, const struct user *u)
{
    struct login_attempt *a = ctx;
    struct http_req *req = http_pending_req(a->p);
    if (r == 0)
        login_limiter_success(limiter, a->name, a->addr);
    else /* Not the name typed: people type passwords into the wrong field. */
        log_warn("failed sign-in from %s", a->addr[0] ? a->addr : "an unknown address");
    if (!req)
        http_pending_reply_raw(a->p, 0, NULL, NULL, 0, NULL); /* the client left */
    else if (r == 0)
        start_login(a->h, req, a->p, u, a->next);
    else if (r == -EIO)
        http_pending_reply_error(a->p, 500, "cannot check the password: database error");
    else
        login_form(a->h, req, a->p, 401, "Wrong user name or password.", a->next);
    free(a->name);
    free(a->next);
    free(a);
}

/* The client address sign-in failures are counted against: an IPv4 address, or an
 * IPv6 /64 (one host commonly holds a whole /64, and could otherwise walk it). */
static void peer_key(struct lws *wsi, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(out, n, "?");
    int fd = lws_get_socket_fd(wsi);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    char a[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
        snprintf(out, n, "%s", a);
    } else if (ss.ss_family == AF_INET6) {
        struct in6_addr in6 = ((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6)) {
            inet_ntop(AF_INET, &in6.s6_addr[12], a, sizeof(a));
            snprintf(out, n, "%s", a);
            return;
        }
        memset(&in6.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &in6, a, sizeof(a));
        snprintf(out, n, "%s/64", a);
    }
}

static void login_post(struct hub *h, struct http_req *req, const char *name, const char *pass,
                       const char *next)
{
    char addr[64] = "";
    peer_key(http_wsi(req), addr, sizeof(addr));
    int wait = login_limiter_begin(limiter, name, addr, (int64_t)(now_ms() / 1000));
    if (wait > 0) {
        char *msg = xasprintf("Too many failed sign-ins: try again in %d minute%s.",
                              (wait + 59) / 60, (wait + 59) / 60 == 1 ? "" : "s");
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", wait);
        http_add_header(req, "retry-after:", ra);
        log_warn("sign-in refused for a while: too many failures (from %s)",
                 addr[0] ? addr : "an unknown address");
        login_form(h, req, NULL, 429, msg, next);
        free(msg);
        return;
    }
    struct login_attempt *a = xcalloc(1, sizeof(*a));
    a->h = h;
    a->name = xstrdup(name);
    a->next = xstrdup(next ? next : "/");
    snprintf(a->addr, sizeof(a->addr), "%s", addr);
    a->p = http_defer(req);
    if (login_check_start(h, name, pass, login_checked, a) < 0) {
        http_add_header(req, "retry-after:", "1");
        login_form(h, req, a->p, 503, "Too many sign-ins at once: try again in a moment.", next);
        free(a->name);
        free(a->next);
        free(a);
    }
}

void auth_login_page(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    const char *next = http_query(req, "next");
    if (v->method == HTTP_GET || v->method == HTTP_HEAD) {
        if (http_query(req, "token")) {
            token_link(h, req, next);
            return;
        }
        login_form(h, req, NULL, 200, NULL, next);
        return;
    }
    if (v->method != HTTP_POST) {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    char *xsrf = form_field(v->body, v->body_len, "_xsrf");
    char *name = form_field(v->body, v->body_len, "username");
    char *pass = form_field(v->body, v->body_len, "password");
    char *fnext = form_field(v->body, v->body_len, "next");
    char *token = form_field(v->body, v->body_len, "token");
    struct user u;
    if (!same_origin(req) || !xsrf || !form_xsrf_ok(h, req, xsrf)) {
        http_reply_error(req, 403, "XSRF check failed: reload the sign-in page");
    } else if (token) {
        /* "Switch to" on the page a sign-in link led to (link_signin). */
        if (token_user(h, token, &u) == 0)
            start_login(h, req, NULL, &u, fnext);
        else
            link_invalid(h, req, fnext);
    } else if (!name || !pass) {
        login_form(h, req, NULL, 401, "Wrong user name or password.", fnext);
    } else {
        login_post(h, req, name, pass, fnext);
    }
    if (pass)
        sodium_memzero(pass, strlen(pass));
    if (token)
        sodium_memzero(token, strlen(token));
    free(xsrf);
    free(name);
    free(pass);
    free(fnext);
    free(token);
}

void auth_init(struct hub *h)
{
    login_limiter_free(limiter);
    limiter = login_limiter_new(h->cfg.login_user_failures, h->cfg.login_addr_failures,
                                h->cfg.login_window_s);
    login_init(h);
}

void auth_shutdown(void)
{
    login_shutdown();
    login_limiter_free(limiter);
    limiter = NULL;
}

void auth_logout(struct hub *h, struct http_req *req)
{
    char c[256];
    if (auth_cookie(http_wsi(req), AUTH_COOKIE, c, sizeof(c)))
        store_login_delete(h->store, c);
    http_add_header(req, "set-cookie:", AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    http_add_header(req, "location:", "/login");
    http_reply_empty(req, 302);
}
