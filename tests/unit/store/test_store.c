/* Tests of the SQLite store: migrations, users, passwords, API tokens and login
 * sessions, each against a fresh database file in its own temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/util.h"
#include "store/secrets.h"
#include "store/store.h"

#include <errno.h>
#include <ftw.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[512];
    char *path;
    struct store *s;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    const char *base = getenv("LABBOOK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    assert_int_equal(mkdir_p(base, 0700), 0);
    snprintf(f->dir, sizeof(f->dir), "%s/store-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    f->path = xasprintf("%s/labbook.db", f->dir);
    char *err = NULL;
    int r = store_open(f->path, &f->s, &err);
    if (r < 0)
        fail_msg("store_open: %s", err ? err : "?");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f->path);
    free(f);
    return 0;
}

/* Runs a query returning one integer on a separate, raw connection. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* True if the bytes occur in the database file or its WAL. */
static bool db_contains(const char *path, const void *needle, size_t n)
{
    const char *suffixes[] = {"", "-wal"};
    bool found = false;
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char *p = xasprintf("%s%s", path, suffixes[i]);
        char *data = NULL;
        size_t len = 0;
        if (read_file(p, 64 << 20, &data, &len) == 0 && memmem(data, len, needle, n))
            found = true;
        free(data);
        free(p);
    }
    return found;
}

static void test_migrations_fresh_and_reopen(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *err = NULL;
    struct store *s2 = NULL;
    /* A second connection opens the migrated file without redoing anything. */
    assert_int_equal(store_open(f->path, &s2, &err), 0);
    store_close(s2);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                      "name IN ('users', 'tokens', 'logins')"),
                     3);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                      "AND tbl_name = 'tokens' AND sql IS NULL"),
                     1); /* the UNIQUE index behind the token lookup */
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                      "AND name = 'tokens_public_id'"),
                     1);
    assert_int_equal(store_user_add(f->s, "alice", true, NULL), 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(f->path, &f->s, &err), 0);
    assert_null(err);
    struct user u;
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_true(u.admin);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    /* WAL mode is persistent in the file. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    raw_exec(f->path, "PRAGMA user_version = 99");
    char *err = NULL;
    struct store *s = (struct store *)0x1;
    assert_true(store_open(f->path, &s, &err) < 0);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    assert_non_null(strstr(err, "99"));
    free(err);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
}

static void test_unopenable_path(void **state)
{
    struct fixture *f = *state;
    char *p = xasprintf("%s/no/such/dir/x.db", f->dir);
    char *err = NULL;
    struct store *s = NULL;
    assert_true(store_open(p, &s, &err) < 0);
    assert_null(s);
    assert_non_null(err);
    free(err);
    free(p);
}

struct names {
    char list[8][64];
    bool admin[8];
    int n;
};

static void collect(void *ctx, const struct user *u)
{
    struct names *n = ctx;
    if (n->n < 8) {
        snprintf(n->list[n->n], sizeof(n->list[0]), "%s", u->name);
        n->admin[n->n] = u->admin;
        n->n++;
    }
}

static void test_users(void **state)
{
    struct fixture *f = *state;
    int64_t count = -1;
    assert_int_equal(store_user_count(f->s, &count), 0);
    assert_int_equal(count, 0);
    time_t before = time(NULL);
    assert_int_equal(store_user_add(f->s, "carol", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "alice", true, NULL), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, "hunter2"), 0);
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), -EEXIST);
    assert_int_equal(store_user_count(f->s, &count), 0);
    assert_int_equal(count, 3);

    struct user u;
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_string_equal(u.name, "alice");
    assert_true(u.admin);
    assert_false(u.has_password);
    assert_true(u.id > 0);
    assert_true(u.created >= before && u.created <= time(NULL));
    struct user b;
    assert_int_equal(store_user_get(f->s, "bob", &b), 0);
    assert_false(b.admin);
    assert_true(b.has_password);
    assert_true(b.id != u.id);
    assert_int_equal(store_user_get(f->s, "nobody", &u), -ENOENT);
    assert_int_equal(store_user_get(f->s, "Alice", &u), -ENOENT);

    struct names n = {0};
    assert_int_equal(store_user_list(f->s, collect, &n), 0);
    assert_int_equal(n.n, 3);
    assert_string_equal(n.list[0], "alice");
    assert_string_equal(n.list[1], "bob");
    assert_string_equal(n.list[2], "carol");
    assert_true(n.admin[0]);
    assert_false(n.admin[1]);
}

static void test_user_names(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"",    "Alice", "-x",  ".x",   "_x",   "a b", "a/b",
                         "a'b", "é",     "a\n", "ab;c", "a\\b", "a:b", NULL};
    for (size_t i = 0; bad[i]; i++) {
        assert_false(store_user_name_valid(bad[i]));
        assert_int_equal(store_user_add(f->s, bad[i], false, NULL), -EINVAL);
    }
    assert_false(store_user_name_valid(NULL));
    char long33[34], long32[33];
    memset(long33, 'a', 33);
    long33[33] = '\0';
    memset(long32, 'a', 32);
    long32[32] = '\0';
    assert_false(store_user_name_valid(long33));
    assert_int_equal(store_user_add(f->s, long33, false, NULL), -EINVAL);
    const char *good[] = {"a", "0a", "a.b-c_d", "9", long32, NULL};
    for (size_t i = 0; good[i]; i++) {
        assert_true(store_user_name_valid(good[i]));
        assert_int_equal(store_user_add(f->s, good[i], false, NULL), 0);
    }
    int64_t count;
    assert_int_equal(store_user_count(f->s, &count), 0);
    assert_int_equal(count, 5);
}

static void test_passwords(void **state)
{
    struct fixture *f = *state;
    struct user u;
    assert_int_equal(store_user_add(f->s, "bob", true, "correct horse"), 0);
    assert_int_equal(store_user_add(f->s, "tok", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "empty", false, ""), -EINVAL);
    assert_int_equal(store_user_get(f->s, "empty", &u), -ENOENT);

    memset(&u, 0, sizeof(u));
    assert_int_equal(store_password_check(f->s, "bob", "correct horse", &u), 0);
    assert_string_equal(u.name, "bob");
    assert_true(u.admin);
    assert_true(u.has_password);
    assert_int_equal(store_password_check(f->s, "bob", "correct horsE", &u), -EACCES);
    assert_int_equal(store_password_check(f->s, "bob", "", &u), -EACCES);
    assert_int_equal(store_password_check(f->s, "tok", "", &u), -EACCES);
    assert_int_equal(store_password_check(f->s, "tok", "anything", &u), -EACCES);
    assert_int_equal(store_password_check(f->s, "nobody", "x", &u), -ENOENT);

    assert_int_equal(store_user_set_password(f->s, "tok", "battery staple"), 0);
    assert_int_equal(store_password_check(f->s, "tok", "battery staple", NULL), 0);
    assert_int_equal(store_user_get(f->s, "tok", &u), 0);
    assert_true(u.has_password);
    assert_int_equal(store_user_set_password(f->s, "bob", "new one"), 0);
    assert_int_equal(store_password_check(f->s, "bob", "correct horse", NULL), -EACCES);
    assert_int_equal(store_password_check(f->s, "bob", "new one", NULL), 0);
    assert_int_equal(store_user_set_password(f->s, "nobody", "x"), -ENOENT);
    assert_int_equal(store_user_set_password(f->s, "bob", ""), -EINVAL);
    assert_int_equal(store_password_check(f->s, "bob", "new one", NULL), 0);

    /* argon2id, and no plain text in the file */
    char hash[256] = "";
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT password_hash FROM users WHERE name = 'bob'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(str_starts_with(hash, "$argon2id$"));
    store_close(f->s);
    f->s = NULL;
    assert_false(db_contains(f->path, "new one", 7));
    assert_false(db_contains(f->path, "battery staple", 14));
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return false;
    return true;
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    struct user u;
    char *ta = NULL, *ta2 = NULL, *tb = NULL, *tx = (char *)0x1;
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "bob", true, NULL), 0);
    assert_int_equal(store_token_create(f->s, "alice", &ta), 0);
    assert_int_equal(store_token_create(f->s, "alice", &ta2), 0);
    assert_int_equal(store_token_create(f->s, "bob", &tb), 0);
    assert_int_equal(store_token_create(f->s, "nobody", &tx), -ENOENT);
    assert_null(tx);
    assert_true(is_hex64(ta));
    assert_true(is_hex64(tb));
    assert_string_not_equal(ta, ta2);
    assert_string_not_equal(ta, tb);

    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM tokens WHERE last_used IS NULL"), 3);
    memset(&u, 0, sizeof(u));
    assert_int_equal(store_token_check(f->s, ta, &u), 0);
    assert_string_equal(u.name, "alice");
    assert_false(u.admin);
    assert_int_equal(store_token_check(f->s, ta2, &u), 0);
    assert_string_equal(u.name, "alice");
    assert_int_equal(store_token_check(f->s, tb, &u), 0);
    assert_string_equal(u.name, "bob");
    assert_true(u.admin);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM tokens WHERE last_used IS NULL"), 0);

    /* unknown and malformed tokens */
    char other[65];
    snprintf(other, sizeof(other), "%s", ta);
    other[10] = other[10] == '0' ? '1' : '0';
    assert_int_equal(store_token_check(f->s, other, &u), -ENOENT);
    assert_int_equal(store_token_check(f->s, "", &u), -ENOENT);
    assert_int_equal(store_token_check(f->s, "abc", &u), -ENOENT);
    char nonhex[65];
    memset(nonhex, 'z', 64);
    nonhex[64] = '\0';
    assert_int_equal(store_token_check(f->s, nonhex, &u), -ENOENT);
    char *longer = xasprintf("%s00", ta);
    assert_int_equal(store_token_check(f->s, longer, &u), -ENOENT);
    free(longer);
    assert_int_equal(store_token_check(f->s, NULL, &u), -ENOENT);
    /* a login cookie is not an API token */
    char *cookie = NULL;
    struct user bob;
    assert_int_equal(store_user_get(f->s, "bob", &bob), 0);
    assert_int_equal(store_login_create(f->s, bob.id, 3600, &cookie), 0);
    assert_int_equal(store_token_check(f->s, cookie, &u), -ENOENT);
    assert_int_equal(store_login_check(f->s, tb, &u), -ENOENT);

    /* Only the hash is stored: the hex and the raw bytes do not occur in the file, while
     * the BLAKE2b-256 of the raw bytes does (which shows the search works). */
    unsigned char raw[32], hash[32];
    size_t n;
    assert_int_equal(sodium_hex2bin(raw, sizeof(raw), ta, 64, NULL, &n, NULL), 0);
    crypto_generichash(hash, sizeof(hash), raw, sizeof(raw), NULL, 0);
    store_close(f->s);
    f->s = NULL;
    assert_false(db_contains(f->path, ta, 64));
    assert_false(db_contains(f->path, tb, 64));
    assert_false(db_contains(f->path, cookie, 64));
    assert_false(db_contains(f->path, raw, sizeof(raw)));
    assert_true(db_contains(f->path, hash, sizeof(hash)));
    free(ta);
    free(ta2);
    free(tb);
    free(cookie);
}

static void test_logins(void **state)
{
    struct fixture *f = *state;
    struct user alice, bob, u;
    char *c1 = NULL, *c2 = NULL, *c0 = NULL, *cneg = NULL, *cx = (char *)0x1;
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, NULL), 0);
    assert_int_equal(store_user_get(f->s, "alice", &alice), 0);
    assert_int_equal(store_user_get(f->s, "bob", &bob), 0);

    assert_int_equal(store_login_create(f->s, alice.id, 3600, &c1), 0);
    assert_int_equal(store_login_create(f->s, bob.id, INT64_MAX, &c2), 0);
    assert_true(is_hex64(c1));
    assert_string_not_equal(c1, c2);
    memset(&u, 0, sizeof(u));
    assert_int_equal(store_login_check(f->s, c1, &u), 0);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.id, alice.id);
    assert_int_equal(store_login_check(f->s, c2, &u), 0);
    assert_string_equal(u.name, "bob");

    /* expired at once; each create sweeps the sessions that have expired */
    assert_int_equal(store_login_create(f->s, alice.id, 0, &c0), 0);
    assert_int_equal(store_login_check(f->s, c0, &u), -ENOENT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM logins"), 3);
    assert_int_equal(store_login_create(f->s, alice.id, INT64_MIN, &cneg), 0);
    assert_int_equal(store_login_check(f->s, cneg, &u), -ENOENT);
    assert_int_equal(store_login_check(f->s, c0, &u), -ENOENT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM logins"), 3);
    char *c3 = NULL;
    assert_int_equal(store_login_create(f->s, alice.id, 60, &c3), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM logins"), 3);
    assert_int_equal(
        raw_int(f->path, "SELECT count(*) FROM logins WHERE expires <= strftime('%s', 'now')"), 0);

    /* unknown user */
    assert_int_equal(store_login_create(f->s, 424242, 3600, &cx), -ENOENT);
    assert_null(cx);

    /* delete (logout) */
    assert_int_equal(store_login_delete(f->s, c1), 0);
    assert_int_equal(store_login_check(f->s, c1, &u), -ENOENT);
    assert_int_equal(store_login_delete(f->s, c1), -ENOENT);
    assert_int_equal(store_login_check(f->s, c2, &u), 0);
    assert_int_equal(store_login_check(f->s, c3, &u), 0);
    assert_int_equal(store_login_check(f->s, "nothex", &u), -ENOENT);
    assert_int_equal(store_login_delete(f->s, "nothex"), -ENOENT);
    free(c0);
    free(c1);
    free(c2);
    free(c3);
    free(cneg);
}

/* The schema of version 2 (migrations 1 and 2 as they shipped), for the upgrade test. */
static const char v2_schema[] =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)), password_hash TEXT,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE tokens (id INTEGER PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE, created INTEGER NOT NULL, last_used INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE TABLE logins (hash BLOB PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX logins_user ON logins(user_id);"
    "CREATE INDEX logins_expires ON logins(expires);"
    "CREATE TABLE hub_state (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,"
    "  PRIMARY KEY (kind, id)) WITHOUT ROWID;"
    "PRAGMA user_version = 2;";

struct token_rows {
    int n;
    struct store_token t[8];
};

static void collect_token(void *ctx, const struct store_token *t)
{
    struct token_rows *r = ctx;
    if (r->n < 8)
        r->t[r->n++] = *t;
}

/* A database of version 2 keeps its tokens: they work after the migration, nameless and
 * without expiry, each with a public id. */
static void test_migration_keeps_old_tokens(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    unlink(f->path);
    raw_exec(f->path, v2_schema);
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    unsigned char raw[32], hash[32];
    size_t n;
    assert_int_equal(sodium_hex2bin(raw, sizeof(raw), hex, 64, NULL, &n, NULL), 0);
    crypto_generichash(hash, sizeof(hash), raw, sizeof(raw), NULL, 0);
    char hash_hex[65];
    sodium_bin2hex(hash_hex, sizeof(hash_hex), hash, sizeof(hash));
    char *sql = xasprintf("INSERT INTO users (id, name, created) VALUES (7, 'old', 1);"
                          "INSERT INTO tokens (user_id, hash, created) VALUES (7, x'%s', 2);"
                          "INSERT INTO tokens (user_id, hash, created) VALUES (7, x'%032d', 3);",
                          hash_hex, 0);
    raw_exec(f->path, sql);
    free(sql);
    char *err = NULL;
    assert_int_equal(store_open(f->path, &f->s, &err), 0);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 4);
    struct user u;
    assert_int_equal(store_token_check(f->s, hex, &u), 0);
    assert_string_equal(u.name, "old");
    assert_int_equal(u.id, 7);
    assert_false(u.disabled);
    assert_int_equal(u.cred.kind, STORE_CRED_TOKEN);
    assert_int_equal(u.cred.expires, 0);
    struct token_rows rows = {0};
    assert_int_equal(store_token_list(f->s, "old", collect_token, &rows), 0);
    assert_int_equal(rows.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(strlen(rows.t[i].id), STORE_TOKEN_ID_LEN);
        assert_int_equal(strspn(rows.t[i].id, "0123456789abcdef"), STORE_TOKEN_ID_LEN);
        assert_string_equal(rows.t[i].name, "");
        assert_int_equal(rows.t[i].expires, 0);
    }
    assert_string_not_equal(rows.t[0].id, rows.t[1].id);
    assert_int_equal(rows.t[0].created, 2);
    assert_int_equal(rows.t[0].last_used > 0, 1); /* the check above used it */
    /* The next user's id is above the old ones. */
    assert_int_equal(store_user_add(f->s, "new", false, NULL), 0);
    assert_int_equal(store_user_get(f->s, "new", &u), 0);
    assert_int_equal(u.id, 8);
}

static void test_token_names_expiry_revoke(void **state)
{
    struct fixture *f = *state;
    struct user u, alice, bob;
    char *t1 = NULL, *t2 = NULL, *t3 = NULL, *tb = NULL, *tx = (char *)0x1;
    char id1[STORE_TOKEN_ID_LEN + 1], id2[STORE_TOKEN_ID_LEN + 1], id3[STORE_TOKEN_ID_LEN + 1],
        idb[STORE_TOKEN_ID_LEN + 1];
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, NULL), 0);
    assert_int_equal(store_user_get(f->s, "alice", &alice), 0);
    assert_int_equal(store_user_get(f->s, "bob", &bob), 0);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(store_token_create_named(f->s, "alice", "laptop", 0, &t1, id1), 0);
    assert_int_equal(store_token_create_named(f->s, "alice", NULL, now + 3600, &t2, id2), 0);
    assert_int_equal(store_token_create_named(f->s, "alice", "old", now - 1, &t3, id3), 0);
    assert_int_equal(store_token_create_named(f->s, "bob", "", 0, &tb, idb), 0);
    assert_int_equal(store_token_create_named(f->s, "alice", "bad\nname", 0, &tx, NULL), -EINVAL);
    assert_null(tx);
    char long_name[STORE_TOKEN_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(store_token_create_named(f->s, "alice", long_name, 0, &tx, NULL), -EINVAL);
    long_name[STORE_TOKEN_NAME_MAX] = '\0';
    assert_true(store_token_name_valid(long_name));
    assert_false(store_token_name_valid("caf\xc3\xa9"));
    assert_int_equal(store_token_create_named(f->s, "alice", "x", -5, &tx, NULL), -EINVAL);
    assert_int_equal(store_token_create_named(f->s, "nobody", "x", 0, &tx, NULL), -ENOENT);
    assert_null(tx);
    assert_string_not_equal(id1, id2);

    /* listed oldest first, with names and expiry; never the secret */
    struct token_rows rows = {0};
    assert_int_equal(store_token_list(f->s, "alice", collect_token, &rows), 0);
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.t[0].id, id1);
    assert_string_equal(rows.t[0].name, "laptop");
    assert_int_equal(rows.t[0].expires, 0);
    assert_string_equal(rows.t[1].name, "");
    assert_int_equal(rows.t[1].expires, now + 3600);
    assert_int_equal(store_token_list(f->s, "nobody", collect_token, &rows), -ENOENT);

    /* expiry */
    assert_int_equal(store_token_check(f->s, t2, &u), 0);
    assert_int_equal(u.cred.expires, now + 3600);
    assert_int_equal(store_token_check(f->s, t3, &u), -EKEYEXPIRED);
    assert_int_equal(store_token_check(f->s, t1, &u), 0);
    struct store_cred c1 = u.cred;
    assert_int_equal(store_cred_check(f->s, &c1, alice.id), 0);
    assert_int_equal(store_cred_check(f->s, &c1, bob.id), -ENOENT); /* not bob's */
    struct store_cred expired = c1;
    expired.expires = now - 1;
    assert_int_equal(store_cred_check(f->s, &expired, alice.id), 0); /* the store's expiry counts */

    /* revoke: only the owner's id, once */
    assert_int_equal(store_token_revoke(f->s, "bob", id1), -ENOENT);
    assert_int_equal(store_token_revoke(f->s, "alice", "0000000000"), -ENOENT);
    assert_int_equal(store_token_revoke(f->s, "alice", id1), 0);
    assert_int_equal(store_token_revoke(f->s, "alice", id1), -ENOENT);
    assert_int_equal(store_token_check(f->s, t1, &u), -ENOENT);
    assert_int_equal(store_cred_check(f->s, &c1, alice.id), -ENOENT);
    assert_int_equal(store_token_check(f->s, t2, &u), 0);
    assert_int_equal(store_token_check(f->s, tb, &u), 0);
    struct store_cred cb = u.cred;

    /* revoke all: her tokens and sessions, nobody else's */
    char *cookie = NULL, *bcookie = NULL;
    assert_int_equal(store_login_create(f->s, alice.id, 3600, &cookie), 0);
    assert_int_equal(store_login_create(f->s, bob.id, 3600, &bcookie), 0);
    assert_int_equal(store_login_check(f->s, cookie, &u), 0);
    assert_int_equal(u.cred.kind, STORE_CRED_LOGIN);
    struct store_cred cl = u.cred;
    assert_true(cl.expires >= now + 3600);
    assert_int_equal(store_cred_check(f->s, &cl, alice.id), 0);
    int64_t nt = -1, nl = -1;
    assert_int_equal(store_token_revoke_all(f->s, "alice", &nt, &nl), 0);
    assert_int_equal(nt, 2);
    assert_int_equal(nl, 1);
    assert_int_equal(store_token_check(f->s, t2, &u), -ENOENT);
    assert_int_equal(store_login_check(f->s, cookie, &u), -ENOENT);
    assert_int_equal(store_cred_check(f->s, &cl, alice.id), -ENOENT);
    assert_int_equal(store_token_check(f->s, tb, &u), 0);
    assert_int_equal(store_login_check(f->s, bcookie, &u), 0);
    assert_int_equal(store_cred_check(f->s, &cb, bob.id), 0);
    assert_int_equal(store_token_revoke_all(f->s, "nobody", NULL, NULL), -ENOENT);
    rows.n = 0;
    assert_int_equal(store_token_list(f->s, "alice", collect_token, &rows), 0);
    assert_int_equal(rows.n, 0);
    struct store_cred none = {0};
    assert_int_equal(store_cred_check(f->s, &none, alice.id), -ENOENT);
    free(t1);
    free(t2);
    free(t3);
    free(tb);
    free(cookie);
    free(bcookie);
}

static void test_disable_delete(void **state)
{
    struct fixture *f = *state;
    struct user u, alice, bob;
    char *ta = NULL, *tb = NULL, *ca = NULL, *cb = NULL;
    assert_int_equal(store_user_add(f->s, "alice", false, "alice-pw"), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, "bob-pw"), 0);
    assert_int_equal(store_user_get(f->s, "alice", &alice), 0);
    assert_int_equal(store_user_get(f->s, "bob", &bob), 0);
    assert_false(alice.disabled);
    assert_int_equal(store_token_create(f->s, "alice", &ta), 0);
    assert_int_equal(store_token_create(f->s, "bob", &tb), 0);
    assert_int_equal(store_login_create(f->s, alice.id, 3600, &ca), 0);
    assert_int_equal(store_login_create(f->s, bob.id, 3600, &cb), 0);
    assert_int_equal(store_token_check(f->s, ta, &u), 0);
    struct store_cred cred = u.cred;

    /* disabled: every way in is refused; her sessions end, her tokens wait */
    assert_int_equal(store_user_set_disabled(f->s, "alice", true), 0);
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_true(u.disabled);
    assert_int_equal(store_token_check(f->s, ta, &u), -ENOENT);
    assert_int_equal(store_login_check(f->s, ca, &u), -ENOENT);
    assert_int_equal(store_password_check(f->s, "alice", "alice-pw", &u), -EPERM);
    assert_int_equal(store_password_check(f->s, "alice", "wrong", &u), -EACCES);
    assert_int_equal(store_cred_check(f->s, &cred, alice.id), -EPERM);
    assert_int_equal(store_token_check(f->s, tb, &u), 0);
    assert_int_equal(store_login_check(f->s, cb, &u), 0);
    assert_int_equal(store_password_check(f->s, "bob", "bob-pw", &u), 0);
    assert_int_equal(store_user_set_disabled(f->s, "nobody", true), -ENOENT);
    assert_int_equal(store_user_set_disabled(f->s, "alice", false), 0);
    assert_int_equal(store_token_check(f->s, ta, &u), 0);
    assert_int_equal(store_login_check(f->s, ca, &u), -ENOENT); /* the session stays ended */
    assert_int_equal(store_password_check(f->s, "alice", "alice-pw", &u), 0);

    /* a password change ends her sessions, not her tokens nor bob's sessions */
    char *ca2 = NULL;
    assert_int_equal(store_login_create(f->s, alice.id, 3600, &ca2), 0);
    assert_int_equal(store_user_set_password(f->s, "alice", "new-pw"), 0);
    assert_int_equal(store_login_check(f->s, ca2, &u), -ENOENT);
    assert_int_equal(store_token_check(f->s, ta, &u), 0);
    assert_int_equal(store_login_check(f->s, cb, &u), 0);
    assert_int_equal(store_user_set_password(f->s, "nobody", "x"), -ENOENT);

    /* delete: her tokens and sessions go; her id is never given again */
    int64_t owned = -1;
    char *doc = xasprintf("{\"owner\":%lld,\"owner_name\":\"alice\"}", (long long)alice.id);
    assert_int_equal(store_state_put(f->s, "runtime", "r1", doc), 0);
    assert_int_equal(store_state_put(f->s, "runtime", "r2", "{\"owner\":424242}"), 0);
    assert_int_equal(store_state_count_owned(f->s, "runtime", alice.id, &owned), 0);
    assert_int_equal(owned, 1);
    assert_int_equal(store_state_count_owned(f->s, "session", alice.id, &owned), 0);
    assert_int_equal(owned, 0);
    free(doc);
    int64_t id = 0;
    assert_int_equal(store_user_delete(f->s, "alice", &id), 0);
    assert_int_equal(id, alice.id);
    assert_int_equal(store_user_delete(f->s, "alice", &id), -ENOENT);
    assert_int_equal(store_user_get(f->s, "alice", &u), -ENOENT);
    assert_int_equal(store_user_get_id(f->s, alice.id, &u), -ENOENT);
    assert_int_equal(store_user_get_id(f->s, bob.id, &u), 0);
    assert_string_equal(u.name, "bob");
    assert_int_equal(store_token_check(f->s, ta, &u), -ENOENT);
    assert_int_equal(store_cred_check(f->s, &cred, alice.id), -ENOENT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM tokens"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM logins"), 1);
    /* With bob (the highest id) deleted too, a new user still gets an id nobody had. */
    assert_int_equal(store_user_delete(f->s, "bob", NULL), 0);
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_true(u.id > bob.id && u.id > alice.id);
    free(ta);
    free(tb);
    free(ca);
    free(cb);
    free(ca2);
}

/* store_auth_changed sees another connection's commits and this one's revocations. */
static void test_auth_changed(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_auth_changed(f->s), 1); /* the first call */
    assert_int_equal(store_auth_changed(f->s), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, NULL), 0); /* its own write */
    assert_int_equal(store_auth_changed(f->s), 0);
    struct store *other = NULL;
    char *err = NULL, *tok = NULL;
    assert_int_equal(store_open(f->path, &other, &err), 0);
    char id[STORE_TOKEN_ID_LEN + 1];
    assert_int_equal(store_token_create_named(other, "alice", "x", 0, &tok, id), 0);
    assert_int_equal(store_auth_changed(f->s), 1);
    assert_int_equal(store_auth_changed(f->s), 0);
    assert_int_equal(store_token_revoke(other, "alice", id), 0);
    assert_int_equal(store_auth_changed(f->s), 1);
    store_close(other);
    assert_int_equal(store_auth_changed(f->s), 0);
    /* its own revocation counts too */
    char *cookie = NULL;
    struct user u;
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_int_equal(store_login_create(f->s, u.id, 60, &cookie), 0);
    assert_int_equal(store_auth_changed(f->s), 0);
    assert_int_equal(store_login_delete(f->s, cookie), 0);
    assert_int_equal(store_auth_changed(f->s), 1);
    assert_int_equal(store_auth_changed(f->s), 0);
    free(tok);
    free(cookie);
}

static void collect_state(void *ctx, const char *id, const char *json)
{
    char *acc = ctx;
    size_t n = strlen(acc);
    snprintf(acc + n, 512 - n, "%s=%s;", id, json);
}

/* The hub's state survives closing and reopening; put replaces, delete removes, kinds
 * are separate. */
static void test_hub_state(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_state_put(f->s, "runtime", "k2", "{\"b\":2}"), 0);
    assert_int_equal(store_state_put(f->s, "runtime", "k1", "{\"a\":1}"), 0);
    assert_int_equal(store_state_put(f->s, "session", "s1", "{}"), 0);
    assert_int_equal(store_state_put(f->s, "runtime", "k2", "{\"b\":3}"), 0);
    store_close(f->s);
    char *err = NULL;
    assert_int_equal(store_open(f->path, &f->s, &err), 0);
    char acc[512] = "";
    assert_int_equal(store_state_list(f->s, "runtime", collect_state, acc), 0);
    assert_string_equal(acc, "k1={\"a\":1};k2={\"b\":3};");
    assert_int_equal(store_state_delete(f->s, "runtime", "k1"), 0);
    acc[0] = '\0';
    assert_int_equal(store_state_list(f->s, "runtime", collect_state, acc), 0);
    assert_string_equal(acc, "k2={\"b\":3};");
    acc[0] = '\0';
    assert_int_equal(store_state_list(f->s, "session", collect_state, acc), 0);
    assert_string_equal(acc, "s1={};");
}

static void count_secret(void *ctx, const struct store_secret *sec)
{
    (void)sec;
    ++*(int *)ctx;
}

static void note_granted(void *ctx, const struct store_secret *sec)
{
    if (sec->granted)
        ++*(int *)ctx;
}

/* Secrets: put and replace, per-user names, grants per notebook, the caps, and a user's
 * deletion taking their secrets and grants. */
static void test_secrets(void **state)
{
    struct fixture *f = *state;
    struct user a, b;
    assert_int_equal(store_user_add(f->s, "alice", false, NULL), 0);
    assert_int_equal(store_user_add(f->s, "bob", false, NULL), 0);
    assert_int_equal(store_user_get(f->s, "alice", &a), 0);
    assert_int_equal(store_user_get(f->s, "bob", &b), 0);
    bool created = false;
    assert_int_equal(store_secret_put(f->s, a.id, "K", "n1", 2, "sealed1", 7, &created), 0);
    assert_true(created);
    assert_int_equal(store_secret_put(f->s, a.id, "K", "n2", 2, "sealed2", 7, &created), 0);
    assert_false(created);
    uint8_t *nonce, *sealed;
    size_t nl, sl;
    assert_int_equal(store_secret_get(f->s, a.id, "K", &nonce, &nl, &sealed, &sl, NULL), 0);
    assert_memory_equal(sealed, "sealed2", 7);
    free(nonce);
    free(sealed);
    assert_int_equal(store_secret_get(f->s, b.id, "K", &nonce, &nl, &sealed, &sl, NULL), -ENOENT);
    bool g = true;
    assert_int_equal(store_secret_granted(f->s, a.id, "K", "x.ipynb", &g), 0);
    assert_false(g);
    assert_int_equal(store_secret_grant(f->s, a.id, "K", "x.ipynb", true), 0);
    assert_int_equal(store_secret_grant(f->s, a.id, "K", "x.ipynb", true), 0); /* twice: once */
    assert_int_equal(store_secret_granted(f->s, a.id, "K", "x.ipynb", &g), 0);
    assert_true(g);
    assert_int_equal(store_secret_granted(f->s, a.id, "K", "y.ipynb", &g), 0);
    assert_false(g);
    assert_int_equal(store_secret_grant(f->s, b.id, "K", "x.ipynb", true), -ENOENT);
    int n = 0;
    assert_int_equal(store_secret_list(f->s, a.id, "x.ipynb", note_granted, &n), 0);
    assert_int_equal(n, 1);
    /* Deleting and making it again: the old grant is gone. */
    assert_int_equal(store_secret_delete(f->s, a.id, "K"), 0);
    assert_int_equal(store_secret_delete(f->s, a.id, "K"), -ENOENT);
    assert_int_equal(store_secret_put(f->s, a.id, "K", "n", 1, "s", 1, NULL), 0);
    assert_int_equal(store_secret_granted(f->s, a.id, "K", "x.ipynb", &g), 0);
    assert_false(g);
    /* The cap on secrets per user. */
    for (int i = 1; i < STORE_SECRETS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof(name), "S%d", i);
        assert_int_equal(store_secret_put(f->s, a.id, name, "n", 1, "s", 1, NULL), 0);
    }
    assert_int_equal(store_secret_put(f->s, a.id, "ONE_MORE", "n", 1, "s", 1, NULL), -EDQUOT);
    assert_int_equal(store_secret_put(f->s, a.id, "K", "n", 1, "s2", 2, NULL), 0); /* replace */
    n = 0;
    assert_int_equal(store_secret_list(f->s, a.id, NULL, count_secret, &n), 0);
    assert_int_equal(n, STORE_SECRETS_MAX);
    assert_int_equal(store_secret_grant(f->s, a.id, "K", "x.ipynb", true), 0);
    /* A deleted user's secrets and grants go with them. */
    assert_int_equal(store_user_delete(f->s, "alice", NULL), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM secrets"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM secret_grants"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_fresh_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_keeps_old_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_names_expiry_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
