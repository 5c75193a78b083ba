/* Tests for the agent's file service (agent/files.c) on a scratch /content: listing,
 * reading, atomic writes, folders, deletes, and what it refuses: "..", absolute
 * paths, symlinks, FIFOs, oversized requests, a runtime without a sandbox. */
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/files.h"
#include "common/util.h"
#include "wire/stream.h"

struct fixture {
    char dir[64];
    char *content;
    struct files_root root;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/lbk-files-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->content = xasprintf("%s/content", f->dir);
    assert_int_equal(mkdir(f->content, 0755), 0);
    f->root = (struct files_root){.content_dir = f->content, .max_bytes = 1024};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f->content);
    free(f);
    return 0;
}

/* One request; returns the reply's JSON (caller decrefs) and its data in *data. */
static json_t *ask(struct fixture *f, const char *op, const char *path, const char *body,
                   char **data)
{
    json_t *o = json_pack("{s:i, s:s, s:s}", "req", 7, "op", op, "path", path);
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n, rn;
    uint8_t *p = stream_file_pack(js, strlen(js), body, body ? strlen(body) : 0, &n);
    free(js);
    uint8_t *r = files_serve(&f->root, p, n, &rn);
    free(p);
    const char *rj;
    const uint8_t *rd;
    size_t rjl, rdl;
    assert_int_equal(stream_file_split(r, rn, &rj, &rjl, &rd, &rdl), 0);
    json_t *reply = json_loadb(rj, rjl, 0, NULL);
    assert_non_null(reply);
    assert_int_equal(json_integer_value(json_object_get(reply, "req")), 7);
    if (data)
        *data = xstrndup((const char *)rd, rdl);
    free(r);
    return reply;
}

static int status_of(struct fixture *f, const char *op, const char *path, const char *body)
{
    json_t *r = ask(f, op, path, body, NULL);
    int s = (int)json_integer_value(json_object_get(r, "status"));
    json_decref(r);
    return s;
}

static void test_write_read_list(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(status_of(f, "write", "a.txt", "hello"), 201);
    assert_int_equal(status_of(f, "write", "a.txt", "hello again"), 201);
    char *data;
    json_t *r = ask(f, "read", "a.txt", NULL, &data);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    assert_string_equal(data, "hello again");
    free(data);
    json_decref(r);
    assert_int_equal(status_of(f, "mkdir", "sub", NULL), 201);
    assert_int_equal(status_of(f, "mkdir", "sub", NULL), 409);
    assert_int_equal(status_of(f, "write", "sub/b.txt", "b"), 201);
    assert_int_equal(status_of(f, "write", "nowhere/b.txt", "b"), 404);
    assert_int_equal(status_of(f, "write", "sub", "b"), 409);
    r = ask(f, "list", "", NULL, NULL);
    json_t *e = json_object_get(r, "entries");
    assert_int_equal(json_array_size(e), 2); /* no temporary file left behind */
    json_decref(r);
    r = ask(f, "read", "sub", NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "directory");
    e = json_array_get(json_object_get(r, "entries"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "b.txt");
    assert_int_equal(json_integer_value(json_object_get(e, "size")), 1);
    json_decref(r);
    assert_int_equal(status_of(f, "list", "a.txt", NULL), 409);
    assert_int_equal(status_of(f, "delete", "sub", NULL), 409);
    assert_int_equal(status_of(f, "delete", "sub/b.txt", NULL), 204);
    assert_int_equal(status_of(f, "delete", "sub", NULL), 204);
    assert_int_equal(status_of(f, "delete", "sub", NULL), 404);
    assert_int_equal(status_of(f, "delete", "", NULL), 400);
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(status_of(f, "read", "../content", NULL), 400);
    assert_int_equal(status_of(f, "read", "/etc/passwd", NULL), 400);
    assert_int_equal(status_of(f, "read", "a/./b", NULL), 400);
    assert_int_equal(status_of(f, "chmod", "a", NULL), 400);
    char *p = xasprintf("%s/out", f->content);
    assert_int_equal(symlink("/etc", p), 0);
    free(p);
    p = xasprintf("%s/pw", f->content);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    free(p);
    assert_int_equal(status_of(f, "read", "out/passwd", NULL), 403);
    assert_int_equal(status_of(f, "read", "pw", NULL), 403);
    assert_int_equal(status_of(f, "write", "out/x", "x"), 403);
    assert_int_equal(status_of(f, "mkdir", "out/x", NULL), 403);
    /* The drive's mount point is not reachable, nor listed. */
    p = xasprintf("%s/drive/MyDrive", f->content);
    assert_int_equal(mkdir_p(p, 0755), 0);
    free(p);
    assert_int_equal(status_of(f, "delete", "drive/MyDrive", NULL), 403);
    assert_int_equal(status_of(f, "write", "drive/MyDrive/x", "x"), 403);
    assert_int_equal(status_of(f, "read", "drive", NULL), 403);
    json_t *l = ask(f, "list", "", NULL, NULL);
    for (size_t i = 0; i < json_array_size(json_object_get(l, "entries")); i++)
        assert_string_not_equal(json_string_value(json_object_get(
                                    json_array_get(json_object_get(l, "entries"), i), "name")),
                                "drive");
    json_decref(l);
    /* A FIFO is not read (and does not block the agent). */
    p = xasprintf("%s/fifo", f->content);
    assert_int_equal(mkfifo(p, 0644), 0);
    free(p);
    assert_int_equal(status_of(f, "read", "fifo", NULL), 403);
    /* The caps. */
    char big[1100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    json_t *r = ask(f, "write", "big", big, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 413);
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "drive"));
    json_decref(r);
    p = xasprintf("%s/big", f->content);
    FILE *fp = fopen(p, "w");
    fputs(big, fp);
    fclose(fp);
    free(p);
    assert_int_equal(status_of(f, "read", "big", NULL), 413);
    /* Malformed requests. */
    size_t n;
    uint8_t *out = files_serve(&f->root, (const uint8_t *)"\xff\0\0\0{}", 6, &n);
    assert_non_null(strstr((const char *)out + 4, "400"));
    free(out);
    f->root.content_dir = NULL;
    r = ask(f, "read", "", NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 404);
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "not sandboxed"));
    json_decref(r);
}

static void test_listing_cap(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i <= FILES_MAX_ENTRIES; i++) {
        char *p = xasprintf("%s/f%d", f->content, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        free(p);
    }
    json_t *r = ask(f, "list", "", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "entries")), FILES_MAX_ENTRIES);
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
