/* Tests for the start-up sweep of crash leftovers (hub/leftovers.c) and for finishing
 * or undoing an extraction a crash cut off (extract_recover_dir): only the hub's own
 * names, only what is older than the start marker, never through a symlink. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/extract.h"
#include "hub/leftovers.h"

static char *base_dir(const char *name)
{
    const char *t = getenv("LABBOOK_TEST_TMP");
    char *top = xasprintf("%s", t && *t ? t : "/tmp");
    mkdir_p(top, 0700);
    char *d = xasprintf("%s/leftovers-%s-%d", top, name, (int)getpid());
    free(top);
    fs_remove_path(d, 0);
    assert_int_equal(mkdir(d, 0700), 0);
    return d;
}

static void put(int dirfd, const char *rel, const char *text)
{
    int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static bool exists(int dirfd, const char *rel)
{
    struct stat st;
    return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The start marker: a file written now; its change time is the cut-off. Entries made
 * before it are a crash's, those after it this hub's. */
static struct timespec marker(int dirfd)
{
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL); /* file times are coarse: a tick or more apart */
    put(dirfd, ".labbook-start", "");
    struct stat st;
    assert_int_equal(fstatat(dirfd, ".labbook-start", &st, 0), 0);
    nanosleep(&pause, NULL);
    return st.st_ctim;
}

struct seen {
    int n;
    char paths[32][256];
};

static void on_removed(void *ctx, const char *rel, bool dir)
{
    (void)dir;
    struct seen *s = ctx;
    if (s->n < 32)
        snprintf(s->paths[s->n++], 256, "%s", rel);
}

static bool saw(const struct seen *s, const char *rel)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->paths[i], rel))
            return true;
    return false;
}

static void test_name_kinds(void **state)
{
    (void)state;
    assert_int_equal(leftovers_name_kind(".labbook-extract-0123", true), 1);
    assert_int_equal(leftovers_name_kind(".labbook-extract-0123", false), 0); /* a file */
    assert_int_equal(leftovers_name_kind(".labbook-extract-0123.done", false), 1);
    assert_int_equal(leftovers_name_kind(".labbook-extract-0123.done.tmp", false), 1);
    assert_int_equal(leftovers_name_kind(".~labbook-ab12.tmp", false), 1);
    assert_int_equal(leftovers_name_kind(".~labbook-nbdoc-ab12.tmp", false), 1);
    assert_int_equal(leftovers_name_kind(".~labbook-upload-ab12", false), 2);
    assert_int_equal(leftovers_name_kind(".~labbook-ab12.tmp", true), 0); /* a folder */
    assert_int_equal(leftovers_name_kind(".~labbook-.tmp", false), 0);
    assert_int_equal(leftovers_name_kind(".~labbook-ab12", false), 0);
    assert_int_equal(leftovers_name_kind("labbook-extract-x", true), 0);
    assert_int_equal(leftovers_name_kind(".labbook-extract-", true), 0);
    assert_int_equal(leftovers_name_kind("notes.tmp", false), 0);
    assert_int_equal(leftovers_name_kind(".labbook-start", false), 0);
}

static void test_sweep_drive(void **state)
{
    (void)state;
    char *base = base_dir("drive");
    int bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(bfd >= 0);
    assert_int_equal(mkdirat(bfd, "drive", 0700), 0);
    assert_int_equal(mkdirat(bfd, "outside", 0700), 0);
    int d = openat(bfd, "drive", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(d >= 0);
    /* a crash's leftovers */
    put(d, ".~labbook-0a1b.tmp", "half a save");
    assert_int_equal(mkdirat(d, ".labbook-extract-j1", 0700), 0);
    assert_int_equal(mkdirat(d, ".labbook-extract-j1/data", 0700), 0);
    put(d, ".labbook-extract-j1/data/f1.bin", "1");
    put(d, ".labbook-extract-j1/data/f2.bin", "2");
    assert_int_equal(mkdirat(d, "sub", 0755), 0);
    assert_int_equal(mkdirat(d, "sub/deep", 0755), 0);
    put(d, "sub/.~labbook-nbdoc-99.tmp", "{");
    put(d, "sub/deep/.labbook-extract-j2.done", "1 1\n");
    put(d, "sub/.~labbook-upload-c0ffee", "chunk 1 of 3");
    /* the user's own files, some with names like ours */
    put(d, "keep.txt", "mine");
    put(d, "sub/.~labbook-notes", "mine");
    put(d, "sub/notes.tmp", "mine");
    assert_int_equal(mkdirat(d, "labbook-extract-x", 0755), 0);
    assert_int_equal(mkdirat(d, ".~labbook-dir.tmp", 0755), 0); /* a folder: not ours */
    /* links: never followed, never removed */
    put(bfd, "outside/.~labbook-elsewhere.tmp", "another folder's");
    assert_int_equal(mkdirat(bfd, "outside/.labbook-extract-j3", 0700), 0);
    assert_int_equal(symlinkat("../outside", d, "link"), 0);
    assert_int_equal(symlinkat("../outside/.~labbook-elsewhere.tmp", d, ".~labbook-link.tmp"), 0);
    assert_int_equal(symlinkat("../outside/.labbook-extract-j3", d, ".labbook-extract-j4"), 0);

    struct timespec start = marker(bfd);
    /* this hub's own, made after the start */
    put(d, ".~labbook-fresh.tmp", "being written");
    assert_int_equal(mkdirat(d, "sub/.labbook-extract-now", 0700), 0);

    struct seen seen = {0};
    struct leftovers_opts o = {
        .before = start, .upload_stale_s = 3600, .removed = on_removed, .ctx = &seen};
    assert_int_equal(leftovers_sweep_drive(d, &o), 4);
    assert_int_equal(seen.n, 4);
    assert_true(saw(&seen, ".~labbook-0a1b.tmp"));
    assert_true(saw(&seen, ".labbook-extract-j1"));
    assert_true(saw(&seen, "sub/.~labbook-nbdoc-99.tmp"));
    assert_true(saw(&seen, "sub/deep/.labbook-extract-j2.done"));
    assert_false(exists(d, ".~labbook-0a1b.tmp"));
    assert_false(exists(d, ".labbook-extract-j1"));
    assert_false(exists(d, "sub/.~labbook-nbdoc-99.tmp"));
    assert_false(exists(d, "sub/deep/.labbook-extract-j2.done"));
    /* a chunked upload is kept until it has been idle upload_stale_s */
    assert_true(exists(d, "sub/.~labbook-upload-c0ffee"));
    /* what is not ours, and what this hub made after its start */
    assert_true(exists(d, "keep.txt"));
    assert_true(exists(d, "sub/.~labbook-notes"));
    assert_true(exists(d, "sub/notes.tmp"));
    assert_true(exists(d, "labbook-extract-x"));
    assert_true(exists(d, ".~labbook-dir.tmp"));
    assert_true(exists(d, ".~labbook-fresh.tmp"));
    assert_true(exists(d, "sub/.labbook-extract-now"));
    /* links stay, and nothing they point to was touched */
    assert_true(exists(d, "link"));
    assert_true(exists(d, ".~labbook-link.tmp"));
    assert_true(exists(d, ".labbook-extract-j4"));
    assert_true(exists(bfd, "outside/.~labbook-elsewhere.tmp"));
    assert_true(exists(bfd, "outside/.labbook-extract-j3"));

    /* an upload idle for long enough goes too */
    o.upload_stale_s = 0;
    seen.n = 0;
    assert_int_equal(leftovers_sweep_drive(d, &o), 1);
    assert_true(saw(&seen, "sub/.~labbook-upload-c0ffee"));
    assert_false(exists(d, "sub/.~labbook-upload-c0ffee"));
    assert_true(exists(d, ".~labbook-fresh.tmp"));

    close(d);
    close(bfd);
    fs_remove_path(base, 0);
    free(base);
}

static void test_sweep_uploads(void **state)
{
    (void)state;
    char *base = base_dir("uploads");
    int d = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(d >= 0);
    const char *live = "0123456789abcdef0123456789abcdef";
    const char *orphan = "fedcba9876543210fedcba9876543210";
    char p[80];
    snprintf(p, sizeof(p), "%s.part", live);
    put(d, p, "bytes");
    snprintf(p, sizeof(p), "%s.json", live);
    put(d, p, "{}");
    snprintf(p, sizeof(p), "%s.part", orphan);
    put(d, p, "bytes of a record never written");
    snprintf(p, sizeof(p), "%s.json.~tmp4242", live);
    put(d, p, "{");
    put(d, "notes.part", "not an upload");
    struct timespec start = marker(d);
    const char *fresh = "00000000000000000000000000000000";
    snprintf(p, sizeof(p), "%s.part", fresh); /* its record comes right after */
    put(d, p, "");

    struct leftovers_opts o = {.before = start};
    assert_int_equal(leftovers_sweep_uploads(d, &o), 2);
    snprintf(p, sizeof(p), "%s.part", orphan);
    assert_false(exists(d, p));
    snprintf(p, sizeof(p), "%s.json.~tmp4242", live);
    assert_false(exists(d, p));
    snprintf(p, sizeof(p), "%s.part", live);
    assert_true(exists(d, p));
    snprintf(p, sizeof(p), "%s.json", live);
    assert_true(exists(d, p));
    snprintf(p, sizeof(p), "%s.part", fresh);
    assert_true(exists(d, p));
    assert_true(exists(d, "notes.part"));
    close(d);
    fs_remove_path(base, 0);
    free(base);
}

/* A crash after the marker: the moves are finished, with the counts the marker kept. */
static void test_recover_finishes(void **state)
{
    (void)state;
    char *base = base_dir("recover1");
    int to = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    put(to, "old.txt", "before");
    assert_int_equal(mkdirat(to, "data", 0755), 0);
    put(to, "data/kept.txt", "before");
    assert_int_equal(mkdirat(to, ".labbook-extract-j", 0700), 0);
    assert_int_equal(mkdirat(to, ".labbook-extract-j/data", 0755), 0);
    put(to, ".labbook-extract-j/data/new.txt", "new");
    put(to, ".labbook-extract-j/top.txt", "new");
    /* the first moves were done before the crash */
    assert_int_equal(mkdirat(to, "moved", 0755), 0);
    put(to, ".labbook-extract-j.done", "3 6\n");
    struct extract_result res = {0};
    assert_int_equal(extract_recover_dir(to, ".labbook-extract-j", &res), 1);
    assert_int_equal(res.entries, 3);
    assert_int_equal(res.bytes, 6);
    assert_true(exists(to, "data/new.txt"));
    assert_true(exists(to, "data/kept.txt"));
    assert_true(exists(to, "top.txt"));
    assert_true(exists(to, "moved"));
    assert_true(exists(to, "old.txt"));
    assert_false(exists(to, ".labbook-extract-j"));
    assert_false(exists(to, ".labbook-extract-j.done"));
    close(to);
    fs_remove_path(base, 0);
    free(base);
}

/* A crash before the marker: nothing of the archive reaches the folder. */
static void test_recover_undoes(void **state)
{
    (void)state;
    char *base = base_dir("recover2");
    int to = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    put(to, "old.txt", "before");
    assert_int_equal(mkdirat(to, ".labbook-extract-j", 0700), 0);
    put(to, ".labbook-extract-j/half.txt", "half");
    put(to, ".labbook-extract-j.done.tmp", "");
    struct extract_result res = {0};
    assert_int_equal(extract_recover_dir(to, ".labbook-extract-j", &res), 0);
    assert_false(exists(to, "half.txt"));
    assert_false(exists(to, ".labbook-extract-j"));
    assert_false(exists(to, ".labbook-extract-j.done.tmp"));
    assert_true(exists(to, "old.txt"));
    /* and with no folder at all (the crash came before it was made) */
    assert_int_equal(extract_recover_dir(to, ".labbook-extract-k", &res), 0);
    close(to);
    fs_remove_path(base, 0);
    free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_kinds),     cmocka_unit_test(test_sweep_drive),
        cmocka_unit_test(test_sweep_uploads),  cmocka_unit_test(test_recover_finishes),
        cmocka_unit_test(test_recover_undoes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
