/* Tests of the SQLite store: migrations, users, passwords, API tokens and login
 * sessions, each against a fresh database file in its own temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/util.h"
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
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 2);
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
    assert_int_equal(store_user_add(f->s, "alice", true, NULL), 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(f->path, &f->s, &err), 0);
    assert_null(err);
    struct user u;
    assert_int_equal(store_user_get(f->s, "alice", &u), 0);
    assert_true(u.admin);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 2);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
