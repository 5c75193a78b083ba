/* The cgroup backends against fake cgroup trees: what each writes for a runtime's
 * limits, where it puts a process, and how it reads why a runtime died. This machine
 * mounts cgroup v1 (CI's too), so the v2 backend, which most servers use, is checked
 * here file by file; the sandbox tests exercise v1 for real. The backends are static:
 * the test includes cgroup.c (STYLE.md). */
#include "../../../src/sandbox/cgroup.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static char root[512];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("LABBOOK_TEST_TMP");
    snprintf(root, sizeof(root), "%s/cgroup-%ld", t ? t : "/tmp", (long)getpid());
    assert_int_equal(mkdir_p(root, 0755), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    return 0;
}

static char *slurp(const char *fmt, const char *a)
{
    char *p = xasprintf(fmt, root, a);
    char *s = NULL;
    size_t n = 0;
    if (read_file(p, 1 << 20, &s, &n) < 0)
        s = NULL;
    free(p);
    return s;
}

static void put(const char *rel, const char *text)
{
    char *p = xasprintf("%s/%s", root, rel);
    char *dir = xstrdup(p);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
    free(dir);
    free(p);
}

/* cgroupfs makes a cgroup's interface files with it; a fake tree needs them made. */
static void files(const char *dir, const char *const *names)
{
    for (; *names; names++) {
        char *rel = xasprintf("%s/%s", dir, *names);
        put(rel, "");
        free(rel);
    }
}

static void test_v2_limits_attach_events(void **state)
{
    (void)state;
    static const char *const top[] = {"cgroup.subtree_control", NULL};
    static const char *const leaf[] = {"memory.max", "memory.swap.max", "pids.max",
                                       "cpu.weight", "cgroup.procs",    "cgroup.subtree_control",
                                       NULL};
    files(".", top);
    files("labbook", top);
    files("labbook/rt1", leaf);
    files("labbook/rt2", leaf);
    struct cgroup cg = {.ops = &v2_ops, .root = root, .rel = CG_PARENT "/rt1"};
    struct cgroup_limits l = {.memory = 4ULL << 30, .pids = 512, .cpu_weight = 200};
    struct sandbox_error err = {0};
    assert_int_equal(v2_create(&cg, &l, &err), 0);
    /* controllers enabled for the children, at the root and in labbook/ */
    char *s = slurp("%s/%s", "cgroup.subtree_control");
    assert_non_null(s);
    assert_int_equal(s[0], '+'); /* "+memory", "+pids", "+cpu", one write each */
    free(s);
    s = slurp("%s/labbook/%s", "cgroup.subtree_control");
    assert_non_null(s);
    assert_int_equal(s[0], '+');
    free(s);
    s = slurp("%s/labbook/rt1/%s", "memory.max");
    assert_string_equal(s, "4294967296");
    free(s);
    s = slurp("%s/labbook/rt1/%s", "memory.swap.max");
    assert_string_equal(s, "0"); /* no swapping around the limit */
    free(s);
    s = slurp("%s/labbook/rt1/%s", "pids.max");
    assert_string_equal(s, "512");
    free(s);
    s = slurp("%s/labbook/rt1/%s", "cpu.weight");
    assert_string_equal(s, "200");
    free(s);

    /* no limits: "max" everywhere, the default weight */
    struct cgroup cg2 = {.ops = &v2_ops, .root = root, .rel = CG_PARENT "/rt2"};
    struct cgroup_limits none = {0};
    assert_int_equal(v2_create(&cg2, &none, &err), 0);
    s = slurp("%s/labbook/rt2/%s", "memory.max");
    assert_string_equal(s, "max");
    free(s);
    s = slurp("%s/labbook/rt2/%s", "pids.max");
    assert_string_equal(s, "max");
    free(s);
    s = slurp("%s/labbook/rt2/%s", "cpu.weight");
    assert_string_equal(s, "100");
    free(s);

    assert_int_equal(v2_attach(&cg, 4242), 0);
    s = slurp("%s/labbook/rt1/%s", "cgroup.procs");
    assert_string_equal(s, "4242");
    free(s);

    /* what the kernel writes when the OOM killer and pids.max strike */
    put("labbook/rt1/memory.events",
        "low 0\nhigh 0\nmax 17\noom 3\noom_kill 2\noom_group_kill 0\n");
    put("labbook/rt1/pids.events", "max 5\n");
    struct cgroup_events ev = {0};
    assert_int_equal(v2_events(&cg, &ev), 0);
    assert_int_equal(ev.oom_kills, 2);
    assert_int_equal(ev.pids_max, 5);
    /* no pids.events (pids controller missing): no fork failures, not an error */
    put("labbook/rt2/memory.events", "oom_kill 0\n");
    assert_int_equal(v2_events(&cg2, &ev), 0);
    assert_int_equal(ev.oom_kills, 0);
    assert_int_equal(ev.pids_max, 0);
}

static void test_v1_limits_attach_events(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctl); i++) {
        char *d = xasprintf("%s/%s", root, v1_ctl[i]);
        assert_int_equal(mkdir_p(d, 0755), 0);
        free(d);
    }
    static const char *const mem[] = {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                                      "cgroup.procs", NULL};
    static const char *const pids[] = {"pids.max", "cgroup.procs", NULL};
    static const char *const cpu[] = {"cpu.shares", "cgroup.procs", NULL};
    files("memory/labbook/rt1", mem);
    files("pids/labbook/rt1", pids);
    files("cpu/labbook/rt1", cpu);
    struct cgroup cg = {.ops = &v1_ops, .root = root, .rel = CG_PARENT "/rt1"};
    struct cgroup_limits l = {.memory = 1ULL << 30, .pids = 64, .cpu_weight = 50};
    struct sandbox_error err = {0};
    assert_int_equal(v1_create(&cg, &l, &err), 0);
    char *s = slurp("%s/memory/labbook/rt1/%s", "memory.limit_in_bytes");
    assert_string_equal(s, "1073741824");
    free(s);
    s = slurp("%s/memory/labbook/rt1/%s", "memory.memsw.limit_in_bytes");
    assert_string_equal(s, "1073741824"); /* memory plus swap: no swapping either */
    free(s);
    s = slurp("%s/pids/labbook/rt1/%s", "pids.max");
    assert_string_equal(s, "64");
    free(s);
    s = slurp("%s/cpu/labbook/rt1/%s", "cpu.shares");
    assert_string_equal(s, "512"); /* weight 50 of 100 is 512 of 1024 shares */
    free(s);
    assert_int_equal(v1_attach(&cg, 4343), 0);
    for (size_t i = 0; i < ARRAY_SIZE(v1_ctl); i++) {
        char *f = xasprintf("%s/%s/labbook/rt1/cgroup.procs", root, v1_ctl[i]);
        char *t = NULL;
        size_t n;
        assert_int_equal(read_file(f, 1 << 20, &t, &n), 0);
        assert_string_equal(t, "4343");
        free(t);
        free(f);
    }
    put("memory/labbook/rt1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
    put("pids/labbook/rt1/pids.events", "max 9\n");
    struct cgroup_events ev = {0};
    assert_int_equal(v1_events(&cg, &ev), 0);
    assert_int_equal(ev.oom_kills, 4);
    assert_int_equal(ev.pids_max, 9);
}

static void test_open_refuses_what_is_not_a_cgroup(void **state)
{
    (void)state;
    struct cgroup *cg = NULL;
    struct sandbox_error err = {0};
    struct cgroup_limits l = {0};
    assert_int_equal(cgroup_open(root, "rt", &l, &cg, &err), -ENOTSUP);
    assert_null(cg);
    assert_non_null(strstr(err.msg, "no cgroup v2 or v1"));
    assert_int_equal(cgroup_open(root, "../x", &l, &cg, &err), -EINVAL);
    assert_int_equal(cgroup_open(root, "", &l, &cg, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_limits_attach_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_limits_attach_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_what_is_not_a_cgroup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
