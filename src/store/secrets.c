/* Users' secrets and their per-notebook grants in SQLite (schema migration 4). Values
 * arrive sealed by the hub; this file only keeps them. Statements are prepared per
 * call: these are rare (a person editing the panel, a cell reading a secret). */
#include "store/secrets.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "store/store_db.h"

static sqlite3_stmt *prep(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

static int exec1(struct store *s, const char *sql)
{
    return sqlite3_exec(store_db(s), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* The number of rows the query (one int64 bound, then one text) counts, or -EIO. */
static int64_t count(struct store *s, const char *sql, int64_t user_id, const char *name)
{
    sqlite3_stmt *st = prep(s, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    if (name)
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -EIO;
    sqlite3_finalize(st);
    return n;
}

static bool exists(struct store *s, int64_t user_id, const char *name)
{
    return count(s, "SELECT count(*) FROM secrets WHERE user_id = ? AND name = ?", user_id, name) >
           0;
}

int store_secret_put(struct store *s, int64_t user_id, const char *name, const void *nonce,
                     size_t nonce_len, const void *sealed, size_t sealed_len, bool *created)
{
    if (exec1(s, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    int r = 0;
    sqlite3_stmt *st = NULL;
    bool is_new = !exists(s, user_id, name);
    if (is_new && count(s, "SELECT count(*) FROM secrets WHERE user_id = ?", user_id, NULL) >=
                      STORE_SECRETS_MAX) {
        r = -EDQUOT;
        goto out;
    }
    st = prep(s, "INSERT INTO secrets (user_id, name, nonce, value, created, updated) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (user_id, name) DO UPDATE SET "
                 "nonce = excluded.nonce, value = excluded.value, updated = excluded.updated");
    if (!st) {
        r = -EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, nonce, (int)nonce_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sealed, (int)sealed_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = sqlite3_extended_errcode(store_db(s)) == SQLITE_CONSTRAINT_FOREIGNKEY ? -ENOENT : -EIO;
out:
    sqlite3_finalize(st);
    if (r == 0 && exec1(s, "COMMIT") < 0)
        r = -EIO;
    if (r < 0)
        exec1(s, "ROLLBACK");
    if (r == 0 && created)
        *created = is_new;
    return r;
}

static uint8_t *blob_dup(sqlite3_stmt *st, int col, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(st, col);
    uint8_t *b = xmalloc(*len ? *len : 1);
    if (*len)
        memcpy(b, sqlite3_column_blob(st, col), *len);
    return b;
}

int store_secret_get(struct store *s, int64_t user_id, const char *name, uint8_t **nonce,
                     size_t *nonce_len, uint8_t **sealed, size_t *sealed_len,
                     struct store_secret *info)
{
    sqlite3_stmt *st = prep(s, "SELECT nonce, value, created, updated FROM secrets "
                               "WHERE user_id = ? AND name = ?");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        *nonce = blob_dup(st, 0, nonce_len);
        *sealed = blob_dup(st, 1, sealed_len);
        if (info) {
            info->name = name;
            info->created = sqlite3_column_int64(st, 2);
            info->updated = sqlite3_column_int64(st, 3);
            info->granted = false;
        }
    } else {
        r = rc == SQLITE_DONE ? -ENOENT : -EIO;
    }
    sqlite3_finalize(st);
    return r;
}

int store_secret_delete(struct store *s, int64_t user_id, const char *name)
{
    /* Grants go with it (ON DELETE CASCADE). */
    sqlite3_stmt *st = prep(s, "DELETE FROM secrets WHERE user_id = ? AND name = ?");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    if (r == 0 && sqlite3_changes(store_db(s)) == 0)
        r = -ENOENT;
    sqlite3_finalize(st);
    return r;
}

int store_secret_list(struct store *s, int64_t user_id, const char *notebook,
                      void (*cb)(void *ctx, const struct store_secret *sec), void *ctx)
{
    sqlite3_stmt *st = prep(s, "SELECT s.name, s.created, s.updated, EXISTS (SELECT 1 FROM "
                               "secret_grants g WHERE g.user_id = s.user_id AND g.name = s.name "
                               "AND g.notebook = ?2) FROM secrets s WHERE s.user_id = ?1 "
                               "ORDER BY s.name");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    if (notebook)
        sqlite3_bind_text(st, 2, notebook, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_secret sec = {.name = (const char *)sqlite3_column_text(st, 0),
                                   .created = sqlite3_column_int64(st, 1),
                                   .updated = sqlite3_column_int64(st, 2),
                                   .granted = notebook && sqlite3_column_int(st, 3)};
        cb(ctx, &sec);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_secret_grant(struct store *s, int64_t user_id, const char *name, const char *notebook,
                       bool on)
{
    if (exec1(s, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    int r = 0;
    sqlite3_stmt *st = NULL;
    if (!exists(s, user_id, name)) {
        r = -ENOENT;
        goto out;
    }
    if (on && count(s, "SELECT count(*) FROM secret_grants WHERE user_id = ? AND name = ?", user_id,
                    name) >= STORE_GRANTS_MAX) {
        r = -EDQUOT;
        goto out;
    }
    st = prep(s, on ? "INSERT OR IGNORE INTO secret_grants (user_id, name, notebook) "
                      "VALUES (?, ?, ?)"
                    : "DELETE FROM secret_grants WHERE user_id = ? AND name = ? AND notebook = ?");
    if (!st) {
        r = -EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, notebook, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        r = -EIO;
out:
    sqlite3_finalize(st);
    if (r == 0 && exec1(s, "COMMIT") < 0)
        r = -EIO;
    if (r < 0)
        exec1(s, "ROLLBACK");
    return r;
}

int store_secret_notebooks(struct store *s, int64_t user_id, const char *name,
                           void (*cb)(void *ctx, const char *notebook), void *ctx)
{
    if (!exists(s, user_id, name))
        return -ENOENT;
    sqlite3_stmt *st = prep(s, "SELECT notebook FROM secret_grants WHERE user_id = ? AND "
                               "name = ? ORDER BY notebook");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(ctx, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_secret_granted(struct store *s, int64_t user_id, const char *name, const char *notebook,
                         bool *granted)
{
    if (!exists(s, user_id, name))
        return -ENOENT;
    sqlite3_stmt *st = prep(s, "SELECT count(*) FROM secret_grants WHERE user_id = ? AND "
                               "name = ? AND notebook = ?");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, notebook, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    if (r == 0)
        *granted = sqlite3_column_int64(st, 0) > 0;
    sqlite3_finalize(st);
    return r;
}
