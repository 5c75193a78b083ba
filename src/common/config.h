/* labbook.ini: every key has a default, so no file is needed to start. Unknown
 * sections or keys and impossible values are refused with a message naming the
 * line. See docs/config.md for the keys. */
#ifndef LABBOOK_COMMON_CONFIG_H
#define LABBOOK_COMMON_CONFIG_H

#include <stdint.h>

struct config {
    /* [server] */
    char *bind;             /* bind = 127.0.0.1 */
    int port;               /* port = 8888 */
    char *data_dir;         /* data = ./var */
    int64_t max_body;       /* max_body_mb = 256: largest HTTP request body */
    int64_t max_ws_message; /* max_ws_message_mb = 256: largest WebSocket message from a client */
    int64_t ws_queue_max;   /* ws_queue_mb = 512: unsent bytes a client may have queued */
    int64_t max_file_get;   /* max_file_mb = 1024: largest file the contents API returns whole */
    int64_t cookie_max_age; /* cookie_max_age_days = 14 */
    int log_level;          /* log_level = info (debug, info, warn, error) */
    /* [kernels] */
    char *default_kernel;    /* default = python3 */
    int start_timeout_s;     /* start_timeout_s = 60 */
    int64_t agent_max_frame; /* max_message_mb = 1024: largest kernel message relayed */
    int64_t replay_max;      /* replay_mb = 64: messages kept for a disconnected client */
    int replay_keep_s;       /* replay_keep_s = 300: how long they are kept */
};

/* Fills cfg with the defaults, then reads path if non-NULL. Returns 0, or a negative
 * errno with *err (caller frees) saying what is wrong and where. */
int config_load(const char *path, struct config *cfg, char **err);
void config_free(struct config *cfg);

#endif
