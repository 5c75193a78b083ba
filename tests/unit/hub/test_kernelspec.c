/* Tests for kernelspec discovery (hub/kernelspec.c): data path order, first folder wins,
 * invalid specs skipped, the /api/kernelspecs model, and resource lookups that stay inside. */
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

#include "common/util.h"
#include "hub/kernelspec.h"

static char *base;

static void put(const char *rel, const char *data)
{
    char *p = xasprintf("%s/%s", base, rel);
    char *dir = xstrdup(p);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(mkdir_p(dir, 0755), 0);
    assert_int_equal(write_file_atomic(p, data, strlen(data), 0644), 0);
    free(dir);
    free(p);
}

static const char *SPEC = "{\"argv\": [\"python3\", \"-m\", \"ipykernel_launcher\", \"-f\", "
                          "\"{connection_file}\"], \"display_name\": \"%s\", \"language\": "
                          "\"python\"}";

static void put_spec(const char *dir, const char *display)
{
    char *rel = xasprintf("%s/kernel.json", dir);
    char *json = xasprintf(SPEC, display);
    put(rel, json);
    free(rel);
    free(json);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("LABBOOK_TEST_TMP");
    if (!t || !t[0])
        t = "/tmp";
    mkdir_p(t, 0755);
    base = xasprintf("%s/kernelspec-XXXXXX", t);
    assert_non_null(mkdtemp(base));
    put_spec("a/kernels/python3", "Python A");
    put("a/kernels/python3/logo-64x64.png", "png");
    put("a/kernels/python3/logo-32x32.png", "png");
    put("a/kernels/python3/logo-svg.svg", "<svg/>");
    put("a/kernels/python3/kernel.js", "// js");
    put_spec("b/kernels/python3", "Python B");
    put_spec("b/kernels/r-kernel", "R");
    put_spec("c/kernels/Julia-1", "Julia");
    put("a/kernels/noargv/kernel.json", "{\"display_name\": \"x\"}");
    put("a/kernels/badargv/kernel.json", "{\"argv\": [\"x\", 1]}");
    put("a/kernels/notjson/kernel.json", "{argv");
    put("a/kernels/nojson/readme.txt", "nothing");
    put_spec("a/kernels/bad name", "Bad");
    char *link = xasprintf("%s/a/kernels/python3/passwd", base);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    free(link);
    link = xasprintf("%s/a/kernels/python3/sibling", base);
    assert_int_equal(symlink("../r-kernel", link), 0);
    free(link);
    char *jp = xasprintf("%s/a:%s/b", base, base);
    setenv("JUPYTER_PATH", jp, 1);
    free(jp);
    char *dd = xasprintf("%s/c", base);
    setenv("JUPYTER_DATA_DIR", dd, 1);
    free(dd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(base);
    return 0;
}

static const struct kernelspec *find(const struct kernelspec *ks, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ks[i].name, name))
            return &ks[i];
    return NULL;
}

static void test_scan_order_and_validity(void **state)
{
    (void)state;
    struct kernelspec *ks = NULL;
    size_t n = 0;
    assert_int_equal(kernelspec_scan(&ks, &n), 0);
    const struct kernelspec *py = find(ks, n, "python3");
    assert_non_null(py);
    /* the first folder on the path wins */
    assert_string_equal(json_string_value(json_object_get(py->spec, "display_name")), "Python A");
    char *want = xasprintf("%s/a/kernels/python3", base);
    assert_string_equal(py->resource_dir, want);
    free(want);
    assert_non_null(find(ks, n, "r-kernel"));
    /* names are lowercased as jupyter_client does, and the data dir is searched */
    assert_non_null(find(ks, n, "julia-1"));
    /* invalid ones are skipped */
    assert_null(find(ks, n, "noargv"));
    assert_null(find(ks, n, "badargv"));
    assert_null(find(ks, n, "notjson"));
    assert_null(find(ks, n, "nojson"));
    assert_null(find(ks, n, "bad name"));
    /* defaults are filled in */
    assert_string_equal(json_string_value(json_object_get(py->spec, "interrupt_mode")), "signal");
    assert_true(json_is_object(json_object_get(py->spec, "env")));
    assert_true(json_is_object(json_object_get(py->spec, "metadata")));
    /* sorted by name */
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(ks[i - 1].name, ks[i].name) < 0);
    kernelspec_list_free(ks, n);
    kernelspec_list_free(NULL, 0);
}

static void test_list_model(void **state)
{
    (void)state;
    struct kernelspec *ks = NULL;
    size_t n = 0;
    assert_int_equal(kernelspec_scan(&ks, &n), 0);
    json_t *m = kernelspec_list_model(ks, n, "r-kernel");
    assert_string_equal(json_string_value(json_object_get(m, "default")), "r-kernel");
    json_t *py = json_object_get(json_object_get(m, "kernelspecs"), "python3");
    assert_non_null(py);
    assert_string_equal(json_string_value(json_object_get(py, "name")), "python3");
    json_t *spec = json_object_get(py, "spec");
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "argv"), 0)),
                        "python3");
    assert_string_equal(json_string_value(json_object_get(spec, "language")), "python");
    json_t *res = json_object_get(py, "resources");
    assert_string_equal(json_string_value(json_object_get(res, "logo-64x64")),
                        "/kernelspecs/python3/logo-64x64.png");
    assert_string_equal(json_string_value(json_object_get(res, "logo-32x32")),
                        "/kernelspecs/python3/logo-32x32.png");
    assert_string_equal(json_string_value(json_object_get(res, "logo-svg")),
                        "/kernelspecs/python3/logo-svg.svg");
    assert_string_equal(json_string_value(json_object_get(res, "kernel.js")),
                        "/kernelspecs/python3/kernel.js");
    assert_int_equal(json_object_size(res), 4);
    json_t *r = json_object_get(json_object_get(json_object_get(m, "kernelspecs"), "r-kernel"),
                                "resources");
    assert_int_equal(json_object_size(r), 0);
    json_decref(m);
    /* an unknown default falls back to python3 */
    m = kernelspec_list_model(ks, n, "nope");
    assert_string_equal(json_string_value(json_object_get(m, "default")), "python3");
    json_decref(m);
    kernelspec_list_free(ks, n);
    /* no kernelspecs at all */
    m = kernelspec_list_model(NULL, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(m, "default")), "python3");
    assert_int_equal(json_object_size(json_object_get(m, "kernelspecs")), 0);
    json_decref(m);
}

static void test_resource_path(void **state)
{
    (void)state;
    struct kernelspec *ks = NULL;
    size_t n = 0;
    assert_int_equal(kernelspec_scan(&ks, &n), 0);
    char *p = NULL;
    assert_int_equal(kernelspec_resource_path(ks, n, "python3", "logo-64x64.png", &p), 0);
    char *want = xasprintf("%s/a/kernels/python3/logo-64x64.png", base);
    assert_string_equal(p, want);
    free(want);
    free(p);
    const char *bad[] = {"../r-kernel/kernel.json",
                         "..",
                         ".",
                         "",
                         "/etc/passwd",
                         "passwd",
                         "sibling/kernel.json",
                         "./logo-64x64.png",
                         "missing.png",
                         "logo-64x64.png/..",
                         "a//b"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        p = NULL;
        assert_int_equal(kernelspec_resource_path(ks, n, "python3", bad[i], &p), -ENOENT);
        assert_null(p);
    }
    assert_int_equal(kernelspec_resource_path(ks, n, "nope", "logo-64x64.png", &p), -ENOENT);
    assert_int_equal(kernelspec_resource_path(ks, n, "python3", NULL, &p), -ENOENT);
    kernelspec_list_free(ks, n);
}

static void test_data_dir_from_home(void **state)
{
    (void)state;
    unsetenv("JUPYTER_PATH");
    unsetenv("JUPYTER_DATA_DIR");
    unsetenv("XDG_DATA_HOME");
    char *old_home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
    char *home = xasprintf("%s/home", base);
    setenv("HOME", home, 1);
    put_spec("home/.local/share/jupyter/kernels/homekernel", "Home");
    struct kernelspec *ks = NULL;
    size_t n = 0;
    assert_int_equal(kernelspec_scan(&ks, &n), 0);
    assert_non_null(find(ks, n, "homekernel"));
    assert_null(find(ks, n, "r-kernel"));
    kernelspec_list_free(ks, n);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_order_and_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_from_home, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
