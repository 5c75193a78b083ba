/* The Jupyter wire protocol over ZeroMQ: a multipart message is the routing
 * identities, the "<IDS|MSG>" delimiter, an hmac-sha256 hex signature over header,
 * parent_header, metadata and content, those four parts, and any buffers.
 */
#ifndef LABBOOK_WIRE_ZMSG_H
#define LABBOOK_WIRE_ZMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>
#include <zmq.h>

#include "wire/wsframe.h"

#define ZMSG_DELIM "<IDS|MSG>"
#define ZMSG_DELIM_LEN 9
#define ZMSG_MAC_LEN 32
#define ZMSG_SIG_LEN 64 /* hex hmac-sha256 */
#define ZMSG_MAX_IDENTS 16
#define ZMSG_MAX_FRAMES (ZMSG_MAX_IDENTS + 2 + KMSG_MAX_PARTS)

/* The signing key: an HMAC-SHA256 context that has absorbed the key, duplicated for
 * each message. OpenSSL's, not libsodium's: with SHA-NI it hashes at about 1.2 GB/s
 * against libsodium's 250 MB/s, which decided the speed of large outputs
 * (docs/benchmarks.md). A key of length 0 means "no signing" (signature "",
 * anything verifies), as in jupyter_client. */
struct zmsg_key {
    void *ctx; /* EVP_MAC_CTX */
    bool enabled;
};

/* Sets up k from the key bytes (for Jupyter, the ASCII of the connection file's
 * "key", used as is). Free with zmsg_key_free. */
void zmsg_key_init(struct zmsg_key *k, const void *key, size_t len);
void zmsg_key_free(struct zmsg_key *k);

/* Writes the lower-case hex signature of m's first four parts into sig (NUL-terminated;
 * "" where k is not enabled). m must have at least 4 parts. */
void zmsg_sign(const struct zmsg_key *k, const struct kmsg *m, char sig[ZMSG_SIG_LEN + 1]);

/* Checks sig (siglen bytes, not NUL-terminated) against m in constant time.
 * Returns 0 or -EBADMSG. */
int zmsg_verify(const struct zmsg_key *k, const struct kmsg *m, const uint8_t *sig, size_t siglen);

/* Splits the frames of one multipart message (n frames, borrowed) into identities
 * (frames [0, *nidents)), the signature and m (channel left empty; parts point into
 * the frames). Returns 0, or -EBADMSG without a delimiter, with too many identities,
 * fewer than 4 parts after the signature or more than KMSG_MAX_PARTS. */
int zmsg_split(const uint8_t *const *frames, const size_t *lens, size_t n, size_t *nidents,
               const uint8_t **sig, size_t *siglen, struct kmsg *m);

/* One message as received from a socket: the frames stay in their zmq_msg_t (no
 * copy) and m and sig point into them. Owned by the caller; release with
 * zmsg_in_close. */
struct zmsg_in {
    size_t nframes;
    size_t nidents;
    const uint8_t *sig;
    size_t sig_len;
    struct kmsg m;
    zmq_msg_t frames[ZMSG_MAX_FRAMES];
};

/* Receives one whole multipart message from sock into in (flags: 0 or ZMQ_DONTWAIT,
 * which applies to the first frame only). Returns 0; -EAGAIN where nothing is
 * waiting; -EBADMSG for a malformed message (all its frames consumed, in is
 * empty); or another negative errno from ZeroMQ. On failure in holds nothing. The
 * caller checks the signature with zmsg_verify. */
int zmsg_recv(void *sock, struct zmsg_in *in, int flags);

/* Releases the frames held by in (in may be empty or half-filled). */
void zmsg_in_close(struct zmsg_in *in);

/* Makes the four JSON parts of a received message (header, parent_header, metadata,
 * content) valid UTF-8: a part with bytes that are not (ipykernel encodes its messages
 * with errors="surrogateescape", so a str holding surrogates goes out raw) is replaced
 * by a copy with U+FFFD for each such byte (common/utf8.h), and m points at the copy.
 * Call after zmsg_verify: the signature is over the bytes as sent. Returns how many
 * parts it replaced. */
int zmsg_in_make_text(struct zmsg_in *in);

/* Signs m and sends it on sock after nidents identities (borrowed, copied by
 * ZeroMQ). Returns 0 or a negative errno from ZeroMQ. */
int zmsg_send(void *sock, const struct zmsg_key *k, const uint8_t *const *idents,
              const size_t *ident_lens, size_t nidents, const struct kmsg *m);

/* Size of the v1 prefix (u64le n and n u64le offsets, wsframe.h) of m's serialization:
 * 8 * (m->nparts + 3). */
size_t zmsg_v1_prefix_size(const struct kmsg *m);

/* Writes the v1 prefix of m into out (zmsg_v1_prefix_size(m) bytes); followed by the
 * channel and the parts, it is wsv1_write's output, so a writer can send the parts
 * with writev straight from where they lie. */
void zmsg_v1_prefix(const struct kmsg *m, uint8_t *out);

#endif
