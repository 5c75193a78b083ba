/* The start-up sweep of what a crashed hub left behind in the drives and the uploads
 * folder: only the hub's own names, only entries older than this hub's start, on one
 * file system, never through a symlink. See docs/reliability.md. */
#ifndef LABBOOK_HUB_LEFTOVERS_H
#define LABBOOK_HUB_LEFTOVERS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct hub;

struct leftovers_opts {
    struct timespec before; /* only entries last changed before this (the start marker) */
    int64_t upload_stale_s; /* a chunked upload's file: also idle this long before that */
    /* called for each entry removed (path relative to the folder swept), or NULL */
    void (*removed)(void *ctx, const char *rel, bool dir);
    void *ctx;
};

/* Which of the hub's own names this is, as the sweep of a drive sees it: an
 * extraction's folder ".labbook-extract-*" (dir), its marker
 * ".labbook-extract-*.done[.tmp]", an atomic write's ".~labbook-*.tmp" and a chunked
 * upload's ".~labbook-upload-*" (files). 0: not ours; 1: ours; 2: ours when stale (an
 * upload that may still be resumed). Pure. */
int leftovers_name_kind(const char *name, bool dir);

/* Removes the hub's own leftovers beneath the folder dirfd (a user's drive), which it
 * does not close: entries with one of those names (leftovers_name_kind) and a change
 * time before opts->before, folders with what is in them. Folders are entered with
 * O_NOFOLLOW, not across a mount, at most FS_RM_MAX_DEPTH deep; symlinks are never
 * followed nor removed. Returns the number of entries removed. Blocking. */
int leftovers_sweep_drive(int dirfd, const struct leftovers_opts *opts);

/* Removes, in one user's uploads folder dirfd (DATA/uploads/<user>), the tus part
 * files "<id>.part" without their record "<id>.json" and the temporary files of record
 * writes ("*.~tmp*"), older than opts->before. Returns the number removed. Blocking. */
int leftovers_sweep_uploads(int dirfd, const struct leftovers_opts *opts);

/* Writes the start marker DATA/.labbook-start (its mtime is now) and queues the sweep
 * of every user's drive and uploads folder on the thread pool; each removal is
 * logged, and the users' usage figures are dropped when it ends. */
void leftovers_start(struct hub *h);

#endif
