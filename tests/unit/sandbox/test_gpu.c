/* Tests for GPU providers (sandbox/gpu.c): the fake provider and its settable usage, the
 * NVML provider on a host without NVIDIA's library (zero GPUs, no error) and against a
 * stand-in libnvidia-ml built by the test, config specs, device nodes and environment. */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "sandbox/gpu.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("LABBOOK_TEST_TMP");
    if (!t || !t[0])
        t = "/tmp";
    mkdir_p(t, 0755);
    tmp = xasprintf("%s/gpu-XXXXXX", t);
    assert_non_null(mkdtemp(tmp));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(tmp);
    return 0;
}

static void test_fake(void **state)
{
    (void)state;
    struct gpu_provider *p = NULL;
    struct gpu_usage u;
    char *err = NULL;

    assert_int_equal(gpu_provider_open("fake:4", &p, &err), 0);
    assert_null(err);
    assert_string_equal(p->ops->name, "fake");
    assert_int_equal(p->n, 4);
    assert_null(p->note);
    for (unsigned i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Fake GPU %u", i);
        assert_string_equal(p->gpus[i].name, name);
        assert_int_equal(p->gpus[i].index, i);
        assert_int_equal(p->gpus[i].minor, i);
        assert_true(str_starts_with(p->gpus[i].uuid, "GPU-"));
        assert_true(p->gpus[i].memory_total > 0);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(p->gpus[i].uuid, p->gpus[j].uuid);
    }
    assert_int_equal(gpu_usage(p, 2, &u), 0);
    assert_int_equal(u.util_percent, 0);
    assert_int_equal(u.memory_used, 0);
    assert_int_equal(gpu_fake_set_usage(p, 2, 87, 5 << 20), 0);
    assert_int_equal(gpu_usage(p, 2, &u), 0);
    assert_int_equal(u.util_percent, 87);
    assert_int_equal(u.memory_used, 5 << 20);
    assert_int_equal(gpu_usage(p, 1, &u), 0);
    assert_int_equal(u.util_percent, 0);
    assert_int_equal(gpu_usage(p, 4, &u), -ENODEV);
    assert_int_equal(gpu_fake_set_usage(p, 4, 1, 0), -ENODEV);
    gpu_provider_free(p);
    gpu_provider_free(NULL);
}

static void test_fake_usage_from_files(void **state)
{
    (void)state;
    struct gpu_provider *p = NULL;
    struct gpu_usage u;
    char *err = NULL;
    char *spec = xasprintf("fake:2:%s", tmp);
    char *f1 = xasprintf("%s/gpu1", tmp);

    assert_int_equal(gpu_provider_open(spec, &p, &err), 0);
    assert_int_equal(p->n, 2);
    assert_int_equal(gpu_fake_set_usage(p, 1, 10, 0), 0);
    assert_int_equal(gpu_usage(p, 1, &u), 0);
    assert_int_equal(u.util_percent, 10); /* no file yet */
    assert_int_equal(write_file_atomic(f1, "55 1024\n", 8, 0644), 0);
    assert_int_equal(gpu_usage(p, 1, &u), 0);
    assert_int_equal(u.util_percent, 55);
    assert_int_equal(u.memory_used, (uint64_t)1024 << 20);
    assert_int_equal(write_file_atomic(f1, "3", 1, 0644), 0);
    assert_int_equal(gpu_usage(p, 1, &u), 0);
    assert_int_equal(u.util_percent, 3);
    assert_int_equal(u.memory_used, 0);
    assert_int_equal(write_file_atomic(f1, "101", 3, 0644), 0);
    assert_int_equal(gpu_usage(p, 1, &u), -EINVAL);
    assert_int_equal(write_file_atomic(f1, "busy", 4, 0644), 0);
    assert_int_equal(gpu_usage(p, 1, &u), -EINVAL);
    assert_int_equal(gpu_usage(p, 0, &u), 0);
    unlink(f1);
    gpu_provider_free(p);
    free(spec);
    free(f1);
}

static void test_specs(void **state)
{
    (void)state;
    const char *bad[] = {"fake:x", "fake:65", "fake:-1", "fake:", "fake:2:", "cuda", "nvml:"};
    struct gpu_provider *p = NULL;
    struct gpu_usage u;
    char *err = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(gpu_provider_open(bad[i], &p, &err), -EINVAL);
        assert_null(p);
        assert_non_null(err);
        free(err);
        err = NULL;
    }
    assert_int_equal(gpu_provider_open("none", &p, &err), 0);
    assert_int_equal(p->n, 0);
    assert_int_equal(gpu_usage(p, 0, &u), -ENODEV);
    assert_int_equal(gpu_fake_set_usage(p, 0, 1, 1), -EINVAL);
    gpu_provider_free(p);
    assert_int_equal(gpu_provider_open("fake:0", &p, &err), 0);
    assert_int_equal(p->n, 0);
    gpu_provider_free(p);
}

static void test_nvml_absent(void **state)
{
    (void)state;
    struct gpu_provider *p = NULL;
    char *err = NULL;
    void *real = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);

    /* the default provider: without NVIDIA's library it is zero GPUs, not an error */
    assert_int_equal(gpu_provider_open(NULL, &p, &err), 0);
    assert_null(err);
    assert_string_equal(p->ops->name, "nvml");
    if (!real) {
        assert_int_equal(p->n, 0);
        assert_non_null(p->note);
        assert_non_null(strstr(p->note, "libnvidia-ml.so.1"));
    } else {
        dlclose(real);
    }
    gpu_provider_free(p);

    assert_int_equal(gpu_provider_open("nvml:/nonexistent/libnvidia-ml.so.1", &p, &err), 0);
    assert_int_equal(p->n, 0);
    assert_non_null(strstr(p->note, "not loaded"));
    gpu_provider_free(p);

    /* a library that is not NVML */
    assert_int_equal(gpu_provider_open("nvml:libm.so.6", &p, &err), 0);
    assert_int_equal(p->n, 0);
    assert_non_null(strstr(p->note, "lacks NVML"));
    gpu_provider_free(p);
}

/* A stand-in for libnvidia-ml.so.1 with two GPUs (minor numbers 5 and 7), built at test
 * time, so the dlopen path is exercised on a machine without NVIDIA's driver. */
static const char FAKE_NVML[] =
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "struct mem { unsigned long long total, free, used; };\n"
    "struct util { unsigned gpu, memory; };\n"
    "static int up;\n"
    "int nvmlInit_v2(void) { if (getenv(\"FAKE_NVML_FAIL\")) return 9; up = 1; return 0; }\n"
    "int nvmlShutdown(void) { up = 0; return 0; }\n"
    "const char *nvmlErrorString(int r) { return r == 9 ? \"Driver Not Loaded\" : \"x\"; }\n"
    "int nvmlDeviceGetCount_v2(unsigned *n) { *n = 2; return up ? 0 : 1; }\n"
    "int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) {\n"
    "  if (i > 1) return 2; *d = (void *)(unsigned long)(i + 1); return 0; }\n"
    "int nvmlDeviceGetMinorNumber(void *d, unsigned *m) {\n"
    "  *m = (unsigned long)d == 1 ? 5 : 7; return 0; }\n"
    "int nvmlDeviceGetUUID(void *d, char *b, unsigned n) {\n"
    "  strncpy(b, (unsigned long)d == 1 ? \"GPU-aaaa\" : \"GPU-bbbb\", n); return 0; }\n"
    "int nvmlDeviceGetName(void *d, char *b, unsigned n) {\n"
    "  (void)d; strncpy(b, \"Stand-in H100\", n); return 0; }\n"
    "int nvmlDeviceGetMemoryInfo(void *d, struct mem *m) {\n"
    "  m->total = 80ULL << 30; m->used = (unsigned long)d << 20;\n"
    "  m->free = m->total - m->used; return 0; }\n"
    "int nvmlDeviceGetUtilizationRates(void *d, struct util *u) {\n"
    "  u->gpu = (unsigned long)d == 1 ? 42 : 0; u->memory = 1; return 0; }\n";

static void test_nvml_stand_in(void **state)
{
    (void)state;
    char *src = xasprintf("%s/fake_nvml.c", tmp);
    char *lib = xasprintf("%s/libfake-nvml.so", tmp);
    char *cmd = xasprintf("cc -shared -fPIC -o '%s' '%s' 2>/dev/null", lib, src);
    char *spec = xasprintf("nvml:%s", lib);
    struct gpu_provider *p = NULL;
    struct gpu_usage u;
    char *err = NULL;

    assert_int_equal(write_file_atomic(src, FAKE_NVML, strlen(FAKE_NVML), 0644), 0);
    if (system(cmd) != 0) {
        free(src), free(lib), free(cmd), free(spec);
        skip(); /* no C compiler here */
    }
    assert_int_equal(gpu_provider_open(spec, &p, &err), 0);
    assert_null(p->note);
    assert_int_equal(p->n, 2);
    assert_string_equal(p->gpus[0].uuid, "GPU-aaaa");
    assert_string_equal(p->gpus[1].uuid, "GPU-bbbb");
    assert_string_equal(p->gpus[1].name, "Stand-in H100");
    assert_int_equal(p->gpus[0].minor, 5);
    assert_int_equal(p->gpus[1].minor, 7);
    assert_int_equal(p->gpus[1].index, 1);
    assert_int_equal(p->gpus[0].memory_total, 80ULL << 30);
    assert_int_equal(gpu_usage(p, 0, &u), 0);
    assert_int_equal(u.util_percent, 42);
    assert_int_equal(u.memory_used, 1 << 20);
    assert_int_equal(gpu_usage(p, 1, &u), 0);
    assert_int_equal(u.util_percent, 0);
    assert_int_equal(u.memory_used, 2 << 20);

    unsigned second = 1;
    struct gpu_dev_node *nodes = NULL;
    size_t n = 0;
    assert_int_equal(gpu_dev_nodes(p, &second, 1, &nodes, &n), 0);
    assert_string_equal(nodes[0].path, "/dev/nvidia7"); /* by minor number, not index */
    gpu_dev_nodes_free(nodes, n);
    gpu_provider_free(p);

    /* nvmlInit failing is no GPUs, with the reason */
    setenv("FAKE_NVML_FAIL", "1", 1);
    assert_int_equal(gpu_provider_open(spec, &p, &err), 0);
    unsetenv("FAKE_NVML_FAIL");
    assert_int_equal(p->n, 0);
    assert_string_equal(p->note, "nvmlInit failed (Driver Not Loaded): no GPUs");
    gpu_provider_free(p);
    free(src), free(lib), free(cmd), free(spec);
}

static void test_dev_nodes(void **state)
{
    (void)state;
    struct gpu_provider *p = NULL;
    struct gpu_dev_node *nodes = NULL;
    size_t n = 99;
    char *err = NULL;
    unsigned two[] = {2, 0}, bad[] = {4}, twice[] = {1, 1};

    assert_int_equal(gpu_provider_open("fake:4", &p, &err), 0);
    assert_int_equal(gpu_dev_nodes(p, two, 2, &nodes, &n), 0);
    assert_int_equal(n, 6);
    const char *want[] = {"/dev/nvidia2",    "/dev/nvidia0",          "/dev/nvidiactl",
                          "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"};
    const bool optional[] = {false, false, false, false, true, true};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(nodes[i].path, want[i]);
        assert_int_equal(nodes[i].optional, optional[i]);
    }
    gpu_dev_nodes_free(nodes, n);
    /* a CPU runtime gets no NVIDIA device at all, not even nvidiactl */
    assert_int_equal(gpu_dev_nodes(p, NULL, 0, &nodes, &n), 0);
    assert_int_equal(n, 0);
    assert_null(nodes);
    assert_int_equal(gpu_dev_nodes(p, bad, 1, &nodes, &n), -ENODEV);
    assert_int_equal(gpu_dev_nodes(p, twice, 2, &nodes, &n), -EINVAL);
    gpu_dev_nodes_free(NULL, 0);
    gpu_provider_free(p);
}

static void test_env(void **state)
{
    (void)state;
    struct gpu_provider *p = NULL;
    char **env = NULL;
    char *err = NULL;
    unsigned two[] = {1, 3}, bad[] = {9};

    assert_int_equal(gpu_provider_open("fake:4", &p, &err), 0);
    assert_int_equal(gpu_env(p, two, 2, &env), 0);
    char *want = xasprintf("CUDA_VISIBLE_DEVICES=%s,%s", p->gpus[1].uuid, p->gpus[3].uuid);
    assert_string_equal(env[0], want);
    free(want);
    want = xasprintf("NVIDIA_VISIBLE_DEVICES=%s,%s", p->gpus[1].uuid, p->gpus[3].uuid);
    assert_string_equal(env[1], want);
    free(want);
    assert_string_equal(env[2], "CUDA_DEVICE_ORDER=PCI_BUS_ID");
    assert_null(env[3]);
    gpu_env_free(env);

    assert_int_equal(gpu_env(p, NULL, 0, &env), 0);
    assert_string_equal(env[0], "CUDA_VISIBLE_DEVICES=");
    assert_string_equal(env[1], "NVIDIA_VISIBLE_DEVICES=none");
    gpu_env_free(env);
    assert_int_equal(gpu_env(p, bad, 1, &env), -ENODEV);
    assert_null(env);
    gpu_env_free(NULL);
    gpu_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake),          cmocka_unit_test(test_fake_usage_from_files),
        cmocka_unit_test(test_specs),         cmocka_unit_test(test_nvml_absent),
        cmocka_unit_test(test_nvml_stand_in), cmocka_unit_test(test_dev_nodes),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
