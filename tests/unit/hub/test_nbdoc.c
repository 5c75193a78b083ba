/* Tests for server-side notebook documents (hub/nbdoc.c): what a user finds in the .ipynb
 * when they reopen it after cells ran with no browser attached. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include <sodium.h>

#include "common/util.h"
#include "hub/nbdoc.h"

struct fx {
    char *base, *root, *outside;
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

static char *get_raw(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel), *data = NULL;
    size_t l = 0;
    int r = read_file(p, 64 << 20, &data, &l);
    free(p);
    return r < 0 ? NULL : data;
}

static bool exists_raw(const char *dir, const char *rel)
{
    char *p = fx_path(dir, rel);
    struct stat st;
    bool e = lstat(p, &st) == 0;
    free(p);
    return e;
}

static int setup(void **state)
{
    const char *t = getenv("LABBOOK_TEST_TMP");
    if (!t || !t[0])
        t = "/tmp";
    mkdir_p(t, 0755);
    struct fx *f = calloc(1, sizeof *f);
    f->base = xasprintf("%s/nbdoc-XXXXXX", t);
    assert_non_null(mkdtemp(f->base));
    f->root = fx_path(f->base, "drive");
    f->outside = fx_path(f->base, "outside");
    assert_int_equal(mkdir(f->root, 0755), 0);
    assert_int_equal(mkdir(f->outside, 0755), 0);
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

/* A notebook as JupyterLab saves it: cells with ids, multiline sources split. */
#define NB_HEAD "{\n \"cells\": [\n"
#define NB_TAIL                                                                                    \
    " ],\n \"metadata\": {\"kernelspec\": {\"name\": \"python3\"}},\n \"nbformat\": 4,\n"          \
    " \"nbformat_minor\": 5\n}\n"
#define CODE(id, src)                                                                              \
    "  {\"cell_type\": \"code\", \"execution_count\": null, \"id\": \"" id "\", "                  \
    "\"metadata\": {}, \"outputs\": [], \"source\": " src "}"
#define MD(id, src)                                                                                \
    "  {\"cell_type\": \"markdown\", \"id\": \"" id "\", \"metadata\": {}, \"source\": " src "}"

static const char *NB_BASIC = NB_HEAD CODE("a", "[\"print('hi')\"]") ",\n" MD(
    "m", "[\"# Title\\n\", \"text\"]") ",\n" CODE("b", "[\"x = 1\\n\", \"x\"]") "\n" NB_TAIL;

static struct nbdoc *open_doc(struct fx *f, const char *rel, size_t cap)
{
    struct nbdoc_opts o = {.max_cell_output = cap};
    struct nbdoc *doc = NULL;
    assert_int_equal(nbdoc_open(f->root, rel, &o, &doc), 0);
    assert_non_null(doc);
    return doc;
}

/* Sends a kernel message whose content is given as printf-style JSON. */
static int msg(struct nbdoc *doc, const char *type, const char *parent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int msg(struct nbdoc *doc, const char *type, const char *parent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *c = xvasprintf(fmt, ap);
    va_end(ap);
    int r = nbdoc_message(doc, type, parent, c, strlen(c));
    free(c);
    return r;
}

static void stream(struct nbdoc *doc, const char *parent, const char *name, const char *text)
{
    json_t *c = json_pack("{s:s, s:s}", "name", name, "text", text);
    char *s = json_dumps(c, 0);
    assert_int_equal(nbdoc_message(doc, "stream", parent, s, strlen(s)), 0);
    free(s);
    json_decref(c);
}

static json_t *load_nb(struct fx *f, const char *rel)
{
    char *data = get_raw(f->root, rel);
    assert_non_null(data);
    json_error_t err;
    json_t *nb = json_loads(data, 0, &err);
    free(data);
    assert_non_null(nb);
    return nb;
}

static json_t *cell_by_id(json_t *nb, const char *id)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(nb, "cells"), i, c)
    {
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (cid && !strcmp(cid, id))
            return c;
    }
    fail_msg("no cell %s", id);
    return NULL;
}

static json_t *outputs_of(json_t *nb, const char *id)
{
    json_t *o = json_object_get(cell_by_id(nb, id), "outputs");
    assert_true(json_is_array(o));
    return o;
}

/* A multiline field as one string (lists of lines joined). Caller frees. */
static char *joined(json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    assert_true(json_is_array(v));
    struct buf b = {0};
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        assert_true(json_is_string(s));
        buf_append(&b, json_string_value(s), json_string_length(s));
    }
    buf_append(&b, "", 0);
    return buf_steal(&b, NULL);
}

static void assert_stream(json_t *out, const char *name, const char *text)
{
    assert_string_equal(json_string_value(json_object_get(out, "output_type")), "stream");
    assert_string_equal(json_string_value(json_object_get(out, "name")), name);
    char *t = joined(json_object_get(out, "text"));
    assert_string_equal(t, text);
    free(t);
}

static json_int_t count_of(json_t *nb, const char *id)
{
    json_t *c = json_object_get(cell_by_id(nb, id), "execution_count");
    return json_is_integer(c) ? json_integer_value(c) : -1;
}

static void start(struct nbdoc *doc, const char *msg_id, const char *cell, const char *code,
                  int count)
{
    assert_int_equal(nbdoc_request(doc, msg_id, code, cell), 0);
    assert_int_equal(msg(doc, "status", msg_id, "{\"execution_state\": \"busy\"}"), 0);
    assert_int_equal(
        msg(doc, "execute_input", msg_id, "{\"code\": \"\", \"execution_count\": %d}", count), 0);
}

static void finish(struct nbdoc *doc, const char *msg_id, int count)
{
    assert_int_equal(
        msg(doc, "execute_reply", msg_id, "{\"status\": \"ok\", \"execution_count\": %d}", count),
        0);
    assert_int_equal(msg(doc, "status", msg_id, "{\"execution_state\": \"idle\"}"), 1);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_outputs_of_a_run(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    assert_false(nbdoc_dirty(doc));
    start(doc, "m1", "a", "print('hi')", 3);
    stream(doc, "m1", "stdout", "hi\n");
    stream(doc, "m1", "stdout", "there\n");
    stream(doc, "m1", "stderr", "warning\n");
    assert_int_equal(msg(doc, "display_data", "m1",
                         "{\"data\": {\"image/png\": \"iVBORw0KGgo=\", \"text/plain\": "
                         "\"<Figure>\"}, \"metadata\": {\"image/png\": {\"width\": 640}}, "
                         "\"transient\": {}}"),
                     0);
    assert_int_equal(msg(doc, "execute_result", "m1",
                         "{\"data\": {\"text/plain\": \"line1\\nline2\"}, \"metadata\": {}, "
                         "\"execution_count\": 3}"),
                     0);
    assert_int_equal(msg(doc, "error", "m1",
                         "{\"ename\": \"ValueError\", \"evalue\": \"bad\", \"traceback\": "
                         "[\"Traceback\", \"ValueError: bad\"]}"),
                     0);
    finish(doc, "m1", 3);
    assert_true(nbdoc_dirty(doc));
    assert_int_equal(nbdoc_save(doc), 0);
    assert_false(nbdoc_dirty(doc));

    char *raw = get_raw(f->root, "nb.ipynb");
    assert_true(str_starts_with(raw, "{\n \"cells\": [\n  {\n"));
    assert_true(str_ends_with(raw, "}\n"));
    free(raw);

    json_t *nb = load_nb(f, "nb.ipynb");
    json_t *outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 5);
    assert_stream(json_array_get(outs, 0), "stdout", "hi\nthere\n");
    /* nbformat's on-disk form: text split into lines */
    assert_int_equal(json_array_size(json_object_get(json_array_get(outs, 0), "text")), 2);
    assert_stream(json_array_get(outs, 1), "stderr", "warning\n");
    json_t *disp = json_array_get(outs, 2);
    assert_string_equal(json_string_value(json_object_get(disp, "output_type")), "display_data");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(disp, "data"), "image/png")),
        "iVBORw0KGgo=");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(disp, "metadata"), "image/png"), "width")),
                     640);
    assert_null(json_object_get(disp, "transient"));
    json_t *res = json_array_get(outs, 3);
    assert_string_equal(json_string_value(json_object_get(res, "output_type")), "execute_result");
    assert_int_equal(json_integer_value(json_object_get(res, "execution_count")), 3);
    json_t *plain = json_object_get(json_object_get(res, "data"), "text/plain");
    assert_int_equal(json_array_size(plain), 2);
    assert_string_equal(json_string_value(json_array_get(plain, 0)), "line1\n");
    json_t *err = json_array_get(outs, 4);
    assert_string_equal(json_string_value(json_object_get(err, "ename")), "ValueError");
    assert_int_equal(json_array_size(json_object_get(err, "traceback")), 2);
    assert_int_equal(count_of(nb, "a"), 3);
    /* the other cells are as they were */
    assert_int_equal(json_array_size(outputs_of(nb, "b")), 0);
    assert_int_equal(count_of(nb, "b"), -1);
    char *md = joined(json_object_get(cell_by_id(nb, "m"), "source"));
    assert_string_equal(md, "# Title\ntext");
    free(md);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(nb, "metadata"), "kernelspec"), "name")),
        "python3");
    json_decref(nb);

    /* Saving again with nothing new leaves the file alone. */
    struct stat before, after;
    char *p = fx_path(f->root, "nb.ipynb");
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(nbdoc_save(doc), 0);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    free(p);
    nbdoc_close(doc);
}

static void test_progress_bar_and_backspace(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", "print('hi')", 1);
    stream(doc, "m1", "stdout", "epoch 1\n");
    char line[128];
    for (int i = 0; i <= 10000; i++) {
        int pct = i / 100;
        snprintf(line, sizeof line, "\r%3d%%|%.*s%*s| %d/10000", pct, pct / 10, "##########",
                 10 - pct / 10, "", i);
        /* tqdm on stderr, with a few stdout-free chunks split mid-line */
        stream(doc, "m1", "stderr", line);
    }
    stream(doc, "m1", "stderr", "\n");
    stream(doc, "m1", "stdout", "abc\b\bX\n");
    stream(doc, "m1", "stdout", "ab\xe2\x96\x91\xe2\x96\x91\r\xe2\x96\x88\xe2\x96\x88"); /* ab░░ */
    stream(doc, "m1", "stdout", "\r\n");
    stream(doc, "m1", "stdout", "long line\rshort\n");
    stream(doc, "m1", "stdout", "10%\r");
    stream(doc, "m1", "stdout", "20%\r");
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);

    json_t *nb = load_nb(f, "nb.ipynb");
    json_t *outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 3);
    assert_stream(json_array_get(outs, 0), "stdout", "epoch 1\n");
    assert_stream(json_array_get(outs, 1), "stderr", "100%|##########| 10000/10000\n");
    assert_stream(json_array_get(outs, 2), "stdout",
                  "aX\n\xe2\x96\x88\xe2\x96\x88\xe2\x96\x91\xe2\x96\x91\nshortline\n20%\r");
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_clear_output(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", "print('hi')", 1);
    stream(doc, "m1", "stdout", "step 1\n");
    assert_int_equal(msg(doc, "clear_output", "m1", "{\"wait\": true}"), 0);
    /* wait=True: still there until the next output */
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "step 1\n");
    json_decref(nb);
    stream(doc, "m1", "stdout", "step 2\n");
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 1);
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "step 2\n");
    json_decref(nb);
    /* wait=False: gone at once */
    assert_int_equal(msg(doc, "clear_output", "m1", "{\"wait\": false}"), 0);
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 0);
    assert_int_equal(count_of(nb, "a"), 1);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_update_display_data(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    assert_int_equal(msg(doc, "display_data", "m1",
                         "{\"data\": {\"text/plain\": \"0%%\"}, \"metadata\": {}, "
                         "\"transient\": {\"display_id\": \"bar\"}}"),
                     0);
    stream(doc, "m1", "stdout", "between\n");
    assert_int_equal(msg(doc, "display_data", "m1",
                         "{\"data\": {\"text/plain\": \"0%% again\"}, \"metadata\": {}, "
                         "\"transient\": {\"display_id\": \"bar\"}}"),
                     0);
    assert_int_equal(msg(doc, "update_display_data", "m1",
                         "{\"data\": {\"text/plain\": \"50%%\"}, \"metadata\": {}, "
                         "\"transient\": {\"display_id\": \"bar\"}}"),
                     0);
    finish(doc, "m1", 1);
    /* A later cell updates the display shown by the first one. */
    start(doc, "m2", "b", NULL, 2);
    assert_int_equal(msg(doc, "update_display_data", "m2",
                         "{\"data\": {\"text/plain\": \"100%%\"}, \"metadata\": {\"k\": 1}, "
                         "\"transient\": {\"display_id\": \"bar\"}}"),
                     0);
    /* An unknown display id changes nothing. */
    assert_int_equal(msg(doc, "update_display_data", "m2",
                         "{\"data\": {\"text/plain\": \"?\"}, \"metadata\": {}, "
                         "\"transient\": {\"display_id\": \"other\"}}"),
                     0);
    finish(doc, "m2", 2);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    json_t *outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 3);
    for (size_t i = 0; i < 3; i += 2) {
        json_t *o = json_array_get(outs, i);
        char *t = joined(json_object_get(json_object_get(o, "data"), "text/plain"));
        assert_string_equal(t, "100%");
        free(t);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "metadata"), "k")),
                         1);
    }
    assert_stream(json_array_get(outs, 1), "stdout", "between\n");
    assert_int_equal(json_array_size(outputs_of(nb, "b")), 0);
    assert_int_equal(count_of(nb, "b"), 2);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_second_run_replaces_first(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "first\n");
    finish(doc, "m1", 1);
    /* queued but not started yet: the first run's outputs are what gets saved */
    assert_int_equal(nbdoc_request(doc, "m2", NULL, "a"), 0);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "first\n");
    assert_int_equal(count_of(nb, "a"), 1);
    json_decref(nb);

    assert_int_equal(msg(doc, "execute_input", "m2", "{\"execution_count\": 2}"), 0);
    stream(doc, "m2", "stdout", "second\n");
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 1);
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "second\n");
    assert_int_equal(count_of(nb, "a"), 2);
    json_decref(nb);

    /* a run with no output at all still clears the cell and sets its count */
    start(doc, "m3", "a", NULL, 3);
    finish(doc, "m3", 3);
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 0);
    assert_int_equal(count_of(nb, "a"), 3);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_identical_sources(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb",
            NB_HEAD CODE("c1", "[\"x = 1\\n\", \"x\"]") ",\n" CODE(
                "c2", "[\"x = 1\\n\", \"x\"]") ",\n" CODE("c3", "\"y\"") "\n" NB_TAIL);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    /* by cellId: the second of two identical cells */
    start(doc, "m1", "c2", "x = 1\nx", 1);
    stream(doc, "m1", "stdout", "from c2\n");
    finish(doc, "m1", 1);
    /* no cellId (VS Code): the first code cell with that exact source */
    start(doc, "m2", NULL, "y", 2);
    stream(doc, "m2", "stdout", "from y\n");
    finish(doc, "m2", 2);
    /* no cellId and no cell with that source: not recorded */
    start(doc, "m3", NULL, "z", 3);
    stream(doc, "m3", "stdout", "from z\n");
    finish(doc, "m3", 3);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "c1")), 0);
    assert_int_equal(count_of(nb, "c1"), -1);
    assert_stream(json_array_get(outputs_of(nb, "c2"), 0), "stdout", "from c2\n");
    assert_stream(json_array_get(outputs_of(nb, "c3"), 0), "stdout", "from y\n");
    assert_int_equal(json_array_size(json_object_get(nb, "cells")), 3);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_external_edit_preserved(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "part 1\n");
    assert_int_equal(nbdoc_save(doc), 0);

    /* The browser saves while the cell still runs: it edited cell b and added a cell. */
    put_raw(f->root, "nb.ipynb",
            NB_HEAD CODE("a", "[\"print('hi')\"]") ",\n" MD("m", "\"edited title\"") ",\n" CODE(
                "b", "\"x = 2  # edited\"") ",\n" CODE("new", "\"print(3)\"") "\n" NB_TAIL);
    stream(doc, "m1", "stdout", "part 2\n");
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "part 1\npart 2\n");
    assert_string_equal(json_string_value(json_object_get(cell_by_id(nb, "b"), "source")),
                        "x = 2  # edited");
    assert_string_equal(json_string_value(json_object_get(cell_by_id(nb, "m"), "source")),
                        "edited title");
    assert_int_equal(json_array_size(json_object_get(nb, "cells")), 4);
    json_decref(nb);

    /* Between runs, VS Code saves an edit of another cell; the next run keeps it. */
    put_raw(
        f->root, "nb.ipynb",
        NB_HEAD CODE("a", "[\"print('hi')\"]") ",\n" CODE("b", "\"x = 3  # vscode\"") "\n" NB_TAIL);
    start(doc, "m2", "a", NULL, 2);
    stream(doc, "m2", "stdout", "run 2\n");
    finish(doc, "m2", 2);
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "run 2\n");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(cell_by_id(nb, "b"), "source")),
                        "x = 3  # vscode");
    assert_int_equal(json_array_size(json_object_get(nb, "cells")), 2);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_cell_not_saved_yet(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    /* The user added cell "fresh" and ran it before the browser saved it. */
    start(doc, "m1", "fresh", "print('hi')", 1);
    stream(doc, "m1", "stdout", "fresh output\n");
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);
    char *raw = get_raw(f->root, "nb.ipynb");
    assert_string_equal(raw, NB_BASIC); /* not written into cell a despite the same source */
    free(raw);
    assert_true(nbdoc_dirty(doc));
    /* The browser saves it (without outputs: the tab was closed meanwhile). */
    put_raw(
        f->root, "nb.ipynb",
        NB_HEAD CODE("a", "[\"print('hi')\"]") ",\n" CODE("fresh", "\"print('hi')\"") "\n" NB_TAIL);
    assert_int_equal(nbdoc_save(doc), 0);
    assert_false(nbdoc_dirty(doc));
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "fresh"), 0), "stdout", "fresh output\n");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 0);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_notebook_without_ids(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "old.ipynb",
            "{\"cells\": [{\"cell_type\": \"code\", \"execution_count\": 7, \"metadata\": {}, "
            "\"outputs\": [{\"output_type\": \"stream\", \"name\": \"stdout\", \"text\": "
            "\"stale\\n\"}], \"source\": \"print(1)\"}], \"metadata\": {}, \"nbformat\": 4, "
            "\"nbformat_minor\": 4}");
    struct nbdoc *doc = open_doc(f, "old.ipynb", 0);
    /* JupyterLab invents ids for cells that have none: matched by source instead */
    start(doc, "m1", "8f2c-invented", "print(1)", 1);
    stream(doc, "m1", "stdout", "1\n");
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "old.ipynb");
    json_t *cell = json_array_get(json_object_get(nb, "cells"), 0);
    assert_int_equal(json_integer_value(json_object_get(cell, "execution_count")), 1);
    json_t *outs = json_object_get(cell, "outputs");
    assert_int_equal(json_array_size(outs), 1);
    assert_stream(json_array_get(outs, 0), "stdout", "1\n");
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_deleted_or_renamed(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "one\n");
    /* renamed meanwhile */
    char *from = fx_path(f->root, "nb.ipynb"), *to = fx_path(f->root, "moved.ipynb");
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(nbdoc_save(doc), -ENOENT);
    assert_false(exists_raw(f->root, "nb.ipynb"));
    char *raw = get_raw(f->root, "moved.ipynb");
    assert_string_equal(raw, NB_BASIC);
    free(raw);
    assert_true(nbdoc_dirty(doc));
    /* the hub learns the new name (session PATCH) */
    assert_int_equal(nbdoc_set_path(doc, "moved.ipynb"), 0);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "moved.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "one\n");
    json_decref(nb);
    /* deleted meanwhile: nothing is recreated */
    stream(doc, "m1", "stdout", "two\n");
    assert_int_equal(unlink(to), 0);
    assert_int_equal(nbdoc_save(doc), -ENOENT);
    assert_false(exists_raw(f->root, "moved.ipynb"));
    assert_false(exists_raw(f->root, "nb.ipynb"));
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), -ENOENT);
    /* the folder has nothing left behind (no temporary files) */
    char *cmd = xasprintf("test -z \"$(ls -A '%s')\"", f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(from);
    free(to);
    nbdoc_close(doc);
}

static void test_hostile_paths(void **state)
{
    struct fx *f = *state;
    put_raw(f->outside, "x.ipynb", NB_BASIC);
    put_raw(f->root, "notes.txt", "hello");
    struct nbdoc *doc = NULL;
    assert_int_equal(nbdoc_open(f->root, "../outside/x.ipynb", NULL, &doc), -EINVAL);
    assert_int_equal(nbdoc_open(f->root, "a/../../outside/x.ipynb", NULL, &doc), -EINVAL);
    assert_int_equal(nbdoc_open(f->root, "notes.txt", NULL, &doc), -EINVAL);
    assert_int_equal(nbdoc_open(f->root, "", NULL, &doc), -EINVAL);
    assert_int_equal(nbdoc_open(f->root, "missing.ipynb", NULL, &doc), -ENOENT);
    assert_null(doc);
    /* a symlink out of the drive, to a file or to a folder */
    char *target = fx_path(f->outside, "x.ipynb"), *link = fx_path(f->root, "link.ipynb");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(nbdoc_open(f->root, "link.ipynb", NULL, &doc), -ELOOP);
    char *dlink = fx_path(f->root, "out");
    assert_int_equal(symlink(f->outside, dlink), 0);
    assert_int_equal(nbdoc_open(f->root, "out/x.ipynb", NULL, &doc), -ELOOP);
    assert_int_equal(nbdoc_open(f->root, "/out/x.ipynb", NULL, &doc), -ELOOP);
    assert_null(doc);
    mkdir_p(f->root, 0755);
    char *dir = fx_path(f->root, "dir.ipynb");
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(nbdoc_open(f->root, "dir.ipynb", NULL, &doc), -EISDIR);

    /* opened fine, then swapped for a symlink pointing out: the save refuses */
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    doc = open_doc(f, "/nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "secret?\n");
    char *nbp = fx_path(f->root, "nb.ipynb");
    assert_int_equal(unlink(nbp), 0);
    assert_int_equal(symlink(target, nbp), 0);
    assert_int_equal(nbdoc_save(doc), -ELOOP);
    char *raw = get_raw(f->outside, "x.ipynb");
    assert_string_equal(raw, NB_BASIC);
    free(raw);
    assert_int_equal(nbdoc_set_path(doc, "../outside/x.ipynb"), -EINVAL);
    assert_int_equal(nbdoc_set_path(doc, "out/x.ipynb"), 0); /* checked at the save */
    assert_int_equal(nbdoc_save(doc), -ELOOP);
    raw = get_raw(f->outside, "x.ipynb");
    assert_string_equal(raw, NB_BASIC);
    free(raw);
    nbdoc_close(doc);
    free(target);
    free(link);
    free(dlink);
    free(dir);
    free(nbp);
}

static void test_not_a_notebook(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "x\n");
    put_raw(f->root, "nb.ipynb", "{\"half written");
    assert_int_equal(nbdoc_save(doc), -EINVAL);
    char *raw = get_raw(f->root, "nb.ipynb");
    assert_string_equal(raw, "{\"half written");
    free(raw);
    /* bad content of a tracked message is refused; untracked ones are not even parsed */
    assert_int_equal(nbdoc_message(doc, "stream", "m1", "{nope", 5), -EINVAL);
    assert_int_equal(nbdoc_message(doc, "stream", "other", "{nope", 5), 0);
    nbdoc_close(doc);
}

static void test_untracked_and_silent(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    const char *silent = "{\"code\": \"x\", \"silent\": true}";
    assert_int_equal(nbdoc_request_msg(doc, "s1", silent, strlen(silent), NULL, 0), 0);
    stream(doc, "s1", "stdout", "silent\n");
    stream(doc, "nobody", "stdout", "stray\n");
    assert_int_equal(msg(doc, "status", "nobody", "{\"execution_state\": \"idle\"}"), 0);
    assert_false(nbdoc_dirty(doc));
    const char *bad = "{\"nocode\": 1}";
    assert_int_equal(nbdoc_request_msg(doc, "s2", bad, strlen(bad), NULL, 0), -EINVAL);
    /* JupyterLab's request: cellId in the message metadata */
    const char *content = "{\"code\": \"x = 1\\nx\", \"silent\": false, \"store_history\": true}";
    const char *md = "{\"cellId\": \"b\", \"deletedCells\": [], \"recordTiming\": false}";
    assert_int_equal(nbdoc_request_msg(doc, "j1", content, strlen(content), md, strlen(md)), 0);
    assert_int_equal(msg(doc, "execute_input", "j1", "{\"execution_count\": 5}"), 0);
    assert_int_equal(msg(doc, "execute_result", "j1",
                         "{\"data\": {\"text/plain\": \"1\"}, \"metadata\": {}, "
                         "\"execution_count\": 5}"),
                     0);
    assert_true(nbdoc_dirty(doc));
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_int_equal(json_array_size(outputs_of(nb, "a")), 0);
    assert_int_equal(json_array_size(outputs_of(nb, "b")), 1);
    assert_int_equal(count_of(nb, "b"), 5);
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_size_cap(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    const size_t cap = 4096;
    struct nbdoc *doc = open_doc(f, "nb.ipynb", cap);
    start(doc, "m1", "a", NULL, 1);
    char line[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(line, sizeof line, "line %d\n", i);
        stream(doc, "m1", "stdout", line);
    }
    assert_int_equal(msg(doc, "display_data", "m1",
                         "{\"data\": {\"text/plain\": \"after the cap\"}, \"metadata\": {}}"),
                     0);
    finish(doc, "m1", 1);
    assert_int_equal(nbdoc_save(doc), 0);
    char *raw = get_raw(f->root, "nb.ipynb");
    assert_true(strlen(raw) < strlen(NB_BASIC) + 3 * cap);
    free(raw);
    json_t *nb = load_nb(f, "nb.ipynb");
    json_t *outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 2);
    char *t = joined(json_object_get(json_array_get(outs, 0), "text"));
    assert_true(str_starts_with(t, "line 0\nline 1\n"));
    assert_true(strlen(t) > cap / 2 && strlen(t) < cap);
    assert_null(strstr(t, "line 1999"));
    free(t);
    json_t *note = json_array_get(outs, 1);
    t = joined(json_object_get(note, "text"));
    assert_non_null(strstr(t, "Output truncated"));
    assert_non_null(strstr(t, "4096 bytes"));
    free(t);
    json_decref(nb);

    /* One display larger than the cap: dropped, with the note; earlier output kept. */
    start(doc, "m2", "b", NULL, 2);
    stream(doc, "m2", "stdout", "before\n");
    char *big = xmalloc(8192 + 1);
    memset(big, 'A', 8192);
    big[8192] = '\0';
    assert_int_equal(msg(doc, "display_data", "m2",
                         "{\"data\": {\"image/png\": \"%s\"}, \"metadata\": {}}", big),
                     0);
    free(big);
    finish(doc, "m2", 2);
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    outs = outputs_of(nb, "b");
    assert_int_equal(json_array_size(outs), 2);
    assert_stream(json_array_get(outs, 0), "stdout", "before\n");
    t = joined(json_object_get(json_array_get(outs, 1), "text"));
    assert_non_null(strstr(t, "Output truncated"));
    free(t);
    json_decref(nb);

    /* A progress bar never counts more than its last state. */
    start(doc, "m3", "a", NULL, 3);
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof line, "\rstep %d", i);
        stream(doc, "m3", "stderr", line);
    }
    finish(doc, "m3", 3);
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 1);
    assert_stream(json_array_get(outs, 0), "stderr", "step 4999");
    json_decref(nb);
    nbdoc_close(doc);
}

static void test_many_runs_capped(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc_opts o = {.max_runs = 3};
    struct nbdoc *doc = NULL;
    assert_int_equal(nbdoc_open(f->root, "nb.ipynb", &o, &doc), 0);
    start(doc, "r0", "a", NULL, 1);
    stream(doc, "r0", "stdout", "r0\n");
    finish(doc, "r0", 1);
    start(doc, "r1", "b", NULL, 2);
    stream(doc, "r1", "stdout", "r1\n");
    finish(doc, "r1", 2);
    assert_int_equal(nbdoc_request(doc, "r2", NULL, "a"), 0);
    /* full: the unsaved runs stay, the request never started goes */
    assert_int_equal(nbdoc_request(doc, "r3", NULL, "b"), 0);
    assert_int_equal(msg(doc, "execute_input", "r2", "{\"execution_count\": 9}"), 0);
    assert_int_equal(nbdoc_save(doc), 0);
    assert_false(nbdoc_dirty(doc));
    /* full again: a finished, saved run goes */
    assert_int_equal(nbdoc_request(doc, "r4", NULL, "a"), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", "r0\n");
    assert_int_equal(count_of(nb, "a"), 1);
    json_decref(nb);
    nbdoc_close(doc);

    /* Every slot holds outputs not saved anywhere yet: refused, nothing dropped. */
    o.max_runs = 2;
    assert_int_equal(nbdoc_open(f->root, "nb.ipynb", &o, &doc), 0);
    start(doc, "u0", NULL, "not in the notebook 0", 1);
    stream(doc, "u0", "stdout", "x\n");
    start(doc, "u1", NULL, "not in the notebook 1", 2);
    stream(doc, "u1", "stdout", "y\n");
    assert_int_equal(nbdoc_request(doc, "u2", NULL, "a"), -ENOSPC);
    assert_true(nbdoc_dirty(doc));
    nbdoc_close(doc);
    nbdoc_close(NULL);
}

/* The hub saves from its thread pool while the loop keeps recording. */
struct saver {
    struct nbdoc *doc;
    atomic_bool stop;
    int saves, errors;
};

static void *save_loop(void *arg)
{
    struct saver *sv = arg;
    while (!sv->stop) {
        if (nbdoc_save(sv->doc) < 0)
            sv->errors++;
        sv->saves++;
    }
    return NULL;
}

static void test_save_while_recording(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    struct saver sv = {.doc = doc};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, save_loop, &sv), 0);
    start(doc, "m1", "a", NULL, 1);
    struct buf want = {0};
    char line[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(line, sizeof line, "%d\n", i);
        stream(doc, "m1", "stdout", line);
        buf_append(&want, line, strlen(line));
    }
    finish(doc, "m1", 1);
    sv.stop = true;
    pthread_join(t, NULL);
    assert_int_equal(sv.errors, 0);
    assert_true(sv.saves > 0);
    assert_int_equal(nbdoc_save(doc), 0);
    assert_false(nbdoc_dirty(doc));
    json_t *nb = load_nb(f, "nb.ipynb");
    assert_stream(json_array_get(outputs_of(nb, "a"), 0), "stdout", want.data);
    json_decref(nb);
    buf_free(&want);
    nbdoc_close(doc);
}

/* A hub restarted while a cell ran, and the agent could not keep the run's first outputs:
 * the cell keeps what the file has, a note marks the gap, what follows comes after it. */
static void test_resume_keeps_file_outputs(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    /* The first hub recorded two lines, then died. */
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    start(doc, "m1", "a", NULL, 7);
    stream(doc, "m1", "stdout", "0\n1\n");
    assert_int_equal(nbdoc_save(doc), 0);
    nbdoc_close(doc);

    doc = open_doc(f, "nb.ipynb", 0);
    assert_false(nbdoc_tracks(doc, "m1"));
    assert_int_equal(nbdoc_resume(doc, "m1", NULL, "a"), 0);
    assert_true(nbdoc_tracks(doc, "m1"));
    nbdoc_gap(doc, "m1", "[labbook] gap");
    stream(doc, "m1", "stdout", "5\n");
    assert_int_equal(nbdoc_save(doc), 0);
    stream(doc, "m1", "stdout", "6\n");
    finish(doc, "m1", 7);
    assert_int_equal(nbdoc_save(doc), 0);
    json_t *nb = load_nb(f, "nb.ipynb");
    json_t *outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 3);
    assert_stream(json_array_get(outs, 0), "stdout", "0\n1\n");
    assert_stream(json_array_get(outs, 1), "stderr", "[labbook] gap\n");
    assert_stream(json_array_get(outs, 2), "stdout", "5\n6\n");
    assert_int_equal(count_of(nb, "a"), 7);
    json_decref(nb);
    nbdoc_close(doc);

    /* A clear_output after the resume clears what the file had too. */
    doc = open_doc(f, "nb.ipynb", 0);
    assert_int_equal(nbdoc_resume(doc, "m2", NULL, "a"), 0);
    assert_int_equal(msg(doc, "clear_output", "m2", "{\"wait\": false}"), 0);
    stream(doc, "m2", "stdout", "fresh\n");
    assert_int_equal(nbdoc_save(doc), 0);
    nb = load_nb(f, "nb.ipynb");
    outs = outputs_of(nb, "a");
    assert_int_equal(json_array_size(outs), 1);
    assert_stream(json_array_get(outs, 0), "stdout", "fresh\n");
    json_decref(nb);
    nbdoc_close(doc);
}

static void note_id(void *ctx, const char *msg_id)
{
    struct buf *b = ctx;
    buf_printf(b, "%s;", msg_id);
}

/* The hub tells the agent which runs it may forget: finished ones the file has, once. */
static void test_take_recorded(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    struct buf b = {0};
    start(doc, "m1", "a", NULL, 1);
    stream(doc, "m1", "stdout", "x\n");
    finish(doc, "m1", 1);
    start(doc, "m2", "b", NULL, 2);
    stream(doc, "m2", "stdout", "y\n");
    assert_int_equal(nbdoc_take_recorded(doc, note_id, &b), 0); /* nothing saved yet */
    assert_int_equal(nbdoc_save(doc), 0);
    assert_int_equal(nbdoc_take_recorded(doc, note_id, &b), 1); /* m2 still runs */
    stream(doc, "m2", "stdout", "z\n");
    finish(doc, "m2", 2);
    assert_int_equal(nbdoc_take_recorded(doc, note_id, &b), 0); /* its last line is not saved */
    assert_int_equal(nbdoc_save(doc), 0);
    assert_int_equal(nbdoc_take_recorded(doc, note_id, &b), 1);
    assert_int_equal(nbdoc_take_recorded(doc, note_id, &b), 0);
    buf_append(&b, "", 0);
    assert_string_equal(b.data, "m1;m2;");
    buf_free(&b);
    nbdoc_close(doc);
}

/* What runs now, for a client that connects mid-run: the last run started and not
 * ended, with its outputs so far, then the requests queued after it. */
static void test_in_flight(void **state)
{
    struct fx *f = *state;
    put_raw(f->root, "nb.ipynb", NB_BASIC);
    struct nbdoc *doc = open_doc(f, "nb.ipynb", 0);
    json_t *a = nbdoc_in_flight(doc);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    /* A run the kernel never ended (it restarted), then one that runs now. */
    start(doc, "stale", "b", "x = 1\nx", 1);
    start(doc, "m1", "a", "print('hi')", 2);
    stream(doc, "m1", "stdout", "one\n");
    stream(doc, "m1", "stdout", "two\n");
    assert_int_equal(nbdoc_request(doc, "m2", "x = 1\nx", "b"), 0);
    a = nbdoc_in_flight(doc);
    assert_int_equal(json_array_size(a), 2);
    json_t *r = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(r, "msg_id")), "m1");
    assert_string_equal(json_string_value(json_object_get(r, "cell_id")), "a");
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(r, "execution_count")), 2);
    assert_true(json_integer_value(json_object_get(r, "started")) > 1700000000000LL);
    json_t *outs = json_object_get(r, "outputs");
    assert_int_equal(json_array_size(outs), 1);
    assert_stream(json_array_get(outs, 0), "stdout", "one\ntwo\n");
    r = json_array_get(a, 1);
    assert_string_equal(json_string_value(json_object_get(r, "msg_id")), "m2");
    assert_string_equal(json_string_value(json_object_get(r, "state")), "queued");
    assert_int_equal(json_array_size(json_object_get(r, "outputs")), 0);
    json_decref(a);

    /* m1 ends: m2 waits, then runs alone. Once it ends, nothing runs. */
    finish(doc, "m1", 2);
    a = nbdoc_in_flight(doc);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "state")),
                        "queued");
    json_decref(a);
    assert_int_equal(msg(doc, "status", "m2", "{\"execution_state\": \"busy\"}"), 0);
    assert_int_equal(msg(doc, "execute_input", "m2", "{\"code\": \"\", \"execution_count\": 3}"),
                     0);
    a = nbdoc_in_flight(doc);
    assert_int_equal(json_array_size(a), 1);
    r = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(r, "msg_id")), "m2");
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    json_decref(a);
    finish(doc, "m2", 3);
    a = nbdoc_in_flight(doc);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
    nbdoc_close(doc);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_outputs_of_a_run),
        T(test_progress_bar_and_backspace),
        T(test_clear_output),
        T(test_update_display_data),
        T(test_second_run_replaces_first),
        T(test_identical_sources),
        T(test_external_edit_preserved),
        T(test_cell_not_saved_yet),
        T(test_notebook_without_ids),
        T(test_deleted_or_renamed),
        T(test_hostile_paths),
        T(test_not_a_notebook),
        T(test_untracked_and_silent),
        T(test_size_cap),
        T(test_many_runs_capped),
        T(test_save_while_recording),
        T(test_resume_keeps_file_outputs),
        T(test_take_recorded),
        T(test_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
