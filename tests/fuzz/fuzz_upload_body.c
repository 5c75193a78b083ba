/* libFuzzer target for the upload path's parsers of untrusted bytes: json_load_big
 * (must accept exactly what jansson accepts, as an object) and base64_decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/jsonbig.h"

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
    return 0;
}
