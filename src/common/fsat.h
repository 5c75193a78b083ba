/* Paths beneath a root folder, for everything that touches a user's drive: API paths
 * normalised (no ".", "..", doubled or edge '/') and opened with openat2(2)
 * RESOLVE_BENEATH, so that nothing ever resolves outside the root. */
#ifndef LABBOOK_COMMON_FSAT_H
#define LABBOOK_COMMON_FSAT_H

#include <stdint.h>

/* Turns an API path into "a/b/c" ("" for the root): no leading, trailing or doubled
 * '/'. "." and ".." components are refused (-EINVAL), as are over-long names and
 * paths (-ENAMETOOLONG). Caller frees *out. */
int fs_path_normalize(const char *in, char **out);

/* Opens rel ("" is dirfd itself) beneath dirfd: no "..", absolute path or symlink may
 * take it out, and /proc magic links are refused. extra_resolve adds RESOLVE_* flags
 * (RESOLVE_NO_SYMLINKS to refuse every symlink). Returns an O_CLOEXEC fd or a
 * negative errno (-EXDEV when the path would leave dirfd). */
int fs_open_beneath(int dirfd, const char *rel, int flags, uint64_t extra_resolve);

#endif
