/* /api/runtimes/{id}/files/<path>: the runtime's /content, browsed, read and written
 * through its agent (the hub cannot reach that folder itself). See docs/figures.md. */
#ifndef LABBOOK_HUB_RUNTIME_FILES_H
#define LABBOOK_HUB_RUNTIME_FILES_H

struct hub;
struct http_req;
struct kernel;

/* Handles one request on kernel k's /content; path is what follows "/files" (may be
 * empty). GET: a folder's JSON listing or a file's bytes (?download=1: as an
 * attachment); PUT: the body becomes the file (201); POST ?type=directory: a folder;
 * DELETE: a file or an empty folder. The caller has checked that k is the user's. */
void runtime_files(struct hub *h, struct http_req *req, struct kernel *k, const char *path);

#endif
