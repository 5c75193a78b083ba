/* The one remove-tree and the clean-up of folders a failed operation made: neither may
 * follow a link, not even one swapped in while it runs, nor leave the folder it was
 * given (the root side runs them as root in folders the hub or a kernel can write). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsat.h"
#include "common/util.h"

static char base[64];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/lb-fsat-XXXXXX");
    assert_non_null(mkdtemp(base));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fs_remove_path(base, 0);
    return 0;
}

static char *at(const char *rel)
{
    return xasprintf("%s/%s", base, rel);
}

static void mk(const char *rel, mode_t mode)
{
    char *p = at(rel);
    assert_int_equal(mkdir(p, mode), 0);
    chmod(p, mode);
    free(p);
}

static void put(const char *rel)
{
    char *p = at(rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    free(p);
}

static void link_to(const char *target, const char *rel)
{
    char *p = at(rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static bool exists(const char *rel)
{
    char *p = at(rel);
    struct stat st;
    bool yes = lstat(p, &st) == 0;
    free(p);
    return yes;
}

static mode_t mode_of(const char *rel)
{
    char *p = at(rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    return st.st_mode & 07777;
}

/* A victim folder outside the tree: a file, an empty folder, mode 0755. */
static void make_victim(void)
{
    mk("victim", 0755);
    put("victim/keep.txt");
    mk("victim/empty", 0755);
}

static void assert_victim_intact(void)
{
    assert_true(exists("victim/keep.txt"));
    assert_true(exists("victim/empty"));
    assert_int_equal(mode_of("victim"), 0755);
    assert_int_equal(mode_of("victim/empty"), 0755);
}

static void test_removes_a_tree_and_only_links_themselves(void **state)
{
    (void)state;
    make_victim();
    mk("t", 0755);
    mk("t/a", 0755);
    mk("t/a/b", 0500);
    put("t/a/f");
    link_to("../../victim", "t/a/to-victim");
    link_to("/nonexistent", "t/dangling");
    char *v = at("victim/keep.txt");
    link_to(v, "t/a/b2");
    free(v);
    int dfd = open(base, O_PATH | O_DIRECTORY);
    assert_int_equal(fs_remove_tree(dfd, "t", FS_RM_ONE_FS | FS_RM_WRITABLE), 0);
    assert_false(exists("t"));
    assert_victim_intact();
    /* A missing name is no error; a path is not a name. */
    assert_int_equal(fs_remove_tree(dfd, "t", 0), 0);
    assert_int_equal(fs_remove_tree(dfd, "victim/empty", 0), -EINVAL);
    assert_int_equal(fs_remove_tree(dfd, "..", 0), -EINVAL);
    assert_true(exists("victim/empty"));
    /* A symlink given as the name is removed, not followed. */
    link_to("victim", "lnk");
    assert_int_equal(fs_remove_tree(dfd, "lnk", 0), 0);
    assert_false(exists("lnk"));
    assert_victim_intact();
    close(dfd);
}

/* Swaps base/t/d (a folder) and base/t/l (a link to the victim) again and again. */
static atomic_bool stop_swapping;
static void *swapper(void *arg)
{
    (void)arg;
    char *d = at("t/d"), *l = at("t/l");
    while (!atomic_load(&stop_swapping))
        renameat2(AT_FDCWD, d, AT_FDCWD, l, RENAME_EXCHANGE);
    free(d);
    free(l);
    return NULL;
}

static void test_a_link_swapped_in_while_it_runs_is_never_followed(void **state)
{
    (void)state;
    make_victim();
    char *victim = at("victim");
    int dfd = open(base, O_PATH | O_DIRECTORY);
    for (int round = 0; round < 1000; round++) {
        mk("t", 0755);
        mk("t/d", 0755);
        mk("t/d/sub", 0755);
        put("t/d/sub/f");
        put("t/d/g");
        link_to(victim, "t/l");
        atomic_store(&stop_swapping, false);
        pthread_t th;
        pthread_create(&th, NULL, swapper, NULL);
        fs_remove_tree(dfd, "t", FS_RM_WRITABLE);
        atomic_store(&stop_swapping, true);
        pthread_join(th, NULL);
        fs_remove_tree(dfd, "t", 0);
        assert_false(exists("t"));
        assert_victim_intact();
    }
    close(dfd);
    free(victim);
}

static void test_other_file_systems_are_left(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    mk("t", 0755);
    mk("t/mnt", 0755);
    char *m = at("t/mnt");
    if (mount("tmpfs", m, "tmpfs", 0, "size=64k") < 0) {
        free(m);
        skip();
    }
    put("t/mnt/inside");
    put("t/outside");
    int dfd = open(base, O_PATH | O_DIRECTORY);
    assert_int_equal(fs_remove_tree(dfd, "t", FS_RM_ONE_FS), -EXDEV);
    assert_true(exists("t/mnt/inside"));
    assert_false(exists("t/outside"));
    umount2(m, MNT_DETACH);
    assert_int_equal(fs_remove_tree(dfd, "t", FS_RM_ONE_FS), 0);
    close(dfd);
    free(m);
}

/* A failed extraction into a/b/c made b and c; before its clean-up a link to another
 * user's drive, which has b/c too, took a's place. */
static void test_empty_dirs_clean_up_stops_at_a_link(void **state)
{
    (void)state;
    mk("alice", 0755);
    mk("alice/a", 0755);
    mk("alice/a/b", 0755);
    mk("alice/a/b/c", 0755);
    mk("bob", 0755);
    mk("bob/b", 0755);
    mk("bob/b/c", 0755);
    int root = open(base, O_PATH | O_DIRECTORY);
    int alice = openat(root, "alice", O_PATH | O_DIRECTORY);
    /* Without a swap: c and b go, a (there before) stays. */
    assert_int_equal(fs_remove_empty_dirs(alice, "a/b/c", 1), 0);
    assert_true(exists("alice/a"));
    assert_false(exists("alice/a/b"));
    /* Not empty: stops there. */
    mk("alice/a/b", 0755);
    mk("alice/a/b/c", 0755);
    put("alice/a/b/x");
    assert_int_equal(fs_remove_empty_dirs(alice, "a/b/c", 1), -ENOTEMPTY);
    assert_false(exists("alice/a/b/c"));
    assert_true(exists("alice/a/b"));
    /* The swap. */
    assert_int_equal(fs_remove_tree(alice, "a", 0), 0);
    char *bob = at("bob");
    link_to(bob, "alice/a");
    free(bob);
    assert_true(fs_remove_empty_dirs(alice, "a/b/c", 1) < 0);
    assert_true(exists("bob/b/c"));
    assert_true(exists("bob/b"));
    /* An absolute link at the top level is no way out either. */
    assert_int_equal(unlinkat(alice, "a", 0), 0);
    link_to("/", "alice/a");
    assert_true(fs_remove_empty_dirs(alice, "a/tmp", 0) < 0);
    close(alice);
    close(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_removes_a_tree_and_only_links_themselves, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_link_swapped_in_while_it_runs_is_never_followed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_file_systems_are_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_dirs_clean_up_stops_at_a_link, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
