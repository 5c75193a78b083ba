/* Base64: 32 characters to 24 bytes per step with AVX2 where the CPU has it, else
 * table-driven, four characters to three bytes per step. */
#include "common/base64.h"

#include <errno.h>
#include <stdbool.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

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

#ifdef HAVE_AVX2_PATH
/* Blocks of 32 alphabet characters. Each character's high nibble picks a class and its
 * low nibble the classes it is not valid in, so one AND finds any character outside
 * the alphabet; the high nibble also picks the offset to its 6-bit value ('/' shares
 * '+''s nibble and is moved by hand). Two multiply-adds pack four 6-bit values into
 * 24 bits per 32-bit lane; shuffles put the three bytes of each lane in order. It
 * stores 32 bytes per 24 decoded, so it stops 44 characters before the end: what is
 * left to decode then still fills the 8 bytes written past. */
__attribute__((target("avx2"))) static const unsigned char *
decode_blocks_avx2(const unsigned char *p, const unsigned char *end, uint8_t **o)
{
    const __m256i lo_invalid =
        _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a,
                         0x1b, 0x1b, 0x1b, 0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                         0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
    const __m256i hi_class =
        _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i hi_offset =
        _mm256_setr_epi8(0, 0, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 4, -65,
                         -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i nibble = _mm256_set1_epi8(0x0f), slash = _mm256_set1_epi8('/');
    const __m256i pack1 = _mm256_set1_epi32(0x01400140), pack2 = _mm256_set1_epi32(0x00011000);
    const __m256i order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                           2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
    uint8_t *out = *o;
    while (end - p >= 44) {
        __m256i in = _mm256_loadu_si256((const __m256i *)p);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(in, 4), nibble);
        __m256i lo = _mm256_and_si256(in, nibble);
        __m256i bad = _mm256_and_si256(_mm256_shuffle_epi8(lo_invalid, lo),
                                       _mm256_shuffle_epi8(hi_class, hi));
        if (!_mm256_testz_si256(bad, bad))
            break;
        __m256i off = _mm256_shuffle_epi8(hi_offset, hi);
        off = _mm256_add_epi8(off,
                              _mm256_and_si256(_mm256_cmpeq_epi8(in, slash), _mm256_set1_epi8(-3)));
        __m256i v = _mm256_add_epi8(in, off);
        v = _mm256_maddubs_epi16(v, pack1);
        v = _mm256_madd_epi16(v, pack2);
        v = _mm256_shuffle_epi8(v, order);
        v = _mm256_permutevar8x32_epi32(v, lanes);
        _mm256_storeu_si256((__m256i *)out, v);
        out += 24;
        p += 32;
    }
    *o = out;
    return p;
}

static bool have_avx2(void)
{
    static int known; /* 0 unknown, 1 no, 2 yes; a benign race */
    if (!known)
        known = __builtin_cpu_supports("avx2") ? 2 : 1;
    return known == 2;
}
#endif

/* Whole groups of four alphabet characters from p to at most end; returns where it
 * stopped (at the first group holding anything else). */
static const unsigned char *decode_groups(const unsigned char *p, const unsigned char *end,
                                          uint8_t **o)
{
#ifdef HAVE_AVX2_PATH
    if (have_avx2())
        p = decode_blocks_avx2(p, end, o);
#endif
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

static void ensure_tables(void)
{
    if (rev['A'] != 0 || rev['='] != 64) /* benign race: every thread writes the same tables */
        init_tables();
}

size_t base64_decode_groups(const char *in, size_t n, uint8_t *out)
{
    ensure_tables();
    const unsigned char *p = (const unsigned char *)in;
    return (size_t)(decode_groups(p, p + n, &out) - p);
}

int base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    ensure_tables();
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
