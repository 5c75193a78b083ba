/* `labbook serve`: reads the configuration, opens the store and the data folders,
 * creates the first admin on a fresh install, and runs the loop until SIGTERM, when
 * it shuts every kernel down and exits cleanly. */
#include "hub/hub.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/accounts.h"
#include "hub/channels.h"
#include "hub/drive.h"
#include "hub/extract.h"
#include "hub/leftovers.h"
#include "hub/figures.h"
#include "hub/contents.h"
#include "hub/http.h"
#include "hub/kernels.h"
#include "hub/launcher.h"
#include "hub/scheduler.h"
#include "hub/secrets.h"
#include "hub/sessions.h"
#include "hub/tus.h"
#include "hub/trash.h"
#include "sandbox/gpu.h"
#include "sandbox/sandbox.h"

void hub_touch(struct hub *h)
{
    iso8601_now(h->last_activity);
}

char *hub_user_drive(struct hub *h, const struct user *u)
{
    char *p = xasprintf("%s/%s", h->drive_dir, u->name);
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        log_error("cannot create the drive folder %s: %s", p, strerror(errno));
    return p;
}

static void finish_stop(struct hub *h)
{
    kernels_close(h);
    char *status = xasprintf("%s/run/status.json", h->data_dir);
    unlink(status); /* `labbook status` then knows at once that the hub is gone */
    free(status);
    uv_close((uv_handle_t *)&h->sig_term, NULL);
    uv_close((uv_handle_t *)&h->sig_int, NULL);
    uv_close((uv_handle_t *)&h->tick, NULL);
    accounts_watch_stop(h);
    uv_stop(h->loop);
}

void hub_maybe_finish_stop(struct hub *h)
{
    if (h->stopping && !h->kernels && !uv_is_closing((uv_handle_t *)&h->tick))
        finish_stop(h);
}

void hub_stop(struct hub *h)
{
    if (h->stopping)
        return;
    h->stopping = true;
    __atomic_store_n(&h->drive->stopping, true, __ATOMIC_RELAXED);
    sessions_free_all(h);
    if (h->cfg.orphan_timeout_s > 0) {
        log_info("shutting down: runtimes keep running for the next start (for up to %d s)",
                 h->cfg.orphan_timeout_s);
        kernels_detach_all(h);
    } else {
        log_info("shutting down: stopping every runtime");
        kernels_shutdown_all(h);
    }
    hub_maybe_finish_stop(h);
}

static void on_signal(uv_signal_t *s, int sig)
{
    struct hub *h = s->data;
    log_info("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    hub_stop(h);
}

static void on_tick(uv_timer_t *t)
{
    struct hub *h = t->data;
    for (struct kernel *k = h->kernels; k; k = k->next)
        channels_expire(k);
    kernels_tick(h);
    tus_tick(h);
    trash_tick(h);
    figures_write_status(h);
}

static void close_walk(uv_handle_t *hd, void *arg)
{
    (void)arg;
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

static int usage(void)
{
    fprintf(stderr, "usage: labbook serve [--config FILE] [--data DIR] [--port N] [--bind ADDR]\n");
    return 2;
}

static char *absolute(const char *p)
{
    if (p[0] == '/')
        return xstrdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return xstrdup(p);
    return xasprintf("%s/%s", cwd, p);
}

/* ---- privilege separation (docs/launcher.md) ---- */

static uid_t own_uid;
static gid_t own_gid;
static const char *own_skip; /* the runtimes folder: the launcher's */

static int chown_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_D && !strcmp(p, own_skip)) {
        chown(p, 0, 0);
        return FTW_SKIP_SUBTREE;
    }
    lchown(p, own_uid, own_gid);
    return FTW_CONTINUE;
}

/* The data folder's files become the hub user's, except runtimes/ (root's, 0711). The
 * first time (drive/ is someone else's) every file is handed over; after that only what
 * the CLI, run as root, may have made: the database files and run/. The folder itself
 * stays root's, group the hub's, 01770: the hub can make and remove its own files in it,
 * but, sticky, cannot rename runtimes/ away and put a folder of its own there. */
static void take_ownership(struct hub *h, uid_t uid, gid_t gid)
{
    struct stat st;
    own_uid = uid, own_gid = gid, own_skip = h->runtimes_dir;
    if (stat(h->drive_dir, &st) == 0 && st.st_uid != uid) {
        log_info("handing the data folder %s over to uid %u", h->data_dir, (unsigned)uid);
        nftw(h->data_dir, chown_entry, 64, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
    } else {
        static const char *const top[] = {"labbook.db", "labbook.db-wal", "labbook.db-shm", "run",
                                          "drive"};
        for (size_t i = 0; i < ARRAY_SIZE(top); i++) {
            char *p = xasprintf("%s/%s", h->data_dir, top[i]);
            lchown(p, uid, gid);
            free(p);
        }
    }
    chown(h->runtimes_dir, 0, 0);
    chmod(h->runtimes_dir, 0711);
    chown(h->data_dir, 0, gid);
    chmod(h->data_dir, 01770);
}

/* Whether uid:gid may reach dir: search permission on every folder above it. */
static bool reachable_by(const char *dir, uid_t uid, gid_t gid)
{
    char *p = xstrdup(dir);
    bool ok = true;
    for (char *slash = strrchr(p, '/'); ok && slash; slash = strrchr(p, '/')) {
        *slash = '\0';
        struct stat st;
        if (stat(*p ? p : "/", &st) < 0)
            break;
        mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
        ok = (st.st_mode & need) != 0;
    }
    free(p);
    return ok;
}

/* useradd --system for the default user, the way a package's postinst would. */
static void create_system_user(const char *name)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {
            "useradd",      "--system", "--user-group",      "--no-create-home", "--home-dir",
            "/nonexistent", "--shell",  "/usr/sbin/nologin", (char *)name,       NULL};
        execv("/usr/sbin/useradd", argv);
        _exit(127);
    }
    int status = 0;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        log_info("created the system user %s to run the hub", name);
}

/* Started as root (and [server] user is not root): fork the launcher, which keeps root
 * to start runtimes, and become the unprivileged user. Returns 0 or -1 (logged). */
static int separate_privileges(struct hub *h)
{
    if (geteuid() != 0 || !strcmp(h->cfg.user, "root"))
        return 0;
    struct passwd *pw = getpwnam(h->cfg.user);
    if (!pw && !strcmp(h->cfg.user, "labbook")) {
        create_system_user("labbook");
        pw = getpwnam("labbook");
        if (!pw) {
            log_warn("NO PRIVILEGE SEPARATION: the user labbook cannot be created (useradd "
                     "failed); the hub runs as root. Create it, or set [server] user = root to "
                     "silence this.");
            return 0;
        }
    }
    if (!pw) {
        log_error("[server] user = %s: no such user (create it with useradd --system %s, or set "
                  "user = root)",
                  h->cfg.user, h->cfg.user);
        return -1;
    }
    if (pw->pw_uid == 0)
        return 0;
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (!reachable_by(h->data_dir, uid, gid)) {
        /* /root/labbook/var, say: the user could not even reach its database. */
        log_warn("NO PRIVILEGE SEPARATION: the user %s cannot reach the data folder %s (a folder "
                 "above it is closed to others); the hub runs as root. Put the data folder "
                 "elsewhere ([server] data), or set [server] user = root to silence this.",
                 h->cfg.user, h->data_dir);
        return 0;
    }
    take_ownership(h, uid, gid);
    struct launcher_conf conf = {.data_dir = h->data_dir,
                                 .runtimes_dir = h->runtimes_dir,
                                 .drive_dir = h->drive_dir,
                                 .sock_path = h->sock_path,
                                 .self_exe = h->self_exe,
                                 .python_dir = h->cfg.python_path,
                                 .hub_uid = uid,
                                 .hub_gid = gid,
                                 .sandboxed = h->sandboxed};
    char *err = NULL;
    if (launcher_start(h, &conf, &err) < 0) {
        log_error("%s", err);
        free(err);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0 || setuid(0) == 0) {
        log_error("cannot become %s: %s", h->cfg.user, strerror(errno));
        return -1;
    }
    log_info("running as %s (uid %u); the launcher keeps root to start runtimes", h->cfg.user,
             (unsigned)uid);
    return 0;
}

/* A fresh install has no user: create "admin" and print a sign-in link. */
static int bootstrap_admin(struct hub *h)
{
    int64_t n = 0;
    if (store_user_count(h->store, &n) < 0)
        return -EIO;
    if (n > 0)
        return 0;
    int r = store_user_add(h->store, "admin", true, NULL);
    char *token = NULL;
    if (r == 0)
        r = store_token_create(h->store, "admin", &token);
    if (r < 0)
        return r;
    /* A wildcard address is reached at 127.0.0.1; an IPv6 literal needs brackets. */
    const char *host = strcmp(h->cfg.bind, "0.0.0.0") && strcmp(h->cfg.bind, "::") && *h->cfg.bind
                           ? h->cfg.bind
                           : "127.0.0.1";
    const char *lb = strchr(host, ':') ? "[" : "", *rb = *lb ? "]" : "";
    printf("\nlabbook: created the first user, \"admin\" (an administrator).\n"
           "Sign in by opening:\n\n    http://%s%s%s:%d/login?token=%s\n\n"
           "For JupyterLab or VS Code use the server URL http://%s%s%s:%d/ and that token.\n"
           "Set a password with: labbook user passwd admin\n\n",
           lb, host, rb, h->cfg.port, token, lb, host, rb, h->cfg.port);
    fflush(stdout);
    free(token);
    return 0;
}

int hub_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"bind", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *data = NULL, *port = NULL, *bind = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'b':
            bind = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();

    static struct hub hub;
    struct hub *h = &hub;
    char *err = NULL;
    int rc = 1;
    if (config_load(config_path, &h->cfg, &err) < 0) {
        fprintf(stderr, "labbook serve: %s\n", err);
        free(err);
        return 1;
    }
    log_set_level((enum log_level)h->cfg.log_level);
    if (data) {
        free(h->cfg.data_dir);
        h->cfg.data_dir = xstrdup(data);
    }
    if (bind) {
        free(h->cfg.bind);
        h->cfg.bind = xstrdup(bind);
    }
    if (port) {
        int64_t p;
        if (str_to_i64(port, 1, 65535, &p) < 0) {
            fprintf(stderr, "labbook serve: --port must be a number from 1 to 65535\n");
            return 2;
        }
        h->cfg.port = (int)p;
    }
    signal(SIGPIPE, SIG_IGN);

    h->data_dir = absolute(h->cfg.data_dir);
    h->drive_dir = xasprintf("%s/drive", h->data_dir);
    h->runtimes_dir = xasprintf("%s/runtimes", h->data_dir);
    char *run_dir = xasprintf("%s/run", h->data_dir);
    h->sock_path = xasprintf("%s/hub.sock", run_dir);
    int r = mkdir_p(h->data_dir, 0700);
    if (!r)
        r = mkdir_p(h->drive_dir, 0711);
    if (!r)
        r = mkdir_p(h->runtimes_dir, 0700);
    if (!r)
        r = mkdir_p(run_dir, 0700);
    free(run_dir);
    if (r < 0) {
        log_error("cannot create the data folder %s: %s", h->data_dir, strerror(-r));
        return 1;
    }
    char *real = realpath(h->data_dir, NULL);
    if (real && strcmp(real, h->data_dir)) { /* "./var" reads better as /srv/x/var */
        free(h->data_dir);
        free(h->drive_dir);
        free(h->runtimes_dir);
        free(h->sock_path);
        h->data_dir = real;
        h->drive_dir = xasprintf("%s/drive", real);
        h->runtimes_dir = xasprintf("%s/runtimes", real);
        h->sock_path = xasprintf("%s/run/hub.sock", real);
    } else {
        free(real);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        log_error("cannot find this program's path: %s", strerror(errno));
        return 1;
    }
    exe[n] = '\0';
    h->self_exe = xstrdup(exe);

    if (h->cfg.sandbox) {
        struct sandbox_error serr = {0};
        if (sandbox_supported(&serr) < 0) {
            log_warn("RUNTIMES ARE NOT SANDBOXED: %s. Every user's code runs with this server's "
                     "rights; run labbook as root, or allow user namespaces.",
                     serr.msg);
        } else {
            h->sandboxed = true;
            log_info("runtimes run in sandboxes");
        }
    } else {
        log_warn("RUNTIMES ARE NOT SANDBOXED ([runtimes] sandbox = 0): every user's code runs "
                 "with this server's rights");
    }
    if (separate_privileges(h) < 0)
        return 1;

    char *dbpath = xasprintf("%s/labbook.db", h->data_dir);
    r = store_open(dbpath, &h->store, &err);
    free(dbpath);
    if (r < 0) {
        log_error("cannot open the database: %s", err ? err : strerror(-r));
        free(err);
        return 1;
    }
    if (secrets_open(h, &err) < 0) {
        /* Everything else works; /api/secrets and userdata.get() say why they cannot. */
        log_error("users' secrets are unavailable: %s", err);
        free(err);
        err = NULL;
    }
    r = gpu_provider_open(h->cfg.gpu_provider, &h->gpus, &err);
    if (r < 0) {
        log_error("GPUs: %s", err ? err : strerror(-r));
        free(err);
        return 1;
    }
    if (h->gpus->note)
        log_info("GPUs: none (%s)", h->gpus->note);
    for (size_t i = 0; i < h->gpus->n; i++)
        log_info("GPU %zu: %s (%s)", i, h->gpus->gpus[i].name, h->gpus->gpus[i].uuid);
    if (h->gpus->n > 0)
        config_add_gpu_profile(&h->cfg);
    h->sched = scheduler_new((unsigned)h->gpus->n);
    h->drive = drive_new(h->data_dir);
    if (mkdir_p(h->drive->uploads_dir, 0700) < 0)
        log_warn("cannot create %s: uploads will fail", h->drive->uploads_dir);
    for (int i = 0; i < h->cfg.nprofiles; i++)
        if ((size_t)h->cfg.profiles[i].gpus > h->gpus->n)
            log_warn("runtime type \"%s\" needs %d GPUs; this server has %zu: starting it will "
                     "be refused",
                     h->cfg.profiles[i].name, h->cfg.profiles[i].gpus, h->gpus->n);
    if (config_path)
        h->config_path = realpath(config_path, NULL);
    struct stat pst;
    if (*h->cfg.python_path && (stat(h->cfg.python_path, &pst) < 0 || !S_ISDIR(pst.st_mode))) {
        log_warn("google.colab will not be importable in runtimes: \"%s\" is not a folder "
                 "(set [runtimes] python_path to labbook's python/ folder)",
                 h->cfg.python_path);
        h->cfg.python_path[0] = '\0';
    }
    if (kernelspec_scan(&h->specs, &h->nspecs) < 0 || h->nspecs == 0)
        log_warn("no kernelspecs found in the Jupyter data paths: install python3-ipykernel");

    h->loop = uv_default_loop();
    iso8601_now(h->started);
    hub_touch(h);
    launcher_attach(h);
    if (kernels_listen(h, &err) < 0) {
        log_error("%s", err);
        free(err);
        goto out;
    }
    if (http_start(h, &err) < 0) {
        log_error("%s", err);
        free(err);
        kernels_close(h); /* else the loop below would wait on it for ever */
        goto out;
    }
    kernels_adopt(h);
    sessions_load(h);
    extract_recover(h); /* before the sweep: it finishes what a crash cut off */
    leftovers_start(h);
    accounts_watch_start(h); /* also stops what a user deleted meanwhile left running */
    if (bootstrap_admin(h) < 0) {
        log_error("cannot create the first user");
        goto out;
    }
    uv_signal_init(h->loop, &h->sig_term);
    uv_signal_init(h->loop, &h->sig_int);
    h->sig_term.data = h->sig_int.data = h;
    uv_signal_start(&h->sig_term, on_signal, SIGTERM);
    uv_signal_start(&h->sig_int, on_signal, SIGINT);
    uv_timer_init(h->loop, &h->tick);
    h->tick.data = h;
    uv_timer_start(&h->tick, on_tick, 1000, 1000);
    char where[512];
    http_listening(where, sizeof(where)); /* what the sockets are, not what was asked */
    log_info("labbook %s listening on %s (data in %s, %zu kernelspecs)", "0.1.0", where,
             h->data_dir, h->nspecs);

    uv_run(h->loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    /* libwebsockets closes its own handles as the loop runs; then whatever is left. */
    launcher_close(h);
    http_destroy(h);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_walk(h->loop, close_walk, NULL);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
    contents_flush(); /* upload chunks already answered */
    secrets_close(h);
    store_close(h->store);
    kernelspec_list_free(h->specs, h->nspecs);
    scheduler_free(h->sched);
    drive_free(h->drive);
    gpu_provider_free(h->gpus);
    log_info("stopped");
    config_free(&h->cfg);
    free(h->data_dir);
    free(h->drive_dir);
    free(h->runtimes_dir);
    free(h->sock_path);
    free(h->self_exe);
    free(h->config_path);
    return rc;
}
