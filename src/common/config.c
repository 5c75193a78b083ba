/* Loading labbook.ini with inih into struct config, defaults first. */
#include "common/config.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#ifndef LABBOOK_PYTHON_DIR /* set by CMake: the source tree's python/ folder */
#define LABBOOK_PYTHON_DIR "/usr/lib/labbook/python"
#endif
#ifndef LABBOOK_WEB_DIR /* set by CMakeLists.txt: the source tree's web/dist */
#define LABBOOK_WEB_DIR "web/dist"
#endif

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

/* A number of days from 0 to max, fractions allowed (tests use a few seconds), into
 * seconds: a positive figure is at least 1 s. */
static int set_days(int64_t *dst, const char *v, double max)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0 && d <= max))
        return -1;
    int64_t s = (int64_t)(d * 86400 + 0.5);
    *dst = d > 0 && s == 0 ? 1 : s;
    return 0;
}

static struct profile *profile_get(struct config *cfg, const char *name, bool create)
{
    for (int i = 0; i < cfg->nprofiles; i++)
        if (!strcmp(cfg->profiles[i].name, name))
            return &cfg->profiles[i];
    if (!create)
        return NULL;
    cfg->profiles = xrealloc(cfg->profiles, (size_t)(cfg->nprofiles + 1) * sizeof(struct profile));
    struct profile *p = &cfg->profiles[cfg->nprofiles++];
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    *p = (struct profile){.name = xstrdup(name),
                          .display_name = xstrdup(!strcmp(name, "cpu")   ? "CPU"
                                                  : !strcmp(name, "gpu") ? "GPU"
                                                                         : name),
                          .gpus = !strcmp(name, "gpu") ? 1 : 0,
                          .memory = pages > 0 && psize > 0 ? (int64_t)pages * psize / 4 : 0,
                          .cpu_shares = 1024,
                          .pids = 4096,
                          .idle_timeout_s = 5400,
                          .max_lifetime_s = 43200,
                          .max_per_user = !strcmp(name, "gpu") ? 1 : 4,
                          .network = 1};
    return p;
}

static bool profile_name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 32)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_' || *n == '-'))
            return false;
    return true;
}

static int on_profile_key(struct config *cfg, const char *pname, const char *name,
                          const char *value)
{
    const int64_t MB = 1024 * 1024;
    if (!profile_name_valid(pname))
        return -1;
    struct profile *p = profile_get(cfg, pname, true);
    int64_t v = 0;
    int r = -2;
    if (!strcmp(name, "display_name"))
        r = set_str(&p->display_name, value);
    else if (!strcmp(name, "gpus")) {
        r = set_int(&v, value, 0, 64, 1);
        p->gpus = (int)v;
    } else if (!strcmp(name, "memory_mb"))
        r = set_int(&p->memory, value, 0, INT64_MAX / MB, MB);
    else if (!strcmp(name, "cpu_shares")) {
        r = set_int(&v, value, 2, 262144, 1);
        p->cpu_shares = (int)v;
    } else if (!strcmp(name, "disk_mb"))
        r = set_int(&p->disk, value, 0, INT64_MAX / MB, MB);
    else if (!strcmp(name, "pids")) {
        r = set_int(&v, value, 0, 1 << 22, 1);
        p->pids = (int)v;
    } else if (!strcmp(name, "idle_timeout_s")) {
        r = set_int(&v, value, 0, 86400 * 365, 1);
        p->idle_timeout_s = (int)v;
    } else if (!strcmp(name, "max_lifetime_s")) {
        r = set_int(&v, value, 0, 86400 * 365, 1);
        p->max_lifetime_s = (int)v;
    } else if (!strcmp(name, "max_per_user")) {
        r = set_int(&v, value, 0, 1000, 1);
        p->max_per_user = (int)v;
    } else if (!strcmp(name, "network")) {
        r = set_int(&v, value, 0, 1, 1);
        p->network = (int)v;
    }
    return r;
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
        else if (!strcmp(name, "user"))
            r = *value ? set_str(&cfg->user, value) : -1;
        else if (!strcmp(name, "web_dir"))
            r = set_str(&cfg->web_dir, value);
        else if (!strcmp(name, "max_body_mb"))
            r = set_int(&cfg->max_body, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "max_ws_message_mb"))
            r = set_int(&cfg->max_ws_message, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "ws_queue_mb"))
            r = set_int(&cfg->ws_queue_max, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "ws_stall_s")) {
            r = set_int(&v, value, 1, 3600, 1);
            cfg->ws_stall_s = (int)v;
        } else if (!strcmp(name, "max_file_mb"))
            r = set_int(&cfg->max_file_get, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "max_notebook_mb"))
            r = set_int(&cfg->max_notebook, value, 1, 1 << 20, MB);
        else if (!strcmp(name, "cookie_max_age_days"))
            r = set_int(&cfg->cookie_max_age, value, 1, 3650, 86400);
        else if (!strcmp(name, "login_failures_per_user")) {
            r = set_int(&v, value, 1, 1000000, 1);
            cfg->login_user_failures = (int)v;
        } else if (!strcmp(name, "login_failures_per_address")) {
            r = set_int(&v, value, 1, 1000000, 1);
            cfg->login_addr_failures = (int)v;
        } else if (!strcmp(name, "login_failure_window_s")) {
            r = set_int(&v, value, 1, 86400 * 30, 1);
            cfg->login_window_s = (int)v;
        } else if (!strcmp(name, "login_hashes_at_once")) {
            r = set_int(&v, value, 1, 64, 1);
            cfg->login_hashes = (int)v;
        } else if (!strcmp(name, "log_level")) {
            static const char *levels[] = {"debug", "info", "warn", "error"};
            for (int i = 0; i < 4; i++)
                if (!strcmp(value, levels[i]))
                    cfg->log_level = i, r = 0;
            if (r)
                r = -1;
        }
    } else if (str_starts_with(section, "profile.")) {
        r = on_profile_key(cfg, section + 8, name, value);
    } else if (!strcmp(section, "runtimes")) {
        if (!strcmp(name, "gpus")) {
            if (!strcmp(value, "nvml") || !strcmp(value, "none") ||
                (str_starts_with(value, "fake:") && str_to_i64(value + 5, 0, 64, &v) == 0))
                r = set_str(&cfg->gpu_provider, value);
            else
                r = -1;
        } else if (!strcmp(name, "sandbox")) {
            r = set_int(&v, value, 0, 1, 1);
            cfg->sandbox = (int)v;
        } else if (!strcmp(name, "orphan_timeout_s")) {
            r = set_int(&v, value, 0, 86400 * 30, 1);
            cfg->orphan_timeout_s = (int)v;
        } else if (!strcmp(name, "keep_mb")) {
            r = set_int(&v, value, 1, 4096, 1);
            cfg->keep_mb = (int)v;
        } else if (!strcmp(name, "pool")) {
            r = set_int(&v, value, 0, 64, 1);
            cfg->pool = (int)v;
        } else if (!strcmp(name, "python_path")) {
            r = value[0] == '/' || !value[0] ? set_str(&cfg->python_path, value) : -1;
        }
    } else if (!strcmp(section, "drive")) {
        if (!strcmp(name, "quota_mb"))
            r = set_int(&cfg->drive_quota, value, 0, INT64_MAX / MB, MB);
        else if (!strcmp(name, "max_upload_mb"))
            r = set_int(&cfg->upload_max, value, 1, INT64_MAX / MB, MB);
        else if (!strcmp(name, "max_uploads_per_user")) {
            r = set_int(&v, value, 1, 10000, 1);
            cfg->uploads_per_user = (int)v;
        } else if (!strcmp(name, "upload_expire_h")) {
            r = set_int(&v, value, 1, 24 * 365, 1);
            cfg->upload_expire_s = (int)v * 3600;
        } else if (!strcmp(name, "extract_max_mb"))
            r = set_int(&cfg->extract_max, value, 1, INT64_MAX / MB, MB);
        else if (!strcmp(name, "extract_max_entries"))
            r = set_int(&cfg->extract_max_entries, value, 1, 100000000, 1);
        else if (!strcmp(name, "extract_max_entry_mb"))
            r = set_int(&cfg->extract_max_entry, value, 1, INT64_MAX / MB, MB);
        else if (!strcmp(name, "extract_max_ratio"))
            r = set_int(&cfg->extract_max_ratio, value, 1, 1000000, 1);
        else if (!strcmp(name, "max_extracts_per_user")) {
            r = set_int(&v, value, 1, 1000, 1);
            cfg->extracts_per_user = (int)v;
        } else if (!strcmp(name, "trash_days"))
            r = set_days(&cfg->trash_s, value, 3650);
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
    cfg->web_dir = xstrdup(LABBOOK_WEB_DIR);
    cfg->max_body = 256 * MB;
    cfg->max_ws_message = 256 * MB;
    cfg->ws_queue_max = 512 * MB;
    cfg->ws_stall_s = 30;
    cfg->max_file_get = 1024 * MB;
    cfg->max_notebook = 100 * MB;
    cfg->cookie_max_age = 14 * 86400;
    cfg->login_user_failures = 10;
    cfg->login_addr_failures = 50;
    cfg->login_window_s = 600;
    cfg->login_hashes = 2;
    cfg->log_level = LOG_INFO;
    cfg->default_kernel = xstrdup("python3");
    cfg->start_timeout_s = 60;
    cfg->agent_max_frame = 1024 * MB;
    cfg->replay_max = 64 * MB;
    cfg->replay_keep_s = 300;
    cfg->gpu_provider = xstrdup("nvml");
    cfg->sandbox = 1;
    cfg->orphan_timeout_s = 3600;
    cfg->keep_mb = 64;
    cfg->pool = 1;
    cfg->user = xstrdup("labbook");
    cfg->python_path = xstrdup(LABBOOK_PYTHON_DIR);
    cfg->drive_quota = 0;
    cfg->upload_max = 102400 * MB;
    cfg->uploads_per_user = 16;
    cfg->upload_expire_s = 24 * 3600;
    cfg->extract_max = 20480 * MB;
    cfg->extract_max_entries = 200000;
    cfg->extract_max_entry = 10240 * MB;
    cfg->extract_max_ratio = 1000;
    cfg->extracts_per_user = 4;
    cfg->trash_s = 30 * 86400;
    profile_get(cfg, "cpu", true);
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

const struct profile *config_profile(const struct config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nprofiles; i++)
        if (!strcmp(cfg->profiles[i].name, name))
            return &cfg->profiles[i];
    return NULL;
}

void config_add_gpu_profile(struct config *cfg)
{
    profile_get(cfg, "gpu", true);
}

void config_free(struct config *cfg)
{
    for (int i = 0; i < cfg->nprofiles; i++) {
        free(cfg->profiles[i].name);
        free(cfg->profiles[i].display_name);
    }
    free(cfg->profiles);
    free(cfg->gpu_provider);
    free(cfg->bind);
    free(cfg->data_dir);
    free(cfg->web_dir);
    free(cfg->default_kernel);
    free(cfg->user);
    free(cfg->python_path);
    memset(cfg, 0, sizeof(*cfg));
}
