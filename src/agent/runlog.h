/* What the agent keeps so that a hub restart loses no output: the execute requests in
 * flight, each with the messages it produced that the hub has (its history, until the hub
 * says the notebook has them), and what the kernel sent while no hub was connected (the
 * spool). Both share one byte budget. After a reconnect the new hub gets it all back
 * (docs/agent-protocol.md, "Hub restarts"). Pure data structure: no sockets, no loop. */
#ifndef LABBOOK_AGENT_RUNLOG_H
#define LABBOOK_AGENT_RUNLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wire/wsframe.h"

struct runlog;

#define RUNLOG_DEFAULT_MAX ((size_t)64 << 20)
#define RUNLOG_MAX_RUNS 64
#define RUNLOG_MAX_CODE ((size_t)1 << 20)

/* A log holding at most max_bytes of messages (0: RUNLOG_DEFAULT_MAX). Free with
 * runlog_free (NULL is fine). */
struct runlog *runlog_new(size_t max_bytes);
void runlog_free(struct runlog *rl);

/* The hub sent m to the kernel on shell: a non-silent execute_request is remembered
 * (its msg_id, metadata.cellId and code). */
void runlog_request(struct runlog *rl, const struct kmsg *m);

/* A kernel message, framed as the STREAM_MSG made of iov[0..niov) (the first iovec starts
 * with the stream header), was handed to a connected hub: kept in the history of the run it
 * belongs to, if any. */
void runlog_delivered(struct runlog *rl, const struct kmsg *m, const struct iovec *iov,
                      size_t niov);

/* The same message while no hub is connected: spooled for the next one. Returns false when
 * the budget is spent (it was dropped and counted as a gap). */
bool runlog_spool(struct runlog *rl, const struct kmsg *m, const struct iovec *iov, size_t niov);

/* The hub's STREAM_RECORDED: the notebook has what the run msg_id produced (or the hub does
 * not record it). The run is forgotten. */
void runlog_recorded(struct runlog *rl, const char *msg_id, size_t len);

/* For a hub that just connected: one buffer of stream frames, in the order to send them
 * (per run a STREAM_RUN and its STREAM_HISTORY frames, then the spool as STREAM_MSG frames,
 * then STREAM_GAP frames where the budget was spent), or NULL with *len 0 when there is
 * nothing. The spool's messages join their runs' histories. Caller frees. */
uint8_t *runlog_replay(struct runlog *rl, size_t *len);

/* Bytes held (histories and spool together), for tests and figures. */
size_t runlog_bytes(const struct runlog *rl);

#endif
