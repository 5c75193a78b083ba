/* Kernel messages as they travel over the WebSocket and the agent stream.
 *
 * The v1 format (subprotocol "v1.kernel.websocket.jupyter.org", and the STREAM_MSG
 * payload): u64le n, then n u64le offsets, then the channel name and the parts
 * (header, parent_header, metadata, content, buffers...). offsets[0] is where the
 * channel starts (8 * (n + 1)), offsets[i] (1 <= i < n) where part i-1 starts, and
 * offsets[n-1] is the total length, so there are n - 2 parts.
 *
 * The legacy format (no subprotocol, what jupyter_server speaks by default): a text
 * frame holding one JSON object {header, parent_header, metadata, content, buffers,
 * channel, msg_id, msg_type}; a message with buffers goes as a binary frame:
 * u32be count n, n u32be offsets (offsets[0] to the JSON, then one per buffer),
 * the JSON, then the buffers.
 */
#ifndef LABBOOK_WIRE_WSFRAME_H
#define LABBOOK_WIRE_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define KMSG_MAX_PARTS 68 /* header, parent, metadata, content and up to 64 buffers */

/* A kernel message split into its parts; the pointers point into memory owned by
 * whoever filled it in. Parts 0-3 are header, parent_header, metadata, content. */
struct kmsg {
    const char *channel;
    size_t channel_len;
    size_t nparts;
    const uint8_t *part[KMSG_MAX_PARTS];
    size_t part_len[KMSG_MAX_PARTS];
};

/* Splits a v1 frame into m, checking every offset; m then points into data. Returns 0
 * or -EINVAL (also for fewer than 4 parts, more than KMSG_MAX_PARTS, or an empty
 * channel). The parts' contents are not looked at. */
int wsv1_parse(const uint8_t *data, size_t len, struct kmsg *m);

/* Size of m's v1 serialization, and the serialization itself into out (which must
 * hold wsv1_size(m) bytes). */
size_t wsv1_size(const struct kmsg *m);
void wsv1_write(const struct kmsg *m, uint8_t *out);

/* Appends m in the legacy format to out; *binary says whether it must go as a
 * binary frame (it has buffers). Parts are copied, not re-serialized. Returns 0, or
 * -EINVAL where a part is not a JSON object (or the header lacks string msg_id and
 * msg_type, or there are fewer than 4 parts), -E2BIG where out's cap is reached,
 * -EMSGSIZE past 4 GiB. On failure out is left as it was. */
int legacy_encode(const struct kmsg *m, struct buf *out, bool *binary);

/* The same for a message without buffers, leaving out the content part's bytes:
 * they belong at offset *content_at of what is appended to out (a text frame), so a
 * large content can be sent from where it already is. */
int legacy_encode_around_content(const struct kmsg *m, struct buf *out, size_t *content_at);

/* Reads a client's legacy frame (text JSON, or binary with buffers) and appends its
 * v1 serialization to out. Returns 0, or -EINVAL with a reason in *err (static
 * string) for malformed input: not JSON, missing header or channel, bad offsets;
 * -E2BIG where out's cap is reached. On failure out is left as it was. */
int legacy_decode(const uint8_t *data, size_t len, bool binary, struct buf *out, const char **err);

#endif
