/* The drive's trash: a deleted file or folder is moved to DRIVE/.labbook/trash/<id>/item
 * beside a sidecar info.json (its path and when it was deleted), from where it can be
 * restored, deleted forever, or is deleted after [drive] trash_days. The disk operations
 * are blocking and hub-free (the Contents API's DELETE calls trash_put on the thread
 * pool); trash_api and trash_tick are the hub's side. See docs/drive.md, "Trash". */
#ifndef LABBOOK_HUB_TRASH_H
#define LABBOOK_HUB_TRASH_H

#include <jansson.h>
#include <stdint.h>

struct hub;
struct http_req;

#define TRASH_DIR ".labbook/trash"
#define TRASH_ID_LEN 32 /* hex digits of 128 random bits */
#define TRASH_MAX_LIST 10000

/* Moves norm (a normalized, non-empty, non-hidden path beneath root_fd) into the trash,
 * writing its sidecar first, so that a crash at any point leaves the item either where
 * it was or in the trash. id gets the entry's id. Returns 0 or a negative errno
 * (-ENOENT: no such file). Blocking. */
int trash_put(int root_fd, const char *norm, char id[TRASH_ID_LEN + 1]);

/* The user's trash as {"items": [{id, name, path, type, deleted, size}], "truncated"},
 * newest first, at most TRASH_MAX_LIST items; entries older than max_age_s seconds are
 * deleted on the way. root is the drive folder. Caller owns *out. Blocking. */
int trash_list(const char *root, int64_t max_age_s, json_t **out);

/* Restores entry id to its original folder (the drive's root when that folder is gone),
 * as "name (restored).ext" when the name is taken. *path (caller frees) is where it
 * went. -EINVAL: not an id; -ENOENT: no such entry. Blocking. */
int trash_restore(const char *root, const char *id, char **path);

/* Deletes entry id forever. -EINVAL: not an id; -ENOENT: no such entry. Blocking. */
int trash_delete(const char *root, const char *id);

/* Deletes every entry (empty trash), or only those older than max_age_s (max_age_s >= 0),
 * and the leftovers of interrupted operations. Returns how many items went, or a
 * negative errno. Blocking. */
int trash_sweep(const char *root, int64_t max_age_s);

/* /api/drive/trash[/ID[/restore]] (rest is after "/api/drive/trash"). */
void trash_api(struct hub *h, struct http_req *req, const char *rest);

/* Called every second: at start and then every trash_days / 4 (at least 1 s, at most
 * 10 min) sweeps every user's trash on the thread pool. */
void trash_tick(struct hub *h);

#endif
