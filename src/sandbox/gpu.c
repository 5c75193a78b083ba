/* GPU providers (NVML through dlopen, fake, none) and the device nodes and environment a
 * runtime with GPUs needs. NVML's few types and functions are declared here by hand: no
 * NVML header is needed to build, and no NVIDIA library to run. */
#include "sandbox/gpu.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- NVML, declared by hand (nvml.h, API version 2+) ---- */

typedef int nvml_return_t; /* NVML_SUCCESS is 0 */
typedef struct nvml_device *nvml_device_t;
struct nvml_memory { /* nvmlMemory_t */
    unsigned long long total, free, used;
};
struct nvml_utilization { /* nvmlUtilization_t */
    unsigned int gpu, memory;
};
#define NVML_BUF 96 /* NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_DEVICE_NAME_V2_BUFFER_SIZE */

struct nvml {
    void *lib;
    nvml_return_t (*init)(void);
    nvml_return_t (*shutdown)(void);
    nvml_return_t (*count)(unsigned int *);
    nvml_return_t (*handle)(unsigned int, nvml_device_t *);
    nvml_return_t (*uuid)(nvml_device_t, char *, unsigned int);
    nvml_return_t (*name)(nvml_device_t, char *, unsigned int);
    nvml_return_t (*memory)(nvml_device_t, struct nvml_memory *);
    nvml_return_t (*util)(nvml_device_t, struct nvml_utilization *);
    nvml_return_t (*minor)(nvml_device_t, unsigned int *);
    const char *(*error_string)(nvml_return_t);
    bool initialised;
    nvml_device_t dev[GPU_MAX];
};

static void providers_free_gpus(struct gpu_provider *p)
{
    free(p->gpus);
    p->gpus = NULL;
    p->n = 0;
}

static int nvml_usage(struct gpu_provider *p, unsigned index, struct gpu_usage *out)
{
    struct nvml *nv = p->priv;
    struct nvml_utilization u = {0};
    struct nvml_memory m = {0};

    if (nv->util(nv->dev[index], &u) != 0)
        return -EIO;
    if (nv->memory(nv->dev[index], &m) != 0)
        return -EIO;
    out->util_percent = u.gpu > 100 ? 100 : u.gpu;
    out->memory_used = m.used;
    return 0;
}

static void nvml_destroy(struct gpu_provider *p)
{
    struct nvml *nv = p->priv;

    if (!nv)
        return;
    if (nv->initialised && nv->shutdown)
        nv->shutdown();
    if (nv->lib)
        dlclose(nv->lib);
    free(nv);
    p->priv = NULL;
}

static const struct gpu_provider_ops nvml_ops = {"nvml", nvml_usage, nvml_destroy};

/* Looks up the versioned symbol first (nvmlInit_v2), then the plain one. */
static void *nvml_sym(void *lib, const char *name, const char *v2)
{
    void *f = v2 ? dlsym(lib, v2) : NULL;
    return f ? f : dlsym(lib, name);
}

static const char *nvml_err(struct nvml *nv, nvml_return_t r)
{
    const char *s = nv->error_string ? nv->error_string(r) : NULL;
    return s ? s : "error";
}

/* Fills p with what NVML reports. Any failure leaves p with zero GPUs and a note. */
static void nvml_discover(struct gpu_provider *p, const char *libpath)
{
    struct nvml *nv = xcalloc(1, sizeof(*nv));
    unsigned count = 0;
    nvml_return_t r;

    p->priv = nv;
    nv->lib = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
    if (!nv->lib) {
        p->note = xasprintf("%s not loaded: no GPUs", libpath);
        return;
    }
    *(void **)&nv->init = nvml_sym(nv->lib, "nvmlInit", "nvmlInit_v2");
    *(void **)&nv->shutdown = nvml_sym(nv->lib, "nvmlShutdown", NULL);
    *(void **)&nv->count = nvml_sym(nv->lib, "nvmlDeviceGetCount", "nvmlDeviceGetCount_v2");
    *(void **)&nv->handle =
        nvml_sym(nv->lib, "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&nv->uuid = nvml_sym(nv->lib, "nvmlDeviceGetUUID", NULL);
    *(void **)&nv->name = nvml_sym(nv->lib, "nvmlDeviceGetName", NULL);
    *(void **)&nv->memory = nvml_sym(nv->lib, "nvmlDeviceGetMemoryInfo", NULL);
    *(void **)&nv->util = nvml_sym(nv->lib, "nvmlDeviceGetUtilizationRates", NULL);
    *(void **)&nv->minor = nvml_sym(nv->lib, "nvmlDeviceGetMinorNumber", NULL);
    *(void **)&nv->error_string = nvml_sym(nv->lib, "nvmlErrorString", NULL);
    if (!nv->init || !nv->shutdown || !nv->count || !nv->handle || !nv->uuid || !nv->name ||
        !nv->memory || !nv->util || !nv->minor) {
        p->note = xasprintf("%s lacks NVML functions: no GPUs", libpath);
        return;
    }
    r = nv->init();
    if (r != 0) {
        p->note = xasprintf("nvmlInit failed (%s): no GPUs", nvml_err(nv, r));
        return;
    }
    nv->initialised = true;
    r = nv->count(&count);
    if (r != 0) {
        p->note = xasprintf("nvmlDeviceGetCount failed (%s): no GPUs", nvml_err(nv, r));
        return;
    }
    if (count > GPU_MAX)
        count = GPU_MAX;
    p->gpus = xcalloc(count ? count : 1, sizeof(*p->gpus));
    for (unsigned i = 0; i < count; i++) {
        struct gpu_info *g = &p->gpus[i];
        struct nvml_memory m = {0};
        char buf[NVML_BUF];

        r = nv->handle(i, &nv->dev[i]);
        if (r == 0)
            r = nv->minor(nv->dev[i], &g->minor);
        if (r == 0)
            r = nv->memory(nv->dev[i], &m);
        if (r == 0) {
            memset(buf, 0, sizeof(buf));
            r = nv->uuid(nv->dev[i], buf, sizeof(buf));
            snprintf(g->uuid, sizeof(g->uuid), "%.*s", (int)sizeof(buf), buf);
        }
        if (r == 0) {
            memset(buf, 0, sizeof(buf));
            r = nv->name(nv->dev[i], buf, sizeof(buf));
            snprintf(g->name, sizeof(g->name), "%.*s", (int)sizeof(buf), buf);
        }
        if (r != 0) {
            /* a GPU we cannot describe cannot be given out safely: report none */
            p->note = xasprintf("NVML could not describe GPU %u (%s): no GPUs", i, nvml_err(nv, r));
            providers_free_gpus(p);
            return;
        }
        g->index = i;
        g->memory_total = m.total;
    }
    p->n = count;
}

/* ---- fake ---- */

struct fake {
    char *dir;
    struct gpu_usage usage[GPU_MAX];
};

static int fake_usage(struct gpu_provider *p, unsigned index, struct gpu_usage *out)
{
    struct fake *f = p->priv;
    char *path, *text = NULL;
    int rc = 0;

    *out = f->usage[index];
    if (!f->dir)
        return 0;
    path = xasprintf("%s/gpu%u", f->dir, index);
    rc = read_file(path, 1 << 17, &text, NULL);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc == 0) {
        unsigned long util = 0;
        unsigned long long mb = 0;
        int got = sscanf(text, "%lu %llu", &util, &mb);
        if (got < 1 || util > 100 || mb > UINT64_MAX / (1024 * 1024)) {
            rc = -EINVAL;
            goto out;
        }
        out->util_percent = (unsigned)util;
        out->memory_used = got == 2 ? (uint64_t)mb * 1024 * 1024 : 0;
    }
out:
    free(text);
    free(path);
    return rc;
}

static void fake_destroy(struct gpu_provider *p)
{
    struct fake *f = p->priv;

    if (f)
        free(f->dir);
    free(f);
    p->priv = NULL;
}

static const struct gpu_provider_ops fake_ops = {"fake", fake_usage, fake_destroy};

static int fake_open(struct gpu_provider *p, const char *arg, char **err)
{
    const char *colon = strchr(arg, ':');
    char *num = colon ? xstrndup(arg, (size_t)(colon - arg)) : xstrdup(arg);
    int64_t n = 0;
    int rc = str_to_i64(num, 0, GPU_MAX, &n);
    struct fake *f;

    free(num);
    if (rc < 0 || (colon && !colon[1])) {
        *err = xasprintf("gpu provider \"fake:%s\": expected fake:N or fake:N:DIR, N <= %d", arg,
                         GPU_MAX);
        return -EINVAL;
    }
    f = xcalloc(1, sizeof(*f));
    f->dir = colon ? xstrdup(colon + 1) : NULL;
    p->priv = f;
    p->ops = &fake_ops;
    p->gpus = xcalloc(n ? (size_t)n : 1, sizeof(*p->gpus));
    for (unsigned i = 0; i < (unsigned)n; i++) {
        struct gpu_info *g = &p->gpus[i];
        g->index = i;
        g->minor = i;
        g->memory_total = (uint64_t)16 << 30;
        snprintf(g->name, sizeof(g->name), "Fake GPU %u", i);
        snprintf(g->uuid, sizeof(g->uuid), "GPU-fa4e0000-0000-4000-8000-%012x", i);
    }
    p->n = (size_t)n;
    return 0;
}

/* ---- none ---- */

static int none_usage(struct gpu_provider *p, unsigned index, struct gpu_usage *out)
{
    (void)p, (void)index, (void)out;
    return -ENODEV;
}

static void none_destroy(struct gpu_provider *p)
{
    (void)p;
}

static const struct gpu_provider_ops none_ops = {"none", none_usage, none_destroy};

/* ---- public ---- */

int gpu_provider_open(const char *spec, struct gpu_provider **out, char **err)
{
    struct gpu_provider *p = xcalloc(1, sizeof(*p));
    int rc = 0;

    *out = NULL;
    if (!spec || !spec[0] || strcmp(spec, "nvml") == 0) {
        p->ops = &nvml_ops;
        nvml_discover(p, "libnvidia-ml.so.1");
    } else if (str_starts_with(spec, "nvml:") && spec[5]) {
        p->ops = &nvml_ops;
        nvml_discover(p, spec + 5);
    } else if (str_starts_with(spec, "fake:")) {
        rc = fake_open(p, spec + 5, err);
    } else if (strcmp(spec, "none") == 0) {
        p->ops = &none_ops;
    } else {
        *err =
            xasprintf("gpu provider \"%s\": expected nvml, nvml:PATH, fake:N[:DIR] or none", spec);
        rc = -EINVAL;
    }
    if (rc < 0) {
        gpu_provider_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void gpu_provider_free(struct gpu_provider *p)
{
    if (!p)
        return;
    if (p->ops)
        p->ops->destroy(p);
    free(p->gpus);
    free(p->note);
    free(p);
}

int gpu_usage(struct gpu_provider *p, unsigned index, struct gpu_usage *out)
{
    if (index >= p->n)
        return -ENODEV;
    return p->ops->usage(p, index, out);
}

int gpu_fake_set_usage(struct gpu_provider *p, unsigned index, unsigned util_percent,
                       uint64_t memory_used)
{
    struct fake *f;

    if (p->ops != &fake_ops)
        return -EINVAL;
    if (index >= p->n)
        return -ENODEV;
    f = p->priv;
    f->usage[index].util_percent = util_percent > 100 ? 100 : util_percent;
    f->usage[index].memory_used = memory_used;
    return 0;
}

/* Checks idx[0..n): every index known, none repeated. */
static int check_indices(const struct gpu_provider *p, const unsigned *idx, size_t n)
{
    uint64_t seen = 0;

    for (size_t i = 0; i < n; i++) {
        if (idx[i] >= p->n)
            return -ENODEV;
        if (seen & ((uint64_t)1 << idx[i]))
            return -EINVAL;
        seen |= (uint64_t)1 << idx[i];
    }
    return 0;
}

int gpu_dev_nodes(const struct gpu_provider *p, const unsigned *idx, size_t n,
                  struct gpu_dev_node **out, size_t *nout)
{
    static const struct {
        const char *path;
        bool optional;
    } common[] = {
        {"/dev/nvidiactl", false},
        {"/dev/nvidia-uvm", false},
        {"/dev/nvidia-uvm-tools", true},
        {"/dev/nvidia-modeset", true},
    };
    struct gpu_dev_node *nodes;
    size_t k = 0;
    int rc = check_indices(p, idx, n);

    *out = NULL;
    *nout = 0;
    if (rc < 0 || n == 0)
        return rc;
    nodes = xcalloc(n + ARRAY_SIZE(common), sizeof(*nodes));
    for (size_t i = 0; i < n; i++)
        nodes[k++].path = xasprintf("/dev/nvidia%u", p->gpus[idx[i]].minor);
    for (size_t i = 0; i < ARRAY_SIZE(common); i++) {
        nodes[k].path = xstrdup(common[i].path);
        nodes[k++].optional = common[i].optional;
    }
    *out = nodes;
    *nout = k;
    return 0;
}

void gpu_dev_nodes_free(struct gpu_dev_node *nodes, size_t n)
{
    if (!nodes)
        return;
    for (size_t i = 0; i < n; i++)
        free(nodes[i].path);
    free(nodes);
}

int gpu_env(const struct gpu_provider *p, const unsigned *idx, size_t n, char ***out)
{
    struct buf uuids = {0};
    char **env;
    int rc = check_indices(p, idx, n);

    *out = NULL;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        buf_printf(&uuids, "%s%s", i ? "," : "", p->gpus[idx[i]].uuid);
    env = xcalloc(4, sizeof(*env));
    env[0] = xasprintf("CUDA_VISIBLE_DEVICES=%s", n ? uuids.data : "");
    env[1] = xasprintf("NVIDIA_VISIBLE_DEVICES=%s", n ? uuids.data : "none");
    env[2] = xstrdup("CUDA_DEVICE_ORDER=PCI_BUS_ID");
    buf_free(&uuids);
    *out = env;
    return 0;
}

void gpu_env_free(char **env)
{
    if (!env)
        return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}
