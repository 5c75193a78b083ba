/* Resumable uploads into the drive with the tus 1.0 protocol at /api/uploads/:
 * core, creation, creation-with-upload, termination, expiration and checksum
 * (sha1, sha256). Upload state lives on disk (DATA/uploads/<user>/<id>.part and
 * <id>.json), so an upload resumes across dropped connections and hub restarts.
 * See docs/drive.md. */
#ifndef LABBOOK_HUB_TUS_H
#define LABBOOK_HUB_TUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hub;
struct http_req;

/* Handles every /api/uploads request before its body is read (rest follows
 * "/api/uploads"); PATCH bodies go straight to the upload's file. */
void tus_handle(struct hub *h, struct http_req *req, const char *rest);

/* Called once a second: every 10 minutes (and at start) deletes, on the thread
 * pool, uploads idle for longer than upload_expire_h, of every user. */
void tus_tick(struct hub *h);

/* --- parsers, pure (unit-tested) --- */

/* The value of key in an Upload-Metadata header ("k1 base64,k2 base64,k3"): a new
 * NUL-terminated string (caller frees; "" for a key without value). Returns 0,
 * -ENOENT when the key is absent, -EINVAL for a malformed header or a value with a
 * NUL byte. */
int tus_metadata_get(const char *header, const char *key, char **out);

enum tus_algo { TUS_SHA1 = 1, TUS_SHA256 = 2 };
/* Parses Upload-Checksum ("sha1 BASE64"): the algorithm and the decoded digest,
 * whose length must be the algorithm's. Returns 0, -ENOTSUP for another algorithm,
 * -EINVAL when malformed. */
int tus_parse_checksum(const char *header, enum tus_algo *algo, unsigned char digest[32],
                       size_t *len);
/* Parses a non-negative decimal offset or length (no sign, no spaces, at most 18
 * digits). Returns 0 or -EINVAL. */
int tus_parse_size(const char *s, int64_t *out);
/* Checks an uploaded file's name: one path component, not hidden, no NUL or '/',
 * at most 255 bytes. */
bool tus_name_ok(const char *name);

#endif
