/* Base64 (RFC 4648, standard alphabet, padded) at memory speed. libsodium's codec
 * is constant-time by design and runs at about 50 MB/s; uploads and downloads of
 * public file contents need no constant time, and this runs at over 1 GB/s (see
 * docs/benchmarks.md). */
#ifndef LABBOOK_COMMON_BASE64_H
#define LABBOOK_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode n characters (an upper bound). */
static inline size_t base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

/* Decodes n characters into out (base64_decoded_max(n) bytes). White space (space,
 * tab, \r, \n) is skipped; any other character outside the alphabet, or misplaced padding, is
 * an error. Returns 0 and *outlen, or -EINVAL. */
int base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);

/* Decodes the leading whole groups of four alphabet characters of in[0..n) into out
 * (3 bytes a group), stopping at a group that holds anything else (white space,
 * padding, the end of the text) or is incomplete. Returns the characters consumed, a
 * multiple of 4. Decoding a text's first k consumed characters this way, then the
 * rest with base64_decode, gives what base64_decode gives for the whole text. */
size_t base64_decode_groups(const char *in, size_t n, uint8_t *out);

/* Encoded length of n bytes (without a terminating NUL). */
static inline size_t base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Encodes n bytes into out (base64_encoded_len(n) + 1 bytes, NUL-terminated). */
void base64_encode(const uint8_t *in, size_t n, char *out);

#endif
