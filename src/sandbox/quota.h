/* The drive quota, held for writes from a runtime (docs/drive.md, "Quotas and
 * usage"): a thread of the agent measures the user's drive every second or so and,
 * while it holds more than the quota, makes the drive read-only inside the running
 * sandbox (writes fail with EROFS); once it is under again, writable again. The
 * thread logs each change (it has no caller to return to). */
#ifndef LABBOOK_SANDBOX_QUOTA_H
#define LABBOOK_SANDBOX_QUOTA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

struct drive_watch;

/* When the drive is measured: every QUOTA_INTERVAL_MS, and as root as soon as the
 * kernel writes through its mount (fanotify); but never sooner than QUOTA_MIN_GAP_MS
 * or QUOTA_INTERVAL_FACTOR times what the last walk took after the last walk (a big
 * drive is walked less often), at most QUOTA_INTERVAL_MAX_MS apart. */
#define QUOTA_MIN_GAP_MS 50
#define QUOTA_INTERVAL_FACTOR 4
#define QUOTA_INTERVAL_MS 1000
#define QUOTA_INTERVAL_MAX_MS 30000

/* Sum of the sizes of the regular files beneath dir (what the hub counts), or a
 * negative errno. */
int64_t quota_tree_size(const char *dir);

/* Starts watching drive_dir against quota (bytes) for the sandbox whose init is pid
 * (alive: its namespaces are opened now, so the watch never acts on another process
 * that gets the number later). Returns the watch, or NULL when none could start. */
struct drive_watch *drive_watch_start(const char *drive_dir, uint64_t quota, pid_t pid);

/* Whether the watch has made the drive read-only (for tests and logs). */
bool drive_watch_readonly(const struct drive_watch *w);

/* Stops the thread and frees w; w may be NULL. */
void drive_watch_stop(struct drive_watch *w);

/* A running sandbox's root and namespaces, opened from its init's pid. */
struct sandbox_ns {
    int root, mnt, user; /* user: rootless only, else -1 */
};
int sandbox_ns_open(pid_t pid, struct sandbox_ns *ns);
void sandbox_ns_close(struct sandbox_ns *ns);

/* Makes the drive read-only (or writable again) inside the sandbox of ns. Returns 0
 * or a negative errno. */
int sandbox_drive_set_readonly(const struct sandbox_ns *ns, bool ro);

#endif
