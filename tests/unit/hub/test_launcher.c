/* The launcher's checks on what the unprivileged hub asks of it: only agents of
 * sandboxes in this data folder, with the data folder hidden, and only GPU devices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "hub/launcher.h"

static const struct launcher_conf conf = {.data_dir = "/srv/lb",
                                          .runtimes_dir = "/srv/lb/runtimes",
                                          .drive_dir = "/srv/lb/drive",
                                          .sock_path = "/srv/lb/run/hub.sock",
                                          .self_exe = "/usr/bin/labbook",
                                          .python_dir = "/usr/share/labbook/python",
                                          .hub_uid = 999,
                                          .hub_gid = 999,
                                          .sandboxed = true};

#define ID "0b2d2bba-023e-4267-865e-475912a92f21"

/* A config as the hub writes it; edit(o) changes it before the check. */
static int check(void (*edit)(json_t *), char **why)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:{s:s, s:s, s:[s], s:[s], s:i, s:s}}", "id",
                          ID, "secret", "x", "hub_socket", "/srv/lb/run/hub.sock", "runtime_dir",
                          "/srv/lb/runtimes/" ID, "argv", "python3", "sandbox", "state_dir",
                          "/srv/lb/runtimes/" ID, "drive_dir", "/srv/lb/drive/alice", "mask_paths",
                          "/srv/lb", "devices", "/dev/nvidia0", "id_base", 100000 + 3 * 65536,
                          "root_image", "/");
    if (edit)
        edit(o);
    char *text = json_dumps(o, 0);
    json_decref(o);
    int r = launcher_check_config(&conf, ID, text, strlen(text), why);
    free(text);
    return r;
}

static json_t *sbx(json_t *o)
{
    return json_object_get(o, "sandbox");
}
static void no_sandbox(json_t *o)
{
    json_object_del(o, "sandbox");
}
static void other_state(json_t *o)
{
    json_object_set_new(sbx(o), "state_dir", json_string("/etc"));
}
static void other_drive(json_t *o)
{
    json_object_set_new(sbx(o), "drive_dir", json_string("/srv/lb/drive/../labbook.db"));
}
static void drive_root(json_t *o)
{
    json_object_set_new(sbx(o), "drive_dir", json_string("/"));
}
static void data_visible(json_t *o)
{
    json_object_set_new(sbx(o), "mask_paths", json_pack("[s]", "/tmp"));
}
static void disk_device(json_t *o)
{
    json_object_set_new(sbx(o), "devices", json_pack("[s]", "/dev/sda"));
}
static void host_ids(json_t *o)
{
    json_object_set_new(sbx(o), "id_base", json_integer(0));
}
static void other_image(json_t *o)
{
    json_object_set_new(sbx(o), "root_image", json_string("/srv/evil"));
}
static void other_socket(json_t *o)
{
    json_object_set_new(o, "hub_socket", json_string("/tmp/x.sock"));
}
static void other_id(json_t *o)
{
    json_object_set_new(o, "id", json_string("11111111-023e-4267-865e-475912a92f21"));
}
static void other_python(json_t *o)
{
    json_object_set_new(sbx(o), "python_dir", json_string("/etc"));
}
static void our_python(json_t *o)
{
    json_object_set_new(sbx(o), "python_dir", json_string("/usr/share/labbook/python"));
}
static void no_drive(json_t *o)
{
    json_object_del(sbx(o), "drive_dir");
    json_object_set_new(sbx(o), "drive_later", json_true());
}

static void test_accepts_what_the_hub_writes(void **state)
{
    (void)state;
    char *why = NULL;
    assert_int_equal(check(NULL, &why), 0);
    assert_null(why);
    assert_int_equal(check(no_drive, &why), 0); /* a pooled runtime: its drive comes later */
    assert_int_equal(check(our_python, &why), 0);
}

static void test_refuses_anything_else(void **state)
{
    (void)state;
    struct {
        void (*edit)(json_t *);
        const char *says;
    } cases[] = {
        {no_sandbox, "must describe a sandbox"},
        {other_state, "state_dir"},
        {other_drive, "drive"},
        {drive_root, "drive"},
        {data_visible, "hide the data folder"},
        {disk_device, "not a GPU"},
        {host_ids, "id_base"},
        {other_image, "root image"},
        {other_socket, "must dial"},
        {other_id, "another runtime"},
        {other_python, "python_dir"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *why = NULL;
        assert_int_equal(check(cases[i].edit, &why), -22);
        assert_non_null(why);
        if (!strstr(why, cases[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, cases[i].says);
        free(why);
    }
    char *why = NULL;
    assert_int_equal(launcher_check_config(&conf, ID, "not json", 8, &why), -22);
    free(why);
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(launcher_valid_id(ID));
    assert_false(launcher_valid_id("../../etc"));
    assert_false(launcher_valid_id("0B2D2BBA-023E-4267-865E-475912A92F21"));
    assert_false(launcher_valid_id(ID "0"));
    assert_false(launcher_valid_id("0b2d2bba/023e-4267-865e-475912a92f21"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_what_the_hub_writes),
        cmocka_unit_test(test_refuses_anything_else),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
