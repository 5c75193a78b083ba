/* Tests for the drive's pure parts and the extractor: tus header parsing
 * (hub/tus.c), Range and Content-Disposition (hub/download.c), archive entry
 * paths, and extract_run on archives written here with libarchive (7z, tar, zip),
 * hostile ones included. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "common/fsat.h"
#include "hub/download.h"
#include "hub/drive.h"
#include "hub/extract.h"
#include "hub/tus.h"

/* --- tus --- */

static void test_tus_metadata(void **state)
{
    (void)state;
    char *v = NULL;
    const char *h = "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential,path 5rmW5YyX";
    assert_int_equal(tus_metadata_get(h, "filename", &v), 0);
    assert_string_equal(v, "world_domination_plan.pdf");
    free(v);
    assert_int_equal(tus_metadata_get(h, "is_confidential", &v), 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(tus_metadata_get(h, "path", &v), 0);
    assert_string_equal(v, "湖北");
    free(v);
    assert_int_equal(tus_metadata_get(h, "file", &v), -ENOENT);
    assert_int_equal(tus_metadata_get(h, "name", &v), -ENOENT);
    assert_int_equal(tus_metadata_get("filename !!!", "filename", &v), -EINVAL);
    assert_int_equal(tus_metadata_get("filename YQBi", "filename", &v), -EINVAL); /* "a\0b" */
    assert_int_equal(tus_metadata_get(",filename YQ==", "filename", &v), -EINVAL);
    assert_int_equal(tus_metadata_get("", "filename", &v), -ENOENT);
    assert_int_equal(tus_metadata_get("a YQ==, filename Yg==", "filename", &v), 0);
    assert_string_equal(v, "b");
    free(v);
}

static void test_tus_checksum(void **state)
{
    (void)state;
    enum tus_algo algo;
    unsigned char d[32];
    size_t n;
    /* sha1("hello") */
    assert_int_equal(tus_parse_checksum("sha1 qvTGHdzF6KLavt4PO0gs2a6pQ00=", &algo, d, &n), 0);
    assert_int_equal(algo, TUS_SHA1);
    assert_int_equal(n, 20);
    assert_int_equal(d[0], 0xaa);
    assert_int_equal(
        tus_parse_checksum("sha256 LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", &algo, d, &n), 0);
    assert_int_equal(algo, TUS_SHA256);
    assert_int_equal(n, 32);
    assert_int_equal(tus_parse_checksum("md5 XUFAKrxLKna5cZ2REBfFkg==", &algo, d, &n), -ENOTSUP);
    assert_int_equal(tus_parse_checksum("sha1 YQ==", &algo, d, &n), -EINVAL); /* wrong length */
    assert_int_equal(tus_parse_checksum("sha1", &algo, d, &n), -EINVAL);
    assert_int_equal(tus_parse_checksum("sha1 ", &algo, d, &n), -EINVAL);
    assert_int_equal(tus_parse_checksum(" sha1 x", &algo, d, &n), -EINVAL);
}

static void test_tus_size_and_name(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(tus_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(tus_parse_size("1073741824", &v), 0);
    assert_int_equal(v, 1073741824);
    assert_int_equal(tus_parse_size("-1", &v), -EINVAL);
    assert_int_equal(tus_parse_size("+1", &v), -EINVAL);
    assert_int_equal(tus_parse_size(" 1", &v), -EINVAL);
    assert_int_equal(tus_parse_size("", &v), -EINVAL);
    assert_int_equal(tus_parse_size(NULL, &v), -EINVAL);
    assert_int_equal(tus_parse_size("1234567890123456789", &v), -EINVAL);
    assert_true(tus_name_ok("图像_01.tif"));
    assert_false(tus_name_ok(""));
    assert_false(tus_name_ok(".bashrc"));
    assert_false(tus_name_ok("a/b"));
    assert_false(tus_name_ok(".."));
}

/* --- downloads --- */

static void test_range(void **state)
{
    (void)state;
    int64_t s, e;
    assert_int_equal(download_parse_range("bytes=0-99", 1000, &s, &e), 1);
    assert_int_equal(s, 0);
    assert_int_equal(e, 99);
    assert_int_equal(download_parse_range("bytes=900-", 1000, &s, &e), 1);
    assert_int_equal(e, 999);
    assert_int_equal(download_parse_range("bytes=900-5000", 1000, &s, &e), 1);
    assert_int_equal(e, 999);
    assert_int_equal(download_parse_range("bytes=-100", 1000, &s, &e), 1);
    assert_int_equal(s, 900);
    assert_int_equal(download_parse_range("bytes=-5000", 1000, &s, &e), 1);
    assert_int_equal(s, 0);
    assert_int_equal(download_parse_range("bytes=1000-", 1000, &s, &e), -1);
    assert_int_equal(download_parse_range("bytes=-0", 1000, &s, &e), -1);
    assert_int_equal(download_parse_range("bytes=0-", 0, &s, &e), -1);
    assert_int_equal(download_parse_range("bytes=5-4", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range("bytes=0-1,5-6", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range("items=0-1", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range("bytes=x-1", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range("bytes=1-2x", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range("bytes=99999999999999999999-", 1000, &s, &e), 0);
    assert_int_equal(download_parse_range(NULL, 1000, &s, &e), 0);
}

static void test_disposition(void **state)
{
    (void)state;
    char *d = download_disposition("a b\"é.txt");
    assert_string_equal(d,
                        "attachment; filename=\"a b___.txt\"; filename*=UTF-8''a%20b%22%C3%A9.txt");
    free(d);
}

/* --- extraction --- */

static void test_entry_path(void **state)
{
    (void)state;
    char *o = NULL;
    assert_int_equal(extract_entry_path("a/b/c.txt", &o), 0);
    assert_string_equal(o, "a/b/c.txt");
    free(o);
    assert_int_equal(extract_entry_path("./a//b/./c/", &o), 0);
    assert_string_equal(o, "a/b/c");
    free(o);
    assert_int_equal(extract_entry_path("./", &o), 0);
    assert_string_equal(o, "");
    free(o);
    assert_int_equal(extract_entry_path("湖北/图像_01.tif", &o), 0);
    free(o);
    assert_int_equal(extract_entry_path("../x", &o), -EINVAL);
    assert_int_equal(extract_entry_path("a/../../x", &o), -EINVAL);
    assert_int_equal(extract_entry_path("a/..", &o), -EINVAL);
    assert_int_equal(extract_entry_path("/etc/passwd", &o), -EINVAL);
    assert_int_equal(extract_entry_path("", &o), -EINVAL);
    assert_int_equal(extract_entry_path("..foo/bar..", &o), 0); /* names, not ".." */
    free(o);
}

struct ent {
    const char *name;
    mode_t type;
    int perm;
    const char *data;
    const char *link; /* symlink target or hard link target */
    bool hard;
};

static char *tmpdir_new(void)
{
    const char *base = getenv("LABBOOK_TEST_TMP");
    if (!base)
        base = "/tmp";
    mkdir_p(base, 0755);
    char *t = xasprintf("%s/drive-XXXXXX", base);
    assert_non_null(mkdtemp(t));
    return t;
}

/* Writes an archive of the given format (ARCHIVE_FORMAT_*, filter) to path. */
static void write_archive(const char *path, int format, int filter, const struct ent *ents,
                          size_t n)
{
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format(a, format), ARCHIVE_OK);
    if (filter)
        assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname_utf8(e, ents[i].name);
        archive_entry_set_filetype(e, ents[i].type);
        archive_entry_set_perm(e, ents[i].perm ? ents[i].perm : 0644);
        if (ents[i].hard)
            archive_entry_set_hardlink_utf8(e, ents[i].link);
        else if (ents[i].link)
            archive_entry_set_symlink_utf8(e, ents[i].link);
        if (ents[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, makedev(1, 3));
        size_t len = ents[i].data ? strlen(ents[i].data) : 0;
        archive_entry_set_size(e, (la_int64_t)len);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len)
            assert_int_equal(archive_write_data(a, ents[i].data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Extracts path into a fresh folder "out" of dir; returns extract_run's result. */
static int run_extract(const char *dir, const char *path, struct extract_result *res, int *to_fd)
{
    char *out = xasprintf("%s/out", dir);
    mkdir(out, 0755);
    *to_fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(out);
    int afd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(afd >= 0 && *to_fd >= 0);
    struct extract_limits lim = {.max_bytes = 1 << 20, .max_entries = 100, .quota_free = -1};
    memset(res, 0, sizeof(*res));
    int r = extract_run(afd, *to_fd, ".labbook-extract-test", &lim, res);
    close(afd);
    return r;
}

static int count_entries(int fd)
{
    int n = 0;
    int d = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fdopendir(d);
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dir);
    return n;
}

static void test_extract_7z_and_unicode(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *arch = xasprintf("%s/a.7z", dir);
    const struct ent ents[] = {
        {"湖北", AE_IFDIR, 0755, NULL, NULL, false},
        {"湖北/图像_01.tif", AE_IFREG, 0644, "tiff", NULL, false},
        {"run.sh", AE_IFREG, 0755, "#!/bin/sh\n", NULL, false},
    };
    write_archive(arch, ARCHIVE_FORMAT_7ZIP, 0, ents, ARRAY_SIZE(ents));
    struct extract_result res;
    int to;
    if (run_extract(dir, arch, &res, &to) != 0)
        fail_msg("7z: %s", res.error);
    assert_int_equal(res.entries, 3);
    assert_int_equal(res.bytes, 14);
    struct stat st;
    assert_int_equal(fstatat(to, "湖北/图像_01.tif", &st, 0), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(fstatat(to, "run.sh", &st, 0), 0);
    assert_true(st.st_mode & 0100);
    assert_int_equal(count_entries(to), 2); /* no temporary folder left */
    close(to);
    fs_remove_path(dir, 0);
    free(arch);
    free(dir);
}

static void refused(int format, int filter, const struct ent *ents, size_t n, const char *why)
{
    char *dir = tmpdir_new();
    char *arch = xasprintf("%s/bad.archive", dir);
    write_archive(arch, format, filter, ents, n);
    struct extract_result res;
    int to;
    assert_true(run_extract(dir, arch, &res, &to) < 0);
    if (!strstr(res.error, why))
        fail_msg("error \"%s\" does not say \"%s\"", res.error, why);
    assert_int_equal(count_entries(to), 0);
    close(to);
    fs_remove_path(dir, 0);
    free(arch);
    free(dir);
}

static void test_extract_refusals(void **state)
{
    (void)state;
    const struct ent slip[] = {{"ok", AE_IFREG, 0, "x", NULL, false},
                               {"../evil", AE_IFREG, 0, "x", NULL, false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP, slip, 2, "unsafe path");
    refused(ARCHIVE_FORMAT_ZIP, 0, slip, 2, "unsafe path");
    const struct ent abs[] = {{"/tmp/evil", AE_IFREG, 0, "x", NULL, false}};
    refused(ARCHIVE_FORMAT_7ZIP, 0, abs, 1, "unsafe path");
    const struct ent sym[] = {{"l", AE_IFLNK, 0777, NULL, "/etc", false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, sym, 1, "symbolic link");
    const struct ent hl[] = {{"h", AE_IFREG, 0, NULL, "/etc/passwd", true}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, hl, 1, "hard link");
    const struct ent dev[] = {{"null", AE_IFCHR, 0666, NULL, NULL, false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, dev, 1, "device");
    const struct ent fifo[] = {{"p", AE_IFIFO, 0666, NULL, NULL, false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, fifo, 1, "FIFO");
    const struct ent suid[] = {{"s", AE_IFREG, 04755, "x", NULL, false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_XZ, suid, 1, "setuid");
    /* a file and then a folder below it, through the file */
    const struct ent clash[] = {{"a", AE_IFREG, 0, "x", NULL, false},
                                {"a/b", AE_IFREG, 0, "y", NULL, false}};
    refused(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, 0, clash, 2, "cannot make the folder");
}

static void test_extract_merges_and_hardlinks(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *arch = xasprintf("%s/a.tar", dir);
    const struct ent ents[] = {
        {"d/f.txt", AE_IFREG, 0, "new", NULL, false},
        {"d/g.txt", AE_IFREG, 0, NULL, "d/f.txt", true},
    };
    write_archive(arch, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_ZSTD, ents, 2);
    char *out = xasprintf("%s/out", dir);
    mkdir(out, 0755);
    char *keep = xasprintf("%s/out/d", dir);
    mkdir(keep, 0755);
    char *old = xasprintf("%s/out/d/old.txt", dir);
    assert_int_equal(write_file_atomic(old, "old", 3, 0644), 0);
    struct extract_result res;
    int to;
    assert_int_equal(run_extract(dir, arch, &res, &to), 0);
    struct stat a, b;
    assert_int_equal(fstatat(to, "d/old.txt", &a, 0), 0); /* merged, not replaced */
    assert_int_equal(fstatat(to, "d/f.txt", &a, 0), 0);
    assert_int_equal(fstatat(to, "d/g.txt", &b, 0), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    close(to);
    fs_remove_path(dir, 0);
    free(out);
    free(keep);
    free(old);
    free(arch);
    free(dir);
}

/* A sparse entry declaring 64 MiB with 6 bytes of data: its size counts against the
 * limits, holes included. */
static void test_extract_sparse_counts(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *arch = xasprintf("%s/sparse.tar", dir);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, arch), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "holes.bin");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 64 << 20);
    archive_entry_sparse_add_entry(e, 0, 6);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, "hello\n", 6), 6);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    struct extract_result res;
    int to;
    assert_true(run_extract(dir, arch, &res, &to) < 0); /* max_bytes is 1 MiB there */
    if (!strstr(res.error, "extract_max"))
        fail_msg("error \"%s\"", res.error);
    assert_int_equal(count_entries(to), 0);
    close(to);
    fs_remove_path(dir, 0);
    free(arch);
    free(dir);
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8"); /* for the 7z writer's UTF-16 names */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tus_metadata),
        cmocka_unit_test(test_tus_checksum),
        cmocka_unit_test(test_tus_size_and_name),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_disposition),
        cmocka_unit_test(test_entry_path),
        cmocka_unit_test(test_extract_7z_and_unicode),
        cmocka_unit_test(test_extract_refusals),
        cmocka_unit_test(test_extract_merges_and_hardlinks),
        cmocka_unit_test(test_extract_sparse_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
