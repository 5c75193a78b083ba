/* The allocation family, the capped byte buffer, and small string, time and file helpers. */
#include "common/util.h"

#include <sodium.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "labbook: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        abort();
    char *p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void *buf_reserve(struct buf *b, size_t n)
{
    if (b->cap_max && (b->len > b->cap_max || n > b->cap_max - b->len))
        return NULL;
    if (b->len + n + 1 > b->alloc) {
        size_t a = b->alloc ? b->alloc : 256;
        while (a < b->len + n + 1)
            a *= 2;
        b->data = xrealloc(b->data, a);
        b->alloc = a;
    }
    return b->data + b->len;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    char *p = buf_reserve(b, n);
    if (!p)
        return -E2BIG;
    if (n)
        memcpy(p, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    int r = buf_append(b, s, strlen(s));
    free(s);
    return r;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

char *buf_steal(struct buf *b, size_t *len)
{
    if (!b->data)
        buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

bool str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void iso8601_from_time(double t, char out[32])
{
    time_t sec = (time_t)t;
    long usec = (long)((t - (double)sec) * 1e6);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char date[24];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%06ldZ", date, usec % 1000000);
}

void iso8601_now(char out[32])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    iso8601_from_time((double)tv.tv_sec + (double)tv.tv_usec / 1e6, out);
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void uuid4_string(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
    char *tmp = xasprintf("%s.~tmp%ld", path, (long)getpid());
    int r = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    r = write_all(fd, data, len);
    if (!r && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && !r)
        r = -errno;
    if (!r && rename(tmp, path) < 0)
        r = -errno;
    if (r)
        unlink(tmp);
out:
    free(tmp);
    return r;
}

int read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct buf b = {.cap_max = max};
    int r = 0;
    for (;;) {
        char *p = buf_reserve(&b, 65536);
        if (!p) {
            r = -EFBIG;
            break;
        }
        ssize_t n = read(fd, p, 65536);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    close(fd);
    if (r) {
        buf_free(&b);
        return r;
    }
    buf_reserve(&b, 0);
    b.data[b.len] = '\0';
    *out = buf_steal(&b, len);
    return 0;
}

static char *title_start;
static size_t title_len;

void proc_title_init(int argc, char **argv)
{
    if (argc < 1)
        return;
    title_start = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    title_len = (size_t)(end - title_start);
}

void proc_title_set(const char *title)
{
    if (!title_start || !title_len)
        return;
    memset(title_start, 0, title_len);
    size_t n = strlen(title);
    memcpy(title_start, title, n < title_len ? n : title_len);
}

int mkdir_p(const char *path, int mode)
{
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
                r = -errno;
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return r;
}

int become_owner_of(const char *path)
{
    struct stat st;
    if (geteuid() != 0 || stat(path, &st) < 0)
        return 0;
    if (st.st_uid == 0) { /* a separated hub's data folder stays root's: its database says */
        char *db = xasprintf("%s/labbook.db", path);
        int r = stat(db, &st);
        free(db);
        if (r < 0 || st.st_uid == 0)
            return 0;
    }
    if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)
        return -errno;
    return 0;
}
