/* Logging to stderr, one line per event with a timestamp and level. Only the top
 * layer logs; user-controlled strings are quoted by the caller (log_quote). Never
 * pass a token, password or cookie to these. */
#ifndef LABBOOK_COMMON_LOG_H
#define LABBOOK_COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Where lines go instead of stderr (NULL: stderr again): line is one whole line with
 * its '\n', its first prefix bytes the timestamp (so a sink can tell repeats). The agent
 * uses this for its capped log (agent/agentlog.h). */
typedef void (*log_sink_fn)(const char *line, size_t len, size_t prefix);
void log_set_sink(log_sink_fn sink);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Writes s into out (size n) quoted, with control characters escaped and cut to fit. */
const char *log_quote(const char *s, char *out, size_t n);

#endif
