/* Small shared helpers: the allocation family that aborts on out-of-memory (callers
 * never check), a growable byte buffer with a cap, and string helpers. */
#ifndef LABBOOK_COMMON_UTIL_H
#define LABBOOK_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type t whose member m is at ptr. */
#define container_of(ptr, t, m) ((t *)((char *)(ptr)-offsetof(t, m)))

/* Allocation that never returns NULL: on failure it prints and aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string, owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* A growable byte buffer. `cap_max` (0: unlimited) bounds what it may hold:
 * appends past it fail with -E2BIG and leave the buffer as it was. The data is
 * always NUL-terminated one past `len` for convenience. */
struct buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap_max;
};

int buf_append(struct buf *b, const void *data, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes and returns a pointer to them (NULL past the cap);
 * add what was written there to len. */
void *buf_reserve(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the data over to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b, size_t *len);

bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);
/* Parses a whole decimal integer within [min, max]; returns 0 or -EINVAL/-ERANGE. */
int str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Current time: monotonic in ms, and wall clock as ISO 8601 UTC ("2026-11-26T10:00:00.123456Z"). */
uint64_t now_ms(void);
void iso8601_now(char out[32]);
void iso8601_from_time(double t, char out[32]);

/* Writes all len bytes to fd, retrying short writes and EINTR. Returns 0 or -errno. */
int write_all(int fd, const void *data, size_t len);
/* A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
void uuid4_string(char out[37]);

/* Writes `len` bytes to path atomically: temporary file beside it, fsync, rename.
 * Returns 0 or a negative errno. */
int write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Reads a whole file (up to max bytes) into a new NUL-terminated buffer. */
int read_file(const char *path, size_t max, char **out, size_t *len);
/* The process's title as ps and /proc/PID/cmdline show it. proc_title_init keeps the
 * program's argument area (from main); proc_title_set overwrites it in place, cut to
 * its size (so a forked copy of the agent that stays inside a sandbox does not show
 * the host's paths). */
void proc_title_init(int argc, char **argv);
void proc_title_set(const char *title);

/* mkdir -p with the given mode. */
int mkdir_p(const char *path, int mode);

/* As root, becomes the owner of path (uid, gid, no supplementary groups) when that is
 * not root (or, for a data folder that is root's, as a separated hub leaves it, the
 * owner of path/labbook.db): the CLI then writes a data folder owned by the hub's user
 * as that user. Does nothing otherwise. Returns 0 or a negative errno. */
int become_owner_of(const char *path);

#endif
