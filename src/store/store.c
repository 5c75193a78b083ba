/* The SQLite store: opening in WAL mode, schema migrations (PRAGMA user_version), users
 * with argon2id passwords, and API tokens and login cookies kept only as BLAKE2b hashes;
 * their revocation, and the cheap check that tells the hub something changed. */
#include "store/store.h"
#include "store/store_db.h"

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
_Static_assert(HASH_BYTES == STORE_HASH_BYTES, "struct store_cred holds a BLAKE2b-256 hash");
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
    /* 3: named, expiring, revocable tokens with short public ids (existing tokens get
     * one, no name and no expiry); disabled users; the ids of deleted users, never
     * given again (a runtime's owner id must not come to mean somebody else). */
    "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));"
    "ALTER TABLE tokens ADD COLUMN public_id TEXT;"
    "ALTER TABLE tokens ADD COLUMN name TEXT;"
    "ALTER TABLE tokens ADD COLUMN expires INTEGER;"
    "UPDATE tokens SET public_id = lower(hex(randomblob(5)));"
    "CREATE UNIQUE INDEX tokens_public_id ON tokens(public_id);"
    "CREATE TABLE users_retired ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL"
    ");",
    /* 4: each user's secrets (google.colab.userdata), encrypted by the hub before they
     * get here (store/secrets.h), and the notebooks each may be read from */
    "CREATE TABLE secrets ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  nonce BLOB NOT NULL,"
    "  value BLOB NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE secret_grants ("
    "  user_id INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  notebook TEXT NOT NULL,"
    "  PRIMARY KEY (user_id, name, notebook),"
    "  FOREIGN KEY (user_id, name) REFERENCES secrets(user_id, name) ON DELETE CASCADE"
    ") WITHOUT ROWID;",
};

#define USER_COLS "u.id, u.name, u.admin, u.password_hash IS NOT NULL, u.created, u.disabled"
#define USER_NCOLS 6
/* A new user's id is above every id a user ever had. */
#define NEXT_USER_ID                                                                               \
    "(SELECT max(coalesce((SELECT max(id) FROM users), 0), "                                       \
    "coalesce((SELECT max(id) FROM users_retired), 0)) + 1)"

/* Statements prepared once per connection, on first use. */
enum stmt_id {
    ST_USER_ADD,
    ST_USER_GET,
    ST_USER_GET_ID,
    ST_USER_SET_DISABLED,
    ST_USER_RETIRE,
    ST_USER_DELETE,
    ST_LOGINS_END,
    ST_USER_COUNT,
    ST_USER_LIST,
    ST_USER_SET_PASSWORD,
    ST_USER_PASSWORD,
    ST_TOKEN_ADD,
    ST_TOKEN_CHECK,
    ST_TOKEN_TOUCH,
    ST_TOKEN_LIST,
    ST_TOKEN_REVOKE,
    ST_TOKEN_REVOKE_ALL,
    ST_CRED_TOKEN,
    ST_CRED_LOGIN,
    ST_DATA_VERSION,
    ST_LOGIN_PURGE,
    ST_LOGIN_ADD,
    ST_LOGIN_CHECK,
    ST_LOGIN_DELETE,
    ST_STATE_PUT,
    ST_STATE_DELETE,
    ST_STATE_LIST,
    ST_STATE_COUNT_OWNED,
    ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_USER_ADD] = "INSERT INTO users (id, name, admin, password_hash, created) "
                    "VALUES (" NEXT_USER_ID ", ?, ?, ?, ?)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users u WHERE u.name = ?",
    [ST_USER_GET_ID] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?",
    [ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ? WHERE name = ?",
    [ST_USER_RETIRE] = "INSERT OR REPLACE INTO users_retired (id, name, deleted) "
                       "SELECT id, name, ? FROM users WHERE name = ?",
    [ST_USER_DELETE] = "DELETE FROM users WHERE name = ?",
    [ST_LOGINS_END] = "DELETE FROM logins WHERE user_id = (SELECT id FROM users WHERE name = ?)",
    [ST_USER_COUNT] = "SELECT count(*) FROM users",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users u ORDER BY u.name",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ? WHERE name = ?",
    [ST_USER_PASSWORD] = "SELECT " USER_COLS ", u.password_hash FROM users u WHERE u.name = ?",
    [ST_TOKEN_ADD] = "INSERT INTO tokens (user_id, hash, created, public_id, name, expires) "
                     "SELECT id, ?, ?, ?, ?, ? FROM users WHERE name = ?",
    [ST_TOKEN_CHECK] = "SELECT " USER_COLS ", t.id, t.hash, t.last_used, t.expires "
                       "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
    [ST_TOKEN_TOUCH] = "UPDATE tokens SET last_used = ? WHERE id = ?",
    [ST_TOKEN_LIST] = "SELECT t.public_id, t.name, t.created, t.last_used, t.expires "
                      "FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = ? "
                      "ORDER BY t.created, t.id",
    [ST_TOKEN_REVOKE] = "DELETE FROM tokens WHERE public_id = ? "
                        "AND user_id = (SELECT id FROM users WHERE name = ?)",
    [ST_TOKEN_REVOKE_ALL] =
        "DELETE FROM tokens WHERE user_id = (SELECT id FROM users WHERE name = ?)",
    [ST_CRED_TOKEN] = "SELECT t.user_id, t.hash, t.expires, u.disabled "
                      "FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
    [ST_CRED_LOGIN] = "SELECT l.user_id, l.hash, l.expires, u.disabled "
                      "FROM logins l JOIN users u ON u.id = l.user_id WHERE l.hash = ?",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_LOGIN_PURGE] = "DELETE FROM logins WHERE expires <= ?",
    [ST_LOGIN_ADD] = "INSERT INTO logins (hash, user_id, expires) VALUES (?, ?, ?)",
    [ST_LOGIN_CHECK] = "SELECT " USER_COLS ", l.hash, l.expires FROM logins l "
                       "JOIN users u ON u.id = l.user_id WHERE l.hash = ? AND l.expires > ?",
    [ST_LOGIN_DELETE] = "DELETE FROM logins WHERE hash = ?",
    [ST_STATE_PUT] = "INSERT OR REPLACE INTO hub_state (kind, id, json) VALUES (?, ?, ?)",
    [ST_STATE_DELETE] = "DELETE FROM hub_state WHERE kind = ? AND id = ?",
    [ST_STATE_LIST] = "SELECT id, json FROM hub_state WHERE kind = ? ORDER BY id",
    [ST_STATE_COUNT_OWNED] = "SELECT count(*) FROM hub_state "
                             "WHERE kind = ? AND json_extract(json, '$.owner') = ?",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    /* store_auth_changed: the data_version last seen (-1: none yet), and credentials
     * this connection revoked (other connections' changes move data_version). */
    int64_t data_version;
    uint64_t revoked, revoked_seen;
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
    u->disabled = sqlite3_column_int(st, 5) != 0;
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
    s->data_version = -1;
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

sqlite3 *store_db(struct store *s)
{
    return s->db;
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

/* Runs a statement whose one parameter is a user name; *changes (may be NULL) gets
 * the rows it changed. */
static int run_by_name(struct store *s, enum stmt_id id, const char *name, int64_t *changes)
{
    sqlite3_stmt *st = stmt_get(s, id);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
    if (r == 0 && changes)
        *changes = sqlite3_changes(s->db);
    stmt_done(st);
    return r;
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

int store_user_get_id(struct store *s, int64_t id, struct user *out)
{
    sqlite3_stmt *st = stmt_get(s, ST_USER_GET_ID);
    int r = -EIO;
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, id);
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
    if (exec(s->db, "BEGIN IMMEDIATE", NULL, NULL) < 0)
        goto out;
    st = stmt_get(s, ST_USER_SET_PASSWORD);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    if (sqlite3_changes(s->db) == 0) {
        r = -ENOENT;
        goto out;
    }
    stmt_done(st);
    st = NULL;
    /* Whoever knew the old password is signed out everywhere. */
    r = run_by_name(s, ST_LOGINS_END, name, NULL);
    if (r == 0)
        r = exec(s->db, "COMMIT", NULL, NULL);
out:
    stmt_done(st);
    if (r < 0)
        exec(s->db, "ROLLBACK", NULL, NULL);
    else
        s->revoked++;
    sodium_memzero(hash, sizeof(hash));
    return r;
}

int store_user_set_disabled(struct store *s, const char *name, bool disabled)
{
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    if (!name)
        return -EINVAL;
    if (exec(s->db, "BEGIN IMMEDIATE", NULL, NULL) < 0)
        return -EIO;
    st = stmt_get(s, ST_USER_SET_DISABLED);
    if (!st)
        goto out;
    sqlite3_bind_int(st, 1, disabled ? 1 : 0);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    if (sqlite3_changes(s->db) == 0) {
        r = -ENOENT;
        goto out;
    }
    stmt_done(st);
    st = NULL;
    r = disabled ? run_by_name(s, ST_LOGINS_END, name, NULL) : 0;
    if (r == 0)
        r = exec(s->db, "COMMIT", NULL, NULL);
out:
    stmt_done(st);
    if (r < 0)
        exec(s->db, "ROLLBACK", NULL, NULL);
    else
        s->revoked++;
    return r;
}

int store_user_delete(struct store *s, const char *name, int64_t *id)
{
    struct user u;
    sqlite3_stmt *st = NULL;
    if (!name)
        return -EINVAL;
    if (exec(s->db, "BEGIN IMMEDIATE", NULL, NULL) < 0)
        return -EIO;
    int r = store_user_get(s, name, &u);
    if (r < 0)
        goto out;
    /* The id is kept, so that no later user is given it. */
    r = -EIO;
    st = stmt_get(s, ST_USER_RETIRE);
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, now_s());
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        r = step_error(s->db);
        goto out;
    }
    stmt_done(st);
    st = NULL;
    /* Their tokens and sessions go with them (ON DELETE CASCADE). */
    r = run_by_name(s, ST_USER_DELETE, name, NULL);
    if (r == 0)
        r = exec(s->db, "COMMIT", NULL, NULL);
out:
    stmt_done(st);
    if (r < 0) {
        exec(s->db, "ROLLBACK", NULL, NULL);
        return r;
    }
    s->revoked++;
    if (id)
        *id = u.id;
    return 0;
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
    const unsigned char *h = sqlite3_column_text(st, USER_NCOLS);
    if (h && (size_t)sqlite3_column_bytes(st, USER_NCOLS) < sizeof(hash)) {
        memcpy(hash, h, (size_t)sqlite3_column_bytes(st, USER_NCOLS) + 1);
        has_hash = true;
    }
    stmt_done(st);
    st = NULL;
    r = -EACCES;
    if (!has_hash)
        goto out;
    if (crypto_pwhash_str_verify(hash, password, strlen(password)) != 0)
        goto out;
    /* Checked after the password, so that a wrong password says nothing more. */
    r = -EPERM;
    if (u.disabled)
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

bool store_token_name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len > STORE_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || (unsigned char)n[i] > 0x7e)
            return false;
    return true;
}

int store_token_create(struct store *s, const char *name, char **token)
{
    return store_token_create_named(s, name, NULL, 0, token, NULL);
}

int store_token_create_named(struct store *s, const char *user, const char *token_name,
                             int64_t expires, char **token, char id[STORE_TOKEN_ID_LEN + 1])
{
    char hex[SECRET_HEX + 1], pub[STORE_TOKEN_ID_LEN + 1];
    unsigned char hash[HASH_BYTES], raw_id[STORE_TOKEN_ID_LEN / 2];
    sqlite3_stmt *st = NULL;
    int r = -EIO;
    *token = NULL;
    if (!user || (token_name && !store_token_name_valid(token_name)) || expires < 0)
        return -EINVAL;
    secret_new(hex, hash);
    /* The public id is random too, so that it says nothing about the secret; a clash
     * with another token's (one in 2^40) just draws again. */
    for (int tries = 0; tries < 8; tries++) {
        randombytes_buf(raw_id, sizeof(raw_id));
        sodium_bin2hex(pub, sizeof(pub), raw_id, sizeof(raw_id));
        st = stmt_get(s, ST_TOKEN_ADD);
        if (!st)
            goto out;
        sqlite3_bind_blob(st, 1, hash, HASH_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_s());
        sqlite3_bind_text(st, 3, pub, -1, SQLITE_STATIC);
        if (token_name && *token_name)
            sqlite3_bind_text(st, 4, token_name, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        if (expires > 0)
            sqlite3_bind_int64(st, 5, expires);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_text(st, 6, user, -1, SQLITE_STATIC);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
        if (r == 0 && sqlite3_changes(s->db) == 0)
            r = -ENOENT; /* no such user: the INSERT ... SELECT found no row */
        stmt_done(st);
        st = NULL;
        if (r != -EEXIST)
            break;
    }
    if (r < 0)
        goto out;
    *token = xstrdup(hex);
    if (id)
        memcpy(id, pub, sizeof(pub));
out:
    stmt_done(st);
    sodium_memzero(hex, sizeof(hex));
    return r;
}

static void cred_set(struct user *u, enum store_cred_kind kind,
                     const unsigned char hash[HASH_BYTES], int64_t expires)
{
    u->cred.kind = kind;
    memcpy(u->cred.hash, hash, HASH_BYTES);
    u->cred.expires = expires;
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
    if (!hash_column_matches(st, USER_NCOLS + 1, hash))
        goto out;
    struct user u;
    user_from_row(st, &u);
    if (u.disabled)
        goto out;
    int64_t token_id = sqlite3_column_int64(st, USER_NCOLS);
    int64_t now = now_s();
    int64_t expires = sqlite3_column_int64(st, USER_NCOLS + 3); /* NULL reads as 0: never */
    r = -EKEYEXPIRED;
    if (expires > 0 && expires <= now)
        goto out;
    bool touch = sqlite3_column_type(st, USER_NCOLS + 2) == SQLITE_NULL ||
                 sqlite3_column_int64(st, USER_NCOLS + 2) <= now - LAST_USED_GRANULARITY_S;
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
    cred_set(&u, STORE_CRED_TOKEN, hash, expires);
    if (out)
        *out = u;
    r = 0;
out:
    stmt_done(st);
    return r;
}

static void text_column(sqlite3_stmt *st, int col, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

int store_token_list(struct store *s, const char *user,
                     void (*cb)(void *ctx, const struct store_token *t), void *ctx)
{
    struct user u;
    int r = store_user_get(s, user, &u);
    if (r < 0)
        return r;
    sqlite3_stmt *st = stmt_get(s, ST_TOKEN_LIST);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    /* Rows are copied out first: the callback may use the store. */
    struct store_token *rows = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows = xrealloc(rows, (n + 1) * sizeof(*rows));
        struct store_token *t = &rows[n++];
        text_column(st, 0, t->id, sizeof(t->id));
        text_column(st, 1, t->name, sizeof(t->name));
        t->created = sqlite3_column_int64(st, 2);
        t->last_used = sqlite3_column_int64(st, 3);
        t->expires = sqlite3_column_int64(st, 4);
    }
    r = rc == SQLITE_DONE ? 0 : step_error(s->db);
    stmt_done(st);
    for (size_t i = 0; r == 0 && i < n; i++)
        cb(ctx, &rows[i]);
    free(rows);
    return r;
}

int store_token_revoke(struct store *s, const char *user, const char *id)
{
    if (!user || !id)
        return -EINVAL;
    sqlite3_stmt *st = stmt_get(s, ST_TOKEN_REVOKE);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : step_error(s->db);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = -ENOENT;
    stmt_done(st);
    if (r == 0)
        s->revoked++;
    return r;
}

int store_token_revoke_all(struct store *s, const char *user, int64_t *tokens, int64_t *logins)
{
    struct user u;
    int64_t nt = 0, nl = 0;
    if (!user)
        return -EINVAL;
    if (exec(s->db, "BEGIN IMMEDIATE", NULL, NULL) < 0)
        return -EIO;
    int r = store_user_get(s, user, &u);
    if (r == 0)
        r = run_by_name(s, ST_TOKEN_REVOKE_ALL, user, &nt);
    if (r == 0)
        r = run_by_name(s, ST_LOGINS_END, user, &nl);
    if (r == 0)
        r = exec(s->db, "COMMIT", NULL, NULL);
    if (r < 0) {
        exec(s->db, "ROLLBACK", NULL, NULL);
        return r;
    }
    s->revoked++;
    if (tokens)
        *tokens = nt;
    if (logins)
        *logins = nl;
    return 0;
}

int store_cred_check(struct store *s, const struct store_cred *cred, int64_t user_id)
{
    enum stmt_id id;
    if (cred->kind == STORE_CRED_TOKEN)
        id = ST_CRED_TOKEN;
    else if (cred->kind == STORE_CRED_LOGIN)
        id = ST_CRED_LOGIN;
    else
        return -ENOENT;
    sqlite3_stmt *st = stmt_get(s, id);
    if (!st)
        return -EIO;
    sqlite3_bind_blob(st, 1, cred->hash, HASH_BYTES, SQLITE_STATIC);
    int r, rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? -ENOENT : step_error(s->db);
        goto out;
    }
    int64_t expires = sqlite3_column_int64(st, 2);
    if (sqlite3_column_int64(st, 0) != user_id || !hash_column_matches(st, 1, cred->hash))
        r = -ENOENT;
    else if (sqlite3_column_int(st, 3) != 0)
        r = -EPERM;
    else if ((cred->kind == STORE_CRED_LOGIN || expires > 0) && expires <= now_s())
        r = -EKEYEXPIRED;
    else
        r = 0;
out:
    stmt_done(st);
    return r;
}

int store_auth_changed(struct store *s)
{
    sqlite3_stmt *st = stmt_get(s, ST_DATA_VERSION);
    if (!st)
        return -EIO;
    int r = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);
        r = v != s->data_version || s->revoked != s->revoked_seen;
        s->data_version = v;
        s->revoked_seen = s->revoked;
    }
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
    if (!hash_column_matches(st, USER_NCOLS, hash))
        goto out;
    struct user u;
    user_from_row(st, &u);
    if (u.disabled)
        goto out;
    cred_set(&u, STORE_CRED_LOGIN, hash, sqlite3_column_int64(st, USER_NCOLS + 1));
    if (out)
        *out = u;
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
    if (r == 0)
        s->revoked++; /* a WebSocket opened with it ends too */
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

int store_state_count_owned(struct store *s, const char *kind, int64_t owner, int64_t *count)
{
    sqlite3_stmt *st = stmt_get(s, ST_STATE_COUNT_OWNED);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, owner);
    int r = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        r = 0;
    }
    stmt_done(st);
    return r;
}
