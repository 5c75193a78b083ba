/* The SQLite store: opening in WAL mode, schema migrations (PRAGMA user_version), users
 * with argon2id passwords, and API tokens and login cookies kept only as BLAKE2b hashes. */
#include "store/store.h"

#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_BYTES 32 /* tokens and cookies: 256 random bits */
#define SECRET_HEX (SECRET_BYTES * 2)
#define HASH_BYTES crypto_generichash_BYTES /* 32: BLAKE2b-256 */
#define PASSWORD_MAX 1024
#define BUSY_TIMEOUT_MS 5000
/* last_used is written at most this often per token, so a busy client does not turn
 * every request into a database write. */
#define LAST_USED_GRANULARITY_S 60

/* Migrations, in order: migrations[i] takes the schema from version i to i + 1. Never
 * edit one that has shipped; append a new one. */
static const char *const migrations[] = {
    /* 1: users, API tokens, login sessions */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
    "  password_hash TEXT,"
    "  created INTEGER NOT NULL"
    ");"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER"
    ");"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE TABLE logins ("
    "  hash BLOB PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  expires INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX logins_user ON logins(user_id);"
    "CREATE INDEX logins_expires ON logins(expires);",
    /* 2: what the hub must find again after a restart (runtimes, sessions), as JSON */
    "CREATE TABLE hub_state ("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  json TEXT NOT NULL,"
    "  PRIMARY KEY (kind, id)"
    ") WITHOUT ROWID;",
};

#define USER_COLS "u.id, u.name, u.admin, u.password_hash IS NOT NULL, u.created"

/* Statements prepared once per connection, on first use. */
enum stmt_id {
    ST_USER_ADD,
    ST_USER_GET,
    ST_USER_COUNT,
    ST_USER_LIST,
    ST_USER_SET_PASSWORD,
    ST_USER_PASSWORD,
    ST_TOKEN_ADD,
    ST_TOKEN_CHECK,
    ST_TOKEN_TOUCH,
    ST_LOGIN_PURGE,
    ST_LOGIN_ADD,
    ST_LOGIN_CHECK,
    ST_LOGIN_DELETE,
    ST_STATE_PUT,
    ST_STATE_DELETE,
    ST_STATE_LIST,
    ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_USER_ADD] = "INSERT INTO users (name, admin, password_hash, created) VALUES (?, ?, ?, ?)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users u WHERE u.name = ?",
    [ST_USER_COUNT] = "SELECT count(*) FROM users",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users u ORDER BY u.name",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ? WHERE name = ?",
    [ST_USER_PASSWORD] = "SELECT " USER_COLS ", u.password_hash FROM users u WHERE u.name = ?",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (user_id, hash, created) "
                     "SELECT id, ?, ? FROM users WHERE name = ?",
    [ST_TOKEN_CHECK] = "SELECT " USER_COLS ", t.id, t.hash, t.last_used "
                       "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
    [ST_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ? WHERE id = ?",
    [ST_LOGIN_PURGE] = "DELETE FROM logins WHERE expires <= ?",
    [ST_LOGIN_ADD] = "INSERT INTO logins (hash, user_id, expires) VALUES (?, ?, ?)",
    [ST_LOGIN_CHECK] = "SELECT " USER_COLS ", l.hash FROM logins l "
                       "JOIN users u ON u.id = l.user_id WHERE l.hash = ? AND l.expires > ?",
    [ST_LOGIN_DELETE] = "DELETE FROM logins WHERE hash = ?",
    [ST_STATE_PUT] = "INSERT OR REPLACE INTO hub_state (kind, id, json) VALUES (?, ?, ?)",
    [ST_STATE_DELETE] = "DELETE FROM hub_state WHERE kind = ? AND id = ?",
    [ST_STATE_LIST] = "SELECT id, json FROM hub_state WHERE kind = ? ORDER BY id",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Returns the prepared statement, reset and unbound, or NULL on a database error. */
static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id)
{
    if (!s->stmts[id] && sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL) != SQLITE_OK) {
        s->stmts[id] = NULL;
        return NULL;
    }
    return s->stmts[id];
}

static void stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Maps the result of a failed sqlite3_step to a negative errno. */
static int step_error(sqlite3 *db)
{
    switch (sqlite3_extended_errcode(db)) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    default:
        return -EIO;
    }
}

/* Reads the USER_COLS at column offset 0 of a row. */
static void user_from_row(sqlite3_stmt *st, struct user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(st, 0);
    const unsigned char *name = sqlite3_column_text(st, 1);
    if (name)
        snprintf(u->name, sizeof(u->name), "%s", (const char *)name);
    u->admin = sqlite3_column_int(st, 2) != 0;
    u->has_password = sqlite3_column_int(st, 3) != 0;
    u->created = sqlite3_column_int64(st, 4);
}

static int exec(sqlite3 *db, const char *sql, char **err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    if (err)
        *err = xasprintf("%s: %s", what, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -EIO;
}

static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int(st, 0);
    r = 0;
out:
    sqlite3_finalize(st);
    return r;
}

/* Applies each pending migration in its own transaction. The version is read again
 * inside the write transaction, so two processes opening a fresh file at once do not
 * both apply the same migration. */
static int migrate(sqlite3 *db, char **err)
{
    const int latest = (int)ARRAY_SIZE(migrations);
    for (;;) {
        int v;
        if (user_version(db, &v) < 0) {
            if (err)
                *err = xasprintf("reading the schema version: %s", sqlite3_errmsg(db));
            return -EIO;
        }
        if (v > latest) {
            if (err)
                *err = xasprintf("the database's schema version is %d, newer than this "
                                 "labbook's (%d): use a newer labbook",
                                 v, latest);
            return -EPROTO;
        }
        if (v == latest)
            return 0;
        if (exec(db, "BEGIN IMMEDIATE", err, "starting a migration") < 0)
            return -EIO;
        if (user_version(db, &v) < 0 || v >= latest) {
            exec(db, "ROLLBACK", NULL, NULL);
            continue; /* somebody else migrated meanwhile: look again */
        }
        char what[64];
        snprintf(what, sizeof(what), "migration %d", v + 1);
        char *set = xasprintf("PRAGMA user_version = %d", v + 1);
        int r = exec(db, migrations[v], err, what);
        if (r == 0)
            r = exec(db, set, err, what);
        if (r == 0)
            r = exec(db, "COMMIT", err, what);
        free(set);
        if (r < 0) {
            exec(db, "ROLLBACK", NULL, NULL);
            return r;
        }
    }
}

int store_open(const char *path, struct store **out, char **err)
{
    struct store *s = NULL;
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    *out = NULL;
    if (err)
        *err = NULL;
    if (sodium_init() < 0) {
        if (err)
            *err = xstrdup("libsodium failed to initialise");
        return -EIO;
    }
    bool existed = access(path, F_OK) == 0;
    s = xcalloc(1, sizeof(*s));
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (err)
            *err =
                xasprintf("opening %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    /* Only hashes are in it, but user names and activity are nobody else's business;
     * SQLite gives the -wal and -shm files the database's mode. */
    if (!existed && chmod(path, 0600) < 0 && errno != ENOENT) {
        r = -errno;
        if (err)
            *err = xasprintf("%s: %s", path, strerror(errno));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer. synchronous=NORMAL is durable across an
     * application crash and consistent across power loss in WAL mode. */
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        if (err)
            *err = xasprintf("opening %s: %s", path, sqlite3_errmsg(s->db));
        goto out;
    }
    const unsigned char *mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        if (err)
            *err = xasprintf("%s: cannot switch to WAL mode (journal mode is %s)", path,
                             mode ? (const char *)mode : "unknown");
        goto out;
    }
    sqlite3_finalize(st); /* a statement still running would block the migrations' COMMIT */
    st = NULL;
    if (exec(s->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err, path) < 0)
        goto out;
    r = migrate(s->db, err);
    if (r < 0)
        goto out;
    *out = s;
    s = NULL; /* owned by the caller now */
    r = 0;
out:
    sqlite3_finalize(st);
    store_close(s);
    return r;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    free(s);
}

bool store_user_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n < 1 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

/* Hashes a password with argon2id into out; returns 0, -EINVAL or -ENOMEM. */
static int password_hash(const char *password, char out[crypto_pwhash_STRBYTES])
{
    size_t n = strlen(password);
    if (n == 0 || n > PASSWORD_MAX)
        return -EINVAL;
    if (crypto_pwhash_str_alg(out, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        return -ENOMEM;
    return 0;
}

int store_user_add(struct store *s, const char *name, bool admin, const char *password)
{
    char hash[crypto_pwhash_STRBYTES];
    sqlite3_stmt *st = NULL;
    int r;
    if (!store_user_name_valid(name))
        return -EINVAL;
    if (password) {
        r = password_hash(password, hash);
        if (r < 0)
            return r;
    }
    r = -EIO;
    st = stmt_get(s, ST_USER_ADD);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, admin ? 1 : 0);
    if (password)
        sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, now_s());
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
out:
    stmt_done(st);
    return r;
}

int store_user_get(struct store *s, const char *name, struct user *out)
{
    sqlite3_stmt *st = stmt_get(s, ST_USER_GET);
    int r = -EIO;
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        user_from_row(st, out);
        r = 0;
    } else {
        r = rc == SQLITE_DONE ? -ENOENT : step_error(s->db);
    }
out:
    stmt_done(st);
    return r;
}

int store_user_count(struct store *s, int64_t *count)
{
    sqlite3_stmt *st = stmt_get(s, ST_USER_COUNT);
    int r = -EIO;
    if (!st)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *count = sqlite3_column_int64(st, 0);
    r = 0;
out:
    stmt_done(st);
    return r;
}

int store_user_list(struct store *s, void (*cb)(void *ctx, const struct user *u), void *ctx)
{
    sqlite3_stmt *st = stmt_get(s, ST_USER_LIST);
    int r = -EIO, rc;
    if (!st)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct user u;
        user_from_row(st, &u);
        cb(ctx, &u);
    }
    r = rc == SQLITE_DONE ? 0 : step_error(s->db);
out:
    stmt_done(st);
    return r;
}

int store_user_set_password(struct store *s, const char *name, const char *password)
{
    char hash[crypto_pwhash_STRBYTES];
    sqlite3_stmt *st = NULL;
    int r;
    if (!name || !password)
        return -EINVAL;
    r = password_hash(password, hash);
    if (r < 0)
        return r;
    r = -EIO;
    st = stmt_get(s, ST_USER_SET_PASSWORD);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    r = sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
out:
    stmt_done(st);
    sodium_memzero(hash, sizeof(hash));
    return r;
}

int store_password_check(struct store *s, const char *name, const char *password, struct user *out)
{
    char hash[crypto_pwhash_STRBYTES];
    struct user u;
    int r = -EIO;
    bool has_hash = false;
    if (!name || !password)
        return -EINVAL;
    sqlite3_stmt *st = stmt_get(s, ST_USER_PASSWORD);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? -ENOENT : step_error(s->db);
        goto out;
    }
    user_from_row(st, &u);
    const unsigned char *h = sqlite3_column_text(st, 5);
    if (h && (size_t)sqlite3_column_bytes(st, 5) < sizeof(hash)) {
        memcpy(hash, h, (size_t)sqlite3_column_bytes(st, 5) + 1);
        has_hash = true;
    }
    stmt_done(st);
    st = NULL;
    r = -EACCES;
    if (!has_hash)
        goto out;
    if (crypto_pwhash_str_verify(hash, password, strlen(password)) != 0)
        goto out;
    if (out)
        *out = u;
    r = 0;
out:
    stmt_done(st);
    return r;
}

/* Makes a new 256-bit secret: hex (the only copy, for the client) and its hash. */
static void secret_new(char hex[SECRET_HEX + 1], unsigned char hash[HASH_BYTES])
{
    unsigned char raw[SECRET_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(hex, SECRET_HEX + 1, raw, sizeof(raw));
    crypto_generichash(hash, HASH_BYTES, raw, sizeof(raw), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
}

/* Hashes a secret a client presented; -ENOENT if it is not 64 hex digits (it cannot
 * be one of ours). */
static int secret_hash(const char *hex, unsigned char hash[HASH_BYTES])
{
    unsigned char raw[SECRET_BYTES];
    size_t n;
    if (!hex || strlen(hex) != SECRET_HEX)
        return -ENOENT;
    if (sodium_hex2bin(raw, sizeof(raw), hex, SECRET_HEX, NULL, &n, NULL) != 0 || n != SECRET_BYTES)
        return -ENOENT;
    crypto_generichash(hash, HASH_BYTES, raw, sizeof(raw), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

/* True if column col of the row holds exactly hash (compared in constant time). */
static bool hash_column_matches(sqlite3_stmt *st, int col, const unsigned char hash[HASH_BYTES])
{
    const void *blob = sqlite3_column_blob(st, col);
    return blob && sqlite3_column_bytes(st, col) == HASH_BYTES &&
           sodium_memcmp(blob, hash, HASH_BYTES) == 0;
}

int store_token_create(struct store *s, const char *name, char **token)
{
    char hex[SECRET_HEX + 1];
    unsigned char hash[HASH_BYTES];
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    *token = NULL;
    if (!name)
        return -EINVAL;
    secret_new(hex, hash);
    st = stmt_get(s, ST_TOKEN_ADD);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_s());
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    if (sqlite3_changes(s->db) == 0) {
        r = -ENOENT; /* no such user: the INSERT ... SELECT found no row */
        goto out;
    }
    *token = xstrdup(hex);
    r = 0;
out:
    stmt_done(st);
    sodium_memzero(hex, sizeof(hex));
    return r;
}

int store_token_check(struct store *s, const char *token, struct user *out)
{
    unsigned char hash[HASH_BYTES];
    sqlite3_stmt *st = NULL;
    int r = secret_hash(token, hash);
    if (r < 0)
        return r;
    r = -EIO;
    st = stmt_get(s, ST_TOKEN_CHECK);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? -ENOENT : step_error(s->db);
        goto out;
    }
    r = -ENOENT;
    if (!hash_column_matches(st, 6, hash))
        goto out;
    struct user u;
    user_from_row(st, &u);
    int64_t token_id = sqlite3_column_int64(st, 5);
    int64_t now = now_s();
    bool touch = sqlite3_column_type(st, 7) == SQLITE_NULL ||
                 sqlite3_column_int64(st, 7) <= now - LAST_USED_GRANULARITY_S;
    stmt_done(st);
    st = NULL;
    if (touch) {
        /* Best effort: a busy database must not turn a valid token away. */
        sqlite3_stmt *up = stmt_get(s, ST_TOKEN_TOUCH);
        if (up) {
            sqlite3_bind_int64(up, 1, now);
            sqlite3_bind_int64(up, 2, token_id);
            sqlite3_step(up);
            stmt_done(up);
        }
    }
    if (out)
        *out = u;
    r = 0;
out:
    stmt_done(st);
    return r;
}

int store_login_create(struct store *s, int64_t user_id, int64_t max_age, char **cookie)
{
    char hex[SECRET_HEX + 1];
    unsigned char hash[HASH_BYTES];
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    int64_t now = now_s();
    *cookie = NULL;
    /* Expired sessions are swept here, one indexed DELETE, so the table stays small. */
    st = stmt_get(s, ST_LOGIN_PURGE);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_step(st);
    stmt_done(st);

    int64_t expires;
    if (max_age > 0 && now > INT64_MAX - max_age)
        expires = INT64_MAX;
    else if (max_age < 0 && now < INT64_MIN - max_age)
        expires = INT64_MIN;
    else
        expires = now + max_age;
    secret_new(hex, hash);
    st = stmt_get(s, ST_LOGIN_ADD);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, expires);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    *cookie = xstrdup(hex);
    r = 0;
out:
    stmt_done(st);
    sodium_memzero(hex, sizeof(hex));
    return r;
}

int store_login_check(struct store *s, const char *cookie, struct user *out)
{
    unsigned char hash[HASH_BYTES];
    sqlite3_stmt *st = NULL;
    int r = secret_hash(cookie, hash);
    if (r < 0)
        return r;
    r = -EIO;
    st = stmt_get(s, ST_LOGIN_CHECK);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_s());
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? -ENOENT : step_error(s->db);
        goto out;
    }
    r = -ENOENT;
    if (!hash_column_matches(st, 5, hash))
        goto out;
    if (out)
        user_from_row(st, out);
    r = 0;
out:
    stmt_done(st);
    return r;
}

int store_login_delete(struct store *s, const char *cookie)
{
    unsigned char hash[HASH_BYTES];
    sqlite3_stmt *st = NULL;
    int r = secret_hash(cookie, hash);
    if (r < 0)
        return r;
    r = -EIO;
    st = stmt_get(s, ST_LOGIN_DELETE);
    if (!st)
        goto out;
    sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    r = sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
out:
    stmt_done(st);
    return r;
}

int store_state_put(struct store *s, const char *kind, const char *id, const char *json)
{
    sqlite3_stmt *st = stmt_get(s, ST_STATE_PUT);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, json, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
    stmt_done(st);
    return r;
}

int store_state_delete(struct store *s, const char *kind, const char *id)
{
    sqlite3_stmt *st = stmt_get(s, ST_STATE_DELETE);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
    stmt_done(st);
    return r;
}

int store_state_list(struct store *s, const char *kind,
                     void (*cb)(void *ctx, const char *id, const char *json), void *ctx)
{
    sqlite3_stmt *st = stmt_get(s, ST_STATE_LIST);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    int r, rc = 0;
    /* Rows are copied out first: the callback may write to the same table. */
    struct row {
        char *id, *json;
    } *rows = NULL;
    size_t n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        rows = xrealloc(rows, (n + 1) * sizeof(*rows));
        rows[n].id = xstrdup((const char *)sqlite3_column_text(st, 0));
        rows[n].json = xstrdup((const char *)sqlite3_column_text(st, 1));
        n++;
    }
    if (r != SQLITE_DONE)
        rc = -EIO;
    stmt_done(st);
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            cb(ctx, rows[i].id, rows[i].json);
        free(rows[i].id);
        free(rows[i].json);
    }
    free(rows);
    return rc;
}
