/* The SQLite store: schema and migrations, users, API tokens and login sessions.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash_str); API tokens and
 * login-session cookies are 32 random bytes, shown once, and stored only as their
 * BLAKE2b hash, so a stolen database grants nothing. All functions return 0 or a
 * negative errno (-ENOENT: no such user/token, -EEXIST: name taken, -EACCES: wrong
 * password, -EINVAL: bad input, -EIO: database error). They do not log.
 *
 * Tokens can be named, given an expiry and revoked by their short public id; users
 * can be disabled and deleted. A process that keeps connections open on the strength
 * of a credential (the hub's WebSockets) notices such changes, made by any process,
 * with store_auth_changed() and checks each credential again with store_cred_check(). */
#ifndef LABBOOK_STORE_STORE_H
#define LABBOOK_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

#define STORE_HASH_BYTES 32     /* BLAKE2b-256 */
#define STORE_TOKEN_ID_LEN 10   /* a token's public id: hex digits */
#define STORE_TOKEN_NAME_MAX 64 /* bytes of a token's name */

enum store_cred_kind { STORE_CRED_NONE, STORE_CRED_TOKEN, STORE_CRED_LOGIN };

/* Which credential proved a request's user, to check it again later: its kind and the
 * hash the store keys it by (not the secret itself), and when it expires. */
struct store_cred {
    enum store_cred_kind kind;
    unsigned char hash[STORE_HASH_BYTES];
    int64_t expires; /* unix seconds; 0: never */
};

struct user {
    int64_t id;
    char name[64];
    bool admin;
    bool has_password;
    bool disabled;   /* refused every sign-in until enabled again */
    int64_t created; /* unix time, seconds */
    /* Filled by store_token_check and store_login_check (kind NONE otherwise). */
    struct store_cred cred;
};

/* One API token as `labbook user tokens` shows it; the secret is never kept. */
struct store_token {
    char id[STORE_TOKEN_ID_LEN + 1];
    char name[STORE_TOKEN_NAME_MAX + 1]; /* "" when it has none (tokens made before names) */
    int64_t created;
    int64_t last_used; /* 0: never (written at most once a minute) */
    int64_t expires;   /* 0: never */
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
/* Fills *out with the user whose id this is, or -ENOENT. */
int store_user_get_id(struct store *s, int64_t id, struct user *out);
/* Sets *count to the number of users. */
int store_user_count(struct store *s, int64_t *count);
/* Calls cb for each user in name order. */
int store_user_list(struct store *s, void (*cb)(void *ctx, const struct user *u), void *ctx);
/* Replaces the user's password (argon2id) and ends every login session of theirs, in
 * one transaction; -ENOENT, or -EINVAL for an empty one. */
int store_user_set_password(struct store *s, const char *name, const char *password);
/* Disables (every token, session and password of theirs is refused, and their login
 * sessions end) or enables again (their tokens work again) a user; -ENOENT. */
int store_user_set_disabled(struct store *s, const char *name, bool disabled);
/* Deletes the user with their tokens and sessions; *id (may be NULL) gets the id
 * they had, which is never given to another user. -ENOENT for an unknown name. */
int store_user_delete(struct store *s, const char *name, int64_t *id);

/* A token's name: at most STORE_TOKEN_NAME_MAX bytes of printable ASCII (so that a
 * listing never needs escaping); "" is none. */
bool store_token_name_valid(const char *name);
/* Creates a new API token for the user; *token (caller frees) is the only copy of it. */
int store_token_create(struct store *s, const char *name, char **token);
/* The same with a name for it (NULL or "": none; at most STORE_TOKEN_NAME_MAX
 * printable ASCII bytes, else -EINVAL) and an expiry (unix seconds, 0: never). id
 * (may be NULL) gets its public id. */
int store_token_create_named(struct store *s, const char *user, const char *token_name,
                             int64_t expires, char **token, char id[STORE_TOKEN_ID_LEN + 1]);
/* Finds the user a token belongs to: one indexed lookup, no argon2; *out gets the
 * credential too. -EKEYEXPIRED for a token past its expiry; anything else that is not
 * a live token (malformed, unknown, revoked, a disabled user's) gives -ENOENT. */
int store_token_check(struct store *s, const char *token, struct user *out);
/* Calls cb for each token of the user, oldest first; -ENOENT for an unknown user. */
int store_token_list(struct store *s, const char *user,
                     void (*cb)(void *ctx, const struct store_token *t), void *ctx);
/* Revokes the user's token with this public id; -ENOENT if they have none such. */
int store_token_revoke(struct store *s, const char *user, const char *id);
/* Revokes every token of the user and ends every login session of theirs; *tokens and
 * *logins (may be NULL) get how many. -ENOENT for an unknown user. */
int store_token_revoke_all(struct store *s, const char *user, int64_t *tokens, int64_t *logins);

/* Checks a password (argon2id: slow on purpose). -EACCES for a wrong password or a
 * user without one, -ENOENT for an unknown user, -EPERM for the right password of a
 * disabled user. out may be NULL. */
int store_password_check(struct store *s, const char *name, const char *password, struct user *out);

/* Checks again a credential that store_token_check or store_login_check accepted for
 * user_id: 0 while it is live; -ENOENT once revoked or ended (or the user deleted),
 * -EKEYEXPIRED past its expiry, -EPERM while the user is disabled. One indexed lookup. */
int store_cred_check(struct store *s, const struct store_cred *cred, int64_t user_id);
/* 1 if, since the previous call on this connection, another connection (another
 * process: `labbook user`) committed a change, or this one revoked a credential;
 * else 0 (or -EIO). The first call gives 1. Cheap (PRAGMA data_version): call it
 * often. */
int store_auth_changed(struct store *s);

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
/* Sets *count to the number of documents of kind whose "owner" member is owner (the
 * runtimes a user still has). */
int store_state_count_owned(struct store *s, const char *kind, int64_t owner, int64_t *count);

#endif
