/* Decoding a JSON body's base64 member while the body arrives. A contents upload is a
 * JSON object whose "content" is a megabyte of base64; the hub buffers the body as
 * it comes in pieces, and this scanner, fed the whole body so far after each piece,
 * finds the member among the top-level ones and decodes its whole groups as they
 * land. When the body is complete, the request's handler finds the bytes already
 * decoded (b64scan_take) and decodes only the tail, instead of scanning and decoding
 * the whole string while the client waits.
 *
 * The scanner is a shortcut, never an authority: it understands only flat objects
 * (a nested value, an escaped key or anything unexpected makes it stop), and its
 * result names the offset of the string it decoded, which the handler checks against
 * where its own parser (json_load_big) found the member. */
#ifndef LABBOOK_COMMON_B64SCAN_H
#define LABBOOK_COMMON_B64SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct b64scan {
    const char *key;
    size_t klen;
    size_t max; /* the body's announced length: bounds the output */
    size_t pos; /* the next byte to look at */
    int state;
    bool is_key;  /* the member being read is named key */
    size_t mark;  /* offset of the key being read */
    size_t start; /* offset of the member string's first character */
    size_t done;  /* characters of it decoded (whole groups) */
    uint8_t *out; /* done / 4 * 3 bytes, room for the rest of the body */
};

/* Starts a scan for the top-level string member named key (kept, not copied) of a
 * body of max bytes. */
void b64scan_init(struct b64scan *s, const char *key, size_t max);

/* Looks at the body so far (body[0..len), len growing between calls, up to max). */
void b64scan_feed(struct b64scan *s, const char *body, size_t len);

/* The decoded bytes, handed over: returns the buffer (caller frees; room for
 * base64_decoded_max of the rest of the body, plus one byte) with *start, the offset
 * of the string's first character, *chars, how many of its characters were decoded,
 * and *bytes, how many bytes they gave. NULL when the scan found no such string. */
uint8_t *b64scan_take(struct b64scan *s, size_t *start, size_t *chars, size_t *bytes);

/* Frees what the scan holds (safe after b64scan_take). */
void b64scan_free(struct b64scan *s);

#endif
