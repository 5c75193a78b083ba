/* libFuzzer target: the agent's file service (STREAM_FILE payloads from the hub) on a
 * real folder. Whatever the request, it answers, and nothing appears outside /content:
 * a sibling folder stays empty. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/files.h"
#include "sandbox/sandbox.h"

/* disk.c, linked for files_content_dir, reports errors through the sandbox's helper. */
void sandbox_set_error(struct sandbox_error *err, int e, const char *fmt, ...)
{
    (void)fmt;
    err->err = -e;
}

static char base[64], content[96], outside[96];

static int empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!*base) {
        snprintf(base, sizeof(base), "/tmp/labbook-fuzz-files-%ld", (long)getpid());
        snprintf(content, sizeof(content), "%s/content", base);
        snprintf(outside, sizeof(outside), "%s/outside", base);
        mkdir(base, 0700);
        mkdir(content, 0700);
        mkdir(outside, 0700);
    }
    struct files_root root = {.content_dir = content, .max_bytes = 1 << 16};
    size_t n = 0;
    uint8_t *reply = files_serve(&root, data, size, &n);
    if (!reply || n < 4)
        abort();
    free(reply);
    if (!empty(outside))
        abort();
    return 0;
}
