/* Tests for the agent's run log (agent/runlog.c): what a hub that connects after a restart
 * gets back (the runs in flight with their history, then what no hub saw, then the gaps),
 * within the byte budget, and that recorded runs are forgotten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/runlog.h"
#include "common/util.h"
#include "wire/stream.h"
#include "wire/wsframe.h"

/* A kernel message and its STREAM_MSG frame, as the agent sends it. */
struct fmsg {
    char hdr[256], parent[256], content[512];
    struct kmsg m;
    uint8_t *frame;
    size_t len;
    struct iovec iov;
};

static void fmsg_make(struct fmsg *f, const char *channel, const char *type, const char *parent_id,
                      const char *content)
{
    snprintf(f->hdr, sizeof f->hdr, "{\"msg_id\": \"k-%p\", \"msg_type\": \"%s\"}", (void *)f,
             type);
    snprintf(f->parent, sizeof f->parent, "{\"msg_id\": \"%s\", \"msg_type\": \"execute_request\"}",
             parent_id);
    snprintf(f->content, sizeof f->content, "%s", content);
    f->m = (struct kmsg){.channel = channel, .channel_len = strlen(channel), .nparts = 4};
    const char *parts[4] = {f->hdr, f->parent, "{}", f->content};
    for (int i = 0; i < 4; i++) {
        f->m.part[i] = (const uint8_t *)parts[i];
        f->m.part_len[i] = strlen(parts[i]);
    }
    size_t n = wsv1_size(&f->m);
    f->len = STREAM_HEADER_LEN + n;
    f->frame = xmalloc(f->len);
    stream_header(f->frame, STREAM_MSG, n);
    wsv1_write(&f->m, f->frame + STREAM_HEADER_LEN);
    /* m now points into the frame, as the agent's would into ZeroMQ's */
    assert_int_equal(wsv1_parse(f->frame + STREAM_HEADER_LEN, n, &f->m), 0);
    f->iov = (struct iovec){f->frame, f->len};
}

static void request(struct runlog *rl, const char *id, const char *cell, const char *code,
                    bool silent)
{
    char hdr[128], md[128], content[256];
    snprintf(hdr, sizeof hdr, "{\"msg_id\": \"%s\", \"msg_type\": \"execute_request\"}", id);
    snprintf(md, sizeof md, "{\"cellId\": \"%s\"}", cell);
    snprintf(content, sizeof content, "{\"code\": \"%s\", \"silent\": %s}", code,
             silent ? "true" : "false");
    struct kmsg m = {.channel = "shell", .channel_len = 5, .nparts = 4};
    const char *parts[4] = {hdr, "{}", md, content};
    for (int i = 0; i < 4; i++) {
        m.part[i] = (const uint8_t *)parts[i];
        m.part_len[i] = strlen(parts[i]);
    }
    runlog_request(rl, &m);
}

/* The frames of a replay, as "TYPE:detail" words: RUN:id:whole, HIST:text, MSG:text,
 * GAP:id:n. */
static char *describe(const uint8_t *p, size_t len)
{
    struct buf out = {0};
    size_t off = 0;
    while (off < len) {
        assert_true(off + STREAM_HEADER_LEN <= len);
        size_t l = (size_t)p[off] | (size_t)p[off + 1] << 8 | (size_t)p[off + 2] << 16 |
                   (size_t)p[off + 3] << 24;
        uint8_t type = p[off + 4];
        const uint8_t *body = p + off + STREAM_HEADER_LEN;
        size_t n = l - 1;
        if (type == STREAM_RUN || type == STREAM_GAP) {
            json_t *j = json_loadb((const char *)body, n, 0, NULL);
            assert_non_null(j);
            const char *id = json_string_value(json_object_get(j, "msg_id"));
            if (type == STREAM_RUN)
                buf_printf(&out, "RUN:%s:%s ", id,
                           json_is_true(json_object_get(j, "whole")) ? "whole" : "part");
            else
                buf_printf(&out, "GAP:%s:%lld ", id ? id : "-",
                           (long long)json_integer_value(json_object_get(j, "dropped")));
            json_decref(j);
        } else {
            assert_true(type == STREAM_HISTORY || type == STREAM_MSG);
            struct kmsg m;
            assert_int_equal(wsv1_parse(body, n, &m), 0);
            json_t *c = json_loadb((const char *)m.part[3], m.part_len[3], 0, NULL);
            const char *t = json_string_value(json_object_get(c, "text"));
            const char *st = json_string_value(json_object_get(c, "execution_state"));
            buf_printf(&out, "%s:%s ", type == STREAM_HISTORY ? "HIST" : "MSG", t ? t : st);
            json_decref(c);
        }
        off += 4 + l;
    }
    buf_append(&out, "", 0);
    return buf_steal(&out, NULL);
}

static void delivered(struct runlog *rl, const char *parent, const char *text)
{
    struct fmsg f;
    char c[128];
    snprintf(c, sizeof c, "{\"name\": \"stdout\", \"text\": \"%s\"}", text);
    fmsg_make(&f, "iopub", "stream", parent, c);
    runlog_delivered(rl, &f.m, &f.iov, 1);
    free(f.frame);
}

static bool spooled(struct runlog *rl, const char *parent, const char *text)
{
    struct fmsg f;
    char c[128];
    snprintf(c, sizeof c, "{\"name\": \"stdout\", \"text\": \"%s\"}", text);
    fmsg_make(&f, "iopub", "stream", parent, c);
    bool ok = runlog_spool(rl, &f.m, &f.iov, 1);
    free(f.frame);
    return ok;
}

static void idle(struct runlog *rl, const char *parent, bool hub)
{
    struct fmsg f;
    fmsg_make(&f, "iopub", "status", parent, "{\"execution_state\": \"idle\"}");
    if (hub)
        runlog_delivered(rl, &f.m, &f.iov, 1);
    else
        runlog_spool(rl, &f.m, &f.iov, 1);
    free(f.frame);
}

static char *replay(struct runlog *rl)
{
    size_t n;
    uint8_t *p = runlog_replay(rl, &n);
    char *d = describe(p, n);
    free(p);
    return d;
}

static void test_replay_order(void **state)
{
    (void)state;
    struct runlog *rl = runlog_new(0);
    size_t n = 1;
    assert_null(runlog_replay(rl, &n));
    assert_int_equal(n, 0);
    request(rl, "r1", "c1", "print(1)", false);
    request(rl, "quiet", "c9", "x", true); /* silent: not kept */
    delivered(rl, "r1", "a");
    delivered(rl, "other", "not a run");
    delivered(rl, "r1", "b");
    /* The hub goes away; the kernel goes on. */
    assert_true(spooled(rl, "r1", "c"));
    assert_true(spooled(rl, "other", "d"));
    idle(rl, "r1", false);
    char *d = replay(rl);
    assert_string_equal(d, "RUN:r1:whole HIST:a HIST:b MSG:c MSG:d MSG:idle ");
    free(d);
    /* A second restart: what was spooled is history now. */
    d = replay(rl);
    assert_string_equal(d, "RUN:r1:whole HIST:a HIST:b HIST:c HIST:idle ");
    free(d);
    /* The notebook has it: forgotten. */
    runlog_recorded(rl, "r1", 2);
    assert_null(runlog_replay(rl, &n));
    assert_int_equal(runlog_bytes(rl), 0);
    runlog_free(rl);
}

static void test_budget(void **state)
{
    (void)state;
    struct runlog *rl = runlog_new(2000);
    request(rl, "r1", "c1", "loop()", false);
    char line[64];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line, "line %d", i);
        delivered(rl, "r1", line);
    }
    assert_true(runlog_bytes(rl) <= 2000);
    /* Its history did not fit: the next hub learns that its start is gone. */
    char *d = replay(rl);
    assert_string_equal(d, "RUN:r1:part ");
    free(d);
    /* With no hub, the spool takes the budget; past it messages are counted as lost. */
    int kept = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line, "s%d", i);
        kept += spooled(rl, "r1", line);
    }
    assert_true(kept > 0 && kept < 40);
    assert_true(runlog_bytes(rl) <= 2000);
    d = replay(rl);
    char *want = xasprintf("GAP:r1:%d GAP:-:%d ", 40 - kept, 40 - kept);
    assert_non_null(strstr(d, want));
    assert_true(str_starts_with(d, "RUN:r1:part MSG:s0 MSG:s1 "));
    free(want);
    free(d);
    runlog_free(rl);
}

static void test_many_runs(void **state)
{
    (void)state;
    struct runlog *rl = runlog_new(0);
    char id[32];
    for (int i = 0; i < RUNLOG_MAX_RUNS + 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        request(rl, id, "c", "x", false);
        if (i % 2 == 0)
            idle(rl, id, true);
    }
    size_t n;
    uint8_t *p = runlog_replay(rl, &n);
    char *d = describe(p, n);
    free(p);
    size_t runs = 0;
    for (const char *s = d; (s = strstr(s, "RUN:")); s++)
        runs++;
    assert_int_equal(runs, RUNLOG_MAX_RUNS);
    /* Runs that ended went first: every one still running is there. */
    for (int i = 1; i < RUNLOG_MAX_RUNS + 10; i += 2) {
        char *w = xasprintf("RUN:r%d:", i);
        assert_non_null(strstr(d, w));
        free(w);
    }
    free(d);
    runlog_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_order),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_many_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
