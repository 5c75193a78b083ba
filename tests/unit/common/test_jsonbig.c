/* json_load_big: the big member comes back as a slice, the rest as jansson objects,
 * and malformed text is refused exactly as jansson would refuse it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonbig.h"

static json_t *load(const char *t, struct json_big *b)
{
    json_error_t e;
    return json_load_big(t, strlen(t), "content", b, &e);
}

static void test_big_member_is_sliced(void **state)
{
    (void)state;
    struct json_big b;
    json_t *o =
        load("{\"type\": \"file\", \"format\":\"base64\", \"content\": \"QUJD\", \"chunk\": 2,"
             " \"meta\": {\"a\": [1, \"}\"]}}",
             &b);
    assert_non_null(o);
    assert_non_null(b.raw);
    assert_int_equal(b.raw_len, 4);
    assert_memory_equal(b.raw, "QUJD", 4);
    assert_false(b.escaped);
    assert_string_equal(json_string_value(json_object_get(o, "content")), "");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "file");
    assert_int_equal(json_integer_value(json_object_get(o, "chunk")), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_object_get(o, "meta"), "a"), 1)),
        "}");
    json_decref(o);
    json_decref(load("{\"content\": \"h\xc3\xa9llo \xf0\x9f\x9a\x80\"}", &b));
    assert_non_null(b.raw); /* UTF-8 is fine */
}

static void test_escaped_text(void **state)
{
    (void)state;
    struct json_big b;
    json_t *o =
        load("{\"content\": \"line \\\"1\\\"\\nline 2 \\u00e9\\\\\", \"type\": \"file\"}", &b);
    assert_non_null(o);
    assert_true(b.escaped);
    size_t n;
    char *owned;
    const char *v = json_big_value(&b, &n, &owned);
    assert_non_null(v);
    assert_string_equal(v, "line \"1\"\nline 2 \xc3\xa9\\");
    free(owned);
    json_decref(o);
}

static void test_no_or_nonstring_member(void **state)
{
    (void)state;
    struct json_big b;
    json_t *o = load("{\"content\": {\"cells\": []}, \"type\": \"notebook\"}", &b);
    assert_non_null(o);
    assert_null(b.raw);
    assert_true(json_is_object(json_object_get(o, "content")));
    json_decref(o);
    o = load("{\"type\": \"directory\"}", &b);
    assert_non_null(o);
    assert_null(b.raw);
    json_decref(o);
    /* A nested "content" is not the top-level member. */
    o = load("{\"x\": {\"content\": \"no\"}}", &b);
    assert_non_null(o);
    assert_null(b.raw);
    json_decref(o);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "[]",
                         "\"content\"",
                         "{\"content\": \"abc}",
                         "{\"content\": \"a\" \"b\"}",
                         "{\"content\": \"a\",}",
                         "{\"content\": \"\\q\"}",
                         "{\"content\": \"a\"} x",
                         "{\"a\": tru, \"content\": \"x\"}",
                         "{\"content\": \"a\x13"
                         "b\"}",
                         "{\"content\": \"\xc3\x28\"}",
                         "{\"content\": \"\xed\xa0\x80\"}",
                         "{\"content\": \"\xe0\x80\xaf\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct json_big b;
        json_t *o = load(bad[i], &b);
        if (o)
            fail_msg("accepted: %s", bad[i]);
        assert_null(b.raw);
    }
}

/* Told that the start of the big string is plain base64 (a b64scan decoded it), the
 * parser gives the same slice, and still refuses what follows that stretch. */
static void test_known_plain_prefix(void **state)
{
    (void)state;
    const char *t = "{\"format\": \"base64\", \"content\": \"QUJDREVG\", \"chunk\": 1}";
    size_t at = (size_t)(strstr(t, "QUJD") - t);
    struct json_big b;
    json_error_t e;
    json_t *o = json_load_big_known(t, strlen(t), "content", at, 4, &b, &e);
    assert_non_null(o);
    assert_ptr_equal(b.raw, t + at);
    assert_int_equal(b.raw_len, 8);
    assert_false(b.escaped);
    assert_int_equal(json_integer_value(json_object_get(o, "chunk")), 1);
    json_decref(o);
    /* a control character and an escape after the known stretch */
    const char *bad = "{\"content\": \"QUJD\x01EVG\"}";
    at = (size_t)(strstr(bad, "QUJD") - bad);
    assert_null(json_load_big_known(bad, strlen(bad), "content", at, 4, &b, &e));
    const char *esc = "{\"content\": \"QUJD\\nREVG\"}";
    at = (size_t)(strstr(esc, "QUJD") - esc);
    o = json_load_big_known(esc, strlen(esc), "content", at, 4, &b, &e);
    assert_non_null(o);
    assert_true(b.escaped);
    json_decref(o);
    /* a repeated name: the last one counts, as jansson (and Python) keep the last */
    const char *twice = "{\"content\": \"QUJD\", \"content\": \"REVG\"}";
    o = load(twice, &b);
    assert_non_null(o);
    assert_non_null(b.raw);
    assert_memory_equal(b.raw, "REVG", 4);
    json_decref(o);
    o = load("{\"content\": \"QUJD\", \"content\": 5}", &b);
    assert_non_null(o);
    assert_null(b.raw);
    assert_int_equal(json_integer_value(json_object_get(o, "content")), 5);
    json_decref(o);
    /* a range past the end is ignored */
    o = json_load_big_known(t, strlen(t), "content", strlen(t), 100, &b, &e);
    assert_non_null(o);
    assert_int_equal(b.raw_len, 8);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_member_is_sliced),   cmocka_unit_test(test_escaped_text),
        cmocka_unit_test(test_no_or_nonstring_member), cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_known_plain_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
