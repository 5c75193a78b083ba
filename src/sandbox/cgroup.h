/* A runtime's cgroup: memory, pids and cpu limits, and the counters that say why a
 * runtime died (OOM kills, fork failures). Two backends behind one small vtable:
 * cgroup v2 (unified) and v1 (one hierarchy per controller). */
#ifndef LABBOOK_SANDBOX_CGROUP_H
#define LABBOOK_SANDBOX_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

struct cgroup_limits {
    uint64_t memory;     /* bytes, 0: none */
    int64_t pids;        /* 0: none */
    uint32_t cpu_weight; /* 1..10000, 0: default */
};

struct cgroup_events {
    uint64_t oom_kills; /* processes killed by the OOM killer in this cgroup */
    uint64_t pids_max;  /* forks refused at pids.max */
};

struct cgroup_ops {
    const char *name; /* "v2", "v1" */
    int (*create)(struct cgroup *cg, const struct cgroup_limits *l, struct sandbox_error *err);
    int (*attach)(struct cgroup *cg, pid_t pid);
    int (*events)(struct cgroup *cg, struct cgroup_events *ev);
    void (*destroy)(struct cgroup *cg);
};

struct cgroup {
    const struct cgroup_ops *ops;
    char *root; /* "/sys/fs/cgroup" */
    char *rel;  /* "labbook/<name>" */
};

/* Creates (or reuses, emptied of limits) the cgroup labbook/<name> under root (NULL:
 * /sys/fs/cgroup, its version detected) and applies l. *out is the caller's; free it
 * with cgroup_destroy(). Returns 0 or a negative errno with err set. */
int cgroup_open(const char *root, const char *name, const struct cgroup_limits *l,
                struct cgroup **out, struct sandbox_error *err);

/* Moves pid (and its future children) into the cgroup. Returns 0 or a negative errno. */
int cgroup_attach(struct cgroup *cg, pid_t pid);

/* Reads the cgroup's event counters. Returns 0 or a negative errno. */
int cgroup_read_events(struct cgroup *cg, struct cgroup_events *ev);

/* Kills any process left in the cgroup, removes it and frees cg (NULL is fine). */
void cgroup_destroy(struct cgroup *cg);

/* Human form of a byte count: "4 GiB", "512 MiB", "1000 bytes"; writes into out. */
void cgroup_format_bytes(uint64_t n, char *out, size_t len);

/* Reads "key value" from a flat-keyed cgroup file (memory.events, memory.stat,
 * cpu.stat). Returns 0, -ENOENT when the key is absent, or the read's error. */
int cgroup_read_key(const char *path, const char *key, uint64_t *out);

#endif
