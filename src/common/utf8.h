/* Bytes from clients, kernels and the disk are bytes until checked: this is the one
 * place that checks them as UTF-8, and the one rule for what invalid bytes get
 * (docs/contents.md, "Names that are not UTF-8"). A string a client sent (a path, a
 * file name, a header) that is not UTF-8 is refused by its caller with a 400 naming
 * the field; a string from the disk, a kernel or an archive goes into JSON with
 * U+FFFD in place of each byte that is not part of a well-formed sequence. */
#ifndef LABBOOK_COMMON_UTF8_H
#define LABBOOK_COMMON_UTF8_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is well-formed UTF-8 as RFC 3629 (and jansson) define it: no
 * overlong forms, no surrogates (U+D800..DFFF), nothing past U+10FFFF. NUL bytes
 * count as valid. */
bool utf8_valid(const char *s, size_t len);
/* The same for a NUL-terminated string; NULL is valid (nothing to check). */
bool utf8_valid_str(const char *s);
/* A copy of s[0..len) with each byte that is not part of a well-formed sequence
 * replaced by U+FFFD (EF BF BD); NUL-terminated, owned by the caller; its length in
 * *out_len when out_len is not NULL. */
char *utf8_lossy(const char *s, size_t len, size_t *out_len);
/* The one way a string from the disk, a kernel or an archive enters JSON: a JSON
 * string of s with invalid bytes as U+FFFD (utf8_lossy). Never NULL; s NULL gives "".
 * New reference. */
json_t *json_text(const char *s);
json_t *json_textn(const char *s, size_t len);

#endif
