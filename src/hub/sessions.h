/* Jupyter sessions (/api/sessions): a notebook path bound to one of the user's
 * kernels. Creating a session for a path that already has one returns it. */
#ifndef LABBOOK_HUB_SESSIONS_H
#define LABBOOK_HUB_SESSIONS_H

struct hub;
struct http_req;

/* Handles /api/sessions[/{id}]; rest is what follows "/api/sessions". */
void sessions_handle(struct hub *h, struct http_req *req, const char *rest);
/* At start: the sessions a previous hub left (whose runtimes were adopted). */
void sessions_load(struct hub *h);
/* Frees every session (hub shutdown); they stay in the store for the next start. */
void sessions_free_all(struct hub *h);

#endif
