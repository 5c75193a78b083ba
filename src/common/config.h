/* labbook.ini: every key has a default, so no file is needed to start. Unknown
 * sections or keys and impossible values are refused with a message naming the
 * line. See docs/config.md for the keys. */
#ifndef LABBOOK_COMMON_CONFIG_H
#define LABBOOK_COMMON_CONFIG_H

#include <stdint.h>

/* A runtime type, [profile.NAME]. Limits of 0 mean "none". */
struct profile {
    char *name;         /* [a-z0-9_-]{1,32} */
    char *display_name; /* display_name = CPU / GPU / the name */
    int gpus;           /* gpus = 0 */
    int64_t memory;     /* memory_mb: bytes; default 1/4 of the host's memory */
    int cpu_shares;     /* cpu_shares = 1024 (relative weight) */
    int64_t disk;       /* disk_mb = 0: quota of /content, bytes */
    int pids;           /* pids = 4096: most processes at once */
    int idle_timeout_s; /* idle_timeout_s = 5400 (90 min, as Colab) */
    int max_lifetime_s; /* max_lifetime_s = 43200 (12 h, as Colab) */
    int max_per_user;   /* max_per_user = 4 (gpu: 1): runtimes of this type a user may hold */
    int network;        /* network = 1: the runtime reaches the network */
};

struct config {
    /* [server] */
    char *bind;             /* bind = 127.0.0.1 */
    int port;               /* port = 8888 */
    char *data_dir;         /* data = ./var */
    int64_t max_body;       /* max_body_mb = 256: largest HTTP request body */
    int64_t max_ws_message; /* max_ws_message_mb = 256: largest WebSocket message from a client */
    int64_t ws_queue_max;   /* ws_queue_mb = 512: unsent bytes a client may have queued */
    int ws_stall_s;         /* ws_stall_s = 30: a client with output to take that takes none
                               for this long is cut off */
    int64_t max_file_get;   /* max_file_mb = 1024: largest file the contents API returns whole */
    int64_t max_notebook;   /* max_notebook_mb = 100: largest notebook saved, read or recorded */
    int64_t cookie_max_age; /* cookie_max_age_days = 14 */
    int log_level;          /* log_level = info (debug, info, warn, error) */
    char *user;             /* user = labbook: started as root, the hub runs as this user and a
                               launcher keeps root (docs/launcher.md); "root": no separation */
    char *web_dir;          /* web_dir = the built UI (web/dist of the source tree) */
    /* [server] sign-in limits (docs/hub.md, "Signing in") */
    int login_user_failures; /* login_failures_per_user = 10: failed sign-ins per name per window */
    int login_addr_failures; /* login_failures_per_address = 50: per client address per window */
    int login_window_s;      /* login_failure_window_s = 600 */
    int login_hashes;        /* login_hashes_at_once = 2: argon2id checks run at once */
    /* [kernels] */
    char *default_kernel;    /* default = python3 */
    int start_timeout_s;     /* start_timeout_s = 60 */
    int64_t agent_max_frame; /* max_message_mb = 1024: largest kernel message relayed */
    int64_t replay_max;      /* replay_mb = 64: messages kept for a disconnected client */
    int replay_keep_s;       /* replay_keep_s = 300: how long they are kept */
    /* [runtimes] */
    char *gpu_provider;   /* gpus = nvml | none | fake:N */
    int sandbox;          /* sandbox = 1 (0: run kernels unsandboxed, with a warning) */
    int orphan_timeout_s; /* orphan_timeout_s = 3600: how long a runtime waits for a
                             restarted hub (0: runtimes end with the hub) */
    int keep_mb;          /* keep_mb = 64: what an agent keeps of running cells' output
                             for a restarted hub (docs/reliability.md) */
    int pool;             /* pool = 1: pre-started runtimes of the default type and kernel,
                             handed to the next user who asks (sandboxed hubs only) */
    char *python_path;    /* python_path = the source tree's python/: the google.colab
                             package, put first on every kernel's PYTHONPATH ("": none) */
    /* [drive] (docs/drive.md) */
    int64_t drive_quota;         /* quota_mb = 0: bytes a user's drive may hold (0: no quota) */
    int64_t upload_max;          /* max_upload_mb = 102400: largest resumable upload */
    int uploads_per_user;        /* max_uploads_per_user = 16: unfinished uploads at once */
    int upload_expire_s;         /* upload_expire_h = 24: an idle unfinished upload is deleted */
    int64_t extract_max;         /* extract_max_mb = 20480: bytes one archive may unpack to */
    int64_t extract_max_entries; /* extract_max_entries = 200000 */
    int64_t extract_max_entry;   /* extract_max_entry_mb = 10240: largest file in an archive */
    int64_t extract_max_ratio;   /* extract_max_ratio = 1000: unpacked bytes per archive byte */
    int extracts_per_user;       /* max_extracts_per_user = 4: extractions running at once */
    int64_t trash_s;             /* trash_days = 30: a deleted item stays in the trash that long,
                                    in seconds (fractions of a day allowed; 0: no trash) */
    /* [profile.*]: "cpu" always exists and comes first; "gpu" is added when the
     * host has GPUs and the file does not define it. */
    struct profile *profiles;
    int nprofiles;
};

/* The profile of that name, or NULL. */
const struct profile *config_profile(const struct config *cfg, const char *name);
/* Adds the default "gpu" profile if there is none (called once GPUs are known). */
void config_add_gpu_profile(struct config *cfg);

/* Fills cfg with the defaults, then reads path if non-NULL. Returns 0, or a negative
 * errno with *err (caller frees) saying what is wrong and where. */
int config_load(const char *path, struct config *cfg, char **err);
void config_free(struct config *cfg);

#endif
