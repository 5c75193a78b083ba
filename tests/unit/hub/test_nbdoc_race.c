/* The recorder and an acknowledged save (hub/nbdoc.c): a Contents API save that lands while
 * the recorder writes its copy must survive. The hook puts that save in the window between
 * the recorder's write (with its fsync) and its rename, the window where it was lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"

static const char *race_root;
static int race_saves; /* how many times the hook still saves behind the recorder's back */

#define NB_HEAD "{\n \"cells\": [\n"
#define NB_TAIL " ],\n \"metadata\": {},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n"
#define CODE(id)                                                                                   \
    "  {\"cell_type\": \"code\", \"execution_count\": null, \"id\": \"" id "\", "                  \
    "\"metadata\": {}, \"outputs\": [], \"source\": \"print(1)\"}"
#define MD(id, text)                                                                               \
    "  {\"cell_type\": \"markdown\", \"id\": \"" id "\", \"metadata\": {}, \"source\": \"" text    \
    "\"}"

/* What a browser saves through the Contents API, answered 200 before the recorder renames. */
static void api_save(void)
{
    char *p = xasprintf("%s/nb.ipynb", race_root);
    const char *nb = NB_HEAD CODE("a") ",\n" MD("m", "saved by the user") "\n" NB_TAIL;
    assert_int_equal(write_file_atomic(p, nb, strlen(nb), 0644), 0);
    free(p);
}

#define NBDOC_BEFORE_RENAME(dirfd, name)                                                           \
    do {                                                                                           \
        if (race_saves > 0) {                                                                      \
            race_saves--;                                                                          \
            api_save();                                                                            \
        }                                                                                          \
    } while (0)

#include "hub/nbdoc.c"

static void test_acknowledged_save_survives_recorder(void **state)
{
    (void)state;
    const char *t = getenv("LABBOOK_TEST_TMP");
    if (!t || !t[0])
        t = "/tmp";
    mkdir_p(t, 0755);
    char *base = xasprintf("%s/nbrace-XXXXXX", t);
    assert_non_null(mkdtemp(base));
    race_root = base;
    char *p = xasprintf("%s/nb.ipynb", base);
    const char *nb = NB_HEAD CODE("a") "\n" NB_TAIL;
    assert_int_equal(write_file_atomic(p, nb, strlen(nb), 0644), 0);

    struct nbdoc *doc = NULL;
    assert_int_equal(nbdoc_open(base, "nb.ipynb", NULL, &doc), 0);
    assert_int_equal(nbdoc_request(doc, "m1", NULL, "a"), 0);
    const char *busy = "{\"execution_state\": \"busy\"}";
    assert_int_equal(nbdoc_message(doc, "status", "m1", busy, strlen(busy)), 0);
    const char *out = "{\"name\": \"stdout\", \"text\": \"recorded\\n\"}";
    assert_int_equal(nbdoc_message(doc, "stream", "m1", out, strlen(out)), 0);
    race_saves = 1;
    assert_int_equal(nbdoc_save(doc), 0);
    assert_int_equal(race_saves, 0);

    /* The user's save is in the file, and so is what the recorder recorded. */
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(read_file(p, 1 << 20, &data, &len), 0);
    assert_non_null(strstr(data, "saved by the user"));
    assert_non_null(strstr(data, "recorded"));
    free(data);
    nbdoc_close(doc);
    char *cmd = xasprintf("rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(p);
    free(base);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acknowledged_save_survives_recorder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
