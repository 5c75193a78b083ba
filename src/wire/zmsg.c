/* Jupyter's ZeroMQ wire format: splitting, signing, verifying, receiving and sending
 * multipart messages without copying their parts. */
#include "wire/zmsg.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

void zmsg_key_init(struct zmsg_key *k, const void *key, size_t len)
{
    memset(k, 0, sizeof(*k));
    if (!len)
        return;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, key, len, params)) {
        fprintf(stderr, "labbook: OpenSSL has no HMAC-SHA256\n");
        abort();
    }
    EVP_MAC_free(mac); /* the context keeps its own reference */
    k->ctx = ctx;
    k->enabled = true;
}

void zmsg_key_free(struct zmsg_key *k)
{
    EVP_MAC_CTX_free(k->ctx);
    k->ctx = NULL;
    k->enabled = false;
}

static void mac(const struct zmsg_key *k, const struct kmsg *m, uint8_t out[ZMSG_MAC_LEN])
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->ctx);
    size_t outl = 0;
    if (!c)
        abort();
    for (size_t i = 0; i < 4; i++)
        EVP_MAC_update(c, m->part[i], m->part_len[i]);
    EVP_MAC_final(c, out, &outl, ZMSG_MAC_LEN);
    EVP_MAC_CTX_free(c);
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void zmsg_sign(const struct zmsg_key *k, const struct kmsg *m, char sig[ZMSG_SIG_LEN + 1])
{
    if (!k->enabled) {
        sig[0] = '\0';
        return;
    }
    uint8_t h[ZMSG_MAC_LEN];
    mac(k, m, h);
    to_hex(h, sizeof(h), sig);
}

int zmsg_verify(const struct zmsg_key *k, const struct kmsg *m, const uint8_t *sig, size_t siglen)
{
    if (!k->enabled)
        return 0;
    if (siglen != ZMSG_SIG_LEN || m->nparts < 4)
        return -EBADMSG;
    char want[ZMSG_SIG_LEN + 1];
    zmsg_sign(k, m, want);
    /* Peers may write hex in upper case; fold before the constant-time compare. */
    char got[ZMSG_SIG_LEN];
    for (size_t i = 0; i < ZMSG_SIG_LEN; i++) {
        uint8_t c = sig[i];
        got[i] = (char)(c >= 'A' && c <= 'F' ? c + ('a' - 'A') : c);
    }
    return sodium_memcmp(want, got, ZMSG_SIG_LEN) == 0 ? 0 : -EBADMSG;
}

int zmsg_split(const uint8_t *const *frames, const size_t *lens, size_t n, size_t *nidents,
               const uint8_t **sig, size_t *siglen, struct kmsg *m)
{
    size_t d = 0;
    while (d < n && !(lens[d] == ZMSG_DELIM_LEN && !memcmp(frames[d], ZMSG_DELIM, ZMSG_DELIM_LEN)))
        d++;
    if (d == n || d > ZMSG_MAX_IDENTS)
        return -EBADMSG;
    size_t first = d + 2; /* after the delimiter and the signature */
    if (n < first + 4 || n - first > KMSG_MAX_PARTS)
        return -EBADMSG;
    m->channel = "";
    m->channel_len = 0;
    m->nparts = n - first;
    for (size_t i = 0; i < m->nparts; i++) {
        m->part[i] = frames[first + i];
        m->part_len[i] = lens[first + i];
    }
    *nidents = d;
    *sig = frames[d + 1];
    *siglen = lens[d + 1];
    return 0;
}

void zmsg_in_close(struct zmsg_in *in)
{
    for (size_t i = 0; i < in->nframes; i++)
        zmq_msg_close(&in->frames[i]);
    in->nframes = 0;
    in->nidents = 0;
    in->sig = NULL;
    in->sig_len = 0;
    in->m.nparts = 0;
}

int zmsg_in_make_text(struct zmsg_in *in)
{
    int fixed = 0;
    for (size_t i = 0; i < 4 && i < in->m.nparts; i++) {
        size_t f = in->nidents + 2 + i; /* identities, delimiter, signature, parts */
        if (f >= in->nframes || utf8_valid((const char *)in->m.part[i], in->m.part_len[i]))
            continue;
        size_t n;
        char *text = utf8_lossy((const char *)in->m.part[i], in->m.part_len[i], &n);
        zmq_msg_t nm;
        if (zmq_msg_init_size(&nm, n) < 0) {
            free(text);
            continue; /* out of memory: left as it came */
        }
        memcpy(zmq_msg_data(&nm), text, n);
        free(text);
        zmq_msg_move(&in->frames[f], &nm); /* releases what the frame held */
        zmq_msg_close(&nm);
        in->m.part[i] = zmq_msg_data(&in->frames[f]);
        in->m.part_len[i] = n;
        fixed++;
    }
    return fixed;
}

static bool more(void *sock)
{
    int v = 0;
    size_t vl = sizeof(v);
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &v, &vl) == 0 && v;
}

int zmsg_recv(void *sock, struct zmsg_in *in, int flags)
{
    in->nframes = 0;
    int r = 0;
    bool overflow = false;
    for (;;) {
        zmq_msg_t spill, *f = &spill;
        if (in->nframes < ZMSG_MAX_FRAMES)
            f = &in->frames[in->nframes];
        else
            overflow = true; /* too many frames: drain them so the next message starts clean */
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, in->nframes == 0 && !overflow ? flags : 0) < 0) {
            r = -zmq_errno();
            zmq_msg_close(f);
            goto fail;
        }
        bool m = zmq_msg_more(f);
        if (f == &spill)
            zmq_msg_close(f);
        else
            in->nframes++;
        if (!m)
            break;
    }
    if (overflow) {
        r = -EBADMSG;
        goto fail;
    }
    const uint8_t *ptr[ZMSG_MAX_FRAMES];
    size_t len[ZMSG_MAX_FRAMES];
    for (size_t i = 0; i < in->nframes; i++) {
        ptr[i] = zmq_msg_data(&in->frames[i]);
        len[i] = zmq_msg_size(&in->frames[i]);
    }
    r = zmsg_split(ptr, len, in->nframes, &in->nidents, &in->sig, &in->sig_len, &in->m);
    if (r < 0)
        goto fail;
    return 0;
fail:
    /* A failure mid-message (interrupted) leaves the rest queued: drain it. */
    if (r != -EAGAIN && r != -EBADMSG && in->nframes && more(sock)) {
        zmq_msg_t f;
        do {
            zmq_msg_init(&f);
            if (zmq_msg_recv(&f, sock, 0) < 0) {
                zmq_msg_close(&f);
                break;
            }
            zmq_msg_close(&f);
        } while (more(sock));
    }
    zmsg_in_close(in);
    return r;
}

static int send_part(void *sock, const void *p, size_t n, bool last)
{
    for (;;) {
        if (zmq_send(sock, p, n, last ? 0 : ZMQ_SNDMORE) >= 0)
            return 0;
        if (zmq_errno() != EINTR)
            return -zmq_errno();
    }
}

int zmsg_send(void *sock, const struct zmsg_key *k, const uint8_t *const *idents,
              const size_t *ident_lens, size_t nidents, const struct kmsg *m)
{
    char sig[ZMSG_SIG_LEN + 1];
    zmsg_sign(k, m, sig);
    int r;
    for (size_t i = 0; i < nidents; i++)
        if ((r = send_part(sock, idents[i], ident_lens[i], false)) < 0)
            return r;
    if ((r = send_part(sock, ZMSG_DELIM, ZMSG_DELIM_LEN, false)) < 0 ||
        (r = send_part(sock, sig, strlen(sig), false)) < 0)
        return r;
    for (size_t i = 0; i < m->nparts; i++)
        if ((r = send_part(sock, m->part[i], m->part_len[i], i + 1 == m->nparts)) < 0)
            return r;
    return 0;
}

size_t zmsg_v1_prefix_size(const struct kmsg *m)
{
    return 8 * (m->nparts + 3);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void zmsg_v1_prefix(const struct kmsg *m, uint8_t *out)
{
    size_t n = m->nparts + 2;
    put_u64(out, n);
    uint64_t off = 8 * (n + 1);
    put_u64(out + 8, off);
    off += m->channel_len;
    for (size_t i = 0; i < m->nparts; i++) {
        put_u64(out + 8 * (i + 2), off);
        off += m->part_len[i];
    }
    put_u64(out + 8 * (n), off);
}
