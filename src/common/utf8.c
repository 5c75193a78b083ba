/* UTF-8 validation and the lossy conversion for strings that must enter JSON
 * whatever their bytes (utf8.h). */
#include "common/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Length of the well-formed sequence that starts at s (1 to 4), or 0 when the byte
 * at s starts none within the n bytes left. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* the bounds of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing past U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            /* Mostly ASCII (kernel output): eight bytes at a time while it lasts. */
            uint64_t w;
            while (i + 8 <= len && (memcpy(&w, p + i, 8), !(w & 0x8080808080808080ull)))
                i += 8;
            while (i < len && p[i] < 0x80)
                i++;
            continue;
        }
        size_t k = seq_len(p + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

bool utf8_valid_str(const char *s)
{
    return !s || utf8_valid(s, strlen(s));
}

char *utf8_lossy(const char *s, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        size_t k = seq_len(p + i, len - i);
        bad += !k;
        i += k ? k : 1;
    }
    char *out = xmalloc(len + 2 * bad + 1); /* each bad byte grows by two */
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = seq_len(p + i, len - i);
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

json_t *json_textn(const char *s, size_t len)
{
    if (!s)
        return json_string("");
    if (utf8_valid(s, len))
        return json_stringn_nocheck(s, len);
    size_t n;
    char *fixed = utf8_lossy(s, len, &n);
    json_t *j = json_stringn_nocheck(fixed, n);
    free(fixed);
    return j;
}

json_t *json_text(const char *s)
{
    return json_textn(s, s ? strlen(s) : 0);
}
