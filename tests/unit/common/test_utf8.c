/* utf8: the validator agrees with jansson on every sequence (overlong forms,
 * surrogates and code points past U+10FFFF are invalid), and the lossy conversion
 * gives U+FFFD for each invalid byte and leaves valid text as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

static void test_valid_and_invalid(void **state)
{
    (void)state;
    static const char *good[] = {"",
                                 "plain",
                                 "h\xc3\xa9llo",
                                 "\xe2\x9c\x93",
                                 "\xf0\x9f\x98\x80",
                                 "\xed\x9f\xbf",
                                 "\xee\x80\x80",
                                 "\xf4\x8f\xbf\xbf"};
    static const char *bad[] = {"\xff",
                                "a\xfe",
                                "\x80",
                                "\xc0\xaf",
                                "\xc1\xbf",
                                "\xe0\x80\xaf",
                                "\xed\xa0\x80",
                                "\xed\xbf\xbf",
                                "\xf0\x8f\xbf\xbf",
                                "\xf4\x90\x80\x80",
                                "\xf5\x80\x80\x80",
                                "\xc3",
                                "\xe2\x9c",
                                "\xf0\x9f\x98",
                                "\xe2\x28\xa1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(utf8_valid(good[i], strlen(good[i])));
        json_t *j = json_string(good[i]);
        assert_non_null(j); /* jansson agrees */
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(utf8_valid(bad[i], strlen(bad[i])));
        assert_null(json_string(bad[i])); /* jansson agrees */
    }
    assert_true(utf8_valid("a\0b", 3));
    assert_true(utf8_valid_str(NULL));
    assert_false(utf8_valid_str("x\xff"));
}

static void test_lossy(void **state)
{
    (void)state;
    size_t n;
    char *s = utf8_lossy("a\xff\xfe"
                         "b",
                         4, &n);
    assert_string_equal(s, "a\xef\xbf\xbd\xef\xbf\xbd"
                           "b");
    assert_int_equal(n, 8);
    free(s);
    s = utf8_lossy("h\xc3\xa9\xe2\x9c", 5, &n); /* a cut sequence: each byte */
    assert_string_equal(s, "h\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    json_t *j = json_text("bad-\xed\xa0\x80.txt");
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "bad-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.txt");
    char *dump = json_dumps(j, JSON_ENCODE_ANY);
    json_t *back = json_loads(dump, JSON_DECODE_ANY, NULL);
    assert_true(json_equal(j, back)); /* what goes out parses again */
    free(dump);
    json_decref(back);
    json_decref(j);
    j = json_text(NULL);
    assert_string_equal(json_string_value(j), "");
    json_decref(j);
    j = json_textn("ok\0z", 4);
    assert_int_equal(json_string_length(j), 4);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_invalid),
        cmocka_unit_test(test_lossy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
