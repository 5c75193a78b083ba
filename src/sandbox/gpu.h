/* GPU discovery behind a small vtable: the NVML provider (libnvidia-ml.so.1 loaded with
 * dlopen, so labbook neither links nor needs it) and a fake provider for tests. Also what a
 * runtime given some GPUs needs: its device nodes and its environment. See docs/gpus.md. */
#ifndef LABBOOK_SANDBOX_GPU_H
#define LABBOOK_SANDBOX_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GPU_MAX 64 /* GPUs one host may have; more are ignored */

struct gpu_info {
    unsigned index;        /* NVML index: 0..n-1, PCI bus order */
    char uuid[96];         /* "GPU-8d1a...": stable across reboots and reorderings */
    char name[96];         /* "NVIDIA H100 80GB HBM3" */
    uint64_t memory_total; /* bytes */
    unsigned minor;        /* device node is /dev/nvidia<minor> */
};

struct gpu_usage {
    unsigned util_percent; /* share of the last sample period a kernel ran on it, 0..100 */
    uint64_t memory_used;  /* bytes */
};

struct gpu_provider;

struct gpu_provider_ops {
    const char *name; /* "nvml", "fake", "none" */
    /* Reads device `index`'s current usage. Returns 0 or a negative errno. */
    int (*usage)(struct gpu_provider *p, unsigned index, struct gpu_usage *out);
    /* Releases what the provider holds beyond the struct itself. */
    void (*destroy)(struct gpu_provider *p);
};

struct gpu_provider {
    const struct gpu_provider_ops *ops;
    struct gpu_info *gpus; /* n entries, gpus[i].index == i */
    size_t n;
    char *note; /* why there are no GPUs ("libnvidia-ml.so.1 not found"), or NULL */
    void *priv;
};

/* Opens a provider from its config spec:
 *   "nvml" (also NULL or "")  NVML from libnvidia-ml.so.1; no library, or nvmlInit
 *                             failing, is not an error: zero GPUs and a note saying why
 *   "nvml:PATH"               NVML from another library file (tests, odd installs)
 *   "fake:N"                  N fake GPUs "Fake GPU 0".."Fake GPU N-1" (N <= GPU_MAX)
 *   "fake:N:DIR"              the same, each reading its usage from DIR/gpu<i> if present:
 *                             "UTIL_PERCENT [MEMORY_USED_MB]"
 *   "none"                    no GPUs
 * Returns 0 and *out (free with gpu_provider_free), or -EINVAL with *err (caller frees)
 * for a spec it does not understand. */
int gpu_provider_open(const char *spec, struct gpu_provider **out, char **err);
void gpu_provider_free(struct gpu_provider *p);

/* Device `index`'s current usage (may block for a few ms on NVML: call it from the thread
 * pool in the event loop). Returns 0, -ENODEV for an index out of range, or the
 * provider's error. */
int gpu_usage(struct gpu_provider *p, unsigned index, struct gpu_usage *out);

/* Fake provider only: sets what gpu_usage reports for `index` (unless DIR/gpu<index>
 * exists, which wins). Returns 0, -ENODEV, or -EINVAL for another provider. */
int gpu_fake_set_usage(struct gpu_provider *p, unsigned index, unsigned util_percent,
                       uint64_t memory_used);

struct gpu_dev_node {
    char *path;    /* "/dev/nvidia3" */
    bool optional; /* bind it only if it exists on the host */
};

/* The device nodes a runtime given GPUs idx[0..n) needs inside its sandbox: each GPU's
 * /dev/nvidia<minor>, then /dev/nvidiactl and /dev/nvidia-uvm (required), then
 * /dev/nvidia-uvm-tools and /dev/nvidia-modeset (optional). None when n is 0. Returns 0
 * and *out (*nout entries; free with gpu_dev_nodes_free), or -ENODEV for an unknown
 * index, or -EINVAL for a repeated one. */
int gpu_dev_nodes(const struct gpu_provider *p, const unsigned *idx, size_t n,
                  struct gpu_dev_node **out, size_t *nout);
void gpu_dev_nodes_free(struct gpu_dev_node *nodes, size_t n);

/* The environment of a runtime given GPUs idx[0..n), as NULL-terminated "KEY=VALUE"
 * strings (free with gpu_env_free): CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES by
 * UUID, and CUDA_DEVICE_ORDER=PCI_BUS_ID. With n == 0, CUDA_VISIBLE_DEVICES is empty and
 * NVIDIA_VISIBLE_DEVICES is "none", so a CPU runtime sees no GPU even unsandboxed.
 * Returns 0, -ENODEV or -EINVAL as gpu_dev_nodes. */
int gpu_env(const struct gpu_provider *p, const unsigned *idx, size_t n, char ***out);
void gpu_env_free(char **env);

#endif
