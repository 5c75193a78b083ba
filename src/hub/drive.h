/* The drive beyond the Contents API: per-user usage and quota, the /api/drive/...
 * routes (usage, extraction, folder zips), and the blocking helpers that uploads,
 * extraction and downloads share (creating folders beneath the drive, removing a
 * tree). See docs/drive.md. */
#ifndef LABBOOK_HUB_DRIVE_H
#define LABBOOK_HUB_DRIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hub;
struct http_req;
struct user;
struct usage_ent;
struct extract_job;
struct tus_active;

/* Per-hub drive state, owned by the hub. The usage cache is shared with the thread
 * pool (under mu); the rest belongs to the loop. */
struct drive {
    pthread_mutex_t mu;
    struct usage_ent *usage;
    struct extract_job *extracts;
    struct tus_active *uploads;
    char *uploads_dir;   /* DATA/uploads */
    bool stopping;       /* the hub is shutting down: extractions stop (read by workers) */
    uint64_t last_sweep; /* when expired uploads were last looked for (ms) */
    bool sweeping;
    uint64_t trash_last_sweep; /* when expired trash was last looked for (ms) */
    bool trash_sweeping;
};

struct drive *drive_new(const char *data_dir);
void drive_free(struct drive *d);

/* Bytes the user's drive holds (regular files' sizes), from a cache younger than a
 * few seconds or by walking the tree (blocking: call on the thread pool). root is the
 * drive folder. Returns 0 or a negative errno. Thread-safe. */
int drive_usage(struct drive *d, const char *user, const char *root, int64_t *used);
/* Adjusts the cached figure after a write of known size; forget drops it so that
 * the next drive_usage walks again. Thread-safe. */
void drive_usage_add(struct drive *d, const char *user, int64_t delta);
void drive_usage_forget(struct drive *d, const char *user);
/* Bytes still free for the user: quota - used (never below 0), or, without a quota,
 * what the file system has free. Blocking. */
int drive_free_bytes(struct hub *h, const char *user, const char *root, int64_t *free_out);
/* "N MiB" style size for messages, into out. */
void drive_human(int64_t bytes, char out[32]);

/* Opens the folder rel beneath rootfd, creating missing components (0755); no
 * symlink is followed on the way. Returns an O_DIRECTORY fd or a negative errno. */
int drive_mkdirs(int rootfd, const char *rel);
/* True when a component of the normalized path starts with '.'. */
bool drive_path_hidden(const char *norm);

/* /api/drive/{usage, extract, extract/ID, zip/PATH} (rest is after "/api/drive"). */
void drive_api(struct hub *h, struct http_req *req, const char *rest);

#endif
