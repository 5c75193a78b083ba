/* Per-runtime resource figures (memory, CPU, disk, GPUs) sampled on the thread pool and
 * cached, their JSON for /api/runtimes, the Prometheus text of /metrics, and the
 * DATA/run/status.json snapshot that `labbook status` reads. See docs/figures.md. */
#ifndef LABBOOK_HUB_FIGURES_H
#define LABBOOK_HUB_FIGURES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct hub;
struct kernel;

/* What one sample knows of one runtime; a have_* flag false means "unknown" (null). */
struct runtime_figures {
    bool have_mem, have_limit, have_cpu, have_pct, have_disk;
    uint64_t mem_used;  /* bytes: cgroup usage less inactive file cache, or the RSS */
    uint64_t mem_limit; /* bytes: the cgroup's limit */
    double cpu_seconds; /* CPU time used since the runtime started (all its processes) */
    double cpu_percent; /* of one core, since the previous sample */
    uint64_t disk_used; /* bytes allocated in its overlay upper layer and /content */
    bool disk_partial;  /* the walk stopped at its cap: disk_used is a lower bound */
};

/* Called when a sample requested with figures_refresh is ready (from the loop). */
typedef void (*figures_cb)(struct hub *h, void *ctx);

/* Makes sure the cache is at most max_age_ms old: calls cb at once when it is, else
 * starts (or joins) a sample on the thread pool and calls cb when it is done. cb may be
 * NULL (just refresh in the background). */
void figures_refresh(struct hub *h, uint64_t max_age_ms, figures_cb cb, void *ctx);

/* The cached figures of runtime id, or NULL before its first sample. Owned by the
 * cache; valid until the next sample completes. */
const struct runtime_figures *figures_get(const char *id);

/* The /api/runtimes model of k (new reference), filled from the cache. */
json_t *figures_runtime_model(struct hub *h, const struct kernel *k);

/* The Prometheus text exposition (format 0.0.4) of the hub's figures; caller frees. */
char *figures_metrics_text(struct hub *h, size_t *len);

/* The status snapshot `labbook status` formats (new reference). */
json_t *figures_status_json(struct hub *h);

/* Called once a second from the hub's tick: every 2 s, refreshes the figures and writes
 * DATA/run/status.json atomically (from the thread pool). */
void figures_write_status(struct hub *h);

/* After a factory reset of runtime id: its disk use is walked again at the next sample. */
void figures_runtime_forget(struct hub *h, const char *id);
/* Removes a folder tree on the thread pool; takes path. */
void figures_remove_tree(struct hub *h, char *path);
/* Removes a runtime's folder (its disk unmounted first) or a trash folder, now. */
void figures_remove_now(const char *path);

/* Where the figures are read from (tests): the cgroup file system's root, NULL for
 * /sys/fs/cgroup. The string is copied. */
void figures_set_cgroup_root(const char *root);

/* ---- pieces exposed for tests ---- */

/* Reads runtime `name`'s cgroup figures under root (v2 layout labbook/<name>, or v1:
 * memory/labbook/<name>, cpuacct or cpu,cpuacct, else the times of its processes) into
 * f's memory and CPU fields. Returns 0 if the cgroup was found, else -ENOENT. */
int figures_read_cgroup(const char *root, const char *name, struct runtime_figures *f);

/* Sums the bytes allocated (st_blocks) under path without following links or crossing
 * into other file systems, visiting at most *budget entries (decremented). Returns the
 * sum; sets *partial when the budget ran out. A missing path counts 0. */
uint64_t figures_disk_usage(const char *path, long *budget, bool *partial);

/* Appends s to b escaped as a Prometheus label value (\\, \", \n). */
void prom_escape_label(struct buf *b, const char *s);
/* Appends "# HELP name help\n# TYPE name type\n". */
void prom_header(struct buf *b, const char *name, const char *type, const char *help);
/* Appends one sample: name{labels} value. labels is NULL-terminated pairs
 * (key, value, key, value, ..., NULL); values are escaped. */
void prom_sample(struct buf *b, const char *name, const char *const *labels, double value);

#endif
