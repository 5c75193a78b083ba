/* The hub's watch on the accounts: `labbook user` (another process) revokes tokens,
 * changes passwords, disables and deletes users in the database; the hub notices at
 * once and ends what no longer holds: WebSockets opened with a revoked or expired
 * credential, and the runtimes of disabled and deleted users. */
#ifndef LABBOOK_HUB_ACCOUNTS_H
#define LABBOOK_HUB_ACCOUNTS_H

struct hub;

/* Starts the watch on the hub's loop (and checks once now). */
void accounts_watch_start(struct hub *h);
/* Stops it (the handle closes with the loop). */
void accounts_watch_stop(struct hub *h);

#endif
