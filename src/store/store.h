/* The SQLite store: schema and migrations, users, API tokens and login sessions.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash_str); API tokens and
 * login-session cookies are 32 random bytes, shown once, and stored only as their
 * BLAKE2b hash, so a stolen database grants nothing. All functions return 0 or a
 * negative errno (-ENOENT: no such user/token, -EEXIST: name taken, -EACCES: wrong
 * password, -EINVAL: bad input, -EIO: database error). They do not log. */
#ifndef LABBOOK_STORE_STORE_H
#define LABBOOK_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

struct user {
    int64_t id;
    char name[64];
    bool admin;
    bool has_password;
    int64_t created; /* unix time, seconds */
};

/* Opens (creating if needed) the database at path in WAL mode and runs every pending
 * migration in a transaction. On failure *err (may be NULL) gets a message the
 * caller frees; a database whose schema is newer than this binary's is refused with
 * -EPROTO. A struct store is one SQLite connection: use it from one thread at a
 * time (open one per thread). store_user_add, store_user_set_password and
 * store_password_check run argon2id (tens of ms, 64 MiB): keep them off the event
 * loop; every other call is one or two indexed queries. */
int store_open(const char *path, struct store **out, char **err);
void store_close(struct store *s);

/* User names: 1-32 characters of [a-z0-9_.-], starting with a letter or digit. */
bool store_user_name_valid(const char *name);
/* Adds a user; password NULL: none (token sign-in only). -EINVAL for an invalid name or
 * an empty password, -EEXIST for a taken name. */
int store_user_add(struct store *s, const char *name, bool admin, const char *password);
/* Fills *out with the named user, or -ENOENT. */
int store_user_get(struct store *s, const char *name, struct user *out);
/* Sets *count to the number of users. */
int store_user_count(struct store *s, int64_t *count);
/* Calls cb for each user in name order. */
int store_user_list(struct store *s, void (*cb)(void *ctx, const struct user *u), void *ctx);
/* Replaces the user's password (argon2id); -ENOENT, or -EINVAL for an empty one. */
int store_user_set_password(struct store *s, const char *name, const char *password);

/* Creates a new API token for the user; *token (caller frees) is the only copy of it. */
int store_token_create(struct store *s, const char *name, char **token);
/* Finds the user a token belongs to: one indexed lookup, no argon2. Anything that is
 * not a live token (malformed, unknown) gives -ENOENT. */
int store_token_check(struct store *s, const char *token, struct user *out);

/* Checks a password (argon2id: slow on purpose). -EACCES for a wrong password or a
 * user without one, -ENOENT for an unknown user. out may be NULL. */
int store_password_check(struct store *s, const char *name, const char *password, struct user *out);

/* Login sessions behind the cookie: create returns the cookie value (caller frees);
 * they expire after max_age seconds (0 or less: already expired) and are swept by later
 * creates. create gives -ENOENT for an unknown user_id; check and delete give -ENOENT
 * for an unknown, expired or malformed cookie. */
int store_login_create(struct store *s, int64_t user_id, int64_t max_age, char **cookie);
int store_login_check(struct store *s, const char *cookie, struct user *out);
int store_login_delete(struct store *s, const char *cookie);

/* The hub's own state that must outlive it (runtimes, sessions): JSON documents by
 * kind and id. put replaces; list calls cb for each, in id order. */
int store_state_put(struct store *s, const char *kind, const char *id, const char *json);
int store_state_delete(struct store *s, const char *kind, const char *id);
int store_state_list(struct store *s, const char *kind,
                     void (*cb)(void *ctx, const char *id, const char *json), void *ctx);

#endif
