/* Tests for the hub <-> agent stream framing (wire/stream.c): headers, frames split at
 * every byte boundary, several frames per feed, size limits and callback errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/stream.h"

#define MAX_SEEN 16

struct seen {
    size_t n;
    enum stream_type type[MAX_SEEN];
    uint8_t *payload[MAX_SEEN];
    size_t len[MAX_SEEN];
    int fail_at; /* return -EPROTO on this frame (1-based), 0: never */
};

static int on_frame(void *ctx, enum stream_type type, const uint8_t *payload, size_t len)
{
    struct seen *s = ctx;
    assert_true(s->n < MAX_SEEN);
    if (s->fail_at && (size_t)s->fail_at == s->n + 1)
        return -EPROTO;
    s->type[s->n] = type;
    s->payload[s->n] = malloc(len ? len : 1);
    if (len)
        memcpy(s->payload[s->n], payload, len);
    s->len[s->n] = len;
    s->n++;
    return 0;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->payload[i]);
    memset(s, 0, sizeof *s);
}

/* Appends one frame to a byte array. */
static size_t put_frame(uint8_t *out, enum stream_type type, const void *payload, size_t n)
{
    stream_header(out, type, n);
    if (n)
        memcpy(out + STREAM_HEADER_LEN, payload, n);
    return STREAM_HEADER_LEN + n;
}

static void test_header(void **state)
{
    (void)state;
    uint8_t h[STREAM_HEADER_LEN];
    stream_header(h, STREAM_MSG, 0x01020304 - 1);
    assert_memory_equal(h, "\x04\x03\x02\x01\x02", 5);
    stream_header(h, STREAM_SHUTDOWN, 0);
    assert_memory_equal(h, "\x01\x00\x00\x00\x06", 5);
}

/* Three frames (one empty) in one buffer, as a reference stream. */
static size_t sample(uint8_t *buf)
{
    size_t n = 0;
    n += put_frame(buf + n, STREAM_HELLO, "{\"id\":\"r1\"}", 11);
    n += put_frame(buf + n, STREAM_INTERRUPT, NULL, 0);
    n += put_frame(buf + n, STREAM_MSG, "\x00\x01payload\xff", 10);
    return n;
}

static void assert_sample(const struct seen *s)
{
    assert_int_equal(s->n, 3);
    assert_int_equal(s->type[0], STREAM_HELLO);
    assert_int_equal(s->len[0], 11);
    assert_memory_equal(s->payload[0], "{\"id\":\"r1\"}", 11);
    assert_int_equal(s->type[1], STREAM_INTERRUPT);
    assert_int_equal(s->len[1], 0);
    assert_int_equal(s->type[2], STREAM_MSG);
    assert_int_equal(s->len[2], 10);
    assert_memory_equal(s->payload[2], "\x00\x01payload\xff", 10);
}

static void test_one_feed(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    struct stream_decoder d = {.max_frame = 1024};
    struct seen s = {0};
    assert_int_equal(stream_decoder_feed(&d, buf, n, on_frame, &s), 0);
    assert_sample(&s);
    assert_int_equal(d.in.len, 0);
    seen_free(&s);
    stream_decoder_free(&d);
}

static void test_split_everywhere(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    /* two pieces, cut at every boundary */
    for (size_t cut = 0; cut <= n; cut++) {
        struct stream_decoder d = {.max_frame = 1024};
        struct seen s = {0};
        assert_int_equal(stream_decoder_feed(&d, buf, cut, on_frame, &s), 0);
        assert_int_equal(stream_decoder_feed(&d, buf + cut, n - cut, on_frame, &s), 0);
        assert_sample(&s);
        assert_int_equal(d.in.len, 0);
        seen_free(&s);
        stream_decoder_free(&d);
    }
    /* three pieces, both cuts everywhere */
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            struct stream_decoder d = {.max_frame = 1024};
            struct seen s = {0};
            assert_int_equal(stream_decoder_feed(&d, buf, a, on_frame, &s), 0);
            assert_int_equal(stream_decoder_feed(&d, buf + a, b - a, on_frame, &s), 0);
            assert_int_equal(stream_decoder_feed(&d, buf + b, n - b, on_frame, &s), 0);
            assert_sample(&s);
            seen_free(&s);
            stream_decoder_free(&d);
        }
    }
    /* one byte at a time */
    struct stream_decoder d = {.max_frame = 1024};
    struct seen s = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(stream_decoder_feed(&d, buf + i, 1, on_frame, &s), 0);
    assert_sample(&s);
    seen_free(&s);
    stream_decoder_free(&d);
}

static void test_oversize(void **state)
{
    (void)state;
    uint8_t buf[64];
    uint8_t payload[17] = {0};
    /* exactly max_frame is fine, one more is not */
    struct stream_decoder d = {.max_frame = 16};
    struct seen s = {0};
    size_t n = put_frame(buf, STREAM_MSG, payload, 16);
    assert_int_equal(stream_decoder_feed(&d, buf, n, on_frame, &s), 0);
    assert_int_equal(s.n, 1);
    n = put_frame(buf, STREAM_MSG, payload, 17);
    assert_int_equal(stream_decoder_feed(&d, buf, n, on_frame, &s), -EMSGSIZE);
    assert_int_equal(s.n, 1);
    stream_decoder_free(&d);

    /* refused as soon as the header is in, before the payload arrives (buffered path) */
    memset(&d, 0, sizeof d);
    d.max_frame = 16;
    stream_header(buf, STREAM_MSG, 1u << 30);
    assert_int_equal(stream_decoder_feed(&d, buf, 3, on_frame, &s), 0);
    assert_int_equal(stream_decoder_feed(&d, buf + 3, 2, on_frame, &s), -EMSGSIZE);
    stream_decoder_free(&d);

    /* a length of 0 (no type byte) is malformed; so is 0xffffffff */
    memset(&d, 0, sizeof d);
    d.max_frame = 16;
    memcpy(buf, "\x00\x00\x00\x00\x02", 5);
    assert_int_equal(stream_decoder_feed(&d, buf, 5, on_frame, &s), -EMSGSIZE);
    memcpy(buf, "\xff\xff\xff\xff\x02", 5);
    assert_int_equal(stream_decoder_feed(&d, buf, 5, on_frame, &s), -EMSGSIZE);
    stream_decoder_free(&d);
    /* even with no size limit, in both the direct and the buffered path */
    d.max_frame = SIZE_MAX;
    memcpy(buf, "\x00\x00\x00\x00\x02", 5);
    assert_int_equal(stream_decoder_feed(&d, buf, 5, on_frame, &s), -EMSGSIZE);
    assert_int_equal(stream_decoder_feed(&d, buf, 2, on_frame, &s), 0);
    assert_int_equal(stream_decoder_feed(&d, buf + 2, 3, on_frame, &s), -EMSGSIZE);
    assert_int_equal(s.n, 1); /* only the good frame at the start of this test */
    stream_decoder_free(&d);

    /* an oversize frame behind a good one in the same feed */
    memset(&d, 0, sizeof d);
    d.max_frame = 16;
    n = put_frame(buf, STREAM_STATE, "{}", 2);
    n += put_frame(buf + n, STREAM_MSG, payload, 17);
    assert_int_equal(stream_decoder_feed(&d, buf, n, on_frame, &s), -EMSGSIZE);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.type[1], STREAM_STATE);
    seen_free(&s);
    stream_decoder_free(&d);
}

static void test_callback_error(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    for (int fail = 1; fail <= 3; fail++) {
        for (size_t cut = 0; cut <= n; cut += 7) {
            struct stream_decoder d = {.max_frame = 1024};
            struct seen s = {.fail_at = fail};
            int r = stream_decoder_feed(&d, buf, cut, on_frame, &s);
            if (r == 0)
                r = stream_decoder_feed(&d, buf + cut, n - cut, on_frame, &s);
            assert_int_equal(r, -EPROTO);
            assert_int_equal(s.n, (size_t)fail - 1);
            seen_free(&s);
            stream_decoder_free(&d);
        }
    }
}

static void test_large_frame(void **state)
{
    (void)state;
    const size_t big = 3 * 1024 * 1024 + 5;
    uint8_t *buf = malloc(big + 2 * STREAM_HEADER_LEN + 1);
    stream_header(buf, STREAM_MSG, big);
    for (size_t i = 0; i < big; i++)
        buf[STREAM_HEADER_LEN + i] = (uint8_t)(i * 7);
    size_t n = STREAM_HEADER_LEN + big;
    n += put_frame(buf + n, STREAM_RESTART, NULL, 0);
    struct stream_decoder d = {.max_frame = 4 * 1024 * 1024};
    struct seen s = {0};
    /* in uneven chunks, as a socket would deliver it */
    for (size_t off = 0; off < n;) {
        size_t c = n - off < 65521 ? n - off : 65521;
        assert_int_equal(stream_decoder_feed(&d, buf + off, c, on_frame, &s), 0);
        off += c;
    }
    assert_int_equal(s.n, 2);
    assert_int_equal(s.len[0], big);
    assert_memory_equal(s.payload[0], buf + STREAM_HEADER_LEN, big);
    assert_int_equal(s.type[1], STREAM_RESTART);
    assert_int_equal(d.in.len, 0);
    assert_true(d.in.alloc <= 1024 * 1024); /* the big frame's memory was released */
    seen_free(&s);
    stream_decoder_free(&d);
    free(buf);
}

/* STREAM_FILE payloads: JSON and data round-trip; a length past the end is refused. */
static void test_file_payload(void **state)
{
    (void)state;
    size_t n;
    uint8_t *p = stream_file_pack("{\"req\":1}", 9, "abc", 3, &n);
    assert_int_equal(n, 4 + 9 + 3);
    const char *js;
    const uint8_t *data;
    size_t jlen, dlen;
    assert_int_equal(stream_file_split(p, n, &js, &jlen, &data, &dlen), 0);
    assert_int_equal(jlen, 9);
    assert_memory_equal(js, "{\"req\":1}", 9);
    assert_int_equal(dlen, 3);
    assert_memory_equal(data, "abc", 3);
    assert_int_equal(stream_file_split(p, 3, &js, &jlen, &data, &dlen), -EBADMSG);
    assert_int_equal(stream_file_split(p, 13, &js, &jlen, &data, &dlen), 0);
    assert_int_equal(dlen, 0);
    assert_int_equal(stream_file_split(p, 12, &js, &jlen, &data, &dlen), -EBADMSG);
    p[3] = 0xff; /* a length of ~4 GiB */
    assert_int_equal(stream_file_split(p, n, &js, &jlen, &data, &dlen), -EBADMSG);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),           cmocka_unit_test(test_one_feed),
        cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_callback_error),   cmocka_unit_test(test_large_frame),
        cmocka_unit_test(test_file_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
