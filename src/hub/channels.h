/* Kernel channels: the WebSocket clients of a kernel (/api/kernels/{id}/channels),
 * in the v1 binary subprotocol or the legacy JSON protocol. Messages from clients
 * go to the kernel's agent; messages from the kernel go to every client (iopub) or
 * to the client that asked (shell, control, stdin). A client that drops keeps its
 * session: what it misses is kept (capped) and replayed when it reconnects with the
 * same session_id. */
#ifndef LABBOOK_HUB_CHANNELS_H
#define LABBOOK_HUB_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "wire/wsframe.h"

struct hub;
struct lws;
struct client;

/* 0 when user may open the kernel's channels, -ENOENT when there is no such
 * kernel of theirs. */
int channels_check(struct hub *h, const struct user *u, const char *kernel_id);
/* Attaches a new WebSocket client; NULL (close it) when the kernel is gone. */
struct client *channels_open(struct hub *h, struct lws *wsi, const struct user *u,
                             const char *kernel_id, const char *session_id, bool v1);
/* A received fragment. Returns <0 when the connection must close. */
int channels_receive(struct client *c, const void *data, size_t len, bool first, bool final,
                     bool binary);
/* The socket can take more. Returns <0 when the connection must close. */
int channels_writeable(struct client *c);
/* The connection is gone; c is freed. */
void channels_closed(struct client *c);

struct kernel;

/* From the kernel layer: one message from the kernel (v1 bytes, and m its parts
 * pointing into them) to deliver to its clients. */
void channels_deliver(struct kernel *k, const uint8_t *data, size_t len, const struct kmsg *m);
/* The same without a copy: v1 is a message buffer from channels_blob_new, filled in;
 * the caller keeps its own reference. */
struct blob;
struct blob *channels_blob_new(size_t len, uint8_t **data);
void channels_blob_unref(struct blob *b);
void channels_deliver_blob(struct kernel *k, struct blob *v1, const struct kmsg *m);
/* Records a kernel message into the kernel's notebook only, without sending it to any
 * client: one the previous hub had already delivered (STREAM_HISTORY after a restart). */
void channels_record(struct kernel *k, const struct kmsg *m);
/* Sends every client an iopub status message with execution_state (and reason). */
void channels_status(struct kernel *k, const char *state, const char *reason);
/* Sends every client an iopub labbook_notice {level, text}: clients that do not know
 * it ignore it; labbook's own UI shows it. */
void channels_notice(struct kernel *k, const char *level, const char *text);

/* The agent told this hub of the run msg_id, going since before the hub started: the
 * clients that came back from the hub before (sessions this hub had no record of) are
 * told that output may be missing from their view. */
void channels_run_adopted(struct kernel *k, const char *msg_id);
/* The kernel is going away: close its clients and drop what was kept for them. */
void channels_kernel_gone(struct kernel *k);
/* Closes (1008, with the reason) every client of the kernel whose credential no
 * longer holds: when changed (the accounts changed), each is checked against the
 * store (revoked, expired, the user disabled or deleted); else only expiry by the
 * clock (now, unix seconds). */
void channels_recheck(struct kernel *k, bool changed, int64_t now);
/* Drops kept replay buffers older than the configured time. */
void channels_expire(struct kernel *k);

#endif
