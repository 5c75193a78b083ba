/* The router: maps each authenticated request to its API area (/api/kernels,
 * /api/sessions, /api/contents, ...) and the pages (/login, /). */
#ifndef LABBOOK_HUB_API_H
#define LABBOOK_HUB_API_H

struct hub;
struct http_req;

void api_route(struct hub *h, struct http_req *req);
/* The HTTP status for kernel_start's error. */
int api_start_status(int err);

#endif
