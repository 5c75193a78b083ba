/* Tests for the trash's disk operations (hub/trash.c) on a temporary drive: what a
 * crash between the steps leaves behind, names that are not UTF-8, and restore's
 * names when the original is taken. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/trash.h"

static char *make_drive(void)
{
    const char *base = getenv("LABBOOK_TEST_TMP");
    if (!base)
        base = "/tmp";
    mkdir_p(base, 0700);
    char *t = xasprintf("%s/trash-XXXXXX", base);
    assert_non_null(mkdtemp(t));
    return t;
}

static void put_file(const char *root, const char *rel, const char *text)
{
    char *p = xasprintf("%s/%s", root, rel);
    assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
    free(p);
}

static size_t count_items(const char *root)
{
    json_t *out = NULL;
    assert_int_equal(trash_list(root, -1, &out), 0);
    size_t n = json_array_size(json_object_get(out, "items"));
    json_decref(out);
    return n;
}

static void test_put_restore_non_utf8(void **state)
{
    (void)state;
    char *root = make_drive();
    put_file(root, "caf\xe9.txt", "latin-1 name");
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    char id[TRASH_ID_LEN + 1];
    assert_int_equal(trash_put(rfd, "caf\xe9.txt", id), 0);
    assert_int_equal(trash_put(rfd, "missing.txt", id + 0) == -ENOENT, 1);
    assert_int_equal(trash_put(rfd, ".labbook/x", id), -EINVAL);
    close(rfd);
    assert_int_equal(count_items(root), 1);
    char *path = NULL;
    json_t *out = NULL;
    assert_int_equal(trash_list(root, -1, &out), 0);
    const char *got =
        json_string_value(json_object_get(json_array_get(json_object_get(out, "items"), 0), "id"));
    char theid[TRASH_ID_LEN + 1];
    snprintf(theid, sizeof theid, "%s", got);
    json_decref(out);
    assert_int_equal(trash_restore(root, theid, &path), 0);
    assert_string_equal(path, "caf\xe9.txt"); /* the exact bytes back */
    free(path);
    char *p = xasprintf("%s/caf\xe9.txt", root);
    assert_int_equal(access(p, F_OK), 0);
    free(p);
    assert_int_equal(trash_restore(root, "zz", &path), -EINVAL);
    assert_int_equal(trash_delete(root, theid), -ENOENT);
    fs_remove_path(root, 0);
    free(root);
}

static void test_crash_leftovers(void **state)
{
    (void)state;
    char *root = make_drive();
    put_file(root, "a.txt", "a");
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    char id[TRASH_ID_LEN + 1];
    assert_int_equal(trash_put(rfd, "a.txt", id), 0);
    close(rfd);
    /* A kill after the sidecar and before the move: the sidecar without its item. */
    char *item = xasprintf("%s/" TRASH_DIR "/%s/item", root, id);
    char *back = xasprintf("%s/a.txt", root);
    assert_int_equal(rename(item, back), 0);
    assert_int_equal(count_items(root), 0); /* not listed */
    char *rid = NULL;
    assert_int_equal(trash_restore(root, id, &rid), -ENOENT);
    /* a fresh leftover may be an operation in progress: kept; an old one swept */
    assert_int_equal(trash_sweep(root, 30 * 86400), 0);
    char *entry = xasprintf("%s/" TRASH_DIR "/%s", root, id);
    assert_int_equal(access(entry, F_OK), 0);
    struct timeval old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    assert_int_equal(utimes(entry, old), 0);
    /* and a removal that a kill cut short */
    char *gone = xasprintf("%s/" TRASH_DIR "/.gone-%s", root, "0123456789abcdef0123456789abcdef");
    assert_int_equal(mkdir(gone, 0700), 0);
    assert_int_equal(trash_sweep(root, 30 * 86400), 0);
    assert_int_equal(access(entry, F_OK), -1);
    assert_int_equal(access(gone, F_OK), -1);
    assert_int_equal(access(back, F_OK), 0); /* the file itself was never lost */
    free(item);
    free(back);
    free(entry);
    free(gone);
    fs_remove_path(root, 0);
    free(root);
}

static void test_restore_names(void **state)
{
    (void)state;
    char *root = make_drive();
    char *d = xasprintf("%s/dir.v2", root);
    assert_int_equal(mkdir(d, 0755), 0);
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    char id[TRASH_ID_LEN + 1];
    assert_int_equal(trash_put(rfd, "dir.v2", id), 0);
    close(rfd);
    assert_int_equal(mkdir(d, 0755), 0);
    char *path = NULL;
    assert_int_equal(trash_restore(root, id, &path), 0);
    assert_string_equal(path, "dir.v2 (restored)"); /* a folder has no extension */
    free(path);
    assert_int_equal(trash_sweep(root, -1), 0);
    free(d);
    fs_remove_path(root, 0);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_restore_non_utf8),
        cmocka_unit_test(test_crash_leftovers),
        cmocka_unit_test(test_restore_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
