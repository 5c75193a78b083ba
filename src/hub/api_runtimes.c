/* labbook's runtime API (/api/runtimes: each runtime with its resource figures,
 * termination, factory reset and /content's files) and the Prometheus endpoint /metrics (admins
 * only). */
#include "hub/api_runtimes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/figures.h"
#include "hub/http.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/runtime_files.h"
#include "hub/scheduler.h"
#include "sandbox/gpu.h"

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

/* The host's GPUs by model, [{name, memory_mb, count}], in index order of first sight. */
static json_t *gpu_models(const struct hub *h)
{
    json_t *models = json_array();
    for (size_t i = 0; h->gpus && i < h->gpus->n; i++) {
        const struct gpu_info *g = &h->gpus->gpus[i];
        json_int_t mb = (json_int_t)(g->memory_total >> 20);
        json_t *same = NULL, *m;
        size_t j;
        json_array_foreach(models, j, m)
        {
            if (!strcmp(json_string_value(json_object_get(m, "name")), g->name) &&
                json_integer_value(json_object_get(m, "memory_mb")) == mb)
                same = m;
        }
        if (same) {
            json_object_set_new(
                same, "count",
                json_integer(json_integer_value(json_object_get(same, "count")) + 1));
            continue;
        }
        json_t *name = json_string(g->name);
        if (!name)
            name = json_string("GPU"); /* a driver's name that is not UTF-8 */
        json_array_append_new(
            models, json_pack("{s:o, s:I, s:i}", "name", name, "memory_mb", mb, "count", 1));
    }
    return models;
}

/* GET /api/runtimes/types: each runtime type (profile) in people's words, with what it
 * gets, its limits, how many of it the user holds, and whether its GPUs are free now. */
static void runtime_types(struct hub *h, struct http_req *req)
{
    const struct user *u = &http_view(req)->user;
    unsigned total = h->gpus ? (unsigned)h->gpus->n : 0;
    unsigned free_now = h->sched ? scheduler_free_gpus(h->sched) : 0;
    size_t waiting = h->sched ? scheduler_queued(h->sched) : 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    json_t *models = gpu_models(h), *list = json_array();
    for (int i = 0; i < h->cfg.nprofiles; i++) {
        const struct profile *p = &h->cfg.profiles[i];
        int yours = 0;
        for (struct kernel *k = h->kernels; k; k = k->next)
            if (k->owner == u->id && !k->pooled && k->life != KERNEL_STOPPING &&
                !strcmp(k->profile, p->name))
                yours++;
        char *note = NULL;
        if ((unsigned)p->gpus > total)
            note = xasprintf("this type needs %d GPU%s; this server has %u", p->gpus,
                             p->gpus == 1 ? "" : "s", total);
        char *suffix = i ? xasprintf("-%s", p->name) : xstrdup("");
        json_t *t = json_pack(
            "{s:s, s:s, s:b, s:s, s:i, s:o, s:I, s:i, s:i, s:I, s:i, s:i, s:i, s:i, s:b}", "name",
            p->name, "display_name", p->display_name, "default", i == 0, "kernel_suffix", suffix,
            "gpus", p->gpus, "gpu_models", p->gpus > 0 ? json_incref(models) : json_array(),
            "memory_mb", (json_int_t)(p->memory >> 20), "cpu_shares", p->cpu_shares, "host_cpus",
            cpus > 0 ? (int)cpus : 1, "disk_mb", (json_int_t)(p->disk >> 20), "idle_timeout_s",
            p->idle_timeout_s, "max_lifetime_s", p->max_lifetime_s, "max_per_user", p->max_per_user,
            "yours", yours, "network", p->network != 0);
        json_object_set_new(t, "note", note ? json_string(note) : json_null());
        if (p->gpus > 0) {
            json_object_set_new(t, "gpus_total", json_integer(total));
            json_object_set_new(t, "gpus_free", json_integer(free_now));
            json_object_set_new(t, "queued", json_integer((json_int_t)waiting));
        }
        json_array_append_new(list, t);
        free(note);
        free(suffix);
    }
    json_decref(models);
    http_reply_json(req, 200, list);
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
    if (!strcmp(rest, "/types")) {
        if (v->method != HTTP_GET && v->method != HTTP_HEAD)
            http_reply_error(req, 405, "method not allowed");
        else
            runtime_types(h, req);
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
