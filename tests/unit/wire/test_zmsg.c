/* Tests for the Jupyter ZeroMQ wire format: signatures against a vector computed with
 * Python's hmac module, tampering, identities, buffers, and a real socket round trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/wsframe.h"
#include "wire/zmsg.h"

static const char KEY[] = "5f2b1c0e9d8a7b6c5f2b1c0e9d8a7b6c5f2b1c0e9d8a7b6c5f2b1c0e9d8a7b6c";
static const char *PARTS[4] = {
    "{\"msg_id\":\"a1\",\"msg_type\":\"execute_request\",\"session\":\"s1\",\"username\":\"u\","
    "\"date\":\"2024-01-01T00:00:00.000000Z\",\"version\":\"5.3\"}",
    "{}",
    "{}",
    "{\"code\":\"print(1)\",\"silent\":false}",
};
/* hmac.HMAC(KEY, digestmod=hashlib.sha256) updated with the four parts, hexdigest(). */
static const char WANT[] = "fb6f8f8203719f0b55070f8c76671e3897650e6e75afd920f60bd9511ed02d98";

static void fill(struct kmsg *m)
{
    memset(m, 0, sizeof(*m));
    m->channel = "shell";
    m->channel_len = 5;
    m->nparts = 4;
    for (int i = 0; i < 4; i++) {
        m->part[i] = (const uint8_t *)PARTS[i];
        m->part_len[i] = strlen(PARTS[i]);
    }
}

static void test_sign_vector(void **state)
{
    (void)state;
    struct zmsg_key k;
    zmsg_key_init(&k, KEY, strlen(KEY));
    struct kmsg m;
    fill(&m);
    char sig[ZMSG_SIG_LEN + 1];
    zmsg_sign(&k, &m, sig);
    assert_string_equal(sig, WANT);
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)WANT, strlen(WANT)), 0);
    /* Upper-case hex is the same signature. */
    char upper[ZMSG_SIG_LEN + 1];
    for (int i = 0; i <= ZMSG_SIG_LEN; i++)
        upper[i] = (char)(WANT[i] >= 'a' && WANT[i] <= 'f' ? WANT[i] - 32 : WANT[i]);
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)upper, ZMSG_SIG_LEN), 0);
    /* Buffers are not signed. */
    m.part[4] = (const uint8_t *)"buf";
    m.part_len[4] = 3;
    m.nparts = 5;
    zmsg_sign(&k, &m, sig);
    assert_string_equal(sig, WANT);
    zmsg_key_free(&k);
}

static void test_tampered(void **state)
{
    (void)state;
    struct zmsg_key k;
    zmsg_key_init(&k, KEY, strlen(KEY));
    struct kmsg m;
    fill(&m);
    /* Changed content. */
    const char *evil = "{\"code\":\"print(2)\",\"silent\":false}";
    m.part[3] = (const uint8_t *)evil;
    m.part_len[3] = strlen(evil);
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)WANT, ZMSG_SIG_LEN), -EBADMSG);
    fill(&m);
    /* Changed signature, short signature, empty signature. */
    char bad[ZMSG_SIG_LEN + 1];
    memcpy(bad, WANT, sizeof(bad));
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)bad, ZMSG_SIG_LEN), -EBADMSG);
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)WANT, ZMSG_SIG_LEN - 1), -EBADMSG);
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)"", 0), -EBADMSG);
    /* Another key. */
    struct zmsg_key k2;
    zmsg_key_init(&k2, "other", 5);
    assert_int_equal(zmsg_verify(&k2, &m, (const uint8_t *)WANT, ZMSG_SIG_LEN), -EBADMSG);
    /* The signature covers the parts' concatenation, as in jupyter_client: bytes moved
     * between parts verify the same (compatibility, not a feature). */
    fill(&m);
    m.part[1] = (const uint8_t *)"{}{}";
    m.part_len[1] = 4;
    m.part[2] = (const uint8_t *)"";
    m.part_len[2] = 0;
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)WANT, ZMSG_SIG_LEN), 0);
    zmsg_key_free(&k);
    zmsg_key_free(&k2);
}

static void test_unsigned_key(void **state)
{
    (void)state;
    struct zmsg_key k;
    zmsg_key_init(&k, "", 0);
    struct kmsg m;
    fill(&m);
    char sig[ZMSG_SIG_LEN + 1];
    zmsg_sign(&k, &m, sig);
    assert_string_equal(sig, "");
    assert_int_equal(zmsg_verify(&k, &m, (const uint8_t *)"", 0), 0);
    zmsg_key_free(&k);
}

static void test_split(void **state)
{
    (void)state;
    const char *fr[] = {"id1",    "id22",   ZMSG_DELIM, WANT, PARTS[0],
                        PARTS[1], PARTS[2], PARTS[3],   "B1", "buffer-2"};
    size_t n = ARRAY_SIZE(fr);
    const uint8_t *ptr[ARRAY_SIZE(fr)];
    size_t len[ARRAY_SIZE(fr)];
    for (size_t i = 0; i < n; i++) {
        ptr[i] = (const uint8_t *)fr[i];
        len[i] = strlen(fr[i]);
    }
    size_t nid = 99;
    const uint8_t *sig = NULL;
    size_t siglen = 0;
    struct kmsg m;
    assert_int_equal(zmsg_split(ptr, len, n, &nid, &sig, &siglen, &m), 0);
    assert_int_equal(nid, 2);
    assert_int_equal(siglen, ZMSG_SIG_LEN);
    assert_memory_equal(sig, WANT, ZMSG_SIG_LEN);
    assert_int_equal(m.nparts, 6);
    assert_memory_equal(m.part[0], PARTS[0], strlen(PARTS[0]));
    assert_int_equal(m.part_len[3], strlen(PARTS[3]));
    assert_int_equal(m.part_len[4], 2);
    assert_memory_equal(m.part[5], "buffer-2", 8);
    struct zmsg_key k;
    zmsg_key_init(&k, KEY, strlen(KEY));
    assert_int_equal(zmsg_verify(&k, &m, sig, siglen), 0);

    /* No identities. */
    assert_int_equal(zmsg_split(ptr + 2, len + 2, n - 2, &nid, &sig, &siglen, &m), 0);
    assert_int_equal(nid, 0);
    /* No delimiter. */
    assert_int_equal(zmsg_split(ptr + 3, len + 3, n - 3, &nid, &sig, &siglen, &m), -EBADMSG);
    /* Too few parts: delimiter, signature, three parts. */
    assert_int_equal(zmsg_split(ptr, len, 7, &nid, &sig, &siglen, &m), -EBADMSG);
    /* Too many identities. */
    const uint8_t *many[ZMSG_MAX_IDENTS + 7];
    size_t manylen[ZMSG_MAX_IDENTS + 7];
    for (size_t i = 0; i < ZMSG_MAX_IDENTS + 1; i++) {
        many[i] = (const uint8_t *)"x";
        manylen[i] = 1;
    }
    for (size_t i = 0; i < 6; i++) {
        many[ZMSG_MAX_IDENTS + 1 + i] = ptr[2 + i];
        manylen[ZMSG_MAX_IDENTS + 1 + i] = len[2 + i];
    }
    assert_int_equal(zmsg_split(many, manylen, ZMSG_MAX_IDENTS + 7, &nid, &sig, &siglen, &m),
                     -EBADMSG);
    assert_int_equal(
        zmsg_split(many + 1, manylen + 1, ZMSG_MAX_IDENTS + 6, &nid, &sig, &siglen, &m), 0);
    assert_int_equal(nid, ZMSG_MAX_IDENTS);
    zmsg_key_free(&k);
}

static void test_v1_prefix(void **state)
{
    (void)state;
    struct kmsg m;
    fill(&m);
    m.part[4] = (const uint8_t *)"\x00\x01\x02";
    m.part_len[4] = 3;
    m.nparts = 5;
    size_t total = wsv1_size(&m);
    uint8_t *want = malloc(total);
    wsv1_write(&m, want);
    size_t pn = zmsg_v1_prefix_size(&m);
    assert_int_equal(pn, 8 * (5 + 3));
    uint8_t *got = malloc(total);
    zmsg_v1_prefix(&m, got);
    size_t off = pn;
    memcpy(got + off, m.channel, m.channel_len);
    off += m.channel_len;
    for (size_t i = 0; i < m.nparts; i++) {
        memcpy(got + off, m.part[i], m.part_len[i]);
        off += m.part_len[i];
    }
    assert_int_equal(off, total);
    assert_memory_equal(got, want, total);
    struct kmsg back;
    assert_int_equal(wsv1_parse(got, total, &back), 0);
    assert_int_equal(back.nparts, 5);
    assert_memory_equal(back.part[4], "\x00\x01\x02", 3);
    free(got);
    free(want);
}

/* A ROUTER/DEALER pair over inproc: the router sees the dealer's identity, the
 * signature verifies, buffers arrive intact, and a tampered message is caught. */
static void test_socket_roundtrip(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "sess-1", 6);
    assert_int_equal(zmq_bind(router, "inproc://zmsg-test"), 0);
    assert_int_equal(zmq_connect(dealer, "inproc://zmsg-test"), 0);

    struct zmsg_key k;
    zmsg_key_init(&k, KEY, strlen(KEY));
    struct kmsg m;
    fill(&m);
    size_t big = 3 << 20;
    uint8_t *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (uint8_t)(i * 7);
    m.part[4] = blob;
    m.part_len[4] = big;
    m.nparts = 5;
    assert_int_equal(zmsg_send(dealer, &k, NULL, NULL, 0, &m), 0);

    struct zmsg_in *in = calloc(1, sizeof(*in));
    assert_int_equal(zmsg_recv(router, in, 0), 0);
    assert_int_equal(in->nidents, 1);
    assert_int_equal(zmq_msg_size(&in->frames[0]), 6);
    assert_memory_equal(zmq_msg_data(&in->frames[0]), "sess-1", 6);
    assert_int_equal(in->sig_len, ZMSG_SIG_LEN);
    assert_memory_equal(in->sig, WANT, ZMSG_SIG_LEN);
    assert_int_equal(zmsg_verify(&k, &in->m, in->sig, in->sig_len), 0);
    assert_int_equal(in->m.nparts, 5);
    assert_int_equal(in->m.part_len[4], big);
    assert_memory_equal(in->m.part[4], blob, big);

    /* Reply through the router with the identity; the dealer gets no identities. */
    const uint8_t *id = zmq_msg_data(&in->frames[0]);
    size_t idlen = 6;
    struct kmsg r;
    fill(&r);
    assert_int_equal(zmsg_send(router, &k, &id, &idlen, 1, &r), 0);
    zmsg_in_close(in);
    assert_int_equal(zmsg_recv(dealer, in, 0), 0);
    assert_int_equal(in->nidents, 0);
    assert_int_equal(zmsg_verify(&k, &in->m, in->sig, in->sig_len), 0);
    zmsg_in_close(in);

    /* Nothing waiting. */
    assert_int_equal(zmsg_recv(dealer, in, ZMQ_DONTWAIT), -EAGAIN);

    /* A message signed with another key arrives but does not verify. */
    struct zmsg_key k2;
    zmsg_key_init(&k2, "wrong", 5);
    assert_int_equal(zmsg_send(dealer, &k2, NULL, NULL, 0, &r), 0);
    assert_int_equal(zmsg_recv(router, in, 0), 0);
    assert_int_equal(zmsg_verify(&k, &in->m, in->sig, in->sig_len), -EBADMSG);
    zmsg_in_close(in);

    /* A message without a delimiter is consumed whole and rejected; the next is fine. */
    zmq_send(dealer, "junk", 4, ZMQ_SNDMORE);
    zmq_send(dealer, "more", 4, 0);
    assert_int_equal(zmsg_send(dealer, &k, NULL, NULL, 0, &r), 0);
    assert_int_equal(zmsg_recv(router, in, 0), -EBADMSG);
    assert_int_equal(in->nframes, 0);
    assert_int_equal(zmsg_recv(router, in, 0), 0);
    assert_int_equal(zmsg_verify(&k, &in->m, in->sig, in->sig_len), 0);
    zmsg_in_close(in);

    /* Too many frames: drained, rejected, and the stream stays in step. */
    for (int i = 0; i < ZMSG_MAX_FRAMES + 5; i++)
        zmq_send(dealer, "f", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "end", 3, 0);
    assert_int_equal(zmsg_send(dealer, &k, NULL, NULL, 0, &r), 0);
    assert_int_equal(zmsg_recv(router, in, 0), -EBADMSG);
    assert_int_equal(zmsg_recv(router, in, 0), 0);
    assert_int_equal(in->m.nparts, 4);
    zmsg_in_close(in);

    free(in);
    free(blob);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
    zmsg_key_free(&k);
    zmsg_key_free(&k2);
}

/* A kernel's JSON parts with bytes that are not UTF-8 (ipykernel's surrogateescape)
 * come out with U+FFFD for each; valid parts and binary buffers are left where they lie. */
static void test_make_text(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(a, "inproc://zmsg-text"), 0);
    assert_int_equal(zmq_connect(b, "inproc://zmsg-text"), 0);
    struct zmsg_key k;
    zmsg_key_init(&k, KEY, strlen(KEY));
    struct kmsg m = {0};
    const char *parts[] = {"{\"msg_id\":\"1\"}", "{}", "{}",
                           "{\"text\":\"a\xff\xfe"
                           "b\"}",
                           "buf\xff"};
    for (int i = 0; i < 5; i++) {
        m.part[i] = (const uint8_t *)parts[i];
        m.part_len[i] = strlen(parts[i]);
    }
    m.nparts = 5;
    assert_int_equal(zmsg_send(a, &k, NULL, NULL, 0, &m), 0);
    struct zmsg_in *in = calloc(1, sizeof(*in));
    assert_int_equal(zmsg_recv(b, in, 0), 0);
    assert_int_equal(zmsg_verify(&k, &in->m, in->sig, in->sig_len), 0);
    const uint8_t *header = in->m.part[0], *buffer = in->m.part[4];
    assert_int_equal(zmsg_in_make_text(in), 1);
    assert_ptr_equal(in->m.part[0], header);
    assert_ptr_equal(in->m.part[4], buffer); /* buffers are bytes, not JSON */
    const char *want = "{\"text\":\"a\xef\xbf\xbd\xef\xbf\xbd"
                       "b\"}";
    assert_int_equal(in->m.part_len[3], strlen(want));
    assert_memory_equal(in->m.part[3], want, strlen(want));
    assert_int_equal(zmsg_in_make_text(in), 0); /* now all text */
    zmsg_in_close(in);
    free(in);
    zmsg_key_free(&k);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vector),  cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_unsigned_key), cmocka_unit_test(test_split),
        cmocka_unit_test(test_v1_prefix),    cmocka_unit_test(test_socket_roundtrip),
        cmocka_unit_test(test_make_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
