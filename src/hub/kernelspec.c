/* Kernelspec discovery in the Jupyter data paths, in jupyter_client's order (first folder
 * holding a name wins), the /api/kernelspecs model, and safe lookup of resource files. */
#include "hub/kernelspec.h"

#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KERNEL_JSON_MAX (1 << 20)
#define MAX_KERNELSPECS 1024

/* The data folders, most specific first. Caller frees each and the array. */
static char **data_dirs(size_t *n)
{
    char **dirs = NULL;
    size_t cnt = 0, cap = 0;
#define PUSH(s)                                                                                    \
    do {                                                                                           \
        if (cnt == cap) {                                                                          \
            cap = cap ? cap * 2 : 8;                                                               \
            dirs = xrealloc(dirs, cap * sizeof *dirs);                                             \
        }                                                                                          \
        dirs[cnt++] = (s);                                                                         \
    } while (0)
    const char *jp = getenv("JUPYTER_PATH");
    if (jp) {
        const char *p = jp;
        while (*p) {
            const char *e = strchr(p, ':');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            if (l)
                PUSH(xstrndup(p, l));
            p += l;
            if (*p == ':')
                p++;
        }
    }
    const char *dd = getenv("JUPYTER_DATA_DIR");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (dd && dd[0])
        PUSH(xstrdup(dd));
    else if (xdg && xdg[0] == '/')
        PUSH(xasprintf("%s/jupyter", xdg));
    else if (home && home[0])
        PUSH(xasprintf("%s/.local/share/jupyter", home));
    PUSH(xstrdup("/usr/local/share/jupyter"));
    PUSH(xstrdup("/usr/share/jupyter"));
#undef PUSH
    *n = cnt;
    return dirs;
}

/* jupyter_client accepts kernel names matching [a-z0-9._-]+ (after lowercasing). */
static bool valid_name(const char *s)
{
    if (!s[0] || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("._-", *s)))
            return false;
    return true;
}

/* Loads dir/kernel.json; NULL unless it is an object with an argv array of strings. The
 * missing keys get jupyter_client's defaults. */
static json_t *load_spec(const char *dir)
{
    char *path = xasprintf("%s/kernel.json", dir), *data = NULL;
    size_t len = 0;
    json_t *spec = NULL;
    if (read_file(path, KERNEL_JSON_MAX, &data, &len) < 0)
        goto out;
    spec = json_loadb(data, len, 0, NULL);
    json_t *argv = json_object_get(spec, "argv");
    bool ok = json_is_object(spec) && json_is_array(argv) && json_array_size(argv) > 0;
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        if (!json_is_string(a))
            ok = false;
    }
    if (!ok) {
        json_decref(spec);
        spec = NULL;
        goto out;
    }
    if (!json_is_string(json_object_get(spec, "display_name")))
        json_object_set_new(spec, "display_name", json_string(""));
    if (!json_is_string(json_object_get(spec, "language")))
        json_object_set_new(spec, "language", json_string(""));
    if (!json_is_object(json_object_get(spec, "env")))
        json_object_set_new(spec, "env", json_object());
    if (!json_is_object(json_object_get(spec, "metadata")))
        json_object_set_new(spec, "metadata", json_object());
    if (!json_is_string(json_object_get(spec, "interrupt_mode")))
        json_object_set_new(spec, "interrupt_mode", json_string("signal"));
out:
    free(path);
    free(data);
    return spec;
}

static int cmp_ks(const void *a, const void *b)
{
    return strcmp(((const struct kernelspec *)a)->name, ((const struct kernelspec *)b)->name);
}

int kernelspec_scan(struct kernelspec **out, size_t *n)
{
    size_t ndirs = 0, cnt = 0;
    char **dirs = data_dirs(&ndirs);
    struct kernelspec *ks = NULL;
    for (size_t i = 0; i < ndirs; i++) {
        char *kdir = xasprintf("%s/kernels", dirs[i]);
        DIR *d = opendir(kdir);
        struct dirent *e;
        while (d && (e = readdir(d)) && cnt < MAX_KERNELSPECS) {
            char *name = xstrdup(e->d_name);
            for (char *p = name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            bool dup = false;
            for (size_t j = 0; j < cnt && !dup; j++)
                dup = !strcmp(ks[j].name, name);
            char *rdir = xasprintf("%s/%s", kdir, e->d_name);
            json_t *spec = (!dup && valid_name(name)) ? load_spec(rdir) : NULL;
            if (!spec) {
                free(name);
                free(rdir);
                continue;
            }
            ks = xrealloc(ks, (cnt + 1) * sizeof *ks);
            ks[cnt++] = (struct kernelspec){.name = name, .resource_dir = rdir, .spec = spec};
        }
        if (d)
            closedir(d);
        free(kdir);
        free(dirs[i]);
    }
    free(dirs);
    if (cnt)
        qsort(ks, cnt, sizeof *ks, cmp_ks);
    *out = ks;
    *n = cnt;
    return 0;
}

void kernelspec_list_free(struct kernelspec *ks, size_t n)
{
    if (!ks)
        return;
    for (size_t i = 0; i < n; i++) {
        free(ks[i].name);
        free(ks[i].resource_dir);
        json_decref(ks[i].spec);
    }
    free(ks);
}

/* {"kernel.js": url, "logo-64x64": url, ...} for the files present, as jupyter_server lists
 * them: kernel.js and kernel.css by name, logo-* by name without extension. */
static json_t *resources_model(const struct kernelspec *k)
{
    json_t *res = json_object();
    DIR *d = opendir(k->resource_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *f = e->d_name;
        bool known = !strcmp(f, "kernel.js") || !strcmp(f, "kernel.css");
        if (!known && !str_starts_with(f, "logo-"))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), f, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        char *u = xasprintf("/kernelspecs/%s/%s", k->name, f);
        json_t *url = json_string(u);
        free(u);
        if (!url)
            continue; /* not UTF-8 */
        const char *dot = strrchr(f, '.');
        char *key = (known || !dot) ? xstrdup(f) : xstrndup(f, (size_t)(dot - f));
        json_object_set_new(res, key, url);
        free(key);
    }
    if (d)
        closedir(d);
    return res;
}

json_t *kernelspec_list_model(const struct kernelspec *ks, size_t n, const char *default_name)
{
    const char *dflt = NULL;
    for (size_t i = 0; i < n && default_name; i++)
        if (!strcmp(ks[i].name, default_name))
            dflt = ks[i].name;
    for (size_t i = 0; i < n && !dflt; i++)
        if (!strcmp(ks[i].name, "python3"))
            dflt = ks[i].name;
    if (!dflt)
        dflt = n ? ks[0].name : (default_name ? default_name : "python3");
    json_t *specs = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(specs, ks[i].name,
                            json_pack("{s:s, s:O, s:o}", "name", ks[i].name, "spec", ks[i].spec,
                                      "resources", resources_model(&ks[i])));
    return json_pack("{s:s, s:o}", "default", dflt, "kernelspecs", specs);
}

int kernelspec_resource_path(const struct kernelspec *ks, size_t n, const char *name,
                             const char *file, char **path)
{
    const struct kernelspec *k = NULL;
    for (size_t i = 0; i < n && !k; i++)
        if (!strcmp(ks[i].name, name))
            k = &ks[i];
    if (!k || !file || !file[0] || file[0] == '/' || strlen(file) >= 4096)
        return -ENOENT;
    /* no "." or ".." component at all, even one that would stay inside */
    for (const char *p = file; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            return -ENOENT;
        p += l;
        if (*p == '/')
            p++;
    }
    int dfd = open(k->resource_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -ENOENT;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    long fd = syscall(SYS_openat2, dfd, file, &how, sizeof how);
    close(dfd);
    if (fd < 0)
        return -ENOENT;
    struct stat st;
    int r = fstat((int)fd, &st);
    close((int)fd);
    if (r < 0 || !S_ISREG(st.st_mode))
        return -ENOENT;
    *path = xasprintf("%s/%s", k->resource_dir, file);
    return 0;
}
