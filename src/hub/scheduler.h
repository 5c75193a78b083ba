/* Whole-GPU allotment with a fair queue: runtimes never share a GPU, a request that cannot
 * be served at once waits, and waiting requests are served round robin across users
 * (least recently served user first). A pure data structure, no I/O and no event loop, so
 * that it can be tested on its own. See docs/gpus.md. */
#ifndef LABBOOK_HUB_SCHEDULER_H
#define LABBOOK_HUB_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#define SCHED_MAX_GPUS 64
#define SCHED_ID_MAX 64         /* request ids are shorter than this (kernel ids are 36) */
#define SCHED_MAX_REQUESTS 4096 /* granted and queued together, all users */
#define SCHED_MAX_QUEUED_PER_USER 64

/* scheduler_request's result when the request waits in the queue. */
#define SCHED_QUEUED 1

struct scheduler;

/* What one runtime asks for. */
struct sched_ask {
    int64_t user_id;
    const char *request_id; /* unique while held or queued, e.g. the kernel id */
    const char *profile;    /* profile name: the per-user cap counts per profile */
    unsigned ngpus;         /* 0 for a CPU runtime: granted at once, counts for the cap */
    unsigned max_per_user;  /* 0: no cap; else the user's granted + queued of this profile */
};

/* A grant handed out by scheduler_release or scheduler_cancel. */
struct sched_grant {
    char request_id[SCHED_ID_MAX];
    int64_t user_id;
    unsigned ngpus;
    unsigned gpus[SCHED_MAX_GPUS]; /* ngpus GPU indices, ascending */
};

/* A scheduler for a host with ngpus GPUs (indices 0..ngpus-1; at most SCHED_MAX_GPUS).
 * Free with scheduler_free (NULL is fine). */
struct scheduler *scheduler_new(unsigned ngpus);
void scheduler_free(struct scheduler *s);

/* Asks for a runtime. Returns 0 when granted at once (gpus[0..ngpus) filled with the GPU
 * indices; gpus may be NULL when ngpus is 0), SCHED_QUEUED when it waits (see
 * scheduler_position), or a negative errno with *err (caller frees), a message for the user:
 *   -E2BIG   more GPUs than this host has ("this profile needs 2 GPUs; this server has 1")
 *   -EDQUOT  the user's cap for this profile is reached
 *   -EEXIST  request_id is already held or queued
 *   -EAGAIN  the queue is full
 *   -EINVAL  request_id empty or too long */
int scheduler_request(struct scheduler *s, const struct sched_ask *ask, unsigned *gpus, char **err);

/* Frees what request_id holds (or drops it from the queue if it waits) and grants what the
 * queue can now serve, in serving order: *grants (caller frees; NULL when none) with *n
 * entries. Returns 0 or -ENOENT for an unknown request_id. */
int scheduler_release(struct scheduler *s, const char *request_id, struct sched_grant **grants,
                      size_t *n);

/* Withdraws request_id from the queue (a runtime whose start was abandoned). A request that
 * was already granted is released. Removing the head of the queue may let others in, so
 * it hands out grants like scheduler_release. Returns 0 or -ENOENT. */
int scheduler_cancel(struct scheduler *s, const char *request_id, struct sched_grant **grants,
                     size_t *n);

/* Reinstates a grant with given GPUs (a runtime adopted after a hub restart). Returns 0,
 * -EEXIST, -EBUSY if one of the GPUs is taken, -ENODEV for an index out of range, or
 * -EINVAL. */
int scheduler_adopt(struct scheduler *s, const struct sched_ask *ask, const unsigned *gpus);

/* Position of a queued request in the order the queue would serve it: 1 is next. Returns
 * that position, 0 when the request is granted, or -ENOENT. */
int scheduler_position(const struct scheduler *s, const char *request_id);

/* The GPUs request_id holds: fills gpus (room for SCHED_MAX_GPUS) and returns how many,
 * 0 for a queued or CPU request, or -ENOENT. */
int scheduler_gpus(const struct scheduler *s, const char *request_id, unsigned *gpus);

/* Figures for status pages and /metrics. */
unsigned scheduler_free_gpus(const struct scheduler *s);
size_t scheduler_queued(const struct scheduler *s);

#endif
