/* The launcher (launcher.h): the root half of a root hub. One process, one socket pair
 * (SOCK_SEQPACKET, one message per record) to the hub; it starts runtime agents, signals
 * them, and removes runtime folders, after checking every request. Every name it touches
 * is resolved by itself beneath the runtimes folder it opened at start, with no link
 * followed: whatever the hub's user made in the data folder, root acts only on
 * runtimes/<id>. */
#include "hub/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/log.h"
#include "common/util.h"
#include "hub/figures.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "sandbox/disk.h"

/* ---- the launcher process ---------------------------------------------------------- */

#define MAX_CHILDREN 8192

struct child {
    pid_t pid;
    char id[LAUNCHER_ID_LEN];
    bool agent; /* else a worker removing files */
};

static struct child *children;
static size_t nchildren;
/* DATA/runtimes, opened at start (root's, 0711; the hub's user cannot swap what is in
 * it), or -1 when it could not be: then nothing is done. */
static int runtimes_fd = -1;

static void send_msg(int fd, uint16_t type, uint32_t seq, const void *p, size_t n)
{
    size_t total = sizeof(struct launcher_hdr) + n;
    char *b = xmalloc(total);
    struct launcher_hdr h = {LAUNCHER_VERSION, type, seq, (uint32_t)n};
    memcpy(b, &h, sizeof(h));
    if (n)
        memcpy(b + sizeof(h), p, n);
    while (send(fd, b, total, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
    free(b);
}

static void reply(int fd, uint32_t seq, int32_t result, const char *msg)
{
    size_t ml = msg ? strlen(msg) : 0;
    char *b = xmalloc(4 + ml);
    memcpy(b, &result, 4);
    if (ml)
        memcpy(b + 4, msg, ml);
    send_msg(fd, LAUNCHER_REPLY, seq, b, 4 + ml);
    free(b);
}

static void track(pid_t pid, const char *id, bool agent)
{
    if (nchildren == MAX_CHILDREN)
        return; /* reaped all the same; only its exit is not told */
    children[nchildren].pid = pid;
    snprintf(children[nchildren].id, LAUNCHER_ID_LEN, "%s", id);
    children[nchildren].agent = agent;
    nchildren++;
}

/* Opens runtimes/<id> (O_PATH), never through a link. */
static int open_runtime(const char *id)
{
    if (runtimes_fd < 0)
        return -ENOENT;
    return fs_open_beneath(runtimes_fd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
}

/* A worker child unmounts runtime id's disk and removes its folder. */
static void remove_in_child(const char *id)
{
    pid_t pid = fork();
    if (pid == 0) {
        int dfd = open_runtime(id);
        if (dfd >= 0) {
            char self[64];
            snprintf(self, sizeof(self), "/proc/self/fd/%d", dfd);
            disk_detach(self); /* that very folder's disk, by its fd */
            close(dfd);
        }
        if (runtimes_fd >= 0)
            fs_remove_tree(runtimes_fd, id, FS_RM_ONE_FS);
        _exit(0);
    }
    if (pid > 0)
        track(pid, id, false);
}

/* Writes name in folder dfd atomically (a temporary file of a fresh name, made O_EXCL
 * and O_NOFOLLOW, owned by uid:gid before it takes the name). Returns 0 or -errno. */
static int write_at_atomic(int dfd, const char *name, const char *data, size_t len, uid_t uid,
                           gid_t gid)
{
    char tmp[64];
    unsigned char rnd[8];
    int fd = -1, r = 0;
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        int rf = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (rf < 0 || read(rf, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
            memset(rnd, tries, sizeof(rnd));
        if (rf >= 0)
            close(rf);
        snprintf(tmp, sizeof(tmp), ".%s.%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -errno;
    }
    if (fd < 0)
        return -EEXIST;
    r = write_all(fd, data, len);
    if (!r && fchown(fd, uid, gid) < 0)
        r = -errno;
    if (!r && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && !r)
        r = -errno;
    if (!r && renameat(dfd, tmp, dfd, name) < 0)
        r = -errno;
    if (r)
        unlinkat(dfd, tmp, 0);
    return r;
}

/* Opens the agent's log in folder dfd for appending: a regular file of one link, never
 * through a symlink, owned by uid:gid. Returns an fd or -errno. */
static int open_log_at(int dfd, const char *name, uid_t uid, gid_t gid)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        fchown(fd, uid, gid) < 0) {
        close(fd);
        return -EPERM;
    }
    fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
    return fd;
}

/* Whether pid is the agent of runtime dir (its command line names dir/agent.json). */
static bool is_agent_of(pid_t pid, const char *cfgpath)
{
    char p[64], buf[4096];
    snprintf(p, sizeof(p), "/proc/%ld/cmdline", (long)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *a1 = buf + strlen(buf) + 1;
    if (a1 >= buf + n || strcmp(a1, "agent"))
        return false;
    const char *a2 = a1 + strlen(a1) + 1;
    return a2 < buf + n && !strcmp(a2, cfgpath);
}

static void do_spawn(const struct launcher_conf *c, int fd, uint32_t seq, const char *id,
                     const char *json, size_t len)
{
    char *why = NULL;
    if (launcher_check_config(c, id, json, len, &why) < 0) {
        log_warn("launcher: refused to start an agent for %s: %s", id, why);
        reply(fd, seq, -EPERM, why);
        free(why);
        return;
    }
    char *dir = xasprintf("%s/%s", c->runtimes_dir, id);
    char *cfg = xasprintf("%s/agent.json", dir);
    bool as_hub = !c->sandboxed; /* an unsandboxed agent runs as the hub's user */
    uid_t uid = as_hub ? c->hub_uid : 0;
    gid_t gid = as_hub ? c->hub_gid : 0;
    int logfd = -1, dfd = -1, r = 0;
    if (runtimes_fd < 0)
        r = -ENOENT;
    else if (mkdirat(runtimes_fd, id, 0711) < 0 && errno != EEXIST)
        r = -errno;
    if (!r && (r = dfd = open_runtime(id)) >= 0)
        r = 0;
    struct stat st;
    if (!r && fstat(dfd, &st) < 0)
        r = -errno;
    /* A sandboxed agent works in it as root: it must be root's, and so have been root's
     * all along (the hub's user cannot have planted links in it). */
    if (!r && !as_hub && st.st_uid != 0) {
        char *m = xasprintf("the runtime folder %s is not root's", dir);
        reply(fd, seq, -EPERM, m);
        free(m);
        goto out;
    }
    if (!r && as_hub && fchownat(dfd, "", uid, gid, AT_EMPTY_PATH) < 0)
        r = -errno;
    if (!r)
        r = write_at_atomic(dfd, "agent.json", json, len, uid, gid);
    if (!r && (r = logfd = open_log_at(dfd, "agent.log", uid, gid)) >= 0)
        r = 0;
    if (r < 0) {
        char *m = xasprintf("cannot prepare the runtime folder %s: %s", dir, strerror(-r));
        reply(fd, seq, r, m);
        free(m);
        goto out;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (as_hub && (setgroups(0, NULL) < 0 || setgid(c->hub_gid) < 0 || setuid(c->hub_uid) < 0))
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close_range(3, ~0U, 0);
        char *argv[] = {(char *)c->self_exe, "agent", cfg, NULL};
        execv(c->self_exe, argv);
        _exit(127);
    }
    if (pid < 0) {
        reply(fd, seq, -errno, "cannot start the runtime agent");
    } else {
        track(pid, id, true);
        reply(fd, seq, pid, NULL);
    }
out:
    if (logfd >= 0)
        close(logfd);
    if (dfd >= 0)
        close(dfd);
    free(dir);
    free(cfg);
}

static void handle(const struct launcher_conf *c, int fd, const char *buf, size_t n)
{
    struct launcher_hdr h;
    if (n < sizeof(h))
        return;
    memcpy(&h, buf, sizeof(h));
    const char *p = buf + sizeof(h);
    size_t plen = n - sizeof(h);
    if (h.version != LAUNCHER_VERSION || h.len != plen) {
        reply(fd, h.seq, -EPROTO, "bad message (version or length)");
        return;
    }
    char id[LAUNCHER_ID_LEN + 1];
    if (plen < LAUNCHER_ID_LEN) {
        reply(fd, h.seq, -EPROTO, "bad message (no runtime id)");
        return;
    }
    memcpy(id, p, LAUNCHER_ID_LEN);
    id[LAUNCHER_ID_LEN] = 0;
    if (!launcher_valid_id(id)) {
        reply(fd, h.seq, -EINVAL, "not a runtime id");
        return;
    }
    p += LAUNCHER_ID_LEN;
    plen -= LAUNCHER_ID_LEN;
    switch (h.type) {
    case LAUNCHER_SPAWN:
        do_spawn(c, fd, h.seq, id, p, plen);
        return;
    case LAUNCHER_SIGNAL: {
        int32_t pid, sig;
        if (plen != 8) {
            reply(fd, h.seq, -EPROTO, "bad signal message");
            return;
        }
        memcpy(&pid, p, 4);
        memcpy(&sig, p + 4, 4);
        char *cfg = xasprintf("%s/%s/agent.json", c->runtimes_dir, id);
        bool ok =
            pid > 1 && (sig == SIGTERM || sig == SIGKILL || sig == SIGINT) && is_agent_of(pid, cfg);
        free(cfg);
        if (ok && kill(pid, sig) == 0)
            reply(fd, h.seq, 0, NULL);
        else
            reply(fd, h.seq, -ESRCH, "no such agent");
        return;
    }
    case LAUNCHER_REMOVE:
        if (plen != 0) {
            reply(fd, h.seq, -EPROTO, "bad remove message");
            return;
        }
        remove_in_child(id);
        reply(fd, h.seq, 0, NULL);
        return;
    default:
        reply(fd, h.seq, -EPROTO, "unknown message type");
    }
}

static void reap(int fd)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (size_t i = 0; i < nchildren; i++) {
            if (children[i].pid != pid)
                continue;
            if (children[i].agent) {
                char b[LAUNCHER_ID_LEN + 8];
                memset(b, 0, sizeof(b));
                memcpy(b, children[i].id, strlen(children[i].id));
                int32_t p32 = pid, s32 = st;
                memcpy(b + LAUNCHER_ID_LEN, &p32, 4);
                memcpy(b + LAUNCHER_ID_LEN + 4, &s32, 4);
                send_msg(fd, LAUNCHER_EXITED, 0, b, sizeof(b));
            }
            children[i] = children[--nchildren];
            break;
        }
    }
}

static void __attribute__((noreturn)) launcher_main(const struct launcher_conf *c, int fd)
{
    proc_title_set("labbook launcher");
    prctl(PR_SET_NAME, "lb-launcher", 0, 0, 0);
    children = xcalloc(MAX_CHILDREN, sizeof(*children));
    /* The data folder's path is the administrator's; below it, only names resolved
     * here. runtimes/ must be root's (the hub made it so before it dropped root). */
    int data_fd = open(c->data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (data_fd >= 0)
        runtimes_fd = fs_open_beneath(data_fd, "runtimes", O_PATH | O_DIRECTORY | O_NOFOLLOW,
                                      RESOLVE_NO_SYMLINKS);
    if (runtimes_fd >= 0 && (fstat(runtimes_fd, &st) < 0 || st.st_uid != 0)) {
        close(runtimes_fd);
        runtimes_fd = -1;
    }
    if (runtimes_fd < 0)
        log_error("launcher: cannot open the runtimes folder beneath %s (or it is not root's); "
                  "no runtime can be started",
                  c->data_dir);
    if (data_fd >= 0)
        close(data_fd);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    char *buf = xmalloc(LAUNCHER_MAX_MSG + sizeof(struct launcher_hdr));
    for (;;) {
        struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0)
            continue;
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ; /* SIGTERM and SIGINT are the hub's to act on: the launcher ends with it */
            reap(fd);
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buf, LAUNCHER_MAX_MSG + sizeof(struct launcher_hdr), MSG_TRUNC);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                _exit(0); /* the hub is gone; its agents live on */
            if (n > (ssize_t)(LAUNCHER_MAX_MSG + sizeof(struct launcher_hdr))) {
                struct launcher_hdr h = {0};
                memcpy(&h, buf, sizeof(h));
                reply(fd, h.seq, -EMSGSIZE, "message too large");
                continue;
            }
            if (n > 0)
                handle(c, fd, buf, (size_t)n);
            reap(fd);
        }
    }
}

/* ---- the hub's side ------------------------------------------------------------------ */

struct pending {
    struct pending *next;
    uint32_t seq;
    launcher_cb cb;
    void *ctx;
};

struct launcher {
    int fd;
    pid_t pid;
    uv_poll_t poll;
    bool polling;
    uint32_t seq;
    struct pending *pending;
    char *buf;
};

int launcher_start(struct hub *h, const struct launcher_conf *conf, char **err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        *err = xasprintf("cannot make the launcher's socket: %s", strerror(errno));
        return -errno;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        *err = xasprintf("cannot start the launcher: %s", strerror(e));
        return -e;
    }
    if (pid == 0) {
        close(sv[0]);
        launcher_main(conf, sv[1]);
    }
    close(sv[1]);
    struct launcher *l = xcalloc(1, sizeof(*l));
    l->fd = sv[0];
    l->pid = pid;
    l->buf = xmalloc(LAUNCHER_MAX_MSG + sizeof(struct launcher_hdr));
    h->launcher = l;
    return 0;
}

static void on_message(struct hub *h, const char *b, size_t n)
{
    struct launcher *l = h->launcher;
    struct launcher_hdr hd;
    if (n < sizeof(hd))
        return;
    memcpy(&hd, b, sizeof(hd));
    const char *p = b + sizeof(hd);
    size_t plen = n - sizeof(hd);
    if (hd.version != LAUNCHER_VERSION || hd.len != plen)
        return;
    log_debug("launcher: message type %u seq %u (%zu bytes)", hd.type, hd.seq, plen);
    if (hd.type == LAUNCHER_EXITED && plen == LAUNCHER_ID_LEN + 8) {
        char id[LAUNCHER_ID_LEN + 1];
        memcpy(id, p, LAUNCHER_ID_LEN);
        id[LAUNCHER_ID_LEN] = 0;
        int32_t pid, st;
        memcpy(&pid, p + LAUNCHER_ID_LEN, 4);
        memcpy(&st, p + LAUNCHER_ID_LEN + 4, 4);
        kernels_agent_exited(h, id, pid, st);
        return;
    }
    if (hd.type != LAUNCHER_REPLY || plen < 4)
        return;
    int32_t result;
    memcpy(&result, p, 4);
    char *msg = xstrndup(p + 4, plen - 4);
    for (struct pending **pp = &l->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->seq != hd.seq)
            continue;
        struct pending *q = *pp;
        *pp = q->next;
        if (q->cb)
            q->cb(q->ctx, result, *msg ? msg : NULL);
        free(q);
        break;
    }
    free(msg);
}

static void on_readable(uv_poll_t *w, int status, int events)
{
    struct hub *h = w->data;
    struct launcher *l = h->launcher;
    (void)events;
    for (;;) {
        ssize_t n = status < 0 ? -1
                               : recv(l->fd, l->buf, LAUNCHER_MAX_MSG + sizeof(struct launcher_hdr),
                                      MSG_DONTWAIT);
        if (n > 0) {
            on_message(h, l->buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        log_error("launcher: it is gone; runtimes can no longer be started");
        uv_poll_stop(&l->poll);
        return;
    }
}

void launcher_attach(struct hub *h)
{
    struct launcher *l = h->launcher;
    if (!l)
        return;
    uv_poll_init(h->loop, &l->poll, l->fd);
    l->poll.data = h;
    l->polling = true;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

static void on_poll_closed(uv_handle_t *hd)
{
    struct hub *h = hd->data;
    struct launcher *l = h->launcher;
    close(l->fd);
    free(l->buf);
    free(l);
    h->launcher = NULL;
}

void launcher_close(struct hub *h)
{
    struct launcher *l = h->launcher;
    if (!l)
        return;
    for (struct pending *q = l->pending, *next; q; q = next) {
        next = q->next;
        if (q->cb)
            q->cb(q->ctx, -ECANCELED, "the server is stopping");
        free(q);
    }
    l->pending = NULL;
    if (l->polling && !uv_is_closing((uv_handle_t *)&l->poll)) {
        uv_close((uv_handle_t *)&l->poll, on_poll_closed);
    } else {
        close(l->fd);
        free(l->buf);
        free(l);
        h->launcher = NULL;
    }
}

static int request(struct hub *h, uint16_t type, const char *id, const void *extra, size_t n,
                   launcher_cb cb, void *ctx)
{
    struct launcher *l = h->launcher;
    if (!l)
        return -ENOTCONN;
    if (n + LAUNCHER_ID_LEN > LAUNCHER_MAX_MSG || strlen(id) >= LAUNCHER_ID_LEN)
        return -EMSGSIZE;
    size_t total = sizeof(struct launcher_hdr) + LAUNCHER_ID_LEN + n;
    char *b = xcalloc(1, total);
    struct launcher_hdr hd = {LAUNCHER_VERSION, type, ++l->seq, (uint32_t)(LAUNCHER_ID_LEN + n)};
    memcpy(b, &hd, sizeof(hd));
    memcpy(b + sizeof(hd), id, strlen(id));
    if (n)
        memcpy(b + sizeof(hd) + LAUNCHER_ID_LEN, extra, n);
    ssize_t w = send(l->fd, b, total, MSG_DONTWAIT | MSG_NOSIGNAL);
    free(b);
    if (w != (ssize_t)total)
        return w < 0 ? -errno : -EIO;
    struct pending *q = xcalloc(1, sizeof(*q));
    q->seq = hd.seq;
    q->cb = cb;
    q->ctx = ctx;
    q->next = l->pending;
    l->pending = q;
    return 0;
}

int launcher_spawn(struct hub *h, const char *id, const char *config_json, launcher_cb cb,
                   void *ctx)
{
    return request(h, LAUNCHER_SPAWN, id, config_json, strlen(config_json), cb, ctx);
}

int launcher_signal(struct hub *h, const char *id, int pid, int sig)
{
    int32_t v[2] = {pid, sig};
    return request(h, LAUNCHER_SIGNAL, id, v, sizeof(v), NULL, NULL);
}

int launcher_remove(struct hub *h, const char *id)
{
    return request(h, LAUNCHER_REMOVE, id, NULL, 0, NULL, NULL);
}
