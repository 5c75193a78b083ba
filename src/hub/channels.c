/* Kernel channels over WebSocket: per-client send queues with a byte cap, fragment
 * writes sized to the socket, reply routing by request msg_id, iopub fan-out, and
 * replay buffers for clients that drop and come back with the same session_id. */
#include "hub/channels.h"

#include <errno.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/nbdoc.h"

#define FRAGMENT (256 * 1024)
/* lws_write()'s close opcode: no longer in lws's public enum, still handled by it. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* A message ready to send, shared by every client that gets it. Its bytes are its
 * own data, or (a legacy encoding of a large message) its own data with a run of
 * bytes borrowed from another blob inserted at `split`. */
struct blob {
    int refs;
    bool binary;
    size_t len;
    struct blob *base;     /* holds the borrowed bytes alive */
    const uint8_t *borrow; /* NULL: the message is data[LWS_PRE...] whole */
    size_t borrow_len;
    size_t split;
    unsigned char data[]; /* LWS_PRE headroom, then the own bytes */
};

/* Content parts at least this large are not copied into legacy encodings. */
#define BORROW_MIN (64 * 1024)

struct qent {
    struct qent *next;
    struct blob *blob;
};

struct queue {
    struct qent *head, *tail;
    size_t bytes;
};

struct client {
    struct client *next;
    struct kernel *k;
    struct hub *hub;
    struct lws *wsi;
    bool v1;
    bool closing;
    const char *close_reason;
    uint16_t close_code; /* sent in the close frame, with close_reason */
    char session[80];
    bool unknown_session; /* came with a session id this hub had no record of */
    struct queue q;
    size_t off; /* bytes of q.head already sent */
    struct buf in;
    bool in_binary;
    uint64_t last_progress; /* when a fragment last went out */
    bool cut;               /* its socket is being closed, ready or not */
    /* Who opened it (a user's unfinished messages are capped together) and with what
     * credential: checked again when the accounts change. */
    int64_t user_id;
    struct store_cred cred;
};

/* A client stuck over the low-water mark this long while output is held back has
 * stopped reading: it is cut off so that the others get their output. Any other
 * client with output to take is cut off after ws_stall_s without taking any. */
#define STALL_MS 5000

/* A session whose client dropped: what it misses is kept (v1 form) for a while. */
struct parked {
    struct parked *next;
    char session[80];
    struct queue q;
    uint64_t since;
    size_t dropped;          /* output bytes not kept (over replay_mb) */
    char dropped_parent[80]; /* the request whose output was last marked as cut */
};

static unsigned char scratch[LWS_PRE + FRAGMENT];

static struct blob *blob_new(const void *data, size_t len, bool binary)
{
    struct blob *b = xmalloc(sizeof(*b) + LWS_PRE + len);
    b->refs = 1;
    b->binary = binary;
    b->len = len;
    b->base = NULL;
    b->borrow = NULL;
    b->borrow_len = b->split = 0;
    if (data)
        memcpy(b->data + LWS_PRE, data, len);
    return b;
}

static void blob_unref(struct blob *b)
{
    if (b && --b->refs == 0) {
        blob_unref(b->base);
        free(b);
    }
}

/* Copies n bytes of b's message, starting at off, to dst. */
static void blob_read(const struct blob *b, size_t off, size_t n, unsigned char *dst)
{
    const unsigned char *own = b->data + LWS_PRE;
    size_t split = b->borrow ? b->split : b->len, blen = b->borrow ? b->borrow_len : 0;
    while (n) {
        size_t take;
        if (off < split) {
            take = split - off < n ? split - off : n;
            memcpy(dst, own + off, take);
        } else if (off < split + blen) {
            take = split + blen - off < n ? split + blen - off : n;
            memcpy(dst, b->borrow + (off - split), take);
        } else {
            take = n;
            memcpy(dst, own + (off - blen), take);
        }
        dst += take;
        off += take;
        n -= take;
    }
}

static void queue_push(struct queue *q, struct blob *b)
{
    struct qent *e = xmalloc(sizeof(*e));
    e->next = NULL;
    e->blob = b;
    b->refs++;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->bytes += b->len;
}

static void queue_pop(struct queue *q)
{
    struct qent *e = q->head;
    q->head = e->next;
    if (!q->head)
        q->tail = NULL;
    q->bytes -= e->blob->len;
    blob_unref(e->blob);
    free(e);
}

static void queue_clear(struct queue *q)
{
    while (q->head)
        queue_pop(q);
}

/* What libwebsockets holds of c's output: the unsent rest of the last fragment, which
 * it keeps when the socket took only part of it (and then asks for no more). */
static size_t lws_held(const struct client *c)
{
    return c->wsi && lws_partial_buffered(c->wsi) ? FRAGMENT + 14 : 0;
}

/* The bytes of output the hub holds for c, counted against ws_queue_mb. */
static size_t client_unsent(const struct client *c)
{
    return c->q.bytes + lws_held(c);
}

/* How long c has had output waiting without any of it going out (0: none waits). */
static uint64_t stalled_ms(const struct client *c, uint64_t now)
{
    if (!c->q.head && !lws_held(c))
        return 0;
    return now > c->last_progress ? now - c->last_progress : 0;
}

/* Closes c's socket now, whatever it has half received and whether or not it could
 * take a close frame: a client that reads nothing would never let one out. */
static void client_cut(struct client *c)
{
    if (c->cut || !c->wsi)
        return;
    c->cut = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

int kernel_count_clients(const struct kernel *k)
{
    int n = 0;
    for (struct client *c = k->clients; c; c = c->next)
        if (!c->closing)
            n++;
    return n;
}

int channels_check(struct hub *h, const struct user *u, const char *kernel_id)
{
    return kernel_find(h, u, kernel_id) ? 0 : -ENOENT;
}

/* Resumes the kernel's output once no client is over the low-water mark. */
static void maybe_unthrottle(struct kernel *k)
{
    if (!k || !k->throttled)
        return;
    size_t low = (size_t)k->hub->cfg.ws_queue_max / 4;
    for (struct client *c = k->clients; c; c = c->next)
        if (!c->closing && client_unsent(c) > low)
            return;
    kernel_set_throttle(k, false);
}

/* Closes c with code (1000 normal, 1001 going away, 1008 policy, 1012 restart) and why. */
static void client_close_code(struct client *c, uint16_t code, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_reason = why;
    c->close_code = code;
    /* A message partly sent is finished first: a close frame cannot follow half a
     * message. Everything queued after it is dropped now. */
    struct qent *keep = c->off ? c->q.head : NULL;
    if (keep) {
        c->q.head = keep->next;
        c->q.bytes -= keep->blob->len;
        if (!c->q.head)
            c->q.tail = NULL;
    }
    queue_clear(&c->q);
    if (keep) {
        keep->next = NULL;
        c->q.head = c->q.tail = keep;
        c->q.bytes = keep->blob->len;
    } else {
        c->off = 0;
    }
    buf_free(&c->in);
    if (c->wsi) {
        /* Whatever happens next, a closing client that takes nothing for ws_stall_s
         * is gone then (channels_writeable renews this as its output goes out). */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->hub->cfg.ws_stall_s);
        lws_callback_on_writable(c->wsi);
    }
    maybe_unthrottle(c->k);
}

static void client_close(struct client *c, const char *why)
{
    client_close_code(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
}

/* Legacy clients get their own encoding of a v1 blob; a large content part is
 * borrowed from the v1 blob rather than copied. */
static struct blob *to_legacy(struct blob *v1)
{
    struct kmsg m;
    if (wsv1_parse(v1->data + LWS_PRE, v1->len, &m) < 0)
        return NULL;
    struct buf out = {0};
    bool binary = false;
    size_t at = 0;
    struct blob *b = NULL;
    if (m.nparts == 4 && m.part_len[3] >= BORROW_MIN) {
        if (legacy_encode_around_content(&m, &out, &at) == 0) {
            b = blob_new(out.data, out.len, false);
            b->base = v1;
            v1->refs++;
            b->borrow = m.part[3];
            b->borrow_len = m.part_len[3];
            b->split = at;
            b->len = out.len + m.part_len[3];
        }
    } else if (legacy_encode(&m, &out, &binary) == 0) {
        b = blob_new(out.data, out.len, binary);
    }
    buf_free(&out);
    return b;
}

static void client_push(struct client *c, struct blob *v1, struct blob **legacy)
{
    if (c->closing)
        return;
    struct blob *b = v1;
    if (!c->v1) {
        if (!*legacy)
            *legacy = to_legacy(v1);
        if (!*legacy)
            return;
        b = *legacy;
    }
    if (client_unsent(c) + b->len > (size_t)c->hub->cfg.ws_queue_max) {
        log_warn("kernel %s: closing a client that stopped reading (%zu bytes unsent, cap %lld)",
                 c->k->id, client_unsent(c), (long long)c->hub->cfg.ws_queue_max);
        client_close(c, "client too slow: unsent output over the cap");
        return;
    }
    bool was_empty = !c->q.head;
    if (was_empty && !lws_held(c))
        c->last_progress = now_ms(); /* nothing was waiting: the wait starts now */
    queue_push(&c->q, b);
    if (was_empty && c->wsi)
        lws_callback_on_writable(c->wsi);
    if (client_unsent(c) > (size_t)c->hub->cfg.ws_queue_max / 2)
        kernel_set_throttle(c->k, true);
}

static struct blob *stream_note(const struct kmsg *about, const char *text);

/* Reads one string field of a JSON part into out ("" when absent). */
static void part_field(const uint8_t *p, size_t len, const char *key, char *out, size_t n)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(out, n, "%s", v ? v : "");
    json_decref(j);
}

/* Keeps a message for a disconnected session. Past replay_mb, output is no longer
 * kept, but replies and status messages are (they are small, and without them the
 * client would show its cell running forever), and the first output cut from each
 * request is replaced by a note saying so. */
static void parked_push(struct kernel *k, struct parked *p, struct blob *v1, const struct kmsg *m)
{
    struct hub *h = k->hub;
    if (p->q.bytes + v1->len <= (size_t)h->cfg.replay_max) {
        queue_push(&p->q, v1);
        return;
    }
    bool iopub = m->channel_len == 5 && !memcmp(m->channel, "iopub", 5);
    char type[32], parent[80];
    part_field(m->part[0], m->part_len[0], "msg_type", type, sizeof(type));
    part_field(m->part[1], m->part_len[1], "msg_id", parent, sizeof(parent));
    if (!iopub || !strcmp(type, "status") || v1->len < 4096) {
        queue_push(&p->q, v1);
        return;
    }
    if (!p->dropped)
        log_warn("kernel %s: a disconnected client's replay buffer is full (%lld MiB): "
                 "output is no longer kept for it",
                 k->id, (long long)(h->cfg.replay_max >> 20));
    p->dropped += v1->len;
    if (strcmp(p->dropped_parent, parent)) {
        snprintf(p->dropped_parent, sizeof(p->dropped_parent), "%s", parent);
        char note[200];
        snprintf(note, sizeof(note),
                 "\n[labbook: output was cut here while you were disconnected: more than %lld "
                 "MiB of it]\n",
                 (long long)(h->cfg.replay_max >> 20));
        struct blob *b = stream_note(m, note);
        if (b) {
            queue_push(&p->q, b);
            blob_unref(b);
        }
    }
}

static bool session_has_client(struct kernel *k, const char *session)
{
    for (struct client *c = k->clients; c; c = c->next)
        if (!c->closing && !strcmp(c->session, session))
            return true;
    return false;
}

static const char *route_lookup(struct kernel *k, const char *msg_id)
{
    for (unsigned i = 0; i < KERNEL_ROUTES; i++) {
        unsigned idx = (k->route_next + KERNEL_ROUTES - 1 - i) % KERNEL_ROUTES;
        if (!k->routes[idx].msg_id[0])
            return NULL;
        if (!strcmp(k->routes[idx].msg_id, msg_id))
            return k->routes[idx].session;
    }
    return NULL;
}

static void route_add(struct kernel *k, const char *msg_id, const char *session)
{
    unsigned idx = k->route_next++ % KERNEL_ROUTES;
    snprintf(k->routes[idx].msg_id, sizeof(k->routes[idx].msg_id), "%s", msg_id);
    snprintf(k->routes[idx].session, sizeof(k->routes[idx].session), "%s", session);
}

/* Reads one string field of a JSON part without keeping the parse. */
static bool part_string(const uint8_t *p, size_t len, const char *key, char *out, size_t n)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *s = json_string_value(json_object_get(j, key));
    bool ok = s && strlen(s) < n;
    if (ok)
        memcpy(out, s, strlen(s) + 1);
    json_decref(j);
    return ok;
}

struct blob *channels_blob_new(size_t len, uint8_t **data)
{
    struct blob *b = blob_new(NULL, len, true);
    *data = b->data + LWS_PRE;
    return b;
}

void channels_blob_unref(struct blob *b)
{
    blob_unref(b);
}

void channels_deliver(struct kernel *k, const uint8_t *data, size_t len, const struct kmsg *m)
{
    struct blob *v1 = blob_new(data, len, true);
    channels_deliver_blob(k, v1, m);
    blob_unref(v1);
}

/* Hands a kernel message to the kernel's notebook document, if it records one. When an
 * execute request ends (its status idle) and the notebook does not record it, the agent
 * may forget it at once; recorded ones are forgotten once saved (kernels.c). */
static void record(struct kernel *k, const struct kmsg *m, const char *type)
{
    struct nbdoc *doc = k->doc;
    char parent[80], ptype[32], st[16];
    bool ended = !strcmp(type, "status") &&
                 part_string(m->part[3], m->part_len[3], "execution_state", st, sizeof(st)) &&
                 !strcmp(st, "idle");
    if ((!doc && !ended) ||
        !part_string(m->part[1], m->part_len[1], "msg_id", parent, sizeof(parent)))
        return;
    if (doc)
        nbdoc_message(doc, type, parent, (const char *)m->part[3], m->part_len[3]);
    if (ended && (!doc || !nbdoc_tracks(doc, parent)) &&
        part_string(m->part[1], m->part_len[1], "msg_type", ptype, sizeof(ptype)) &&
        !strcmp(ptype, "execute_request"))
        kernel_recorded(k, parent);
}

void channels_record(struct kernel *k, const struct kmsg *m)
{
    char type[32];
    if (!part_string(m->part[0], m->part_len[0], "msg_type", type, sizeof(type)))
        return;
    bool iopub = m->channel_len == 5 && !memcmp(m->channel, "iopub", 5);
    bool shell = m->channel_len == 5 && !memcmp(m->channel, "shell", 5);
    if (iopub || (shell && !strcmp(type, "execute_reply")))
        record(k, m, type);
}

void channels_deliver_blob(struct kernel *k, struct blob *v1, const struct kmsg *m)
{
    struct blob *legacy = NULL;
    bool iopub = m->channel_len == 5 && !memcmp(m->channel, "iopub", 5);
    if (iopub) {
        char type[32];
        bool typed = part_string(m->part[0], m->part_len[0], "msg_type", type, sizeof(type));
        if (typed)
            record(k, m, type);
        if (typed && !strcmp(type, "status")) {
            char st[16];
            /* A kernel's own "starting" can arrive after it is known to run: only busy
             * and idle tell what a running kernel does. */
            if (part_string(m->part[3], m->part_len[3], "execution_state", st, sizeof(st)) &&
                k->life == KERNEL_RUNNING && (!strcmp(st, "busy") || !strcmp(st, "idle")))
                snprintf(k->execution_state, sizeof(k->execution_state), "%s", st);
        }
        for (struct client *c = k->clients; c; c = c->next)
            client_push(c, v1, &legacy);
        for (struct parked *p = k->parked; p; p = p->next)
            if (p->since)
                parked_push(k, p, v1, m);
    } else {
        char parent[80], sess[80] = "", type[32];
        if (k->doc && m->channel_len == 5 && !memcmp(m->channel, "shell", 5) &&
            part_string(m->part[0], m->part_len[0], "msg_type", type, sizeof(type)) &&
            !strcmp(type, "execute_reply"))
            record(k, m, type);
        if (part_string(m->part[1], m->part_len[1], "msg_id", parent, sizeof(parent))) {
            const char *s = route_lookup(k, parent);
            if (s)
                snprintf(sess, sizeof(sess), "%s", s);
        }
        if (!sess[0])
            part_string(m->part[1], m->part_len[1], "session", sess, sizeof(sess));
        bool delivered = false;
        for (struct client *c = k->clients; c; c = c->next)
            if (!strcmp(c->session, sess)) {
                client_push(c, v1, &legacy);
                delivered = true;
            }
        if (!delivered)
            for (struct parked *p = k->parked; p; p = p->next)
                if (p->since && !strcmp(p->session, sess))
                    parked_push(k, p, v1, m);
    }
    blob_unref(legacy);
}

/* A message from the hub itself on channel, as a v1 blob: a new header of msg_type,
 * the parent header given as raw JSON, empty metadata, and content (taken). */
static struct blob *hub_msg(const char *channel, const char *msg_type, const char *session,
                            const uint8_t *parent, size_t parent_len, json_t *content)
{
    char id[33], date[32], hdr[512];
    unsigned char raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(id, sizeof(id), raw, sizeof(raw));
    iso8601_now(date);
    snprintf(hdr, sizeof(hdr),
             "{\"msg_id\":\"%s\",\"msg_type\":\"%s\",\"username\":\"labbook\","
             "\"session\":\"%s\",\"date\":\"%s\",\"version\":\"5.3\"}",
             id, msg_type, session, date);
    char *c = json_dumps(content, JSON_COMPACT);
    json_decref(content);
    struct kmsg m = {.channel = channel, .channel_len = strlen(channel), .nparts = 4};
    m.part[0] = (const uint8_t *)hdr;
    m.part_len[0] = strlen(hdr);
    m.part[1] = parent;
    m.part_len[1] = parent_len;
    m.part[2] = (const uint8_t *)"{}";
    m.part_len[2] = 2;
    m.part[3] = (const uint8_t *)c;
    m.part_len[3] = strlen(c);
    uint8_t *data;
    struct blob *b = channels_blob_new(wsv1_size(&m), &data);
    wsv1_write(&m, data);
    free(c);
    return b;
}

static struct blob *hub_iopub(const char *msg_type, const char *session, const uint8_t *parent,
                              size_t parent_len, json_t *content)
{
    return hub_msg("iopub", msg_type, session, parent, parent_len, content);
}

/* Delivers a hub-made message to the kernel's clients like one from the kernel. */
static void deliver_own(struct kernel *k, struct blob *b)
{
    struct kmsg m;
    if (wsv1_parse(b->data + LWS_PRE, b->len, &m) == 0)
        channels_deliver_blob(k, b, &m);
    blob_unref(b);
}

void channels_status(struct kernel *k, const char *state, const char *reason)
{
    json_t *content = json_pack("{s:s}", "execution_state", state);
    if (reason)
        json_object_set_new(content, "reason", json_string(reason));
    deliver_own(k, hub_iopub("status", k->id, (const uint8_t *)"{}", 2, content));
}

void channels_notice(struct kernel *k, const char *level, const char *text)
{
    json_t *content = json_pack("{s:s, s:s}", "level", level, "text", text);
    deliver_own(k, hub_iopub("labbook_notice", k->id, (const uint8_t *)"{}", 2, content));
}

/* An iopub stream message (stderr) answering the same request as `about`. */
static struct blob *stream_note(const struct kmsg *about, const char *text)
{
    return hub_iopub("stream", "labbook", about->part[1], about->part_len[1],
                     json_pack("{s:s, s:s}", "name", "stderr", "text", text));
}

/* Tells c, on the run whose request header is parent (JSON), that output may be missing
 * from its view: it was connected to the hub that ran before this one. */
static void push_gap_note(struct client *c, const char *parent)
{
    struct blob *note =
        hub_iopub("stream", "labbook", (const uint8_t *)parent, strlen(parent),
                  json_pack("{s:s, s:s}", "name", "stderr", "text",
                            "\n[labbook: the server restarted while this cell ran; output "
                            "printed meanwhile is not shown here, but it is in the saved "
                            "notebook (reload it to see it)]\n"));
    struct blob *legacy = NULL;
    client_push(c, note, &legacy);
    blob_unref(legacy);
    blob_unref(note);
}

/* The header of the execute_request msg_id, as the parent of hub-made messages (JSON). */
static char *request_parent(const char *msg_id)
{
    json_t *parent = json_pack("{s:s, s:s, s:s}", "msg_id", msg_id, "msg_type", "execute_request",
                               "version", "5.3");
    char *p = parent ? json_dumps(parent, JSON_COMPACT) : NULL;
    json_decref(parent);
    return p;
}

void channels_run_adopted(struct kernel *k, const char *msg_id)
{
    char *p = request_parent(msg_id);
    for (struct client *c = k->clients; c && p; c = c->next)
        if (c->unknown_session && !c->closing)
            push_gap_note(c, p);
    free(p);
}

/* Tells a client that just connected which cells run now, with their outputs so far
 * (labbook_run, one per run, on iopub with the request as parent): what it sees from
 * now on continues them. It comes after any replay, and replaces what the replay
 * showed of those runs. A client that comes back with a session this hub has no record
 * of (`unknown`: it was connected to the hub before a restart) is first told, on each
 * run that was going then, that output may be missing from its view (Jupyter clients
 * ignore labbook_run; labbook's page replaces the note with the run's outputs). */
static void tell_in_flight(struct client *c, bool unknown)
{
    struct kernel *k = c->k;
    if (!k->doc || k->life != KERNEL_RUNNING || strcmp(k->execution_state, "busy"))
        return;
    json_t *runs = nbdoc_in_flight(k->doc);
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        char *p = request_parent(json_string_value(json_object_get(run, "msg_id")));
        json_object_del(run, "msg_id");
        if (unknown && json_is_true(json_object_get(run, "adopted")))
            push_gap_note(c, p);
        struct blob *legacy = NULL;
        struct blob *b =
            hub_iopub("labbook_run", k->id, (const uint8_t *)p, strlen(p), json_incref(run));
        free(p);
        client_push(c, b, &legacy);
        blob_unref(legacy);
        blob_unref(b);
    }
    json_decref(runs);
}

struct client *channels_open(struct hub *h, struct lws *wsi, const struct user *u,
                             const char *kernel_id, const char *session_id, bool v1)
{
    struct kernel *k = kernel_find(h, u, kernel_id);
    if (!k)
        return NULL;
    struct client *c = xcalloc(1, sizeof(*c));
    c->k = k;
    c->hub = h;
    c->wsi = wsi;
    c->v1 = v1;
    c->user_id = u->id;
    c->cred = u->cred;
    c->in.cap_max = (size_t)h->cfg.max_ws_message;
    if (session_id && *session_id && strlen(session_id) < sizeof(c->session)) {
        snprintf(c->session, sizeof(c->session), "%s", session_id);
    } else {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(c->session, sizeof(c->session), raw, sizeof(raw));
    }
    c->next = k->clients;
    k->clients = c;
    kernel_touch(k);
    /* Give back what this session missed while it was away. */
    int replayed = 0;
    bool known = !(session_id && *session_id);
    for (struct parked **pp = &k->parked; *pp; pp = &(*pp)->next) {
        struct parked *p = *pp;
        if (strcmp(p->session, c->session))
            continue;
        known = true;
        *pp = p->next;
        struct blob *legacy = NULL;
        while (p->q.head) {
            client_push(c, p->q.head->blob, &legacy);
            blob_unref(legacy);
            legacy = NULL;
            queue_pop(&p->q);
            replayed++;
        }
        free(p);
        break;
    }
    log_info("kernel %s (%s): client connected (%s protocol%s)", k->id, k->owner_name,
             v1 ? "v1" : "json", replayed ? ", replaying what it missed" : "");
    c->unknown_session = !known;
    tell_in_flight(c, !known);
    /* The state the client should show now. */
    if (k->life == KERNEL_DEAD)
        channels_status(k, "dead", k->reason);
    return c;
}

/* What the user's clients hold of messages still arriving, over every kernel. */
static size_t user_inbound(struct hub *h, int64_t user_id)
{
    size_t n = 0;
    for (struct kernel *k = h->kernels; k; k = k->next)
        for (struct client *c = k->clients; c; c = c->next)
            if (c->user_id == user_id)
                n += c->in.len;
    return n;
}

/* Done with a message: a large buffer is given back rather than kept for the next. */
static void inbound_done(struct client *c)
{
    if (c->in.alloc > (1u << 20))
        buf_free(&c->in);
    else
        buf_reset(&c->in);
}

/* A request on shell that cannot reach the kernel (its runtime is dead, or its agent not
 * connected) is answered by the hub, as the kernel would answer one that failed: busy, an
 * error output, the reply with status "error", idle. Nothing is left waiting. */
static void answer_unreachable(struct kernel *k, const struct kmsg *m)
{
    char type[48];
    if (!(m->channel_len == 5 && !memcmp(m->channel, "shell", 5)) ||
        !part_string(m->part[0], m->part_len[0], "msg_type", type, sizeof(type)) ||
        !str_ends_with(type, "_request"))
        return;
    char reply[64], why[300];
    snprintf(reply, sizeof(reply), "%.*s_reply", (int)(strlen(type) - 8), type);
    snprintf(why, sizeof(why), "%s%s%s",
             k->life == KERNEL_DEAD ? "The runtime is dead" : "The runtime is not connected",
             k->reason ? ": " : "", k->reason ? k->reason : "");
    const char *ename = "RuntimeUnavailable";
    const char *hint = "Restart the runtime (Runtime > Restart runtime) to go on.";
    const uint8_t *parent = m->part[0];
    size_t plen = m->part_len[0];
    bool execute = !strcmp(type, "execute_request");
    deliver_own(
        k, hub_iopub("status", k->id, parent, plen, json_pack("{s:s}", "execution_state", "busy")));
    if (execute)
        deliver_own(k, hub_iopub("error", k->id, parent, plen,
                                 json_pack("{s:s, s:s, s:[s, s]}", "ename", ename, "evalue", why,
                                           "traceback", why, hint)));
    json_t *content = json_pack("{s:s, s:s, s:s, s:[]}", "status", "error", "ename", ename,
                                "evalue", why, "traceback");
    if (execute)
        json_object_set_new(content, "execution_count", json_null());
    deliver_own(k, hub_msg("shell", reply, k->id, parent, plen, content));
    deliver_own(
        k, hub_iopub("status", k->id, parent, plen, json_pack("{s:s}", "execution_state", "idle")));
}

int channels_receive(struct client *c, const void *data, size_t len, bool first, bool final,
                     bool binary)
{
    if (c->closing)
        return 0;
    if (first) {
        inbound_done(c);
        c->in_binary = binary;
    }
    /* Each message is capped, and so are all of a user's unfinished ones together:
     * many connections each holding most of a message would add up otherwise. */
    if (user_inbound(c->hub, c->user_id) + len > (size_t)c->hub->cfg.max_ws_message) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"unfinished messages too large", 29);
        log_warn("kernel %s: closing a client: its user's unfinished messages pass %lld bytes",
                 c->k ? c->k->id : "-", (long long)c->hub->cfg.max_ws_message);
        return -1;
    }
    if (buf_append(&c->in, data, len) < 0) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too large", 17);
        log_warn("kernel %s: closing a client whose message is over %lld bytes",
                 c->k ? c->k->id : "-", (long long)c->hub->cfg.max_ws_message);
        return -1;
    }
    if (!final)
        return 0;
    struct kernel *k = c->k;
    if (!k)
        return 0;
    struct buf v1 = {0};
    const uint8_t *msg = (const uint8_t *)c->in.data;
    size_t mlen = c->in.len;
    struct kmsg m;
    const char *err = "not a kernel message";
    int r;
    if (c->v1) {
        r = wsv1_parse(msg, mlen, &m);
    } else {
        r = legacy_decode(msg, mlen, c->in_binary, &v1, &err);
        if (r == 0) {
            msg = (const uint8_t *)v1.data;
            mlen = v1.len;
            r = wsv1_parse(msg, mlen, &m);
        }
    }
    if (r < 0) {
        log_warn("kernel %s: dropped a malformed message from a client: %s", k->id, err);
        goto out;
    }
    char msg_id[80];
    if (part_string(m.part[0], m.part_len[0], "msg_id", msg_id, sizeof(msg_id))) {
        route_add(k, msg_id, c->session);
        char type[32];
        if (m.channel_len == 5 && !memcmp(m.channel, "shell", 5) &&
            part_string(m.part[0], m.part_len[0], "msg_type", type, sizeof(type)) &&
            !strcmp(type, "execute_request") && kernel_doc(k))
            nbdoc_request_msg(k->doc, msg_id, (const char *)m.part[3], m.part_len[3],
                              (const char *)m.part[2], m.part_len[2]);
    }
    kernel_touch(k);
    if (k->life == KERNEL_STARTING || k->life == KERNEL_RESTARTING) {
        /* A new kernel's iopub is not flowing yet: what it answered now would be lost. */
        uint64_t n = mlen;
        if (k->held_count >= 256 || k->held.len + mlen + 8 > (size_t)c->hub->cfg.max_ws_message) {
            log_warn("kernel %s: too much sent while it restarts; dropping a message", k->id);
        } else {
            buf_append(&k->held, &n, 8);
            buf_append(&k->held, msg, mlen);
            k->held_count++;
        }
        goto out;
    }
    r = kernel_send_to_agent(k, STREAM_MSG, msg, mlen);
    if (r == -ENOBUFS)
        client_close(c, "the kernel is not keeping up with this client's messages");
    else if (r == -ENOTCONN)
        answer_unreachable(k, &m);
out:
    buf_free(&v1);
    inbound_done(c);
    return 0;
}

int channels_writeable(struct client *c)
{
    if (c->closing && !c->q.head) {
        /* lws 4.1 drops a connection whose WRITEABLE callback returns -1 without
         * sending the close frame lws_close_reason() prepared (the client saw 1006),
         * so the frame is written here first: status, then the reason. */
        const char *why = c->close_reason ? c->close_reason : "closing";
        size_t n = strlen(why) > 123 ? 123 : strlen(why);
        unsigned char frame[LWS_PRE + 125];
        frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
        memcpy(frame + LWS_PRE + 2, why, n);
        lws_write(c->wsi, frame + LWS_PRE, n + 2, WS_WRITE_CLOSE);
        return -1;
    }
    struct qent *e = c->q.head;
    if (!e)
        return 0;
    struct blob *b = e->blob;
    size_t n = b->len - c->off;
    if (n > FRAGMENT)
        n = FRAGMENT;
    bool last = c->off + n == b->len;
    int flags =
        c->off == 0 ? (b->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) : LWS_WRITE_CONTINUATION;
    if (!last)
        flags |= LWS_WRITE_NO_FIN;
    unsigned char *p;
    if (c->off == 0 && !b->borrow) {
        p = b->data + LWS_PRE; /* the blob's own headroom */
    } else {
        blob_read(b, c->off, n, scratch + LWS_PRE);
        p = scratch + LWS_PRE;
    }
    if (lws_write(c->wsi, p, n, (enum lws_write_protocol)flags) < 0)
        return -1;
    c->off += n;
    c->last_progress = now_ms();
    if (c->closing)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->hub->cfg.ws_stall_s);
    if (last) {
        c->off = 0;
        queue_pop(&c->q);
        maybe_unthrottle(c->k);
    }
    if (c->q.head || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* A kernel keeps at most PARKED_MAX dropped sessions, so that clients coming and
 * going with new session ids cannot pile up replay buffers. */
#define PARKED_MAX 8

static void drop_oldest_parked(struct kernel *k)
{
    int n = 0;
    struct parked **oldest = NULL;
    for (struct parked **pp = &k->parked; *pp; pp = &(*pp)->next) {
        n++;
        if (!oldest || (*pp)->since < (*oldest)->since)
            oldest = pp;
    }
    if (n < PARKED_MAX || !oldest)
        return;
    struct parked *p = *oldest;
    *oldest = p->next;
    queue_clear(&p->q);
    free(p);
}

void channels_closed(struct client *c)
{
    struct kernel *k = c->k;
    if (k) {
        for (struct client **pp = &k->clients; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        log_info("kernel %s (%s): client disconnected", k->id, k->owner_name);
        /* Keep what this session misses, unless another connection of it is open. */
        if (k->life != KERNEL_STOPPING && c->hub->cfg.replay_max > 0 &&
            !session_has_client(k, c->session)) {
            struct parked *p = NULL;
            for (p = k->parked; p && strcmp(p->session, c->session); p = p->next)
                ;
            if (!p) {
                drop_oldest_parked(k);
                p = xcalloc(1, sizeof(*p));
                snprintf(p->session, sizeof(p->session), "%s", c->session);
                p->next = k->parked;
                k->parked = p;
            }
            p->since = now_ms();
            /* What was queued but not sent goes back into the replay buffer. */
            if (c->off == 0 && c->v1)
                for (struct qent *e = c->q.head; e; e = e->next) {
                    struct kmsg m;
                    if (wsv1_parse(e->blob->data + LWS_PRE, e->blob->len, &m) == 0)
                        parked_push(k, p, e->blob, &m);
                }
        }
    }
    size_t held = c->q.bytes + c->in.alloc;
    queue_clear(&c->q);
    buf_free(&c->in);
    free(c);
    /* A client cut off with a big message unsent let go of many blocks: glibc keeps
     * them unless asked, and the hub's memory would stay up after the burst. */
    if (held >= 8u << 20)
        malloc_trim(0);
    maybe_unthrottle(k);
}

void channels_kernel_gone(struct kernel *k)
{
    /* What ends the connection: a restart of the server (the kernel goes on and the
     * client may reconnect), its shutdown, or the kernel's own. */
    struct hub *h = k->hub;
    uint16_t code = !h->stopping                  ? LWS_CLOSE_STATUS_NORMAL
                    : h->cfg.orphan_timeout_s > 0 ? 1012
                                                  : LWS_CLOSE_STATUS_GOINGAWAY;
    const char *why = !h->stopping                  ? "the kernel was shut down"
                      : h->cfg.orphan_timeout_s > 0 ? "the server is restarting"
                                                    : "the server is shutting down";
    for (struct client *c = k->clients; c; c = c->next) {
        client_close_code(c, code, why);
        c->k = NULL;
    }
    k->clients = NULL;
    while (k->parked) {
        struct parked *p = k->parked;
        k->parked = p->next;
        queue_clear(&p->q);
        free(p);
    }
}

void channels_recheck(struct kernel *k, bool changed, int64_t now)
{
    for (struct client *c = k->clients; c; c = c->next) {
        if (c->closing)
            continue;
        int r;
        if (changed)
            r = store_cred_check(k->hub->store, &c->cred, c->user_id);
        else
            r = c->cred.expires > 0 && c->cred.expires <= now ? -EKEYEXPIRED : 0;
        if (r == 0 || r == -EIO) /* a busy database cuts nobody off */
            continue;
        const char *why = r == -EKEYEXPIRED ? "signed out: the credential expired"
                          : r == -EPERM     ? "signed out: the account was disabled"
                                            : "signed out: the credential was revoked";
        log_info("kernel %s (%s): closing a client: %s", k->id, k->owner_name, why);
        client_close(c, why);
    }
}

void channels_expire(struct kernel *k)
{
    uint64_t now = now_ms(), keep = (uint64_t)k->hub->cfg.replay_keep_s * 1000;
    uint64_t bound = (uint64_t)k->hub->cfg.ws_stall_s * 1000;
    size_t low = (size_t)k->hub->cfg.ws_queue_max / 4;
    for (struct client *c = k->clients; c; c = c->next) {
        uint64_t idle = stalled_ms(c, now);
        bool holds_back = k->throttled && client_unsent(c) > low && idle > STALL_MS;
        if (c->cut || (idle <= bound && !holds_back))
            continue;
        /* It has taken nothing for a while: closing it the usual way would wait for
         * it to finish the message it is in and then take a close frame, which it
         * never does. Its socket is closed instead, and what it held let go. */
        log_warn("kernel %s (%s): closing a client that stopped reading (%zu bytes unsent, "
                 "none taken for %llu s)",
                 k->id, k->owner_name, client_unsent(c), (unsigned long long)(idle / 1000));
        client_close(c, "client too slow: it stopped reading its output");
        client_cut(c);
    }
    maybe_unthrottle(k);
    for (struct parked **pp = &k->parked; *pp;) {
        struct parked *p = *pp;
        if (!p->since || now - p->since > keep) {
            *pp = p->next;
            queue_clear(&p->q);
            free(p);
        } else {
            pp = &p->next;
        }
    }
}
