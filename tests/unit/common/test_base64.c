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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_round_trip_matches_libsodium),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
