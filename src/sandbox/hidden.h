/* What a runtime must not read of the host's root (docs/sandbox.md, "What an
 * unprivileged user could not read"): the files and folders of the root filesystem
 * that "other" could not read, found by a walk that is cached, and hidden in a
 * runtime's overlay by empty stand-ins in its upper layer. */
#ifndef LABBOOK_SANDBOX_HIDDEN_H
#define LABBOOK_SANDBOX_HIDDEN_H

#include <stddef.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* Where the cached lists live (root's only). */
#define HIDDEN_CACHE_DIR "/run/labbook-sandbox"
/* A list older than this is refreshed by a background walk (the old one serves
 * meanwhile); with none, the walk happens at once. */
#define HIDDEN_REFRESH_S 300

/* One entry: 'd' a folder that "other" cannot list or enter, 'f' anything else that
 * "other" cannot read (a socket or FIFO: cannot write); path is absolute, within the
 * image's root filesystem. */
struct hidden_list {
    char *buf; /* records "<type><path>\0" */
    size_t len;
    size_t count;
};

/* The entries of root_image (on its own filesystem; folders in skip[], hidden by other
 * means, are not walked) that an unprivileged user could not read: from the cache when
 * there is one, else walked now. Fills *out (free with hidden_list_free). Returns 0 or
 * a negative errno with err set. */
int hidden_get(const char *root_image, const char *const *skip, size_t nskip,
               struct hidden_list *out, struct sandbox_error *err);

/* Walks root_image now (no cache). */
int hidden_walk(const char *root_image, const char *const *skip, size_t nskip,
                struct hidden_list *out, struct sandbox_error *err);

/* Makes each entry's stand-in in the overlay's upper layer (an empty file, or an empty
 * opaque folder, with the original's mode and its owner shifted by id_base, parents
 * copied as a copy-up would), unless the upper layer has something there already.
 * Returns 0 or a negative errno with err set. */
int hidden_prepare_upper(const struct hidden_list *l, const char *root_image, const char *upper,
                         uid_t id_base, struct sandbox_error *err);

void hidden_list_free(struct hidden_list *l);

#endif
