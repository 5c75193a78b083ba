/* Loading labbook.ini with inih into struct config, defaults first. */
#include "common/config.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

struct load_ctx {
    struct config *cfg;
    char *err;
};

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
    return 0;
}

static int set_int(int64_t *dst, const char *v, int64_t min, int64_t max, int64_t unit)
{
    int64_t x;
    if (str_to_i64(v, min, max, &x) < 0)
        return -1;
    *dst = x * unit;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = user;
    struct config *cfg = c->cfg;
    const int64_t MB = 1024 * 1024;
    int64_t v = 0;
    int r = -2;
    if (!strcmp(section, "server")) {
        if (!strcmp(name, "bind"))
            r = set_str(&cfg->bind, value);
        else if (!strcmp(name, "port")) {
            r = set_int(&v, value, 0, 65535, 1);
            cfg->port = (int)v;
        } else if (!strcmp(name, "data"))
            r = set_str(&cfg->data_dir, value);
        else if (!strcmp(name, "max_body_mb"))
            r = set_int(&cfg->max_body, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "max_ws_message_mb"))
            r = set_int(&cfg->max_ws_message, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "ws_queue_mb"))
            r = set_int(&cfg->ws_queue_max, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "max_file_mb"))
            r = set_int(&cfg->max_file_get, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "cookie_max_age_days"))
            r = set_int(&cfg->cookie_max_age, value, 1, 3650, 86400);
        else if (!strcmp(name, "log_level")) {
            static const char *levels[] = {"debug", "info", "warn", "error"};
            for (int i = 0; i < 4; i++)
                if (!strcmp(value, levels[i]))
                    cfg->log_level = i, r = 0;
            if (r)
                r = -1;
        }
    } else if (!strcmp(section, "kernels")) {
        if (!strcmp(name, "default"))
            r = set_str(&cfg->default_kernel, value);
        else if (!strcmp(name, "start_timeout_s")) {
            r = set_int(&v, value, 1, 3600, 1);
            cfg->start_timeout_s = (int)v;
        } else if (!strcmp(name, "max_message_mb"))
            r = set_int(&cfg->agent_max_frame, value, 1, 4095, MB);
        else if (!strcmp(name, "replay_mb"))
            r = set_int(&cfg->replay_max, value, 0, 1 << 20, MB);
        else if (!strcmp(name, "replay_keep_s")) {
            r = set_int(&v, value, 0, 86400 * 7, 1);
            cfg->replay_keep_s = (int)v;
        }
    }
    if (r == -2) {
        c->err = xasprintf("unknown key [%s] %s", section, name);
        return 0;
    }
    if (r < 0) {
        c->err = xasprintf("[%s] %s: impossible value \"%s\"", section, name, value);
        return 0;
    }
    return 1;
}

int config_load(const char *path, struct config *cfg, char **err)
{
    const int64_t MB = 1024 * 1024;
    memset(cfg, 0, sizeof(*cfg));
    cfg->bind = xstrdup("127.0.0.1");
    cfg->port = 8888;
    cfg->data_dir = xstrdup("./var");
    cfg->max_body = 256 * MB;
    cfg->max_ws_message = 256 * MB;
    cfg->ws_queue_max = 512 * MB;
    cfg->max_file_get = 1024 * MB;
    cfg->cookie_max_age = 14 * 86400;
    cfg->log_level = LOG_INFO;
    cfg->default_kernel = xstrdup("python3");
    cfg->start_timeout_s = 60;
    cfg->agent_max_frame = 1024 * MB;
    cfg->replay_max = 64 * MB;
    cfg->replay_keep_s = 300;
    if (!path)
        return 0;
    struct load_ctx c = {.cfg = cfg};
    int r = ini_parse(path, on_key, &c);
    if (r == -1) {
        int e = errno;
        *err = xasprintf("cannot read config %s: %s", path, strerror(e));
        return -e;
    }
    if (r != 0) {
        *err = xasprintf("config %s line %d: %s", path, r, c.err ? c.err : "syntax error");
        free(c.err);
        return -EINVAL;
    }
    return 0;
}

void config_free(struct config *cfg)
{
    free(cfg->bind);
    free(cfg->data_dir);
    free(cfg->default_kernel);
    memset(cfg, 0, sizeof(*cfg));
}
