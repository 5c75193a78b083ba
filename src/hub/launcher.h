/* Privilege separation. Started as root, the hub forks the launcher, a small process
 * that stays root and does only what needs root: start runtime agents (which build
 * sandboxes), signal them, and remove runtime folders. The hub then drops to
 * an unprivileged user and asks the launcher for these over a socket pair, in typed,
 * versioned, size-checked messages; the launcher checks each (an agent's config must
 * describe a sandbox in this data folder) and refuses anything else. docs/launcher.md. */
#ifndef LABBOOK_HUB_LAUNCHER_H
#define LABBOOK_HUB_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hub;

#define LAUNCHER_VERSION 1
#define LAUNCHER_MAX_MSG (256 * 1024)
#define LAUNCHER_ID_LEN 40 /* a runtime id, NUL-padded */

enum launcher_type {
    /* hub -> launcher */
    LAUNCHER_SPAWN = 1,  /* id, then the agent's config (JSON): start its agent */
    LAUNCHER_SIGNAL = 2, /* id, i32 pid, i32 signal: signal that runtime's agent */
    LAUNCHER_REMOVE = 3, /* id: unmount its disk and remove its folder */
    /* 4 was RESET: a factory reset is the agent's now (STREAM_RESET), done once the old
       kernel has exited */
    /* launcher -> hub */
    LAUNCHER_REPLY = 100,  /* i32 result (a pid, 0, or a negative errno), then a message */
    LAUNCHER_EXITED = 101, /* id, i32 pid, i32 wait status: an agent it started ended */
};

struct launcher_hdr {
    uint16_t version;
    uint16_t type;
    uint32_t seq; /* a reply carries its request's */
    uint32_t len; /* payload bytes after the header */
};

/* What the launcher knows of the hub's folders (fixed when it starts). */
struct launcher_conf {
    const char *data_dir, *runtimes_dir, *drive_dir, *sock_path, *self_exe;
    const char *python_dir; /* the one folder a sandbox may have bound as google.colab's */
    uid_t hub_uid;          /* agents of unsandboxed runtimes run as the hub's user */
    gid_t hub_gid;
    bool sandboxed;
};

/* Checks an agent config for runtime id against conf: a sandbox in the runtime's own
 * folder, the drive of one user of this data folder (by name: "drive_user", a user name
 * whose drive/<name> is a real folder beneath conf->data_dir, resolved here without
 * following a link), the data folder masked, GPU device nodes only. Returns 0, or
 * -EINVAL with *why (caller frees). */
int launcher_check_config(const struct launcher_conf *conf, const char *id, const char *json,
                          size_t len, char **why);

/* Opens DATA/drive/<user> (O_PATH) as the root side does: user must pass the user-name
 * rule, and each name is resolved beneath data_dir with no link followed, so it is a
 * real folder of this data folder. Returns an fd or a negative errno.
 * The agent binds a drive through such an fd, never through a path it was sent. */
int launcher_open_drive(const char *data_dir, const char *user);

/* Whether s is a runtime id (a lowercase UUID). */
bool launcher_valid_id(const char *s);

/* Forks the launcher (call as root, before dropping privileges and before the loop
 * runs). Returns 0, or a negative errno with *err set. */
int launcher_start(struct hub *h, const struct launcher_conf *conf, char **err);
/* Starts reading the launcher's messages on the hub's loop. */
void launcher_attach(struct hub *h);
/* Closes the hub's end: the launcher exits (agents keep running). */
void launcher_close(struct hub *h);

/* Called with a request's outcome: result is the launcher's (pid, 0 or -errno). */
typedef void (*launcher_cb)(void *ctx, int result, const char *message);

/* Requests; each returns 0 once sent, or a negative errno (then cb is not called). */
int launcher_spawn(struct hub *h, const char *id, const char *config_json, launcher_cb cb,
                   void *ctx);
int launcher_signal(struct hub *h, const char *id, int pid, int sig);
int launcher_remove(struct hub *h, const char *id);

#endif
