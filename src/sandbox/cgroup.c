/* cgroup v2 and v1 backends for a runtime's limits and death counters, chosen by what
 * is mounted at /sys/fs/cgroup (cgroup2: v2; a tmpfs of per-controller hierarchies: v1). */
#include "sandbox/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/util.h"

#define CG_PARENT "labbook"

static int write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(s);
    ssize_t w = write(fd, s, n);
    int r = w == (ssize_t)n ? 0 : w < 0 ? -errno : -EIO;
    close(fd);
    return r;
}

static int write_u64(const char *path, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof(b), "%" PRIu64, v);
    return write_str(path, b);
}

int cgroup_read_key(const char *path, const char *key, uint64_t *out)
{
    char *s = NULL;
    size_t len = 0;
    int r = read_file(path, 1 << 20, &s, &len);
    if (r < 0)
        return r;
    r = -ENOENT;
    size_t kl = strlen(key);
    for (char *line = s; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            int64_t v;
            if (str_to_i64(line + kl + 1, 0, INT64_MAX, &v) == 0) {
                *out = (uint64_t)v;
                r = 0;
            }
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    return r;
}

/* Kills everything listed in dir/cgroup.procs, then removes dir, retrying while the
 * dying processes leave. */
static void kill_and_rmdir(const char *dir)
{
    char *procs = xasprintf("%s/cgroup.procs", dir);
    for (int i = 0; i < 100; i++) {
        char *s = NULL;
        size_t len = 0;
        if (read_file(procs, 1 << 20, &s, &len) == 0) {
            for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = 0;
                int64_t pid;
                if (str_to_i64(line, 1, INT32_MAX, &pid) == 0)
                    kill((pid_t)pid, SIGKILL);
                line = nl ? nl + 1 : NULL;
            }
            free(s);
        }
        if (rmdir(dir) == 0 || errno == ENOENT)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(procs);
}

/* ---- v2 ---- */

static int v2_enable(const char *dir, struct sandbox_error *err)
{
    static const char *const ctl[] = {"+memory", "+pids", "+cpu"};
    char *p = xasprintf("%s/cgroup.subtree_control", dir);
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(ctl); i++) {
        int w = write_str(p, ctl[i]);
        if (w < 0 && i < 2) { /* cpu is optional (busy with realtime tasks on some hosts) */
            sandbox_set_error(err, -w, "cgroup: enable %s in %s", ctl[i] + 1, p);
            r = w;
            break;
        }
    }
    free(p);
    return r;
}

static int v2_create(struct cgroup *cg, const struct cgroup_limits *l, struct sandbox_error *err)
{
    char *parent = xasprintf("%s/" CG_PARENT, cg->root);
    char *dir = xasprintf("%s/%s", cg->root, cg->rel);
    char *f = NULL;
    int r;
    if ((r = v2_enable(cg->root, err)) < 0)
        goto out;
    if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
        r = -errno;
        sandbox_set_error(err, errno, "cgroup: mkdir %s", parent);
        goto out;
    }
    if ((r = v2_enable(parent, err)) < 0)
        goto out;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        r = -errno;
        sandbox_set_error(err, errno, "cgroup: mkdir %s", dir);
        goto out;
    }
    struct {
        const char *file;
        uint64_t v;
        bool set, optional;
    } w[] = {
        {"memory.max", l->memory, l->memory > 0, false},
        {"memory.swap.max", 0, l->memory > 0, true},
        {"pids.max", (uint64_t)l->pids, l->pids > 0, false},
        {"cpu.weight", l->cpu_weight, l->cpu_weight > 0, true},
    };
    for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
        free(f);
        f = xasprintf("%s/%s", dir, w[i].file);
        r = w[i].set ? write_u64(f, w[i].v) : write_str(f, "max");
        if (!strcmp(w[i].file, "cpu.weight") && !w[i].set)
            r = write_str(f, "100");
        if (r < 0 && !w[i].optional) {
            sandbox_set_error(err, -r, "cgroup: write %s", f);
            goto out;
        }
    }
    r = 0;
out:
    free(f);
    free(parent);
    free(dir);
    return r;
}

static int v2_attach(struct cgroup *cg, pid_t pid)
{
    char *f = xasprintf("%s/%s/cgroup.procs", cg->root, cg->rel);
    int r = write_u64(f, (uint64_t)pid);
    free(f);
    return r;
}

static int v2_events(struct cgroup *cg, struct cgroup_events *ev)
{
    char *m = xasprintf("%s/%s/memory.events", cg->root, cg->rel);
    char *p = xasprintf("%s/%s/pids.events", cg->root, cg->rel);
    int r = cgroup_read_key(m, "oom_kill", &ev->oom_kills);
    if (cgroup_read_key(p, "max", &ev->pids_max) < 0)
        ev->pids_max = 0;
    free(m);
    free(p);
    return r;
}

static void v2_destroy(struct cgroup *cg)
{
    char *dir = xasprintf("%s/%s", cg->root, cg->rel);
    char *kill_file = xasprintf("%s/cgroup.kill", dir);
    write_str(kill_file, "1");
    kill_and_rmdir(dir);
    free(kill_file);
    free(dir);
}

static const struct cgroup_ops v2_ops = {"v2", v2_create, v2_attach, v2_events, v2_destroy};

/* ---- v1 ---- */

static const char *const v1_ctl[] = {"memory", "pids", "cpu"};

static int v1_create(struct cgroup *cg, const struct cgroup_limits *l, struct sandbox_error *err)
{
    char *f = NULL;
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctl) && r == 0; i++) {
        char *parent = xasprintf("%s/%s/" CG_PARENT, cg->root, v1_ctl[i]);
        char *dir = xasprintf("%s/%s/%s", cg->root, v1_ctl[i], cg->rel);
        if ((mkdir(parent, 0755) < 0 && errno != EEXIST) ||
            (mkdir(dir, 0755) < 0 && errno != EEXIST)) {
            r = -errno;
            sandbox_set_error(err, errno, "cgroup: mkdir %s", dir);
        }
        free(parent);
        free(dir);
    }
    if (r < 0)
        goto out;
    /* memsw (memory plus swap) must stay >= the limit: widen it first, then set both. */
    f = xasprintf("%s/memory/%s/memory.memsw.limit_in_bytes", cg->root, cg->rel);
    bool memsw = access(f, F_OK) == 0;
    if (memsw)
        write_str(f, "-1");
    free(f);
    f = xasprintf("%s/memory/%s/memory.limit_in_bytes", cg->root, cg->rel);
    if (l->memory)
        r = write_u64(f, l->memory);
    else
        r = write_str(f, "-1");
    if (r < 0) {
        sandbox_set_error(err, -r, "cgroup: write %s", f);
        goto out;
    }
    if (memsw && l->memory) {
        free(f);
        f = xasprintf("%s/memory/%s/memory.memsw.limit_in_bytes", cg->root, cg->rel);
        write_u64(f, l->memory);
    }
    free(f);
    f = xasprintf("%s/pids/%s/pids.max", cg->root, cg->rel);
    r = l->pids > 0 ? write_u64(f, (uint64_t)l->pids) : write_str(f, "max");
    if (r < 0) {
        sandbox_set_error(err, -r, "cgroup: write %s", f);
        goto out;
    }
    free(f);
    f = xasprintf("%s/cpu/%s/cpu.shares", cg->root, cg->rel);
    /* v2's weight 100 is v1's 1024 shares. */
    uint64_t shares = l->cpu_weight ? (uint64_t)l->cpu_weight * 1024 / 100 : 1024;
    write_u64(f, shares < 2 ? 2 : shares);
    r = 0;
out:
    free(f);
    return r;
}

static int v1_attach(struct cgroup *cg, pid_t pid)
{
    int r = 0;
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctl) && r == 0; i++) {
        char *f = xasprintf("%s/%s/%s/cgroup.procs", cg->root, v1_ctl[i], cg->rel);
        r = write_u64(f, (uint64_t)pid);
        free(f);
    }
    return r;
}

static int v1_events(struct cgroup *cg, struct cgroup_events *ev)
{
    char *m = xasprintf("%s/memory/%s/memory.oom_control", cg->root, cg->rel);
    char *p = xasprintf("%s/pids/%s/pids.events", cg->root, cg->rel);
    int r = cgroup_read_key(m, "oom_kill", &ev->oom_kills);
    if (r < 0) {
        /* Kernels before 4.13 have no oom_kill line: any hit of the limit counts. */
        free(m);
        m = xasprintf("%s/memory/%s/memory.failcnt", cg->root, cg->rel);
        char *s = NULL;
        size_t len;
        int64_t v = 0;
        if ((r = read_file(m, 1 << 20, &s, &len)) == 0) {
            s[strcspn(s, "\n")] = 0;
            r = str_to_i64(s, 0, INT64_MAX, &v);
        }
        ev->oom_kills = (uint64_t)v;
        free(s);
    }
    if (cgroup_read_key(p, "max", &ev->pids_max) < 0)
        ev->pids_max = 0;
    free(m);
    free(p);
    return r;
}

static void v1_destroy(struct cgroup *cg)
{
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctl); i++) {
        char *dir = xasprintf("%s/%s/%s", cg->root, v1_ctl[i], cg->rel);
        kill_and_rmdir(dir);
        free(dir);
    }
}

static const struct cgroup_ops v1_ops = {"v1", v1_create, v1_attach, v1_events, v1_destroy};

/* ---- public ---- */

int cgroup_open(const char *root, const char *name, const struct cgroup_limits *l,
                struct cgroup **out, struct sandbox_error *err)
{
    *out = NULL;
    if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
        sandbox_set_error(err, EINVAL, "cgroup: bad name");
        return -EINVAL;
    }
    if (!root)
        root = "/sys/fs/cgroup";
    struct statfs sf;
    if (statfs(root, &sf) < 0) {
        int e = errno;
        sandbox_set_error(err, e, "cgroup: statfs %s", root);
        return -e;
    }
    struct cgroup *cg = xcalloc(1, sizeof(*cg));
    cg->root = xstrdup(root);
    cg->rel = xasprintf(CG_PARENT "/%s", name);
    if (sf.f_type == CGROUP2_SUPER_MAGIC) {
        cg->ops = &v2_ops;
    } else {
        char *mem = xasprintf("%s/memory", root);
        struct statfs ms;
        bool v1 = statfs(mem, &ms) == 0 && ms.f_type == CGROUP_SUPER_MAGIC;
        free(mem);
        if (!v1) {
            sandbox_set_error(err, ENOTSUP, "cgroup: no cgroup v2 or v1 memory hierarchy at %s",
                              root);
            free(cg->root);
            free(cg->rel);
            free(cg);
            return -ENOTSUP;
        }
        cg->ops = &v1_ops;
    }
    int r = cg->ops->create(cg, l, err);
    if (r < 0) {
        cgroup_destroy(cg);
        return r;
    }
    *out = cg;
    return 0;
}

int cgroup_attach(struct cgroup *cg, pid_t pid)
{
    return cg->ops->attach(cg, pid);
}

int cgroup_read_events(struct cgroup *cg, struct cgroup_events *ev)
{
    *ev = (struct cgroup_events){0};
    return cg->ops->events(cg, ev);
}

void cgroup_destroy(struct cgroup *cg)
{
    if (!cg)
        return;
    if (cg->ops)
        cg->ops->destroy(cg);
    free(cg->root);
    free(cg->rel);
    free(cg);
}

void cgroup_format_bytes(uint64_t n, char *out, size_t len)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    uint64_t v = n;
    while (u + 1 < ARRAY_SIZE(unit) && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u == 0 && n >= 1024 * 1024)
        snprintf(out, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(out, len, "%" PRIu64 " %s", v, unit[u]);
}
