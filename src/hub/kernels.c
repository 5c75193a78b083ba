/* The kernel list, the local backend (one `labbook agent` process per kernel), the
 * agent socket the agents dial back to, and each kernel's lifecycle: starting,
 * running, restarting, dead, stopping. */
#include "hub/kernels.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/channels.h"
#include "hub/figures.h"
#include "hub/hub.h"
#include "hub/launcher.h"
#include "hub/nbdoc.h"
#include "hub/scheduler.h"
#include "hub/secrets.h"
#include "sandbox/gpu.h"
#include "sandbox/sandbox.h"

struct agent_conn {
    uv_pipe_t pipe;
    struct hub *hub;
    struct kernel *k;
    bool closing;
    /* the frame being read: its header, then its body, read straight into place */
    uint8_t hdr[STREAM_HEADER_LEN];
    size_t hdr_have;
    enum stream_type type;
    uint8_t *body;
    size_t body_len, body_have;
    struct blob *blob; /* for STREAM_MSG: the body is the message buffer clients share */
};

/* Before an agent has said who it is, it may send only small frames. */
#define HELLO_MAX_FRAME 65536

enum { WAIT_READY, WAIT_GONE };

struct kwait {
    struct kwait *next;
    int kind; /* WAIT_READY or WAIT_GONE */
    kernel_cb cb;
    void *ctx;
};

struct write_req {
    uv_write_t req;
    char *data;
};

struct kfile {
    struct kfile *next;
    int64_t id;
    kernel_file_cb cb;
    void *ctx;
};

void kernel_touch(struct kernel *k)
{
    iso8601_now(k->last_activity);
}

static const char *life_name(enum kernel_life l)
{
    static const char *n[] = {"starting", "running", "restarting", "dead", "stopping"};
    return n[l];
}

json_t *kernel_model(const struct kernel *k)
{
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:i}", "id", k->id, "name", k->spec_name,
                          "last_activity", k->last_activity, "execution_state", k->execution_state,
                          "connections", kernel_count_clients(k));
    if (k->reason)
        json_object_set_new(m, "reason", json_string(k->reason));
    if (k->queued)
        json_object_set_new(m, "queue_position", json_integer(kernel_queue_position(k)));
    return m;
}

struct kernel *kernel_find(struct hub *h, const struct user *u, const char *id)
{
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (!strcmp(k->id, id) && k->owner == u->id && k->life != KERNEL_STOPPING)
            return k;
    return NULL;
}

static void add_wait(struct kernel *k, int kind, kernel_cb cb, void *ctx)
{
    struct kwait *w = xcalloc(1, sizeof(*w));
    w->kind = kind;
    w->cb = cb;
    w->ctx = ctx;
    w->next = k->waiters;
    k->waiters = w;
}

/* Runs and removes the waiters of one kind. */
static void run_waiters(struct kernel *k, int kind, int err, const char *reason)
{
    struct kwait **pp = &k->waiters;
    struct kwait *todo = NULL;
    while (*pp) {
        struct kwait *w = *pp;
        if (w->kind == kind) {
            *pp = w->next;
            w->next = todo;
            todo = w;
        } else {
            pp = &w->next;
        }
    }
    while (todo) {
        struct kwait *w = todo;
        todo = w->next;
        if (w->cb)
            w->cb(w->ctx, k, err, reason);
        free(w);
    }
}

/* Whether c may come right before a path in a message ("open /x", "(/x", "'/x"). */
static bool path_may_follow(char c)
{
    return c == ' ' || c == '\t' || c == '(' || c == '"' || c == '\'' || c == '=' || c == '[' ||
           c == ',';
}

/* Whether the n bytes at p are the folder dir or lie in it. */
static bool path_in(const char *p, size_t n, const char *dir)
{
    size_t d = dir ? strlen(dir) : 0;
    return d && n >= d && !memcmp(p, dir, d) && (n == d || p[d] == '/');
}

/* How a client is told of the n-byte path p (caller frees): from the drive when it is
 * in the user's drive, by what it is when it is one of the server's folders or in one
 * ("python in the server's data folder"), whole when it has one part ("/usr"), and by
 * its last part otherwise (".../uid_map"). */
static char *path_for_client(const struct kernel *k, const char *drive, const char *runtime,
                             const char *p, size_t n)
{
    const struct hub *h = k->hub;
    while (n > 1 && p[n - 1] == '/')
        n--;
    size_t base = n;
    while (base > 0 && p[base - 1] != '/')
        base--;
    const char *role = NULL, *dir = NULL;
    if (path_in(p, n, drive))
        return xasprintf("your drive%.*s", (int)(n - strlen(drive)), p + strlen(drive));
    if (path_in(p, n, runtime)) {
        role = "the runtime's folder";
        dir = runtime;
    } else if (path_in(p, n, h->data_dir)) {
        role = "the server's data folder";
        dir = h->data_dir;
    } else if (h->config_path && path_in(p, n, h->config_path)) {
        role = "the server's configuration";
        dir = h->config_path;
    }
    if (role && n > strlen(dir))
        return xasprintf("%.*s in %s", (int)(n - base), p + base, role);
    if (role)
        return xstrdup(role);
    if (base <= 1)
        return xstrndup(p, n);
    return xasprintf(".../%.*s", (int)(n - base), p + base);
}

/* What a client is told of a reason from below (spawning, the agent, the sandbox): the
 * same words without the server's own paths, which tell where the hub keeps its data
 * and how runtimes are built (path_for_client). The server log keeps the reason
 * whole. Caller frees. */
static char *public_reason(const struct kernel *k, const char *why)
{
    char *drive = xasprintf("%s/%s", k->hub->drive_dir, k->owner_name);
    char *runtime = xasprintf("%s/%s", k->hub->runtimes_dir, k->id);
    struct buf out = {0};
    size_t i = 0, len = strlen(why);
    while (i < len) {
        if (why[i] != '/' || (i > 0 && !path_may_follow(why[i - 1]))) {
            buf_append(&out, why + i, 1);
            i++;
            continue;
        }
        size_t n = strcspn(why + i, " \t\n\"'),;]");
        while (n > 1 && (why[i + n - 1] == ':' || why[i + n - 1] == '.'))
            n--; /* "open /x: ..." and "... /x." */
        char *said = path_for_client(k, drive, runtime, why + i, n);
        buf_append(&out, said, strlen(said));
        free(said);
        i += n;
    }
    buf_append(&out, "", 1);
    free(drive);
    free(runtime);
    char *res = xstrdup(out.data);
    buf_free(&out);
    return res;
}

/* Sets the reason clients are shown (the public form of reason). */
static void set_reason(struct kernel *k, const char *reason)
{
    free(k->reason);
    k->reason = reason ? public_reason(k, reason) : NULL;
}

/* --- writing to the agent --- */

static void write_done(uv_write_t *req, int status)
{
    (void)status;
    struct write_req *w = (struct write_req *)req;
    free(w->data);
    free(w);
}

int kernel_send_to_agent(struct kernel *k, enum stream_type type, const void *data, size_t len)
{
    struct agent_conn *a = k->agent;
    if (!a || a->closing)
        return -ENOTCONN;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&a->pipe) >
        (size_t)k->hub->cfg.agent_max_frame)
        return -ENOBUFS;
    uint8_t hdr[STREAM_HEADER_LEN];
    stream_header(hdr, type, len);
    uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, sizeof(hdr)),
                        uv_buf_init((char *)data, (unsigned)len)};
    size_t total = sizeof(hdr) + len;
    size_t done = 0;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&a->pipe) == 0) {
        int r = uv_try_write((uv_stream_t *)&a->pipe, bufs, 2);
        if (r > 0)
            done = (size_t)r;
        else if (r < 0 && r != UV_EAGAIN)
            return r;
    }
    if (done == total)
        return 0;
    struct write_req *w = xmalloc(sizeof(*w));
    w->data = xmalloc(total - done);
    size_t off = 0;
    for (size_t i = 0, pos = 0; i < 2; i++) {
        size_t blen = bufs[i].len;
        if (pos + blen > done) {
            size_t skip = done > pos ? done - pos : 0;
            memcpy(w->data + off, bufs[i].base + skip, blen - skip);
            off += blen - skip;
        }
        pos += blen;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)off);
    int r = uv_write(&w->req, (uv_stream_t *)&a->pipe, &b, 1, write_done);
    if (r < 0) {
        free(w->data);
        free(w);
        return r;
    }
    return 0;
}

/* --- file requests (STREAM_FILE) --- */

int64_t kernel_file_request(struct kernel *k, const char *op, const char *path, const void *data,
                            size_t len, kernel_file_cb cb, void *ctx)
{
    if (!k->agent || k->agent->closing)
        return -ENOTCONN;
    int64_t id = ++k->file_next;
    json_t *o = json_pack("{s:I, s:s, s:s}", "req", (json_int_t)id, "op", op, "path", path);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n;
    uint8_t *payload = stream_file_pack(js, strlen(js), data, len, &n);
    free(js);
    int r = n > (size_t)k->hub->cfg.agent_max_frame
                ? -EMSGSIZE
                : kernel_send_to_agent(k, STREAM_FILE, payload, n);
    free(payload);
    if (r < 0)
        return r;
    struct kfile *f = xcalloc(1, sizeof(*f));
    f->id = id;
    f->cb = cb;
    f->ctx = ctx;
    f->next = k->files;
    k->files = f;
    return id;
}

static struct kfile *file_take(struct kernel *k, int64_t id)
{
    for (struct kfile **pp = &k->files; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct kfile *f = *pp;
            *pp = f->next;
            return f;
        }
    return NULL;
}

void kernel_file_cancel(struct kernel *k, int64_t id)
{
    free(file_take(k, id));
}

static void on_file_reply(struct kernel *k, const uint8_t *p, size_t len)
{
    const char *js;
    const uint8_t *data;
    size_t jlen, dlen;
    if (stream_file_split(p, len, &js, &jlen, &data, &dlen) < 0)
        return;
    json_t *o = json_loadb(js, jlen, 0, NULL);
    json_t *id = json_object_get(o, "req");
    struct kfile *f = json_is_integer(id) ? file_take(k, json_integer_value(id)) : NULL;
    if (f && json_is_integer(json_object_get(o, "status")))
        f->cb(f->ctx, 0, o, data, dlen);
    else if (f)
        f->cb(f->ctx, -EPROTO, NULL, NULL, 0);
    free(f);
    json_decref(o);
}

/* The agent has gone: every file request waiting for it fails. */
static void files_fail_all(struct kernel *k)
{
    while (k->files) {
        struct kfile *f = k->files;
        k->files = f->next;
        f->cb(f->ctx, -ENOTCONN, NULL, NULL, 0);
        free(f);
    }
}

/* --- freeing --- */

static void kernel_unalloc(struct kernel *k)
{
    files_fail_all(k);
    nbdoc_close(k->doc);
    free(k->spec_name);
    free(k->base_spec);
    free(k->cwd);
    free(k->session_path);
    free(k->reason);
    buf_free(&k->held);
    free(k);
}

static void start_granted(struct hub *h, struct sched_grant *grants, size_t n);

/* Writes what a restarted hub needs to take the runtime back. */
static void kernel_persist(struct kernel *k)
{
    json_t *gpus = json_array();
    for (unsigned i = 0; i < k->ngpus; i++)
        json_array_append_new(gpus, json_integer(k->gpus[i]));
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:i}", "owner",
                          (json_int_t)k->owner, "owner_name", k->owner_name, "spec_name",
                          k->spec_name, "base_spec", k->base_spec, "profile", k->profile, "secret",
                          k->secret, "cwd", k->cwd, "gpus", gpus, "created_ms",
                          (json_int_t)k->created_ms, "agent_pid", k->agent_pid);
    json_object_set_new(o, "id_slot", json_integer(k->id_slot));
    if (k->session_path)
        json_object_set_new(o, "session_path", json_string(k->session_path));
    if (k->pooled) /* nobody's: the next hub takes it into its pool */
        json_object_set_new(o, "pooled", json_true());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (store_state_put(k->hub->store, "runtime", k->id, text) < 0)
        log_error("kernel %s: cannot record it in the database", k->id);
    free(text);
}

static void kernel_free(struct kernel *k)
{
    struct hub *h = k->hub;
    for (struct kernel **pp = &h->kernels; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    if (k->detaching) { /* left running for the next hub */
        kernel_unalloc(k);
        hub_maybe_finish_stop(h);
        return;
    }
    store_state_delete(h->store, "runtime", k->id);
    /* Its folder (the overlay's writes, /content, logs) goes, off the loop. */
    if (!h->launcher || launcher_remove(h, k->id) < 0)
        figures_remove_tree(h, xasprintf("%s/%s", h->runtimes_dir, k->id));
    struct sched_grant *g = NULL;
    size_t n = 0;
    scheduler_release(h->sched, k->id, &g, &n);
    kernel_unalloc(k);
    if (!h->stopping)
        start_granted(h, g, n);
    else
        free(g);
    hub_maybe_finish_stop(h);
}

static void maybe_free(struct kernel *k);
static void doc_save_start(struct kernel *k);
static void doc_tick(struct kernel *k, uint64_t now);

static void on_timer_closed(uv_handle_t *hd)
{
    struct kernel *k = hd->data;
    k->timer_closed = true;
    maybe_free(k);
}

static void maybe_free(struct kernel *k)
{
    if (k->life != KERNEL_STOPPING || k->proc_running || !k->proc_closed || k->agent || k->saving)
        return;
    if (k->doc && nbdoc_dirty(k->doc) && !k->doc_final_save) {
        k->doc_final_save = true; /* what the kernel printed last goes into the notebook */
        doc_save_start(k);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&k->timer)) {
        uv_close((uv_handle_t *)&k->timer, on_timer_closed);
        return;
    }
    if (!k->timer_closed)
        return;
    run_waiters(k, WAIT_READY, -ECANCELED, "the kernel was shut down");
    run_waiters(k, WAIT_GONE, 0, NULL);
    channels_kernel_gone(k);
    kernel_free(k);
}

static void on_proc_closed(uv_handle_t *hd)
{
    struct kernel *k = hd->data;
    k->proc_closed = true;
    maybe_free(k);
}

static void agent_close(struct agent_conn *a);
static void flush_held(struct kernel *k, bool send);

/* Signals a kernel's agent: through the launcher (root started it), through its libuv
 * handle (ours), or by pid (adopted after a hub restart). */
static void agent_kill(struct kernel *k, int sig)
{
    struct hub *h = k->hub;
    if (h->launcher) {
        if (k->agent_pid > 0)
            launcher_signal(h, k->id, k->agent_pid, sig);
    } else if (k->proc_running) {
        uv_process_kill(&k->proc, sig);
    } else if (k->agent_pid > 0) {
        kill(k->agent_pid, sig);
    }
}

static void become_dead(struct kernel *k, const char *reason)
{
    char q[300];
    log_warn("kernel %s (%s): dead: %s", k->id, k->owner_name, log_quote(reason, q, sizeof(q)));
    k->life = KERNEL_DEAD;
    snprintf(k->execution_state, sizeof(k->execution_state), "dead");
    set_reason(k, reason);
    channels_status(k, "dead", k->reason);
    flush_held(k, false);
    run_waiters(k, WAIT_READY, -EIO, k->reason);
}

static void agent_gone(struct kernel *k, int64_t status, int sig)
{
    k->proc_running = false;
    if (k->life != KERNEL_STOPPING) {
        char reason[160];
        if (sig)
            snprintf(reason, sizeof(reason), "the runtime agent was killed by signal %d", sig);
        else
            snprintf(reason, sizeof(reason), "the runtime agent exited with status %lld",
                     (long long)status);
        become_dead(k, reason);
    } else {
        log_info("kernel %s (%s): shut down", k->id, k->owner_name);
    }
    if (k->agent)
        agent_close(k->agent);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    struct kernel *k = p->data;
    agent_gone(k, status, sig);
    uv_close((uv_handle_t *)p, on_proc_closed);
    maybe_free(k);
}

void kernels_agent_exited(struct hub *h, const char *id, int pid, int status)
{
    for (struct kernel *k = h->kernels; k; k = k->next) {
        if (strcmp(k->id, id) || !k->proc_running || (k->agent_pid > 0 && k->agent_pid != pid))
            continue;
        agent_gone(k, WIFEXITED(status) ? WEXITSTATUS(status) : 0,
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        maybe_free(k);
        return;
    }
}

/* --- the agent stream --- */

static void on_agent_closed(uv_handle_t *hd)
{
    struct agent_conn *a = hd->data;
    struct kernel *k = a->k;
    if (a->blob)
        channels_blob_unref(a->blob);
    else
        free(a->body);
    free(a);
    if (k) {
        k->agent = NULL;
        files_fail_all(k);
        maybe_free(k);
    }
}

static void agent_close(struct agent_conn *a)
{
    if (a->closing)
        return;
    a->closing = true;
    uv_close((uv_handle_t *)&a->pipe, on_agent_closed);
}

static void on_state(struct kernel *k, const uint8_t *p, size_t len)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    if (!state)
        goto out;
    kernel_touch(k);
    if (k->life == KERNEL_STOPPING)
        goto out;
    if (!strcmp(state, "running")) {
        bool restarted = k->life == KERNEL_RESTARTING;
        k->life = KERNEL_RUNNING;
        set_reason(k, NULL);
        const char *es = json_string_value(json_object_get(j, "execution_state"));
        snprintf(k->execution_state, sizeof(k->execution_state), "%s",
                 es && strlen(es) < sizeof(k->execution_state) ? es : "idle");
        if (k->pooled)
            log_info("pool: runtime %s ready", k->id);
        else
            log_info("kernel %s (%s): %s", k->id, k->owner_name,
                     restarted ? "restarted" : "running");
        flush_held(k, true);
        run_waiters(k, WAIT_READY, 0, NULL);
    } else if (!strcmp(state, "restarting")) {
        char q[300];
        /* A restart asked for through the API was announced to clients already: once
         * is enough (a second "restarting" reaching a client after the restart's answer
         * would make it cancel the requests it sends to the restarted kernel). */
        bool announced = k->life == KERNEL_RESTARTING;
        k->life = KERNEL_RESTARTING;
        snprintf(k->execution_state, sizeof(k->execution_state), "restarting");
        set_reason(k, reason);
        log_warn("kernel %s (%s): restarting%s%s", k->id, k->owner_name, reason ? ": " : "",
                 reason ? log_quote(reason, q, sizeof(q)) : "");
        if (!announced)
            channels_status(k, "restarting", k->reason);
    } else if (!strcmp(state, "dead")) {
        become_dead(k, reason ? reason : "the kernel died");
    } else if (!strcmp(state, "starting")) {
        snprintf(k->execution_state, sizeof(k->execution_state), "starting");
    } else if (!strcmp(state, "claimed") && k->claiming) {
        k->claiming = false;
        if (reason)
            become_dead(k, reason);
        else
            run_waiters(k, WAIT_READY, 0, NULL);
    }
out:
    json_decref(j);
}

/* After a restart of the hub, the agent names a request that was running (STREAM_RUN):
 * the notebook records it again, from its history when the agent kept all of it. */
static void on_run(struct kernel *k, const uint8_t *p, size_t len)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "msg_id"));
    const char *cell = json_string_value(json_object_get(j, "cell_id"));
    const char *code = json_string_value(json_object_get(j, "code"));
    struct nbdoc *doc = id ? kernel_doc(k) : NULL;
    if (!doc) {
        if (id)
            kernel_recorded(k, id); /* nothing to record it into */
    } else if (!nbdoc_tracks(doc, id)) {
        if (json_is_true(json_object_get(j, "whole"))) {
            if (nbdoc_request(doc, id, code, cell) == 0) {
                nbdoc_mark_adopted(doc, id);
                channels_run_adopted(k, id);
            }
        } else if (nbdoc_resume(doc, id, code, cell) == 0) {
            nbdoc_gap(doc, id,
                      "[labbook] The server restarted while this cell ran; some of its output "
                      "from before may be missing here.");
            channels_run_adopted(k, id);
        }
    }
    json_decref(j);
}

/* The agent lost messages while no hub was connected (STREAM_GAP): the notebook and the
 * clients are told. */
static void on_gap(struct kernel *k, const uint8_t *p, size_t len)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "msg_id"));
    json_int_t n = json_integer_value(json_object_get(j, "dropped"));
    char note[200];
    snprintf(note, sizeof note,
             "[labbook] %lld outputs were lost while the server was restarting (the runtime "
             "keeps at most keep_mb of them).",
             (long long)n);
    if (id && k->doc)
        nbdoc_gap(k->doc, id, note);
    else if (!id)
        channels_notice(k, "warning", note + 10);
    json_decref(j);
}

static int on_agent_frame(void *ctx, enum stream_type type, const uint8_t *p, size_t len)
{
    struct agent_conn *a = ctx;
    struct hub *h = a->hub;
    if (!a->k) {
        if (type != STREAM_HELLO)
            return -EPROTO;
        json_t *j = json_loadb((const char *)p, len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *secret = json_string_value(json_object_get(j, "secret"));
        int r = -EACCES;
        bool known = false;
        for (struct kernel *k = h->kernels; id && secret && k; k = k->next) {
            known |= !strcmp(k->id, id);
            if (strcmp(k->id, id) || k->agent || strlen(secret) != strlen(k->secret) ||
                sodium_memcmp(secret, k->secret, strlen(k->secret)))
                continue;
            a->k = k;
            k->agent = a;
            k->throttled = false;
            json_int_t pid = json_integer_value(json_object_get(j, "pid"));
            if (k->adopted) {
                log_info("kernel %s (%s): its agent is back", k->id, k->owner_name);
                if (pid > 0 && pid != k->agent_pid) {
                    k->agent_pid = (int)pid;
                    kernel_persist(k);
                }
            }
            r = 0;
            break;
        }
        json_decref(j);
        if (r < 0 && known) {
            log_warn("agent socket: refused a connection for runtime %s (a wrong secret, or "
                     "its agent is connected already)",
                     id);
        } else if (r < 0) {
            /* No runtime of this hub: whatever it runs is nobody's now. It is told to end
             * rather than left dialling for orphan_timeout_s. */
            log_warn("agent socket: refused a connection with an unknown runtime; telling it "
                     "to shut down");
            uint8_t hdr[STREAM_HEADER_LEN];
            stream_header(hdr, STREAM_SHUTDOWN, 0);
            uv_buf_t b = uv_buf_init((char *)hdr, sizeof hdr);
            uv_try_write((uv_stream_t *)&a->pipe, &b, 1);
        }
        return r;
    }
    struct kernel *k = a->k;
    switch (type) {
    case STREAM_MSG: {
        struct kmsg m;
        if (wsv1_parse(p, len, &m) < 0)
            return 0; /* the agent sent nonsense: drop it */
        kernel_touch(k);
        channels_deliver(k, p, len, &m);
        return 0;
    }
    case STREAM_STATE:
        on_state(k, p, len);
        return 0;
    case STREAM_FILE_REPLY:
        on_file_reply(k, p, len);
        return 0;
    case STREAM_RUN:
        on_run(k, p, len);
        return 0;
    case STREAM_HISTORY: {
        struct kmsg m;
        if (wsv1_parse(p, len, &m) == 0)
            channels_record(k, &m);
        return 0;
    }
    case STREAM_GAP:
        on_gap(k, p, len);
        return 0;
    case STREAM_SECRET:
        secrets_on_agent_request(k, p, len);
        return 0;
    default:
        return 0;
    }
}

static void agent_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct agent_conn *a = hd->data;
    static char slab[64 * 1024];
    if (a->body && a->body_have < a->body_len && a->body_len - a->body_have >= sizeof(slab)) {
        /* A big body: let the kernel copy it straight to where it goes. */
        b->base = (char *)a->body + a->body_have;
        b->len = a->body_len - a->body_have;
        return;
    }
    b->base = slab;
    b->len = sizeof(slab);
}

/* A whole frame has arrived in a->body. */
static int agent_frame_done(struct agent_conn *a)
{
    int r = 0;
    if (a->type == STREAM_MSG && a->k) {
        struct kmsg m;
        if (wsv1_parse(a->body, a->body_len, &m) == 0) { /* nonsense is dropped */
            kernel_touch(a->k);
            channels_deliver_blob(a->k, a->blob, &m);
        }
    } else {
        r = on_agent_frame(a, a->type, a->body, a->body_len);
    }
    if (a->blob)
        channels_blob_unref(a->blob);
    else
        free(a->body);
    a->blob = NULL;
    a->body = NULL;
    a->hdr_have = a->body_len = a->body_have = 0;
    return r;
}

static int agent_frame_start(struct agent_conn *a)
{
    uint32_t l = (uint32_t)a->hdr[0] | (uint32_t)a->hdr[1] << 8 | (uint32_t)a->hdr[2] << 16 |
                 (uint32_t)a->hdr[3] << 24;
    size_t max = a->k ? (size_t)a->hub->cfg.agent_max_frame : HELLO_MAX_FRAME;
    if (l == 0 || l - 1 > max)
        return -EMSGSIZE;
    a->type = (enum stream_type)a->hdr[4];
    a->body_len = l - 1;
    a->body_have = 0;
    if (a->type == STREAM_MSG && a->k) {
        a->blob = channels_blob_new(a->body_len, &a->body);
    } else {
        a->body = xmalloc(a->body_len + 1);
        a->body[a->body_len] = 0;
    }
    return a->body_len == 0 ? agent_frame_done(a) : 0;
}

static void agent_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct agent_conn *a = s->data;
    int r = 0;
    if (n < 0) {
        agent_close(a);
        return;
    }
    if (a->body && b->base == (char *)a->body + a->body_have) {
        a->body_have += (size_t)n;
        if (a->body_have == a->body_len)
            r = agent_frame_done(a);
        goto out;
    }
    const uint8_t *p = (const uint8_t *)b->base;
    size_t left = (size_t)n;
    while (left && r == 0 && !a->closing) {
        if (!a->body) {
            size_t take = STREAM_HEADER_LEN - a->hdr_have;
            if (take > left)
                take = left;
            memcpy(a->hdr + a->hdr_have, p, take);
            a->hdr_have += take;
            p += take;
            left -= take;
            if (a->hdr_have == STREAM_HEADER_LEN)
                r = agent_frame_start(a);
            continue;
        }
        size_t take = a->body_len - a->body_have;
        if (take > left)
            take = left;
        memcpy(a->body + a->body_have, p, take);
        a->body_have += take;
        p += take;
        left -= take;
        if (a->body_have == a->body_len)
            r = agent_frame_done(a);
    }
out:
    if (r < 0 && !a->closing) {
        if (a->k)
            log_warn("kernel %s: agent stream error: %s", a->k->id, strerror(-r));
        agent_close(a);
    }
}

void kernel_set_throttle(struct kernel *k, bool on)
{
    if (k->throttled == on)
        return;
    k->throttled = on;
    if (!k->agent || k->agent->closing)
        return;
    if (on)
        uv_read_stop((uv_stream_t *)&k->agent->pipe);
    else
        uv_read_start((uv_stream_t *)&k->agent->pipe, agent_alloc, agent_read);
}

/* Sends what clients sent while the kernel was starting, or drops it. */
static void flush_held(struct kernel *k, bool send)
{
    size_t off = 0;
    while (send && off + 8 <= k->held.len) {
        uint64_t n;
        memcpy(&n, k->held.data + off, 8);
        kernel_send_to_agent(k, STREAM_MSG, k->held.data + off + 8, (size_t)n);
        off += 8 + (size_t)n;
    }
    if (!send && k->held_count)
        log_warn("kernel %s: dropped %d client messages sent while it was starting", k->id,
                 k->held_count);
    buf_free(&k->held);
    k->held_count = 0;
}

static void on_agent_connect(uv_stream_t *server, int status)
{
    struct hub *h = server->data;
    if (status < 0)
        return;
    struct agent_conn *a = xcalloc(1, sizeof(*a));
    a->hub = h;
    uv_pipe_init(h->loop, &a->pipe, 0);
    a->pipe.data = a;
    if (uv_accept(server, (uv_stream_t *)&a->pipe) < 0) {
        agent_close(a);
        return;
    }
    uv_read_start((uv_stream_t *)&a->pipe, agent_alloc, agent_read);
}

int kernels_listen(struct hub *h, char **err)
{
    if (strlen(h->sock_path) >= 100) {
        *err = xasprintf("the data folder's path is too long for a Unix socket: %s", h->sock_path);
        return -ENAMETOOLONG;
    }
    unlink(h->sock_path);
    uv_pipe_init(h->loop, &h->agent_listener, 0);
    h->agent_listener.data = h;
    mode_t old = umask(077);
    int r = uv_pipe_bind(&h->agent_listener, h->sock_path);
    umask(old);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->agent_listener, 64, on_agent_connect);
    if (r < 0) {
        *err = xasprintf("cannot listen on %s: %s", h->sock_path, uv_strerror(r));
        return r;
    }
    return 0;
}

/* --- lifecycle --- */

static void on_start_timeout(uv_timer_t *t)
{
    struct kernel *k = t->data;
    if (k->adopted && k->life == KERNEL_STARTING && !k->agent) {
        become_dead(k, "the runtime did not come back after the server restarted");
    } else if (k->life == KERNEL_STARTING || k->life == KERNEL_RESTARTING) {
        char reason[128];
        snprintf(reason, sizeof(reason), "the kernel did not become ready within %d s",
                 k->hub->cfg.start_timeout_s + 10);
        become_dead(k, reason);
    } else if (k->life == KERNEL_STOPPING && k->proc_running) {
        log_warn("kernel %s: agent did not stop in time, killing it", k->id);
        agent_kill(k, SIGKILL);
    } else if (k->life == KERNEL_STOPPING && k->adopted && k->agent_pid > 0) {
        log_warn("kernel %s: agent did not stop in time, killing it", k->id);
        agent_kill(k, SIGKILL);
        if (k->agent)
            agent_close(k->agent);
    }
}

static json_t *agent_config(struct kernel *k, const struct kernelspec *ks, const char *cwd,
                            const char *session_path)
{
    struct hub *h = k->hub;
    json_t *spec = ks->spec;
    json_t *env = json_object();
    json_t *senv = json_object_get(spec, "env");
    if (json_is_object(senv))
        json_object_update(env, senv);
    if (session_path)
        json_object_set_new(env, "JPY_SESSION_NAME", json_string(session_path));
    const char *im = json_string_value(json_object_get(spec, "interrupt_mode"));
    return json_pack("{s:s, s:s, s:s, s:s, s:O, s:o, s:s, s:s, s:I, s:i, s:s, s:i, s:i}", "id",
                     k->id, "secret", k->secret, "hub_socket", h->sock_path, "runtime_dir", "",
                     "argv", json_object_get(spec, "argv"), "env", env, "cwd", cwd,
                     "interrupt_mode", im && !strcmp(im, "message") ? "message" : "signal",
                     "max_frame", (json_int_t)h->cfg.agent_max_frame, "start_timeout_s",
                     h->cfg.start_timeout_s, "kernel_name", ks->name, "orphan_timeout_s",
                     h->cfg.orphan_timeout_s, "keep_mb", h->cfg.keep_mb);
}

/* The kernelspec of that name as last scanned, or NULL. */
static const struct kernelspec *spec_named(struct hub *h, const char *name)
{
    for (size_t i = 0; i < h->nspecs; i++)
        if (!strcmp(h->specs[i].name, name))
            return &h->specs[i];
    return NULL;
}

/* spec_named, scanning the Jupyter paths again when it is not known (installed since). */
static const struct kernelspec *find_spec(struct hub *h, const char *name)
{
    const struct kernelspec *ks = spec_named(h, name);
    struct kernelspec *specs;
    size_t n;
    if (!ks && kernelspec_scan(&specs, &n) == 0) {
        kernelspec_list_free(h->specs, h->nspecs);
        h->specs = specs;
        h->nspecs = n;
        ks = spec_named(h, name);
    }
    return ks;
}

/* Resolves a kernelspec name to a kernelspec and a runtime profile: "python3" is the
 * default profile's, "python3-gpu" the "gpu" profile's variant of python3. */
static const struct kernelspec *resolve_spec(struct hub *h, const char *name,
                                             const struct profile **prof)
{
    const struct kernelspec *ks = find_spec(h, name);
    if (ks) {
        *prof = &h->cfg.profiles[0];
        return ks;
    }
    for (int i = 1; i < h->cfg.nprofiles; i++) {
        const struct profile *p = &h->cfg.profiles[i];
        size_t n = strlen(name), pl = strlen(p->name);
        if (n > pl + 1 && name[n - pl - 1] == '-' && !strcmp(name + n - pl, p->name)) {
            char *base = xstrndup(name, n - pl - 1);
            ks = find_spec(h, base);
            free(base);
            if (ks) {
                *prof = p;
                return ks;
            }
        }
    }
    return NULL;
}

struct spawn_ctx {
    struct hub *h;
    char id[40];
};

/* The launcher's answer to a start: the agent's pid, or why it could not. */
static void on_spawned(void *ctx, int result, const char *message)
{
    struct spawn_ctx *sc = ctx;
    struct kernel *k;
    for (k = sc->h->kernels; k && strcmp(k->id, sc->id); k = k->next)
        ;
    if (k && result > 0) {
        if (k->agent_pid <= 0)
            k->agent_pid = result;
        kernel_persist(k);
    } else if (k && k->proc_running) {
        k->proc_running = false;
        char *why = xasprintf("cannot start the runtime agent: %s",
                              message ? message : strerror(result < 0 ? -result : EIO));
        become_dead(k, why);
        free(why);
        maybe_free(k);
    }
    free(sc);
}

/* Puts dir first on env's variable var, before env's own value or else inherited (may
 * be NULL). */
static void prepend_path(json_t *env, const char *var, const char *dir, const char *inherited)
{
    const char *cur = json_string_value(json_object_get(env, var));
    if (!cur)
        cur = inherited;
    char *v = cur && *cur ? xasprintf("%s:%s", dir, cur) : xstrdup(dir);
    json_object_set_new(env, var, json_string(v));
    free(v);
}

/* What the google.colab package needs (docs/colab.md): itself on PYTHONPATH, its bin/
 * first on PATH (a `python` for Colab's `!python file.py`: runtimes have python3), and
 * where the user's drive is, as the kernel sees it. */
static void colab_env(struct kernel *k, json_t *env)
{
    struct hub *h = k->hub;
    const char *py = h->cfg.python_path;
    /* Where google.colab.userdata asks the agent for secrets (agent/userdata.h). */
    if (h->sandboxed) {
        json_object_set_new(env, "LABBOOK_USERDATA_SOCKET",
                            json_string(SANDBOX_RUN_DIR "/" USERDATA_SOCKET_NAME));
    } else {
        char *sock = xasprintf("%s/%s/" USERDATA_SOCKET_NAME, h->runtimes_dir, k->id);
        json_object_set_new(env, "LABBOOK_USERDATA_SOCKET", json_string(sock));
        free(sock);
    }
    if (h->sandboxed) {
        json_object_set_new(env, "LABBOOK_DRIVE", json_string("/content/drive/MyDrive"));
        if (py && *py) {
            prepend_path(env, "PYTHONPATH", SANDBOX_PYTHON_DIR, NULL);
            prepend_path(env, "PATH", SANDBOX_PYTHON_DIR "/bin", SANDBOX_PATH);
        }
    } else {
        char *drive = xasprintf("%s/%s", h->drive_dir, k->owner_name);
        json_object_set_new(env, "LABBOOK_DRIVE", json_string(drive));
        free(drive);
        if (py && *py) {
            prepend_path(env, "PYTHONPATH", py, getenv("PYTHONPATH"));
            char *bin = xasprintf("%s/bin", py);
            const char *path = getenv("PATH");
            prepend_path(env, "PATH", bin, path ? path : SANDBOX_PATH);
            free(bin);
        }
    }
}

/* Writes agent.json and starts the agent of a kernel whose resources are granted. */
static int spawn_agent(struct kernel *k, char **err)
{
    struct hub *h = k->hub;
    const struct profile *prof = config_profile(&h->cfg, k->profile);
    const struct kernelspec *ks = find_spec(h, k->base_spec);
    if (!ks || !prof) {
        *err = xasprintf("the kernelspec %s is no longer installed", k->base_spec);
        return -ENOENT;
    }
    char *dir = xasprintf("%s/%s", h->runtimes_dir, k->id);
    char *cfgpath = xasprintf("%s/agent.json", dir);
    json_t *cfg = agent_config(k, ks, k->cwd, k->session_path);
    json_object_set_new(cfg, "runtime_dir", json_string(dir));
    json_t *env = json_object_get(cfg, "env");
    char **genv = NULL;
    if (h->gpus && gpu_env(h->gpus, k->gpus, k->ngpus, &genv) == 0 && genv) {
        for (char **e = genv; *e; e++) {
            char *eq = strchr(*e, '=');
            if (eq) {
                char *key = xstrndup(*e, (size_t)(eq - *e));
                json_object_set_new(env, key, json_string(eq + 1));
                free(key);
            }
        }
        gpu_env_free(genv);
    }
    colab_env(k, env);
    if (h->sandboxed) {
        json_t *mask = json_pack("[s]", h->data_dir);
        if (h->config_path)
            json_array_append_new(mask, json_string(h->config_path));
        json_t *devices = json_array();
        struct gpu_dev_node *nodes = NULL;
        size_t nnodes = 0;
        if (k->ngpus && gpu_dev_nodes(h->gpus, k->gpus, k->ngpus, &nodes, &nnodes) == 0) {
            bool fake = !strcmp(h->gpus->ops->name, "fake");
            for (size_t i = 0; i < nnodes; i++) {
                if (access(nodes[i].path, F_OK) == 0)
                    json_array_append_new(devices, json_string(nodes[i].path));
                else if (!nodes[i].optional && !fake)
                    log_warn("kernel %s: GPU device node %s is missing on this host", k->id,
                             nodes[i].path);
            }
            gpu_dev_nodes_free(nodes, nnodes);
        }
        int weight = prof->cpu_shares * 100 / 1024;
        json_object_set_new(
            cfg, "sandbox",
            json_pack("{s:s, s:s, s:s, s:o, s:b, s:I, s:i, s:i, s:s, s:o, s:s, s:s}", "state_dir",
                      dir, "data_dir", h->data_dir, "drive_user", k->owner_name, "mask_paths", mask,
                      "network", prof->network, "memory_limit", (json_int_t)prof->memory,
                      "pids_limit", prof->pids, "cpu_weight",
                      weight < 1       ? 1
                      : weight > 10000 ? 10000
                                       : weight,
                      "cgroup", k->id, "devices", devices, "root_image", "/", "cwd", "/content"));
        json_t *sbx = json_object_get(cfg, "sandbox");
        if (k->pooled) {
            json_object_del(sbx, "drive_user");
            json_object_set_new(sbx, "drive_later", json_true());
        }
        if (prof->disk > 0)
            json_object_set_new(sbx, "disk_bytes", json_integer((json_int_t)prof->disk));
        if (h->cfg.drive_quota > 0) /* held for the kernel's writes too (docs/drive.md) */
            json_object_set_new(sbx, "drive_quota", json_integer((json_int_t)h->cfg.drive_quota));
        json_object_set_new(sbx, "id_base",
                            json_integer(KERNEL_ID_BASE + (json_int_t)k->id_slot * 65536));
        if (h->cfg.python_path && *h->cfg.python_path)
            json_object_set_new(sbx, "python_dir", json_string(h->cfg.python_path));
    }
    char *text = json_dumps(cfg, JSON_INDENT(1));
    json_decref(cfg);
    int r;
    if (h->launcher) { /* root's to do: the launcher checks the config and starts it */
        struct spawn_ctx *sc = xcalloc(1, sizeof(*sc));
        sc->h = h;
        snprintf(sc->id, sizeof(sc->id), "%s", k->id);
        r = launcher_spawn(h, k->id, text, on_spawned, sc);
        free(text);
        if (r < 0) {
            free(sc);
            *err = xasprintf("cannot ask the launcher to start the runtime: %s", strerror(-r));
        } else {
            k->proc_running = true;
            k->proc_closed = true; /* no handle of ours */
            kernel_persist(k);
            uv_timer_start(&k->timer, on_start_timeout,
                           (uint64_t)(h->cfg.start_timeout_s + 10) * 1000, 0);
            log_info("kernel %s (%s): starting %s (%s, %u GPUs) through the launcher", k->id,
                     k->owner_name, k->spec_name, k->profile, k->ngpus);
        }
        free(dir);
        free(cfgpath);
        return r;
    }
    r = mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
    if (!r)
        r = write_file_atomic(cfgpath, text, strlen(text), 0600);
    free(text);
    if (r < 0) {
        *err = xasprintf("cannot prepare the runtime folder %s: %s", dir, strerror(-r));
        goto out;
    }
    char *args[] = {h->self_exe, "agent", cfgpath, NULL};
    /* The agent outlives this hub (a restart): its own session, and its own log. */
    char *logpath = xasprintf("%s/agent.log", dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    free(logpath);
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = logfd >= 0 ? logfd : 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = logfd >= 0 ? logfd : 2}};
    uv_process_options_t opt = {.exit_cb = on_proc_exit,
                                .file = h->self_exe,
                                .args = args,
                                .stdio = stdio,
                                .stdio_count = 3,
                                .flags = UV_PROCESS_DETACHED};
    k->proc.data = k;
    r = uv_spawn(h->loop, &k->proc, &opt);
    if (logfd >= 0)
        close(logfd);
    if (r < 0) {
        *err = xasprintf("cannot start the runtime agent: %s", uv_strerror(r));
        k->proc_closed = false;
        uv_close((uv_handle_t *)&k->proc, on_proc_closed);
        goto out;
    }
    k->proc_running = true;
    k->proc_closed = false;
    k->agent_pid = k->proc.pid;
    kernel_persist(k);
    uv_timer_start(&k->timer, on_start_timeout, (uint64_t)(h->cfg.start_timeout_s + 10) * 1000, 0);
    log_info("kernel %s (%s): starting %s (%s, %u GPUs), agent pid %d", k->id, k->owner_name,
             k->spec_name, k->profile, k->ngpus, k->proc.pid);
out:
    if (r < 0) {
        unlink(cfgpath);
        rmdir(dir);
    }
    free(dir);
    free(cfgpath);
    return r;
}

/* Starts the kernels the scheduler has just let in. */
static void start_granted(struct hub *h, struct sched_grant *grants, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct kernel *k;
        for (k = h->kernels; k && strcmp(k->id, grants[i].request_id); k = k->next)
            ;
        if (!k || !k->queued)
            continue;
        k->queued = false;
        k->ngpus = grants[i].ngpus;
        memcpy(k->gpus, grants[i].gpus, sizeof(unsigned) * grants[i].ngpus);
        log_info("kernel %s (%s): its turn in the queue has come", k->id, k->owner_name);
        char *err = NULL;
        if (spawn_agent(k, &err) < 0) {
            become_dead(k, err);
            free(err);
        } else {
            channels_status(k, "starting", NULL);
        }
    }
    free(grants);
}

int kernel_queue_position(const struct kernel *k)
{
    return k->queued ? scheduler_position(k->hub->sched, k->id) : 0;
}

/* The lowest identity slot no live runtime holds, or -1. */
static int free_id_slot(struct hub *h)
{
    static uint64_t used[KERNEL_ID_SLOTS / 64];
    memset(used, 0, sizeof(used));
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (k->id_slot >= 0 && k->id_slot < KERNEL_ID_SLOTS)
            used[k->id_slot / 64] |= 1ULL << (k->id_slot % 64);
    for (int i = 0; i < KERNEL_ID_SLOTS / 64; i++)
        if (~used[i])
            return i * 64 + __builtin_ctzll(~used[i]);
    return -1;
}

/* A kernel record in state "starting", not yet listed nor granted anything. */
static struct kernel *kernel_alloc(struct hub *h, const char *spec_name, const char *base_spec,
                                   const char *profile, const char *cwd, const char *session_path,
                                   char **err)
{
    struct kernel *k = xcalloc(1, sizeof(*k));
    k->hub = h;
    uuid4_string(k->id);
    k->spec_name = xstrdup(spec_name);
    k->base_spec = xstrdup(base_spec);
    snprintf(k->profile, sizeof(k->profile), "%s", profile);
    k->cwd = xstrdup(cwd);
    k->session_path = session_path ? xstrdup(session_path) : NULL;
    unsigned char sec[32];
    randombytes_buf(sec, sizeof(sec));
    sodium_bin2hex(k->secret, sizeof(k->secret), sec, sizeof(sec));
    k->life = KERNEL_STARTING;
    snprintf(k->execution_state, sizeof(k->execution_state), "starting");
    kernel_touch(k);
    k->created_ms = k->idle_since_ms = now_ms();
    if ((k->id_slot = free_id_slot(h)) < 0) {
        *err =
            xasprintf("this server runs %d runtimes already, as many as it can", KERNEL_ID_SLOTS);
        kernel_unalloc(k);
        return NULL;
    }
    return k;
}

static void kernel_list(struct hub *h, struct kernel *k)
{
    uv_timer_init(h->loop, &k->timer);
    k->timer.data = k;
    k->next = h->kernels;
    h->kernels = k;
}

/* --- the pool of pre-started runtimes --- */

/* Whether a request for this kernelspec and type can be served from the pool. */
static bool pool_serves(struct hub *h, const struct kernelspec *ks, const struct profile *prof)
{
    /* Binding a drive into a running sandbox needs root: no pool rootless. */
    return h->sandboxed && (geteuid() == 0 || h->launcher) && h->cfg.pool > 0 &&
           prof == &h->cfg.profiles[0] && prof->gpus == 0 &&
           !strcmp(ks->name, h->cfg.default_kernel);
}

/* Starts pre-started runtimes until the pool is full; after a pool runtime failed, it
 * waits a while before trying again, so a broken kernelspec does not spin. */
static void pool_fill(struct hub *h)
{
    const struct profile *prof = &h->cfg.profiles[0];
    if (h->stopping)
        return;
    int have = 0;
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (k->pooled && k->life != KERNEL_STOPPING && k->life != KERNEL_DEAD &&
            ++have > h->cfg.pool) {
            kernel_shutdown(k, NULL, NULL); /* adopted from a hub with a bigger pool */
            have--;
        }
    if (h->cfg.pool <= 0 || now_ms() < h->pool_retry_ms)
        return;
    /* Once a second: no rescan of the kernelspec folders from here. */
    const struct kernelspec *ks = spec_named(h, h->cfg.default_kernel);
    if (!ks || !pool_serves(h, ks, prof))
        return;
    for (; have < h->cfg.pool; have++) {
        char *err = NULL;
        struct kernel *k = kernel_alloc(h, ks->name, ks->name, prof->name, "/content", NULL, &err);
        if (!k) {
            free(err);
            return;
        }
        k->pooled = true;
        snprintf(k->owner_name, sizeof(k->owner_name), "(pool)");
        kernel_list(h, k);
        k->ngpus = 0;
        if (spawn_agent(k, &err) < 0) {
            log_warn("pool: cannot start a runtime: %s", err);
            free(err);
            k->life = KERNEL_STOPPING;
            maybe_free(k);
            h->pool_retry_ms = now_ms() + 30000;
            return;
        }
    }
}

/* A ready runtime from the pool becomes u's: it is granted as any start is (the per-user
 * cap holds), then the agent binds u's drive and the answer comes once it has.
 * Returns 0 (claimed), 1 (none ready: start one the usual way), or a negative errno. */
static int pool_claim(struct hub *h, const struct user *u, const struct profile *prof,
                      const char *spec_name, const char *cwd, const char *session_path,
                      kernel_cb cb, void *ctx, struct kernel **out, char **err)
{
    struct kernel *k;
    for (k = h->kernels; k; k = k->next)
        if (k->pooled && k->life == KERNEL_RUNNING && k->agent && !k->agent->closing)
            break;
    if (!k)
        return 1;
    struct sched_ask ask = {.user_id = u->id,
                            .request_id = k->id,
                            .profile = prof->name,
                            .ngpus = 0,
                            .max_per_user = (unsigned)prof->max_per_user};
    unsigned none[1];
    int r = scheduler_request(h->sched, &ask, none, err);
    if (r < 0)
        return r;
    /* A name, not a path: the agent finds drive/<name> itself, beneath the data folder. */
    json_t *msg = json_pack("{s:s}", "user", u->name);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    r = kernel_send_to_agent(k, STREAM_CLAIM, text, strlen(text));
    free(text);
    if (r < 0) {
        struct sched_grant *g = NULL;
        size_t n = 0;
        scheduler_release(h->sched, k->id, &g, &n);
        free(g);
        return 1;
    }
    k->pooled = false;
    k->claiming = true;
    k->owner = u->id;
    snprintf(k->owner_name, sizeof(k->owner_name), "%s", u->name);
    free(k->spec_name);
    k->spec_name = xstrdup(spec_name);
    free(k->cwd);
    k->cwd = xstrdup(cwd);
    k->session_path = session_path ? xstrdup(session_path) : NULL;
    k->created_ms = k->idle_since_ms = now_ms(); /* its lifetime is the user's from now */
    kernel_touch(k);
    kernel_persist(k);
    log_info("kernel %s (%s): %s from the pool", k->id, k->owner_name, spec_name);
    add_wait(k, WAIT_READY, cb, ctx);
    *out = k;
    pool_fill(h);
    return 0;
}

int kernel_start(struct hub *h, const struct user *u, const char *spec_name, const char *cwd,
                 const char *session_path, kernel_cb cb, void *ctx, struct kernel **out, char **err)
{
    const struct profile *prof;
    const struct kernelspec *ks = resolve_spec(h, spec_name, &prof);
    if (!ks) {
        *err = xasprintf("No such kernel named %s", spec_name);
        return -ENOENT;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    int64_t host = pages > 0 && psize > 0 ? (int64_t)pages * psize : 0;
    if (host && prof->memory > host) {
        *err = xasprintf("the runtime type \"%s\" asks for %.1f GiB of memory; this server has "
                         "%.1f GiB",
                         prof->name, (double)prof->memory / (1 << 30), (double)host / (1 << 30));
        return -E2BIG;
    }
    if (pool_serves(h, ks, prof)) {
        int r = pool_claim(h, u, prof, spec_name, cwd, session_path, cb, ctx, out, err);
        if (r <= 0)
            return r;
    }
    struct kernel *k = kernel_alloc(h, spec_name, ks->name, prof->name, cwd, session_path, err);
    if (!k)
        return -EAGAIN;
    k->owner = u->id;
    snprintf(k->owner_name, sizeof(k->owner_name), "%s", u->name);
    struct sched_ask ask = {.user_id = u->id,
                            .request_id = k->id,
                            .profile = prof->name,
                            .ngpus = (unsigned)prof->gpus,
                            .max_per_user = (unsigned)prof->max_per_user};
    int r = scheduler_request(h->sched, &ask, k->gpus, err);
    if (r < 0) {
        kernel_unalloc(k);
        return r;
    }
    kernel_list(h, k);
    *out = k;
    if (r == SCHED_QUEUED) {
        k->queued = true;
        k->proc_closed = true; /* no agent yet */
        log_info("kernel %s (%s): queued for %d GPUs (%s), position %d", k->id, k->owner_name,
                 prof->gpus, prof->name, kernel_queue_position(k));
        return KERNEL_QUEUED;
    }
    k->ngpus = (unsigned)prof->gpus;
    r = spawn_agent(k, err);
    if (r < 0) {
        char q[300], *pub = public_reason(k, *err);
        log_warn("kernel %s (%s): cannot start: %s", k->id, k->owner_name,
                 log_quote(*err, q, sizeof(q)));
        free(*err);
        *err = pub;
        /* Unwind: the kernel never existed for anyone. */
        k->life = KERNEL_STOPPING;
        struct sched_grant *g = NULL;
        size_t n = 0;
        scheduler_release(h->sched, k->id, &g, &n);
        start_granted(h, g, n);
        maybe_free(k);
        *out = NULL;
        return r;
    }
    add_wait(k, WAIT_READY, cb, ctx);
    return 0;
}

/* A restart of a runtime whose agent is gone (killed, crashed, or never back after a hub
 * restart): a fresh runtime in its place, with the same id, owner, grant and drive; its
 * variables are gone, as after any restart. */
static void respawn(struct kernel *k, kernel_cb cb, void *ctx)
{
    char *err = NULL;
    log_info("kernel %s (%s): its agent is gone; starting a fresh runtime in its place", k->id,
             k->owner_name);
    k->adopted = false;
    k->claiming = false;
    k->life = KERNEL_RESTARTING;
    snprintf(k->execution_state, sizeof(k->execution_state), "restarting");
    set_reason(k, NULL);
    if (spawn_agent(k, &err) < 0) {
        become_dead(k, err);
        if (cb)
            cb(ctx, k, -EIO, k->reason);
        free(err);
        return;
    }
    channels_status(k, "restarting", NULL);
    add_wait(k, WAIT_READY, cb, ctx);
}

static void restart_as(struct kernel *k, enum stream_type type, kernel_cb cb, void *ctx)
{
    if (k->life == KERNEL_STOPPING) {
        if (cb)
            cb(ctx, k, -ECANCELED, "the kernel is shutting down");
        return;
    }
    if (k->life == KERNEL_DEAD && !k->agent && !k->proc_running && k->proc_closed && !k->queued) {
        respawn(k, cb, ctx);
        return;
    }
    if (kernel_send_to_agent(k, type, NULL, 0) < 0) {
        if (cb)
            cb(ctx, k, -ENOTCONN, "the runtime agent is not connected");
        return;
    }
    log_info("kernel %s (%s): %s requested", k->id, k->owner_name,
             type == STREAM_RESET ? "factory reset" : "restart");
    k->life = KERNEL_RESTARTING;
    snprintf(k->execution_state, sizeof(k->execution_state), "restarting");
    channels_status(k, "restarting", NULL);
    add_wait(k, WAIT_READY, cb, ctx);
    uv_timer_start(&k->timer, on_start_timeout, (uint64_t)(k->hub->cfg.start_timeout_s + 10) * 1000,
                   0);
}

void kernel_restart(struct kernel *k, kernel_cb cb, void *ctx)
{
    restart_as(k, STREAM_RESTART, cb, ctx);
}

void kernel_reset(struct kernel *k, kernel_cb cb, void *ctx)
{
    restart_as(k, STREAM_RESET, cb, ctx);
}

void kernel_interrupt(struct kernel *k)
{
    log_info("kernel %s (%s): interrupt", k->id, k->owner_name);
    kernel_send_to_agent(k, STREAM_INTERRUPT, NULL, 0);
}

void kernel_shutdown(struct kernel *k, kernel_cb cb, void *ctx)
{
    if (cb)
        add_wait(k, WAIT_GONE, cb, ctx);
    if (k->life == KERNEL_STOPPING)
        return;
    log_info("kernel %s (%s): shutting down (was %s)", k->id, k->owner_name, life_name(k->life));
    k->life = KERNEL_STOPPING;
    channels_kernel_gone(k);
    if (k->proc_running) {
        if (kernel_send_to_agent(k, STREAM_SHUTDOWN, NULL, 0) < 0)
            agent_kill(k, SIGTERM);
        uv_timer_start(&k->timer, on_start_timeout, 6000, 0);
    } else if (k->adopted && k->agent) {
        kernel_send_to_agent(k, STREAM_SHUTDOWN, NULL, 0);
        uv_timer_start(&k->timer, on_start_timeout, 6000, 0);
    } else if (k->adopted && k->agent_pid > 0 && !k->detaching) {
        agent_kill(k, SIGTERM); /* it never came back to us: stop it if it is there */
    }
    /* The timer stays open to kill a stuck agent; maybe_free closes it at the end. */
    maybe_free(k);
}

void kernels_stop_disowned(struct hub *h)
{
    for (struct kernel *k = h->kernels, *next; k; k = next) {
        next = k->next;
        if (k->pooled || k->owner <= 0 || k->life == KERNEL_STOPPING)
            continue;
        struct user u;
        int r = store_user_get_id(h->store, k->owner, &u);
        if (r == -EIO || (r == 0 && !u.disabled))
            continue; /* a busy database stops nothing */
        log_info("kernel %s (%s): its user was %s: shutting it down", k->id, k->owner_name,
                 r == 0 ? "disabled" : "deleted");
        kernel_shutdown(k, NULL, NULL);
    }
}

void kernels_shutdown_all(struct hub *h)
{
    for (struct kernel *k = h->kernels; k; k = k->next)
        if (k->life != KERNEL_STOPPING)
            kernel_shutdown(k, NULL, NULL);
}

void kernels_close(struct hub *h)
{
    if (!uv_is_closing((uv_handle_t *)&h->agent_listener))
        uv_close((uv_handle_t *)&h->agent_listener, NULL);
    unlink(h->sock_path);
}

/* "12 h", "1 h 30 min", "5 min", "4 s". */
static void duration_text(char *out, size_t n, uint64_t s)
{
    if (s >= 3600 && s % 3600 >= 60)
        snprintf(out, n, "%llu h %llu min", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else if (s >= 3600)
        snprintf(out, n, "%llu h", (unsigned long long)(s / 3600));
    else if (s >= 60)
        snprintf(out, n, "%llu min", (unsigned long long)(s / 60));
    else
        snprintf(out, n, "%llu s", (unsigned long long)s);
}

/* Busy: a cell runs, a client is connected, or one of its GPUs is working (a training
 * loop that prints nothing is not idle). */
static bool kernel_busy(struct kernel *k)
{
    if (!strcmp(k->execution_state, "busy") || kernel_count_clients(k) > 0)
        return true;
    for (unsigned i = 0; i < k->ngpus && k->hub->gpus; i++) {
        struct gpu_usage u;
        if (gpu_usage(k->hub->gpus, k->gpus[i], &u) == 0 && u.util_percent >= 5)
            return true;
    }
    return false;
}

void kernels_tick(struct hub *h)
{
    uint64_t now = now_ms();
    for (struct kernel *k = h->kernels, *next; k; k = next) {
        next = k->next;
        if (k->life == KERNEL_STOPPING || k->queued)
            continue;
        if (k->pooled) { /* nobody's: never idle, never old; a dead one is replaced */
            if (k->life == KERNEL_DEAD) {
                h->pool_retry_ms = now + 30000;
                kernel_shutdown(k, NULL, NULL);
            }
            continue;
        }
        doc_tick(k, now);
        const struct profile *p = config_profile(&h->cfg, k->profile);
        if (!p)
            continue;
        if (k->life != KERNEL_RUNNING || kernel_busy(k))
            k->idle_since_ms = now;
        uint64_t age = now - k->created_ms;
        if (p->max_lifetime_s > 0) {
            uint64_t max = (uint64_t)p->max_lifetime_s * 1000;
            uint64_t lead = max / 2 < 300000 ? max / 2 : 300000;
            /* Clients are warned first, at least a tick before the end. */
            if (age >= max && k->lifetime_warned) {
                log_info("kernel %s (%s): reached its maximum lifetime (%d s): shutting it down",
                         k->id, k->owner_name, p->max_lifetime_s);
                kernel_shutdown(k, NULL, NULL);
                continue;
            }
            if (age >= max - lead && !k->lifetime_warned) {
                k->lifetime_warned = true;
                char text[240], total[32], left[32];
                uint64_t rest = age < max ? (max - age) / 1000 : 0;
                duration_text(total, sizeof(total), (uint64_t)p->max_lifetime_s);
                duration_text(left, sizeof(left), rest < 1 ? 1 : rest);
                snprintf(text, sizeof(text),
                         "This runtime reaches its maximum lifetime (%s) in %s and will then be "
                         "shut down. Save your work.",
                         total, left);
                log_info("kernel %s (%s): warned its clients: %s of its lifetime left", k->id,
                         k->owner_name, left);
                channels_notice(k, "warning", text);
            }
        }
        if (p->idle_timeout_s > 0 && now - k->idle_since_ms >= (uint64_t)p->idle_timeout_s * 1000) {
            log_info("kernel %s (%s): idle for %d s: shutting it down to give its resources back",
                     k->id, k->owner_name, p->idle_timeout_s);
            kernel_shutdown(k, NULL, NULL);
        }
    }
    pool_fill(h);
}

/* --- the notebook document --- */

struct nbdoc *kernel_doc(struct kernel *k)
{
    if (k->doc || k->doc_tried || !k->session_path)
        return k->doc;
    k->doc_tried = true;
    char *drive = xasprintf("%s/%s", k->hub->drive_dir, k->owner_name);
    struct nbdoc_opts o = {.max_file = (size_t)k->hub->cfg.max_notebook};
    int r = nbdoc_open(drive, k->session_path, &o, &k->doc);
    if (r < 0) {
        char q[300];
        log_debug("kernel %s: not recording outputs into %s: %s", k->id,
                  log_quote(k->session_path, q, sizeof(q)), strerror(-r));
        k->doc = NULL;
    }
    free(drive);
    return k->doc;
}

void kernel_set_session_path(struct kernel *k, const char *path)
{
    free(k->session_path);
    k->session_path = xstrdup(path);
    if (k->doc && nbdoc_set_path(k->doc, path) < 0) {
        /* No longer a notebook we can record into (renamed to a non-.ipynb name). */
        if (!k->saving) {
            nbdoc_close(k->doc);
            k->doc = NULL;
        }
    }
    k->doc_tried = k->doc != NULL;
}

static void doc_save_work(uv_work_t *w)
{
    struct kernel *k = w->data;
    int r = nbdoc_save(k->doc);
    w->data = (void *)(intptr_t)r; /* read back in doc_save_done */
    (void)k;
}

static void send_recorded(void *ctx, const char *msg_id)
{
    kernel_recorded(ctx, msg_id);
}

void kernel_recorded(struct kernel *k, const char *msg_id)
{
    json_t *o = json_pack("{s:s}", "msg_id", msg_id);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    kernel_send_to_agent(k, STREAM_RECORDED, s, strlen(s));
    free(s);
}

static void doc_save_done(uv_work_t *w, int status)
{
    (void)status;
    struct kernel *k = container_of(w, struct kernel, save_work);
    int r = (int)(intptr_t)w->data;
    k->saving = false;
    k->last_save_ms = now_ms();
    if (r == 0)
        nbdoc_take_recorded(k->doc, send_recorded, k);
    if (r < 0) {
        char q[300];
        log_warn("kernel %s (%s): could not record outputs into %s: %s", k->id, k->owner_name,
                 log_quote(k->session_path ? k->session_path : "", q, sizeof(q)), strerror(-r));
    }
    maybe_free(k);
}

static void doc_save_start(struct kernel *k)
{
    k->saving = true;
    k->save_work.data = k;
    if (uv_queue_work(k->hub->loop, &k->save_work, doc_save_work, doc_save_done) < 0) {
        doc_save_work(&k->save_work);
        doc_save_done(&k->save_work, 0);
    }
}

/* Saves recorded outputs while no client is connected: a connected front end saves
 * the notebook itself, and a save of ours under it would make it ask about a file
 * changed on disk. */
static void doc_tick(struct kernel *k, uint64_t now)
{
    if (!k->doc || k->saving || !nbdoc_dirty(k->doc) || kernel_count_clients(k) > 0 ||
        now - k->last_save_ms < 2000)
        return;
    doc_save_start(k);
}

/* --- hub restarts --- */

void kernels_detach_all(struct hub *h)
{
    for (struct kernel *k = h->kernels, *next; k; k = next) {
        next = k->next;
        if (k->life == KERNEL_STOPPING)
            continue; /* being shut down: let that finish */
        /* A queued kernel has nothing running: it just ends. The others, pooled ones
         * included, wait for the next hub, which adopts them. */
        k->detaching = !k->queued;
        k->life = KERNEL_STOPPING;
        /* doc_final_save stays false: maybe_free saves what was recorded last. */
        channels_kernel_gone(k);
        run_waiters(k, WAIT_READY, -ECANCELED, "the server is restarting");
        if (k->proc_running) {
            k->proc_running = false; /* closing the handle leaves the process be */
            if (!h->launcher)
                uv_close((uv_handle_t *)&k->proc, on_proc_closed);
        }
        if (k->agent)
            agent_close(k->agent);
        maybe_free(k);
    }
}

static void adopt_one(void *ctx, const char *id, const char *text)
{
    struct hub *h = ctx;
    json_t *o = json_loads(text, 0, NULL);
    const char *owner_name = json_string_value(json_object_get(o, "owner_name"));
    const char *spec = json_string_value(json_object_get(o, "spec_name"));
    const char *base = json_string_value(json_object_get(o, "base_spec"));
    const char *profile = json_string_value(json_object_get(o, "profile"));
    const char *secret = json_string_value(json_object_get(o, "secret"));
    const char *cwd = json_string_value(json_object_get(o, "cwd"));
    if (!owner_name || !spec || !base || !profile || !secret || !cwd || strlen(id) >= 40 ||
        strlen(secret) >= 65) {
        log_warn("runtime %s: its record is unreadable; forgetting it", id);
        store_state_delete(h->store, "runtime", id);
        json_decref(o);
        return;
    }
    struct kernel *k = xcalloc(1, sizeof(*k));
    k->hub = h;
    snprintf(k->id, sizeof(k->id), "%s", id);
    k->spec_name = xstrdup(spec);
    k->base_spec = xstrdup(base);
    snprintf(k->profile, sizeof(k->profile), "%s", profile);
    k->cwd = xstrdup(cwd);
    const char *sp = json_string_value(json_object_get(o, "session_path"));
    k->session_path = sp ? xstrdup(sp) : NULL;
    k->owner = json_integer_value(json_object_get(o, "owner"));
    snprintf(k->owner_name, sizeof(k->owner_name), "%s", owner_name);
    snprintf(k->secret, sizeof(k->secret), "%s", secret);
    k->created_ms = (uint64_t)json_integer_value(json_object_get(o, "created_ms"));
    k->idle_since_ms = now_ms();
    k->agent_pid = (int)json_integer_value(json_object_get(o, "agent_pid"));
    k->id_slot = (int)json_integer_value(json_object_get(o, "id_slot"));
    json_t *g = json_object_get(o, "gpus");
    for (size_t i = 0; i < json_array_size(g) && i < 64; i++)
        k->gpus[k->ngpus++] = (unsigned)json_integer_value(json_array_get(g, i));
    k->pooled = json_is_true(json_object_get(o, "pooled"));
    json_decref(o);
    k->adopted = true;
    k->proc_closed = true; /* not our child */
    k->life = KERNEL_STARTING;
    snprintf(k->execution_state, sizeof(k->execution_state), "starting");
    kernel_touch(k);
    const struct profile *p = config_profile(&h->cfg, k->profile);
    struct sched_ask ask = {.user_id = k->owner,
                            .request_id = k->id,
                            .profile = k->profile,
                            .ngpus = k->ngpus,
                            .max_per_user = p ? (unsigned)p->max_per_user : 0};
    /* A pooled runtime holds no grant until it is claimed. */
    if (!k->pooled && scheduler_adopt(h->sched, &ask, k->gpus) < 0)
        log_warn("runtime %s: its GPUs could not be taken back", k->id);
    uv_timer_init(h->loop, &k->timer);
    k->timer.data = k;
    /* Its agent dials back within a second or two; one that does not is gone. */
    uv_timer_start(&k->timer, on_start_timeout, 30000, 0);
    k->next = h->kernels;
    h->kernels = k;
    log_info("kernel %s (%s): waiting for its agent after the restart", k->id, k->owner_name);
}

void kernels_adopt(struct hub *h)
{
    store_state_list(h->store, "runtime", adopt_one, h);
}
