/* Small pieces of the notebook format (nbformat 4) shared by the contents API and the
 * notebook recorder. */
#ifndef LABBOOK_COMMON_NBFORMAT_H
#define LABBOOK_COMMON_NBFORMAT_H

#include <jansson.h>
#include <stddef.h>

/* Splits text into lines that keep their endings, as nbformat writes multiline strings
 * (Python's str.splitlines(True): \n, \r\n, \r, \v, \f, \x1c-\x1e, U+0085, U+2028,
 * U+2029). New reference: a JSON array of strings. */
json_t *nb_split_lines(const char *s, size_t len);

#endif
