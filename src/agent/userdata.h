/* The agent's end of google.colab.userdata: a unix socket in the runtime's run folder
 * (SANDBOX_RUN_DIR inside a sandbox) that only this runtime's kernel can reach. A
 * client sends one line of JSON, {"name": "NAME"}; the agent asks the hub (STREAM_SECRET
 * with a request id), and writes the hub's answer back as one line of JSON
 * ({"status": "ok", "value": ...}, "not_found", "no_access" or "error" with a
 * "message"), then closes. The hub decides from what it knows of the runtime: the
 * client names only the secret. Bounded: USERDATA_CLIENTS_MAX at once, requests of
 * USERDATA_REQUEST_MAX bytes, USERDATA_TIMEOUT_MS each. */
#ifndef LABBOOK_AGENT_USERDATA_H
#define LABBOOK_AGENT_USERDATA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zmq.h>

#define USERDATA_CLIENTS_MAX 8
#define USERDATA_REQUEST_MAX 1024
#define USERDATA_TIMEOUT_MS 60000
#define USERDATA_POLL_MAX (1 + USERDATA_CLIENTS_MAX)

struct userdata;

/* Sends a STREAM_SECRET payload to the hub: 0, or a negative errno when there is no hub. */
typedef int (*userdata_send_fn)(void *ctx, const char *json, size_t len);

/* Listens on USERDATA_SOCKET_NAME in the folder dirfd (replacing what is there), owned
 * by owner (uid and gid; (uid_t)-1: left as created). Returns NULL with *err (caller
 * frees) when it cannot. */
struct userdata *userdata_new(int dirfd, uid_t owner, userdata_send_fn send, void *ctx, char **err);
/* Closes the socket and every client; the socket file stays (the folder may be gone). */
void userdata_free(struct userdata *u);
/* Fills up to USERDATA_POLL_MAX items to poll; returns how many. */
int userdata_poll_items(struct userdata *u, zmq_pollitem_t *items);
/* After zmq_poll: handles the n items userdata_poll_items filled. */
void userdata_handle(struct userdata *u, const zmq_pollitem_t *items, int n);
/* Milliseconds until the next client times out, or -1. */
long userdata_timeout(struct userdata *u);
/* The hub's STREAM_SECRET_REPLY. */
void userdata_reply(struct userdata *u, const uint8_t *p, size_t len);
/* The hub went away: clients still waiting are told so. */
void userdata_hub_lost(struct userdata *u);

#endif
