/* Server-side notebook documents: the hub records the outputs of a notebook's running cells
 * into its .ipynb as the kernel produces them (as JupyterLab's output area would), and saves
 * the file without clobbering what a browser or editor saved meanwhile. Pure library: no
 * event loop, no HTTP; see docs/notebooks.md.
 *
 * Threads: nbdoc_request, nbdoc_message, nbdoc_dirty and nbdoc_save may be called from
 * different threads (the loop and the thread pool); a document has its own locks, and
 * nbdoc_save holds the state lock only while it copies the outputs to write. nbdoc_close
 * must not overlap any other call on the same document. */
#ifndef LABBOOK_HUB_NBDOC_H
#define LABBOOK_HUB_NBDOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct nbdoc;

struct nbdoc_opts {
    size_t max_cell_output; /* bytes of a cell's outputs kept in the file; 0: 8 MiB (max 1 GiB) */
    size_t max_file;        /* largest notebook file read; 0: 256 MiB */
    unsigned max_runs;      /* executions tracked at once; 0: 1024 */
};

/* Opens the document of the notebook at path (an API path: '/'-separated, relative to the
 * drive folder drive_root, which must exist). Nothing is read yet. Refuses "." and ".."
 * components (-EINVAL), names not ending in ".ipynb" (-EINVAL), and paths that do not reach
 * a regular file beneath drive_root without symlinks (-ENOENT, -ELOOP, -EXDEV, -EISDIR).
 * opts may be NULL. On success *out is the caller's; free it with nbdoc_close. */
int nbdoc_open(const char *drive_root, const char *path, const struct nbdoc_opts *opts,
               struct nbdoc **out);

/* The notebook was renamed (a session PATCH): later saves go to the new path. Same checks
 * as nbdoc_open except that the file need not exist yet. */
int nbdoc_set_path(struct nbdoc *doc, const char *path);

/* Remembers that the execute_request msg_id runs code for the cell cell_id (JupyterLab's
 * metadata.cellId; NULL when the client sent none, then the first code cell whose source
 * equals code is meant). Nothing changes until the kernel starts the request. Strings are
 * copied. Returns 0, or -ENOSPC when max_runs requests are in flight unsaved. */
int nbdoc_request(struct nbdoc *doc, const char *msg_id, const char *code, const char *cell_id);

/* The same from an execute_request's JSON parts (its content and its metadata, either may
 * be NULL): takes code, metadata.cellId, and skips silent requests (returns 0). Returns
 * -EINVAL when content is not a JSON object with a string "code". */
int nbdoc_request_msg(struct nbdoc *doc, const char *msg_id, const char *content,
                      size_t content_len, const char *metadata, size_t metadata_len);

/* A hub that restarted learns from the runtime's agent of a request that was running
 * before, without the outputs it produced first (the agent could not keep them all). The
 * run counts as started: its cell keeps the outputs the file has, and what follows is
 * added after them. Same returns as nbdoc_request. */
int nbdoc_resume(struct nbdoc *doc, const char *msg_id, const char *code, const char *cell_id);

/* Marks the run msg_id as one that was running before this hub started (the runtime's
 * agent told of it): a client that was connected to the hub before may have missed some
 * of its output. nbdoc_resume marks its runs so too. */
void nbdoc_mark_adopted(struct nbdoc *doc, const char *msg_id);

/* Adds note (one line, without its newline) as a stderr output of the run msg_id, where
 * outputs were lost: the notebook marks the gap. Does nothing for an unknown run. */
void nbdoc_gap(struct nbdoc *doc, const char *msg_id, const char *note);

/* Whether the request msg_id is one this document records. */
bool nbdoc_tracks(struct nbdoc *doc, const char *msg_id);

/* Calls cb with the msg_id of each finished run whose outputs are all in the file now,
 * once per run; returns how many. The hub tells the agent it may forget them. */
size_t nbdoc_take_recorded(struct nbdoc *doc, void (*cb)(void *ctx, const char *msg_id), void *ctx);

/* Applies one message from the kernel (iopub, or shell's execute_reply) whose
 * parent_header.msg_id is parent_msg_id; content is its content part as JSON text. Messages
 * for requests that nbdoc_request did not see are ignored without being parsed. Returns 1
 * when the message ended a tracked execution (its status idle: a good moment to save), 0
 * otherwise, -EINVAL when a tracked message's content is not valid JSON. */
int nbdoc_message(struct nbdoc *doc, const char *msg_type, const char *parent_msg_id,
                  const char *content, size_t content_len);

/* What runs now, for a client that connects mid-run (it cannot tell from the file, and
 * the kernel's messages do not name the cell): the last run the kernel started if it has
 * not ended, then the requests after it that have not started, in order. Each is
 * {"msg_id", "cell_id" (null when found by code), "code", "state": "running" or "queued",
 * "execution_count", "outputs": what was recorded so far, in nbformat's on-disk form}, and
 * for the running one "started" (when it started, ms since the epoch), and "adopted": true
 * for a run marked by nbdoc_mark_adopted.
 * A run started earlier and never ended (its kernel restarted) is left out once a later
 * one has started. Returns a new JSON array, empty when nothing runs. */
json_t *nbdoc_in_flight(struct nbdoc *doc);

/* Whether some recorded output is not in the file yet. */
bool nbdoc_dirty(struct nbdoc *doc);

/* Writes the recorded outputs into the notebook file (nbformat 4 JSON, as nbformat writes
 * it), atomically. When the file changed on disk since this document last read or wrote it,
 * it is read again and only the cells that ran are changed in it, found by cell id (or by
 * source, for notebooks without ids); cells that are gone are skipped. Blocking: call it
 * from the thread pool. Returns 0 (also when there was nothing to write), -ENOENT when the
 * notebook is gone (nothing is written), -EINVAL when it is not a valid notebook, -EBUSY
 * when it kept changing while being written, or another negative errno. */
int nbdoc_save(struct nbdoc *doc);

/* Frees the document (NULL is fine). Unsaved outputs are dropped: save first. */
void nbdoc_close(struct nbdoc *doc);

#endif
