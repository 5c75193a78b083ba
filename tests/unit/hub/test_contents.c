/* Tests for the Contents API model layer (hub/contents.c): models, saves, chunked uploads,
 * renames, copies, untitled names, checkpoints, hidden files, and every path refusal. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/util.h"
#include "hub/contents.h"

struct fx {
    char *base;    /* temp folder holding both */
    char *root;    /* the drive */
    char *outside; /* a folder beside the drive, never to be touched */
};

static char *fx_path(const char *dir, const char *rel)
{
    return xasprintf("%s/%s", dir, rel);
}

static void put_raw(const char *dir, const char *rel, const char *data)
{
    char *p = fx_path(dir, rel);
    assert_int_equal(write_file_atomic(p, data, strlen(data), 0644), 0);
    free(p);
}

static char *get_raw(const char *dir, const char *rel, size_t *len)
{
    char *p = fx_path(dir, rel), *data = NULL;
    size_t l = 0;
    int r = read_file(p, 64 << 20, &data, &l);
    free(p);
    if (r < 0)
        return NULL;
    if (len)
        *len = l;
    return data;
}

static bool exists_raw(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    struct stat st;
    bool e = lstat(p, &st) == 0;
    free(p);
    return e;
}

static void mkdir_raw(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static void symlink_raw(const char *target, const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static int setup(void **state)
{
    const char *t = getenv("LABBOOK_TEST_TMP");
    if (!t || !t[0])
        t = "/tmp";
    mkdir_p(t, 0755);
    struct fx *f = calloc(1, sizeof *f);
    f->base = xasprintf("%s/contents-XXXXXX", t);
    assert_non_null(mkdtemp(f->base));
    f->root = fx_path(f->base, "drive");
    f->outside = fx_path(f->base, "outside");
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    put_raw(f->outside, "secret.txt", "top secret");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char *cmd = xasprintf("rm -rf '%s'", f->base);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f->base);
    free(f->root);
    free(f->outside);
    free(f);
    return 0;
}

/* One call; *out and *loc may be NULL when the caller does not need them. */
struct call {
    const char *method, *path;
    json_t *body; /* stolen */
    const char *type, *format, *content, *hash;
    bool checkpoint;
    const char *checkpoint_id;
    int64_t max;
};

static int do_call(struct fx *f, struct call c, json_t **out, char **loc)
{
    struct contents_req req = {
        .root = f->root,
        .method = c.method,
        .path = c.path,
        .checkpoint = c.checkpoint,
        .checkpoint_id = c.checkpoint_id,
        .q_type = c.type,
        .q_format = c.format,
        .q_content = c.content,
        .q_hash = c.hash,
        .body = c.body,
        .max_file_size = c.max ? c.max : (64 << 20),
    };
    json_t *o = NULL;
    char *l = NULL;
    int s = contents_handle(&req, &o, &l);
    json_decref(c.body);
    if (s >= 400) {
        assert_non_null(o);
        assert_true(json_is_string(json_object_get(o, "message")));
        assert_non_null(json_object_get(o, "reason"));
        assert_null(l);
    }
    if (out)
        *out = o;
    else
        json_decref(o);
    if (loc)
        *loc = l;
    else
        free(l);
    return s;
}

#define CALL(f, ...) do_call(f, (struct call){__VA_ARGS__}, NULL, NULL)

static const char *sget(const json_t *m, const char *k)
{
    return json_string_value(json_object_get(m, k));
}

static json_t *text_model(const char *s)
{
    return json_pack("{s:s, s:s, s:s}", "type", "file", "format", "text", "content", s);
}

static const char *msg(const json_t *o)
{
    return sget(o, "message");
}

/* ---- GET -------------------------------------------------------------------------------- */

static void test_get_directory_listing(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "a.txt", "hello\n");
    put_raw(f->root, ".secret", "hidden");
    mkdir_raw(f->root, "sub");
    mkdir_raw(f->root, ".git");
    put_raw(f->root, "nb.ipynb",
            "{\"cells\": [], \"metadata\": {}, \"nbformat\": 4, "
            "\"nbformat_minor\": 5}");
    symlink_raw("/etc", f->root, "etc-link");
    symlink_raw("a.txt", f->root, "inside-link");
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = ""}, &o, NULL), 200);
    assert_string_equal(sget(o, "type"), "directory");
    assert_string_equal(sget(o, "name"), "");
    assert_string_equal(sget(o, "path"), "");
    assert_string_equal(sget(o, "format"), "json");
    assert_true(json_is_null(json_object_get(o, "size")));
    assert_true(json_is_true(json_object_get(o, "writable")));
    const char *lm = sget(o, "last_modified");
    assert_non_null(lm);
    assert_int_equal(strlen(lm), 27);
    assert_int_equal(lm[26], 'Z');
    json_t *list = json_object_get(o, "content");
    assert_int_equal(json_array_size(list), 4); /* a.txt, nb.ipynb, sub, inside-link */
    size_t i;
    json_t *c;
    int seen = 0;
    json_array_foreach(list, i, c)
    {
        const char *n = sget(c, "name");
        assert_true(n[0] != '.');
        assert_string_not_equal(n, "etc-link");
        assert_true(json_is_null(json_object_get(c, "content")));
        assert_true(json_is_null(json_object_get(c, "format")));
        if (!strcmp(n, "a.txt")) {
            assert_string_equal(sget(c, "type"), "file");
            assert_string_equal(sget(c, "path"), "a.txt");
            assert_string_equal(sget(c, "mimetype"), "text/plain");
            assert_int_equal(json_integer_value(json_object_get(c, "size")), 6);
            seen |= 1;
        } else if (!strcmp(n, "nb.ipynb")) {
            assert_string_equal(sget(c, "type"), "notebook");
            seen |= 2;
        } else if (!strcmp(n, "sub")) {
            assert_string_equal(sget(c, "type"), "directory");
            seen |= 4;
        } else if (!strcmp(n, "inside-link")) {
            assert_string_equal(sget(c, "type"), "file");
            seen |= 8;
        }
    }
    assert_int_equal(seen, 15);
    json_decref(o);

    /* a subfolder's children carry full paths */
    put_raw(f->root, "sub/x.py", "print(1)\n");
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "/sub/"}, &o, NULL), 200);
    c = json_array_get(json_object_get(o, "content"), 0);
    assert_string_equal(sget(c, "path"), "sub/x.py");
    assert_string_equal(sget(o, "path"), "sub");
    json_decref(o);
    /* content=0: no listing */
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "sub", .content = "0"}, &o, NULL), 200);
    assert_true(json_is_null(json_object_get(o, "content")));
    json_decref(o);
}

static void test_get_file_formats(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "t.txt", "héllo\n");
    char *p = fx_path(f->root, "b.bin");
    const unsigned char bin[] = {0xff, 0x00, 0xfe, 0x41};
    assert_int_equal(write_file_atomic(p, bin, sizeof bin, 0644), 0);
    free(p);
    put_raw(f->root, "data.unknownext", "plain");
    json_t *o = NULL;

    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "t.txt"}, &o, NULL), 200);
    assert_string_equal(sget(o, "content"), "héllo\n");
    assert_string_equal(sget(o, "format"), "text");
    assert_string_equal(sget(o, "mimetype"), "text/plain");
    assert_true(json_is_null(json_object_get(o, "hash")));
    assert_true(json_is_null(json_object_get(o, "hash_algorithm")));
    json_decref(o);

    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "b.bin"}, &o, NULL), 200);
    assert_string_equal(sget(o, "format"), "base64");
    assert_string_equal(sget(o, "content"), "/wD+QQ==");
    assert_string_equal(sget(o, "mimetype"), "application/octet-stream");
    json_decref(o);

    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "b.bin", .format = "text"}, &o, NULL),
        400);
    assert_string_equal(sget(o, "reason"), "bad format");
    json_decref(o);

    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "t.txt", .format = "base64"}, &o, NULL),
        200);
    assert_string_equal(sget(o, "format"), "base64");
    assert_string_equal(sget(o, "content"), "aMOpbGxvCg==");
    json_decref(o);

    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "data.unknownext", .content = "0"}, &o,
                NULL),
        200);
    assert_true(json_is_null(json_object_get(o, "mimetype")));
    assert_true(json_is_null(json_object_get(o, "content")));
    assert_true(json_is_null(json_object_get(o, "format")));
    json_decref(o);

    /* hash, with and without content */
    char want[65];
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)"héllo\n", strlen("héllo\n"));
    sodium_bin2hex(want, sizeof want, h, sizeof h);
    for (int withc = 0; withc < 2; withc++) {
        assert_int_equal(do_call(f,
                                 (struct call){.method = "GET",
                                               .path = "t.txt",
                                               .hash = "1",
                                               .content = withc ? "1" : "0"},
                                 &o, NULL),
                         200);
        assert_string_equal(sget(o, "hash"), want);
        assert_string_equal(sget(o, "hash_algorithm"), "sha256");
        json_decref(o);
    }

    /* type checks and bad parameters */
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "t.txt", .type = "directory"}, &o, NULL),
        400);
    assert_string_equal(sget(o, "reason"), "bad type");
    json_decref(o);
    mkdir_raw(f->root, "d");
    assert_int_equal(CALL(f, .method = "GET", .path = "d", .type = "notebook"), 400);
    assert_int_equal(CALL(f, .method = "GET", .path = "t.txt", .type = "bogus"), 400);
    assert_int_equal(CALL(f, .method = "GET", .path = "t.txt", .format = "utf16"), 400);
    assert_int_equal(CALL(f, .method = "GET", .path = "t.txt", .content = "2"), 400);
    assert_int_equal(CALL(f, .method = "GET", .path = "t.txt", .hash = "yes"), 400);

    /* missing file */
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "nope.txt"}, &o, NULL), 404);
    assert_string_equal(msg(o), "No such file or directory: nope.txt");
    assert_true(json_is_null(json_object_get(o, "reason")));
    json_decref(o);

    /* type=file on a notebook gives its text */
    put_raw(f->root, "n.ipynb",
            "{\"cells\":[],\"metadata\":{},\"nbformat\":4,\"nbformat_minor\":5}");
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "n.ipynb", .type = "file"}, &o, NULL),
        200);
    assert_string_equal(sget(o, "type"), "file");
    assert_true(json_is_string(json_object_get(o, "content")));
    json_decref(o);
}

static void test_get_big_file_refused(void **state)
{
    struct fx *f = *state;
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put_raw(f->root, "big.txt", big);
    json_t *o = NULL;
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "big.txt", .max = 1000}, &o, NULL), 400);
    assert_non_null(strstr(msg(o), "too large"));
    json_decref(o);
    /* without content it is fine, and so is the hash */
    assert_int_equal(
        CALL(f, .method = "GET", .path = "big.txt", .max = 1000, .content = "0", .hash = "1"), 200);
    assert_int_equal(CALL(f, .method = "GET", .path = "big.txt", .max = 5000), 200);
}

static void test_get_fifo_does_not_block(void **state)
{
    struct fx *f = *state;
    char *p = fx_path(f->root, "pipe");
    assert_int_equal(mkfifo(p, 0644), 0);
    free(p);
    assert_int_equal(CALL(f, .method = "GET", .path = "pipe"), 400);
    /* not listed */
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = ""}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(o, "content")), 0);
    json_decref(o);
}

/* ---- path safety ------------------------------------------------------------------------ */

static void test_refuse_dotdot_and_absolute(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "ok.txt", "ok");
    mkdir_raw(f->root, "a");
    const char *bad[] = {
        "..",       "../outside/secret.txt", "a/../../outside/secret.txt", "a/../ok.txt",
        "./ok.txt", "a/./../ok.txt",         "/../outside/secret.txt",     "a/.."};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *o = NULL;
        int s = do_call(f, (struct call){.method = "GET", .path = bad[i]}, &o, NULL);
        assert_true(s == 400 || s == 404);
        assert_null(json_object_get(o, "content"));
        json_decref(o);
        s = CALL(f, .method = "PUT", .path = bad[i], .body = text_model("pwned"));
        assert_true(s == 400 || s == 404);
        s = CALL(f, .method = "DELETE", .path = bad[i]);
        assert_true(s == 400 || s == 404);
        s = CALL(f, .method = "PATCH", .path = "ok.txt",
                 .body = json_pack("{s:s}", "path", bad[i]));
        assert_true(s == 400 || s == 404);
        s = CALL(f, .method = "POST", .path = "", .body = json_pack("{s:s}", "copy_from", bad[i]));
        assert_true(s == 400 || s == 404);
    }
    /* absolute paths are drive paths: /etc/passwd is <drive>/etc/passwd, which is missing */
    assert_int_equal(CALL(f, .method = "GET", .path = "/etc/passwd"), 404);
    assert_int_equal(CALL(f, .method = "GET", .path = "//etc//passwd"), 404);
    assert_int_equal(CALL(f, .method = "PUT", .path = "/etc/passwd", .body = text_model("x")), 404);
    /* a leading slash is harmless */
    assert_int_equal(CALL(f, .method = "GET", .path = "/ok.txt"), 200);
    /* nothing outside was touched, and ok.txt is intact */
    char *s = get_raw(f->outside, "secret.txt", NULL);
    assert_string_equal(s, "top secret");
    free(s);
    s = get_raw(f->root, "ok.txt", NULL);
    assert_string_equal(s, "ok");
    free(s);
    assert_true(exists_raw(f->root, "a"));
}

static void test_refuse_symlinks_out(void **state)
{
    struct fx *f = *state;
    symlink_raw("/etc/passwd", f->root, "passwd");
    symlink_raw("/etc", f->root, "etc");
    char *rel_out = xasprintf("../outside");
    symlink_raw(rel_out, f->root, "out-dir");
    free(rel_out);
    symlink_raw("../outside/secret.txt", f->root, "out-file");
    mkdir_raw(f->root, "deep");
    symlink_raw("../../outside", f->root, "deep/up");

    const char *bad[] = {"passwd",   "etc/passwd",        "etc", "out-dir", "out-dir/secret.txt",
                         "out-file", "deep/up/secret.txt"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *o = NULL;
        assert_int_equal(do_call(f, (struct call){.method = "GET", .path = bad[i]}, &o, NULL), 404);
        json_decref(o);
        assert_int_equal(CALL(f, .method = "GET", .path = bad[i], .content = "0"), 404);
        assert_int_equal(CALL(f, .method = "GET", .path = bad[i], .hash = "1", .content = "0"),
                         404);
    }
    /* writes through an intermediate outward link */
    int s = CALL(f, .method = "PUT", .path = "out-dir/new.txt", .body = text_model("pwned"));
    assert_true(s == 404 || s == 400);
    assert_false(exists_raw(f->outside, "new.txt"));
    s = CALL(f, .method = "PUT", .path = "out-dir/sub",
             .body = json_pack("{s:s}", "type", "directory"));
    assert_true(s == 404 || s == 400);
    assert_false(exists_raw(f->outside, "sub"));
    /* write through a final outward link: refused, target intact */
    s = CALL(f, .method = "PUT", .path = "out-file", .body = text_model("pwned"));
    assert_int_equal(s, 400);
    s = CALL(f, .method = "PUT", .path = "passwd", .body = text_model("pwned"));
    assert_int_equal(s, 400);
    char *sec = get_raw(f->outside, "secret.txt", NULL);
    assert_string_equal(sec, "top secret");
    free(sec);
    /* chunked upload through a link is refused too */
    json_t *chunk = json_pack("{s:s, s:s, s:s, s:i}", "type", "file", "format", "text", "content",
                              "x", "chunk", 1);
    assert_int_equal(CALL(f, .method = "PUT", .path = "out-file", .body = chunk), 400);
    chunk = json_pack("{s:s, s:s, s:s, s:i}", "type", "file", "format", "text", "content", "x",
                      "chunk", 1);
    s = CALL(f, .method = "PUT", .path = "out-dir/up.bin", .body = chunk);
    assert_true(s == 404 || s == 400);
    /* checkpoints, copies, renames, deletes through an outward link */
    s = CALL(f, .method = "POST", .path = "out-dir/secret.txt", .checkpoint = true);
    assert_int_equal(s, 404);
    assert_false(exists_raw(f->outside, ".ipynb_checkpoints"));
    s = CALL(f, .method = "POST", .path = "", .body = json_pack("{s:s}", "copy_from", "out-file"));
    assert_int_equal(s, 404);
    s = CALL(f, .method = "POST", .path = "",
             .body = json_pack("{s:s}", "copy_from", "out-dir/secret.txt"));
    assert_int_equal(s, 404);
    s = CALL(f, .method = "DELETE", .path = "out-dir/secret.txt");
    assert_int_equal(s, 404);
    s = CALL(f, .method = "PATCH", .path = "out-dir/secret.txt",
             .body = json_pack("{s:s}", "path", "stolen.txt"));
    assert_int_equal(s, 404);
    s = CALL(f, .method = "PATCH", .path = "", .body = json_pack("{s:s}", "path", "x"));
    assert_true(s == 400 || s == 404);
    assert_true(exists_raw(f->outside, "secret.txt"));
    assert_false(exists_raw(f->root, "stolen.txt"));
    /* deleting the link itself removes only the link */
    assert_int_equal(CALL(f, .method = "DELETE", .path = "out-dir"), 204);
    assert_false(exists_raw(f->root, "out-dir"));
    assert_true(exists_raw(f->outside, "secret.txt"));
}

static void test_symlinks_inside_allowed(void **state)
{
    struct fx *f = *state;
    mkdir_raw(f->root, "data");
    put_raw(f->root, "data/x.txt", "inside");
    symlink_raw("data", f->root, "dlink");
    symlink_raw("data/x.txt", f->root, "flink");
    mkdir_raw(f->root, "other");
    symlink_raw("../data/x.txt", f->root, "other/up");
    json_t *o = NULL;
    const char *good[] = {"dlink/x.txt", "flink", "other/up"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        assert_int_equal(do_call(f, (struct call){.method = "GET", .path = good[i]}, &o, NULL),
                         200);
        assert_string_equal(sget(o, "content"), "inside");
        json_decref(o);
    }
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "dlink"}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(o, "content")), 1);
    json_decref(o);
    /* writing through an inside link updates the target and keeps the link */
    assert_int_equal(CALL(f, .method = "PUT", .path = "other/up", .body = text_model("changed")),
                     200);
    char *s = get_raw(f->root, "data/x.txt", NULL);
    assert_string_equal(s, "changed");
    free(s);
    char *lp = fx_path(f->root, "other/up");
    struct stat st;
    assert_int_equal(lstat(lp, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    free(lp);
    /* writing into a linked folder */
    assert_int_equal(CALL(f, .method = "PUT", .path = "dlink/new.txt", .body = text_model("n")),
                     201);
    assert_true(exists_raw(f->root, "data/new.txt"));
}

static void test_refuse_nul_bytes(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "a.txt", "a");
    put_raw(f->root, "a", "short");
    json_t *b = json_object();
    json_object_set_new(b, "path", json_stringn("b.txt\0../../x", 13));
    assert_int_equal(CALL(f, .method = "PATCH", .path = "a.txt", .body = b), 400);
    b = json_object();
    json_object_set_new(b, "copy_from", json_stringn("a\0.txt", 6));
    assert_int_equal(CALL(f, .method = "POST", .path = "", .body = b), 400);
    b = json_object();
    json_object_set_new(b, "ext", json_stringn(".txt\0/x", 7));
    assert_int_equal(CALL(f, .method = "POST", .path = "", .body = b), 400);
    assert_true(exists_raw(f->root, "a.txt"));
    assert_false(exists_raw(f->root, "b.txt"));
    /* a NUL inside text content is data, and round-trips */
    b = json_object();
    json_object_set_new(b, "type", json_string("file"));
    json_object_set_new(b, "format", json_string("text"));
    json_object_set_new(b, "content", json_stringn("x\0y", 3));
    assert_int_equal(CALL(f, .method = "PUT", .path = "nul.txt", .body = b), 201);
    size_t len = 0;
    char *s = get_raw(f->root, "nul.txt", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 3);
    free(s);
}

/* ---- PUT -------------------------------------------------------------------------------- */

static void test_put_files_and_dirs(void **state)
{
    struct fx *f = *state;
    json_t *o = NULL;
    char *loc = NULL;
    assert_int_equal(
        do_call(f, (struct call){.method = "PUT", .path = "my file.txt", .body = text_model("one")},
                &o, &loc),
        201);
    assert_string_equal(loc, "/api/contents/my%20file.txt");
    assert_string_equal(sget(o, "name"), "my file.txt");
    assert_true(json_is_null(json_object_get(o, "content")));
    free(loc);
    json_decref(o);
    assert_int_equal(
        do_call(f, (struct call){.method = "PUT", .path = "my file.txt", .body = text_model("two")},
                &o, &loc),
        200);
    assert_null(loc);
    json_decref(o);
    char *s = get_raw(f->root, "my file.txt", NULL);
    assert_string_equal(s, "two");
    free(s);
    /* base64 (with line breaks, as Python's encodebytes writes) */
    assert_int_equal(CALL(f, .method = "PUT", .path = "b.bin",
                          .body = json_pack("{s:s, s:s, s:s}", "type", "file", "format", "base64",
                                            "content", "/wD+\nQQ==\n")),
                     201);
    size_t len;
    s = get_raw(f->root, "b.bin", &len);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "\xff\x00\xfe\x41", 4);
    free(s);
    /* directories */
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "newdir", .body = json_pack("{s:s}", "type", "directory")),
        201);
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "newdir", .body = json_pack("{s:s}", "type", "directory")),
        200);
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "b.bin", .body = json_pack("{s:s}", "type", "directory")),
        400);
    /* a file onto a directory */
    assert_int_equal(CALL(f, .method = "PUT", .path = "newdir", .body = text_model("x")), 400);
    /* bad models */
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "b.bin", .body = json_pack("{s:s}", "content", "x")), 400);
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "b.bin", .body = json_pack("{s:s}", "type", "file")), 400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "b.bin",
                          .body = json_pack("{s:s, s:s}", "type", "file", "content", "x")),
                     400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "c.bin",
                          .body = json_pack("{s:s, s:s, s:s}", "type", "file", "format", "base64",
                                            "content", "!!notbase64")),
                     400);
    assert_false(exists_raw(f->root, "c.bin"));
    assert_int_equal(CALL(f, .method = "PUT", .path = "x.txt",
                          .body = json_pack("{s:s, s:s}", "type", "file", "copy_from", "b.bin")),
                     400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "x.txt",
                          .body = json_pack("{s:s, s:s}", "type", "weird", "content", "")),
                     400);
    /* missing parent */
    assert_int_equal(CALL(f, .method = "PUT", .path = "no/such/dir.txt", .body = text_model("x")),
                     404);
    /* a model without content creates an empty file, or an empty notebook */
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "empty.txt", .body = json_pack("{s:s}", "type", "file")),
        201);
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "e.ipynb", .body = json_pack("{s:s}", "path", "e.ipynb")),
        201);
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "e.ipynb"}, &o, NULL), 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "content"), "nbformat")),
                     4);
    assert_null(json_object_get(o, "message"));
    json_decref(o);
    /* no temporary files were left behind */
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = ""}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(o, "content")), 5);
    json_decref(o);
    char *cmd = xasprintf("test -z \"$(ls -A '%s' | grep labbook)\"", f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_hidden_files(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, ".env", "TOKEN=1");
    mkdir_raw(f->root, ".git");
    put_raw(f->root, ".git/config", "x");
    put_raw(f->root, "v.txt", "v");
    assert_int_equal(CALL(f, .method = "GET", .path = ".env"), 404);
    assert_int_equal(CALL(f, .method = "GET", .path = ".git/config"), 404);
    assert_int_equal(CALL(f, .method = "GET", .path = ".git"), 404);
    assert_int_equal(CALL(f, .method = "PUT", .path = ".env", .body = text_model("x")), 400);
    assert_int_equal(CALL(f, .method = "PUT", .path = ".new", .body = text_model("x")), 400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "v.txt",
                          .body = json_pack("{s:s, s:s, s:s, s:s}", "type", "file", "format",
                                            "text", "content", "x", "path", ".v")),
                     400);
    assert_int_equal(CALL(f, .method = "DELETE", .path = ".git"), 400);
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = "v.txt", .body = json_pack("{s:s}", "path", ".v.txt")),
        400);
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = ".env", .body = json_pack("{s:s}", "path", "env")), 400);
    assert_int_equal(
        CALL(f, .method = "POST", .path = "", .body = json_pack("{s:s}", "copy_from", ".env")),
        400);
    assert_int_equal(CALL(f, .method = "POST", .path = ".git", .body = json_object()), 400);
    char *s = get_raw(f->root, ".env", NULL);
    assert_string_equal(s, "TOKEN=1");
    free(s);
    assert_true(exists_raw(f->root, ".git/config"));
    assert_false(exists_raw(f->root, ".new"));
    assert_false(exists_raw(f->root, "env"));
}

/* ---- notebooks -------------------------------------------------------------------------- */

static const char *NB_JSON =
    "{\"cells\": ["
    "{\"cell_type\": \"markdown\", \"id\": \"m1\", \"metadata\": {}, \"source\": \"# Title\\n\\n"
    "Some *text* é\\nlast line\"},"
    "{\"cell_type\": \"code\", \"id\": \"c1\", \"execution_count\": 3, \"metadata\": "
    "{\"trusted\": true, \"tags\": [\"a\"]}, \"source\": \"import sys\\nprint('hi')\\n1+1\","
    " \"outputs\": ["
    "{\"output_type\": \"stream\", \"name\": \"stdout\", \"text\": \"hi\\nthere\\n\"},"
    "{\"output_type\": \"execute_result\", \"execution_count\": 3, \"metadata\": {},"
    " \"data\": {\"text/plain\": \"2\", \"text/html\": \"<b>2</b>\\n<i>x</i>\","
    " \"application/json\": {\"a\": [1, 2]}}},"
    "{\"output_type\": \"display_data\", \"metadata\": {\"image/png\": {\"width\": 10}},"
    " \"data\": {\"image/png\": \"iVBORw0KGgo=\", \"text/plain\": \"<Figure>\"}},"
    "{\"output_type\": \"error\", \"ename\": \"ValueError\", \"evalue\": \"bad\","
    " \"traceback\": [\"line1\", \"line2\"]}"
    "]},"
    "{\"cell_type\": \"raw\", \"id\": \"r1\", \"metadata\": {}, \"source\": \"\"}"
    "], \"metadata\": {\"kernelspec\": {\"name\": \"python3\", \"display_name\": \"Python 3\"},"
    " \"accelerator\": \"GPU\", \"signature\": \"sha256:abc\"},"
    " \"nbformat\": 4, \"nbformat_minor\": 5}";

static void test_notebook_round_trip(void **state)
{
    struct fx *f = *state;
    json_t *nb = json_loads(NB_JSON, 0, NULL);
    assert_non_null(nb);
    json_t *body =
        json_pack("{s:s, s:O, s:s}", "type", "notebook", "content", nb, "format", "json");
    json_t *o = NULL;
    assert_int_equal(
        do_call(f, (struct call){.method = "PUT", .path = "sub.ipynb", .body = body}, &o, NULL),
        201);
    assert_string_equal(sget(o, "type"), "notebook");
    assert_null(json_object_get(o, "message"));
    json_decref(o);

    /* on disk: nbformat's layout (indent 1, sorted keys, split lines, trailing newline) */
    size_t len;
    char *disk = get_raw(f->root, "sub.ipynb", &len);
    assert_non_null(disk);
    assert_true(str_starts_with(disk, "{\n \"cells\": [\n  {\n   \"cell_type\": \"markdown\""));
    assert_int_equal(disk[len - 1], '\n');
    assert_int_equal(disk[len - 2], '}');
    assert_non_null(strstr(disk, "\"source\": [\n    \"# Title\\n\",\n    \"\\n\",\n"));
    assert_non_null(strstr(disk, "\"text\": [\n      \"hi\\n\",\n      \"there\\n\"\n     ]"));
    assert_null(strstr(disk, "trusted"));   /* transient */
    assert_null(strstr(disk, "signature")); /* transient */
    assert_non_null(strstr(disk, "é"));     /* not \u-escaped */
    free(disk);

    /* GET gives the cells and outputs back, with multiline text joined */
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "sub.ipynb"}, &o, NULL),
                     200);
    assert_string_equal(sget(o, "format"), "json");
    assert_true(json_is_null(json_object_get(o, "mimetype")));
    json_t *got = json_object_get(o, "content");
    json_t *want = json_deep_copy(nb);
    json_object_del(json_object_get(want, "metadata"), "signature");
    json_object_del(json_object_get(json_array_get(json_object_get(want, "cells"), 1), "metadata"),
                    "trusted");
    if (!json_equal(got, want)) {
        char *a = json_dumps(got, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", a, b);
        free(a);
        free(b);
        fail();
    }
    json_decref(want);
    json_decref(o);

    /* a notebook save always leaves a checkpoint */
    assert_true(exists_raw(f->root, ".ipynb_checkpoints/sub-checkpoint.ipynb"));
    json_decref(nb);
}

static void test_invalid_notebooks(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {
        "{\"cells\": [], \"metadata\": {}, \"nbformat\": 3, \"nbformat_minor\": 0}",
        "{\"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}",
        "{\"cells\": [{\"cell_type\": \"code\", \"metadata\": {}, \"source\": \"\"}], "
        "\"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}",
        "{\"cells\": [{\"cell_type\": \"bogus\", \"metadata\": {}, \"source\": \"\"}], "
        "\"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}",
        "{\"cells\": [{\"cell_type\": \"code\", \"metadata\": {}, \"source\": \"\", "
        "\"execution_count\": null, \"outputs\": [{\"output_type\": \"stream\"}]}], "
        "\"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}",
        "[1, 2]",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *body =
            json_pack("{s:s, s:o}", "type", "notebook", "content", json_loads(bad[i], 0, NULL));
        json_t *o = NULL;
        assert_int_equal(
            do_call(f, (struct call){.method = "PUT", .path = "bad.ipynb", .body = body}, &o, NULL),
            400);
        assert_true(str_starts_with(msg(o), "Notebook validation failed"));
        json_decref(o);
        assert_false(exists_raw(f->root, "bad.ipynb"));
    }
    /* notebook without content object */
    assert_int_equal(CALL(f, .method = "PUT", .path = "bad.ipynb",
                          .body = json_pack("{s:s, s:s}", "type", "notebook", "content", "x")),
                     400);

    /* on GET, an invalid notebook comes back with a message */
    put_raw(f->root, "old.ipynb", bad[0]);
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "old.ipynb"}, &o, NULL),
                     200);
    assert_true(str_starts_with(msg(o), "Notebook validation failed"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "content"), "nbformat")),
                     3);
    json_decref(o);
    /* and one that is not JSON at all is a 400 */
    put_raw(f->root, "broken.ipynb", "{\"cells\": [");
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "broken.ipynb"}, &o, NULL),
                     400);
    assert_non_null(strstr(msg(o), "Unreadable Notebook"));
    json_decref(o);
    /* but its model without content is fine */
    assert_int_equal(CALL(f, .method = "GET", .path = "broken.ipynb", .content = "0"), 200);
}

/* ---- chunked upload --------------------------------------------------------------------- */

static json_t *chunk_model(const unsigned char *data, size_t len, int chunk)
{
    size_t blen = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(blen);
    sodium_bin2base64(b64, blen, data, len, sodium_base64_VARIANT_ORIGINAL);
    json_t *m = json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "file", "format", "base64",
                          "content", b64, "chunk", chunk, "name", "big.bin");
    free(b64);
    return m;
}

static void test_chunked_upload(void **state)
{
    struct fx *f = *state;
    const size_t MiB = 1 << 20, total = 5 * MiB;
    unsigned char *data = xmalloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 7 + i / 1000);
    mkdir_raw(f->root, "up");
    for (int c = 1; c <= 5; c++) {
        int chunk = c == 5 ? -1 : c;
        json_t *o = NULL;
        char *loc = NULL;
        int s =
            do_call(f,
                    (struct call){.method = "PUT",
                                  .path = "up/big.bin",
                                  .body = chunk_model(data + (size_t)(c - 1) * MiB, MiB, chunk)},
                    &o, &loc);
        assert_true(s == 200 || s == 201);
        assert_string_equal(sget(o, "path"), "up/big.bin");
        assert_int_equal(json_integer_value(json_object_get(o, "size")), (json_int_t)c * MiB);
        if (c == 1)
            assert_string_equal(loc, "/api/contents/up/big.bin");
        free(loc);
        json_decref(o);
        if (c < 5) {
            /* never partially visible at its final path, nor in listings */
            assert_false(exists_raw(f->root, "up/big.bin"));
            assert_int_equal(CALL(f, .method = "GET", .path = "up/big.bin"), 404);
            assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "up"}, &o, NULL),
                             200);
            assert_int_equal(json_array_size(json_object_get(o, "content")), 0);
            json_decref(o);
        }
    }
    size_t len = 0;
    char *got = get_raw(f->root, "up/big.bin", &len);
    assert_int_equal(len, total);
    assert_memory_equal(got, data, total);
    free(got);
    /* the hidden part file is gone */
    char *cmd = xasprintf("test -z \"$(ls -A '%s/up' | grep -v '^big.bin$')\"", f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* the hash over the upload matches */
    char want[65];
    unsigned char h[32];
    crypto_hash_sha256(h, data, total);
    sodium_bin2hex(want, sizeof want, h, sizeof h);
    json_t *o = NULL;
    assert_int_equal(
        do_call(f,
                (struct call){.method = "GET", .path = "up/big.bin", .content = "0", .hash = "1"},
                &o, NULL),
        200);
    assert_string_equal(sget(o, "hash"), want);
    json_decref(o);

    /* a second upload replaces the file only on its last chunk */
    assert_int_equal(CALL(f, .method = "PUT", .path = "up/big.bin",
                          .body = chunk_model((const unsigned char *)"new", 3, 1)),
                     200);
    got = get_raw(f->root, "up/big.bin", &len);
    assert_int_equal(len, total);
    free(got);
    assert_int_equal(CALL(f, .method = "PUT", .path = "up/big.bin",
                          .body = chunk_model((const unsigned char *)"er", 2, -1)),
                     200);
    got = get_raw(f->root, "up/big.bin", &len);
    assert_int_equal(len, 5);
    assert_memory_equal(got, "newer", 5);
    free(got);

    /* a later chunk without a first one, bad chunk numbers, wrong types */
    assert_int_equal(CALL(f, .method = "PUT", .path = "up/other.bin",
                          .body = chunk_model((const unsigned char *)"x", 1, 2)),
                     400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "up/other.bin",
                          .body = chunk_model((const unsigned char *)"x", 1, -1)),
                     400);
    assert_int_equal(CALL(f, .method = "PUT", .path = "up/other.bin",
                          .body = chunk_model((const unsigned char *)"x", 1, 0)),
                     400);
    assert_int_equal(
        CALL(f, .method = "PUT", .path = "up/n.ipynb",
             .body = json_pack("{s:s, s:{}, s:i}", "type", "notebook", "content", "chunk", 1)),
        400);
    assert_false(exists_raw(f->root, "up/other.bin"));
    free(data);
}

/* Chunks answered before their bytes are written (the hub's write-behind): each answer
 * counts the bytes, the last chunk renames a whole file, and an append that fails
 * removes the part file and is told to the next chunk. */
static int wb_chunk(struct fx *f, const char *path, const char *bytes, int chunk, json_t **out)
{
    struct contents_req req = {
        .root = f->root,
        .method = "PUT",
        .path = path,
        .body = chunk_model((const unsigned char *)bytes, strlen(bytes), chunk),
        .max_file_size = 1 << 20,
        .write_behind = true,
    };
    char *loc = NULL;
    int s = contents_handle(&req, out, &loc);
    json_decref((json_t *)req.body);
    free(loc);
    return s;
}

static void test_chunked_upload_write_behind(void **state)
{
    struct fx *f = *state;
    json_t *o = NULL;
    const char *parts[] = {"abc", "de", "fgh", "i"};
    for (int c = 1; c <= 4; c++) {
        assert_int_equal(wb_chunk(f, "d.bin", parts[c - 1], c == 4 ? -1 : c, &o),
                         c == 1 || c == 4 ? 201 : 200);
        assert_int_equal(json_integer_value(json_object_get(o, "size")),
                         (json_int_t)(c == 1   ? 3
                                      : c == 2 ? 5
                                      : c == 3 ? 8
                                               : 9));
        json_decref(o);
    }
    size_t len = 0;
    char *got = get_raw(f->root, "d.bin", &len);
    assert_int_equal(len, 9);
    assert_memory_equal(got, "abcdefghi", 9);
    free(got);

    /* An append that fails: the part file is filled to its size limit first, so the
     * queued append gets EFBIG. */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(wb_chunk(f, "e.bin", "abcd", 1, &o), 201);
    json_decref(o);
    contents_flush();
    lim = old;
    lim.rlim_cur = 4;
    setrlimit(RLIMIT_FSIZE, &lim);
    assert_int_equal(wb_chunk(f, "e.bin", "ef", 2, &o), 200); /* answered before the write */
    json_decref(o);
    contents_flush();
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_equal(wb_chunk(f, "e.bin", "gh", -1, &o), 500);
    assert_non_null(strstr(msg(o), "Saving an earlier chunk of e.bin failed"));
    json_decref(o);
    assert_false(exists_raw(f->root, "e.bin"));
    /* the failure is told once; after it the upload is simply not in progress */
    assert_int_equal(wb_chunk(f, "e.bin", "gh", -1, &o), 400);
    json_decref(o);
    char *cmd = xasprintf("test -z \"$(ls -A '%s' | grep -v '^d.bin$')\"", f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* ---- rename, copy, untitled, delete ----------------------------------------------------- */

static void test_rename(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "a.txt", "A");
    put_raw(f->root, "b.txt", "B");
    mkdir_raw(f->root, "d");
    json_t *o = NULL;
    assert_int_equal(do_call(f,
                             (struct call){.method = "PATCH",
                                           .path = "a.txt",
                                           .body = json_pack("{s:s}", "path", "d/c.txt")},
                             &o, NULL),
                     200);
    assert_string_equal(sget(o, "path"), "d/c.txt");
    assert_string_equal(sget(o, "name"), "c.txt");
    json_decref(o);
    assert_false(exists_raw(f->root, "a.txt"));
    char *s = get_raw(f->root, "d/c.txt", NULL);
    assert_string_equal(s, "A");
    free(s);
    /* conflict */
    assert_int_equal(do_call(f,
                             (struct call){.method = "PATCH",
                                           .path = "d/c.txt",
                                           .body = json_pack("{s:s}", "path", "b.txt")},
                             &o, NULL),
                     409);
    assert_string_equal(msg(o), "File already exists: b.txt");
    json_decref(o);
    s = get_raw(f->root, "b.txt", NULL);
    assert_string_equal(s, "B");
    free(s);
    /* missing source, missing target folder, a folder into itself */
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = "nope", .body = json_pack("{s:s}", "path", "x")), 404);
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = "b.txt", .body = json_pack("{s:s}", "path", "zz/b.txt")),
        404);
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = "d", .body = json_pack("{s:s}", "path", "d/e")), 400);
    assert_int_equal(CALL(f, .method = "PATCH", .path = "b.txt", .body = NULL), 400);
    /* a folder */
    assert_int_equal(
        CALL(f, .method = "PATCH", .path = "d", .body = json_pack("{s:s}", "path", "d2")), 200);
    assert_true(exists_raw(f->root, "d2/c.txt"));
    /* the checkpoint follows the file */
    assert_int_equal(CALL(f, .method = "POST", .path = "b.txt", .checkpoint = true), 201);
    assert_int_equal(CALL(f, .method = "PATCH", .path = "b.txt",
                          .body = json_pack("{s:s}", "path", "d2/b2.txt")),
                     200);
    assert_false(exists_raw(f->root, ".ipynb_checkpoints/b-checkpoint.txt"));
    assert_true(exists_raw(f->root, "d2/.ipynb_checkpoints/b2-checkpoint.txt"));
}

static void test_copy_naming(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb",
            "{\"cells\": [], \"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 5}");
    put_raw(f->root, "data.tar.gz", "tgz");
    mkdir_raw(f->root, "dest");
    struct {
        const char *from, *to, *want;
    } cases[] = {
        {"nb.ipynb", "", "nb-Copy1.ipynb"},
        {"nb.ipynb", "", "nb-Copy2.ipynb"},
        {"nb-Copy1.ipynb", "", "nb-Copy3.ipynb"},
        {"data.tar.gz", "", "data-Copy1.tar.gz"},
        {"nb.ipynb", "dest", "dest/nb.ipynb"},
        {"nb.ipynb", "dest", "dest/nb-Copy1.ipynb"},
        {"data.tar.gz", "dest/named.tgz", "dest/named.tgz"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *o = NULL;
        char *loc = NULL;
        assert_int_equal(
            do_call(f,
                    (struct call){.method = "POST",
                                  .path = cases[i].to,
                                  .body = json_pack("{s:s}", "copy_from", cases[i].from)},
                    &o, &loc),
            201);
        assert_string_equal(sget(o, "path"), cases[i].want);
        char *want_loc = xasprintf("/api/contents/%s", cases[i].want);
        assert_string_equal(loc, want_loc);
        free(want_loc);
        free(loc);
        json_decref(o);
        size_t a, b;
        char *x = get_raw(f->root, cases[i].from, &a), *y = get_raw(f->root, cases[i].want, &b);
        assert_int_equal(a, b);
        assert_memory_equal(x, y, a);
        free(x);
        free(y);
    }
    /* directories cannot be copied; missing sources and folders are 404 */
    assert_int_equal(
        CALL(f, .method = "POST", .path = "", .body = json_pack("{s:s}", "copy_from", "dest")),
        400);
    assert_int_equal(
        CALL(f, .method = "POST", .path = "", .body = json_pack("{s:s}", "copy_from", "nope.txt")),
        404);
    assert_int_equal(CALL(f, .method = "POST", .path = "no/where.txt",
                          .body = json_pack("{s:s}", "copy_from", "nb.ipynb")),
                     404);
    /* POST onto an existing file */
    assert_int_equal(CALL(f, .method = "POST", .path = "nb.ipynb",
                          .body = json_pack("{s:s}", "copy_from", "data.tar.gz")),
                     400);
}

static void test_untitled_naming(void **state)
{
    struct fx *f = *state;
    mkdir_raw(f->root, "w");
    struct {
        const char *type, *ext, *want;
    } cases[] = {
        {"notebook", NULL, "w/Untitled.ipynb"},
        {"notebook", "", "w/Untitled1.ipynb"},
        {"", ".ipynb", "w/Untitled2.ipynb"},
        {"file", ".txt", "w/untitled.txt"},
        {"file", ".txt", "w/untitled1.txt"},
        {"file", NULL, "w/untitled"},
        {"directory", NULL, "w/Untitled Folder"},
        {"directory", NULL, "w/Untitled Folder 1"},
        {NULL, NULL, "w/untitled1"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        json_t *body = json_object();
        if (cases[i].type)
            json_object_set_new(body, "type", json_string(cases[i].type));
        if (cases[i].ext)
            json_object_set_new(body, "ext", json_string(cases[i].ext));
        json_t *o = NULL;
        char *loc = NULL;
        assert_int_equal(
            do_call(f, (struct call){.method = "POST", .path = "w", .body = body}, &o, &loc), 201);
        assert_string_equal(sget(o, "path"), cases[i].want);
        assert_non_null(loc);
        assert_true(str_starts_with(loc, "/api/contents/w/"));
        free(loc);
        json_decref(o);
        assert_true(exists_raw(f->root, cases[i].want));
    }
    char *s = get_raw(f->root, "w/Untitled.ipynb", NULL);
    assert_true(str_starts_with(s, "{\n \"cells\": [],\n \"metadata\": {},\n \"nbformat\": 4,"));
    free(s);
    struct stat st;
    char *p = fx_path(f->root, "w/Untitled Folder 1");
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(p);
    /* PUT with no body is "new untitled" in that folder, as in jupyter_server */
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "PUT", .path = "w"}, &o, NULL), 201);
    assert_string_equal(sget(o, "path"), "w/untitled2");
    json_decref(o);
    /* refusals */
    assert_int_equal(
        CALL(f, .method = "POST", .path = "missing", .body = json_pack("{s:s}", "type", "file")),
        404);
    assert_int_equal(CALL(f, .method = "POST", .path = "w/untitled.txt",
                          .body = json_pack("{s:s}", "type", "file")),
                     400);
    assert_int_equal(
        CALL(f, .method = "POST", .path = "w", .body = json_pack("{s:s}", "type", "weird")), 400);
    assert_int_equal(CALL(f, .method = "POST", .path = "w",
                          .body = json_pack("{s:s, s:s}", "type", "file", "ext", "/../../x")),
                     400);
}

static void test_delete(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "f.txt", "f");
    mkdir_raw(f->root, "tree");
    mkdir_raw(f->root, "tree/inner");
    put_raw(f->root, "tree/inner/x.txt", "x");
    put_raw(f->root, "tree/.hidden", "h");
    /* a link to the outside inside the tree must be unlinked, not followed */
    char *target = xasprintf("%s", f->outside);
    symlink_raw(target, f->root, "tree/inner/escape");
    free(target);
    assert_int_equal(CALL(f, .method = "POST", .path = "f.txt", .checkpoint = true), 201);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "f.txt"), 204);
    assert_false(exists_raw(f->root, "f.txt"));
    assert_false(exists_raw(f->root, ".ipynb_checkpoints/f-checkpoint.txt"));
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "DELETE", .path = "tree"}, &o, NULL), 204);
    assert_null(o);
    assert_false(exists_raw(f->root, "tree"));
    char *s = get_raw(f->outside, "secret.txt", NULL);
    assert_string_equal(s, "top secret");
    free(s);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "tree"), 404);
    assert_int_equal(CALL(f, .method = "DELETE", .path = ""), 400);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "/"), 400);
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static void test_checkpoints(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "doc.txt", "version 1");
    json_t *o = NULL;
    char *loc = NULL;
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "doc.txt", .checkpoint = true}, &o, NULL),
        200);
    assert_true(json_is_array(o));
    assert_int_equal(json_array_size(o), 0);
    json_decref(o);
    assert_int_equal(do_call(f,
                             (struct call){.method = "POST", .path = "doc.txt", .checkpoint = true},
                             &o, &loc),
                     201);
    assert_string_equal(sget(o, "id"), "checkpoint");
    assert_non_null(sget(o, "last_modified"));
    assert_string_equal(loc, "/api/contents/doc.txt/checkpoints/checkpoint");
    free(loc);
    json_decref(o);
    assert_true(exists_raw(f->root, ".ipynb_checkpoints/doc-checkpoint.txt"));
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "doc.txt", .checkpoint = true}, &o, NULL),
        200);
    assert_int_equal(json_array_size(o), 1);
    assert_string_equal(sget(json_array_get(o, 0), "id"), "checkpoint");
    json_decref(o);
    /* the checkpoint folder is hidden from listings */
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = ""}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(o, "content")), 1);
    json_decref(o);

    assert_int_equal(CALL(f, .method = "PUT", .path = "doc.txt", .body = text_model("version 2")),
                     200);
    assert_int_equal(CALL(f, .method = "POST", .path = "doc.txt", .checkpoint = true,
                          .checkpoint_id = "checkpoint"),
                     204);
    char *s = get_raw(f->root, "doc.txt", NULL);
    assert_string_equal(s, "version 1");
    free(s);
    /* unknown ids */
    assert_int_equal(CALL(f, .method = "POST", .path = "doc.txt", .checkpoint = true,
                          .checkpoint_id = "../../outside/secret"),
                     404);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "doc.txt", .checkpoint = true,
                          .checkpoint_id = "other"),
                     404);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "doc.txt", .checkpoint = true,
                          .checkpoint_id = "checkpoint"),
                     204);
    assert_false(exists_raw(f->root, ".ipynb_checkpoints/doc-checkpoint.txt"));
    assert_int_equal(
        do_call(f, (struct call){.method = "GET", .path = "doc.txt", .checkpoint = true}, &o, NULL),
        200);
    assert_int_equal(json_array_size(o), 0);
    json_decref(o);
    assert_int_equal(do_call(f,
                             (struct call){.method = "POST",
                                           .path = "doc.txt",
                                           .checkpoint = true,
                                           .checkpoint_id = "checkpoint"},
                             &o, NULL),
                     404);
    assert_string_equal(msg(o), "Checkpoint does not exist: doc.txt@checkpoint");
    json_decref(o);
    assert_int_equal(CALL(f, .method = "DELETE", .path = "doc.txt", .checkpoint = true,
                          .checkpoint_id = "checkpoint"),
                     404);
    /* missing files and folders */
    assert_int_equal(CALL(f, .method = "POST", .path = "nope.txt", .checkpoint = true), 404);
    mkdir_raw(f->root, "dd");
    assert_int_equal(CALL(f, .method = "POST", .path = "dd", .checkpoint = true), 400);
    /* a checkpoint folder that is a symlink out is never used */
    mkdir_raw(f->root, "sub");
    put_raw(f->root, "sub/n.txt", "n");
    char *target = xasprintf("%s", f->outside);
    symlink_raw(target, f->root, "sub/.ipynb_checkpoints");
    free(target);
    int st = CALL(f, .method = "POST", .path = "sub/n.txt", .checkpoint = true);
    assert_true(st >= 400);
    assert_false(exists_raw(f->outside, "n-checkpoint.txt"));
}

static void test_checkpoint_restore_notebook(void **state)
{
    struct fx *f = *state;
    json_t *nb = json_loads(NB_JSON, 0, NULL);
    assert_int_equal(CALL(f, .method = "PUT", .path = "n.ipynb",
                          .body = json_pack("{s:s, s:O}", "type", "notebook", "content", nb)),
                     201);
    /* the first save made the checkpoint; change the notebook, then restore */
    json_t *nb2 = json_deep_copy(nb);
    json_array_clear(json_object_get(nb2, "cells"));
    assert_int_equal(CALL(f, .method = "PUT", .path = "n.ipynb",
                          .body = json_pack("{s:s, s:o}", "type", "notebook", "content", nb2)),
                     200);
    json_t *o = NULL;
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "n.ipynb"}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "content"), "cells")), 0);
    json_decref(o);
    assert_int_equal(CALL(f, .method = "POST", .path = "n.ipynb", .checkpoint = true,
                          .checkpoint_id = "checkpoint"),
                     204);
    assert_int_equal(do_call(f, (struct call){.method = "GET", .path = "n.ipynb"}, &o, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "content"), "cells")), 3);
    json_decref(o);
    json_decref(nb);
}

static void test_bad_method_and_root(void **state)
{
    struct fx *f = *state;
    assert_int_equal(CALL(f, .method = "HEAD", .path = ""), 405);
    struct contents_req req = {.root = "/nonexistent-labbook-root", .method = "GET", .path = ""};
    json_t *o = NULL;
    assert_int_equal(contents_handle(&req, &o, NULL), 500);
    json_decref(o);
    char *longp = xmalloc(5000);
    memset(longp, 'a', 4999);
    longp[4999] = '\0';
    assert_int_equal(CALL(f, .method = "GET", .path = longp), 400);
    longp[300] = '\0';
    assert_int_equal(CALL(f, .method = "GET", .path = longp), 400);
    free(longp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_get_directory_listing),
        T(test_get_file_formats),
        T(test_get_big_file_refused),
        T(test_get_fifo_does_not_block),
        T(test_refuse_dotdot_and_absolute),
        T(test_refuse_symlinks_out),
        T(test_symlinks_inside_allowed),
        T(test_refuse_nul_bytes),
        T(test_put_files_and_dirs),
        T(test_hidden_files),
        T(test_notebook_round_trip),
        T(test_invalid_notebooks),
        T(test_chunked_upload),
        T(test_chunked_upload_write_behind),
        T(test_rename),
        T(test_copy_naming),
        T(test_untitled_naming),
        T(test_delete),
        T(test_checkpoints),
        T(test_checkpoint_restore_notebook),
        T(test_bad_method_and_root),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
