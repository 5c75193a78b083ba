/* Users' secrets: the hub's key, sealing and opening values, /api/secrets for the
 * Secrets panel, and the answers to runtimes asking through their agents (STREAM_SECRET,
 * docs/agent-protocol.md). A value is sealed with XChaCha20-Poly1305 under the hub's key,
 * with the owner's id and the secret's name as associated data, so a sealed value moved
 * to another user or name in the database does not open. */
#include "hub/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/utf8.h"
#include "common/util.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "store/secrets.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KEY_FILE "secrets.key"
#define AGENT_REQUEST_MAX 1024 /* bytes of a runtime's request */

_Static_assert(SECRET_NAME_MAX < 200, "the associated data fits its buffer");

/* ---- the key ---- */

static int read_key(int fd, unsigned char *key, char **err, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode) || st.st_size != KEY_BYTES) {
        *err = xasprintf("%s is not a key of %d bytes: move it away to make a new one (every "
                         "secret stored with it is then lost)",
                         path, KEY_BYTES);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        log_warn("%s could be read by others (mode %o): making it 0600", path,
                 (unsigned)(st.st_mode & 0777));
        if (fchmod(fd, 0600) < 0) {
            *err = xasprintf("%s: chmod: %s", path, strerror(errno));
            return -errno;
        }
    }
    size_t have = 0;
    while (have < KEY_BYTES) {
        ssize_t n = read(fd, key + have, KEY_BYTES - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = xasprintf("%s: short read", path);
            return -EIO;
        }
        have += (size_t)n;
    }
    return 0;
}

/* A new key: written to a temporary file, then linked into place, so that a crash
 * leaves either no key or a whole one, and two hubs starting at once agree on one. */
static int create_key(const char *dir, const char *path, char **err)
{
    unsigned char key[KEY_BYTES];
    randombytes_buf(key, sizeof(key));
    char *tmp = xasprintf("%s/.%s.%ld", dir, KEY_FILE, (long)getpid());
    unlink(tmp);
    int r = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        *err = xasprintf("creating %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || fsync(fd) < 0) {
        r = -EIO;
        *err = xasprintf("writing %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) < 0 && errno != EEXIST) {
        r = -errno;
        *err = xasprintf("creating %s: %s", path, strerror(errno));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    sodium_memzero(key, sizeof(key));
    return r;
}

int secrets_open(struct hub *h, char **err)
{
    *err = NULL;
    char *path = xasprintf("%s/%s", h->data_dir, KEY_FILE);
    int r = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if ((r = create_key(h->data_dir, path, err)) < 0)
            goto out;
        log_info("created %s, the key of users' secrets", path);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        r = -errno;
        *err = xasprintf("opening %s: %s", path, strerror(errno));
        goto out;
    }
    h->secrets_key = sodium_malloc(KEY_BYTES);
    if (!h->secrets_key)
        abort();
    if ((r = read_key(fd, h->secrets_key, err, path)) < 0) {
        sodium_free(h->secrets_key);
        h->secrets_key = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}

void secrets_close(struct hub *h)
{
    if (h->secrets_key)
        sodium_free(h->secrets_key);
    h->secrets_key = NULL;
}

bool secrets_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > SECRET_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* "labbook-secret" 0, the owner's id (8 bytes, little-endian), the name. */
static size_t associated(unsigned char ad[256], int64_t user_id, const char *name)
{
    static const char tag[] = "labbook-secret";
    size_t n = sizeof(tag);
    memcpy(ad, tag, n);
    for (int i = 0; i < 8; i++)
        ad[n++] = (unsigned char)((uint64_t)user_id >> (8 * i));
    size_t l = strlen(name);
    memcpy(ad + n, name, l);
    return n + l;
}

static int seal_put(struct hub *h, int64_t user_id, const char *name, const char *value, size_t len,
                    bool *created)
{
    unsigned char nonce[NONCE_BYTES], ad[256];
    randombytes_buf(nonce, sizeof(nonce));
    size_t adl = associated(ad, user_id, name);
    unsigned char *sealed = xmalloc(len + TAG_BYTES);
    unsigned long long sl = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, &sl, (const unsigned char *)value, len, ad,
                                               adl, NULL, nonce, h->secrets_key);
    int r = store_secret_put(h->store, user_id, name, nonce, sizeof(nonce), sealed, (size_t)sl,
                             created);
    free(sealed);
    return r;
}

/* The value of the user's secret (caller frees with sodium_memzero + free; *len its
 * length, NUL-terminated too): 0, -ENOENT, -EBADMSG when it does not open (a changed
 * key), -EIO. */
static int open_value(struct hub *h, int64_t user_id, const char *name, char **value, size_t *len,
                      struct store_secret *info)
{
    uint8_t *nonce = NULL, *sealed = NULL;
    size_t nl = 0, sl = 0;
    int r = store_secret_get(h->store, user_id, name, &nonce, &nl, &sealed, &sl, info);
    if (r < 0)
        return r;
    unsigned char ad[256];
    size_t adl = associated(ad, user_id, name);
    char *out = xmalloc(sl + 1);
    unsigned long long ol = 0;
    if (nl != NONCE_BYTES || sl < TAG_BYTES ||
        crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &ol, NULL, sealed, sl, ad,
                                                   adl, nonce, h->secrets_key) < 0) {
        free(out);
        r = -EBADMSG;
    } else {
        out[ol] = '\0';
        *value = out;
        *len = (size_t)ol;
    }
    free(nonce);
    free(sealed);
    return r;
}

static void value_free(char *v, size_t len)
{
    if (v) {
        sodium_memzero(v, len);
        free(v);
    }
}

/* ---- /api/secrets ---- */

static json_t *secret_model(const struct store_secret *sec, bool with_access)
{
    char c[32], u[32];
    iso8601_from_time((double)sec->created, c);
    iso8601_from_time((double)sec->updated, u);
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", sec->name, "created", c, "updated", u);
    if (with_access)
        json_object_set_new(o, "notebook_access", json_boolean(sec->granted));
    return o;
}

static void add_model(void *ctx, const struct store_secret *sec)
{
    struct {
        json_t *list;
        bool with_access;
    } *c = ctx;
    json_array_append_new(c->list, secret_model(sec, c->with_access));
}

static void add_notebook(void *ctx, const char *nb)
{
    json_array_append_new(ctx, json_string(nb));
}

/* A notebook path as sessions keep it (no leading "/"); NULL if it cannot be one. */
static const char *notebook_arg(const char *p)
{
    if (!p)
        return NULL;
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    if (n == 0 || n > SECRET_NOTEBOOK_MAX || !utf8_valid(p, n))
        return NULL;
    return p;
}

static int store_status(int r)
{
    switch (r) {
    case -ENOENT:
        return 404;
    case -EDQUOT:
        return 409;
    case -EINVAL:
        return 400;
    default:
        return 500;
    }
}

static void reply_store_error(struct http_req *req, int r, const char *name)
{
    if (r == -ENOENT)
        http_reply_error(req, 404, "No such secret: %s", name);
    else if (r == -EDQUOT)
        http_reply_error(req, 409,
                         "too many secrets or notebooks (at most %d secrets, each for "
                         "at most %d notebooks)",
                         STORE_SECRETS_MAX, STORE_GRANTS_MAX);
    else if (r == -EBADMSG)
        http_reply_error(req, 500, "the secret %s cannot be decrypted: the hub's key has changed",
                         name);
    else
        http_reply_error(req, store_status(r), "the secret store failed: %s", strerror(-r));
}

/* One secret with its value and the notebooks that may read it. */
static void reply_secret(struct hub *h, struct http_req *req, int64_t uid, const char *name,
                         bool with_value, int status)
{
    char *value = NULL;
    size_t vlen = 0;
    struct store_secret info;
    uint8_t *nonce = NULL, *sealed = NULL;
    size_t nl, sl;
    int r = with_value ? open_value(h, uid, name, &value, &vlen, &info)
                       : store_secret_get(h->store, uid, name, &nonce, &nl, &sealed, &sl, &info);
    free(nonce);
    free(sealed);
    if (r < 0) {
        reply_store_error(req, r, name);
        return;
    }
    json_t *o = secret_model(&info, false);
    json_t *nbs = json_array();
    store_secret_notebooks(h->store, uid, name, add_notebook, nbs);
    json_object_set_new(o, "notebooks", nbs);
    if (with_value)
        json_object_set_new(o, "value", json_stringn(value, vlen));
    value_free(value, vlen);
    http_reply_json(req, status, o);
}

static void put_secret(struct hub *h, struct http_req *req, int64_t uid, const char *name)
{
    json_t *body = NULL;
    if (http_body_json(req, false, &body) < 0)
        return;
    json_t *v = json_object_get(body, "value");
    if (!json_is_string(v)) {
        http_reply_error(req, 400, "the body must be {\"value\": \"...\"}");
    } else if (json_string_length(v) > SECRET_VALUE_MAX) {
        http_reply_error(req, 413, "a secret's value is at most %d KiB", SECRET_VALUE_MAX >> 10);
    } else {
        bool created = false;
        int r = seal_put(h, uid, name, json_string_value(v), json_string_length(v), &created);
        if (r < 0) {
            reply_store_error(req, r, name);
        } else {
            /* Set "notebook" too: the panel adds a secret with access for its notebook. */
            const char *nb = notebook_arg(json_string_value(json_object_get(body, "notebook")));
            if (nb && json_is_true(json_object_get(body, "notebook_access")))
                store_secret_grant(h->store, uid, name, nb, true);
            reply_secret(h, req, uid, name, false, created ? 201 : 200);
        }
    }
    json_decref(body);
}

static void put_access(struct hub *h, struct http_req *req, int64_t uid, const char *name)
{
    json_t *body = NULL;
    if (http_body_json(req, false, &body) < 0)
        return;
    const char *nb = notebook_arg(json_string_value(json_object_get(body, "notebook")));
    json_t *on = json_object_get(body, "access");
    if (!nb || !json_is_boolean(on)) {
        http_reply_error(
            req, 400, "the body must be {\"notebook\": \"path/of.ipynb\", \"access\": true|false}");
    } else {
        int r = store_secret_grant(h->store, uid, name, nb, json_is_true(on));
        if (r < 0)
            reply_store_error(req, r, name);
        else
            reply_secret(h, req, uid, name, false, 200);
    }
    json_decref(body);
}

void secrets_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    int64_t uid = v->user.id;
    if (!h->secrets_key) {
        http_reply_error(req, 503, "secrets are not available: the hub has no key (see its log)");
        return;
    }
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method != HTTP_GET) {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
        const char *q = http_query(req, "notebook");
        const char *nb = notebook_arg(q);
        if (q && !nb) {
            http_reply_error(req, 400, "notebook must be a notebook's path");
            return;
        }
        struct {
            json_t *list;
            bool with_access;
        } c = {json_array(), nb != NULL};
        int r = store_secret_list(h->store, uid, nb, add_model, &c);
        if (r < 0) {
            json_decref(c.list);
            reply_store_error(req, r, "");
            return;
        }
        http_reply_json(req, 200, c.list);
        return;
    }
    /* /NAME or /NAME/access */
    char name[SECRET_NAME_MAX + 2];
    const char *p = rest + 1;
    size_t n = strcspn(p, "/");
    const char *sub = p + n;
    if (n > SECRET_NAME_MAX) {
        http_reply_error(req, 400, "a secret's name is at most %d characters", SECRET_NAME_MAX);
        return;
    }
    memcpy(name, p, n);
    name[n] = '\0';
    if (!secrets_name_valid(name)) {
        http_reply_error(req, 400,
                         "a secret's name is letters, digits and underscores, not starting with a "
                         "digit, at most %d characters",
                         SECRET_NAME_MAX);
        return;
    }
    if (!strcmp(sub, "/access")) {
        if (v->method == HTTP_PUT)
            put_access(h, req, uid, name);
        else if (v->method == HTTP_GET)
            reply_secret(h, req, uid, name, false, 200);
        else
            http_reply_error(req, 405, "method not allowed");
        return;
    }
    if (*sub && strcmp(sub, "/")) {
        http_reply_error(req, 404, "Not Found");
        return;
    }
    switch (v->method) {
    case HTTP_GET: {
        const char *with = http_query(req, "value");
        reply_secret(h, req, uid, name, with && strcmp(with, "0") && strcmp(with, "false"), 200);
        break;
    }
    case HTTP_PUT:
        put_secret(h, req, uid, name);
        break;
    case HTTP_DELETE: {
        int r = store_secret_delete(h->store, uid, name);
        if (r < 0)
            reply_store_error(req, r, name);
        else
            http_reply_empty(req, 204);
        break;
    }
    default:
        http_reply_error(req, 405, "method not allowed");
    }
}

/* ---- runtimes asking ---- */

static void agent_reply(struct kernel *k, json_t *o /* stolen */)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int r = kernel_send_to_agent(k, STREAM_SECRET_REPLY, s, strlen(s));
    if (r < 0)
        log_warn("kernel %s: could not answer a secret request: %s", k->id, strerror(-r));
    sodium_memzero(s, strlen(s));
    free(s);
}

/* Token bucket: SECRET_REQUESTS_BURST at once, SECRET_REQUESTS_PER_S after. */
static bool rate_ok(struct kernel *k)
{
    uint64_t now = now_ms();
    if (!k->secret_at_ms) {
        k->secret_tokens = SECRET_REQUESTS_BURST;
    } else {
        k->secret_tokens += (double)(now - k->secret_at_ms) * SECRET_REQUESTS_PER_S / 1000.0;
        if (k->secret_tokens > SECRET_REQUESTS_BURST)
            k->secret_tokens = SECRET_REQUESTS_BURST;
    }
    k->secret_at_ms = now;
    if (k->secret_tokens < 1)
        return false;
    k->secret_tokens -= 1;
    return true;
}

void secrets_on_agent_request(struct kernel *k, const uint8_t *p, size_t len)
{
    struct hub *h = k->hub;
    json_t *o = len <= AGENT_REQUEST_MAX ? json_loadb((const char *)p, len, 0, NULL) : NULL;
    json_t *req = json_object_get(o, "req");
    if (!json_is_integer(req)) {
        log_warn("kernel %s: dropped a malformed secret request from its agent", k->id);
        json_decref(o);
        return;
    }
    json_t *ans = json_pack("{s:O}", "req", req);
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *nb = k->session_path; /* the hub's own record, never the runtime's word */
    char *value = NULL;
    size_t vlen = 0;
    bool granted = false;
    int r;
    if (!rate_ok(k)) {
        json_object_set_new(ans, "status", json_string("error"));
        json_object_set_new(
            ans, "message",
            json_sprintf("too many secret requests: at most %d per second", SECRET_REQUESTS_PER_S));
    } else if (!h->secrets_key) {
        json_object_set_new(ans, "status", json_string("error"));
        json_object_set_new(ans, "message", json_string("secrets are not available on this hub"));
    } else if (!name || !secrets_name_valid(name) || k->owner <= 0) {
        /* An invalid name cannot exist; a runtime nobody owns has no secrets. */
        json_object_set_new(ans, "status", json_string("not_found"));
    } else if ((r = store_secret_granted(h->store, k->owner, name, nb ? nb : "", &granted)) ==
               -ENOENT) {
        json_object_set_new(ans, "status", json_string("not_found"));
    } else if (r < 0) {
        json_object_set_new(ans, "status", json_string("error"));
        json_object_set_new(ans, "message", json_string("the secret store failed"));
    } else if (!nb || !granted) {
        json_object_set_new(ans, "status", json_string("no_access"));
        if (!nb)
            json_object_set_new(
                ans, "message",
                json_string("this runtime is not bound to a notebook (start it through a "
                            "notebook session to give the notebook access)"));
    } else if ((r = open_value(h, k->owner, name, &value, &vlen, NULL)) < 0) {
        json_object_set_new(ans, "status", json_string(r == -ENOENT ? "not_found" : "error"));
        if (r != -ENOENT)
            json_object_set_new(ans, "message", json_string("the secret cannot be decrypted"));
    } else {
        json_object_set_new(ans, "status", json_string("ok"));
        json_object_set_new(ans, "value", json_stringn(value, vlen));
    }
    value_free(value, vlen);
    json_decref(o);
    agent_reply(k, ans);
}
