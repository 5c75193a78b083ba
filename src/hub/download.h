/* Downloads from the drive: a file streamed with single-range support at
 * GET /files/<path> (Jupyter's files handler; ?download=1 for an attachment), and a
 * folder as a zip built while it streams at GET /api/drive/zip/<path>. */
#ifndef LABBOOK_HUB_DOWNLOAD_H
#define LABBOOK_HUB_DOWNLOAD_H

#include <stdbool.h>
#include <stdint.h>

struct hub;
struct http_req;

void download_file(struct hub *h, struct http_req *req, const char *path);
void download_zip(struct hub *h, struct http_req *req, const char *path);

/* Parses a Range header against a file of size bytes: one "bytes=" range. Returns 1
 * with [*start, *end] (inclusive) for a satisfiable range, 0 when the header is to be
 * ignored (not bytes, several ranges, malformed: the whole file is sent), -1 when
 * unsatisfiable (416). Pure. */
int download_parse_range(const char *header, int64_t size, int64_t *start, int64_t *end);

/* Content-Disposition for an attachment named name: an ASCII fallback and RFC 5987
 * filename*. Caller frees. Pure. */
char *download_disposition(const char *name);

/* The content type a download of a file named name is served with, by its extension;
 * application/octet-stream for HTML, SVG, scripts and what is not known. Pure. */
const char *download_mime_of(const char *name);

#endif
