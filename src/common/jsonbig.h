/* Parsing a JSON object with one very large string member (a contents upload's
 * "content": megabytes of base64) without running the whole string through
 * jansson's character-at-a-time lexer: that member is found with memchr and handed
 * back as a slice of the text; everything else is parsed by jansson. */
#ifndef LABBOOK_COMMON_JSONBIG_H
#define LABBOOK_COMMON_JSONBIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct json_big {
    const char *raw; /* the string's bytes between the quotes, still JSON-escaped; NULL if
                        the member is absent or not a string */
    size_t raw_len;
    bool escaped; /* raw holds at least one backslash escape */
};

/* Parses text as a JSON object. If the top-level member named key is a string (the
 * last of that name, as jansson keeps the last), it is set to "" in the returned
 * object and described in *big instead. Returns a new
 * reference, or NULL with *err filled (as json_loadb does) when text is not a
 * valid JSON object. */
json_t *json_load_big(const char *text, size_t len, const char *key, struct json_big *big,
                      json_error_t *err);

/* The same, told that text[plain_at, plain_at + plain_len) holds only base64 alphabet
 * characters (a b64scan decoded them): when the big string starts at plain_at, that
 * stretch is not scanned again. */
json_t *json_load_big_known(const char *text, size_t len, const char *key, size_t plain_at,
                            size_t plain_len, struct json_big *big, json_error_t *err);

/* The member's value as bytes: raw itself when not escaped (*owned NULL), or a newly
 * decoded copy (*owned, caller frees). Returns NULL when the escapes are invalid. */
const char *json_big_value(const struct json_big *big, size_t *len, char **owned);

#endif
