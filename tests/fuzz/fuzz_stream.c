/* libFuzzer target: the hub <-> agent stream decoder (wire/stream.c) and what each side
 * then reads out of a frame: a STREAM_MSG's v1 kernel message, a STREAM_FILE(_REPLY)'s
 * JSON and data, a HELLO or STATE's JSON. The first input byte picks how the bytes are
 * cut into pieces, as a socket would hand them over: the frames that come out must be
 * the same as when the bytes arrive whole, and each is within max_frame. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wire/stream.h"
#include "wire/wsframe.h"

#define MAX_FRAME 4096

struct seen {
    struct buf log; /* type, length and bytes of each frame, in order */
};

static int on_frame(void *ctx, enum stream_type type, const uint8_t *payload, size_t len)
{
    struct seen *s = ctx;
    if (len > MAX_FRAME)
        abort();
    uint8_t t = (uint8_t)type;
    buf_append(&s->log, &t, 1);
    buf_append(&s->log, &len, sizeof(len));
    buf_append(&s->log, payload, len);
    switch (type) {
    case STREAM_MSG: {
        struct kmsg m;
        if (wsv1_parse(payload, len, &m) == 0) {
            if (m.nparts < 4 || m.nparts > KMSG_MAX_PARTS || !m.channel_len)
                abort();
            for (size_t i = 0; i < m.nparts; i++)
                if (m.part[i] < payload || m.part[i] + m.part_len[i] > payload + len)
                    abort();
            /* Written again, it parses to the same parts. */
            size_t n = wsv1_size(&m);
            uint8_t *out = malloc(n);
            wsv1_write(&m, out);
            struct kmsg m2;
            if (wsv1_parse(out, n, &m2) < 0 || m2.nparts != m.nparts)
                abort();
            for (size_t i = 0; i < m.nparts; i++)
                if (m2.part_len[i] != m.part_len[i] || memcmp(m2.part[i], m.part[i], m.part_len[i]))
                    abort();
            free(out);
        }
        break;
    }
    case STREAM_FILE:
    case STREAM_FILE_REPLY: {
        const char *js;
        const uint8_t *data;
        size_t jlen, dlen;
        if (stream_file_split(payload, len, &js, &jlen, &data, &dlen) == 0) {
            if (4 + jlen + dlen != len)
                abort();
            json_decref(json_loadb(js, jlen, 0, NULL));
        }
        break;
    }
    case STREAM_HELLO:
    case STREAM_STATE:
    case STREAM_CLAIM:
        json_decref(json_loadb((const char *)payload, len, 0, NULL));
        break;
    default:
        break;
    }
    return 0;
}

static int feed(const uint8_t *data, size_t size, size_t piece, struct seen *s)
{
    struct stream_decoder d = {.max_frame = MAX_FRAME};
    int r = 0;
    for (size_t off = 0; off < size && r == 0; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        r = stream_decoder_feed(&d, data + off, n, on_frame, s);
    }
    stream_decoder_free(&d);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    struct seen whole = {0}, cut = {0};
    int r1 = feed(data, size, size ? size : 1, &whole);
    int r2 = feed(data, size, piece, &cut);
    if ((r1 == -EMSGSIZE) != (r2 == -EMSGSIZE))
        abort();
    if (r1 == 0 && (whole.log.len != cut.log.len ||
                    (whole.log.len && memcmp(whole.log.data, cut.log.data, whole.log.len))))
        abort();
    buf_free(&whole.log);
    buf_free(&cut.log);
    return 0;
}
