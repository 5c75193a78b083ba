/* libFuzzer target: the ZeroMQ messages the agent reads from the kernel (wire/zmsg.c):
 * frames split into identities, signature and parts, the signature checked, the JSON
 * parts made valid UTF-8 (zmsg_in_make_text) and the message written in the v1 form the
 * hub parses. Input: frames, each a u16 little-endian length and that many bytes; a
 * first byte that is odd signs the message correctly, so that the code past the check
 * is reached. After make_text the four JSON parts are valid UTF-8, and parts that were
 * already are untouched. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/utf8.h"
#include "wire/wsframe.h"
#include "wire/zmsg.h"

static struct zmsg_key key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key.enabled)
        zmsg_key_init(&key, "fuzz-key", 8);
    if (size < 1)
        return 0;
    bool sign = data[0] & 1;
    data++;
    size--;
    struct zmsg_in *in = calloc(1, sizeof(*in));
    const uint8_t *ptr[ZMSG_MAX_FRAMES];
    size_t len[ZMSG_MAX_FRAMES];
    size_t off = 0;
    while (off + 2 <= size && in->nframes < ZMSG_MAX_FRAMES) {
        size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (n > size - off)
            n = size - off;
        zmq_msg_init_size(&in->frames[in->nframes], n);
        memcpy(zmq_msg_data(&in->frames[in->nframes]), data + off, n);
        in->nframes++;
        off += n;
    }
    for (size_t i = 0; i < in->nframes; i++) {
        ptr[i] = zmq_msg_data(&in->frames[i]);
        len[i] = zmq_msg_size(&in->frames[i]);
    }
    if (zmsg_split(ptr, len, in->nframes, &in->nidents, &in->sig, &in->sig_len, &in->m) < 0)
        goto out;
    if (in->nidents + 2 + in->m.nparts != in->nframes || in->m.nparts < 4 ||
        in->m.nparts > KMSG_MAX_PARTS)
        abort();
    char sig[ZMSG_SIG_LEN + 1];
    zmsg_sign(&key, &in->m, sig);
    if (zmsg_verify(&key, &in->m, (const uint8_t *)sig, strlen(sig)) < 0)
        abort(); /* its own signature must verify */
    if (!sign && zmsg_verify(&key, &in->m, in->sig, in->sig_len) < 0)
        goto out;
    bool was_valid[4];
    for (size_t i = 0; i < 4; i++)
        was_valid[i] = utf8_valid((const char *)in->m.part[i], in->m.part_len[i]);
    const uint8_t *before[4];
    memcpy(before, in->m.part, sizeof(before));
    zmsg_in_make_text(in);
    for (size_t i = 0; i < 4; i++) {
        if (!utf8_valid((const char *)in->m.part[i], in->m.part_len[i]))
            abort();
        if (was_valid[i] && in->m.part[i] != before[i])
            abort();
    }
    /* As the agent sends it on and the hub reads it back. */
    in->m.channel = "iopub";
    in->m.channel_len = 5;
    size_t pre = zmsg_v1_prefix_size(&in->m), total = pre + in->m.channel_len;
    for (size_t i = 0; i < in->m.nparts; i++)
        total += in->m.part_len[i];
    uint8_t *v1 = malloc(total);
    zmsg_v1_prefix(&in->m, v1);
    size_t at = pre;
    memcpy(v1 + at, in->m.channel, in->m.channel_len);
    at += in->m.channel_len;
    for (size_t i = 0; i < in->m.nparts; i++) {
        if (in->m.part_len[i])
            memcpy(v1 + at, in->m.part[i], in->m.part_len[i]);
        at += in->m.part_len[i];
    }
    struct kmsg back;
    if (wsv1_parse(v1, total, &back) < 0 || back.nparts != in->m.nparts)
        abort();
    for (size_t i = 0; i < back.nparts; i++)
        if (back.part_len[i] != in->m.part_len[i] ||
            memcmp(back.part[i], in->m.part[i], back.part_len[i]))
            abort();
    free(v1);
out:
    zmsg_in_close(in);
    free(in);
    return 0;
}
