/* labbook's runtime API, /api/runtimes[/types|/{id}[/reset]], and the Prometheus endpoint
 * /metrics. See docs/figures.md. */
#ifndef LABBOOK_HUB_API_RUNTIMES_H
#define LABBOOK_HUB_API_RUNTIMES_H

struct hub;
struct http_req;

/* Handles /api/runtimes...; rest is what follows "/api/runtimes". Authenticated
 * requests only: GET lists the user's runtimes with their figures (?all=1: everyone's,
 * admins only), GET /{id} one, DELETE /{id} shuts it down, POST /{id}/reset restarts it
 * on a fresh overlay and /content, /{id}/files/<path> reaches its /content (the owner
 * only: runtime_files.h). Admins may address anyone's runtime. GET /types describes each
 * runtime type for the UI's Notebook settings (docs/runtimes.md). */
void runtimes_api(struct hub *h, struct http_req *req, const char *rest);

/* Handles /metrics, authenticated or not (route it before the login redirect): 403
 * unless the request is an administrator's (token or cookie). */
void metrics_api(struct hub *h, struct http_req *req);

#endif
