/* The launcher's checks on what the unprivileged hub asks of it: only agents of
 * sandboxes in this data folder, with the data folder hidden, only GPU devices, and a
 * drive named by its user; and the launcher itself driven by a fake hub on its socket
 * with hostile messages (links swapped in, another folder's names, a runtimes folder
 * replaced), which must touch nothing outside runtimes/<id>. Includes launcher.c to run
 * the launcher's loop in a child. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../../src/hub/launcher.c"
#include "common/fsat.h"

static char base[64], data[96], runtimes[128], drive[128], sock[128];
static struct launcher_conf conf;

#define ID "0b2d2bba-023e-4267-865e-475912a92f21"
#define ID2 "11111111-023e-4267-865e-475912a92f21"
#define ID3 "22222222-023e-4267-865e-475912a92f21"

static char *at(const char *rel)
{
    return xasprintf("%s/%s", base, rel);
}

static void mk(const char *rel)
{
    char *p = at(rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static void put(const char *rel, const char *text)
{
    char *p = at(rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    free(p);
}

static void link_to(const char *target, const char *rel)
{
    char *p = at(rel);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static void unlink_rel(const char *rel)
{
    char *p = at(rel);
    assert_int_equal(unlink(p), 0);
    free(p);
}

static bool exists(const char *rel)
{
    char *p = at(rel);
    struct stat st;
    bool yes = lstat(p, &st) == 0;
    free(p);
    return yes;
}

/* A victim outside the allowed folders: files, an empty folder, all root's, 0755. */
static void assert_victim_intact(void)
{
    char *p = at("victim/keep.txt");
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(st.st_mode & 07777, 0644);
    free(p);
    p = at("victim");
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(st.st_uid, 0);
    free(p);
    assert_true(exists("victim/empty"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/lb-launcher-XXXXXX");
    assert_non_null(mkdtemp(base));
    chmod(base, 0755);
    snprintf(data, sizeof(data), "%s/data", base);
    snprintf(runtimes, sizeof(runtimes), "%s/runtimes", data);
    snprintf(drive, sizeof(drive), "%s/drive", data);
    snprintf(sock, sizeof(sock), "%s/run/hub.sock", data);
    mk("data");
    mk("data/runtimes");
    chmod(runtimes, 0711);
    mk("data/drive");
    mk("data/drive/alice");
    mk("victim");
    mk("victim/empty");
    put("victim/keep.txt", "keep");
    char *victim = at("victim");
    link_to(victim, "data/drive/evil");
    free(victim);
    put("data/drive/afile", "x");
    conf = (struct launcher_conf){.data_dir = data,
                                  .runtimes_dir = runtimes,
                                  .drive_dir = drive,
                                  .sock_path = sock,
                                  .self_exe = "/bin/true",
                                  .python_dir = "/usr/share/labbook/python",
                                  .hub_uid = 65534,
                                  .hub_gid = 65534,
                                  .sandboxed = true};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fs_remove_path(base, 0);
    return 0;
}

/* A config as the hub writes it; edit(o) changes it before the check. */
static int check(void (*edit)(json_t *), char **why)
{
    char *rt = xasprintf("%s/" ID, runtimes);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:{s:s, s:s, s:s, s:[s], s:[s], s:i, s:s}}",
                          "id", ID, "secret", "x", "hub_socket", sock, "runtime_dir", rt, "argv",
                          "python3", "sandbox", "state_dir", rt, "data_dir", data, "drive_user",
                          "alice", "mask_paths", data, "devices", "/dev/nvidia0", "id_base",
                          100000 + 3 * 65536, "root_image", "/");
    free(rt);
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
static void a_drive_path(json_t *o)
{
    json_object_set_new(sbx(o), "drive_dir", json_string(drive));
}
static void drive_dotdot(json_t *o)
{
    json_object_set_new(sbx(o), "drive_user", json_string("../victim"));
}
static void drive_absolute(json_t *o)
{
    json_object_set_new(sbx(o), "drive_user", json_string("/etc"));
}
static void drive_link(json_t *o)
{
    json_object_set_new(sbx(o), "drive_user", json_string("evil"));
}
static void drive_file(json_t *o)
{
    json_object_set_new(sbx(o), "drive_user", json_string("afile"));
}
static void drive_missing(json_t *o)
{
    json_object_set_new(sbx(o), "drive_user", json_string("nobody"));
}
static void drive_elsewhere(json_t *o)
{
    json_object_set_new(sbx(o), "data_dir", json_string(base));
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
    json_object_set_new(o, "id", json_string(ID2));
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
    json_object_del(sbx(o), "drive_user");
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
        {a_drive_path, "named by its user"},
        {drive_dotdot, "a user's folder"},
        {drive_absolute, "a user's folder"},
        {drive_link, "a user's folder"},
        {drive_file, "a user's folder"},
        {drive_missing, "a user's folder"},
        {drive_elsewhere, "data_dir"},
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

/* ---- the launcher itself, driven by a fake hub ---- */

struct fake_hub {
    int fd;
    pid_t launcher;
    uint32_t seq;
};

static void fake_start(struct fake_hub *h, const struct launcher_conf *c)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    fflush(NULL);
    h->launcher = fork();
    assert_true(h->launcher >= 0);
    if (h->launcher == 0) {
        close(sv[0]);
        launcher_main(c, sv[1]);
    }
    close(sv[1]);
    h->fd = sv[0];
}

static void fake_stop(struct fake_hub *h)
{
    close(h->fd);
    waitpid(h->launcher, NULL, 0);
}

/* Sends a raw request and returns the launcher's result; *msg (caller frees) its text. */
static int ask(struct fake_hub *h, uint16_t type, const char *id, const void *extra, size_t n,
               char **msg)
{
    size_t total = sizeof(struct launcher_hdr) + LAUNCHER_ID_LEN + n;
    char *b = xcalloc(1, total);
    struct launcher_hdr hd = {LAUNCHER_VERSION, type, ++h->seq, (uint32_t)(LAUNCHER_ID_LEN + n)};
    memcpy(b, &hd, sizeof(hd));
    memcpy(b + sizeof(hd), id, strlen(id) < LAUNCHER_ID_LEN ? strlen(id) : LAUNCHER_ID_LEN);
    if (n)
        memcpy(b + sizeof(hd) + LAUNCHER_ID_LEN, extra, n);
    assert_int_equal(send(h->fd, b, total, 0), (ssize_t)total);
    free(b);
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        ssize_t got = recv(h->fd, buf, sizeof(buf), 0);
        assert_true(got >= (ssize_t)(sizeof(hd) + 4));
        struct launcher_hdr rh;
        memcpy(&rh, buf, sizeof(rh));
        if (rh.type != LAUNCHER_REPLY || rh.seq != h->seq)
            continue; /* EXITED of an agent, say */
        int32_t result;
        memcpy(&result, buf + sizeof(rh), 4);
        if (msg)
            *msg = xstrndup(buf + sizeof(rh) + 4, (size_t)got - sizeof(rh) - 4);
        return result;
    }
}

static char *config_for(const char *id, const char *user, bool sandboxed)
{
    char *rt = xasprintf("%s/%s", runtimes, id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "id", id, "secret", "x", "hub_socket",
                          sock, "runtime_dir", rt, "argv", "python3");
    if (sandboxed)
        json_object_set_new(o, "sandbox",
                            json_pack("{s:s, s:s, s:s, s:[s], s:i}", "state_dir", rt, "data_dir",
                                      data, "drive_user", user, "mask_paths", data, "id_base",
                                      100000 + 65536));
    char *text = json_dumps(o, 0);
    json_decref(o);
    free(rt);
    return text;
}

static int spawn(struct fake_hub *h, const char *id, const char *user, bool sandboxed, char **msg)
{
    char *cfg = config_for(id, user, sandboxed);
    int r = ask(h, LAUNCHER_SPAWN, id, cfg, strlen(cfg), msg);
    free(cfg);
    return r;
}

static void wait_gone(const char *rel)
{
    for (int i = 0; i < 500 && exists(rel); i++)
        usleep(10000);
}

static void test_hostile_hub(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fake_hub h = {0};
    fake_start(&h, &conf);
    char *msg = NULL;

    /* Drives that are not a user's folder of this data folder. */
    const char *bad_users[] = {"../../victim", "/etc", "evil", "afile", "nobody", "alice/..", ""};
    for (size_t i = 0; i < ARRAY_SIZE(bad_users); i++) {
        assert_int_equal(spawn(&h, ID, bad_users[i], true, &msg), -EPERM);
        free(msg);
    }
    char *withpath = xasprintf("{\"id\":\"" ID "\",\"secret\":\"x\",\"hub_socket\":\"%s\","
                               "\"runtime_dir\":\"%s/" ID "\",\"argv\":[\"x\"],\"sandbox\":{"
                               "\"state_dir\":\"%s/" ID "\",\"drive_dir\":\"%s/victim\","
                               "\"mask_paths\":[\"%s\"],\"id_base\":165536}}",
                               sock, runtimes, runtimes, base, data);
    assert_int_equal(ask(&h, LAUNCHER_SPAWN, ID, withpath, strlen(withpath), &msg), -EPERM);
    assert_non_null(strstr(msg, "named by its user"));
    free(msg);
    free(withpath);
    /* Ids with paths in them, and the old RESET. */
    assert_int_equal(ask(&h, LAUNCHER_REMOVE, "../victim", NULL, 0, NULL), -EINVAL);
    assert_int_equal(ask(&h, LAUNCHER_REMOVE, "/tmp", NULL, 0, NULL), -EINVAL);
    assert_int_equal(ask(&h, 4, ID, NULL, 0, NULL), -EPROTO);

    /* A good one starts (the test's "agent" is /bin/true) in a folder of root's. */
    assert_int_equal(spawn(&h, ID, "alice", true, &msg) > 0, true);
    free(msg);
    char *p = xasprintf("%s/" ID "/agent.json", runtimes);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(p);

    /* A runtime folder with links planted in it (what the hub cannot do to a root one,
     * but a kernel or an older layout might): removing it removes the links only. */
    mk("data/runtimes/" ID2);
    char *victim = at("victim");
    link_to(victim, "data/runtimes/" ID2 "/upper");
    link_to("../../../victim/keep.txt", "data/runtimes/" ID2 "/agent.log");
    mk("data/runtimes/" ID2 "/content");
    link_to(victim, "data/runtimes/" ID2 "/content/drive");
    assert_int_equal(ask(&h, LAUNCHER_REMOVE, ID2, NULL, 0, NULL), 0);
    wait_gone("data/runtimes/" ID2);
    assert_false(exists("data/runtimes/" ID2));
    assert_victim_intact();

    /* The hub's user owns the data folder: it can rename runtimes/ away and make its own,
     * whose <id> is a link to the victim. The launcher holds the real one. */
    char *real = at("data/runtimes.real");
    assert_int_equal(rename(runtimes, real), 0);
    mk("data/runtimes");
    link_to(victim, "data/runtimes/" ID3);
    assert_int_equal(ask(&h, LAUNCHER_REMOVE, ID3, NULL, 0, NULL), 0);
    usleep(200000); /* its worker is done before the same id is started again */
    assert_int_equal(spawn(&h, ID3, "alice", true, &msg) > 0, true);
    free(msg);
    usleep(200000);
    assert_victim_intact();
    assert_false(exists("victim/agent.json"));
    assert_false(exists("victim/agent.log"));
    assert_true(exists("data/runtimes.real/" ID3 "/agent.json"));
    /* and REMOVE of the real one works on the real one */
    assert_int_equal(ask(&h, LAUNCHER_REMOVE, ID, NULL, 0, NULL), 0);
    wait_gone("data/runtimes.real/" ID);
    assert_false(exists("data/runtimes.real/" ID));
    assert_victim_intact();
    unlink_rel("data/runtimes/" ID3);
    assert_int_equal(rmdir(runtimes), 0);
    assert_int_equal(rename(real, runtimes), 0);
    free(real);
    fake_stop(&h);

    /* Unsandboxed, the runtime folder is the hub user's: links it plants there are
     * neither followed nor chowned through. */
    struct launcher_conf plain = conf;
    plain.sandboxed = false;
    fake_start(&h, &plain);
    assert_int_equal(spawn(&h, ID2, "alice", false, &msg) > 0, true);
    free(msg);
    unlink_rel("data/runtimes/" ID2 "/agent.log");
    link_to("../../../victim/keep.txt", "data/runtimes/" ID2 "/agent.log");
    unlink_rel("data/runtimes/" ID2 "/agent.json");
    link_to("../../../victim/keep.txt", "data/runtimes/" ID2 "/agent.json");
    assert_true(spawn(&h, ID2, "alice", false, &msg) < 0);
    free(msg);
    assert_victim_intact();
    /* a sandboxed spawn in a folder that is not root's is refused */
    fake_stop(&h);
    fake_start(&h, &conf);
    assert_int_equal(spawn(&h, ID2, "alice", true, &msg), -EPERM);
    assert_non_null(strstr(msg, "not root's"));
    free(msg);
    fake_stop(&h);
    assert_victim_intact();
    free(victim);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accepts_what_the_hub_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_anything_else, setup, teardown),
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_hostile_hub, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
