/* Resource figures of the runtimes: one sample at a time runs on libuv's thread pool
 * (cgroup files, /proc, a bounded walk of each runtime's folder, GPU usage) and its
 * results are cached for the API, /metrics and DATA/run/status.json. The loop never
 * reads a file here, except through the thread pool. */
#include "hub/figures.h"

#include "sandbox/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/config.h"
#include "hub/channels.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/kernelspec.h"
#include "hub/scheduler.h"
#include "sandbox/disk.h"
#include "sandbox/gpu.h"

#define DISK_CACHE_MS 5000   /* a runtime's folder is walked at most this often */
#define DISK_BUDGET 200000L  /* entries one walk of one runtime visits at most */
#define DISK_MAX_DEPTH 128   /* deeper folders are not counted */
#define STATUS_EVERY_MS 2000 /* DATA/run/status.json */
#define PROC_MAX_PIDS 4096   /* processes of one runtime looked at for CPU / RSS */

/* ---- the cache (one hub per process) ---- */

struct fig_entry {
    struct fig_entry *next;
    char id[40];
    struct runtime_figures f;
    uint64_t disk_ms; /* when its folder was last walked */
    uint64_t cpu_ms;  /* when cpu_seconds was read */
};

struct fig_waiter {
    struct fig_waiter *next;
    figures_cb cb;
    void *ctx;
};

struct fig_gpu {
    bool ok;
    struct gpu_usage u;
};

static struct {
    char *cgroup_root;
    struct fig_entry *entries;
    struct fig_gpu gpus[GPU_MAX];
    uint64_t sampled_ms; /* 0: never */
    bool busy;
    struct fig_waiter *waiters;
    uint64_t status_ms;
    bool status_writing;
} S;

void figures_set_cgroup_root(const char *root)
{
    free(S.cgroup_root);
    S.cgroup_root = root ? xstrdup(root) : NULL;
}

static struct fig_entry *entry_find(const char *id)
{
    for (struct fig_entry *e = S.entries; e; e = e->next)
        if (!strcmp(e->id, id))
            return e;
    return NULL;
}

const struct runtime_figures *figures_get(const char *id)
{
    struct fig_entry *e = entry_find(id);
    return e ? &e->f : NULL;
}

/* ---- readers (thread pool) ---- */

static int read_u64_file(const char *path, uint64_t *out)
{
    char *s = NULL;
    size_t len = 0;
    int r = read_file(path, 1 << 20, &s, &len);
    if (r < 0)
        return r;
    s[strcspn(s, "\n")] = 0;
    int64_t v;
    if (!strcmp(s, "max")) {
        *out = UINT64_MAX;
    } else if ((r = str_to_i64(s, 0, INT64_MAX, &v)) == 0) {
        *out = (uint64_t)v;
    }
    free(s);
    return r;
}

static long clock_ticks(void)
{
    long t = sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
}

/* utime + stime + cutime + cstime of pid, in ticks (children reaped count; live ones
 * are counted on their own). */
static int proc_times(pid_t pid, uint64_t *ticks, uint64_t *rss_pages)
{
    char path[64], *s = NULL;
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int r = read_file(path, 1 << 20, &s, &len);
    if (r < 0)
        return r;
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(s, ')');
    r = -EINVAL;
    if (!p)
        goto out;
    p += 2; /* field 3, state */
    uint64_t v[24] = {0};
    int n = 0;
    for (char *f = p; *f && n < 24; n++) {
        char *end = f + strcspn(f, " ");
        char save = *end;
        *end = 0;
        int64_t x;
        v[n] = str_to_i64(f, INT64_MIN, INT64_MAX, &x) == 0 && x > 0 ? (uint64_t)x : 0;
        if (!save)
            break;
        f = end + 1;
    }
    /* Field k of stat(5) is v[k - 3]: utime 14, stime 15, cutime 16, cstime 17, rss 24. */
    if (n < 21)
        goto out;
    *ticks = v[11] + v[12] + v[13] + v[14];
    if (rss_pages)
        *rss_pages = v[21];
    r = 0;
out:
    free(s);
    return r;
}

/* CPU ticks of the processes listed in a cgroup.procs file. */
static int procs_cpu(const char *procs_file, double *seconds)
{
    char *s = NULL;
    size_t len;
    int r = read_file(procs_file, 1 << 20, &s, &len);
    if (r < 0)
        return r;
    uint64_t total = 0;
    int n = 0;
    for (char *line = s; line && *line && n < PROC_MAX_PIDS; n++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        int64_t pid;
        uint64_t t;
        if (str_to_i64(line, 1, INT32_MAX, &pid) == 0 && proc_times((pid_t)pid, &t, NULL) == 0)
            total += t;
        line = nl ? nl + 1 : NULL;
    }
    free(s);
    *seconds = (double)total / (double)clock_ticks();
    return 0;
}

int figures_read_cgroup(const char *root, const char *name, struct runtime_figures *f)
{
    if (!root)
        root = "/sys/fs/cgroup";
    int r = -ENOENT;
    uint64_t v, inactive = 0;
    char *p = xasprintf("%s/labbook/%s/memory.current", root, name);
    if (read_u64_file(p, &v) == 0) { /* v2 */
        r = 0;
        free(p);
        p = xasprintf("%s/labbook/%s/memory.stat", root, name);
        cgroup_read_key(p, "inactive_file", &inactive);
        f->have_mem = true;
        f->mem_used = v > inactive ? v - inactive : v;
        free(p);
        p = xasprintf("%s/labbook/%s/memory.max", root, name);
        if (read_u64_file(p, &v) == 0 && v != UINT64_MAX) {
            f->have_limit = true;
            f->mem_limit = v;
        }
        free(p);
        p = xasprintf("%s/labbook/%s/cpu.stat", root, name);
        if (cgroup_read_key(p, "usage_usec", &v) == 0) {
            f->have_cpu = true;
            f->cpu_seconds = (double)v / 1e6;
        }
        goto out;
    }
    free(p);
    p = xasprintf("%s/memory/labbook/%s/memory.usage_in_bytes", root, name);
    if (read_u64_file(p, &v) < 0)
        goto out;
    r = 0; /* v1 */
    free(p);
    p = xasprintf("%s/memory/labbook/%s/memory.stat", root, name);
    cgroup_read_key(p, "total_inactive_file", &inactive);
    f->have_mem = true;
    f->mem_used = v > inactive ? v - inactive : v;
    free(p);
    p = xasprintf("%s/memory/labbook/%s/memory.limit_in_bytes", root, name);
    /* v1 says "no limit" with a huge page-rounded number. */
    if (read_u64_file(p, &v) == 0 && v < (UINT64_C(1) << 62)) {
        f->have_limit = true;
        f->mem_limit = v;
    }
    static const char *const acct[] = {"cpuacct", "cpu,cpuacct", "cpu"};
    for (size_t i = 0; i < ARRAY_SIZE(acct) && !f->have_cpu; i++) {
        free(p);
        p = xasprintf("%s/%s/labbook/%s/cpuacct.usage", root, acct[i], name);
        if (read_u64_file(p, &v) == 0) {
            f->have_cpu = true;
            f->cpu_seconds = (double)v / 1e9;
        }
    }
    if (!f->have_cpu) { /* no cpuacct group: the times of the processes in it */
        free(p);
        p = xasprintf("%s/memory/labbook/%s/cgroup.procs", root, name);
        f->have_cpu = procs_cpu(p, &f->cpu_seconds) == 0;
    }
out:
    free(p);
    return r;
}

/* Unsandboxed runtimes: the RSS and CPU time of the agent's descendants (the kernel and
 * what it started), found through /proc/<pid>/task/<pid>/children. */
static void descendants_figures(pid_t agent, struct runtime_figures *f)
{
    pid_t stack[256];
    size_t top = 0, seen = 0;
    uint64_t rss = 0, ticks = 0;
    bool any = false;
    stack[top++] = agent;
    while (top > 0 && seen < PROC_MAX_PIDS) {
        pid_t pid = stack[--top];
        seen++;
        char path[80], *s = NULL;
        size_t len;
        if (pid != agent) {
            uint64_t t, pages;
            if (proc_times(pid, &t, &pages) == 0) {
                rss += pages;
                ticks += t;
                any = true;
            }
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        if (read_file(path, 1 << 20, &s, &len) < 0)
            continue;
        for (char *c = s; *c;) {
            char *end = c + strcspn(c, " \n");
            char save = *end;
            *end = 0;
            int64_t child;
            if (str_to_i64(c, 1, INT32_MAX, &child) == 0 && top < ARRAY_SIZE(stack))
                stack[top++] = (pid_t)child;
            if (!save)
                break;
            c = end + 1;
        }
        free(s);
    }
    if (!any)
        return;
    long page = sysconf(_SC_PAGESIZE);
    f->have_mem = true;
    f->mem_used = rss * (uint64_t)(page > 0 ? page : 4096);
    f->have_cpu = true;
    f->cpu_seconds = (double)ticks / (double)clock_ticks();
}

static uint64_t walk(int dirfd, dev_t dev, int depth, long *budget, bool *partial)
{
    uint64_t sum = 0;
    if (depth > DISK_MAX_DEPTH) {
        *partial = true;
        close(dirfd);
        return 0;
    }
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (--*budget < 0) {
            *partial = true;
            break;
        }
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
            continue;
        sum += (uint64_t)st.st_blocks * 512;
        if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                sum += walk(fd, dev, depth + 1, budget, partial);
        }
    }
    closedir(d);
    return sum;
}

uint64_t figures_disk_usage(const char *path, long *budget, bool *partial)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0;
    }
    return (uint64_t)st.st_blocks * 512 + walk(fd, st.st_dev, 0, budget, partial);
}

/* ---- one sample ---- */

struct sample_item {
    char id[40];
    char *dir;    /* DATA/runtimes/<id> */
    pid_t agent;  /* > 0 for an unsandboxed runtime whose agent runs */
    bool do_disk; /* walk its folder this time */
    bool is_queued;
    struct runtime_figures f;
};

struct sample_job {
    uv_work_t work;
    struct hub *h;
    char *cgroup_root;
    struct sample_item *items;
    size_t n;
    struct gpu_provider *gpus;
    struct fig_gpu gpu[GPU_MAX];
    size_t ngpus;
};

static void sample_work(uv_work_t *w)
{
    struct sample_job *j = w->data;
    for (size_t i = 0; i < j->n; i++) {
        struct sample_item *it = &j->items[i];
        if (it->is_queued)
            continue;
        if (figures_read_cgroup(j->cgroup_root, it->id, &it->f) < 0 && it->agent > 0)
            descendants_figures(it->agent, &it->f);
        if (it->do_disk) {
            long budget = DISK_BUDGET;
            bool partial = false;
            static const char *const sub[] = {"upper", "content"};
            uint64_t sum = 0;
            struct statvfs vfs;
            char *disk = disk_mount_dir(it->dir);
            if (disk_is_mounted(it->dir) && statvfs(disk, &vfs) == 0) {
                /* its own disk: what the file system has handed out */
                sum = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
            } else {
                for (size_t s = 0; s < ARRAY_SIZE(sub); s++) {
                    char *p = xasprintf("%s/%s", it->dir, sub[s]);
                    sum += figures_disk_usage(p, &budget, &partial);
                    free(p);
                }
            }
            free(disk);
            it->f.have_disk = true;
            it->f.disk_used = sum;
            it->f.disk_partial = partial;
        }
    }
    for (size_t g = 0; g < j->ngpus; g++)
        j->gpu[g].ok = gpu_usage(j->gpus, (unsigned)g, &j->gpu[g].u) == 0;
}

static void sample_done(uv_work_t *w, int status)
{
    (void)status;
    struct sample_job *j = w->data;
    uint64_t now = now_ms();
    /* Merge into the cache; forget runtimes that are gone. */
    struct fig_entry *fresh = NULL;
    for (size_t i = 0; i < j->n; i++) {
        struct sample_item *it = &j->items[i];
        struct fig_entry *old = entry_find(it->id);
        struct fig_entry *e = xcalloc(1, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", it->id);
        e->f = it->f;
        e->cpu_ms = now;
        if (old && old->f.have_cpu && it->f.have_cpu && now > old->cpu_ms) {
            double d = it->f.cpu_seconds - old->f.cpu_seconds;
            e->f.have_pct = true;
            e->f.cpu_percent = d > 0 ? d * 100000.0 / (double)(now - old->cpu_ms) : 0;
        } else if (old && old->f.have_pct && it->f.have_cpu) {
            e->f.have_pct = true;
            e->f.cpu_percent = old->f.cpu_percent;
        }
        if (it->do_disk) {
            e->disk_ms = now;
        } else if (old) {
            e->f.have_disk = old->f.have_disk;
            e->f.disk_used = old->f.disk_used;
            e->f.disk_partial = old->f.disk_partial;
            e->disk_ms = old->disk_ms;
        }
        e->next = fresh;
        fresh = e;
        free(it->dir);
    }
    for (struct fig_entry *e = S.entries, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    S.entries = fresh;
    memcpy(S.gpus, j->gpu, sizeof(S.gpus));
    S.sampled_ms = now;
    S.busy = false;
    struct hub *h = j->h;
    free(j->items);
    free(j->cgroup_root);
    free(j);
    /* Waiters added while their callbacks run wait for the next sample. */
    struct fig_waiter *ws = S.waiters;
    S.waiters = NULL;
    while (ws) {
        struct fig_waiter *next = ws->next;
        ws->cb(h, ws->ctx);
        free(ws);
        ws = next;
    }
}

static void sample_start(struct hub *h)
{
    struct sample_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->h = h;
    j->cgroup_root = S.cgroup_root ? xstrdup(S.cgroup_root) : NULL;
    size_t n = 0;
    for (struct kernel *k = h->kernels; k; k = k->next)
        n++;
    j->items = xcalloc(n ? n : 1, sizeof(*j->items));
    uint64_t now = now_ms();
    for (struct kernel *k = h->kernels; k; k = k->next) {
        if (k->life == KERNEL_STOPPING)
            continue;
        struct sample_item *it = &j->items[j->n++];
        snprintf(it->id, sizeof(it->id), "%s", k->id);
        it->dir = xasprintf("%s/%s", h->runtimes_dir, k->id);
        it->agent = !h->sandboxed && k->proc_running ? k->proc.pid : 0;
        it->is_queued = k->queued;
        struct fig_entry *e = entry_find(k->id);
        it->do_disk = !k->queued && (!e || now - e->disk_ms >= DISK_CACHE_MS);
    }
    j->gpus = h->gpus;
    j->ngpus = h->gpus ? (h->gpus->n < GPU_MAX ? h->gpus->n : GPU_MAX) : 0;
    S.busy = true;
    if (uv_queue_work(h->loop, &j->work, sample_work, sample_done) < 0) {
        sample_work(&j->work);
        sample_done(&j->work, 0);
    }
}

void figures_refresh(struct hub *h, uint64_t max_age_ms, figures_cb cb, void *ctx)
{
    if (!S.busy && S.sampled_ms && now_ms() - S.sampled_ms <= max_age_ms) {
        if (cb)
            cb(h, ctx);
        return;
    }
    if (cb) {
        struct fig_waiter *w = xcalloc(1, sizeof(*w));
        w->cb = cb;
        w->ctx = ctx;
        w->next = S.waiters;
        S.waiters = w;
    }
    if (!S.busy)
        sample_start(h);
}

/* ---- models ---- */

static const char *runtime_state(const struct kernel *k)
{
    if (k->queued)
        return "queued";
    switch (k->life) {
    case KERNEL_STARTING:
        return "starting";
    case KERNEL_RUNNING:
        return "running";
    case KERNEL_RESTARTING:
        return "restarting";
    case KERNEL_DEAD:
        return "dead";
    case KERNEL_STOPPING:
        return "stopping";
    }
    return "unknown";
}

/* Wall-clock creation time of k (created_ms is on the monotonic clock). */
static double created_unix(const struct kernel *k)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    uint64_t age = now_ms() - k->created_ms;
    return now - (double)age / 1000.0;
}

static json_t *u64_or_null(bool have, uint64_t v)
{
    return have ? json_integer((json_int_t)v) : json_null();
}

static json_t *real_or_null(bool have, double v)
{
    return have ? json_real((double)(int64_t)(v * 100 + 0.5) / 100) : json_null();
}

/* "Python 3 (ipykernel) (GPU)", as the kernelspec variant is shown. */
static char *display_name(struct hub *h, const struct kernel *k, const struct profile **prof)
{
    *prof = config_profile(&h->cfg, k->profile);
    const char *base = k->base_spec;
    for (size_t i = 0; i < h->nspecs; i++)
        if (!strcmp(h->specs[i].name, k->base_spec)) {
            const char *dn = json_string_value(json_object_get(h->specs[i].spec, "display_name"));
            if (dn)
                base = dn;
            break;
        }
    if (*prof && h->cfg.nprofiles > 0 && *prof != &h->cfg.profiles[0])
        return xasprintf("%s (%s)", base, (*prof)->display_name);
    return xstrdup(base);
}

json_t *figures_runtime_model(struct hub *h, const struct kernel *k)
{
    const struct runtime_figures *f = figures_get(k->id);
    struct runtime_figures none = {0};
    if (!f || k->queued)
        f = &none;
    const struct profile *prof;
    char *dn = display_name(h, k, &prof);
    char created[32];
    iso8601_from_time(created_unix(k), created);
    json_t *gpus = json_array();
    for (unsigned i = 0; i < k->ngpus; i++) {
        unsigned g = k->gpus[i];
        const struct gpu_info *gi = h->gpus && g < h->gpus->n ? &h->gpus->gpus[g] : NULL;
        bool ok = g < GPU_MAX && S.gpus[g].ok;
        json_array_append_new(
            gpus, json_pack("{s:i, s:s?, s:s?, s:o, s:o, s:o}", "index", (int)g, "uuid",
                            gi ? gi->uuid : NULL, "name", gi ? gi->name : NULL, "memory_total",
                            u64_or_null(gi != NULL, gi ? gi->memory_total : 0), "memory_used",
                            u64_or_null(ok, ok ? S.gpus[g].u.memory_used : 0), "util",
                            ok ? json_integer(S.gpus[g].u.util_percent) : json_null()));
    }
    uint64_t limit = f->have_limit              ? f->mem_limit
                     : prof && prof->memory > 0 ? (uint64_t)prof->memory
                                                : 0;
    int qpos = kernel_queue_position(k);
    json_t *m = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:{s:o, s:o}, s:{s:o, s:o, s:b}, "
        "s:{s:o, s:o}, s:i, s:s?}",
        "id", k->id, "name", k->spec_name, "owner", k->owner_name, "profile", k->profile,
        "display_name", dn, "state", runtime_state(k), "execution_state", k->execution_state,
        "queue_position", qpos > 0 ? json_integer(qpos) : json_null(), "created", created,
        "last_activity", k->last_activity, "gpus", gpus, "memory", "used",
        u64_or_null(f->have_mem, f->mem_used), "limit", u64_or_null(limit > 0, limit), "disk",
        "used", u64_or_null(f->have_disk, f->disk_used), "quota",
        u64_or_null(prof && prof->disk > 0, prof ? (uint64_t)prof->disk : 0), "partial",
        f->disk_partial, "cpu", "seconds", real_or_null(f->have_cpu, f->cpu_seconds), "percent",
        real_or_null(f->have_pct, f->cpu_percent), "connections", kernel_count_clients(k), "path",
        k->session_path);
    if (k->reason)
        json_object_set_new(m, "reason", json_string(k->reason));
    free(dn);
    return m;
}

/* ---- Prometheus ---- */

void prom_escape_label(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append(b, "\\\\", 2);
        else if (*s == '"')
            buf_append(b, "\\\"", 2);
        else if (*s == '\n')
            buf_append(b, "\\n", 2);
        else
            buf_append(b, s, 1);
    }
}

void prom_header(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_sample(struct buf *b, const char *name, const char *const *labels, double value)
{
    buf_printf(b, "%s", name);
    if (labels && labels[0]) {
        buf_append(b, "{", 1);
        for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
            buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            prom_escape_label(b, labels[i + 1]);
            buf_append(b, "\"", 1);
        }
        buf_append(b, "}", 1);
    }
    if (isnan(value))
        buf_printf(b, " NaN\n");
    else if (isinf(value))
        buf_printf(b, " %sInf\n", value > 0 ? "+" : "-");
    else if (value > -9007199254740992.0 && value < 9007199254740992.0 &&
             value == (double)(int64_t)value)
        buf_printf(b, " %.0f\n", value);
    else
        buf_printf(b, " %.17g\n", value);
}

char *figures_metrics_text(struct hub *h, size_t *len)
{
    struct buf b = {0};
    static const char *const states[] = {"queued", "starting", "running", "restarting", "dead"};
    prom_header(&b, "labbook_runtimes", "gauge", "Runtimes by runtime type and state.");
    for (int p = 0; p < h->cfg.nprofiles; p++)
        for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
            int n = 0;
            for (struct kernel *k = h->kernels; k; k = k->next)
                if (k->life != KERNEL_STOPPING && !strcmp(k->profile, h->cfg.profiles[p].name) &&
                    !strcmp(runtime_state(k), states[s]))
                    n++;
            const char *l[] = {"profile", h->cfg.profiles[p].name, "state", states[s], NULL};
            prom_sample(&b, "labbook_runtimes", l, n);
        }
    static const struct {
        const char *name, *type, *help;
    } per[] = {
        {"labbook_runtime_memory_bytes", "gauge",
         "Memory a runtime uses (cgroup usage less inactive file cache)."},
        {"labbook_runtime_memory_limit_bytes", "gauge", "A runtime's memory limit."},
        {"labbook_runtime_cpu_seconds_total", "counter", "CPU time a runtime has used."},
        {"labbook_runtime_disk_bytes", "gauge",
         "Disk a runtime uses: its overlay upper layer and /content."},
    };
    for (size_t m = 0; m < ARRAY_SIZE(per); m++) {
        prom_header(&b, per[m].name, per[m].type, per[m].help);
        for (struct kernel *k = h->kernels; k; k = k->next) {
            const struct runtime_figures *f = figures_get(k->id);
            if (k->life == KERNEL_STOPPING || k->queued || !f)
                continue;
            const char *l[] = {"id", k->id, "user", k->owner_name, "profile", k->profile, NULL};
            if (m == 0 && f->have_mem)
                prom_sample(&b, per[m].name, l, (double)f->mem_used);
            else if (m == 1 && f->have_limit)
                prom_sample(&b, per[m].name, l, (double)f->mem_limit);
            else if (m == 2 && f->have_cpu)
                prom_sample(&b, per[m].name, l, f->cpu_seconds);
            else if (m == 3 && f->have_disk)
                prom_sample(&b, per[m].name, l, (double)f->disk_used);
        }
    }
    size_t ng = h->gpus ? h->gpus->n : 0;
    prom_header(&b, "labbook_gpu_utilization_ratio", "gauge",
                "Share of the last sample period a kernel ran on the GPU (0 to 1).");
    for (size_t g = 0; g < ng && g < GPU_MAX; g++) {
        char idx[16];
        snprintf(idx, sizeof(idx), "%zu", g);
        const char *l[] = {"gpu", idx, "uuid", h->gpus->gpus[g].uuid, NULL};
        if (S.gpus[g].ok)
            prom_sample(&b, "labbook_gpu_utilization_ratio", l, S.gpus[g].u.util_percent / 100.0);
    }
    prom_header(&b, "labbook_gpu_memory_used_bytes", "gauge", "GPU memory in use.");
    for (size_t g = 0; g < ng && g < GPU_MAX; g++) {
        char idx[16];
        snprintf(idx, sizeof(idx), "%zu", g);
        const char *l[] = {"gpu", idx, "uuid", h->gpus->gpus[g].uuid, NULL};
        if (S.gpus[g].ok)
            prom_sample(&b, "labbook_gpu_memory_used_bytes", l, (double)S.gpus[g].u.memory_used);
    }
    prom_header(&b, "labbook_gpus_free", "gauge", "GPUs no runtime holds.");
    prom_sample(&b, "labbook_gpus_free", NULL, h->sched ? scheduler_free_gpus(h->sched) : 0);
    prom_header(&b, "labbook_queue_length", "gauge", "Runtimes waiting for GPUs.");
    prom_sample(&b, "labbook_queue_length", NULL,
                h->sched ? (double)scheduler_queued(h->sched) : 0);
    prom_header(&b, "labbook_http_connections", "gauge", "Open HTTP and WebSocket connections.");
    prom_sample(&b, "labbook_http_connections", NULL, h->http_connections);
    return buf_steal(&b, len);
}

/* ---- status.json ---- */

json_t *figures_status_json(struct hub *h)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *gpus = json_array(), *runtimes = json_array(), *queue = json_array();
    size_t ng = h->gpus ? h->gpus->n : 0;
    for (size_t g = 0; g < ng; g++) {
        const struct kernel *holder = NULL;
        for (struct kernel *k = h->kernels; k && !holder; k = k->next)
            for (unsigned i = 0; i < k->ngpus && !k->queued && k->life != KERNEL_STOPPING; i++)
                if (k->gpus[i] == g)
                    holder = k;
        bool ok = g < GPU_MAX && S.gpus[g].ok;
        json_array_append_new(
            gpus,
            json_pack("{s:i, s:s, s:s, s:I, s:o, s:o, s:s?, s:s?}", "index", (int)g, "uuid",
                      h->gpus->gpus[g].uuid, "name", h->gpus->gpus[g].name, "memory_total",
                      (json_int_t)h->gpus->gpus[g].memory_total, "memory_used",
                      u64_or_null(ok, ok ? S.gpus[g].u.memory_used : 0), "util",
                      ok ? json_integer(S.gpus[g].u.util_percent) : json_null(), "holder",
                      holder ? holder->owner_name : NULL, "runtime", holder ? holder->id : NULL));
    }
    for (struct kernel *k = h->kernels; k; k = k->next) {
        if (k->life == KERNEL_STOPPING)
            continue;
        json_t *m = figures_runtime_model(h, k);
        json_object_set_new(m, "age_s",
                            json_integer((json_int_t)((now_ms() - k->created_ms) / 1000)));
        if (k->queued)
            json_array_append_new(queue, json_pack("{s:i, s:s, s:s, s:s}", "position",
                                                   kernel_queue_position(k), "owner", k->owner_name,
                                                   "profile", k->profile, "id", k->id));
        json_array_append_new(runtimes, m);
    }
    /* The queue in serving order. */
    size_t nq = json_array_size(queue);
    for (size_t i = 1; i < nq; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(queue, j - 1), *b = json_array_get(queue, j);
            if (json_integer_value(json_object_get(a, "position")) <=
                json_integer_value(json_object_get(b, "position")))
                break;
            json_incref(a);
            json_array_set(queue, j - 1, b);
            json_array_set_new(queue, j, a);
        }
    return json_pack("{s:i, s:I, s:i, s:s, s:o, s:o, s:o, s:i, s:I}", "version", 1, "written",
                     (json_int_t)ts.tv_sec, "hub_pid", (int)getpid(), "started", h->started, "gpus",
                     gpus, "runtimes", runtimes, "queue", queue, "gpus_free",
                     h->sched ? (int)scheduler_free_gpus(h->sched) : 0, "queue_length",
                     (json_int_t)(h->sched ? scheduler_queued(h->sched) : 0));
}

struct status_job {
    uv_work_t work;
    char *path, *text;
};

static void status_work(uv_work_t *w)
{
    struct status_job *j = w->data;
    write_file_atomic(j->path, j->text, strlen(j->text), 0600);
}

static void status_done(uv_work_t *w, int status)
{
    (void)status;
    struct status_job *j = w->data;
    S.status_writing = false;
    free(j->path);
    free(j->text);
    free(j);
}

static void status_sampled(struct hub *h, void *ctx)
{
    (void)ctx;
    json_t *st = figures_status_json(h);
    struct status_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->path = xasprintf("%s/run/status.json", h->data_dir);
    j->text = json_dumps(st, JSON_INDENT(1));
    json_decref(st);
    if (uv_queue_work(h->loop, &j->work, status_work, status_done) < 0) {
        status_work(&j->work);
        status_done(&j->work, 0);
    }
}

void figures_write_status(struct hub *h)
{
    uint64_t now = now_ms();
    if (h->stopping || S.status_writing || now - S.status_ms < STATUS_EVERY_MS)
        return;
    S.status_ms = now;
    S.status_writing = true;
    figures_refresh(h, 1000, status_sampled, NULL);
}

/* ---- factory reset ---- */

struct wipe_job {
    uv_work_t work;
    char *trash;
};

void figures_remove_now(const char *path)
{
    disk_detach(path); /* a runtime's folder: its disk first */
    /* Unprivileged, folders a rootless overlay made read-only are opened up first; as
     * root there is no need, so nothing is ever chmodded as root. */
    fs_remove_path(path, FS_RM_ONE_FS | (geteuid() ? FS_RM_WRITABLE : 0));
}

static void wipe_work(uv_work_t *w)
{
    struct wipe_job *j = w->data;
    figures_remove_now(j->trash);
}

static void wipe_done(uv_work_t *w, int status)
{
    (void)status;
    struct wipe_job *j = w->data;
    free(j->trash);
    free(j);
}

void figures_remove_tree(struct hub *h, char *path)
{
    struct wipe_job *j = xcalloc(1, sizeof(*j));
    j->work.data = j;
    j->trash = path; /* owned by the job now */
    if (uv_queue_work(h->loop, &j->work, wipe_work, wipe_done) < 0) {
        wipe_work(&j->work);
        wipe_done(&j->work, 0);
    }
}

void figures_runtime_forget(struct hub *h, const char *id)
{
    (void)h;
    struct fig_entry *e = entry_find(id);
    if (e)
        e->disk_ms = 0; /* walk it again next time */
}
