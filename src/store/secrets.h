/* Each user's secrets in the store (google.colab.userdata, docs/colab.md): a name, the
 * value as the hub sealed it (the store never sees a plain value; hub/secrets.c holds
 * the key) and the notebooks that may read it. Functions return 0 or a negative errno
 * (-ENOENT: no such secret, -EDQUOT: over a cap, -EIO: database error); they do not
 * log. */
#ifndef LABBOOK_STORE_SECRETS_H
#define LABBOOK_STORE_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_SECRETS_MAX 256 /* secrets per user */
#define STORE_GRANTS_MAX 1024 /* notebooks per secret */

/* One secret as listed: no value. */
struct store_secret {
    const char *name;
    int64_t created, updated; /* unix seconds */
    bool granted;             /* the notebook asked about may read it */
};

/* Creates or replaces user_id's secret name with this sealed value; *created (may be
 * NULL) says whether it is new. -EDQUOT when a new one would be over STORE_SECRETS_MAX. */
int store_secret_put(struct store *s, int64_t user_id, const char *name, const void *nonce,
                     size_t nonce_len, const void *sealed, size_t sealed_len, bool *created);
/* The sealed value (*nonce and *sealed: caller frees) and times; -ENOENT. */
int store_secret_get(struct store *s, int64_t user_id, const char *name, uint8_t **nonce,
                     size_t *nonce_len, uint8_t **sealed, size_t *sealed_len,
                     struct store_secret *info);
/* Deletes the secret and its grants; -ENOENT. */
int store_secret_delete(struct store *s, int64_t user_id, const char *name);
/* Calls cb for each secret of the user, in name order; granted says whether notebook
 * (NULL: none) may read it. */
int store_secret_list(struct store *s, int64_t user_id, const char *notebook,
                      void (*cb)(void *ctx, const struct store_secret *sec), void *ctx);
/* Lets notebook read the secret (on) or no longer (off); -ENOENT for no such secret,
 * -EDQUOT over STORE_GRANTS_MAX. */
int store_secret_grant(struct store *s, int64_t user_id, const char *name, const char *notebook,
                       bool on);
/* Calls cb for each notebook that may read the secret, in order; -ENOENT. */
int store_secret_notebooks(struct store *s, int64_t user_id, const char *name,
                           void (*cb)(void *ctx, const char *notebook), void *ctx);
/* Whether notebook may read the secret: *granted; -ENOENT for no such secret. */
int store_secret_granted(struct store *s, int64_t user_id, const char *name, const char *notebook,
                         bool *granted);

#endif
