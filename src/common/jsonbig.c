/* A top-level scan of a JSON object: member keys and the one big string are found
 * with memchr, other values are skipped with jansson (JSON_DISABLE_EOF_CHECK). */
#include "common/jsonbig.h"

#include <stdint.h>
#include <string.h>

#include "common/util.h"

static size_t skip_ws(const char *t, size_t n, size_t i)
{
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* t[i] is an opening quote: returns the index of the closing one, or n. The string's
 * first skip characters are known to be neither quotes nor backslashes. */
static size_t string_end(const char *t, size_t n, size_t i, size_t skip, bool *escaped)
{
    size_t j = i + 1 + skip;
    for (;;) {
        const char *q = memchr(t + j, '"', n - j);
        if (!q)
            return n;
        size_t k = (size_t)(q - t);
        size_t bs = 0;
        while (k - bs > i + 1 && t[k - bs - 1] == '\\')
            bs++;
        if (bs % 2 == 0) {
            if (memchr(t + i + 1 + skip, '\\', k - i - 1 - skip))
                *escaped = true;
            return k;
        }
        j = k + 1;
    }
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* What jansson requires of a string's raw characters: no control characters, and
 * valid UTF-8. Plain ASCII is checked eight bytes at a time. */
static bool chars_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & highs) | ((w - ones * 0x20) & ~w & highs))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        if (p[i] < 0x20)
            return false;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_len(p + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

static void set_error(json_error_t *err, const char *msg, size_t pos)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
    snprintf(err->text, sizeof(err->text), "%s", msg);
    err->position = (int)pos;
}

json_t *json_load_big(const char *text, size_t len, const char *key, struct json_big *big,
                      json_error_t *err)
{
    return json_load_big_known(text, len, key, 0, 0, big, err);
}

json_t *json_load_big_known(const char *text, size_t len, const char *key, size_t plain_at,
                            size_t plain_len, struct json_big *big, json_error_t *err)
{
    if (plain_at > len || plain_len > len - plain_at)
        plain_len = 0;
    memset(big, 0, sizeof(*big));
    size_t klen = strlen(key), i = skip_ws(text, len, 0);
    size_t raw_start = 0, raw_end = 0;
    if (i >= len || text[i] != '{')
        goto plain;
    i = skip_ws(text, len, i + 1);
    if (i < len && text[i] == '}')
        goto plain;
    while (i < len) {
        if (text[i] != '"')
            goto plain;
        bool kesc = false;
        size_t kend = string_end(text, len, i, 0, &kesc);
        if (kend >= len)
            goto plain;
        bool match = !kesc && kend - i - 1 == klen && !memcmp(text + i + 1, key, klen);
        i = skip_ws(text, len, kend + 1);
        if (i >= len || text[i] != ':')
            goto plain;
        i = skip_ws(text, len, i + 1);
        if (i >= len)
            goto plain;
        if (text[i] == '"') {
            bool esc = false;
            size_t known = i + 1 == plain_at ? plain_len : 0;
            size_t end = string_end(text, len, i, known, &esc);
            if (end >= len)
                goto plain;
            if (match) { /* a repeated name: the last one counts, as in jansson */
                raw_start = i + 1;
                raw_end = end;
                big->raw = text + raw_start;
                big->raw_len = raw_end - raw_start;
                big->escaped = esc;
            }
            i = end + 1;
        } else {
            if (match)
                big->raw = NULL; /* the last one is not a string */
            json_error_t e;
            json_t *v = json_loadb(text + i, len - i, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &e);
            if (!v)
                goto plain;
            json_decref(v);
            i += (size_t)e.position;
        }
        i = skip_ws(text, len, i);
        if (i < len && text[i] == ',') {
            i = skip_ws(text, len, i + 1);
            continue;
        }
        if (i < len && text[i] == '}')
            break;
        goto plain;
    }
    if (!big->raw)
        goto plain;
    /* Parse everything but the big string, which becomes "". */
    struct buf small = {0};
    buf_append(&small, text, raw_start);
    buf_append(&small, text + raw_end, len - raw_end);
    json_t *obj = json_loadb(small.data, small.len, 0, err);
    buf_free(&small);
    if (!json_is_object(obj)) {
        json_decref(obj);
        memset(big, 0, sizeof(*big));
        set_error(err, "not a JSON object", 0);
        return NULL;
    }
    /* The string must be what jansson would accept: check it now, so callers see one
     * answer. Escaped strings are decoded (and so checked) by jansson itself. */
    size_t checked = raw_start == plain_at && plain_len <= big->raw_len ? plain_len : 0;
    if (!big->escaped && !chars_valid(big->raw + checked, big->raw_len - checked)) {
        json_decref(obj);
        memset(big, 0, sizeof(*big));
        set_error(err, "control character or invalid UTF-8 in a string", raw_start);
        return NULL;
    }
    if (big->escaped) {
        size_t n;
        char *owned = NULL;
        if (!json_big_value(big, &n, &owned)) {
            json_decref(obj);
            memset(big, 0, sizeof(*big));
            set_error(err, "invalid escape in a string", raw_start);
            return NULL;
        }
        free(owned);
    }
    return obj;
plain:
    memset(big, 0, sizeof(*big));
    {
        json_t *obj = json_loadb(text, len, 0, err);
        if (obj && !json_is_object(obj)) {
            json_decref(obj);
            set_error(err, "not a JSON object", 0);
            return NULL;
        }
        return obj;
    }
}

const char *json_big_value(const struct json_big *big, size_t *len, char **owned)
{
    *owned = NULL;
    if (!big->raw)
        return NULL;
    if (!big->escaped) {
        *len = big->raw_len;
        return big->raw;
    }
    /* Rare (text with escapes): let jansson decode the quoted string. */
    struct buf q = {0};
    buf_append(&q, "\"", 1);
    buf_append(&q, big->raw, big->raw_len);
    buf_append(&q, "\"", 1);
    json_t *s = json_loadb(q.data, q.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    buf_free(&q);
    if (!json_is_string(s)) {
        json_decref(s);
        return NULL;
    }
    *len = json_string_length(s);
    *owned = xmalloc(*len + 1);
    memcpy(*owned, json_string_value(s), *len + 1);
    json_decref(s);
    return *owned;
}
