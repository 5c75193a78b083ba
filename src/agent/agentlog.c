/* The agent's capped log (agentlog.h): one writer for the agent's own lines and its
 * kernel's output, a size cap with one rotation, and rate limits that count what they
 * hold back. Single-threaded: the agent's loop and log.c's sink call it. */
#include "agent/agentlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define LAST_MAX 512
#define REPEAT_EVERY_MS 5000

static struct {
    bool started, regular, rotate;
    int fd, dirfd;
    char name[64];
    uint64_t size, max;
    /* the agent's own lines */
    unsigned lines_per_s;
    double line_tokens;
    uint64_t line_ms;
    uint64_t suppressed;
    char last[LAST_MAX];
    size_t last_len;
    uint64_t repeats, repeat_since;
    /* the kernel's output */
    uint64_t kernel_rate;
    double kernel_tokens;
    uint64_t kernel_ms, dropped;
    bool dropping; /* until a second's worth is back: one notice per episode */
} L = {.fd = -1, .dirfd = -1};

static void rotate(void)
{
    if (!L.rotate)
        return;
    char old[80];
    snprintf(old, sizeof(old), "%s.1", L.name);
    if (renameat(L.dirfd, L.name, L.dirfd, old) < 0)
        return;
    int fd = openat(L.dirfd, L.name,
                    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* then nothing more is written: the cap holds */
    close(L.fd);
    L.fd = fd;
    L.size = 0;
}

/* Writes n bytes, within the cap: rotated first when they would pass it, cut when they
 * still would. */
static void write_out(const char *p, size_t n)
{
    if (!L.started) {
        write_all(2, p, n);
        return;
    }
    if (L.regular) {
        if (L.size + n > L.max)
            rotate();
        if (L.size + n > L.max)
            n = L.size < L.max ? (size_t)(L.max - L.size) : 0;
    }
    if (n && write_all(L.fd, p, n) == 0)
        L.size += n;
}

/* A line of the writer's own, in log.c's format. */
static void notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void notice(const char *fmt, ...)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02d %02d:%02d:%02d.%03ld warn: agent log: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    write_out(line, len);
}

static void refill(double *tokens, uint64_t *at, double rate, double burst)
{
    uint64_t now = now_ms();
    *tokens += rate * (double)(now - *at) / 1000.0;
    if (*tokens > burst)
        *tokens = burst;
    *at = now;
}

static void flush_repeats(void)
{
    if (L.repeats)
        notice("last message repeated %llu times", (unsigned long long)L.repeats);
    L.repeats = 0;
}

void agentlog_start(int fd, int dirfd, const char *name, const struct agentlog_limits *lim)
{
    L.fd = fd;
    L.dirfd = dirfd;
    snprintf(L.name, sizeof(L.name), "%s", name ? name : "agent.log");
    L.max = lim && lim->max_bytes ? lim->max_bytes : AGENTLOG_MAX_BYTES;
    L.lines_per_s = lim && lim->lines_per_s ? lim->lines_per_s : AGENTLOG_LINES_PER_S;
    L.kernel_rate =
        lim && lim->kernel_bytes_per_s ? lim->kernel_bytes_per_s : AGENTLOG_KERNEL_BYTES_PER_S;
    struct stat st, named;
    L.regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    L.size = L.regular ? (uint64_t)st.st_size : 0;
    L.rotate = L.regular && dirfd >= 0 &&
               fstatat(dirfd, L.name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
               named.st_dev == st.st_dev && named.st_ino == st.st_ino;
    L.line_tokens = 10.0 * L.lines_per_s;
    L.kernel_tokens = 16.0 * (double)L.kernel_rate;
    L.line_ms = L.kernel_ms = now_ms();
    L.started = true;
    log_set_sink(agentlog_line);
}

void agentlog_line(const char *line, size_t len, size_t prefix)
{
    const char *msg = line + prefix;
    size_t mlen = len - prefix;
    if (mlen == L.last_len && !memcmp(msg, L.last, mlen)) {
        if (!L.repeats++)
            L.repeat_since = now_ms();
        return;
    }
    flush_repeats();
    L.last_len = mlen < LAST_MAX ? mlen : 0; /* a longer line is never taken as a repeat */
    memcpy(L.last, msg, L.last_len);
    refill(&L.line_tokens, &L.line_ms, L.lines_per_s, 10.0 * L.lines_per_s);
    if (L.line_tokens < 1) {
        L.suppressed++;
        return;
    }
    if (L.suppressed) {
        notice("%llu messages suppressed (more than %u a second)", (unsigned long long)L.suppressed,
               L.lines_per_s);
        L.suppressed = 0;
    }
    L.line_tokens -= 1;
    write_out(line, len);
}

void agentlog_kernel(const char *data, size_t n)
{
    double burst = 16.0 * (double)L.kernel_rate;
    refill(&L.kernel_tokens, &L.kernel_ms, (double)L.kernel_rate, burst);
    if (L.kernel_tokens < (double)n || (L.dropping && L.kernel_tokens < (double)L.kernel_rate)) {
        L.dropped += n;
        L.dropping = true;
        return;
    }
    L.dropping = false;
    if (L.dropped) {
        notice("%llu bytes of the kernel's output dropped (more than %llu KiB a second)",
               (unsigned long long)L.dropped, (unsigned long long)(L.kernel_rate / 1024));
        L.dropped = 0;
    }
    L.kernel_tokens -= (double)n;
    write_out(data, n);
}

long agentlog_tick(void)
{
    if (!L.started)
        return -1;
    if (L.dropped) {
        refill(&L.kernel_tokens, &L.kernel_ms, (double)L.kernel_rate, 16.0 * (double)L.kernel_rate);
        if (L.kernel_tokens >= (double)L.kernel_rate) {
            L.dropping = false;
            notice("%llu bytes of the kernel's output dropped (more than %llu KiB a second)",
                   (unsigned long long)L.dropped, (unsigned long long)(L.kernel_rate / 1024));
            L.dropped = 0;
        }
    }
    if (L.suppressed) {
        refill(&L.line_tokens, &L.line_ms, L.lines_per_s, 10.0 * L.lines_per_s);
        if (L.line_tokens >= 1) {
            notice("%llu messages suppressed (more than %u a second)",
                   (unsigned long long)L.suppressed, L.lines_per_s);
            L.suppressed = 0;
        }
    }
    if (L.repeats && now_ms() - L.repeat_since >= REPEAT_EVERY_MS) {
        flush_repeats();
        L.last_len = 0;
    }
    return L.dropped || L.suppressed || L.repeats ? 1000 : -1;
}

void agentlog_stop(void)
{
    if (!L.started)
        return;
    flush_repeats();
    if (L.suppressed)
        notice("%llu messages suppressed (more than %u a second)", (unsigned long long)L.suppressed,
               L.lines_per_s);
    if (L.dropped)
        notice("%llu bytes of the kernel's output dropped (more than %llu KiB a second)",
               (unsigned long long)L.dropped, (unsigned long long)(L.kernel_rate / 1024));
    log_set_sink(NULL);
    dup2(L.fd, 2); /* what is logged after this still lands in the file, uncapped but short */
    close(L.fd);
    if (L.dirfd >= 0)
        close(L.dirfd);
    L.fd = L.dirfd = -1;
    L.started = false;
    L.suppressed = L.dropped = L.repeats = 0;
    L.last_len = 0;
}
