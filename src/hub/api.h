/* The router: maps each authenticated request to its API area (/api/kernels,
 * /api/sessions, /api/contents, ...) and the pages (/login, /). */
#ifndef LABBOOK_HUB_API_H
#define LABBOOK_HUB_API_H

#include <stdbool.h>

struct hub;
struct http_req;

void api_route(struct hub *h, struct http_req *req);
/* Sees a request before its body is read: returns true when it answered it, or
 * installed a body sink (http_take_body) for a route that takes its body as it
 * arrives; false to read the body whole (capped) and route it with api_route. */
bool api_route_head(struct hub *h, struct http_req *req);
/* The HTTP status for kernel_start's error. */
int api_start_status(int err);

#endif
