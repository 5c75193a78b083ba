/* The hub <-> agent stream: length-prefixed frames over one Unix stream socket.
 *
 * Frame: u32 little-endian L (bytes after these four), u8 type, L-1 payload bytes.
 * Types (see docs/agent-protocol.md):
 *   STREAM_HELLO     agent -> hub   JSON {"id": runtime id, "secret": ..., "pid": N}
 *   STREAM_MSG       both ways      one kernel message in the v1 kernel WebSocket
 *                                   format (wsframe.h): channel, header, parent_header,
 *                                   metadata, content, buffers...; unsigned (the agent
 *                                   signs and verifies, the key never leaves it)
 *   STREAM_STATE     agent -> hub   JSON {"state": "starting"|"running"|"restarting"|"dead",
 *                                   "reason": "...", "pid": N}
 *   STREAM_INTERRUPT hub -> agent   empty
 *   STREAM_RESTART   hub -> agent   empty
 *   STREAM_SHUTDOWN  hub -> agent   empty: shut the kernel down, then exit
 *   STREAM_CLAIM     hub -> agent   JSON {"user": name}: a pre-started runtime becomes
 *                                   a user's; the agent binds DATA/drive/<name> (found
 *                                   by itself, no link followed) and answers with
 *                                   STATE {"state": "claimed"[, "reason": why it failed]}
 *   STREAM_FILE      hub -> agent   a file request on the runtime's /content: u32 LE n,
 *                                   n bytes of JSON {"req": N, "op": ..., "path": ...},
 *                                   then the bytes of a "write"
 *   STREAM_FILE_REPLY agent -> hub  the same layout: JSON {"req": N, "status": HTTP-like,
 *                                   "message"?, "type"?, "entries"?}, then a file's bytes
 *   STREAM_RESET     hub -> agent   empty: factory reset; as STREAM_RESTART, but once the
 *                                   old kernel has exited its overlay and /content are
 *                                   moved aside (and removed) before the new one starts
 *   STREAM_RUN       agent -> hub   after a reconnect: JSON {"msg_id", "cell_id"?, "code"?,
 *                                   "whole": bool}, an execute request still kept
 *   STREAM_HISTORY   agent -> hub   a message of that run the previous hub had: recorded
 *                                   into the notebook, not sent to clients (as STREAM_MSG)
 *   STREAM_GAP       agent -> hub   JSON {"msg_id"?, "dropped": N}: messages lost while no
 *                                   hub was connected (the agent's budget was spent)
 *   STREAM_RECORDED  hub -> agent   JSON {"msg_id"}: the notebook has that run; forget it
 */
#ifndef LABBOOK_WIRE_STREAM_H
#define LABBOOK_WIRE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

enum stream_type {
    STREAM_HELLO = 1,
    STREAM_MSG = 2,
    STREAM_STATE = 3,
    STREAM_INTERRUPT = 4,
    STREAM_RESTART = 5,
    STREAM_SHUTDOWN = 6,
    STREAM_CLAIM = 7,
    STREAM_FILE = 8,
    STREAM_FILE_REPLY = 9,
    STREAM_RESET = 10,
    STREAM_RUN = 11,
    STREAM_HISTORY = 12,
    STREAM_GAP = 13,
    STREAM_RECORDED = 14,
    /* google.colab.userdata (docs/agent-protocol.md, "Secrets"); numbered apart from the
     * rest so that other additions need not renumber them. */
    STREAM_SECRET = 20,
    STREAM_SECRET_REPLY = 21,
};

#define STREAM_HEADER_LEN 5

/* The agent's socket for google.colab.userdata, in the runtime's run folder (a sandbox's
 * SANDBOX_RUN_DIR) or, unsandboxed, its runtime folder: the hub tells the kernel where. */
#define USERDATA_SOCKET_NAME "userdata.sock"

/* Fills hdr with the 5-byte frame header for a payload of n bytes. */
void stream_header(uint8_t hdr[STREAM_HEADER_LEN], enum stream_type type, size_t n);

/* Incremental decoder: feed bytes as they arrive; each complete frame is handed to
 * on_frame (payload valid only during the call). Frames over max_frame bytes make
 * stream_decoder_feed return -EMSGSIZE; the stream must then be closed. */
struct stream_decoder {
    struct buf in;
    size_t max_frame;
};

typedef int (*stream_frame_cb)(void *ctx, enum stream_type type, const uint8_t *payload,
                               size_t len);

int stream_decoder_feed(struct stream_decoder *d, const void *data, size_t n, stream_frame_cb cb,
                        void *ctx);
void stream_decoder_free(struct stream_decoder *d);

/* STREAM_FILE and STREAM_FILE_REPLY payloads: u32 LE n, n bytes of JSON, then data.
 * stream_file_pack returns the payload (caller frees, *out_len its size);
 * stream_file_split points into p, and returns -EBADMSG when n overruns it. */
uint8_t *stream_file_pack(const char *json, size_t jlen, const void *data, size_t dlen,
                          size_t *out_len);
int stream_file_split(const uint8_t *p, size_t len, const char **json, size_t *jlen,
                      const uint8_t **data, size_t *dlen);

#endif
