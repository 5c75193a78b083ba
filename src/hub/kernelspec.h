/* Kernelspecs from the standard Jupyter data paths: $JUPYTER_PATH, then the user's
 * data dir ($JUPYTER_DATA_DIR or ~/.local/share/jupyter), then sys.prefix-style
 * /usr/local/share/jupyter and /usr/share/jupyter, each with a kernels/ folder; the
 * first folder holding a name wins, as in jupyter_client. */
#ifndef LABBOOK_HUB_KERNELSPEC_H
#define LABBOOK_HUB_KERNELSPEC_H

#include <jansson.h>

struct kernelspec {
    char *name;         /* folder name, e.g. "python3" */
    char *resource_dir; /* absolute path of the folder */
    json_t *spec;       /* the parsed kernel.json: argv, display_name, language, env,
                           interrupt_mode, metadata */
};

/* Scans the data paths. Kernelspecs whose kernel.json is missing, not JSON, or has
 * no argv array of strings are skipped. Caller frees with kernelspec_list_free. */
int kernelspec_scan(struct kernelspec **out, size_t *n);
void kernelspec_list_free(struct kernelspec *ks, size_t n);

/* The /api/kernelspecs model: {"default": "python3", "kernelspecs": {name: {name,
 * spec, resources: {"logo-64x64": "/kernelspecs/python3/logo-64x64.png", ...}}}}.
 * New reference. */
json_t *kernelspec_list_model(const struct kernelspec *ks, size_t n, const char *default_name);

/* Resolves a request for /kernelspecs/{name}/{file} to an absolute path of a file
 * inside that kernelspec's folder (no "..", no symlink out). Caller frees.
 * Returns 0, or -ENOENT. */
int kernelspec_resource_path(const struct kernelspec *ks, size_t n, const char *name,
                             const char *file, char **path);

#endif
