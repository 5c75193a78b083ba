/* Tests of `labbook user`: cli_user_main run in-process with stdin, stdout and stderr
 * redirected to files, against a fresh data folder per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/util.h"
#include "store/cli_user.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[512];
    char *data; /* dir/var */
};

struct result {
    int status;
    char *out;
    char *err;
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
    snprintf(f->dir, sizeof(f->dir), "%s/cli-user-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    f->data = xasprintf("%s/var", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f->data);
    free(f);
    return 0;
}

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

static int redirect(int fd, const char *path, int flags)
{
    int saved = dup(fd);
    assert_true(saved >= 0);
    int t = open(path, flags | O_CLOEXEC, 0600);
    assert_true(t >= 0);
    assert_true(dup2(t, fd) == fd);
    close(t);
    return saved;
}

static void restore(int fd, int saved)
{
    assert_true(dup2(saved, fd) == fd);
    close(saved);
}

/* Runs `labbook user ARGS... --data DATA` (the --data unless with_data is false) with
 * `input` on stdin; NULL-terminated args. */
static struct result run_args(struct fixture *f, const char *input, bool with_data,
                              const char *const *args)
{
    char *in_path = xasprintf("%s/stdin", f->dir);
    char *out_path = xasprintf("%s/stdout", f->dir);
    char *err_path = xasprintf("%s/stderr", f->dir);
    const char *in = input ? input : "";
    assert_int_equal(write_file_atomic(in_path, in, strlen(in), 0600), 0);

    char *argv[32];
    int argc = 0;
    argv[argc++] = "user";
    for (size_t i = 0; args[i]; i++)
        argv[argc++] = (char *)args[i];
    if (with_data) {
        argv[argc++] = "--data";
        argv[argc++] = f->data;
    }
    argv[argc] = NULL;

    struct result r = {0};
    fflush(stdout);
    fflush(stderr);
    int s0 = redirect(0, in_path, O_RDONLY);
    int s1 = redirect(1, out_path, O_WRONLY | O_CREAT | O_TRUNC);
    int s2 = redirect(2, err_path, O_WRONLY | O_CREAT | O_TRUNC);
    r.status = cli_user_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    restore(0, s0);
    restore(1, s1);
    restore(2, s2);
    size_t len;
    assert_int_equal(read_file(out_path, 1 << 20, &r.out, &len), 0);
    assert_int_equal(read_file(err_path, 1 << 20, &r.err, &len), 0);
    free(in_path);
    free(out_path);
    free(err_path);
    return r;
}

#define RUN(f, input, ...) run_args((f), (input), true, (const char *const[]){__VA_ARGS__, NULL})
#define RUN_NODATA(f, input, ...)                                                                  \
    run_args((f), (input), false, (const char *const[]){__VA_ARGS__, NULL})

static struct store *open_db(struct fixture *f)
{
    char *path = xasprintf("%s/labbook.db", f->data);
    struct store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(path, &s, &err), 0);
    free(path);
    return s;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay);
}

static void test_add_list_token_passwd(void **state)
{
    struct fixture *f = *state;
    struct result r = RUN(f, "s3cret\n", "add", "alice", "--password-stdin");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "alice");
    assert_null(strstr(r.err, "no password"));
    result_free(&r);

    struct stat st;
    assert_int_equal(stat(f->data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    r = RUN(f, NULL, "add", "--admin", "bob");
    assert_int_equal(r.status, 0);
    assert_contains(r.err, "labbook user: ");
    assert_contains(r.err, "no password");
    assert_contains(r.err, "labbook user token bob");
    result_free(&r);

    r = RUN(f, NULL, "list");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    /* header, alice, bob, in that order */
    char *h = strstr(r.out, "NAME");
    char *a = strstr(r.out, "\nalice ");
    char *b = strstr(r.out, "\nbob ");
    assert_true(h == r.out);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    char line[256];
    assert_int_equal(sscanf(a + 1, "%255[^\n]", line), 1);
    char name[64], admin[8], pw[8], date[16];
    assert_int_equal(sscanf(line, "%63s %7s %7s %15s", name, admin, pw, date), 4);
    assert_string_equal(admin, "no");
    assert_string_equal(pw, "yes");
    assert_int_equal(strlen(date), 10); /* YYYY-MM-DD */
    assert_int_equal(sscanf(b + 1, "%255[^\n]", line), 1);
    assert_int_equal(sscanf(line, "%63s %7s %7s", name, admin, pw), 3);
    assert_string_equal(admin, "yes");
    assert_string_equal(pw, "no");
    result_free(&r);

    /* token: exactly 64 hex digits and a newline on stdout */
    r = RUN(f, NULL, "token", "bob");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_int_equal(strlen(r.out), 65);
    assert_int_equal(r.out[64], '\n');
    assert_int_equal(strspn(r.out, "0123456789abcdef"), 64);
    r.out[64] = '\0';
    struct store *s = open_db(f);
    struct user u;
    assert_int_equal(store_token_check(s, r.out, &u), 0);
    assert_string_equal(u.name, "bob");
    assert_true(u.admin);
    assert_int_equal(store_password_check(s, "alice", "s3cret", NULL), 0);
    assert_int_equal(store_password_check(s, "alice", "s3cret\n", NULL), -EACCES);
    store_close(s);
    result_free(&r);

    /* passwd from stdin (CRLF tolerated) */
    r = RUN(f, "n3w pass\r\nignored second line\n", "passwd", "alice");
    assert_int_equal(r.status, 0);
    result_free(&r);
    r = RUN(f, "bobpw", "passwd", "bob"); /* no trailing newline */
    assert_int_equal(r.status, 0);
    result_free(&r);
    s = open_db(f);
    assert_int_equal(store_password_check(s, "alice", "s3cret", NULL), -EACCES);
    assert_int_equal(store_password_check(s, "alice", "n3w pass", NULL), 0);
    assert_int_equal(store_password_check(s, "bob", "bobpw", NULL), 0);
    store_close(s);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    struct result r = RUN(f, NULL, "add", "alice");
    assert_int_equal(r.status, 0);
    result_free(&r);

    r = RUN(f, NULL, "add", "alice");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "labbook user: the name 'alice' is taken");
    result_free(&r);

    r = RUN(f, NULL, "add", "Bad Name");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "labbook user: invalid user name 'Bad Name'");
    result_free(&r);

    r = RUN(f, NULL, "add", "esc\x1b[31m");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "'esc\\x1b[31m'");
    result_free(&r);

    r = RUN(f, NULL, "token", "nobody");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_contains(r.err, "labbook user: no user named 'nobody'");
    result_free(&r);

    r = RUN(f, "pw\n", "passwd", "nobody");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "no user named 'nobody'");
    result_free(&r);

    r = RUN(f, "", "passwd", "alice");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "labbook user: empty password");
    result_free(&r);
    r = RUN(f, "\n", "add", "carol", "--password-stdin");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "empty password");
    result_free(&r);

    char *big = xmalloc(2001);
    memset(big, 'x', 2000);
    big[2000] = '\0';
    r = RUN(f, big, "passwd", "alice");
    free(big);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "too long");
    result_free(&r);

    /* nothing of the failed attempts was stored */
    struct store *s = open_db(f);
    struct user u;
    assert_int_equal(store_user_get(s, "alice", &u), 0);
    assert_false(u.has_password);
    assert_int_equal(store_user_get(s, "carol", &u), -ENOENT);
    store_close(s);

    /* usage errors: status 2 */
    const char *const *usage[] = {
        (const char *const[]){"frobnicate", NULL},
        (const char *const[]){"--bogus", "list", NULL},
        (const char *const[]){"add", NULL},
        (const char *const[]){"token", "a", "b", NULL},
        (const char *const[]){"list", "extra", NULL},
        (const char *const[]){"list", "--admin", NULL},
        (const char *const[]){"token", "alice", "--password-stdin", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(usage); i++) {
        r = run_args(f, NULL, true, usage[i]);
        if (r.status != 2)
            fail_msg("case %zu: status %d, stderr %s", i, r.status, r.err);
        assert_contains(r.err, "labbook user: ");
        assert_contains(r.err, "usage:");
        result_free(&r);
    }
    r = RUN_NODATA(f, NULL, "list", "--data");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = run_args(f, NULL, false, (const char *const[]){NULL});
    assert_int_equal(r.status, 2);
    result_free(&r);
}

static void test_config_and_data(void **state)
{
    struct fixture *f = *state;
    char *cfg_path = xasprintf("%s/labbook.ini", f->dir);
    char *cfg_data = xasprintf("%s/from-config", f->dir);
    char *ini = xasprintf("[server]\ndata = %s\n", cfg_data);
    assert_int_equal(write_file_atomic(cfg_path, ini, strlen(ini), 0600), 0);

    /* the config's data folder */
    struct result r = RUN_NODATA(f, NULL, "add", "dora", "--config", cfg_path);
    assert_int_equal(r.status, 0);
    result_free(&r);
    char *db = xasprintf("%s/labbook.db", cfg_data);
    assert_int_equal(access(db, F_OK), 0);
    free(db);
    r = RUN_NODATA(f, NULL, "list", "--config", cfg_path);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "\ndora ");
    result_free(&r);

    /* --data wins over the config */
    r = RUN(f, NULL, "list", "--config", cfg_path);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "dora"));
    result_free(&r);
    db = xasprintf("%s/labbook.db", f->data);
    assert_int_equal(access(db, F_OK), 0);
    free(db);

    /* --data=DIR and a nested folder that does not exist yet */
    char *nested = xasprintf("--data=%s/a/b/c", f->dir);
    r = RUN_NODATA(f, NULL, "token", "nobody", nested);
    assert_int_equal(r.status, 1);
    result_free(&r);
    char *dir = xasprintf("%s/a/b/c", f->dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(dir);
    free(nested);

    /* a bad config file */
    const char *bad = "[server]\nno_such_key = 1\n";
    assert_int_equal(write_file_atomic(cfg_path, bad, strlen(bad), 0600), 0);
    r = RUN(f, NULL, "list", "--config", cfg_path);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "labbook user: ");
    result_free(&r);
    free(cfg_path);
    free(cfg_data);
    free(ini);
}

/* tokens, revoke, disable, enable, delete [--purge] */
static void test_revocation(void **state)
{
    struct fixture *f = *state;
    struct result r = RUN(f, NULL, "add", "alice");
    assert_int_equal(r.status, 0);
    result_free(&r);
    r = RUN(f, NULL, "add", "bob");
    result_free(&r);

    /* a named, expiring token prints only the token */
    r = RUN(f, NULL, "token", "alice", "--name", "ci job", "--expires", "2");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_int_equal(strlen(r.out), 65);
    char tok[65];
    memcpy(tok, r.out, 64);
    tok[64] = '\0';
    result_free(&r);
    r = RUN(f, NULL, "token", "alice", "--name=plain");
    assert_int_equal(r.status, 0);
    result_free(&r);
    r = RUN(f, NULL, "token", "bob");
    result_free(&r);

    r = RUN(f, NULL, "tokens", "alice");
    assert_int_equal(r.status, 0);
    assert_true(strstr(r.out, "ID") == r.out);
    assert_contains(r.out, "ci job");
    assert_contains(r.out, "plain");
    assert_contains(r.out, "never");
    assert_null(strstr(r.out, tok));
    /* the id of "ci job": the first word of its line */
    char id[16] = "";
    const char *line = strstr(r.out, "\n") + 1;
    assert_int_equal(sscanf(line, "%15s", id), 1);
    assert_int_equal(strlen(id), STORE_TOKEN_ID_LEN);
    result_free(&r);

    struct store *s = open_db(f);
    struct user u;
    assert_int_equal(store_token_check(s, tok, &u), 0);
    assert_true(u.cred.expires > time(NULL) + 2 * 86400 - 60);
    assert_true(u.cred.expires <= time(NULL) + 2 * 86400);
    store_close(s);

    /* revoke: bob cannot be made to lose alice's token; then alice's goes */
    r = RUN(f, NULL, "revoke", "bob", id);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "has no token");
    result_free(&r);
    r = RUN(f, NULL, "revoke", "alice", id);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "revoked token");
    result_free(&r);
    s = open_db(f);
    assert_int_equal(store_token_check(s, tok, &u), -ENOENT);
    store_close(s);
    r = RUN(f, NULL, "revoke", "alice", "--all");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "revoked 1 tokens of alice and ended 0 sessions");
    result_free(&r);
    r = RUN(f, NULL, "tokens", "bob");
    assert_int_equal(r.status, 0);
    assert_non_null(strchr(strchr(r.out, '\n') + 1, '\n')); /* bob's is still there */
    result_free(&r);

    /* usage errors */
    r = RUN(f, NULL, "revoke", "alice");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "revoke", "alice", id, "--all");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "token", "alice", "--expires", "0");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "token", "alice", "--expires", "soon");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "token", "alice", "--expires", "nan");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "token", "alice", "--name", "tab\there");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "list", "--purge");
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = RUN(f, NULL, "tokens", "nobody");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "no user named 'nobody'");
    result_free(&r);

    /* disable and enable */
    r = RUN(f, NULL, "disable", "alice");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "disabled alice");
    result_free(&r);
    r = RUN(f, NULL, "list");
    assert_contains(r.out, "disabled\n");
    result_free(&r);
    s = open_db(f);
    assert_int_equal(store_user_get(s, "alice", &u), 0);
    assert_true(u.disabled);
    store_close(s);
    r = RUN(f, NULL, "enable", "alice");
    assert_int_equal(r.status, 0);
    result_free(&r);
    r = RUN(f, NULL, "disable", "nobody");
    assert_int_equal(r.status, 1);
    result_free(&r);

    /* delete keeps the drive; --purge removes it and nothing a symlink in it points at */
    char *drive = xasprintf("%s/drive/alice", f->data);
    char *file = xasprintf("%s/notes.txt", drive);
    assert_int_equal(mkdir_p(drive, 0700), 0);
    assert_int_equal(write_file_atomic(file, "x", 1, 0600), 0);
    r = RUN(f, NULL, "delete", "alice");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "drive is kept");
    result_free(&r);
    assert_int_equal(access(file, F_OK), 0);
    r = RUN(f, NULL, "delete", "alice");
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "no user named 'alice'");
    result_free(&r);

    r = RUN(f, NULL, "add", "alice");
    result_free(&r);
    char *outside = xasprintf("%s/outside", f->dir);
    char *precious = xasprintf("%s/precious", outside);
    char *sub = xasprintf("%s/sub/deeper", drive);
    char *link1 = xasprintf("%s/sub/out", drive);
    char *link2 = xasprintf("%s/file-out", drive);
    assert_int_equal(mkdir_p(outside, 0700), 0);
    assert_int_equal(write_file_atomic(precious, "keep", 4, 0600), 0);
    assert_int_equal(mkdir_p(sub, 0700), 0);
    assert_int_equal(symlink(outside, link1), 0);
    assert_int_equal(symlink(precious, link2), 0);
    r = RUN(f, NULL, "delete", "alice", "--purge");
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "deleted alice and their drive");
    result_free(&r);
    assert_int_equal(access(drive, F_OK), -1);
    assert_int_equal(access(precious, F_OK), 0);
    /* a drive that is itself a symlink: only the link goes */
    r = RUN(f, NULL, "add", "carol");
    result_free(&r);
    char *carol = xasprintf("%s/drive/carol", f->data);
    assert_int_equal(symlink(outside, carol), 0);
    r = RUN(f, NULL, "delete", "carol", "--purge");
    assert_int_equal(r.status, 0);
    result_free(&r);
    struct stat st;
    assert_int_equal(lstat(carol, &st), -1);
    assert_int_equal(access(precious, F_OK), 0);
    /* bob is untouched */
    r = RUN(f, NULL, "tokens", "bob");
    assert_int_equal(r.status, 0);
    result_free(&r);
    free(drive);
    free(file);
    free(outside);
    free(precious);
    free(sub);
    free(link1);
    free(link2);
    free(carol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_list_token_passwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_and_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
