/* Tests for the runtime figures (hub/figures.c) and `labbook status`'s tables
 * (hub/cli_status.c): Prometheus formatting and label escaping, cgroup v1 and v2 readers
 * on fake cgroup trees, the bounded disk walk, and a whole sample of a fake hub rendered
 * as /metrics, the /api/runtimes model and the status table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/util.h"
#include "hub/cli_status.h"
#include "hub/figures.h"
#include "hub/hub.h"
#include "hub/kernels.h"
#include "hub/scheduler.h"
#include "sandbox/gpu.h"

static char *tmpdir(void)
{
    char t[] = "/tmp/labbook-figures-XXXXXX";
    assert_non_null(mkdtemp(t));
    return xstrdup(t);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = xasprintf("%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    assert_int_equal(mkdir_p(p, 0755), 0);
    *slash = '/';
    assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
    free(p);
}

static void rm_rf(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static char *text_of(struct buf *b)
{
    buf_append(b, "", 0);
    return b->data;
}

static void test_prom_escape(void **state)
{
    (void)state;
    struct buf b = {0};
    prom_escape_label(&b, "a\\b\"c\nd");
    assert_string_equal(text_of(&b), "a\\\\b\\\"c\\nd");
    buf_reset(&b);
    const char *l[] = {"id", "x\"y", "user", "al\\ice", NULL};
    prom_sample(&b, "m_bytes", l, 1234567890123.0);
    prom_sample(&b, "m_ratio", NULL, 0.25);
    prom_sample(&b, "m_zero", NULL, 0);
    prom_header(&b, "m", "gauge", "Help text.");
    assert_string_equal(text_of(&b), "m_bytes{id=\"x\\\"y\",user=\"al\\\\ice\"} 1234567890123\n"
                                     "m_ratio 0.25\n"
                                     "m_zero 0\n"
                                     "# HELP m Help text.\n# TYPE m gauge\n");
    buf_free(&b);
}

static void test_cgroup_v2(void **state)
{
    (void)state;
    char *d = tmpdir();
    put(d, "labbook/k1/memory.current", "300000000\n");
    put(d, "labbook/k1/memory.stat", "anon 1\ninactive_file 100000000\nactive_file 5\n");
    put(d, "labbook/k1/memory.max", "1073741824\n");
    put(d, "labbook/k1/cpu.stat", "usage_usec 2500000\nuser_usec 1\n");
    put(d, "labbook/k2/memory.current", "5\n");
    put(d, "labbook/k2/memory.max", "max\n");
    struct runtime_figures f = {0};
    assert_int_equal(figures_read_cgroup(d, "k1", &f), 0);
    assert_true(f.have_mem && f.have_limit && f.have_cpu);
    assert_int_equal(f.mem_used, 200000000);
    assert_int_equal(f.mem_limit, 1073741824);
    assert_true(f.cpu_seconds > 2.49 && f.cpu_seconds < 2.51);
    struct runtime_figures g = {0};
    assert_int_equal(figures_read_cgroup(d, "k2", &g), 0);
    assert_true(g.have_mem);
    assert_false(g.have_limit); /* "max": no limit */
    struct runtime_figures n = {0};
    assert_int_equal(figures_read_cgroup(d, "nope", &n), -ENOENT);
    assert_false(n.have_mem);
    rm_rf(d);
    free(d);
}

static void test_cgroup_v1(void **state)
{
    (void)state;
    char *d = tmpdir();
    put(d, "memory/labbook/k1/memory.usage_in_bytes", "52428800\n");
    put(d, "memory/labbook/k1/memory.stat", "cache 1\ntotal_inactive_file 2428800\n");
    put(d, "memory/labbook/k1/memory.limit_in_bytes", "9223372036854771712\n");
    put(d, "cpuacct/labbook/k1/cpuacct.usage", "1500000000\n");
    struct runtime_figures f = {0};
    assert_int_equal(figures_read_cgroup(d, "k1", &f), 0);
    assert_int_equal(f.mem_used, 50000000);
    assert_false(f.have_limit);
    assert_true(f.have_cpu && f.cpu_seconds > 1.49 && f.cpu_seconds < 1.51);
    /* No cpuacct: the CPU time of the processes in the memory cgroup (ours here). */
    char pid[32];
    snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    put(d, "memory/labbook/k2/memory.usage_in_bytes", "1\n");
    put(d, "memory/labbook/k2/memory.limit_in_bytes", "4096\n");
    put(d, "memory/labbook/k2/cgroup.procs", pid);
    volatile uint64_t spin = 0;
    for (uint64_t i = 0; i < 300000000ULL; i++)
        spin += i;
    struct runtime_figures g = {0};
    assert_int_equal(figures_read_cgroup(d, "k2", &g), 0);
    assert_true(g.have_limit && g.mem_limit == 4096);
    assert_true(g.have_cpu);
    assert_true(g.cpu_seconds > 0.0);
    rm_rf(d);
    free(d);
}

static void test_disk_usage(void **state)
{
    (void)state;
    char *d = tmpdir();
    char *big = xmalloc(1 << 20);
    memset(big, 'x', 1 << 20);
    char *p = xasprintf("%s/a/b/c/big", d);
    put(d, "a/b/c/small", "hello");
    assert_int_equal(write_file_atomic(p, big, 1 << 20, 0644), 0);
    long budget = 1000;
    bool partial = false;
    uint64_t n = figures_disk_usage(d, &budget, &partial);
    assert_false(partial);
    assert_true(n >= (1 << 20) && n < (1 << 20) + 64 * 1024);
    /* A link to elsewhere is not followed. */
    char *ln = xasprintf("%s/a/loop", d);
    assert_int_equal(symlink("/usr", ln), 0);
    budget = 1000;
    assert_true(figures_disk_usage(d, &budget, &partial) < (1 << 20) + 64 * 1024);
    /* A small budget stops the walk and says so. */
    for (int i = 0; i < 50; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "many/f%d", i);
        put(d, rel, "x");
    }
    budget = 10;
    partial = false;
    figures_disk_usage(d, &budget, &partial);
    assert_true(partial);
    budget = 10;
    partial = false;
    assert_int_equal(figures_disk_usage("/nonexistent/x", &budget, &partial), 0);
    free(ln);
    free(p);
    free(big);
    rm_rf(d);
    free(d);
}

/* ---- a whole sample of a fake hub ---- */

static bool sampled;
static void on_sampled(struct hub *h, void *ctx)
{
    (void)h;
    (void)ctx;
    sampled = true;
}

static void sample(struct hub *h)
{
    sampled = false;
    figures_refresh(h, 0, on_sampled, NULL);
    while (!sampled)
        uv_run(h->loop, UV_RUN_ONCE);
}

static struct kernel *fake_kernel(struct hub *h, const char *id, const char *owner,
                                  const char *profile, unsigned gpu)
{
    struct kernel *k = xcalloc(1, sizeof(*k));
    k->hub = h;
    snprintf(k->id, sizeof(k->id), "%s", id);
    k->spec_name = xstrdup("python3");
    k->base_spec = xstrdup("python3");
    snprintf(k->profile, sizeof(k->profile), "%s", profile);
    snprintf(k->owner_name, sizeof(k->owner_name), "%s", owner);
    snprintf(k->execution_state, sizeof(k->execution_state), "idle");
    snprintf(k->last_activity, sizeof(k->last_activity), "2026-01-01T00:00:00.000000Z");
    k->life = KERNEL_RUNNING;
    k->created_ms = now_ms() - 125000;
    if (gpu != (unsigned)-1) {
        k->gpus[0] = gpu;
        k->ngpus = 1;
    }
    k->next = h->kernels;
    h->kernels = k;
    return k;
}

static void test_hub_sample(void **state)
{
    (void)state;
    char *d = tmpdir();
    struct hub hub = {0};
    struct hub *h = &hub;
    char *err = NULL;
    assert_int_equal(config_load(NULL, &h->cfg, &err), 0);
    assert_int_equal(gpu_provider_open("fake:2", &h->gpus, &err), 0);
    config_add_gpu_profile(&h->cfg);
    h->sched = scheduler_new(2);
    h->loop = uv_default_loop();
    h->data_dir = xstrdup(d);
    h->runtimes_dir = xasprintf("%s/runtimes", d);
    h->sandboxed = true;
    h->http_connections = 3;
    char *cg = xasprintf("%s/cg", d);
    figures_set_cgroup_root(cg);
    const char *id1 = "11111111-aaaa-4bbb-8ccc-000000000001";
    const char *id2 = "22222222-aaaa-4bbb-8ccc-000000000002";
    struct sched_ask ask = {.user_id = 1, .request_id = id2, .profile = "gpu", .ngpus = 1};
    unsigned g0 = 0;
    assert_int_equal(scheduler_adopt(h->sched, &ask, &g0), 0);
    fake_kernel(h, id1, "alice", "cpu", (unsigned)-1);
    fake_kernel(h, id2, "bob", "gpu", 0);
    assert_int_equal(gpu_fake_set_usage(h->gpus, 0, 40, 2ULL << 30), 0);
    char rel[200];
    snprintf(rel, sizeof(rel), "cg/memory/labbook/%s/memory.usage_in_bytes", id1);
    put(d, rel, "262144000\n");
    snprintf(rel, sizeof(rel), "cg/memory/labbook/%s/memory.limit_in_bytes", id1);
    put(d, rel, "1073741824\n");
    snprintf(rel, sizeof(rel), "cg/cpuacct/labbook/%s/cpuacct.usage", id1);
    put(d, rel, "1000000000\n");
    snprintf(rel, sizeof(rel), "runtimes/%s/content/data.bin", id1);
    char *mb = xcalloc(1, 3 << 20);
    memset(mb, 1, 3 << 20);
    put(d, rel, "");
    char *p = xasprintf("%s/%s", d, rel);
    assert_int_equal(write_file_atomic(p, mb, 3 << 20, 0644), 0);
    free(p);
    free(mb);

    sample(h);
    const struct runtime_figures *f = figures_get(id1);
    assert_non_null(f);
    assert_true(f->have_mem && f->mem_used == 262144000);
    assert_true(f->have_disk && f->disk_used >= (3 << 20));
    assert_false(f->have_pct); /* one sample: no rate yet */
    /* A second sample 1.0 s of CPU later gives a percentage. */
    snprintf(rel, sizeof(rel), "cg/cpuacct/labbook/%s/cpuacct.usage", id1);
    usleep(200 * 1000);
    put(d, rel, "1100000000\n");
    sample(h);
    f = figures_get(id1);
    assert_true(f->have_pct && f->cpu_percent > 10 && f->cpu_percent <= 60);

    size_t len;
    char *m = figures_metrics_text(h, &len);
    assert_int_equal(strlen(m), len);
    char line[300];
    snprintf(line, sizeof(line),
             "\nlabbook_runtime_memory_bytes{id=\"%s\",user=\"alice\",profile=\"cpu\"} 262144000\n",
             id1);
    assert_non_null(strstr(m, line));
    snprintf(line, sizeof(line),
             "\nlabbook_runtime_memory_limit_bytes{id=\"%s\",user=\"alice\",profile=\"cpu\"} "
             "1073741824\n",
             id1);
    assert_non_null(strstr(m, line));
    assert_non_null(strstr(m, "\n# TYPE labbook_runtime_cpu_seconds_total counter\n"));
    assert_non_null(strstr(m, "labbook_runtime_cpu_seconds_total{id=\"11111111-aaaa-4bbb-8ccc-"
                              "000000000001\",user=\"alice\",profile=\"cpu\"} 1.1"));
    assert_non_null(strstr(m, "\nlabbook_runtimes{profile=\"cpu\",state=\"running\"} 1\n"));
    assert_non_null(strstr(m, "\nlabbook_runtimes{profile=\"gpu\",state=\"queued\"} 0\n"));
    assert_non_null(strstr(m, "\nlabbook_gpu_utilization_ratio{gpu=\"0\",uuid=\"GPU-fa4e0000-0000-"
                              "4000-8000-000000000000\"} 0.40000000000000002\n"));
    assert_non_null(strstr(m, "\nlabbook_gpu_memory_used_bytes{gpu=\"0\",uuid=\"GPU-fa4e0000-0000-"
                              "4000-8000-000000000000\"} 2147483648\n"));
    assert_non_null(strstr(m, "\nlabbook_gpus_free 1\n"));
    assert_non_null(strstr(m, "\nlabbook_queue_length 0\n"));
    assert_non_null(strstr(m, "\nlabbook_http_connections 3\n"));
    /* bob's runtime has no cgroup: no memory series for it, rather than a made-up one. */
    assert_null(strstr(m, "labbook_runtime_memory_bytes{id=\"2222"));
    /* Every sample line's metric has a TYPE line before it. */
    for (char *l = m; *l;) {
        char *nl = strchr(l, '\n');
        assert_non_null(nl);
        if (*l != '#') {
            char name[100];
            size_t nlen = strcspn(l, "{ ");
            snprintf(name, sizeof(name), "# TYPE %.*s ", (int)nlen, l);
            char *t = strstr(m, name);
            assert_true(t && t < l);
        }
        l = nl + 1;
    }
    free(m);

    json_t *model = figures_runtime_model(h, h->kernels->next); /* alice's */
    assert_string_equal(json_string_value(json_object_get(model, "id")), id1);
    assert_string_equal(json_string_value(json_object_get(model, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(model, "memory"), "used")),
                     262144000);
    assert_true(json_is_null(json_object_get(model, "queue_position")));
    json_decref(model);
    model = figures_runtime_model(h, h->kernels); /* bob's, on GPU 0 */
    json_t *gpu = json_array_get(json_object_get(model, "gpus"), 0);
    assert_int_equal(json_integer_value(json_object_get(gpu, "util")), 40);
    assert_string_equal(json_string_value(json_object_get(gpu, "name")), "Fake GPU 0");
    assert_true(json_is_null(json_object_get(json_object_get(model, "memory"), "used")));
    json_decref(model);

    /* The status snapshot, through JSON text as the CLI reads it, as a table. */
    json_t *st = figures_status_json(h);
    char *txt = json_dumps(st, 0);
    json_decref(st);
    st = json_loads(txt, 0, NULL);
    free(txt);
    struct buf b = {0};
    cli_status_format(st, &b);
    char *out = text_of(&b);
    assert_non_null(strstr(out, "GPUs (1 free)\n"));
    assert_non_null(strstr(out, "Fake GPU 0"));
    assert_non_null(strstr(out, "bob (22222222)"));
    assert_non_null(strstr(out, "Runtimes (2)\n"));
    assert_non_null(strstr(out, "  11111111  alice"));
    assert_non_null(strstr(out, "250 MiB / 1.0 GiB"));
    assert_non_null(strstr(out, "2 min"));
    assert_non_null(strstr(out, "Queue (0 waiting)\n  empty\n"));
    buf_free(&b);
    json_decref(st);

    while (h->kernels) {
        struct kernel *k = h->kernels;
        h->kernels = k->next;
        free(k->spec_name);
        free(k->base_spec);
        free(k);
    }
    sample(h); /* forgets them */
    assert_null(figures_get(id1));
    figures_set_cgroup_root(NULL);
    free(cg);
    scheduler_free(h->sched);
    gpu_provider_free(h->gpus);
    config_free(&h->cfg);
    free(h->data_dir);
    free(h->runtimes_dir);
    rm_rf(d);
    free(d);
}

static void test_status_table(void **state)
{
    (void)state;
    const char *sample =
        "{\"version\":1,\"gpus_free\":0,\"queue_length\":2,"
        "\"gpus\":[{\"index\":0,\"name\":\"NVIDIA H100\",\"util\":97,\"memory_used\":"
        "42949672960,\"holder\":\"alice\",\"runtime\":\"abcdef0123456789\"}],"
        "\"runtimes\":[{\"id\":\"abcdef0123456789\",\"owner\":\"alice\",\"profile\":\"gpu\","
        "\"state\":\"running\",\"execution_state\":\"busy\",\"memory\":{\"used\":1073741824,"
        "\"limit\":17179869184},\"cpu\":{\"seconds\":12.5,\"percent\":99.6},\"gpus\":[{\"index\":"
        "0}],\"age_s\":7300},{\"id\":\"ffff0000\",\"owner\":\"evil\\u001b[2Jname\",\"profile\":"
        "\"gpu\",\"state\":\"queued\",\"memory\":{\"used\":null,\"limit\":null},\"cpu\":{},"
        "\"gpus\":[],\"age_s\":5}],"
        "\"queue\":[{\"position\":2,\"owner\":\"carol\",\"profile\":\"gpu\",\"id\":\"c\"},"
        "{\"position\":1,\"owner\":\"bob\",\"profile\":\"gpu\",\"id\":\"b\"}]}";
    json_t *st = json_loads(sample, 0, NULL);
    assert_non_null(st);
    struct buf b = {0};
    cli_status_format(st, &b);
    char *out = text_of(&b);
    assert_non_null(strstr(out, "  0    NVIDIA H100                   97 %   40.0 GiB    alice "
                                "(abcdef01)\n"));
    assert_non_null(
        strstr(out, "  abcdef01  alice             gpu         busy        1.0 GiB / 16.0 GiB     "
                    "100 %   0       2 h 1 min\n"));
    assert_non_null(strstr(out, "evil?[2Jname"));
    assert_null(strchr(out, '\033')); /* no terminal escapes from user strings */
    assert_non_null(strstr(out, "queued      - / -"));
    assert_non_null(strstr(out, "  1     bob               gpu         b\n"));
    assert_non_null(strstr(out, "Queue (2 waiting)\n"));
    buf_free(&b);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_escape), cmocka_unit_test(test_cgroup_v2),
        cmocka_unit_test(test_cgroup_v1),   cmocka_unit_test(test_disk_usage),
        cmocka_unit_test(test_hub_sample),  cmocka_unit_test(test_status_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
