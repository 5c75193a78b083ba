/* Paths beneath a root folder, for everything that touches a user's drive: API paths
 * normalised (no ".", "..", doubled or edge '/') and opened with openat2(2)
 * RESOLVE_BENEATH, so that nothing ever resolves outside the root. */
#ifndef LABBOOK_COMMON_FSAT_H
#define LABBOOK_COMMON_FSAT_H

#include <stdbool.h>
#include <stddef.h>
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

/* Whether name is one entry name: not empty, ".", "..", over NAME_MAX, nor with a '/'. */
bool fs_name_ok(const char *name);

/* fs_remove_tree flags. */
enum {
    FS_RM_ONE_FS = 1,   /* leave other file systems (mount points) where they are: -EXDEV */
    FS_RM_WRITABLE = 2, /* make folders writable and searchable first, through the fd that
                           was opened (unprivileged: rootless overlays hold read-only ones) */
};
#define FS_RM_MAX_DEPTH 256

/* Removes the entry name of dirfd (one name, fs_name_ok) and, if it is a folder,
 * everything below it. Every step is an *at() call on a folder opened O_NOFOLLOW beneath
 * the last, so a symlink (even one swapped in while it runs) is removed itself, never
 * followed; nothing is chmodded or removed outside dirfd. A missing name is 0. It goes on
 * past errors and returns the first (-ELOOP past FS_RM_MAX_DEPTH levels), or 0. */
int fs_remove_tree(int dirfd, const char *name, unsigned flags);

/* fs_remove_tree of path's last name, in the folder path names (opened as given: for
 * paths the caller made itself, not ones a client or kernel sent). */
int fs_remove_path(const char *path, unsigned flags);

/* Removes the folders of rel ("a/b/c", normalised) beyond its first `keep` bytes, deepest
 * first, each only while it is empty: those a failed operation made. Each is reached
 * beneath dirfd with RESOLVE_NO_SYMLINKS, so a link swapped in stops it. Returns 0 or
 * the negative errno that stopped it. */
int fs_remove_empty_dirs(int dirfd, const char *rel, size_t keep);

/* The sum of the sizes of the regular files beneath dirfd, which it closes: folders are
 * entered O_NOFOLLOW (links count nothing), at most FS_RM_MAX_DEPTH deep; what cannot be
 * read counts 0. The drive's usage, for the hub's API and the agent's quota watcher. */
int64_t fs_tree_size(int dirfd);

#endif
