/* Runtimes as the Jupyter API sees them: kernels. Each kernel is one agent process
 * (`labbook agent`, started by the local backend) that dials back to the hub's
 * agent socket and relays the kernel's messages over one stream. This module owns
 * the kernel list, the agent connections, and each kernel's lifecycle. */
#ifndef LABBOOK_HUB_KERNELS_H
#define LABBOOK_HUB_KERNELS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"
#include "wire/stream.h"
#include "wire/wsframe.h"

struct hub;
struct client;
struct parked;
struct kwait;
struct kfile;

enum kernel_life {
    KERNEL_STARTING,
    KERNEL_RUNNING,
    KERNEL_RESTARTING,
    KERNEL_DEAD,
    KERNEL_STOPPING
};

#define KERNEL_ROUTES 1024

struct kernel {
    struct kernel *next;
    struct hub *hub;
    char id[40];
    char *spec_name;    /* as asked for: "python3-gpu" */
    char *base_spec;    /* the kernelspec it runs: "python3" */
    char profile[33];   /* the runtime type: "gpu" */
    char *cwd;          /* its working folder (absolute) */
    char *session_path; /* the notebook it serves, or NULL */
    unsigned gpus[64];  /* the GPUs it holds */
    unsigned ngpus;
    bool queued; /* waiting in the scheduler's queue for GPUs */
    uint64_t created_ms, idle_since_ms;
    bool lifetime_warned;
    bool adopted;   /* found again after a hub restart: its agent is not our child */
    bool detaching; /* the hub is stopping and leaves this runtime running */
    int agent_pid;  /* as the agent said in its hello */
    /* Its identity on the host when sandboxed: root inside is uid and gid
     * KERNEL_ID_BASE + id_slot * 65536 outside; no two live runtimes share a slot. */
    int id_slot;
    /* Pre-started and nobody's yet (owner 0): kernel_start hands it to the next user
     * who asks for the default type and kernel; claiming until their drive is bound. */
    bool pooled, claiming;
    /* The notebook this kernel runs, recorded server-side (nbdoc.h), and its saving. */
    struct nbdoc *doc;
    bool doc_tried, saving, doc_final_save;
    uint64_t last_save_ms;
    uv_work_t save_work;
    int64_t owner;
    char owner_name[64];
    char secret[65];
    enum kernel_life life;
    char execution_state[16];
    char *reason;
    char last_activity[32];
    uv_process_t proc;
    bool proc_running;
    bool proc_closed;
    uv_timer_t timer;
    bool timer_closed;
    struct agent_conn *agent;
    struct client *clients;
    struct parked *parked;
    struct kwait *waiters;
    /* which client session sent each recent request, to route its replies */
    struct {
        char msg_id[80];
        char session[80];
    } routes[KERNEL_ROUTES];
    unsigned route_next;
    /* Output is held back (the agent is not read) while a client's queue is over the
     * high-water mark, so a client that reads slowly slows the kernel's output
     * instead of the hub buffering it; one that stops reading is cut off. */
    bool throttled;
    /* Client messages that arrive while the kernel (re)starts, sent once it runs. */
    struct buf held;
    int held_count;
    /* File requests on its /content waiting for the agent's reply. */
    struct kfile *files;
    int64_t file_next;
    /* secrets.c: its requests for secrets, a token bucket. */
    double secret_tokens;
    uint64_t secret_at_ms;
};

#define KERNEL_ID_BASE 100000
#define KERNEL_ID_SLOTS 4096

/* kernel_start's answer when the kernel waits in the GPU queue. */
#define KERNEL_QUEUED 1

/* Called once when a start or restart finishes (err 0) or fails (err < 0 and a
 * reason), or when a shutdown completes. k may be NULL after a failed start. */
typedef void (*kernel_cb)(void *ctx, struct kernel *k, int err, const char *reason);

/* The launcher says the agent it started for runtime id (pid) ended with wait status. */
void kernels_agent_exited(struct hub *h, const char *id, int pid, int status);

/* Opens the agent socket. */
int kernels_listen(struct hub *h, char **err);
/* Starts a kernel from kernelspec spec_name (or a profile's variant of one,
 * "python3-gpu") for user u in directory cwd (absolute, inside the user's drive). cb
 * runs when it is ready or has failed. Returns 0 and *out; KERNEL_QUEUED and *out
 * when it waits for GPUs (cb is then never called: it starts when its turn comes); or
 * a negative errno with *err (caller frees): -ENOENT for an unknown kernelspec,
 * -E2BIG for a runtime type this server cannot hold, -EDQUOT when the user has as
 * many runtimes of that type as allowed. */
int kernel_start(struct hub *h, const struct user *u, const char *spec_name, const char *cwd,
                 const char *session_path, kernel_cb cb, void *ctx, struct kernel **out,
                 char **err);
void kernel_restart(struct kernel *k, kernel_cb cb, void *ctx);
/* Factory reset: as kernel_restart, but the agent moves the runtime's overlay and
 * /content aside (and removes them) once the old kernel has exited, before the new one
 * starts on fresh folders. */
void kernel_reset(struct kernel *k, kernel_cb cb, void *ctx);
void kernel_interrupt(struct kernel *k);
/* Shuts the kernel down; cb (may be NULL) runs when it is gone, after which k is freed. */
void kernel_shutdown(struct kernel *k, kernel_cb cb, void *ctx);
/* The user's kernel with this id, or NULL (also for another user's kernel). */
struct kernel *kernel_find(struct hub *h, const struct user *u, const char *id);
int kernel_count_clients(const struct kernel *k);
/* 1-based place in the GPU queue, or 0 when not queued. */
int kernel_queue_position(const struct kernel *k);
/* The notebook document of a kernel started for a notebook session (opened on first
 * use), or NULL. */
struct nbdoc *kernel_doc(struct kernel *k);
/* Tells the kernel's agent that the notebook has (or does not record) what the execute
 * request msg_id produced, so it need not keep it for a restarted hub. */
void kernel_recorded(struct kernel *k, const char *msg_id);
/* The session's notebook was renamed. */
void kernel_set_session_path(struct kernel *k, const char *path);
/* Once a second: idle culling, maximum lifetime, and their warnings. */
void kernels_tick(struct hub *h);
/* The /api/kernels model. New reference. */
json_t *kernel_model(const struct kernel *k);
/* Shuts down every runtime whose user has been disabled or deleted. */
void kernels_stop_disowned(struct hub *h);
/* Shutdown of the hub: every kernel is shut down. */
void kernels_shutdown_all(struct hub *h);
/* Restart of the hub: kernels are left running (their agents wait for the hub to
 * return) and only the hub's handles on them are released. */
void kernels_detach_all(struct hub *h);
/* At start: takes back the runtimes a previous hub left running (from the store). */
void kernels_adopt(struct hub *h);
void kernels_close(struct hub *h);

/* For channels.c: stops or resumes reading the kernel's output from its agent. */
void kernel_set_throttle(struct kernel *k, bool on);
/* For channels.c: a v1-serialized message from a client, to the agent. */
int kernel_send_to_agent(struct kernel *k, enum stream_type type, const void *data, size_t len);
void kernel_touch(struct kernel *k);

/* The agent's answer to a file request: err 0 and its reply (the JSON header,
 * borrowed) with data (borrowed) for a read; or err -ENOTCONN with reply NULL when
 * the agent went away first. */
typedef void (*kernel_file_cb)(void *ctx, int err, json_t *reply, const uint8_t *data, size_t len);
/* Sends a STREAM_FILE request {"op": op, "path": path} (data for a "write") to the
 * runtime's agent. Returns the request's id (> 0), after which cb runs exactly once
 * unless kernel_file_cancel forgets it; or a negative errno (-ENOTCONN: no agent;
 * -EMSGSIZE: over the stream's frame size; -ENOBUFS: the stream is backed up), and
 * cb never runs. */
int64_t kernel_file_request(struct kernel *k, const char *op, const char *path, const void *data,
                            size_t len, kernel_file_cb cb, void *ctx);
/* Forgets a file request (timed out): its cb will not run. */
void kernel_file_cancel(struct kernel *k, int64_t id);

#endif
