/* The notebook writer (contents.c's nb_serialize), which writes one cell at a time to
 * keep a big notebook's save small, gives the same bytes as dumping the whole
 * transformed notebook at once (what nbformat writes): every shape of notebook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hub/contents.c"

static char *whole_dump(const json_t *content, size_t *len)
{
    json_t *nb = json_deep_copy(content);
    nb_transform(nb, true);
    char *s = json_dumps(nb, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(nb);
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    *len = n + 1;
    return s;
}

static void test_same_bytes(void **state)
{
    (void)state;
    static const char *const notebooks[] = {
        "{\"nbformat\": 4, \"nbformat_minor\": 5, \"metadata\": {}, \"cells\": []}",
        "{\"cells\": [], \"metadata\": {\"kernelspec\": {\"name\": \"python3\"}, \"signature\": "
        "\"x\", \"orig_nbformat\": 3}, \"nbformat\": 4, \"nbformat_minor\": 4, \"zz\": [1, 2.5, "
        "null, true, {}], \"aa\": \"\\u00e9/\\\"q\\\"\\n\"}",
        "{\"nbformat\": 4, \"nbformat_minor\": 5, \"metadata\": {\"a\": {\"b\": [[], {}]}}, "
        "\"cells\": [{\"cell_type\": \"markdown\", \"id\": \"m\", \"metadata\": {\"trusted\": "
        "true}, "
        "\"source\": \"# T\\n\\ntext \\u2713\\r\\nend\", \"attachments\": {\"a.png\": "
        "{\"image/png\": \"AAAA\", \"text/plain\": \"x\\ny\"}}}, {\"cell_type\": \"code\", \"id\": "
        "\"c\", \"metadata\": {}, \"execution_count\": 3, \"source\": [\"a\\n\", \"b\"], "
        "\"outputs\": [{\"output_type\": \"stream\", \"name\": \"stdout\", \"text\": "
        "\"1\\n2\\n\"}, {\"output_type\": \"display_data\", \"metadata\": {}, \"data\": "
        "{\"text/plain\": \"p\\nq\", \"image/png\": \"iVBOR\\n\", \"text/html\": [\"<b>\", "
        "\"</b>\"], \"application/json\": {\"k\": [1e300, -0.1]}}}, {\"output_type\": "
        "\"error\", \"ename\": \"E\", \"evalue\": \"v\", \"traceback\": [\"t1\", \"t2\"]}]}, "
        "{\"cell_type\": \"raw\", \"id\": \"r\", \"metadata\": {}, \"source\": \"\"}]}",
        "{\"cells\": [{}], \"metadata\": {}, \"nbformat\": 4, \"nbformat_minor\": 0}",
    };
    for (size_t i = 0; i < sizeof(notebooks) / sizeof(notebooks[0]); i++) {
        json_error_t e;
        json_t *nb = json_loads(notebooks[i], 0, &e);
        assert_non_null(nb);
        size_t la, lb;
        char *a = whole_dump(nb, &la), *b = nb_serialize(nb, &lb);
        if (la != lb || memcmp(a, b, la))
            fail_msg("notebook %zu:\n--- whole\n%s--- by cell\n%s", i, a, b);
        free(a);
        free(b);
        json_decref(nb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
