/* Password sign-in kept off the event loop and hard to guess against: argon2id runs
 * on libuv's thread pool, a bounded number at once, and costs the same for an unknown
 * user or one without a password; failed attempts are counted per user name and per
 * client address, so that guessing meets 429. */
#ifndef LABBOOK_HUB_LOGIN_H
#define LABBOOK_HUB_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct hub;

/* --- Failure counters ---
 * Fixed windows: an attempt counts as failed from its start (so that attempts made in
 * parallel cannot pass the limit) until login_limiter_success() says otherwise. Each
 * table is capped; when full, an expired entry or else the oldest is replaced. */
struct login_limiter;
struct login_limiter *login_limiter_new(int per_user, int per_addr, int window_s);
void login_limiter_free(struct login_limiter *l);
/* Before an attempt at name from addr at time now (seconds). Returns 0 and counts the
 * attempt, or the seconds until another attempt is allowed (> 0, nothing counted). */
int login_limiter_begin(struct login_limiter *l, const char *name, const char *addr, int64_t now);
/* The attempt succeeded: the name's failures are forgotten, the address's not counted.
 * l may be NULL (nothing to do). */
void login_limiter_success(struct login_limiter *l, const char *name, const char *addr);

/* --- Checks on the thread pool --- */

/* Checks name's password against the store s, running exactly one argon2id
 * verification whatever the outcome (an unknown user, or one without a password, is
 * checked against a stand-in hash). 0 and *out filled, or -EACCES for any failure
 * (-EIO for a database error). Blocking: for a worker thread. */
int login_verify(struct store *s, const char *name, const char *password, struct user *out);
/* How many argon2id verifications login_verify has run (for tests and /metrics). */
uint64_t login_hash_count(void);

/* Called on the loop when a check is done: result 0 (u valid) or a negative errno. */
typedef void (*login_done_fn)(void *ctx, int result, const struct user *u);

/* Sets the pool up for the hub (the store file is opened once per worker slot). */
void login_init(struct hub *h);
/* Closes what the pool holds once its checks have returned. */
void login_shutdown(void);
/* Queues a check of name and password (copied); done is called later on the loop,
 * exactly once. At most [server] login_hashes_at_once run at once; -EBUSY (done not
 * called) when too many wait already. */
int login_check_start(struct hub *h, const char *name, const char *password, login_done_fn done,
                      void *ctx);

#endif
