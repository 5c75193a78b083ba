/* A state machine over the top level of a flat JSON object: member names, then
 * values skipped (strings, numbers, true, false, null) until the named string, which
 * is decoded with base64_decode_groups as far as whole groups have arrived. */
#include "common/b64scan.h"

#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/util.h"

enum {
    S_OPEN,   /* before '{' */
    S_NAME,   /* before a member's name */
    S_KEY,    /* inside a member's name */
    S_COLON,  /* after the name */
    S_VALUE,  /* before the value */
    S_STRING, /* inside a string value that is not the one */
    S_ESCAPE, /* after a backslash in it */
    S_SCALAR, /* inside a number, true, false or null */
    S_AFTER,  /* after a value: ',' or '}' */
    S_MEMBER, /* inside the string: decoding */
    S_STOP,   /* nothing more to do (found and stopped, absent, or not understood) */
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void b64scan_init(struct b64scan *s, const char *key, size_t max)
{
    *s = (struct b64scan){.key = key, .klen = strlen(key), .max = max, .state = S_OPEN};
}

void b64scan_feed(struct b64scan *s, const char *body, size_t len)
{
    if (len > s->max)
        s->state = S_STOP;
    while (s->pos < len && s->state != S_STOP) {
        char c = body[s->pos];
        switch (s->state) {
        case S_OPEN:
        case S_NAME:
        case S_COLON:
        case S_VALUE:
        case S_AFTER:
            if (is_ws(c)) {
                s->pos++;
                continue;
            }
            break;
        default:
            break;
        }
        switch (s->state) {
        case S_OPEN:
            s->state = c == '{' ? S_NAME : S_STOP;
            s->pos++;
            break;
        case S_NAME:
            if (c == '"') {
                s->mark = ++s->pos;
                s->state = S_KEY;
            } else {
                s->state = S_STOP; /* '}' (no members, no such string) or not JSON */
            }
            break;
        case S_KEY: {
            const char *q = memchr(body + s->pos, '"', len - s->pos);
            size_t end = q ? (size_t)(q - body) : len;
            if (memchr(body + s->pos, '\\', end - s->pos)) {
                s->state = S_STOP; /* an escaped name: left to the real parser */
                break;
            }
            s->pos = end;
            if (!q)
                break;
            s->is_key = end - s->mark == s->klen && !memcmp(body + s->mark, s->key, s->klen);
            s->pos++;
            s->state = S_COLON;
            break;
        }
        case S_COLON:
            s->state = c == ':' ? S_VALUE : S_STOP;
            s->pos++;
            break;
        case S_VALUE:
            if (c == '"' && s->is_key) {
                s->start = ++s->pos;
                s->out = xmalloc(base64_decoded_max(s->max - s->start) + 1);
                s->state = S_MEMBER;
            } else if (c == '"') {
                s->pos++;
                s->state = S_STRING;
            } else if (c == '{' || c == '[') {
                s->state = S_STOP; /* nested values are not followed */
            } else {
                s->state = S_SCALAR;
            }
            break;
        case S_STRING:
            s->pos++;
            if (c == '\\')
                s->state = S_ESCAPE;
            else if (c == '"')
                s->state = S_AFTER;
            break;
        case S_ESCAPE:
            s->pos++;
            s->state = S_STRING;
            break;
        case S_SCALAR:
            if (c == ',' || c == '}' || is_ws(c))
                s->state = S_AFTER;
            else
                s->pos++;
            break;
        case S_AFTER:
            s->pos++;
            s->state = c == ',' ? S_NAME : S_STOP;
            break;
        case S_MEMBER: {
            size_t at = s->start + s->done, avail = len - at;
            size_t n = base64_decode_groups(body + at, avail, s->out + s->done / 4 * 3);
            s->done += n;
            s->pos = at + n;
            if (avail - n >= 4)
                s->state = S_STOP; /* a group with padding, white space or the end */
            else
                return; /* an incomplete group: wait for more */
            break;
        }
        }
    }
}

uint8_t *b64scan_take(struct b64scan *s, size_t *start, size_t *chars, size_t *bytes)
{
    uint8_t *out = s->out;
    if (!out)
        return NULL;
    s->out = NULL;
    *start = s->start;
    *chars = s->done;
    *bytes = s->done / 4 * 3;
    return out;
}

void b64scan_free(struct b64scan *s)
{
    free(s->out);
    s->out = NULL;
}
