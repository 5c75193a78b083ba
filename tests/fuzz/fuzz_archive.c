/* libFuzzer target for archive reading: extract_run on arbitrary bytes (any format
 * libarchive is asked to read, any filter), into a scratch folder. It must never
 * crash, never leave its temporary folder, and never write outside the folder. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/fsat.h"
#include "hub/drive.h"
#include "hub/extract.h"

static int out_fd = -1;
static char base[64];

static void scratch_remove(void)
{
    fs_remove_path(base, 0);
}

static void scratch(void)
{
    snprintf(base, sizeof(base), "/tmp/fuzz-archive-XXXXXX");
    if (!mkdtemp(base))
        abort();
    out_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (out_fd < 0)
        abort();
    atexit(scratch_remove);
}

static void empty_out(void)
{
    int d = openat(out_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fdopendir(d);
    struct dirent *e;
    char names[64][256];
    int n = 0;
    while ((e = readdir(dir)) && n < 64) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!strncmp(e->d_name, ".labbook-extract-", 17))
            abort(); /* the temporary folder must always go */
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(dir);
    for (int i = 0; i < n; i++)
        fs_remove_tree(out_fd, names[i], 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (out_fd < 0)
        scratch();
    int fd = memfd_create("archive", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    struct extract_limits lim = {.max_bytes = 8 << 20,
                                 .max_entries = 256,
                                 .max_entry = 4 << 20,
                                 .max_ratio = 1000,
                                 .quota_free = -1};
    struct extract_result res = {0};
    extract_run(fd, out_fd, ".labbook-extract-fuzz", &lim, &res);
    close(fd);
    empty_out();
    return 0;
}
