/* Small pieces of the notebook format (nbformat 4) shared by the contents API and the
 * notebook recorder. */
#include "common/nbformat.h"

/* Splits text into lines that keep their endings, as Python's str.splitlines(True) does
 * when nbformat writes multiline strings. */
json_t *nb_split_lines(const char *s, size_t len)
{
    json_t *arr = json_array();
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t end = 0;
        if (c == '\r')
            end = (i + 1 < len && s[i + 1] == '\n') ? i + 2 : i + 1;
        else if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e))
            end = i + 1;
        else if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] == 0x85)
            end = i + 2;
        else if (c == 0xe2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9))
            end = i + 3;
        if (end) {
            json_array_append_new(arr, json_stringn(s + start, end - start));
            start = end;
            i = end - 1;
        }
    }
    if (start < len)
        json_array_append_new(arr, json_stringn(s + start, len - start));
    return arr;
}
