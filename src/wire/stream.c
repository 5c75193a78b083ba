/* Framing of the hub <-> agent stream: a 5-byte header and an incremental decoder. */
#include "wire/stream.h"

#include <errno.h>
#include <string.h>

#define STREAM_KEEP_BUFFER (1024 * 1024)

void stream_header(uint8_t hdr[STREAM_HEADER_LEN], enum stream_type type, size_t n)
{
    uint32_t l = (uint32_t)(n + 1);
    hdr[0] = (uint8_t)l;
    hdr[1] = (uint8_t)(l >> 8);
    hdr[2] = (uint8_t)(l >> 16);
    hdr[3] = (uint8_t)(l >> 24);
    hdr[4] = (uint8_t)type;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int stream_decoder_feed(struct stream_decoder *d, const void *data, size_t n, stream_frame_cb cb,
                        void *ctx)
{
    const uint8_t *p = data;
    /* Fast path: whole frames straight from the input, nothing buffered. */
    while (d->in.len == 0 && n >= STREAM_HEADER_LEN) {
        uint32_t l = get_u32(p);
        if (l == 0 || l - 1 > d->max_frame)
            return -EMSGSIZE;
        if (n < 4 + (size_t)l)
            break;
        int r = cb(ctx, (enum stream_type)p[4], p + STREAM_HEADER_LEN, l - 1);
        if (r < 0)
            return r;
        p += 4 + (size_t)l;
        n -= 4 + (size_t)l;
    }
    if (!n)
        return 0;
    if (buf_append(&d->in, p, n) < 0)
        return -EMSGSIZE;
    size_t off = 0;
    while (d->in.len - off >= STREAM_HEADER_LEN) {
        const uint8_t *f = (const uint8_t *)d->in.data + off;
        uint32_t l = get_u32(f);
        if (l == 0 || l - 1 > d->max_frame)
            return -EMSGSIZE;
        if (d->in.len - off < 4 + (size_t)l)
            break;
        int r = cb(ctx, (enum stream_type)f[4], f + STREAM_HEADER_LEN, l - 1);
        if (r < 0)
            return r;
        off += 4 + (size_t)l;
    }
    if (off) {
        memmove(d->in.data, d->in.data + off, d->in.len - off);
        d->in.len -= off;
    }
    /* do not hold on to the memory of one big frame for the life of the stream */
    if (d->in.len == 0 && d->in.alloc > STREAM_KEEP_BUFFER)
        buf_free(&d->in);
    return 0;
}

void stream_decoder_free(struct stream_decoder *d)
{
    buf_free(&d->in);
}

uint8_t *stream_file_pack(const char *json, size_t jlen, const void *data, size_t dlen,
                          size_t *out_len)
{
    uint8_t *p = xmalloc(4 + jlen + dlen);
    p[0] = (uint8_t)jlen;
    p[1] = (uint8_t)(jlen >> 8);
    p[2] = (uint8_t)(jlen >> 16);
    p[3] = (uint8_t)(jlen >> 24);
    memcpy(p + 4, json, jlen);
    if (dlen)
        memcpy(p + 4 + jlen, data, dlen);
    *out_len = 4 + jlen + dlen;
    return p;
}

int stream_file_split(const uint8_t *p, size_t len, const char **json, size_t *jlen,
                      const uint8_t **data, size_t *dlen)
{
    if (len < 4)
        return -EBADMSG;
    uint32_t n = get_u32(p);
    if (n > len - 4)
        return -EBADMSG;
    *json = (const char *)p + 4;
    *jlen = n;
    *data = p + 4 + n;
    *dlen = len - 4 - n;
    return 0;
}
