/* The runtime agent: reads its config, dials the hub, starts the kernel and relays
 * kernel messages both ways (signing and verifying them; the key never leaves this
 * process), restarting the kernel when it dies. One zmq_poll loop, nothing blocks.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "agent/agentlog.h"
#include "agent/files.h"
#include "agent/kernel.h"
#include "agent/runlog.h"
#include "agent/userdata.h"
#include "common/fsat.h"
#include "common/log.h"
#include "common/util.h"
#include "hub/launcher.h"
#include "sandbox/disk.h"
#include "sandbox/sandbox.h"
#include "wire/stream.h"
#include "wire/wsframe.h"
#include "wire/zmsg.h"

#define HB_INTERVAL_MS 3000
#define PROBE_INTERVAL_MS 200
#define PROBE_AGAIN_MS 20
#define STOP_GRACE_MS 3000
#define RESTART_WINDOW_MS 60000
#define RESTART_MAX 5
#define OWN_IDS 16
#define RELAY_BATCH 64
#define HUB_READ_SIZE (256 * 1024)
#define DEFAULT_MAX_FRAME ((size_t)256 << 20)

/* ---- config ---- */

struct agent_config {
    char *id, *secret, *hub_socket, *runtime_dir, *cwd, *kernel_name;
    char **argv;
    size_t argc;
    char **env; /* "NAME=value" */
    size_t nenv;
    bool interrupt_message;
    size_t max_frame;
    int start_timeout_s;
    int orphan_timeout_s;       /* 0: the kernel goes when the hub does; else how long the agent
                                   waits for the hub to come back (a hub restart) */
    size_t keep_bytes;          /* the run log's budget (runlog.h); 0: its default */
    struct agentlog_limits log; /* "log_max_bytes", "log_kernel_bytes_per_s": 0 = defaults */
    /* "sandbox": present when sandboxed; its strings are owned here. */
    bool sandboxed;
    struct sandbox_spec sbx;
    char **sbx_masks, **sbx_devices;
    char *data_dir; /* "sandbox.data_dir": where drive/<user> is looked up */
    /* The user's drive, DATA/drive/<user> opened O_PATH by the agent itself (no link
     * followed), or -1; sbx.drive_dir is then "/proc/self/fd/N", that very folder. */
    int drive_fd;
};

static void str_list_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void config_free(struct agent_config *c)
{
    free(c->id);
    free(c->secret);
    free(c->hub_socket);
    free(c->runtime_dir);
    free(c->cwd);
    free(c->kernel_name);
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    for (size_t i = 0; i < c->nenv; i++)
        free(c->env[i]);
    free(c->env);
    free((char *)c->sbx.state_dir);
    free((char *)c->sbx.root_image);
    free((char *)c->sbx.drive_dir);
    free((char *)c->sbx.cgroup_name);
    free((char *)c->sbx.cwd);
    free((char *)c->sbx.python_dir);
    str_list_free(c->sbx_masks, c->sbx.nmask);
    str_list_free(c->sbx_devices, c->sbx.ndevices);
    free(c->data_dir);
    if (c->drive_fd >= 0)
        close(c->drive_fd);
    memset(c, 0, sizeof(*c));
    c->drive_fd = -1;
}

static int get_str(json_t *o, const char *key, bool required, char **out, char **err)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required)
        return 0;
    if (!json_is_string(v)) {
        *err = xasprintf("\"%s\" must be a string", key);
        return -EINVAL;
    }
    *out = xstrdup(json_string_value(v));
    return 0;
}

/* Reads an optional array of absolute paths. */
static int get_paths(json_t *o, const char *key, char ***out, size_t *n, char **err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > 256) {
        *err = xasprintf("\"sandbox.%s\" must be an array of absolute paths", key);
        return -EINVAL;
    }
    *out = xcalloc(json_array_size(v) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *a = json_array_get(v, i);
        if (!json_is_string(a) || json_string_value(a)[0] != '/') {
            *err = xasprintf("\"sandbox.%s\" must be an array of absolute paths", key);
            return -EINVAL;
        }
        (*out)[(*n)++] = xstrdup(json_string_value(a));
    }
    return 0;
}

static int get_uint(json_t *o, const char *key, uint64_t max, uint64_t *out, char **err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        *err = xasprintf("\"sandbox.%s\" must be an integer from 0 to %llu", key,
                         (unsigned long long)max);
        return -EINVAL;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Opens DATA/drive/<user> itself (launcher_open_drive: a valid user name, no link
 * followed beneath the data folder) and makes it the sandbox's drive, by fd as root. */
static int use_drive(struct agent_config *c, const char *user, char **err)
{
    int fd = launcher_open_drive(c->data_dir, user);
    if (fd < 0) {
        char q[80];
        *err = xasprintf("no drive for user %s: %s", log_quote(user, q, sizeof(q)),
                         fd == -EINVAL ? "not a user name" : strerror(-fd));
        return fd;
    }
    if (c->drive_fd >= 0)
        close(c->drive_fd);
    c->drive_fd = fd;
    free((char *)c->sbx.drive_dir);
    /* As root, that very folder (the sandbox clones it in this mount namespace). An
     * unprivileged agent can do nothing the hub's user cannot: its path serves, and is
     * what a bind mount in a new user namespace needs. */
    c->sbx.drive_dir = geteuid() == 0 ? xasprintf("/proc/self/fd/%d", fd)
                                      : xasprintf("%s/drive/%s", c->data_dir, user);
    return 0;
}

/* The "sandbox" object (docs/sandbox.md). */
static int sandbox_config_load(json_t *o, struct agent_config *c, char **err)
{
    struct sandbox_spec *s = &c->sbx;
    char *state = NULL, *root = NULL, *user = NULL, *cg = NULL, *cwd = NULL, *py = NULL;
    uint64_t mem = 0, pids = 0, weight = 0, base = 0, disk = 0, dquota = 0;
    c->sandboxed = true;
    int r;
    if (json_object_get(o, "drive_dir")) {
        *err = xstrdup("\"sandbox.drive_dir\" is gone: the drive is named by \"drive_user\"");
        return -EINVAL;
    }
    if ((r = get_str(o, "state_dir", true, &state, err)) < 0 ||
        (r = get_str(o, "root_image", false, &root, err)) < 0 ||
        (r = get_str(o, "drive_user", false, &user, err)) < 0 ||
        (r = get_str(o, "data_dir", false, &c->data_dir, err)) < 0 ||
        (r = get_str(o, "cgroup", false, &cg, err)) < 0 ||
        (r = get_str(o, "cwd", false, &cwd, err)) < 0 ||
        (r = get_str(o, "python_dir", false, &py, err)) < 0)
        goto out;
    s->state_dir = state, s->root_image = root, s->cgroup_name = cg;
    s->cwd = cwd, s->python_dir = py;
    state = root = cg = cwd = py = NULL; /* owned by the config now */
    if ((user || json_is_true(json_object_get(o, "drive_later"))) &&
        (!c->data_dir || c->data_dir[0] != '/')) {
        *err = xstrdup("\"sandbox.data_dir\" must be an absolute path");
        r = -EINVAL;
        goto out;
    }
    if (user && (r = use_drive(c, user, err)) < 0)
        goto out;
    if (s->python_dir && s->python_dir[0] != '/') {
        *err = xstrdup("\"sandbox.python_dir\" must be an absolute path");
        r = -EINVAL;
        goto out;
    }
    if (s->state_dir[0] != '/' || strlen(s->state_dir) >= PATH_MAX - 64) {
        *err = xstrdup("\"sandbox.state_dir\" must be an absolute path");
        r = -EINVAL;
        goto out;
    }
    if ((r = get_paths(o, "mask_paths", &c->sbx_masks, &s->nmask, err)) < 0 ||
        (r = get_paths(o, "devices", &c->sbx_devices, &s->ndevices, err)) < 0 ||
        (r = get_uint(o, "memory_limit", INT64_MAX, &mem, err)) < 0 ||
        (r = get_uint(o, "pids_limit", INT32_MAX, &pids, err)) < 0 ||
        (r = get_uint(o, "cpu_weight", 10000, &weight, err)) < 0 ||
        (r = get_uint(o, "id_base", UINT32_MAX - 65536, &base, err)) < 0 ||
        (r = get_uint(o, "disk_bytes", INT64_MAX, &disk, err)) < 0 ||
        (r = get_uint(o, "drive_quota", INT64_MAX, &dquota, err)) < 0)
        goto out;
    s->mask_paths = (const char *const *)c->sbx_masks;
    s->devices = (const char *const *)c->sbx_devices;
    s->memory_limit = mem;
    s->pids_limit = (int64_t)pids;
    s->cpu_weight = (uint32_t)weight;
    s->id_base = (uint32_t)base;
    s->disk_bytes = disk;
    s->drive_quota = dquota;
    json_t *net = json_object_get(o, "network");
    if (net && !json_is_boolean(net)) {
        *err = xstrdup("\"sandbox.network\" must be true or false");
        r = -EINVAL;
        goto out;
    }
    s->network = json_is_true(net);
    s->drive_later = json_is_true(json_object_get(o, "drive_later")) && !s->drive_dir;
out:
    free(state);
    free(root);
    free(user);
    free(cg);
    free(cwd);
    free(py);
    return r;
}

/* Reads the config file into c; on failure *err (caller frees) says why. */
static int config_load(const char *path, struct agent_config *c, char **err)
{
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int r = -EINVAL;
    if (!o) {
        *err = xasprintf("%s: %s (line %d)", path, je.text, je.line);
        return -EINVAL;
    }
    if (!json_is_object(o)) {
        *err = xasprintf("%s: not a JSON object", path);
        goto out;
    }
    if (get_str(o, "id", true, &c->id, err) || get_str(o, "secret", true, &c->secret, err) ||
        get_str(o, "hub_socket", true, &c->hub_socket, err) ||
        get_str(o, "runtime_dir", true, &c->runtime_dir, err) ||
        get_str(o, "cwd", false, &c->cwd, err) ||
        get_str(o, "kernel_name", false, &c->kernel_name, err))
        goto out;
    json_t *argv = json_object_get(o, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0) {
        *err = xstrdup("\"argv\" must be a non-empty array of strings");
        goto out;
    }
    c->argv = xcalloc(json_array_size(argv), sizeof(char *));
    for (size_t i = 0; i < json_array_size(argv); i++) {
        json_t *a = json_array_get(argv, i);
        if (!json_is_string(a)) {
            *err = xstrdup("\"argv\" must be a non-empty array of strings");
            goto out;
        }
        c->argv[c->argc++] = xstrdup(json_string_value(a));
    }
    json_t *env = json_object_get(o, "env");
    if (env && !json_is_object(env)) {
        *err = xstrdup("\"env\" must be an object of strings");
        goto out;
    }
    c->env = xcalloc(json_object_size(env) + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (!json_is_string(v) || !*k || strchr(k, '=')) {
            *err = xstrdup("\"env\" must be an object of strings");
            goto out;
        }
        c->env[c->nenv++] = xasprintf("%s=%s", k, json_string_value(v));
    }
    json_t *im = json_object_get(o, "interrupt_mode");
    if (im && !(json_is_string(im) && (!strcmp(json_string_value(im), "signal") ||
                                       !strcmp(json_string_value(im), "message")))) {
        *err = xstrdup("\"interrupt_mode\" must be \"signal\" or \"message\"");
        goto out;
    }
    c->interrupt_message = im && !strcmp(json_string_value(im), "message");
    json_t *mf = json_object_get(o, "max_frame");
    c->max_frame = DEFAULT_MAX_FRAME;
    if (mf) {
        if (!json_is_integer(mf) || json_integer_value(mf) < 4096 ||
            json_integer_value(mf) > (json_int_t)UINT32_MAX - 1) {
            *err = xstrdup("\"max_frame\" must be an integer from 4096 to 4294967294");
            goto out;
        }
        c->max_frame = (size_t)json_integer_value(mf);
    }
    json_t *st = json_object_get(o, "start_timeout_s");
    c->start_timeout_s = 60;
    if (st) {
        if (!json_is_number(st) || json_number_value(st) < 1 || json_number_value(st) > 3600) {
            *err = xstrdup("\"start_timeout_s\" must be a number from 1 to 3600");
            goto out;
        }
        c->start_timeout_s = (int)json_number_value(st);
    }
    json_t *ot = json_object_get(o, "orphan_timeout_s");
    if (ot) {
        if (!json_is_integer(ot) || json_integer_value(ot) < 0 ||
            json_integer_value(ot) > 86400 * 30) {
            *err = xstrdup("\"orphan_timeout_s\" must be an integer from 0 to 2592000");
            goto out;
        }
        c->orphan_timeout_s = (int)json_integer_value(ot);
    }
    json_t *km = json_object_get(o, "keep_mb");
    if (km) {
        if (!json_is_integer(km) || json_integer_value(km) < 1 || json_integer_value(km) > 4096) {
            *err = xstrdup("\"keep_mb\" must be an integer from 1 to 4096");
            goto out;
        }
        c->keep_bytes = (size_t)json_integer_value(km) << 20;
    }
    json_t *lm = json_object_get(o, "log_max_bytes");
    json_t *lk = json_object_get(o, "log_kernel_bytes_per_s");
    if ((lm && (!json_is_integer(lm) || json_integer_value(lm) < 4096)) ||
        (lk && (!json_is_integer(lk) || json_integer_value(lk) < 1))) {
        *err = xstrdup("\"log_max_bytes\" (4096 or more) and \"log_kernel_bytes_per_s\" must "
                       "be positive integers");
        goto out;
    }
    c->log.max_bytes = lm ? (uint64_t)json_integer_value(lm) : 0;
    c->log.kernel_bytes_per_s = lk ? (uint64_t)json_integer_value(lk) : 0;
    json_t *sb = json_object_get(o, "sandbox");
    if (sb && !json_is_object(sb)) {
        *err = xstrdup("\"sandbox\" must be an object");
        goto out;
    }
    if (sb && sandbox_config_load(sb, c, err) < 0)
        goto out;
    if (strlen(c->hub_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        *err = xstrdup("\"hub_socket\" is too long for a Unix socket path");
        goto out;
    }
    r = 0;
out:
    json_decref(o);
    return r;
}

/* ---- agent state ---- */

enum chan { CH_SHELL, CH_CONTROL, CH_STDIN, CH_IOPUB, CH_HB, CH_COUNT };

static const char *const chan_name[CH_COUNT] = {"shell", "control", "stdin", "iopub", "hb"};
static const int chan_type[CH_COUNT] = {ZMQ_DEALER, ZMQ_DEALER, ZMQ_DEALER, ZMQ_SUB, ZMQ_REQ};
static const int chan_port[CH_COUNT] = {KPORT_SHELL, KPORT_CONTROL, KPORT_STDIN, KPORT_IOPUB,
                                        KPORT_HB};

enum kstate { K_NONE, K_STARTING, K_RUNNING, K_STOPPING };
enum after_stop { AFTER_DEAD, AFTER_RESTART, AFTER_RESET, AFTER_EXIT };

/* One frame on its way to the hub. Kernel messages are written straight from the
 * ZeroMQ frames they arrived in (in), agent frames from owned. */
struct out_item {
    struct out_item *next;
    struct zmsg_in *in;
    char *owned;
    size_t niov, cur;
    struct iovec iov[KMSG_MAX_PARTS + 2];
    uint8_t head[STREAM_HEADER_LEN + 8 * (KMSG_MAX_PARTS + 3)];
};

struct agent {
    struct agent_config cfg;
    int hub_fd;
    int sig_fd;
    int kout_fd;    /* read end of the pipe that is the kernel's stdout and stderr (and ours) */
    int old_stdout; /* fd 1 as it was, put back at the end */
    struct stream_decoder dec;
    uint8_t *rbuf;
    struct out_item *outq, **outq_tail;

    void *zctx;
    void *sock[CH_COUNT];
    struct zmsg_key key;
    char keyhex[65];
    char session[33];
    char *conn_path;
    struct zmsg_in *rx; /* receive slot, reused until a message is queued */

    pid_t pid;               /* kernel pid and process group (sandboxed: its init), 0 when none */
    struct sandbox_proc sbx; /* sandboxed: the running sandbox */
    char *ipc_prefix;        /* sandboxed: host path prefix of the ipc:// sockets */
    enum kstate kstate;
    enum after_stop after;
    bool got_info, iopub_seen;
    uint64_t start_deadline, next_probe, stop_deadline, next_hb;
    bool hb_waiting;
    int hb_misses;
    uint64_t restarts[RESTART_MAX];
    size_t nrestarts;

    /* The agent's own requests ("msg_id" quoted), whose replies never reach the hub. */
    char own[OWN_IDS][64];
    size_t own_len[OWN_IDS];
    unsigned own_next, counter;

    bool done;

    /* The hub went away (restarting): when, and when to dial it again. */
    uint64_t hub_lost_at, next_dial;
    /* What the hub must hear again after a reconnect: the kernel's last state, and its
     * last execution_state from iopub (so a busy kernel is not taken for idle). */
    char last_state[16];
    char *last_reason;
    char exec_state[16];
    /* Runs in flight and what no hub has seen yet, for the next hub (runlog.h). */
    struct runlog *runlog;
    /* google.colab.userdata's socket (userdata.h), or NULL. */
    struct userdata *ud;
};

/* ---- hub output ---- */

static void out_free(struct out_item *it)
{
    if (!it)
        return;
    if (it->in) {
        zmsg_in_close(it->in);
        free(it->in);
    }
    free(it->owned);
    free(it);
}

static void outq_clear(struct agent *a)
{
    while (a->outq) {
        struct out_item *it = a->outq;
        a->outq = it->next;
        out_free(it);
    }
    a->outq_tail = &a->outq;
}

static void hub_close(struct agent *a)
{
    if (a->hub_fd >= 0)
        close(a->hub_fd);
    a->hub_fd = -1;
    outq_clear(a);
}

/* Writes as much of the queue as the socket takes. Returns 0 or a negative errno
 * (the hub is gone). */
static int hub_flush(struct agent *a)
{
    while (a->outq) {
        struct out_item *it = a->outq;
        while (it->cur < it->niov && it->iov[it->cur].iov_len == 0)
            it->cur++;
        if (it->cur < it->niov) {
            size_t cnt = it->niov - it->cur;
            struct msghdr mh = {.msg_iov = it->iov + it->cur, .msg_iovlen = cnt};
            ssize_t n = sendmsg(a->hub_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return 0;
                return -errno;
            }
            size_t left = (size_t)n;
            while (left && it->cur < it->niov) {
                struct iovec *v = &it->iov[it->cur];
                if (left >= v->iov_len) {
                    left -= v->iov_len;
                    it->cur++;
                } else {
                    v->iov_base = (char *)v->iov_base + left;
                    v->iov_len -= left;
                    left = 0;
                }
            }
            continue;
        }
        a->outq = it->next;
        if (!a->outq)
            a->outq_tail = &a->outq;
        out_free(it);
    }
    return 0;
}

static void hub_push(struct agent *a, struct out_item *it)
{
    if (a->hub_fd < 0) {
        out_free(it);
        return;
    }
    it->next = NULL;
    *a->outq_tail = it;
    a->outq_tail = &it->next;
    int r = hub_flush(a);
    if (r < 0) {
        log_warn("agent: writing to the hub: %s", strerror(-r));
        hub_close(a);
    }
}

static void hub_send_json(struct agent *a, enum stream_type type, json_t *o /* stolen */)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(s);
    struct out_item *it = xcalloc(1, sizeof(*it));
    it->owned = s;
    stream_header(it->head, type, n);
    it->iov[0] = (struct iovec){it->head, STREAM_HEADER_LEN};
    it->iov[1] = (struct iovec){s, n};
    it->niov = 2;
    hub_push(a, it);
}

/* userdata.h's way to the hub: a STREAM_SECRET request. */
static int send_secret_request(void *ctx, const char *json, size_t len)
{
    struct agent *a = ctx;
    if (a->hub_fd < 0)
        return -ENOTCONN;
    hub_send_json(a, STREAM_SECRET, json_loadb(json, len, 0, NULL));
    return a->hub_fd < 0 ? -ENOTCONN : 0;
}

static void send_state(struct agent *a, const char *state, const char *reason)
{
    json_t *o = json_pack("{s:s}", "state", state);
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    if (a->pid > 0 && !strcmp(state, "running"))
        json_object_set_new(o, "pid", json_integer(a->pid));
    log_info("agent: kernel %s%s%s", state, reason ? ": " : "", reason ? reason : "");
    snprintf(a->last_state, sizeof(a->last_state), "%s", state);
    free(a->last_reason);
    a->last_reason = reason ? xstrdup(reason) : NULL;
    hub_send_json(a, STREAM_STATE, o);
}

/* Hands a received kernel message (its frames) to the hub without copying it; in is
 * owned by the output queue afterwards. */
static void hub_send_kmsg(struct agent *a, struct zmsg_in *in, enum chan ch)
{
    struct kmsg *m = &in->m;
    m->channel = chan_name[ch];
    m->channel_len = strlen(m->channel);
    size_t pre = zmsg_v1_prefix_size(m);
    size_t total = pre + m->channel_len;
    for (size_t i = 0; i < m->nparts; i++)
        total += m->part_len[i];
    if (total > a->cfg.max_frame) {
        log_warn("agent: dropped a %zu-byte %s message from the kernel (max_frame is %zu)", total,
                 chan_name[ch], a->cfg.max_frame);
        zmsg_in_close(in);
        free(in);
        return;
    }
    struct out_item *it = xcalloc(1, sizeof(*it));
    it->in = in;
    stream_header(it->head, STREAM_MSG, total);
    zmsg_v1_prefix(m, it->head + STREAM_HEADER_LEN);
    it->iov[0] = (struct iovec){it->head, STREAM_HEADER_LEN + pre};
    it->iov[1] = (struct iovec){(void *)m->channel, m->channel_len};
    for (size_t i = 0; i < m->nparts; i++)
        it->iov[2 + i] = (struct iovec){(void *)m->part[i], m->part_len[i]};
    it->niov = 2 + m->nparts;
    /* No hub (it is restarting): the next one gets it. */
    if (a->hub_fd < 0) {
        if (!runlog_spool(a->runlog, m, it->iov, it->niov))
            log_debug("agent: no hub and the spool is full: dropped a %s message", chan_name[ch]);
        out_free(it);
        return;
    }
    runlog_delivered(a->runlog, m, it->iov, it->niov);
    hub_push(a, it);
}

/* ---- kernel sockets and the agent's own requests ---- */

static void close_sockets(struct agent *a)
{
    for (int c = 0; c < CH_COUNT; c++) {
        if (a->sock[c])
            zmq_close(a->sock[c]);
        a->sock[c] = NULL;
    }
}

static int open_sockets(struct agent *a, const int ports[KPORT_COUNT])
{
    int zero = 0, one = 1;
    int64_t nolimit = -1;
    for (int c = 0; c < CH_COUNT; c++) {
        void *s = zmq_socket(a->zctx, chan_type[c]);
        if (!s)
            return -zmq_errno();
        a->sock[c] = s;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &nolimit, sizeof(nolimit));
        /* The kernel binds a moment after it starts: retry the connection often. */
        int ivl = 10;
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
        if (c == CH_SHELL || c == CH_CONTROL || c == CH_STDIN)
            /* One identity on shell and stdin, so input_request finds its way back. */
            zmq_setsockopt(s, ZMQ_ROUTING_ID, a->session, strlen(a->session));
        if (c == CH_IOPUB)
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
        if (c == CH_HB) {
            zmq_setsockopt(s, ZMQ_REQ_RELAXED, &one, sizeof(one));
            zmq_setsockopt(s, ZMQ_REQ_CORRELATE, &one, sizeof(one));
        }
        char ep[160];
        if (a->ipc_prefix)
            snprintf(ep, sizeof(ep), "ipc://%s-%d", a->ipc_prefix, ports[chan_port[c]]);
        else
            snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", ports[chan_port[c]]);
        if (zmq_connect(s, ep) < 0)
            return -zmq_errno();
    }
    return 0;
}

/* Signs and sends a request of the agent's own on ch; its replies are swallowed. */
static void send_own(struct agent *a, enum chan ch, const char *msg_type, json_t *content)
{
    if (!a->sock[ch]) {
        json_decref(content);
        return;
    }
    char id[48], date[32];
    snprintf(id, sizeof(id), "lbk-%s-%u", a->session, ++a->counter);
    iso8601_now(date);
    unsigned slot = a->own_next++ % OWN_IDS;
    a->own_len[slot] = (size_t)snprintf(a->own[slot], sizeof(a->own[slot]), "\"%s\"", id);
    json_t *h =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", id, "msg_type", msg_type, "username",
                  "labbook", "session", a->session, "date", date, "version", "5.3");
    char *hs = json_dumps(h, JSON_COMPACT);
    char *cs = json_dumps(content, JSON_COMPACT);
    json_decref(h);
    json_decref(content);
    struct kmsg m = {.nparts = 4};
    m.part[0] = (const uint8_t *)hs;
    m.part_len[0] = strlen(hs);
    m.part[1] = m.part[2] = (const uint8_t *)"{}";
    m.part_len[1] = m.part_len[2] = 2;
    m.part[3] = (const uint8_t *)cs;
    m.part_len[3] = strlen(cs);
    int r = zmsg_send(a->sock[ch], &a->key, NULL, NULL, 0, &m);
    if (r < 0)
        log_warn("agent: sending %s: %s", msg_type, zmq_strerror(-r));
    free(hs);
    free(cs);
}

static bool is_own_reply(const struct agent *a, const struct kmsg *m)
{
    size_t n = a->own_next < OWN_IDS ? a->own_next : OWN_IDS;
    for (size_t i = 0; i < n; i++)
        if (memmem(m->part[1], m->part_len[1], a->own[i], a->own_len[i]))
            return true;
    return false;
}

/* ---- kernel lifecycle ---- */

static void remove_conn_file(struct agent *a)
{
    if (a->conn_path)
        unlink(a->conn_path);
}

static int kernel_started(struct agent *a, const int ports[KPORT_COUNT], char **reason);

/* Starts the kernel in a sandbox: the connection file and ipc:// sockets live in the
 * runtime's run/ folder, which the kernel sees at SANDBOX_RUN_DIR. */
static int sandbox_start(struct agent *a, const int ports[KPORT_COUNT], char **reason)
{
    char *inside = xasprintf(SANDBOX_RUN_DIR "/kernel-%s.json", a->cfg.id);
    char **argv = xcalloc(a->cfg.argc + 1, sizeof(char *));
    for (size_t i = 0; i < a->cfg.argc; i++)
        argv[i] = kernel_format_arg(a->cfg.argv[i], inside);
    /* A fresh environment: the agent's own would describe the host. No JPY_PARENT_PID:
     * the kernel's parent is the sandbox's init (pid 1), which dies with the agent. */
    static const char *const base[] = {"PATH=" SANDBOX_PATH, "HOME=/root", "LANG=C.UTF-8",
                                       "TERM=xterm-256color"};
    char **envp = xcalloc(ARRAY_SIZE(base) + a->cfg.nenv + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(base); i++) {
        size_t kl = strcspn(base[i], "=") + 1;
        bool overridden = false;
        for (size_t j = 0; j < a->cfg.nenv; j++)
            overridden |= !strncmp(a->cfg.env[j], base[i], kl);
        if (!overridden)
            envp[n++] = (char *)base[i];
    }
    for (size_t j = 0; j < a->cfg.nenv; j++)
        envp[n++] = a->cfg.env[j];
    struct sandbox_error err;
    int r = sandbox_spawn(&a->cfg.sbx, argv, envp, &a->sbx, &err);
    if (r < 0)
        *reason = xasprintf("failed to start kernel in its sandbox: %s", err.msg);
    else
        a->pid = a->sbx.pid;
    if (r == 0 && a->sbx.warning[0])
        log_warn("agent: %s", a->sbx.warning);
    (void)ports;
    for (size_t i = 0; i < a->cfg.argc; i++)
        free(argv[i]);
    free(argv);
    free(envp);
    free(inside);
    return r;
}

/* Starts a kernel and its sockets; state K_STARTING. On failure returns a negative
 * errno with *reason (caller frees) and leaves no kernel. */
static int kernel_start(struct agent *a, char **reason)
{
    int ports[KPORT_COUNT];
    *reason = NULL;
    if (a->cfg.sandboxed) {
        for (int i = 0; i < KPORT_COUNT; i++)
            ports[i] = i + 1;
        /* In run/, which the kernel can write: never through a link it planted. */
        uid_t owner = geteuid() == 0 ? sandbox_root_uid(&a->cfg.sbx) : (uid_t)-1;
        int r = kernel_write_connection(a->conn_path, "ipc", SANDBOX_RUN_DIR "/k", ports, a->keyhex,
                                        a->cfg.kernel_name, owner);
        if (r < 0) {
            *reason =
                xasprintf("failed to start kernel: writing %s: %s", a->conn_path, strerror(-r));
            return r;
        }
        if ((r = sandbox_start(a, ports, reason)) < 0) {
            remove_conn_file(a);
            return r;
        }
        return kernel_started(a, ports, reason);
    }
    int r = kernel_pick_ports(ports);
    if (r < 0) {
        *reason = xasprintf("failed to start kernel: no free ports: %s", strerror(-r));
        return r;
    }
    if ((r = kernel_write_connection_file(a->conn_path, ports, a->keyhex, a->cfg.kernel_name)) <
        0) {
        *reason = xasprintf("failed to start kernel: writing %s: %s", a->conn_path, strerror(-r));
        return r;
    }
    char parent[48];
    snprintf(parent, sizeof(parent), "JPY_PARENT_PID=%ld", (long)getpid());
    /* The config's env wins over ours, including JPY_PARENT_PID. */
    char **env = xcalloc(a->cfg.nenv + 2, sizeof(char *));
    env[0] = parent;
    for (size_t i = 0; i < a->cfg.nenv; i++)
        env[i + 1] = a->cfg.env[i];
    struct kernel_cmd cmd = {.argv = a->cfg.argv,
                             .argc = a->cfg.argc,
                             .env = env,
                             .nenv = a->cfg.nenv + 1,
                             .cwd = a->cfg.cwd};
    pid_t pid = 0;
    r = kernel_spawn(&cmd, a->conn_path, &pid, reason);
    free(env);
    if (r < 0) {
        remove_conn_file(a);
        return r;
    }
    a->pid = pid;
    return kernel_started(a, ports, reason);
}

/* The kernel process runs (a->pid): connect its sockets and start probing it. */
static int kernel_started(struct agent *a, const int ports[KPORT_COUNT], char **reason)
{
    pid_t pid = a->pid;
    int r;
    if ((r = open_sockets(a, ports)) < 0) {
        *reason = xasprintf("failed to start kernel: ZeroMQ: %s", zmq_strerror(-r));
        close_sockets(a);
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        a->pid = 0;
        sandbox_release(&a->sbx);
        remove_conn_file(a);
        return r;
    }
    uint64_t now = now_ms();
    a->kstate = K_STARTING;
    a->got_info = a->iopub_seen = false;
    a->start_deadline = now + (uint64_t)a->cfg.start_timeout_s * 1000;
    a->next_probe = now + PROBE_INTERVAL_MS;
    a->hb_waiting = false;
    a->hb_misses = 0;
    log_info("agent: started kernel pid %ld", (long)pid);
    send_own(a, CH_SHELL, "kernel_info_request", json_object());
    return 0;
}

/* Factory reset, the old kernel gone (its sandbox released): the overlay's upper layer,
 * its work folder and /content move into reset-<ms> beside them (on the runtime's disk
 * when it has one), and a child removes that, never through a link. Names are resolved
 * here, beneath the state folder, with no link followed. */
static void reset_files(struct agent *a)
{
    static const char *const sub[] = {"upper", "work", "content"};
    if (!a->cfg.sandboxed)
        return;
    const char *state = a->cfg.sbx.state_dir;
    int sfd = open(state, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), wd = -1, tfd = -1;
    if (sfd >= 0)
        wd = disk_is_mounted(state)
                 ? fs_open_beneath(sfd, "disk", O_PATH | O_DIRECTORY | O_NOFOLLOW,
                                   RESOLVE_NO_SYMLINKS)
                 : dup(sfd);
    char trash[48];
    snprintf(trash, sizeof(trash), "reset-%" PRIu64, now_ms());
    if (wd < 0 || mkdirat(wd, trash, 0700) < 0 ||
        (tfd = openat(wd, trash, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        log_error("agent: factory reset: cannot make %s/%s: %s", state, trash, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
        if (renameat(wd, sub[i], tfd, sub[i]) < 0 && errno != ENOENT)
            log_error("agent: factory reset: cannot move %s aside: %s", sub[i], strerror(errno));
    pid_t pid = fork(); /* reaped by reap(), as any child that is not the kernel */
    if (pid == 0) {
        if (wd > 3)
            close_range(3, (unsigned)wd - 1, 0);
        close_range((unsigned)wd + 1, ~0U, 0);
        fs_remove_tree(wd, trash, FS_RM_ONE_FS | (geteuid() ? FS_RM_WRITABLE : 0));
        _exit(0);
    }
    if (pid < 0)
        fs_remove_tree(wd, trash, FS_RM_ONE_FS | (geteuid() ? FS_RM_WRITABLE : 0));
    log_info("agent: factory reset: the old files were moved aside");
out:
    int fds[] = {sfd, wd, tfd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Starts a kernel, telling the hub it is dead where that fails. */
static void kernel_start_or_die(struct agent *a)
{
    char *reason = NULL;
    if (kernel_start(a, &reason) < 0) {
        a->kstate = K_NONE;
        send_state(a, "dead", reason);
    }
    free(reason);
}

/* Asks the kernel to shut down; after STOP_GRACE_MS it is killed. What follows its
 * exit is `after`. */
static void kernel_stop(struct agent *a, enum after_stop after)
{
    if (a->kstate == K_STOPPING) {
        if (a->after != AFTER_EXIT)
            a->after = after;
        return;
    }
    if (a->pid <= 0) {
        a->kstate = K_NONE;
        if (after == AFTER_EXIT) {
            a->done = true;
        } else if (after == AFTER_RESTART || after == AFTER_RESET) {
            if (after == AFTER_RESET)
                reset_files(a);
            kernel_start_or_die(a);
        }
        return;
    }
    a->kstate = K_STOPPING;
    a->after = after;
    a->stop_deadline = now_ms() + STOP_GRACE_MS;
    send_own(a, CH_CONTROL, "shutdown_request",
             json_pack("{s:b}", "restart", after == AFTER_RESTART));
}

static void describe_exit(const siginfo_t *si, char *out, size_t n)
{
    if (si->si_code == CLD_EXITED)
        snprintf(out, n, "exit status %d", si->si_status);
    else
        snprintf(out, n, "killed by signal %d", si->si_status);
}

static void on_kernel_exit(struct agent *a, const siginfo_t *si)
{
    char how[256], reason[512];
    describe_exit(si, how, sizeof(how));
    if (a->cfg.sandboxed) {
        /* init's status mirrors the kernel's; the sandbox knows it exactly, and whether
         * a limit killed it. */
        int ks;
        char *why = sandbox_exit_reason(&a->sbx, &ks);
        if (a->sbx.have_status) {
            siginfo_t k = {.si_code = WIFEXITED(ks) ? CLD_EXITED : CLD_KILLED};
            k.si_status = WIFEXITED(ks) ? WEXITSTATUS(ks) : WTERMSIG(ks);
            describe_exit(&k, how, sizeof(how));
        }
        if (why)
            snprintf(how, sizeof(how), "%s", why);
        free(why);
        sandbox_release(&a->sbx);
    }
    close_sockets(a);
    remove_conn_file(a);
    enum kstate was = a->kstate;
    a->kstate = K_NONE;
    if (was == K_STOPPING) {
        log_info("agent: kernel stopped (%s)", how);
        if (a->after == AFTER_EXIT) {
            a->done = true;
        } else if (a->after == AFTER_RESTART || a->after == AFTER_RESET) {
            if (a->after == AFTER_RESET)
                reset_files(a); /* only now: the old kernel never sees its files go */
            kernel_start_or_die(a);
        }
        return;
    }
    /* It died on its own: restart it unless that keeps happening. */
    uint64_t now = now_ms();
    size_t k = 0;
    for (size_t i = 0; i < a->nrestarts; i++)
        if (now - a->restarts[i] < RESTART_WINDOW_MS)
            a->restarts[k++] = a->restarts[i];
    a->nrestarts = k;
    if (a->nrestarts >= RESTART_MAX) {
        snprintf(reason, sizeof(reason),
                 "the kernel died (%s) after %d restarts within %d s; not restarting it", how,
                 RESTART_MAX, RESTART_WINDOW_MS / 1000);
        a->nrestarts = 0;
        send_state(a, "dead", reason);
        return;
    }
    a->restarts[a->nrestarts++] = now;
    snprintf(reason, sizeof(reason), "the kernel died (%s)", how);
    send_state(a, "restarting", reason);
    kernel_start_or_die(a);
}

/* Reaps children one at a time, peeking first (WNOWAIT) so that the kernel's process
 * group is killed while its exited leader still holds the group id, and so that a
 * kernel started meanwhile is never reaped unseen. */
static void reap(struct agent *a)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        pid_t pid = si.si_pid;
        if (pid == a->pid)
            kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (pid == a->pid) {
            a->pid = 0;
            on_kernel_exit(a, &si);
        }
    }
}

static void check_ready(struct agent *a)
{
    /* The kernel answers, but its iopub has not reached us yet (a subscription made
     * while the kernel was starting takes a moment): probe again soon, so that its
     * status messages come, rather than at the next full interval. */
    if (a->kstate == K_STARTING && a->got_info && !a->iopub_seen &&
        a->next_probe > now_ms() + PROBE_AGAIN_MS)
        a->next_probe = now_ms() + PROBE_AGAIN_MS;
    if (a->kstate == K_STARTING && a->got_info && a->iopub_seen) {
        a->kstate = K_RUNNING;
        a->next_hb = now_ms() + HB_INTERVAL_MS;
        send_state(a, "running", NULL);
    }
}

/* ---- relay ---- */

/* Remembers the execution_state of iopub status messages. */
static void track_status(struct agent *a, const struct kmsg *m)
{
    if (!memmem(m->part[0], m->part_len[0], "\"status\"", 8))
        return;
    json_t *c = json_loadb((const char *)m->part[3], m->part_len[3], 0, NULL);
    const char *st = json_string_value(json_object_get(c, "execution_state"));
    if (st)
        snprintf(a->exec_state, sizeof(a->exec_state), "%s", st);
    json_decref(c);
}

static void relay_from_kernel(struct agent *a, enum chan ch)
{
    for (int i = 0; i < RELAY_BATCH && a->sock[ch] && !a->outq; i++) {
        if (!a->rx)
            a->rx = xcalloc(1, sizeof(*a->rx));
        int r = zmsg_recv(a->sock[ch], a->rx, ZMQ_DONTWAIT);
        if (r == -EAGAIN || r == -EINTR)
            return;
        if (r == -EBADMSG) {
            log_warn("agent: dropped a malformed message on %s", chan_name[ch]);
            continue;
        }
        if (r < 0) {
            log_warn("agent: receiving on %s: %s", chan_name[ch], zmq_strerror(-r));
            return;
        }
        if (zmsg_verify(&a->key, &a->rx->m, a->rx->sig, a->rx->sig_len) < 0) {
            log_warn("agent: dropped a message with a bad signature on %s", chan_name[ch]);
            zmsg_in_close(a->rx);
            continue;
        }
        zmsg_in_make_text(a->rx); /* what reaches JSON and WebSockets is UTF-8 */
        if (ch == CH_IOPUB) {
            a->iopub_seen = true;
            track_status(a, &a->rx->m);
        }
        if (is_own_reply(a, &a->rx->m)) {
            if (ch == CH_SHELL)
                a->got_info = true; /* the only own request on shell is kernel_info */
            zmsg_in_close(a->rx);
            check_ready(a);
            continue;
        }
        check_ready(a);
        hub_send_kmsg(a, a->rx, ch);
        a->rx = NULL; /* owned by the output queue now */
    }
}

static void hb_read(struct agent *a)
{
    char b[64];
    while (a->sock[CH_HB] && zmq_recv(a->sock[CH_HB], b, sizeof(b), ZMQ_DONTWAIT) >= 0) {
        if (a->hb_misses)
            log_info("agent: kernel heartbeat back after %d missed", a->hb_misses);
        a->hb_waiting = false;
        a->hb_misses = 0;
    }
}

static void hb_tick(struct agent *a)
{
    if (a->hb_waiting && a->hb_misses++ == 0)
        log_warn("agent: kernel heartbeat missed");
    a->hb_waiting = true;
    zmq_send(a->sock[CH_HB], "ping", 4, ZMQ_DONTWAIT);
}

static void relay_to_kernel(struct agent *a, const uint8_t *p, size_t len)
{
    struct kmsg m;
    if (wsv1_parse(p, len, &m) < 0) {
        log_warn("agent: dropped a malformed message from the hub");
        return;
    }
    int ch = -1;
    for (int c = CH_SHELL; c <= CH_STDIN; c++)
        if (m.channel_len == strlen(chan_name[c]) &&
            !memcmp(m.channel, chan_name[c], m.channel_len))
            ch = c;
    if (ch < 0) {
        log_warn("agent: dropped a message from the hub for channel %.*s",
                 (int)(m.channel_len < 16 ? m.channel_len : 16), m.channel);
        return;
    }
    if (!a->sock[ch]) {
        log_debug("agent: no kernel; dropped a %s message", chan_name[ch]);
        return;
    }
    if (ch == CH_SHELL)
        runlog_request(a->runlog, &m);
    int r = zmsg_send(a->sock[ch], &a->key, NULL, NULL, 0, &m);
    if (r < 0)
        log_warn("agent: sending on %s: %s", chan_name[ch], zmq_strerror(-r));
}

static void interrupt(struct agent *a)
{
    if (a->pid <= 0 || a->kstate == K_STOPPING)
        return;
    if (a->cfg.interrupt_message)
        send_own(a, CH_CONTROL, "interrupt_request", json_object());
    else if (kill(-a->pid, SIGINT) < 0)
        log_warn("agent: interrupting the kernel: %s", strerror(errno));
}

/* A pre-started runtime becomes a user's: their drive is bound into the running
 * sandbox (and into every later one: a restart builds it with the drive). */
static void claim(struct agent *a, const uint8_t *p, size_t len)
{
    json_t *o = json_loadb((const char *)p, len, 0, NULL);
    const char *user = json_string_value(json_object_get(o, "user"));
    char *why = NULL, *err = NULL;
    if (!a->cfg.sandboxed || !a->cfg.sbx.drive_later || !user) {
        why = xstrdup("this runtime cannot be claimed");
    } else {
        /* The name is the hub's; the folder is found here, as for a config's drive. */
        struct agent_config c = {.data_dir = a->cfg.data_dir, .drive_fd = -1};
        struct sandbox_error se;
        if (use_drive(&c, user, &err) < 0)
            why = xasprintf("cannot bind the drive: %s", err);
        else if (a->sbx.pid > 0 &&
                 sandbox_attach_drive(&a->cfg.sbx, &a->sbx, c.sbx.drive_dir, &se) < 0)
            why = xasprintf("cannot bind the drive: %s", se.msg);
        if (!why) {
            a->cfg.drive_fd = c.drive_fd;
            a->cfg.sbx.drive_dir = c.sbx.drive_dir; /* owned by the config now */
            a->cfg.sbx.drive_later = false;
        } else {
            if (c.drive_fd >= 0)
                close(c.drive_fd);
            free((char *)c.sbx.drive_dir);
        }
    }
    char q[80];
    log_info("agent: claimed%s%s%s%s", user ? " for " : "",
             user ? log_quote(user, q, sizeof(q)) : "", why ? ", but " : "", why ? why : "");
    json_t *st = json_pack("{s:s}", "state", "claimed");
    if (why)
        json_object_set_new(st, "reason", json_string(why));
    hub_send_json(a, STREAM_STATE, st);
    free(why);
    free(err);
    json_decref(o);
}

/* A file request on the runtime's /content (files.h): served here and now, since it
 * is at most FILES_MAX_BYTES of local IO. */
static void serve_file(struct agent *a, const uint8_t *p, size_t len)
{
    struct files_root root = {.max_bytes = FILES_MAX_BYTES};
    /* The reply must fit in a frame, with room for its JSON. */
    if (a->cfg.max_frame < FILES_MAX_BYTES + 65536)
        root.max_bytes = a->cfg.max_frame > 65536 ? a->cfg.max_frame - 65536 : 0;
    char *dir = a->cfg.sandboxed ? files_content_dir(a->cfg.sbx.state_dir) : NULL;
    root.content_dir = dir;
    root.set_owner = geteuid() == 0;
    root.owner = a->cfg.sandboxed ? sandbox_root_uid(&a->cfg.sbx) : 0;
    size_t n;
    uint8_t *reply = files_serve(&root, p, len, &n);
    free(dir);
    if (n > a->cfg.max_frame) { /* a listing of long names, with a small max_frame */
        free(reply);
        json_t *o = json_pack("{s:O?, s:i, s:s}", "req", NULL, "status", 507, "message",
                              "the answer is bigger than the stream's max_frame");
        json_t *req = NULL;
        const char *js;
        const uint8_t *d;
        size_t jl, dl;
        if (stream_file_split(p, len, &js, &jl, &d, &dl) == 0 &&
            (req = json_loadb(js, jl, 0, NULL)))
            json_object_set(o, "req", json_object_get(req, "req"));
        json_decref(req);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        reply = stream_file_pack(s, strlen(s), NULL, 0, &n);
        free(s);
    }
    struct out_item *it = xcalloc(1, sizeof(*it));
    it->owned = (char *)reply;
    stream_header(it->head, STREAM_FILE_REPLY, n);
    it->iov[0] = (struct iovec){it->head, STREAM_HEADER_LEN};
    it->iov[1] = (struct iovec){reply, n};
    it->niov = 2;
    hub_push(a, it);
}

static int on_hub_frame(void *ctx, enum stream_type type, const uint8_t *p, size_t len)
{
    struct agent *a = ctx;
    switch (type) {
    case STREAM_MSG:
        relay_to_kernel(a, p, len);
        break;
    case STREAM_INTERRUPT:
        interrupt(a);
        break;
    case STREAM_RESTART:
        if (a->kstate == K_STOPPING && a->after == AFTER_EXIT)
            break;
        send_state(a, "restarting", "restart requested");
        a->nrestarts = 0;
        kernel_stop(a, AFTER_RESTART);
        break;
    case STREAM_RESET:
        if (a->kstate == K_STOPPING && a->after == AFTER_EXIT)
            break;
        send_state(a, "restarting", "factory reset");
        a->nrestarts = 0;
        kernel_stop(a, AFTER_RESET);
        break;
    case STREAM_SHUTDOWN:
        kernel_stop(a, AFTER_EXIT);
        break;
    case STREAM_CLAIM:
        claim(a, p, len);
        break;
    case STREAM_FILE:
        serve_file(a, p, len);
        break;
    case STREAM_SECRET_REPLY:
        if (a->ud)
            userdata_reply(a->ud, p, len);
        break;
    case STREAM_RECORDED: {
        json_t *o = json_loadb((const char *)p, len, 0, NULL);
        json_t *id = json_object_get(o, "msg_id");
        if (json_is_string(id))
            runlog_recorded(a->runlog, json_string_value(id), json_string_length(id));
        json_decref(o);
        break;
    }
    default:
        log_warn("agent: ignored a frame of unknown type %d from the hub", (int)type);
        break;
    }
    return 0;
}

/* The hub is gone: the kernel goes too, or (orphan_timeout_s) waits for it to return. */
static void hub_lost(struct agent *a, const char *why)
{
    hub_close(a);
    if (a->ud)
        userdata_hub_lost(a->ud);
    if (a->cfg.orphan_timeout_s <= 0) {
        log_info("agent: %s; shutting the kernel down", why);
        kernel_stop(a, AFTER_EXIT);
        return;
    }
    log_info("agent: %s; the kernel keeps running, waiting up to %d s for the hub to return", why,
             a->cfg.orphan_timeout_s);
    a->hub_lost_at = now_ms();
    a->next_dial = a->hub_lost_at + 500;
}

static int hub_dial(const char *path);
static void hub_hello(struct agent *a);

/* Dials the hub again; on success tells it who this is and where the kernel stands. */
static void hub_redial(struct agent *a)
{
    int fd = hub_dial(a->cfg.hub_socket);
    if (fd < 0) {
        a->next_dial = now_ms() + 1000;
        return;
    }
    a->hub_fd = fd;
    stream_decoder_free(&a->dec);
    memset(&a->dec.in, 0, sizeof(a->dec.in));
    a->dec.in.cap_max = a->cfg.max_frame + STREAM_HEADER_LEN;
    log_info("agent: the hub is back");
    hub_hello(a);
    if (a->last_state[0]) {
        json_t *o = json_pack("{s:s}", "state", a->last_state);
        if (a->last_reason)
            json_object_set_new(o, "reason", json_string(a->last_reason));
        if (a->exec_state[0])
            json_object_set_new(o, "execution_state", json_string(a->exec_state));
        hub_send_json(a, STREAM_STATE, o);
    }
    /* What the last hub may not have saved, and what no hub has seen. */
    size_t n;
    uint8_t *replay = runlog_replay(a->runlog, &n);
    if (replay) {
        struct out_item *it = xcalloc(1, sizeof(*it));
        it->owned = (char *)replay;
        it->iov[0] = (struct iovec){replay, n};
        it->niov = 1;
        hub_push(a, it);
    }
}

static void hub_read(struct agent *a)
{
    for (int i = 0; i < 16 && a->hub_fd >= 0; i++) {
        ssize_t n = read(a->hub_fd, a->rbuf, HUB_READ_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (n < 0)
                log_warn("agent: reading from the hub: %s", strerror(errno));
            hub_lost(a, "the hub closed the stream");
            return;
        }
        int r = stream_decoder_feed(&a->dec, a->rbuf, (size_t)n, on_hub_frame, a);
        if (r < 0) {
            log_error("agent: bad frame from the hub (%s); shutting down", strerror(-r));
            hub_close(a);
            kernel_stop(a, AFTER_EXIT);
            return;
        }
        if ((size_t)n < HUB_READ_SIZE)
            return;
    }
}

static void on_signal(struct agent *a)
{
    struct signalfd_siginfo si;
    bool child = false;
    while (read(a->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            child = true;
        } else {
            log_info("agent: signal %u; shutting the kernel down", si.ssi_signo);
            kernel_stop(a, AFTER_EXIT);
        }
    }
    if (child)
        reap(a);
}

static void on_timers(struct agent *a)
{
    uint64_t now = now_ms();
    if (a->kstate == K_STARTING) {
        if (now >= a->start_deadline) {
            char reason[128];
            snprintf(reason, sizeof(reason), "the kernel did not answer kernel_info within %d s",
                     a->cfg.start_timeout_s);
            kill(-a->pid, SIGKILL);
            a->kstate = K_STOPPING;
            a->after = AFTER_DEAD;
            a->stop_deadline = UINT64_MAX;
            send_state(a, "dead", reason);
        } else if (now >= a->next_probe) {
            send_own(a, CH_SHELL, "kernel_info_request", json_object());
            a->next_probe = now + PROBE_INTERVAL_MS;
        }
    } else if (a->kstate == K_RUNNING && now >= a->next_hb) {
        hb_tick(a);
        a->next_hb = now + HB_INTERVAL_MS;
    } else if (a->kstate == K_STOPPING && now >= a->stop_deadline) {
        log_warn("agent: the kernel did not exit within %d ms; killing it", STOP_GRACE_MS);
        kill(-a->pid, SIGKILL);
        a->stop_deadline = UINT64_MAX;
    }
}

static long next_timeout(const struct agent *a)
{
    uint64_t at = UINT64_MAX;
    if (a->kstate == K_STARTING)
        at = a->next_probe < a->start_deadline ? a->next_probe : a->start_deadline;
    else if (a->kstate == K_RUNNING)
        at = a->next_hb;
    else if (a->kstate == K_STOPPING)
        at = a->stop_deadline;
    if (a->hub_fd < 0 && a->cfg.orphan_timeout_s > 0 && a->next_dial < at)
        at = a->next_dial;
    if (at == UINT64_MAX)
        return -1;
    uint64_t now = now_ms();
    return at <= now ? 0 : (long)(at - now);
}

/* What the kernel (or anything of ours) wrote to stdout or stderr: into the capped log. */
static void kernel_output(struct agent *a)
{
    static char b[65536];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(a->kout_fd, b, sizeof(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        agentlog_kernel(b, (size_t)n);
    }
}

/* From here on, every line the agent logs and every byte its kernel writes to stdout or
 * stderr reaches agent.log through the capped writer (agentlog.h): fd 2 (the log the
 * launcher opened) becomes the writer's, and fds 1 and 2, which the kernel inherits,
 * a pipe this loop reads. */
static void capture_output(struct agent *a)
{
    int p[2];
    int logfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (logfd < 0 || pipe2(p, O_CLOEXEC) < 0) {
        if (logfd >= 0)
            close(logfd);
        return; /* uncapped, as before */
    }
    int dirfd = open(a->cfg.runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    a->old_stdout = fcntl(1, F_DUPFD_CLOEXEC, 3);
    agentlog_start(logfd, dirfd, "agent.log", &a->cfg.log);
    fflush(stdout);
    fflush(stderr);
    dup2(p[1], 1);
    dup2(p[1], 2);
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    a->kout_fd = p[0];
}

static int loop(struct agent *a)
{
    while (!a->done) {
        /* However the hub went away, the kernel goes with it (for now: a later change
         * lets agents outlive the hub). */
        if (a->hub_fd < 0 && !(a->kstate == K_STOPPING && a->after == AFTER_EXIT)) {
            if (a->cfg.orphan_timeout_s <= 0 ||
                now_ms() - a->hub_lost_at > (uint64_t)a->cfg.orphan_timeout_s * 1000) {
                if (a->cfg.orphan_timeout_s > 0)
                    log_warn("agent: the hub did not return within %d s; shutting the kernel down",
                             a->cfg.orphan_timeout_s);
                kernel_stop(a, AFTER_EXIT);
                continue;
            }
            if (now_ms() >= a->next_dial)
                hub_redial(a);
        }
        /* Item i of rev[] is the hub, the signalfd, then the channels; absent ones
         * are left out of the poll set. */
        zmq_pollitem_t items[3 + CH_COUNT + USERDATA_POLL_MAX];
        int map[3 + CH_COUNT], m = 0;
        memset(items, 0, sizeof(items));
        if (a->hub_fd >= 0) {
            items[m].fd = a->hub_fd;
            items[m].events = (short)(ZMQ_POLLIN | (a->outq ? ZMQ_POLLOUT : 0));
            map[m++] = 0;
        }
        items[m].fd = a->sig_fd;
        items[m].events = ZMQ_POLLIN;
        map[m++] = 1;
        if (a->kout_fd >= 0) {
            items[m].fd = a->kout_fd;
            items[m].events = ZMQ_POLLIN;
            map[m++] = 2 + CH_COUNT;
        }
        for (int c = 0; c < CH_COUNT; c++) {
            if (!a->sock[c])
                continue;
            items[m].socket = a->sock[c];
            /* While a frame waits for the hub, leave kernel output in ZeroMQ. */
            items[m].events = c == CH_HB || !a->outq ? ZMQ_POLLIN : 0;
            map[m++] = 2 + c;
        }
        /* userdata's items go last, outside map[]. */
        int ud_at = m, ud_n = a->ud ? userdata_poll_items(a->ud, items + m) : 0;
        long t = next_timeout(a), lt = agentlog_tick();
        if (lt >= 0 && (t < 0 || lt < t))
            t = lt;
        long ut = a->ud ? userdata_timeout(a->ud) : -1;
        if (ut >= 0 && (t < 0 || ut < t))
            t = ut;
        int r = zmq_poll(items, m + ud_n, t);
        if (r < 0 && zmq_errno() != EINTR) {
            log_error("agent: zmq_poll: %s", zmq_strerror(zmq_errno()));
            return -zmq_errno();
        }
        short rev[3 + CH_COUNT] = {0};
        for (int i = 0; r > 0 && i < m; i++)
            rev[map[i]] = items[i].revents;
        if (a->ud && r >= 0)
            userdata_handle(a->ud, items + ud_at, ud_n);
        if (rev[1] & ZMQ_POLLIN)
            on_signal(a);
        if (rev[2 + CH_COUNT] & (ZMQ_POLLIN | ZMQ_POLLERR))
            kernel_output(a);
        if (a->hub_fd >= 0 && (rev[0] & ZMQ_POLLOUT)) {
            int w = hub_flush(a);
            if (w < 0) {
                log_warn("agent: writing to the hub: %s", strerror(-w));
                hub_lost(a, "the hub went away");
            }
        }
        if (a->hub_fd >= 0 && (rev[0] & (ZMQ_POLLIN | ZMQ_POLLERR)))
            hub_read(a);
        for (int c = 0; c < CH_COUNT; c++) {
            if (!(rev[2 + c] & ZMQ_POLLIN))
                continue;
            if (c == CH_HB)
                hb_read(a);
            else
                relay_from_kernel(a, (enum chan)c);
        }
        on_timers(a);
    }
    return 0;
}

/* ---- setup ---- */

/* google.colab.userdata's socket: in the run folder the kernel sees at SANDBOX_RUN_DIR
 * (owned by the sandbox's root, who alone may connect), or unsandboxed in the runtime's
 * own 0700 folder. Without it userdata.get() says the runtime cannot reach its agent. */
static void userdata_listen(struct agent *a)
{
    char *dir =
        a->cfg.sandboxed ? sandbox_host_run_dir(a->cfg.sbx.state_dir) : xstrdup(a->cfg.runtime_dir);
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    uid_t owner = a->cfg.sandboxed && geteuid() == 0 ? sandbox_root_uid(&a->cfg.sbx) : (uid_t)-1;
    char *err = NULL;
    if (dfd < 0)
        err = xasprintf("%s: %s", dir, strerror(errno));
    else
        a->ud = userdata_new(dfd, owner, send_secret_request, a, &err);
    if (!a->ud)
        log_warn("agent: no socket for google.colab.userdata: %s", err);
    if (dfd >= 0)
        close(dfd);
    free(err);
    free(dir);
}

static int hub_dial(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void hub_hello(struct agent *a)
{
    hub_send_json(a, STREAM_HELLO,
                  json_pack("{s:s, s:s, s:I}", "id", a->cfg.id, "secret", a->cfg.secret, "pid",
                            (json_int_t)getpid()));
}

/* Before exit: give queued frames (the last state) a moment to reach the hub. */
static void hub_drain(struct agent *a)
{
    uint64_t until = now_ms() + 1000;
    while (a->hub_fd >= 0 && a->outq && now_ms() < until) {
        zmq_pollitem_t it = {.fd = a->hub_fd, .events = ZMQ_POLLOUT};
        zmq_poll(&it, 1, 100);
        if (hub_flush(a) < 0)
            break;
    }
}

int agent_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: labbook agent CONFIG.json\n");
        return 2;
    }
    struct agent *a = xcalloc(1, sizeof(*a));
    a->cfg.drive_fd = -1;
    a->hub_fd = a->sig_fd = a->kout_fd = a->old_stdout = -1;
    a->outq_tail = &a->outq;
    a->sbx.status_fd = -1;
    a->sbx.net_exit_fd = -1;
    a->sbx.net_helper = -1;
    int rc = 1;
    char *err = NULL;
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before ZeroMQ starts its threads, so only the signalfd sees them. */
    sigprocmask(SIG_BLOCK, &mask, &old);
    signal(SIGPIPE, SIG_IGN); /* a log pipe or the hub gone must not kill the kernel's keeper */

    if (config_load(argv[1], &a->cfg, &err) < 0) {
        fprintf(stderr, "labbook agent: bad config: %s\n", err);
        rc = 2;
        goto out;
    }
    capture_output(a);
    if (sodium_init() < 0) {
        fprintf(stderr, "labbook agent: libsodium failed to initialise\n");
        goto out;
    }
    a->hub_fd = hub_dial(a->cfg.hub_socket);
    if (a->hub_fd < 0) {
        fprintf(stderr, "labbook agent: cannot connect to the hub at %s: %s\n", a->cfg.hub_socket,
                strerror(-a->hub_fd));
        goto out;
    }
    a->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (a->sig_fd < 0) {
        fprintf(stderr, "labbook agent: signalfd: %s\n", strerror(errno));
        goto out;
    }
    a->dec.max_frame = a->cfg.max_frame;
    a->dec.in.cap_max = a->cfg.max_frame + STREAM_HEADER_LEN;
    a->rbuf = xmalloc(HUB_READ_SIZE);
    a->runlog = runlog_new(a->cfg.keep_bytes);

    uint8_t raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(a->keyhex, sizeof(a->keyhex), raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    zmsg_key_init(&a->key, a->keyhex, strlen(a->keyhex));
    uint8_t sess[16];
    randombytes_buf(sess, sizeof(sess));
    sodium_bin2hex(a->session, sizeof(a->session), sess, sizeof(sess));

    hub_hello(a);
    send_state(a, "starting", NULL);

    int r = mkdir_p(a->cfg.runtime_dir, 0700);
    if (a->cfg.sandboxed) {
        char *run = sandbox_host_run_dir(a->cfg.sbx.state_dir);
        if (r == 0)
            r = mkdir_p(run, 0755);
        /* The ipc:// sockets are reached by relative paths from the run folder, so that
         * however deep the data folder is they fit in a socket address (108 bytes). */
        if (r == 0 && chdir(run) < 0)
            r = -errno;
        a->ipc_prefix = xstrdup("k");
        a->conn_path = xasprintf("%s/kernel-%s.json", run, a->cfg.id);
        free(run);
        struct sandbox_error se;
        if (sandbox_supported(&se) < 0)
            log_warn("agent: %s", se.msg); /* sandbox_spawn fails and says so in the state */
    } else {
        a->conn_path = xasprintf("%s/kernel-%s.json", a->cfg.runtime_dir, a->cfg.id);
    }
    if (r == 0)
        userdata_listen(a);
    a->zctx = zmq_ctx_new();
    if (r < 0) {
        char *reason =
            xasprintf("failed to start kernel: creating %s: %s", a->cfg.runtime_dir, strerror(-r));
        send_state(a, "dead", reason);
        free(reason);
    } else {
        kernel_start_or_die(a);
    }
    rc = loop(a) < 0 ? 1 : 0;
    hub_drain(a);

out:
    if (a->pid > 0) {
        kill(-a->pid, SIGKILL);
        while (waitpid(a->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    sandbox_release(&a->sbx);
    userdata_free(a->ud);
    free(a->ipc_prefix);
    close_sockets(a);
    remove_conn_file(a);
    if (a->zctx)
        zmq_ctx_term(a->zctx);
    if (a->rx) {
        zmsg_in_close(a->rx);
        free(a->rx);
    }
    hub_close(a);
    if (a->sig_fd >= 0)
        close(a->sig_fd);
    stream_decoder_free(&a->dec);
    free(a->rbuf);
    free(a->conn_path);
    free(a->last_reason);
    runlog_free(a->runlog);
    free(err);
    sodium_memzero(a->keyhex, sizeof(a->keyhex));
    zmsg_key_free(&a->key);
    if (a->kout_fd >= 0) {
        kernel_output(a); /* the last of it */
        agentlog_stop();
        close(a->kout_fd);
        if (a->old_stdout >= 0) {
            dup2(a->old_stdout, 1);
            close(a->old_stdout);
        }
    }
    config_free(&a->cfg);
    free(a);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
