/* libFuzzer target for the kernel message framing that reads client bytes: wsv1_parse
 * and legacy_decode (text and binary), checking that what they accept round-trips.
 * Built by tests/fuzz/build.sh, not by CMake. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_v1(const uint8_t *data, size_t size)
{
    struct kmsg m;
    if (wsv1_parse(data, size, &m) < 0)
        return;
    /* an accepted frame is written back byte for byte */
    if (wsv1_size(&m) != size)
        abort();
    uint8_t *out = xmalloc(size);
    wsv1_write(&m, out);
    if (memcmp(out, data, size) != 0)
        abort();
    free(out);
    /* and the legacy encoder copes with whatever parts it holds */
    struct buf legacy = {.cap_max = 64 << 20};
    bool binary;
    if (legacy_encode(&m, &legacy, &binary) == 0) {
        struct buf back = {.cap_max = 64 << 20};
        const char *err;
        /* what we send to a legacy client, it could send back */
        if (legacy_decode((const uint8_t *)legacy.data, legacy.len, binary, &back, &err) == 0) {
            struct kmsg m2;
            if (wsv1_parse((const uint8_t *)back.data, back.len, &m2) < 0 || m2.nparts != m.nparts)
                abort();
        }
        buf_free(&back);
    }
    buf_free(&legacy);
}

static void check_legacy(const uint8_t *data, size_t size, bool binary)
{
    struct buf out = {.cap_max = 64 << 20};
    const char *err = NULL;
    int r = legacy_decode(data, size, binary, &out, &err);
    if (r == 0) {
        struct kmsg m;
        if (wsv1_parse((const uint8_t *)out.data, out.len, &m) < 0 || m.nparts < 4)
            abort();
        /* decoded messages are re-encodable */
        struct buf legacy = {.cap_max = 64 << 20};
        bool b;
        int e = legacy_encode(&m, &legacy, &b);
        /* a header without msg_id/msg_type is accepted from clients but not encodable */
        (void)e;
        buf_free(&legacy);
    } else if (!err) {
        abort();
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte picks the decoder, so one corpus covers all three */
    uint8_t sel = data[0] % 3;
    data++, size--;
    if (sel == 0)
        check_v1(data, size);
    else
        check_legacy(data, size, sel == 2);
    return 0;
}
