/* The browser UI: index.html for the UI's own routes, and its built files under
 * /assets/, read from [server] web_dir (web/dist of the source tree by default). */
#ifndef LABBOOK_HUB_WEB_H
#define LABBOOK_HUB_WEB_H

#include <stdbool.h>

struct hub;
struct http_req;

/* Whether path is one of the UI's pages ("/", "/tree...", "/notebooks/...", ...),
 * which all answer with index.html (the UI routes on the client). */
bool web_is_page(const char *path);
/* Answers a page with index.html (not cached: it names the current asset files). */
void web_page(struct hub *h, struct http_req *req);
/* Answers /assets/NAME (rest is NAME) with the file beneath web_dir/assets, cached
 * for a year: asset names carry a hash of their content. 404 for anything that is
 * not a plain file beneath that folder. */
void web_asset(struct hub *h, struct http_req *req, const char *rest);
/* The content type for a file name, by its extension. */
const char *web_mime_of(const char *name);

#endif
