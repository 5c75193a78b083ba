/* libFuzzer target: output recording (hub/nbdoc.c). A sequence of execute requests and
 * kernel messages, as the hub hands them over, is recorded into a real notebook and
 * saved; the file must then be a JSON notebook in valid UTF-8. Input: records, each a
 * kind byte (even: an execute_request, odd: a kernel message), a byte choosing the
 * msg_id (and the message type), a u16 little-endian length and that many bytes of
 * content JSON. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/utf8.h"
#include "common/util.h"
#include "hub/nbdoc.h"

static char base[64];

static const char *const types[] = {
    "status", "stream",       "display_data",  "update_display_data", "execute_result",
    "error",  "clear_output", "execute_input", "execute_reply"};

static const char notebook[] =
    "{\"nbformat\": 4, \"nbformat_minor\": 5, \"metadata\": {}, \"cells\": ["
    "{\"cell_type\": \"code\", \"id\": \"c0\", \"source\": \"x\", \"metadata\": {}, "
    "\"outputs\": [], \"execution_count\": null},"
    "{\"cell_type\": \"code\", \"id\": \"c1\", \"source\": \"y\", \"metadata\": {}, "
    "\"outputs\": [], \"execution_count\": null},"
    "{\"cell_type\": \"markdown\", \"id\": \"c2\", \"source\": \"z\", \"metadata\": {}}]}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!*base) {
        snprintf(base, sizeof(base), "/tmp/labbook-fuzz-nbdoc-%ld", (long)getpid());
        mkdir_p(base, 0700);
    }
    char *path = xasprintf("%s/n.ipynb", base);
    if (write_file_atomic(path, notebook, sizeof(notebook) - 1, 0600) < 0)
        abort();
    struct nbdoc_opts opts = {.max_cell_output = 1 << 14, .max_runs = 8};
    struct nbdoc *doc = NULL;
    if (nbdoc_open(base, "n.ipynb", &opts, &doc) < 0)
        abort();
    size_t off = 0;
    while (off + 4 <= size) {
        uint8_t kind = data[off], which = data[off + 1];
        size_t n = (size_t)data[off + 2] | (size_t)data[off + 3] << 8;
        off += 4;
        if (n > size - off)
            n = size - off;
        char id[8];
        snprintf(id, sizeof(id), "m%u", which & 3);
        const char *content = (const char *)data + off;
        if (!(kind & 1)) {
            /* metadata: a cellId sometimes, from the kind byte */
            char md[40];
            int ml = snprintf(md, sizeof(md), "{\"cellId\": \"c%u\"}", (kind >> 1) % 4);
            nbdoc_request_msg(doc, id, content, n, kind & 2 ? md : NULL, kind & 2 ? (size_t)ml : 0);
        } else {
            nbdoc_message(doc, types[(which >> 2) % ARRAY_SIZE(types)], id, content, n);
        }
        off += n;
    }
    int r = nbdoc_save(doc);
    if (r < 0 && r != -EINVAL && r != -ENOSPC)
        abort();
    nbdoc_close(doc);
    char *saved = NULL;
    size_t len = 0;
    if (read_file(path, 64 << 20, &saved, &len) < 0)
        abort();
    if (!utf8_valid(saved, len))
        abort();
    json_t *nb = json_loadb(saved, len, 0, NULL);
    if (!json_is_object(nb) || !json_is_array(json_object_get(nb, "cells")) ||
        json_array_size(json_object_get(nb, "cells")) != 3)
        abort();
    json_decref(nb);
    free(saved);
    free(path);
    return 0;
}
