/* b64scan: a JSON body's base64 member decoded as the body arrives in pieces gives
 * the same bytes as decoding it whole, and the scan stops, decoding nothing wrong,
 * on bodies it does not understand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64scan.h"
#include "common/base64.h"

/* Feeds body in pieces of the given sizes (cycled), as a socket would hand it over. */
static uint8_t *scan_in_pieces(const char *body, size_t len, const size_t *pieces, size_t npieces,
                               size_t *start, size_t *chars, size_t *bytes)
{
    struct b64scan s;
    b64scan_init(&s, "content", len);
    size_t have = 0;
    for (size_t i = 0; have < len; i++) {
        size_t step = pieces[i % npieces];
        have = have + step > len ? len : have + step;
        b64scan_feed(&s, body, have);
    }
    uint8_t *out = b64scan_take(&s, start, chars, bytes);
    b64scan_free(&s);
    return out;
}

/* Checks that the scan's bytes plus a decoding of the rest of the string give the
 * whole string's decoding. */
static void check_agrees(const char *body, const char *content, size_t clen, const uint8_t *want,
                         size_t wlen)
{
    static const size_t splits[][3] = {
        {1, 1, 1}, {3, 5, 7}, {4096, 4096, 4096}, {65536, 1, 100}, {1 << 30, 0, 0}};
    size_t len = strlen(body);
    for (size_t k = 0; k < sizeof(splits) / sizeof(splits[0]); k++) {
        size_t n = splits[k][1] ? 3 : 1;
        size_t start, chars, bytes;
        uint8_t *out = scan_in_pieces(body, len, splits[k], n, &start, &chars, &bytes);
        assert_non_null(out);
        assert_ptr_equal(body + start, content);
        assert_true(chars <= clen);
        assert_int_equal(chars % 4, 0);
        assert_int_equal(bytes, chars / 4 * 3);
        size_t tail;
        assert_int_equal(base64_decode(content + chars, clen - chars, out + bytes, &tail), 0);
        assert_int_equal(bytes + tail, wlen);
        assert_memory_equal(out, want, wlen);
        free(out);
    }
}

static void test_decodes_member_across_pieces(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    size_t sizes[] = {0, 1, 2, 3, 24, 100, 1000, 70001};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *data = malloc(n + 1);
        randombytes_buf(data, n);
        char *b64 = malloc(base64_encoded_len(n) + 1);
        base64_encode(data, n, b64);
        /* JupyterLab's order, and members on both sides with strings, numbers,
         * literals, escapes and white space */
        size_t cap = strlen(b64) + 256;
        char *body = malloc(cap);
        snprintf(body, cap,
                 " {\"type\" : \"file\", \"format\":\"base64\", \"name\":\"a \\\"q\\\" \\\\\","
                 " \"chunk\" :-1 ,\"x\":true,\"y\":null,\"z\":1.5e3,\n\"content\":\"%s\","
                 " \"path\": \"d/f.bin\"}",
                 b64);
        const char *content = strstr(body, "\"content\":\"") + strlen("\"content\":\"");
        check_agrees(body, content, strlen(b64), data, n);
        free(data);
        free(b64);
        free(body);
    }
}

static void test_stops_at_white_space_and_the_rest_decodes(void **state)
{
    (void)state;
    /* Line breaks in the base64 (MIME style): the scan stops at the first, the rest
     * is decoded whole. */
    const char *body = "{\"content\":\"Zm9vYmFy\\nZm9vYmFy\"}";
    struct b64scan s;
    b64scan_init(&s, "content", strlen(body));
    b64scan_feed(&s, body, strlen(body));
    size_t start, chars, bytes;
    uint8_t *out = b64scan_take(&s, &start, &chars, &bytes);
    assert_non_null(out);
    assert_int_equal(start, strlen("{\"content\":\""));
    assert_int_equal(chars, 8); /* "Zm9vYmFy", then a backslash */
    assert_memory_equal(out, "foobar", 6);
    free(out);
    b64scan_free(&s);
}

static void test_leaves_what_it_does_not_follow(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"meta\": {\"content\": \"QUJD\"}, \"content\": \"QUJD\"}", /* nested value first */
        "{\"con\\u0074ent\": \"QUJD\"}",                              /* escaped name */
        "[\"content\", \"QUJD\"]",                                    /* not an object */
        "{\"content\": 5}",                                           /* not a string */
        "{\"contents\": \"QUJD\"}",                                   /* another name */
        "{\"a\": \"QUJD\" \"content\": \"QUJD\"}",                    /* no comma */
        "{}",
        "",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t start, chars, bytes, one = 1;
        uint8_t *out =
            scan_in_pieces(bodies[i], strlen(bodies[i]), &one, 1, &start, &chars, &bytes);
        assert_null(out);
    }
}

static void test_body_longer_than_announced_stops(void **state)
{
    (void)state;
    const char *body = "{\"content\": \"QUJDREVG\"}";
    struct b64scan s;
    b64scan_init(&s, "content", 10);
    b64scan_feed(&s, body, strlen(body)); /* more than the 10 bytes announced */
    size_t start, chars, bytes;
    assert_null(b64scan_take(&s, &start, &chars, &bytes));
    b64scan_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_member_across_pieces),
        cmocka_unit_test(test_stops_at_white_space_and_the_rest_decodes),
        cmocka_unit_test(test_leaves_what_it_does_not_follow),
        cmocka_unit_test(test_body_longer_than_announced_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
