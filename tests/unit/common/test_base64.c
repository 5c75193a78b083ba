/* base64: RFC 4648 vectors, round trips against libsodium's codec, and refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"

static void check_decode(const char *enc, const char *want)
{
    uint8_t out[128];
    size_t n = 0;
    assert_int_equal(base64_decode(enc, strlen(enc), out, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[32];
        base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
        assert_string_equal(out, enc[i]);
        check_decode(enc[i], plain[i]);
    }
    /* Unpadded tails and line breaks are accepted, as Python's decoder does. */
    check_decode("Zm9vYg", "foob");
    check_decode("Zm9v\nYmFy\r\n", "foobar");
    check_decode("Zm 9v\tYg==", "foob");
}

static void test_round_trip_matches_libsodium(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    for (size_t len = 0; len < 300; len += 7) {
        uint8_t *data = malloc(len + 1);
        randombytes_buf(data, len);
        size_t elen = base64_encoded_len(len);
        char *ours = malloc(elen + 1), *theirs = malloc(elen + 1);
        base64_encode(data, len, ours);
        sodium_bin2base64(theirs, elen + 1, data, len, sodium_base64_VARIANT_ORIGINAL);
        assert_string_equal(ours, theirs);
        uint8_t *back = malloc(base64_decoded_max(elen));
        size_t blen = 0;
        assert_int_equal(base64_decode(ours, elen, back, &blen), 0);
        assert_int_equal(blen, len);
        assert_memory_equal(back, data, len);
        free(data);
        free(ours);
        free(theirs);
        free(back);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    const char *bad[] = {"Zm9v!", "Z", "Zm9vY", "Zg==Zg==", "Z===", "Zm-9v", "=Zg="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[64];
        size_t n;
        assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out, &n), -EINVAL);
    }
}

/* A plain one-character-at-a-time decoder to hold the fast paths to: white space
 * skipped, anything else outside the alphabet refused, no padding (not tested here). */
static int reference_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int have = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        const char *f = c ? strchr(abc, c) : NULL;
        if (!f)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)(f - abc);
        if (++have == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            have = 0;
        }
    }
    if (have == 1)
        return -EINVAL;
    if (have == 2)
        out[o++] = (uint8_t)(acc >> 4);
    if (have == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *outlen = o;
    return 0;
}

/* Every byte value at every position of a text long enough for the 32-character
 * blocks: refused exactly when the reference refuses, the same bytes otherwise. */
static void test_every_byte_everywhere(void **state)
{
    (void)state;
    uint8_t data[150];
    randombytes_buf(data, sizeof data);
    char text[201];
    base64_encode(data, sizeof data, text);
    assert_int_equal(strlen(text), 200);
    uint8_t got[160], want[160];
    for (size_t i = 0; i < 200; i++) {
        for (int c = 0; c < 256; c++) {
            if (c == '=')
                continue;
            char t[200];
            memcpy(t, text, 200);
            t[i] = (char)c;
            size_t gn = 0, wn = 0;
            int g = base64_decode(t, 200, got, &gn), w = reference_decode(t, 200, want, &wn);
            assert_int_equal(g, w);
            if (!w) {
                assert_int_equal(gn, wn);
                assert_memory_equal(got, want, wn);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_round_trip_matches_libsodium),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_every_byte_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
