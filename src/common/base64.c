/* Table-driven base64, four characters to three bytes per step. */
#include "common/base64.h"

#include <errno.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0-63 for alphabet characters, 64 for '=', 65 for skipped white space, 255 otherwise. */
static uint8_t rev[256];
/* The fast path's table: the 12 bits of every pair of alphabet characters, indexed by
 * the pair's two bytes, or 0xffff for a pair holding anything else (128 KiB). */
static uint16_t pair[65536];

static void init_tables(void)
{
    for (int i = 0; i < 256; i++)
        rev[i] = 255;
    for (int i = 0; i < 65536; i++)
        pair[i] = 0xffff;
    for (uint32_t i = 0; i < 64; i++)
        rev[(unsigned char)alphabet[i]] = (uint8_t)i;
    for (uint32_t a = 0; a < 64; a++)
        for (uint32_t b = 0; b < 64; b++) {
            unsigned char ca = (unsigned char)alphabet[a], cb = (unsigned char)alphabet[b];
            pair[ca | cb << 8] = (uint16_t)(a << 6 | b);
        }
    rev['='] = 64;
    rev['\n'] = 65;
    rev['\r'] = 65;
    rev[' '] = 65;
    rev['\t'] = 65;
}

/* Whole groups of four alphabet characters from p to at most end; returns where it
 * stopped (at the first group holding anything else). */
static const unsigned char *decode_groups(const unsigned char *p, const unsigned char *end,
                                          uint8_t **o)
{
    uint8_t *out = *o;
    while (end - p >= 4) {
        uint32_t hi = pair[p[0] | p[1] << 8], lo = pair[p[2] | p[3] << 8];
        if ((hi | lo) & 0xf000)
            break;
        uint32_t v = hi << 12 | lo;
        out[0] = (uint8_t)(v >> 16);
        out[1] = (uint8_t)(v >> 8);
        out[2] = (uint8_t)v;
        out += 3;
        p += 4;
    }
    *o = out;
    return p;
}

int base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    if (rev['A'] != 0 || rev['='] != 64) /* benign race: every thread writes the same tables */
        init_tables();
    const unsigned char *p = (const unsigned char *)in, *end = p + n;
    uint8_t *o = out;
    p = decode_groups(p, end, &o);
    /* The rest, one character at a time: white space, padding, the tail. */
    uint32_t acc = 0;
    int have = 0, pad = 0;
    for (; p < end; p++) {
        uint8_t v = rev[*p];
        if (v == 65)
            continue;
        if (v == 255)
            return -EINVAL;
        if (v == 64) {
            pad++;
            if (have + pad > 4 || have < 2)
                return -EINVAL;
            continue;
        }
        if (pad)
            return -EINVAL; /* data after padding */
        acc = acc << 6 | v;
        if (++have == 4) {
            *o++ = (uint8_t)(acc >> 16);
            *o++ = (uint8_t)(acc >> 8);
            *o++ = (uint8_t)acc;
            acc = 0;
            have = 0;
            p = decode_groups(p + 1, end, &o) - 1; /* back to whole groups */
        }
    }
    if (have == 1)
        return -EINVAL;
    if (have == 2)
        *o++ = (uint8_t)(acc >> 4);
    else if (have == 3) {
        *o++ = (uint8_t)(acc >> 10);
        *o++ = (uint8_t)(acc >> 2);
    }
    if (pad && have + pad != 4)
        return -EINVAL;
    *outlen = (size_t)(o - out);
    return 0;
}

void base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    char *o = out;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        o[0] = alphabet[v >> 18];
        o[1] = alphabet[(v >> 12) & 63];
        o[2] = alphabet[(v >> 6) & 63];
        o[3] = alphabet[v & 63];
        o += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        o[0] = alphabet[v >> 18];
        o[1] = alphabet[(v >> 12) & 63];
        o[2] = o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        o[0] = alphabet[v >> 18];
        o[1] = alphabet[(v >> 12) & 63];
        o[2] = alphabet[(v >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    *o = '\0';
}
