/* Tests for the UI's routes and content types (hub/web.c): which paths are the UI's
 * pages, and the types its files are served with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hub/web.h"

static void test_pages(void **state)
{
    (void)state;
    const char *pages[] = {"/",    "/tree",      "/tree/a",           "/tree/a/b c",
                           "/lab", "/notebooks", "/notebooks/x.ipynb", "/edit/train.py"};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        assert_true(web_is_page(pages[i]));
    const char *not_pages[] = {"",
                               "/treex",
                               "/api/contents",
                               "/assets/app.js",
                               "/login",
                               "/notebooksx",
                               "/editx",
                               "/tre",
                               "/lab/x",
                               "/kernelspecs/python3/logo-64x64.png"};
    for (size_t i = 0; i < sizeof(not_pages) / sizeof(not_pages[0]); i++)
        assert_false(web_is_page(not_pages[i]));
}

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(web_mime_of("app-X.js"), "text/javascript; charset=utf-8");
    assert_string_equal(web_mime_of("style.css"), "text/css; charset=utf-8");
    assert_string_equal(web_mime_of("frame-1.html"), "text/html; charset=utf-8");
    assert_string_equal(web_mime_of("KaTeX_Main-Regular-X.woff2"), "font/woff2");
    assert_string_equal(web_mime_of("a.woff"), "font/woff");
    assert_string_equal(web_mime_of("a.ttf"), "font/ttf");
    assert_string_equal(web_mime_of("a.svg"), "image/svg+xml");
    assert_string_equal(web_mime_of("a.js.gz"), "application/octet-stream");
    assert_string_equal(web_mime_of("README"), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
