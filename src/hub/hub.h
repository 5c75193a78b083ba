/* The hub: `labbook serve`. One libuv loop carrying libwebsockets (HTTP, WebSocket),
 * the agent socket, signals and timers. It owns the store, the kernelspecs, the
 * runtimes (kernels) and the Jupyter sessions. */
#ifndef LABBOOK_HUB_HUB_H
#define LABBOOK_HUB_HUB_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "hub/kernelspec.h"
#include "store/store.h"

struct kernel;
struct session;
struct gpu_provider;
struct scheduler;
struct drive;

struct hub {
    uv_loop_t *loop;
    struct config cfg;
    struct store *store;
    char *data_dir;     /* absolute */
    char *drive_dir;    /* DATA/drive */
    char *runtimes_dir; /* DATA/runtimes */
    char *sock_path;    /* DATA/run/hub.sock: where agents dial in */
    char *self_exe;     /* this binary, to start agents */
    struct kernelspec *specs;
    size_t nspecs;
    struct gpu_provider *gpus;
    bool sandboxed;    /* kernels run in sandboxes (docs/sandbox.md) */
    char *config_path; /* absolute path of labbook.ini, hidden from runtimes; or NULL */
    struct scheduler *sched;
    struct launcher *launcher; /* started as root: the root half that starts runtimes */
    struct drive *drive;       /* usage, uploads, extractions (docs/drive.md) */
    struct lws_context *lws;
    uv_pipe_t agent_listener;
    uv_signal_t sig_term, sig_int;
    uv_timer_t tick;
    uv_timer_t accounts_watch; /* accounts.c */
    struct kernel *kernels;
    struct session *sessions;
    bool stopping;
    char started[32];
    char last_activity[32];
    int http_connections;
    uint64_t pool_retry_ms;     /* no new pool runtime before this (after a failure) */
    unsigned char *secrets_key; /* secrets.c: sealing users' secrets (sodium_malloc); or NULL */
};

/* `labbook serve [--config FILE] [--data DIR] [--port N] [--bind ADDR]`. */
int hub_main(int argc, char **argv);

/* The user's drive folder, created if missing (0700). Caller frees. */
char *hub_user_drive(struct hub *h, const struct user *u);
/* Marks activity now (for /api/status). */
void hub_touch(struct hub *h);
/* Starts the orderly shutdown (SIGTERM). */
void hub_stop(struct hub *h);
/* Called by the kernel layer when the last kernel is gone during shutdown. */
void hub_maybe_finish_stop(struct hub *h);

#endif
