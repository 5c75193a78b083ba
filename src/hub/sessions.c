/* /api/sessions: the per-user list of notebook sessions, each pointing at a kernel
 * by id (looked up on every use, so a kernel shut down elsewhere ends its session). */
#include "hub/sessions.h"

#include <errno.h>
#include <libgen.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/api.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"

struct session {
    struct session *next;
    char id[40];
    int64_t owner;
    char *path, *name, *type;
    char kernel_id[40];
    bool starting; /* its kernel is being started or replaced */
};

static void session_free(struct session *s)
{
    free(s->path);
    free(s->name);
    free(s->type);
    free(s);
}

/* Sessions are kept in the store so that a restarted hub finds them again. */
static void session_persist(struct hub *h, const struct session *s)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s}", "owner", (json_int_t)s->owner, "path",
                          s->path, "name", s->name, "type", s->type, "kernel_id", s->kernel_id);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    store_state_put(h->store, "session", s->id, text);
    free(text);
}

static void unlink_session(struct hub *h, struct session *s)
{
    store_state_delete(h->store, "session", s->id);
    for (struct session **pp = &h->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static struct kernel *session_kernel(struct hub *h, struct session *s)
{
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (!strcmp(k->id, s->kernel_id) && k->owner == s->owner && k->life != KERNEL_STOPPING)
            return k;
    return NULL;
}

/* Sessions whose kernel is gone end with it, as in jupyter_server. */
static void prune(struct hub *h)
{
    for (struct session **pp = &h->sessions; *pp;) {
        struct session *s = *pp;
        if (!s->starting && !session_kernel(h, s)) {
            *pp = s->next;
            store_state_delete(h->store, "session", s->id);
            session_free(s);
        } else {
            pp = &s->next;
        }
    }
}

static json_t *session_model(struct hub *h, struct session *s)
{
    struct kernel *k = session_kernel(h, s);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}}", "id", s->id, "path", s->path,
                     "name", s->name, "type", s->type, "kernel", k ? kernel_model(k) : json_null(),
                     "notebook", "path", s->path, "name", s->name);
}

static struct session *find(struct hub *h, const struct user *u, const char *id)
{
    for (struct session *s = h->sessions; s; s = s->next)
        if (s->owner == u->id && !strcmp(s->id, id))
            return s;
    return NULL;
}

/* The kernel's working folder: the notebook's folder inside the user's drive, or
 * the drive itself when that folder does not exist. */
static char *kernel_cwd(struct hub *h, const struct user *u, const char *path)
{
    char *drive = hub_user_drive(h, u);
    char *copy = xstrdup(path);
    char *dir = dirname(copy);
    char *res = NULL;
    bool bad = strstr(path, "..") != NULL || !strcmp(dir, ".") || !strcmp(dir, "/");
    if (!bad) {
        char *cand = xasprintf("%s/%s", drive, dir[0] == '/' ? dir + 1 : dir);
        char *real = realpath(cand, NULL);
        if (real && str_starts_with(real, drive) &&
            (real[strlen(drive)] == '/' || real[strlen(drive)] == '\0'))
            res = real;
        else
            free(real);
        free(cand);
    }
    free(copy);
    if (res) {
        free(drive);
        return res;
    }
    return drive;
}

/* Whether the notebook at path (in u's drive) asks for a GPU the way Colab writes it:
 * metadata.accelerator = "GPU". Notebooks over 16 MiB are not read for this. */
static bool notebook_wants_gpu(struct hub *h, const struct user *u, const char *path)
{
    char *drive = hub_user_drive(h, u);
    char *cand = xasprintf("%s/%s", drive, path[0] == '/' ? path + 1 : path);
    char *real = realpath(cand, NULL);
    bool gpu = false;
    char *text = NULL;
    size_t len;
    if (real && str_starts_with(real, drive) && real[strlen(drive)] == '/' &&
        str_ends_with(real, ".ipynb") && read_file(real, 16 << 20, &text, &len) == 0) {
        json_t *nb = json_loadb(text, len, 0, NULL);
        const char *acc =
            json_string_value(json_object_get(json_object_get(nb, "metadata"), "accelerator"));
        gpu = acc && !strcasecmp(acc, "GPU");
        json_decref(nb);
    }
    free(text);
    free(real);
    free(cand);
    free(drive);
    return gpu;
}

/* The kernelspec to start for a session: the one asked for, or its "gpu" variant
 * when the notebook asks for a GPU and the name does not already pick a type. */
static char *session_kernel_name(struct hub *h, const struct user *u, const char *path,
                                 const char *asked)
{
    const char *name = asked ? asked : h->cfg.default_kernel;
    for (int i = 1; i < h->cfg.nprofiles; i++) {
        char *suffix = xasprintf("-%s", h->cfg.profiles[i].name);
        bool typed = str_ends_with(name, suffix);
        free(suffix);
        if (typed)
            return xstrdup(name);
    }
    if (config_profile(&h->cfg, "gpu") && notebook_wants_gpu(h, u, path))
        return xasprintf("%s-gpu", name);
    return xstrdup(name);
}

struct start_ctx {
    struct hub *h;
    struct http_pending *p;
    char session_id[40];
    char old_kernel[40];
    int status;
};

static void on_kernel_ready(void *vctx, struct kernel *k, int err, const char *reason)
{
    struct start_ctx *c = vctx;
    struct hub *h = c->h;
    struct session *s = NULL;
    for (s = h->sessions; s && strcmp(s->id, c->session_id); s = s->next)
        ;
    if (err < 0) {
        if (s && !c->old_kernel[0]) {
            unlink_session(h, s);
            session_free(s);
        } else if (s) {
            snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", c->old_kernel);
            s->starting = false;
            session_persist(h, s);
        }
        if (k)
            kernel_shutdown(k, NULL, NULL);
        http_pending_reply_error(c->p, 500, "the kernel failed to start: %s",
                                 reason ? reason : "unknown reason");
        free(c);
        return;
    }
    if (!s) { /* the session was deleted meanwhile */
        kernel_shutdown(k, NULL, NULL);
        http_pending_reply_error(c->p, 404, "the session was deleted while its kernel started");
        free(c);
        return;
    }
    s->starting = false;
    session_persist(h, s);
    if (c->old_kernel[0]) {
        struct user u = {.id = s->owner};
        struct kernel *old = kernel_find(h, &u, c->old_kernel);
        if (old)
            kernel_shutdown(old, NULL, NULL);
    }
    http_pending_reply_json(c->p, c->status, session_model(h, s));
    free(c);
}

static const char *str_field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void create(struct hub *h, struct http_req *req, json_t *body)
{
    const struct http_req_view *v = http_view(req);
    const char *path = str_field(body, "path");
    if (!path)
        path = str_field(json_object_get(body, "notebook"), "path");
    if (!path) {
        http_reply_error(req, 400, "path not specified");
        return;
    }
    const char *type = str_field(body, "type");
    const char *name = str_field(body, "name");
    json_t *kj = json_object_get(body, "kernel");
    prune(h);
    for (struct session *s = h->sessions; s; s = s->next)
        if (s->owner == v->user.id && !strcmp(s->path, path) && !s->starting) {
            http_reply_json(req, 201, session_model(h, s));
            return;
        }
    struct session *s = xcalloc(1, sizeof(*s));
    uuid4_string(s->id);
    s->owner = v->user.id;
    s->path = xstrdup(path);
    s->name = xstrdup(name ? name : "");
    s->type = xstrdup(type ? type : "notebook");
    const char *kid = str_field(kj, "id");
    if (kid) {
        struct kernel *k = kernel_find(h, &v->user, kid);
        if (!k) {
            session_free(s);
            http_reply_error(req, 404, "Kernel does not exist: %s", kid);
            return;
        }
        snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", k->id);
        s->next = h->sessions;
        h->sessions = s;
        session_persist(h, s);
        http_reply_json(req, 201, session_model(h, s));
        return;
    }
    char *kname = session_kernel_name(h, &v->user, path, str_field(kj, "name"));
    char *cwd = kernel_cwd(h, &v->user, path);
    struct start_ctx *c = xcalloc(1, sizeof(*c));
    c->h = h;
    c->status = 201;
    snprintf(c->session_id, sizeof(c->session_id), "%s", s->id);
    s->starting = true;
    s->next = h->sessions;
    h->sessions = s;
    struct kernel *k;
    char *err = NULL;
    int r = kernel_start(h, &v->user, kname, cwd, path, on_kernel_ready, c, &k, &err);
    free(cwd);
    free(kname);
    if (r < 0) {
        unlink_session(h, s);
        session_free(s);
        free(c);
        http_reply_error(req, api_start_status(r), "%s", err);
        free(err);
        return;
    }
    snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", k->id);
    session_persist(h, s);
    if (r == KERNEL_QUEUED) { /* answered now: its kernel starts when its turn comes */
        s->starting = false;
        free(c);
        http_reply_json(req, 201, session_model(h, s));
        return;
    }
    c->p = http_defer(req);
}

static void patch(struct hub *h, struct http_req *req, struct session *s, json_t *body)
{
    const struct http_req_view *v = http_view(req);
    const char *path = str_field(body, "path");
    const char *name = str_field(body, "name");
    const char *type = str_field(body, "type");
    if (path) {
        free(s->path);
        s->path = xstrdup(path);
        struct kernel *k = session_kernel(h, s);
        if (k)
            kernel_set_session_path(k, path);
    }
    if (name) {
        free(s->name);
        s->name = xstrdup(name);
    }
    if (type) {
        free(s->type);
        s->type = xstrdup(type);
    }
    json_t *kj = json_object_get(body, "kernel");
    if (!json_is_object(kj)) {
        session_persist(h, s);
        http_reply_json(req, 200, session_model(h, s));
        return;
    }
    const char *kid = str_field(kj, "id");
    if (kid) {
        struct kernel *k = kernel_find(h, &v->user, kid);
        if (!k) {
            http_reply_error(req, 400, "No kernel with id %s", kid);
            return;
        }
        snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", k->id);
        session_persist(h, s);
        http_reply_json(req, 200, session_model(h, s));
        return;
    }
    const char *kname = str_field(kj, "name");
    if (!kname) {
        session_persist(h, s);
        http_reply_json(req, 200, session_model(h, s));
        return;
    }
    if (s->starting) {
        http_reply_error(req, 409, "the session's kernel is already being started");
        return;
    }
    char *cwd = kernel_cwd(h, &v->user, s->path);
    struct start_ctx *c = xcalloc(1, sizeof(*c));
    c->h = h;
    c->status = 200;
    snprintf(c->session_id, sizeof(c->session_id), "%s", s->id);
    snprintf(c->old_kernel, sizeof(c->old_kernel), "%s", s->kernel_id);
    struct kernel *k;
    char *err = NULL;
    int r = kernel_start(h, &v->user, kname, cwd, s->path, on_kernel_ready, c, &k, &err);
    free(cwd);
    if (r < 0) {
        free(c);
        http_reply_error(req, api_start_status(r), "%s", err);
        free(err);
        return;
    }
    if (r == KERNEL_QUEUED) {
        struct user u = {.id = s->owner};
        struct kernel *old = kernel_find(h, &u, s->kernel_id);
        if (old)
            kernel_shutdown(old, NULL, NULL);
        snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", k->id);
        free(c);
        session_persist(h, s);
        http_reply_json(req, 200, session_model(h, s));
        return;
    }
    s->starting = true;
    snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", k->id);
    c->p = http_defer(req);
}

static void on_session_kernel_gone(void *ctx, struct kernel *k, int err, const char *reason)
{
    (void)k;
    (void)err;
    (void)reason;
    http_pending_reply_raw(ctx, 204, NULL, NULL, 0, NULL);
}

void sessions_handle(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    json_t *body = NULL;
    if ((v->method == HTTP_POST || v->method == HTTP_PATCH) &&
        http_body_json(req, false, &body) < 0)
        return;
    prune(h);
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method == HTTP_GET) {
            json_t *list = json_array();
            for (struct session *s = h->sessions; s; s = s->next)
                if (s->owner == v->user.id && !s->starting)
                    json_array_append_new(list, session_model(h, s));
            http_reply_json(req, 200, list);
        } else if (v->method == HTTP_POST) {
            create(h, req, body);
        } else {
            http_reply_error(req, 405, "method not allowed");
        }
        goto out;
    }
    struct session *s = find(h, &v->user, rest + 1);
    if (!s) {
        http_reply_error(req, 404, "Session not found: %s", rest + 1);
        goto out;
    }
    if (v->method == HTTP_GET) {
        http_reply_json(req, 200, session_model(h, s));
    } else if (v->method == HTTP_PATCH) {
        patch(h, req, s, body);
    } else if (v->method == HTTP_DELETE) {
        struct kernel *k = session_kernel(h, s);
        unlink_session(h, s);
        session_free(s);
        if (k)
            kernel_shutdown(k, on_session_kernel_gone, http_defer(req));
        else
            http_reply_empty(req, 204);
    } else {
        http_reply_error(req, 405, "method not allowed");
    }
out:
    json_decref(body);
}

static void load_one(void *ctx, const char *id, const char *text)
{
    struct hub *h = ctx;
    json_t *o = json_loads(text, 0, NULL);
    const char *path = json_string_value(json_object_get(o, "path"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *kid = json_string_value(json_object_get(o, "kernel_id"));
    if (path && name && type && kid && strlen(id) < 40 && strlen(kid) < 40) {
        struct session *s = xcalloc(1, sizeof(*s));
        snprintf(s->id, sizeof(s->id), "%s", id);
        s->owner = json_integer_value(json_object_get(o, "owner"));
        s->path = xstrdup(path);
        s->name = xstrdup(name);
        s->type = xstrdup(type);
        snprintf(s->kernel_id, sizeof(s->kernel_id), "%s", kid);
        s->next = h->sessions;
        h->sessions = s;
    } else {
        store_state_delete(h->store, "session", id);
    }
    json_decref(o);
}

void sessions_load(struct hub *h)
{
    store_state_list(h->store, "session", load_one, h);
    prune(h); /* those whose runtime did not survive */
}

void sessions_free_all(struct hub *h)
{
    while (h->sessions) {
        struct session *s = h->sessions;
        h->sessions = s->next;
        session_free(s);
    }
}
