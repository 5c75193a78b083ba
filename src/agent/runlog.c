/* The agent's run log (runlog.h): execute requests in flight with their delivered messages,
 * and the spool of messages no hub has seen yet, within one byte budget. */
#include "agent/runlog.h"

#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "wire/stream.h"

struct krun {
    struct krun *next;
    char *msg_id, *cell_id, *code;
    struct buf hist;       /* STREAM_HISTORY frames */
    bool whole;            /* hist has every message of the run since it started */
    bool ended;            /* its status idle has been seen */
    unsigned long dropped; /* spooled messages of this run dropped for the budget */
};

struct runlog {
    size_t max, bytes;
    struct krun *runs; /* oldest first */
    size_t nruns;
    struct buf spool;      /* STREAM_MSG frames */
    unsigned long dropped; /* spooled messages dropped, all runs and none */
};

static void run_free(struct runlog *rl, struct krun *r)
{
    rl->bytes -= r->hist.len;
    buf_free(&r->hist);
    free(r->msg_id);
    free(r->cell_id);
    free(r->code);
    free(r);
}

static void run_unlink(struct runlog *rl, struct krun *r)
{
    for (struct krun **p = &rl->runs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            rl->nruns--;
            run_free(rl, r);
            return;
        }
}

struct runlog *runlog_new(size_t max_bytes)
{
    struct runlog *rl = xcalloc(1, sizeof *rl);
    rl->max = max_bytes ? max_bytes : RUNLOG_DEFAULT_MAX;
    return rl;
}

void runlog_free(struct runlog *rl)
{
    if (!rl)
        return;
    while (rl->runs) {
        struct krun *r = rl->runs;
        rl->runs = r->next;
        run_free(rl, r);
    }
    buf_free(&rl->spool);
    free(rl);
}

size_t runlog_bytes(const struct runlog *rl)
{
    return rl->bytes;
}

static bool has(const uint8_t *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s)) != NULL;
}

void runlog_request(struct runlog *rl, const struct kmsg *m)
{
    if (m->nparts < 4 || !has(m->part[0], m->part_len[0], "\"execute_request\""))
        return;
    json_t *h = json_loadb((const char *)m->part[0], m->part_len[0], 0, NULL);
    json_t *c = json_loadb((const char *)m->part[3], m->part_len[3], 0, NULL);
    json_t *md = json_loadb((const char *)m->part[2], m->part_len[2], 0, NULL);
    const char *type = json_string_value(json_object_get(h, "msg_type"));
    const char *id = json_string_value(json_object_get(h, "msg_id"));
    const char *code = json_string_value(json_object_get(c, "code"));
    const char *cell = json_string_value(json_object_get(md, "cellId"));
    if (!type || strcmp(type, "execute_request") || !id || !id[0] || strlen(id) > 128 ||
        json_is_true(json_object_get(c, "silent")))
        goto out;
    if (rl->nruns == RUNLOG_MAX_RUNS) {
        /* Forget the oldest run that ended, else the oldest of all. */
        struct krun *victim = rl->runs;
        for (struct krun *r = rl->runs; r; r = r->next)
            if (r->ended) {
                victim = r;
                break;
            }
        run_unlink(rl, victim);
    }
    struct krun *r = xcalloc(1, sizeof *r);
    r->msg_id = xstrdup(id);
    r->cell_id = cell && strlen(cell) <= 256 ? xstrdup(cell) : NULL;
    r->code = code && strlen(code) <= RUNLOG_MAX_CODE ? xstrdup(code) : NULL;
    r->whole = true;
    struct krun **tail = &rl->runs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    rl->nruns++;
out:
    json_decref(h);
    json_decref(c);
    json_decref(md);
}

/* The run m answers (its parent_header's msg_id), or NULL. */
static struct krun *run_of(struct runlog *rl, const struct kmsg *m)
{
    if (!rl->runs || m->nparts < 4)
        return NULL;
    json_t *p = json_loadb((const char *)m->part[1], m->part_len[1], 0, NULL);
    const char *id = json_string_value(json_object_get(p, "msg_id"));
    struct krun *found = NULL;
    for (struct krun *r = rl->runs; id && r && !found; r = r->next)
        if (!strcmp(r->msg_id, id))
            found = r;
    json_decref(p);
    return found;
}

static bool is_idle(const struct kmsg *m)
{
    return has(m->part[0], m->part_len[0], "\"status\"") &&
           has(m->part[3], m->part_len[3], "\"idle\"");
}

static size_t iov_total(const struct iovec *iov, size_t niov)
{
    size_t n = 0;
    for (size_t i = 0; i < niov; i++)
        n += iov[i].iov_len;
    return n;
}

/* Appends the frame in iov to b with the frame type changed to type. */
static void append_frame(struct buf *b, enum stream_type type, const struct iovec *iov, size_t niov)
{
    size_t at = b->len;
    for (size_t i = 0; i < niov; i++)
        buf_append(b, iov[i].iov_base, iov[i].iov_len);
    b->data[at + 4] = (char)type;
}

/* Makes room for n more bytes by dropping the largest histories (never the spool).
 * Returns whether there is room. */
static bool make_room(struct runlog *rl, size_t n)
{
    while (rl->bytes + n > rl->max) {
        struct krun *big = NULL;
        for (struct krun *r = rl->runs; r; r = r->next)
            if (r->hist.len && (!big || r->hist.len > big->hist.len))
                big = r;
        if (!big)
            return false;
        rl->bytes -= big->hist.len;
        buf_free(&big->hist);
        big->whole = false;
    }
    return true;
}

static void keep_in_history(struct runlog *rl, struct krun *r, const struct iovec *iov, size_t niov)
{
    if (!r->whole)
        return; /* its start is gone already: the notebook has it, or marks the gap */
    size_t n = iov_total(iov, niov);
    if (rl->bytes + n > rl->max) {
        rl->bytes -= r->hist.len;
        buf_free(&r->hist);
        r->whole = false;
        return;
    }
    append_frame(&r->hist, STREAM_HISTORY, iov, niov);
    rl->bytes += n;
}

void runlog_delivered(struct runlog *rl, const struct kmsg *m, const struct iovec *iov, size_t niov)
{
    struct krun *r = run_of(rl, m);
    if (!r)
        return;
    keep_in_history(rl, r, iov, niov);
    if (is_idle(m))
        r->ended = true;
}

bool runlog_spool(struct runlog *rl, const struct kmsg *m, const struct iovec *iov, size_t niov)
{
    struct krun *r = run_of(rl, m);
    if (r && is_idle(m))
        r->ended = true;
    size_t n = iov_total(iov, niov);
    if (!make_room(rl, n)) {
        rl->dropped++;
        if (r)
            r->dropped++;
        return false;
    }
    append_frame(&rl->spool, STREAM_MSG, iov, niov);
    rl->bytes += n;
    return true;
}

void runlog_recorded(struct runlog *rl, const char *msg_id, size_t len)
{
    for (struct krun *r = rl->runs; r; r = r->next)
        if (strlen(r->msg_id) == len && !memcmp(r->msg_id, msg_id, len)) {
            run_unlink(rl, r);
            return;
        }
}

static void append_json(struct buf *b, enum stream_type type, json_t *o /* stolen */)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(s);
    uint8_t hdr[STREAM_HEADER_LEN];
    stream_header(hdr, type, n);
    buf_append(b, hdr, sizeof hdr);
    buf_append(b, s, n);
    free(s);
}

/* Calls fn for each frame of a buffer of frames. */
static void each_frame(const struct buf *b, void (*fn)(struct runlog *, const uint8_t *, size_t),
                       struct runlog *rl)
{
    size_t off = 0;
    while (off + STREAM_HEADER_LEN <= b->len) {
        const uint8_t *h = (const uint8_t *)b->data + off;
        size_t l = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
        fn(rl, h, 4 + l);
        off += 4 + l;
    }
}

/* A spooled frame has reached the hub: it joins its run's history. */
static void spooled_delivered(struct runlog *rl, const uint8_t *frame, size_t n)
{
    struct kmsg m;
    if (wsv1_parse(frame + STREAM_HEADER_LEN, n - STREAM_HEADER_LEN, &m) < 0)
        return;
    struct krun *r = run_of(rl, &m);
    if (!r || !r->whole)
        return;
    struct iovec v = {(void *)frame, n};
    if (rl->bytes + n > rl->max) {
        rl->bytes -= r->hist.len;
        buf_free(&r->hist);
        r->whole = false;
        return;
    }
    append_frame(&r->hist, STREAM_HISTORY, &v, 1);
    rl->bytes += n;
}

uint8_t *runlog_replay(struct runlog *rl, size_t *len)
{
    struct buf out = {0};
    for (struct krun *r = rl->runs; r; r = r->next) {
        json_t *o = json_pack("{s:s, s:b}", "msg_id", r->msg_id, "whole", r->whole);
        if (r->cell_id)
            json_object_set_new(o, "cell_id", json_string(r->cell_id));
        if (r->code)
            json_object_set_new(o, "code", json_string(r->code));
        append_json(&out, STREAM_RUN, o);
        buf_append(&out, r->hist.data, r->hist.len);
    }
    buf_append(&out, rl->spool.data, rl->spool.len);
    for (struct krun *r = rl->runs; r; r = r->next)
        if (r->dropped) {
            append_json(
                &out, STREAM_GAP,
                json_pack("{s:s, s:I}", "msg_id", r->msg_id, "dropped", (json_int_t)r->dropped));
            r->dropped = 0;
        }
    if (rl->dropped) {
        append_json(&out, STREAM_GAP, json_pack("{s:I}", "dropped", (json_int_t)rl->dropped));
        rl->dropped = 0;
    }
    /* The spool is the hub's now: its messages join their runs' histories. */
    struct buf spool = rl->spool;
    memset(&rl->spool, 0, sizeof rl->spool);
    rl->bytes -= spool.len;
    each_frame(&spool, spooled_delivered, rl);
    buf_free(&spool);
    if (!out.len) {
        *len = 0;
        buf_free(&out);
        return NULL;
    }
    return (uint8_t *)buf_steal(&out, len);
}
