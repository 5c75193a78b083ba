/* The agent's log, capped: everything the agent logs and everything its kernel writes
 * to stdout and stderr goes through one writer into the runtime's agent.log, which is
 * rotated once (agent.log.1) at a size cap, so that a runtime can never fill the data
 * disk through it (outside every quota). The agent's own repeated lines are collapsed
 * ("last message repeated N times"), its lines beyond a rate are counted ("N messages
 * suppressed"), and the kernel's output beyond a byte rate is dropped and counted. */
#ifndef LABBOOK_AGENT_AGENTLOG_H
#define LABBOOK_AGENT_AGENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENTLOG_MAX_BYTES ((uint64_t)8 << 20)   /* per file: agent.log and agent.log.1 */
#define AGENTLOG_LINES_PER_S 50                  /* the agent's own lines, burst 10x */
#define AGENTLOG_KERNEL_BYTES_PER_S (256 * 1024) /* the kernel's output, burst 16x */

struct agentlog_limits {
    uint64_t max_bytes;          /* 0: AGENTLOG_MAX_BYTES */
    unsigned lines_per_s;        /* 0: AGENTLOG_LINES_PER_S */
    uint64_t kernel_bytes_per_s; /* 0: AGENTLOG_KERNEL_BYTES_PER_S */
};

/* Starts writing to fd (taken over; the agent's stderr as the launcher opened it). When
 * fd is the regular file `name` in folder dirfd (taken over too; -1 for none), it is
 * rotated there at the cap; a regular file elsewhere is capped without rotation; other
 * fds (a terminal, a pipe) are only rate-limited. Installs the log.c sink. */
void agentlog_start(int fd, int dirfd, const char *name, const struct agentlog_limits *lim);

/* The log.c sink: one of the agent's own lines. */
void agentlog_line(const char *line, size_t len, size_t prefix);

/* Bytes the kernel wrote to its stdout or stderr. */
void agentlog_kernel(const char *data, size_t n);

/* Writes what the limits held back ("N messages suppressed", repeats, dropped kernel
 * bytes) once the rate allows; call from the loop. Returns the ms until it wants to be
 * called again, or -1 when nothing is pending. */
long agentlog_tick(void);

/* Writes what is pending and closes the files; log lines go to stderr again. */
void agentlog_stop(void);

#endif
