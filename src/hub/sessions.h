/* Jupyter sessions (/api/sessions): a notebook path bound to one of the user's
 * kernels. Creating a session for a path that already has one returns it. */
#ifndef LABBOOK_HUB_SESSIONS_H
#define LABBOOK_HUB_SESSIONS_H

struct hub;
struct http_req;

/* Handles /api/sessions[/{id}]; rest is what follows "/api/sessions". */
void sessions_handle(struct hub *h, struct http_req *req, const char *rest);
/* Frees every session (hub shutdown). */
void sessions_free_all(struct hub *h);

#endif
