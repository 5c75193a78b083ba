/* labbook's runtime API (/api/runtimes: each runtime with its resource figures,
 * termination, factory reset and /content's files) and the Prometheus endpoint /metrics (admins
 * only). */
#include "hub/api_runtimes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/figures.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/runtime_files.h"

#define FRESH_MS 2000 /* answers use figures at most this old */

enum rt_kind { RT_LIST, RT_ONE, RT_METRICS };

struct rt_ctx {
    struct http_pending *p;
    enum rt_kind kind;
    struct user user;
    bool all;
    char id[64];
};

/* The runtime id, the user's own or (for an admin) anyone's; NULL if none. */
static struct kernel *runtime_find(struct hub *h, const struct user *u, const char *id)
{
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (!strcmp(k->id, id) && k->life != KERNEL_STOPPING && (k->owner == u->id || u->admin))
            return k;
    return NULL;
}

static void on_sampled(struct hub *h, void *vctx)
{
    struct rt_ctx *c = vctx;
    if (c->kind == RT_LIST) {
        json_t *list = json_array();
        for (struct kernel *k = h->kernels; k; k = k->next)
            if (k->life != KERNEL_STOPPING && (k->owner == c->user.id || c->all))
                json_array_append_new(list, figures_runtime_model(h, k));
        http_pending_reply_json(c->p, 200, list);
    } else if (c->kind == RT_ONE) {
        struct kernel *k = runtime_find(h, &c->user, c->id);
        if (k)
            http_pending_reply_json(c->p, 200, figures_runtime_model(h, k));
        else
            http_pending_reply_error(c->p, 404, "No such runtime: %s", c->id);
    } else {
        size_t len;
        char *text = figures_metrics_text(h, &len);
        http_pending_reply_raw(c->p, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                               NULL);
    }
    free(c);
}

static void answer_with_figures(struct hub *h, struct http_req *req, enum rt_kind kind, bool all,
                                const char *id)
{
    struct rt_ctx *c = xcalloc(1, sizeof(*c));
    c->kind = kind;
    c->user = http_view(req)->user;
    c->all = all;
    if (id)
        snprintf(c->id, sizeof(c->id), "%s", id);
    c->p = http_defer(req);
    figures_refresh(h, FRESH_MS, on_sampled, c);
}

static void on_gone(void *ctx, struct kernel *k, int err, const char *reason)
{
    (void)k;
    (void)err;
    (void)reason;
    http_pending_reply_raw(ctx, 204, NULL, NULL, 0, NULL);
}

struct reset_ctx {
    struct hub *h;
    struct http_pending *p;
};

static void on_reset(void *vctx, struct kernel *k, int err, const char *reason)
{
    struct reset_ctx *c = vctx;
    if (err < 0)
        http_pending_reply_error(c->p, 500, "the runtime failed to start again: %s",
                                 reason ? reason : "unknown reason");
    else
        http_pending_reply_json(c->p, 200, figures_runtime_model(c->h, k));
    free(c);
}

/* Factory reset: the agent ends the kernel (and waits for it), moves the overlay and
 * /content aside, and starts a new kernel on fresh, empty folders (docs/figures.md). The
 * old files are the agent's to move: the hub may be unprivileged, and the old kernel must
 * not see them go. */
static void runtime_reset(struct hub *h, struct http_req *req, struct kernel *k)
{
    if (k->queued) {
        http_reply_error(req, 409, "the runtime is waiting for GPUs: there is nothing to reset");
        return;
    }
    if (!k->agent) {
        http_reply_error(req, 409, "the runtime's agent is not connected yet: try again later");
        return;
    }
    struct reset_ctx *c = xcalloc(1, sizeof(*c));
    c->h = h;
    c->p = http_defer(req);
    figures_runtime_forget(h, k->id);
    kernel_reset(k, on_reset, c);
}

void runtimes_api(struct hub *h, struct http_req *req, const char *rest)
{
    const struct http_req_view *v = http_view(req);
    const char *all_q = http_query(req, "all");
    bool all = all_q && (!strcmp(all_q, "1") || !strcmp(all_q, "true"));
    if (all && !v->user.admin) {
        http_reply_error(req, 403, "only administrators may see every user's runtimes");
        return;
    }
    if (!*rest || !strcmp(rest, "/")) {
        if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
            http_reply_error(req, 405, "method not allowed");
            return;
        }
        answer_with_figures(h, req, RT_LIST, all, NULL);
        return;
    }
    char id[64];
    const char *s = rest + 1, *slash = strchr(s, '/');
    size_t idlen = slash ? (size_t)(slash - s) : strlen(s);
    if (idlen == 0 || idlen >= sizeof(id)) {
        http_reply_error(req, 404, "No such runtime");
        return;
    }
    memcpy(id, s, idlen);
    id[idlen] = '\0';
    struct kernel *k = runtime_find(h, &v->user, id);
    if (!k) {
        http_reply_error(req, 404, "No such runtime: %s", id);
        return;
    }
    const char *action = slash ? slash : "";
    if (str_starts_with(action, "/files") && (action[6] == '\0' || action[6] == '/')) {
        /* Only the owner: a runtime's files are not an administrator's to browse. */
        if (k->owner != v->user.id)
            http_reply_error(req, 404, "No such runtime: %s", id);
        else
            runtime_files(h, req, k, action + 6);
        return;
    }
    if (!*action && (v->method == HTTP_GET || v->method == HTTP_HEAD))
        answer_with_figures(h, req, RT_ONE, all, id);
    else if (!*action && v->method == HTTP_DELETE)
        kernel_shutdown(k, on_gone, http_defer(req));
    else if (!strcmp(action, "/reset") && v->method == HTTP_POST)
        runtime_reset(h, req, k);
    else
        http_reply_error(req, 405, "method not allowed");
}

void metrics_api(struct hub *h, struct http_req *req)
{
    const struct http_req_view *v = http_view(req);
    if (!v->authed) {
        http_reply_error(req, 403, "Forbidden: authentication required");
        return;
    }
    if (!v->user.admin) {
        http_reply_error(req, 403, "Forbidden: /metrics is for administrators");
        return;
    }
    if (v->method != HTTP_GET && v->method != HTTP_HEAD) {
        http_reply_error(req, 405, "method not allowed");
        return;
    }
    answer_with_figures(h, req, RT_METRICS, true, NULL);
}
