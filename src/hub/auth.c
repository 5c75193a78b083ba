/* Authentication of each request (token header, ?token=, login cookie), the XSRF
 * double-submit check for cookie-authenticated state changes, and the login page. */
#include "hub/auth.h"

#include <errno.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/http.h"
#include "hub/hub.h"

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

/* A token's check as auth_request answers it: an expired token is told apart. */
static int token_result(int r)
{
    return r == 0 ? 0 : r == -EKEYEXPIRED ? -EKEYEXPIRED : -EACCES;
}

int auth_request(struct hub *h, struct lws *wsi, struct user *u, bool *by_cookie)
{
    char tok[512], buf[600];
    *by_cookie = false;
    if (token_from_header(wsi, tok, sizeof(tok)))
        return token_result(store_token_check(h->store, tok, u));
    const char *q = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
    if (q && *q)
        return token_result(store_token_check(h->store, q, u));
    if (auth_cookie(wsi, AUTH_COOKIE, tok, sizeof(tok)) &&
        store_login_check(h->store, tok, u) == 0) {
        *by_cookie = true;
        return 0;
    }
    return -EACCES;
}

bool auth_xsrf_ok(struct lws *wsi, const char *form_xsrf)
{
    char cookie[128], hdr[128];
    if (!auth_cookie(wsi, XSRF_COOKIE, cookie, sizeof(cookie)) || !*cookie)
        return false;
    const char *given = form_xsrf;
    if (!given) {
        if (lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-xsrftoken:", 12) > 0 ||
            lws_hdr_custom_copy(wsi, hdr, sizeof(hdr), "x-csrftoken:", 12) > 0)
            given = hdr;
        else if (lws_get_urlarg_by_name(wsi, "_xsrf=", hdr, sizeof(hdr)))
            given = hdr + 6;
    }
    if (!given || strlen(given) != strlen(cookie))
        return false;
    return sodium_memcmp(given, cookie, strlen(cookie)) == 0;
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

static void set_xsrf_cookie(struct http_req *req, char *xsrf, size_t n)
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(xsrf, n, raw, sizeof(raw));
    char *c = xasprintf(XSRF_COOKIE "=%s; Path=/; SameSite=Lax", xsrf);
    http_add_header(req, "set-cookie:", c);
    free(c);
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

static void login_form(struct http_req *req, int status, const char *error, const char *next)
{
    char xsrf[40];
    set_xsrf_cookie(req, xsrf, sizeof(xsrf));
    char *enext = html_escape(safe_next(next));
    char *eerr = error ? html_escape(error) : xstrdup("");
    char *page = xasprintf(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in - "
        "labbook</title><meta name=\"viewport\" content=\"width=device-width\"><style>" LOGIN_CSS
        "</style></head><body><main><h1><span>&#9670;</span> labbook</h1>"
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
        "<button type=\"submit\">Sign in with token</button></form></details>"
        "</main></body></html>",
        eerr, xsrf, enext, enext);
    /* The page's own style is inline: allow that, and nothing else. */
    http_add_header(req, "content-security-policy:",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                    "frame-ancestors 'none'; base-uri 'none'");
    free(enext);
    free(eerr);
    http_reply(req, status, "text/html; charset=utf-8", page, strlen(page));
}

static void start_login(struct hub *h, struct http_req *req, const struct user *u, const char *next)
{
    /* The browser needs an XSRF cookie for the state changes it will make. */
    char xsrf[40];
    if (!auth_cookie(http_wsi(req), XSRF_COOKIE, xsrf, sizeof(xsrf)))
        set_xsrf_cookie(req, xsrf, sizeof(xsrf));
    char *cookie = NULL;
    if (store_login_create(h->store, u->id, h->cfg.cookie_max_age, &cookie) < 0) {
        http_reply_error(req, 500, "cannot create a login session");
        return;
    }
    char *c = xasprintf(AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld", cookie,
                        (long long)h->cfg.cookie_max_age);
    sodium_memzero(cookie, strlen(cookie));
    free(cookie);
    http_add_header(req, "set-cookie:", c);
    free(c);
    http_add_header(req, "location:", safe_next(next));
    http_reply_empty(req, 302);
}

void auth_login_page(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    const char *next = http_query(req, "next");
    if (v->method == HTTP_GET || v->method == HTTP_HEAD) {
        /* A login link carrying ?token= signs the browser in with a cookie. */
        if (v->authed && !v->by_cookie && http_query(req, "token")) {
            start_login(h, req, &v->user, next);
            return;
        }
        login_form(req, 200, NULL, next);
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
    struct user u;
    if (!xsrf || !auth_xsrf_ok(http_wsi(req), xsrf)) {
        http_reply_error(req, 403, "XSRF check failed: reload the sign-in page");
    } else if (!name || !pass || store_password_check(h->store, name, pass, &u) < 0) {
        /* Not the name typed: people type passwords into the wrong field. */
        char peer[64] = "";
        lws_get_peer_simple(http_wsi(req), peer, sizeof(peer));
        log_warn("failed sign-in from %s", peer[0] ? peer : "an unknown address");
        login_form(req, 401, "Wrong user name or password.", fnext);
    } else {
        start_login(h, req, &u, fnext);
    }
    if (pass)
        sodium_memzero(pass, strlen(pass));
    free(xsrf);
    free(name);
    free(pass);
    free(fnext);
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
