/* libFuzzer target for the upload path's parsers of untrusted bytes: json_load_big
 * (must accept exactly what jansson accepts, as an object), base64_decode, and
 * b64scan fed the body in pieces (what it decoded, plus the rest, must be what
 * decoding the whole string gives, and its hint must not change json_load_big's
 * answer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64scan.h"
#include "common/base64.h"
#include "common/jsonbig.h"

static void check_scan(const char *text, size_t size)
{
    struct b64scan s;
    b64scan_init(&s, "content", size);
    /* pieces of 1, 2, 4, ... bytes, as a socket might hand them over */
    for (size_t have = 0, step = 1; have < size; step = step < 4096 ? step * 2 : 1) {
        have = have + step > size ? size : have + step;
        b64scan_feed(&s, text, have);
    }
    size_t at, chars, bytes;
    uint8_t *pre = b64scan_take(&s, &at, &chars, &bytes);
    b64scan_free(&s);
    if (!pre)
        return;
    json_error_t e;
    struct json_big plain, known;
    json_t *a = json_load_big(text, size, "content", &plain, &e);
    json_t *b = json_load_big_known(text, size, "content", at, chars, &known, &e);
    if (!a != !b || plain.raw != known.raw || plain.raw_len != known.raw_len ||
        plain.escaped != known.escaped)
        abort(); /* the hint changed the parse */
    if (b && known.raw == text + at && !known.escaped) {
        if (chars > known.raw_len)
            abort();
        uint8_t *whole = malloc(base64_decoded_max(known.raw_len) + 1);
        size_t wn, tail;
        int rw = base64_decode(known.raw, known.raw_len, whole, &wn);
        int rt = base64_decode(known.raw + chars, known.raw_len - chars, pre + bytes, &tail);
        if (rw != rt || (rw == 0 && (wn != bytes + tail || memcmp(whole, pre, wn))))
            abort(); /* scan plus tail differs from decoding the whole */
        free(whole);
    }
    json_decref(a);
    json_decref(b);
    free(pre);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t e;
    struct json_big big;
    json_t *fast = json_load_big((const char *)data, size, "content", &big, &e);
    json_t *slow = json_loadb((const char *)data, size, 0, &e);
    if (!fast != !(slow && json_is_object(slow)))
        abort(); /* the two parsers disagree on validity */
    if (fast && big.raw) {
        size_t n;
        char *owned;
        const char *v = json_big_value(&big, &n, &owned);
        json_t *c = json_object_get(slow, "content");
        if (!v || !json_is_string(c) || json_string_length(c) != n ||
            memcmp(json_string_value(c), v, n))
            abort(); /* the sliced string differs from jansson's */
        free(owned);
    }
    json_decref(fast);
    json_decref(slow);
    uint8_t *out = malloc(base64_decoded_max(size) + 1);
    size_t n;
    if (base64_decode((const char *)data, size, out, &n) == 0 && n > base64_decoded_max(size))
        abort();
    free(out);
    check_scan((const char *)data, size);
    return 0;
}
