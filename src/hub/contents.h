/* The Jupyter Contents API over one user's drive folder: the models and the
 * file operations behind /api/contents, independent of HTTP so that the hub can run
 * them on its thread pool. Every path is resolved beneath the drive root and never
 * leaves it: "..", absolute paths, and symlinks pointing outside are refused.
 *
 * Paths are API paths: '/'-separated, relative to the drive root, already
 * percent-decoded, with or without leading and trailing '/' ("" is the root).
 * Results follow jupyter_server's models: {name, path, type, writable, created,
 * last_modified, mimetype, content, format, size, hash, hash_algorithm}. */
#ifndef LABBOOK_HUB_CONTENTS_H
#define LABBOOK_HUB_CONTENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* One request. method is "GET", "PUT", "POST", "PATCH" or "DELETE"; path is what
 * followed /api/contents. For checkpoints, path is the file's path and
 * checkpoint/checkpoint_id say which form was asked for:
 *   POST   /api/contents/{path}/checkpoints                 create
 *   GET    /api/contents/{path}/checkpoints                 list
 *   POST   /api/contents/{path}/checkpoints/{checkpoint_id}  restore
 *   DELETE /api/contents/{path}/checkpoints/{checkpoint_id}  delete
 * The query parameters (decoded, NULL when absent) are type, format, content, hash
 * (GET) and copy_from is in the body for POST. body is the parsed request body or
 * NULL. */
struct contents_req {
    const char *root; /* absolute path of the user's drive folder; exists */
    const char *method;
    const char *path;
    bool checkpoint;
    const char *checkpoint_id;
    const char *q_type, *q_format, *q_content, *q_hash;
    const json_t *body;
    /* When set, the body's "content" string as bytes (unescaped), which the caller
     * took out of the JSON text without a full parse; body then holds "" there. */
    const char *content_raw;
    size_t content_raw_len;
    /* When *content_decoded is set: that string already decoded from base64 (used when
     * format is "base64"), in a buffer the handler takes (setting it NULL) and frees. */
    char **content_decoded;
    size_t content_decoded_len;
    int64_t max_file_size; /* largest file GET will return whole, bytes */
    int64_t max_notebook;  /* largest notebook opened as one (0: no limit), bytes */
    /* Upload chunks other than the last are answered before their bytes reach the
     * file: a background thread appends them in order, overlapping the client's next
     * chunk. The last chunk waits for them, then writes, syncs and renames. */
    bool write_behind;
    /* DELETE moves to the user's trash (docs/drive.md, "Trash") rather than removing;
     * its 204 then carries *location = "/api/drive/trash/ID". */
    bool to_trash;
};

/* Lets the writer thread append the upload chunks queued so far: called once their
 * answers are on their way. */
void contents_start_writes(void);

/* Waits until every upload chunk queued so far is written (shutdown, tests). */
void contents_flush(void);

/* Runs the request. Returns the HTTP status; *out is set to the response body
 * (caller owns it; NULL for 204), on error {"message", "reason"} as jupyter_server
 * writes them. *location (caller frees, may be NULL) is set for 201 answers to the
 * new model's URL path ("/api/contents/..." percent-encoded). Thread-safe. */
int contents_handle(const struct contents_req *req, json_t **out, char **location);

#endif
