/* `labbook status`: the GPUs, runtimes and queue of a running hub, read from the
 * DATA/run/status.json snapshot the hub writes every 2 s (docs/figures.md). */
#ifndef LABBOOK_HUB_CLI_STATUS_H
#define LABBOOK_HUB_CLI_STATUS_H

#include <jansson.h>

#include "common/util.h"

/* A status file older than this means the hub is not running. */
#define CLI_STATUS_STALE_S 10

/* `labbook status [--data DIR] [--config FILE]`; argv[0] is "status". Returns the exit
 * code: 0, 1 when the hub is not running, 2 for a usage error. */
int cli_status_main(int argc, char **argv);

/* Appends the tables (GPUs, runtimes, queue) for a parsed status.json to out. Strings
 * from the file are printed with control characters replaced. */
void cli_status_format(const json_t *status, struct buf *out);

#endif
