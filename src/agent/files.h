/* The agent's file service: STREAM_FILE requests on the runtime's /content folder as
 * the host sees it (docs/agent-protocol.md). The agent is root and the kernel owns
 * that tree, so every path is opened beneath it without following any symlink. */
#ifndef LABBOOK_AGENT_FILES_H
#define LABBOOK_AGENT_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most a read or write moves in one request, and the most entries a listing has. */
#define FILES_MAX_BYTES ((size_t)64 << 20)
#define FILES_MAX_ENTRIES 10000

struct files_root {
    const char *content_dir; /* the runtime's /content on the host; NULL: not sandboxed */
    bool set_owner;          /* chown what is created to owner:owner */
    uid_t owner;
    size_t max_bytes; /* at most FILES_MAX_BYTES; less where the stream's frames are smaller */
};

/* Serves one STREAM_FILE payload and returns the STREAM_FILE_REPLY payload (caller
 * frees; *out_len its size). Never fails: errors are answered with their status. */
uint8_t *files_serve(const struct files_root *root, const uint8_t *p, size_t len, size_t *out_len);

/* The host folder behind /content for a sandbox's state_dir (under disk/ when the
 * runtime's own disk is mounted). Caller frees. */
char *files_content_dir(const char *state_dir);

#endif
