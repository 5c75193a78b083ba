/* Kernel message framing for the WebSocket (v1 binary and legacy JSON formats) and the
 * agent stream's STREAM_MSG payload; see wsframe.h and docs/wire.md. */
#include "wire/wsframe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define JSON_MAX_DEPTH 1024

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int wsv1_parse(const uint8_t *data, size_t len, struct kmsg *m)
{
    if (len < 8)
        return -EINVAL;
    uint64_t n = get_u64le(data);
    /* channel + at least header, parent_header, metadata, content, + the end offset */
    if (n < 6 || n > KMSG_MAX_PARTS + 2)
        return -EINVAL;
    size_t head = 8 * ((size_t)n + 1);
    if (len < head)
        return -EINVAL;
    uint64_t off[KMSG_MAX_PARTS + 2];
    for (size_t i = 0; i < n; i++) {
        off[i] = get_u64le(data + 8 * (i + 1));
        if (off[i] > len || (i > 0 && off[i] < off[i - 1]))
            return -EINVAL;
    }
    if (off[0] != head || off[n - 1] != len || off[1] == off[0])
        return -EINVAL;
    m->channel = (const char *)data + off[0];
    m->channel_len = (size_t)(off[1] - off[0]);
    m->nparts = (size_t)n - 2;
    for (size_t i = 0; i < m->nparts; i++) {
        m->part[i] = data + off[i + 1];
        m->part_len[i] = (size_t)(off[i + 2] - off[i + 1]);
    }
    return 0;
}

size_t wsv1_size(const struct kmsg *m)
{
    size_t n = m->nparts + 2;
    size_t size = 8 * (n + 1) + m->channel_len;
    for (size_t i = 0; i < m->nparts; i++)
        size += m->part_len[i];
    return size;
}

void wsv1_write(const struct kmsg *m, uint8_t *out)
{
    size_t n = m->nparts + 2;
    size_t off = 8 * (n + 1);
    put_u64le(out, n);
    put_u64le(out + 8, off);
    memcpy(out + off, m->channel, m->channel_len);
    off += m->channel_len;
    for (size_t i = 0; i < m->nparts; i++) {
        put_u64le(out + 8 * (i + 2), off);
        if (m->part_len[i])
            memcpy(out + off, m->part[i], m->part_len[i]);
        off += m->part_len[i];
    }
    put_u64le(out + 8 * n, off);
}

/* JSON syntax check that allocates nothing, so that a 100 MB content part can be
 * checked without being parsed into a tree: RFC 8259 grammar, UTF-8 checked, depth
 * capped. The whole input must be one object (with optional whitespace around). */
enum { JV_VALUE, JV_KEY, JV_AFTER };

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Skips the string whose opening quote is at p[*i]; returns false if malformed. */
static bool skip_string(const uint8_t *p, size_t n, size_t *i)
{
    size_t j = *i + 1;
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (j < n) {
        /* Eight plain ASCII bytes at a time: no quote, backslash, control or high byte. */
        while (j + 8 <= n) {
            uint64_t w, q, b;
            memcpy(&w, p + j, 8);
            q = w ^ (ones * '"');
            b = w ^ (ones * '\\');
            if ((w & highs) | ((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs) |
                ((b - ones) & ~b & highs))
                break;
            j += 8;
        }
        if (j >= n)
            break;
        uint8_t c = p[j];
        if (c == '"') {
            *i = j + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j + 1 >= n)
                return false;
            c = p[j + 1];
            if (c == 'u') {
                if (n - j < 6)
                    return false;
                for (size_t k = 2; k < 6; k++)
                    if (!is_hex(p[j + k]))
                        return false;
                j += 6;
            } else if (strchr("\"\\/bfnrt", c) && c) {
                j += 2;
            } else
                return false;
        } else if (c >= 0x80) {
            size_t l = utf8_seq(p + j, n - j);
            if (!l)
                return false;
            j += l;
        } else
            j++;
    }
    return false;
}

static bool skip_digits(const uint8_t *p, size_t n, size_t *i)
{
    size_t j = *i;
    while (j < n && p[j] >= '0' && p[j] <= '9')
        j++;
    if (j == *i)
        return false;
    *i = j;
    return true;
}

static bool skip_number(const uint8_t *p, size_t n, size_t *i)
{
    size_t j = *i;
    if (p[j] == '-')
        j++;
    if (j < n && p[j] == '0')
        j++;
    else if (!skip_digits(p, n, &j))
        return false;
    if (j < n && p[j] == '.') {
        j++;
        if (!skip_digits(p, n, &j))
            return false;
    }
    if (j < n && (p[j] == 'e' || p[j] == 'E')) {
        j++;
        if (j < n && (p[j] == '+' || p[j] == '-'))
            j++;
        if (!skip_digits(p, n, &j))
            return false;
    }
    *i = j;
    return true;
}

static bool skip_literal(const uint8_t *p, size_t n, size_t *i, const char *lit)
{
    size_t l = strlen(lit);
    if (n - *i < l || memcmp(p + *i, lit, l) != 0)
        return false;
    *i += l;
    return true;
}

static bool json_object_valid(const uint8_t *p, size_t n)
{
    uint8_t stack[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    size_t depth = 0, i = 0;
    int state = JV_VALUE;

    while (i < n && is_ws(p[i]))
        i++;
    if (i >= n || p[i] != '{')
        return false;
    for (;;) {
        while (i < n && is_ws(p[i]))
            i++;
        if (state == JV_AFTER && depth == 0)
            return i == n;
        if (i >= n)
            return false;
        uint8_t c = p[i];
        if (state == JV_KEY) {
            if (c != '"' || !skip_string(p, n, &i))
                return false;
            while (i < n && is_ws(p[i]))
                i++;
            if (i >= n || p[i] != ':')
                return false;
            i++;
            state = JV_VALUE;
        } else if (state == JV_AFTER) {
            uint8_t close = stack[depth - 1] == '{' ? '}' : ']';
            if (c == ',') {
                i++;
                state = stack[depth - 1] == '{' ? JV_KEY : JV_VALUE;
            } else if (c == close) {
                i++;
                depth--;
            } else
                return false;
        } else if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH)
                return false;
            stack[depth++] = c;
            i++;
            while (i < n && is_ws(p[i]))
                i++;
            if (i < n && p[i] == (c == '{' ? '}' : ']')) {
                i++;
                depth--;
                state = JV_AFTER;
            } else
                state = c == '{' ? JV_KEY : JV_VALUE;
        } else {
            bool ok;
            if (c == '"')
                ok = skip_string(p, n, &i);
            else if (c == '-' || (c >= '0' && c <= '9'))
                ok = skip_number(p, n, &i);
            else if (c == 't')
                ok = skip_literal(p, n, &i, "true");
            else if (c == 'f')
                ok = skip_literal(p, n, &i, "false");
            else if (c == 'n')
                ok = skip_literal(p, n, &i, "null");
            else
                ok = false;
            if (!ok)
                return false;
            state = JV_AFTER;
        }
    }
}

static void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Appends value as compact JSON; returns 0, -EINVAL or -E2BIG. */
static int append_json(struct buf *out, const json_t *value)
{
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return -EINVAL;
    int r = buf_append(out, s, strlen(s));
    free(s);
    return r;
}

static int append_str(struct buf *out, const char *s)
{
    return buf_append(out, s, strlen(s));
}

static int encode(const struct kmsg *m, struct buf *out, bool *binary, size_t *content_at)
{
    static const char *const names[4] = {"header", "parent_header", "metadata", "content"};
    size_t start = out->len;
    size_t nbufs = m->nparts >= 4 ? m->nparts - 4 : 0;
    size_t head = nbufs ? 4 * (nbufs + 2) : 0;
    json_t *header = NULL, *channel = NULL;
    int r = -EINVAL;

    *binary = nbufs > 0;
    if (m->nparts < 4 || m->nparts > KMSG_MAX_PARTS)
        goto out;
    header = json_loadb((const char *)m->part[0], m->part_len[0], JSON_ALLOW_NUL, NULL);
    json_t *msg_id = json_object_get(header, "msg_id");
    json_t *msg_type = json_object_get(header, "msg_type");
    if (!json_is_object(header) || !json_is_string(msg_id) || !json_is_string(msg_type))
        goto out;
    for (size_t i = 1; i < 4; i++)
        if (!json_object_valid(m->part[i], m->part_len[i]))
            goto out;
    channel = json_stringn(m->channel, m->channel_len);
    if (!channel)
        goto out;

    if (head) {
        /* count and offsets, filled in once the lengths are known */
        if (!buf_reserve(out, head)) {
            r = -E2BIG;
            goto out;
        }
        memset(out->data + out->len, 0, head);
        out->len += head;
    }
    for (size_t i = 0; i < 4; i++) {
        if ((r = buf_printf(out, "%s\"%s\":", i ? "," : "{", names[i])) < 0)
            goto out;
        if (i == 3 && content_at && !nbufs) {
            *content_at = out->len - start; /* the caller supplies these bytes */
            continue;
        }
        if ((r = buf_append(out, m->part[i], m->part_len[i])) < 0)
            goto out;
    }
    if ((r = append_str(out, nbufs ? "" : ",\"buffers\":[]")) < 0 ||
        (r = append_str(out, ",\"channel\":")) < 0 || (r = append_json(out, channel)) < 0 ||
        (r = append_str(out, ",\"msg_id\":")) < 0 || (r = append_json(out, msg_id)) < 0 ||
        (r = append_str(out, ",\"msg_type\":")) < 0 || (r = append_json(out, msg_type)) < 0 ||
        (r = append_str(out, "}")) < 0)
        goto out;
    if (nbufs) {
        size_t off = out->len - start;
        uint8_t *h = (uint8_t *)out->data + start;
        put_u32be(h, (uint32_t)(nbufs + 1));
        put_u32be(h + 4, (uint32_t)head);
        for (size_t i = 0; i < nbufs; i++) {
            if (off > UINT32_MAX) {
                r = -EMSGSIZE;
                goto out;
            }
            put_u32be(h + 8 + 4 * i, (uint32_t)off);
            if ((r = buf_append(out, m->part[4 + i], m->part_len[4 + i])) < 0)
                goto out;
            h = (uint8_t *)out->data + start; /* the append may have moved the data */
            off += m->part_len[4 + i];
        }
    }
    r = 0;
out:
    if (r < 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    json_decref(header);
    json_decref(channel);
    return r;
}

int legacy_encode(const struct kmsg *m, struct buf *out, bool *binary)
{
    return encode(m, out, binary, NULL);
}

int legacy_encode_around_content(const struct kmsg *m, struct buf *out, size_t *content_at)
{
    bool binary;
    if (m->nparts != 4)
        return -EINVAL;
    return encode(m, out, &binary, content_at);
}

/* Returns the member key of msg as an object: {} where it is absent, NULL where it is
 * present but not an object. The result is a new reference. */
static json_t *object_member(json_t *msg, const char *key)
{
    json_t *v = json_object_get(msg, key);
    if (!v)
        return json_object();
    return json_is_object(v) ? json_incref(v) : NULL;
}

int legacy_decode(const uint8_t *data, size_t len, bool binary, struct buf *out, const char **err)
{
    static const char *const names[4] = {"header", "parent_header", "metadata", "content"};
    size_t start = out->len;
    const uint8_t *json = data, *bufp[KMSG_MAX_PARTS];
    size_t json_len = len, buf_len[KMSG_MAX_PARTS], nbufs = 0;
    json_t *msg = NULL, *part[4] = {NULL};
    char *dumped[4] = {NULL};
    int r = -EINVAL;

    *err = NULL;
    if (binary) {
        uint32_t off[KMSG_MAX_PARTS - 3];
        if (len < 8) {
            *err = "binary frame too short";
            goto out;
        }
        uint32_t count = get_u32be(data);
        if (count < 1 || count > KMSG_MAX_PARTS - 3 || len < 4 * ((size_t)count + 1)) {
            *err = "bad buffer count";
            goto out;
        }
        for (uint32_t i = 0; i < count; i++) {
            off[i] = get_u32be(data + 4 * (i + 1));
            if (off[i] > len || (i > 0 && off[i] < off[i - 1])) {
                *err = "bad buffer offsets";
                goto out;
            }
        }
        if (off[0] != 4 * ((size_t)count + 1)) {
            *err = "bad buffer offsets";
            goto out;
        }
        json = data + off[0];
        json_len = (count > 1 ? off[1] : len) - off[0];
        nbufs = count - 1;
        for (size_t i = 0; i < nbufs; i++) {
            bufp[i] = data + off[i + 1];
            buf_len[i] = (i + 2 < count ? off[i + 2] : len) - off[i + 1];
        }
    }

    msg = json_loadb((const char *)json, json_len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(msg)) {
        *err = msg ? "message is not a JSON object" : "message is not JSON";
        goto out;
    }
    json_t *channel = json_object_get(msg, "channel");
    if (!channel) {
        *err = "missing channel";
        goto out;
    }
    if (!json_is_string(channel) || json_string_length(channel) == 0) {
        *err = "channel is not a string";
        goto out;
    }
    if (!json_object_get(msg, "header")) {
        *err = "missing header";
        goto out;
    }
    for (size_t i = 0; i < 4; i++) {
        part[i] = object_member(msg, names[i]);
        if (!part[i]) {
            *err = "header, parent_header, metadata or content is not an object";
            goto out;
        }
        dumped[i] = json_dumps(part[i], JSON_COMPACT);
        if (!dumped[i]) {
            *err = "message is not JSON";
            goto out;
        }
    }

    struct kmsg m = {
        .channel = json_string_value(channel),
        .channel_len = json_string_length(channel),
        .nparts = 4 + nbufs,
    };
    for (size_t i = 0; i < 4; i++) {
        m.part[i] = (const uint8_t *)dumped[i];
        m.part_len[i] = strlen(dumped[i]);
    }
    for (size_t i = 0; i < nbufs; i++) {
        m.part[4 + i] = bufp[i];
        m.part_len[4 + i] = buf_len[i];
    }
    size_t size = wsv1_size(&m);
    uint8_t *dst = buf_reserve(out, size);
    if (!dst) {
        *err = "message too large";
        r = -E2BIG;
        goto out;
    }
    wsv1_write(&m, dst);
    out->len += size;
    out->data[out->len] = '\0';
    r = 0;
out:
    if (r < 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    json_decref(msg);
    for (size_t i = 0; i < 4; i++) {
        json_decref(part[i]);
        free(dumped[i]);
    }
    return r;
}
