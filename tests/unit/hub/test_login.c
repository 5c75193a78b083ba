/* Tests of sign-in's guards (hub/login.c): every check runs exactly one argon2id
 * verification, for a known user, an unknown one or one without a password alike,
 * and the failure counters per name and per address, their windows and their caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "hub/login.h"
#include "store/store.h"

static void test_one_hash_whoever_asks(void **state)
{
    (void)state;
    const char *base = getenv("LABBOOK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    assert_int_equal(mkdir_p(base, 0700), 0);
    char *path = xasprintf("%s/login-%d.db", base, (int)getpid());
    unlink(path);
    struct store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(path, &s, &err), 0);
    assert_int_equal(store_user_add(s, "alice", false, "right-pw"), 0);
    assert_int_equal(store_user_add(s, "tokenonly", false, NULL), 0);

    struct user u;
    uint64_t n0 = login_hash_count();
    assert_int_equal(login_verify(s, "alice", "right-pw", &u), 0);
    assert_string_equal(u.name, "alice");
    assert_int_equal(login_hash_count(), n0 + 1);
    assert_int_equal(login_verify(s, "alice", "wrong", &u), -EACCES);
    assert_int_equal(login_hash_count(), n0 + 2);
    /* Unknown, and no password: the same hash and the same answer. */
    assert_int_equal(login_verify(s, "nobody", "right-pw", &u), -EACCES);
    assert_int_equal(login_hash_count(), n0 + 3);
    assert_int_equal(login_verify(s, "tokenonly", "x", &u), -EACCES);
    assert_int_equal(login_hash_count(), n0 + 4);
    assert_int_equal(login_verify(s, "", "", &u), -EACCES);
    assert_int_equal(login_hash_count(), n0 + 5);

    store_close(s);
    unlink(path);
    char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
    unlink(wal);
    unlink(shm);
    free(wal);
    free(shm);
    free(path);
}

static void test_limits_per_name_and_address(void **state)
{
    (void)state;
    struct login_limiter *l = login_limiter_new(3, 5, 100);
    int64_t t = 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(login_limiter_begin(l, "alice", "10.0.0.1", t), 0);
    /* The name is used up, from any address, until its window ends. */
    assert_int_equal(login_limiter_begin(l, "alice", "10.0.0.2", t + 10), 90);
    assert_int_equal(login_limiter_begin(l, "alice", "10.0.0.2", t + 99), 1);
    assert_int_equal(login_limiter_begin(l, "alice", "10.0.0.2", t + 100), 0);
    /* The address: five attempts, whatever the names. */
    assert_int_equal(login_limiter_begin(l, "b", "10.0.0.9", t), 0);
    assert_int_equal(login_limiter_begin(l, "c", "10.0.0.9", t), 0);
    assert_int_equal(login_limiter_begin(l, "d", "10.0.0.9", t), 0);
    assert_int_equal(login_limiter_begin(l, "e", "10.0.0.9", t), 0);
    assert_int_equal(login_limiter_begin(l, "f", "10.0.0.9", t), 0);
    assert_true(login_limiter_begin(l, "g", "10.0.0.9", t) > 0);
    assert_int_equal(login_limiter_begin(l, "g", "10.0.0.8", t), 0);
    /* A success forgets the name's failures and does not count for the address. */
    assert_int_equal(login_limiter_begin(l, "h", "10.0.0.7", t), 0);
    assert_int_equal(login_limiter_begin(l, "h", "10.0.0.7", t), 0);
    login_limiter_success(l, "h", "10.0.0.7");
    for (int i = 0; i < 3; i++)
        assert_int_equal(login_limiter_begin(l, "h", "10.0.0.6", t), 0);
    login_limiter_free(l);
}

static void test_tables_are_capped(void **state)
{
    (void)state;
    struct login_limiter *l = login_limiter_new(1, 1000000, 100);
    char name[32], addr[32];
    /* Far more names than the table holds: old entries make room, nothing grows. */
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(addr, sizeof(addr), "a%d", i % 7);
        assert_int_equal(login_limiter_begin(l, name, addr, 1000 + i / 100), 0);
    }
    /* The most recent names are still counted. */
    assert_true(login_limiter_begin(l, "n9999", "x", 1099) > 0);
    /* A long name is cut, not overflowed. */
    char long_name[300];
    memset(long_name, 'z', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(login_limiter_begin(l, long_name, "y", 1099), 0);
    assert_true(login_limiter_begin(l, long_name, "y", 1099) > 0);
    login_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_hash_whoever_asks),
        cmocka_unit_test(test_limits_per_name_and_address),
        cmocka_unit_test(test_tables_are_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
