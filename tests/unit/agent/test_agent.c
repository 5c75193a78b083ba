/* End-to-end tests of the agent against the real ipykernel: this test plays the hub
 * (a listening Unix socket speaking wire/stream.h), forks a child that runs
 * agent_main, and checks what a hub would see: states, outputs, stdin, interrupts,
 * restarts, start failures and shutdown. */
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/agent.h"
#include "common/util.h"
#include "wire/stream.h"
#include "wire/wsframe.h"

#define PYKERNEL "/usr/bin/python3"

/* One frame from the agent, decoded. */
struct frame {
    struct frame *next;
    enum stream_type type;
    json_t *json; /* HELLO, STATE */
    char channel[16];
    json_t *header; /* MSG */
    json_t *parent;
    json_t *content;
    size_t nbuffers;
};

struct hub {
    char dir[256];
    char sock_path[300];
    char cfg_path[300];
    int lfd, fd;
    pid_t agent;
    struct stream_decoder dec;
    struct frame *frames, **tail;
    struct frame *seen; /* frames already consumed, kept for later checks */
};

static json_t *parse_part(const uint8_t *p, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)p, n, 0, &e);
    assert_non_null(j);
    return j;
}

static int on_frame(void *ctx, enum stream_type type, const uint8_t *p, size_t len)
{
    struct hub *h = ctx;
    struct frame *f = calloc(1, sizeof(*f));
    f->type = type;
    if (type == STREAM_MSG) {
        struct kmsg m;
        assert_int_equal(wsv1_parse(p, len, &m), 0);
        assert_true(m.channel_len < sizeof(f->channel));
        memcpy(f->channel, m.channel, m.channel_len);
        f->header = parse_part(m.part[0], m.part_len[0]);
        f->parent = parse_part(m.part[1], m.part_len[1]);
        f->content = parse_part(m.part[3], m.part_len[3]);
        f->nbuffers = m.nparts - 4;
    } else {
        f->json = parse_part(p, len);
    }
    *h->tail = f;
    h->tail = &f->next;
    return 0;
}

static void frame_free(struct frame *f)
{
    json_decref(f->json);
    json_decref(f->header);
    json_decref(f->parent);
    json_decref(f->content);
    free(f);
}

/* Reads from the agent for up to ms; returns false on timeout or EOF. */
static bool hub_pump(struct hub *h, int ms)
{
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    static uint8_t b[1 << 20];
    ssize_t n = read(h->fd, b, sizeof(b));
    if (n <= 0)
        return false;
    assert_int_equal(stream_decoder_feed(&h->dec, b, (size_t)n, on_frame, h), 0);
    return true;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

typedef bool (*match_fn)(const struct frame *f, const void *arg);

/* Takes the first frame that matches from the queue, reading more as needed. */
static struct frame *hub_take(struct hub *h, match_fn match, const void *arg, int timeout_ms)
{
    uint64_t until = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        for (struct frame **pp = &h->frames; *pp; pp = &(*pp)->next) {
            struct frame *f = *pp;
            if (!match(f, arg))
                continue;
            *pp = f->next;
            if (h->tail == &f->next)
                h->tail = pp;
            f->next = h->seen;
            h->seen = f;
            return f;
        }
        uint64_t now = now_ms();
        if (now >= until || !hub_pump(h, (int)(until - now)))
            return NULL;
    }
}

static bool is_state(const struct frame *f, const void *arg)
{
    (void)arg;
    return f->type == STREAM_STATE || f->type == STREAM_HELLO;
}

/* The next HELLO or STATE frame; fails unless its state is `want`. */
static json_t *expect_state(struct hub *h, const char *want, int timeout_ms)
{
    struct frame *f = hub_take(h, is_state, NULL, timeout_ms);
    if (!f)
        fail_msg("no state frame within %d ms (wanted %s)", timeout_ms, want);
    if (!strcmp(want, "hello")) {
        assert_int_equal(f->type, STREAM_HELLO);
        return f->json;
    }
    assert_int_equal(f->type, STREAM_STATE);
    if (strcmp(str(f->json, "state"), want))
        fail_msg("wanted state %s, got %s (reason: %s)", want, str(f->json, "state"),
                 str(f->json, "reason"));
    return f->json;
}

struct msg_match {
    const char *channel, *msg_type, *parent_id;
};

static bool is_msg(const struct frame *f, const void *arg)
{
    const struct msg_match *m = arg;
    return f->type == STREAM_MSG && !strcmp(f->channel, m->channel) &&
           !strcmp(str(f->header, "msg_type"), m->msg_type) &&
           (!m->parent_id || !strcmp(str(f->parent, "msg_id"), m->parent_id));
}

static struct frame *expect_msg(struct hub *h, const char *channel, const char *msg_type,
                                const char *parent_id, int timeout_ms)
{
    struct msg_match m = {channel, msg_type, parent_id};
    struct frame *f = hub_take(h, is_msg, &m, timeout_ms);
    if (!f) {
        for (struct frame *g = h->frames; g; g = g->next)
            if (g->type == STREAM_MSG)
                print_message("queued: %s %s parent %s\n", g->channel, str(g->header, "msg_type"),
                              str(g->parent, "msg_id"));
            else
                print_message("queued: frame type %d\n", (int)g->type);
        fail_msg("no %s %s (parent %s) within %d ms", channel, msg_type,
                 parent_id ? parent_id : "any", timeout_ms);
    }
    return f;
}

static void test_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        assert_true(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

static void hub_send(struct hub *h, enum stream_type type, const void *p, size_t n)
{
    uint8_t hdr[STREAM_HEADER_LEN];
    stream_header(hdr, type, n);
    test_write_all(h->fd, hdr, sizeof(hdr));
    if (n)
        test_write_all(h->fd, p, n);
}

/* Sends a request to the kernel through the agent; returns its msg_id (static). */
static const char *send_request(struct hub *h, const char *channel, const char *msg_type,
                                json_t *content, json_t *parent)
{
    static char id[64];
    static unsigned counter;
    snprintf(id, sizeof(id), "test-%ld-%u", (long)getpid(), ++counter);
    char date[32];
    iso8601_now(date);
    json_t *hdr =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "msg_id", id, "msg_type", msg_type, "session",
                  "test-session", "username", "tester", "date", date, "version", "5.3");
    if (!parent)
        parent = json_object();
    char *parts[4] = {json_dumps(hdr, JSON_COMPACT), json_dumps(parent, JSON_COMPACT),
                      xstrdup("{}"), json_dumps(content, JSON_COMPACT)};
    json_decref(hdr);
    json_decref(parent);
    json_decref(content);
    struct kmsg m = {.channel = channel, .channel_len = strlen(channel), .nparts = 4};
    for (int i = 0; i < 4; i++) {
        m.part[i] = (const uint8_t *)parts[i];
        m.part_len[i] = strlen(parts[i]);
    }
    size_t n = wsv1_size(&m);
    uint8_t *b = malloc(n);
    wsv1_write(&m, b);
    hub_send(h, STREAM_MSG, b, n);
    free(b);
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    return id;
}

static const char *execute(struct hub *h, const char *code, bool allow_stdin)
{
    return send_request(h, "shell", "execute_request",
                        json_pack("{s:s, s:b, s:b, s:{}, s:b, s:b}", "code", code, "silent", 0,
                                  "store_history", 1, "user_expressions", "allow_stdin",
                                  allow_stdin, "stop_on_error", 0),
                        NULL);
}

/* Concatenated stream text for an execution, up to its idle status. */
static char *stream_text(struct hub *h, const char *parent_id, int timeout_ms)
{
    expect_msg(h, "iopub", "status", parent_id, timeout_ms); /* busy */
    struct buf out = {0};
    uint64_t until = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct frame *f = NULL;
        while (!f) {
            for (struct frame *g = h->frames; g; g = g->next)
                if (g->type == STREAM_MSG && !strcmp(str(g->parent, "msg_id"), parent_id) &&
                    !strcmp(g->channel, "iopub") &&
                    (!strcmp(str(g->header, "msg_type"), "stream") ||
                     !strcmp(str(g->header, "msg_type"), "status"))) {
                    f = g;
                    break;
                }
            if (!f && (now_ms() >= until || !hub_pump(h, (int)(until - now_ms()))))
                fail_msg("execution %s did not go idle", parent_id);
        }
        struct msg_match m = {"iopub", str(f->header, "msg_type"), parent_id};
        f = hub_take(h, is_msg, &m, 0);
        if (!strcmp(m.msg_type, "status")) {
            if (!strcmp(str(f->content, "execution_state"), "idle"))
                break;
            continue;
        }
        const char *t = str(f->content, "text");
        buf_append(&out, t, strlen(t));
    }
    return buf_steal(&out, NULL);
}

static void hub_listen(struct hub *h)
{
    const char *base = getenv("LABBOOK_TEST_TMP");
    if (!base)
        base = "/tmp";
    assert_int_equal(mkdir_p(base, 0700), 0);
    snprintf(h->dir, sizeof(h->dir), "%s/agent-XXXXXX", base);
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->sock_path, sizeof(h->sock_path), "%s/hub.sock", h->dir);
    snprintf(h->cfg_path, sizeof(h->cfg_path), "%s/agent.json", h->dir);
    h->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(h->sock_path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, h->sock_path, strlen(h->sock_path) + 1);
    assert_int_equal(bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(h->lfd, 4), 0);
    h->fd = -1;
    h->tail = &h->frames;
    h->dec.max_frame = 1 << 30;
}

/* A "sandbox" object for the next hub_start_agent (stolen), or NULL. */
static json_t *next_sandbox;
/* Keys merged into the next config (stolen), or NULL. */
static json_t *next_extra;
/* The next agent's stdout and stderr are DIR/rt/agent.log, as the launcher opens it. */
static bool next_log_file;

/* Writes the config, forks the agent and accepts its connection. */
static void hub_start_agent(struct hub *h, json_t *argv, const char *interrupt_mode)
{
    char *rt = xasprintf("%s/rt", h->dir);
    json_t *cfg =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s}, s:s, s:s, s:i, s:i}", "id", "rt1", "secret",
                  "s3cret", "hub_socket", h->sock_path, "runtime_dir", rt, "argv", argv, "env",
                  "LABBOOK_TEST_ENV", "yes", "cwd", h->dir, "interrupt_mode", interrupt_mode,
                  "max_frame", 1 << 30, "start_timeout_s", 60);
    assert_non_null(cfg);
    if (next_sandbox)
        json_object_set_new(cfg, "sandbox", next_sandbox);
    next_sandbox = NULL;
    if (next_extra)
        json_object_update(cfg, next_extra);
    json_decref(next_extra);
    next_extra = NULL;
    bool log_file = next_log_file;
    next_log_file = false;
    assert_int_equal(json_dump_file(cfg, h->cfg_path, 0), 0);
    json_decref(cfg);
    free(rt);
    fflush(NULL);
    h->agent = fork();
    assert_true(h->agent >= 0);
    if (h->agent == 0) {
        close(h->lfd);
        if (log_file) {
            char *rtd = xasprintf("%s/rt", h->dir), *lp = xasprintf("%s/rt/agent.log", h->dir);
            mkdir(rtd, 0700);
            int lfd = open(lp, O_WRONLY | O_CREAT | O_APPEND, 0600);
            dup2(lfd, 1);
            dup2(lfd, 2);
            close(lfd);
            free(rtd);
            free(lp);
        }
        char *av[] = {"agent", h->cfg_path, NULL};
        exit(agent_main(2, av));
    }
    struct pollfd p = {.fd = h->lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    h->fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(h->fd >= 0);
    json_t *hello = expect_state(h, "hello", 10000);
    assert_string_equal(str(hello, "id"), "rt1");
    assert_string_equal(str(hello, "secret"), "s3cret");
    assert_int_equal(json_integer_value(json_object_get(hello, "pid")), h->agent);
    expect_state(h, "starting", 5000);
}

static json_t *kernel_argv(void)
{
    return json_pack("[s, s, s, s, s]", PYKERNEL, "-m", "ipykernel_launcher", "-f",
                     "{connection_file}");
}

/* Waits for the agent to exit; returns its exit status (or -1 on timeout). */
static int hub_wait_agent(struct hub *h, int timeout_ms)
{
    uint64_t until = now_ms() + (uint64_t)timeout_ms;
    int st;
    while (now_ms() < until) {
        pid_t r = waitpid(h->agent, &st, WNOHANG);
        if (r == h->agent) {
            h->agent = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(20000);
    }
    return -1;
}

static void hub_free(struct hub *h)
{
    if (h->agent > 0) {
        kill(h->agent, SIGKILL);
        waitpid(h->agent, NULL, 0);
    }
    if (h->fd >= 0)
        close(h->fd);
    close(h->lfd);
    unlink(h->sock_path);
    unlink(h->cfg_path);
    char *rt = xasprintf("%s/rt", h->dir);
    rmdir(rt);
    free(rt);
    rmdir(h->dir);
    for (struct frame *f = h->frames, *n; f; f = n) {
        n = f->next;
        frame_free(f);
    }
    for (struct frame *f = h->seen, *n; f; f = n) {
        n = f->next;
        frame_free(f);
    }
    stream_decoder_free(&h->dec);
}

static bool pid_gone(pid_t pid, int timeout_ms)
{
    uint64_t until = now_ms() + (uint64_t)timeout_ms;
    do {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        usleep(20000);
    } while (now_ms() < until);
    return false;
}

/* No reply to the agent's own kernel_info probes, nor their iopub side effects,
 * may reach the hub. */
static void assert_no_own_messages(struct hub *h)
{
    while (hub_pump(h, 0))
        ;
    struct frame *lists[2] = {h->frames, h->seen};
    for (int l = 0; l < 2; l++)
        for (struct frame *f = lists[l]; f; f = f->next) {
            if (f->type != STREAM_MSG)
                continue;
            assert_string_not_equal(str(f->header, "msg_type"), "kernel_info_reply");
            assert_false(str_starts_with(str(f->parent, "msg_id"), "lbk-"));
        }
}

static void test_kernel_lifecycle(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    hub_start_agent(&h, kernel_argv(), "signal");
    json_t *run = expect_state(&h, "running", 60000);
    pid_t kpid = (pid_t)json_integer_value(json_object_get(run, "pid"));
    assert_true(kpid > 0);
    assert_int_not_equal(kpid, h.agent);
    /* The connection file exists while the kernel runs, mode 0600. */
    char *conn = xasprintf("%s/rt/kernel-rt1.json", h.dir);
    struct stat st;
    assert_int_equal(stat(conn, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* print("hi"): a stream message and an execute_reply. */
    const char *id = execute(&h, "print('hi')", false);
    char idc[64];
    snprintf(idc, sizeof(idc), "%s", id);
    char *text = stream_text(&h, idc, 10000);
    assert_string_equal(text, "hi\n");
    free(text);
    struct frame *f = expect_msg(&h, "shell", "execute_reply", idc, 10000);
    assert_string_equal(str(f->content, "status"), "ok");

    /* The config's env and cwd reach the kernel. */
    snprintf(idc, sizeof(idc), "%s",
             execute(&h, "import os; print(os.environ['LABBOOK_TEST_ENV'], os.getcwd())", false));
    text = stream_text(&h, idc, 10000);
    char *want = xasprintf("yes %s\n", h.dir);
    assert_string_equal(text, want);
    free(want);
    free(text);

    /* input() over the stdin channel. */
    snprintf(idc, sizeof(idc), "%s", execute(&h, "print(input('name? ') + '!')", true));
    f = expect_msg(&h, "stdin", "input_request", idc, 10000);
    assert_string_equal(str(f->content, "prompt"), "name? ");
    send_request(&h, "stdin", "input_reply", json_pack("{s:s}", "value", "bob"),
                 json_deep_copy(f->header));
    text = stream_text(&h, idc, 10000);
    assert_string_equal(text, "bob!\n");
    free(text);
    f = expect_msg(&h, "shell", "execute_reply", idc, 10000);
    assert_string_equal(str(f->content, "status"), "ok");

    /* A large output passes whole (partial writes to the hub on the way). */
    snprintf(idc, sizeof(idc), "%s",
             execute(&h, "import sys; sys.stdout.write('x' * (8 << 20))", false));
    text = stream_text(&h, idc, 30000);
    assert_int_equal(strlen(text), 8 << 20);
    assert_true(text[0] == 'x' && text[(8 << 20) - 1] == 'x');
    free(text);

    /* Interrupt a long sleep: KeyboardInterrupt within a few seconds. */
    snprintf(idc, sizeof(idc), "%s", execute(&h, "import time; time.sleep(30)", false));
    expect_msg(&h, "iopub", "execute_input", idc, 10000);
    usleep(300000);
    uint64_t t0 = now_ms();
    hub_send(&h, STREAM_INTERRUPT, NULL, 0);
    f = expect_msg(&h, "shell", "execute_reply", idc, 5000);
    assert_true(now_ms() - t0 < 5000);
    assert_string_equal(str(f->content, "status"), "error");
    assert_string_equal(str(f->content, "ename"), "KeyboardInterrupt");

    /* The kernel dies: restarting with the reason, then running with a new pid. */
    execute(&h, "import os; os._exit(1)", false);
    json_t *rs = expect_state(&h, "restarting", 10000);
    assert_string_equal(str(rs, "reason"), "the kernel died (exit status 1)");
    run = expect_state(&h, "running", 60000);
    pid_t kpid2 = (pid_t)json_integer_value(json_object_get(run, "pid"));
    assert_true(kpid2 > 0 && kpid2 != kpid);
    assert_true(pid_gone(kpid, 2000));
    snprintf(idc, sizeof(idc), "%s", execute(&h, "print(6 * 7)", false));
    text = stream_text(&h, idc, 10000);
    assert_string_equal(text, "42\n");
    free(text);

    /* A restart the hub asks for. */
    hub_send(&h, STREAM_RESTART, NULL, 0);
    expect_state(&h, "restarting", 5000);
    run = expect_state(&h, "running", 60000);
    pid_t kpid3 = (pid_t)json_integer_value(json_object_get(run, "pid"));
    assert_true(kpid3 > 0 && kpid3 != kpid2);
    assert_true(pid_gone(kpid2, 2000));
    snprintf(idc, sizeof(idc), "%s", execute(&h, "print('again')", false));
    text = stream_text(&h, idc, 10000);
    assert_string_equal(text, "again\n");
    free(text);

    assert_no_own_messages(&h);

    /* Shutdown: the agent exits 0, the kernel is gone, so is the connection file. */
    hub_send(&h, STREAM_SHUTDOWN, NULL, 0);
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    assert_true(pid_gone(kpid3, 2000));
    assert_int_equal(stat(conn, &st), -1);
    free(conn);
    hub_free(&h);
}

/* interrupt_mode "message": the agent sends interrupt_request on control. */
static void test_interrupt_message(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    hub_start_agent(&h, kernel_argv(), "message");
    expect_state(&h, "running", 60000);
    char idc[64];
    snprintf(idc, sizeof(idc), "%s", execute(&h, "import time; time.sleep(30)", false));
    expect_msg(&h, "iopub", "execute_input", idc, 10000);
    usleep(300000);
    hub_send(&h, STREAM_INTERRUPT, NULL, 0);
    struct frame *f = expect_msg(&h, "shell", "execute_reply", idc, 5000);
    assert_string_equal(str(f->content, "ename"), "KeyboardInterrupt");
    /* Its interrupt_reply is the agent's own: it does not reach the hub. */
    while (hub_pump(&h, 200))
        ;
    for (struct frame *g = h.frames; g; g = g->next)
        assert_false(g->type == STREAM_MSG &&
                     !strcmp(str(g->header, "msg_type"), "interrupt_reply"));
    assert_no_own_messages(&h);
    /* Hub EOF: the agent shuts the kernel down and exits 0. */
    close(h.fd);
    h.fd = -1;
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    hub_free(&h);
}

/* A kernel that cannot be executed: dead with the reason; the agent stays up. */
static void test_exec_failure(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    hub_start_agent(&h, json_pack("[s, s, s]", "/nonexistent/kernel", "-f", "{connection_file}"),
                    "signal");
    json_t *d = expect_state(&h, "dead", 10000);
    assert_string_equal(str(d, "reason"),
                        "failed to start kernel: /nonexistent/kernel: No such file or directory");
    /* A restart tries again and fails the same way. */
    hub_send(&h, STREAM_RESTART, NULL, 0);
    expect_state(&h, "restarting", 5000);
    d = expect_state(&h, "dead", 5000);
    assert_true(str_starts_with(str(d, "reason"), "failed to start kernel: "));
    hub_send(&h, STREAM_SHUTDOWN, NULL, 0);
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    hub_free(&h);
}

/* A kernel that exits at once keeps dying: five restarts, then dead. */
static void test_restart_limit(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    hub_start_agent(&h, json_pack("[s, s, s]", "/bin/sh", "-c", "exit 3"), "signal");
    for (int i = 0; i < 5; i++) {
        json_t *rs = expect_state(&h, "restarting", 10000);
        assert_string_equal(str(rs, "reason"), "the kernel died (exit status 3)");
    }
    json_t *d = expect_state(&h, "dead", 10000);
    assert_true(strstr(str(d, "reason"), "exit status 3") != NULL);
    /* Nothing more comes: the agent waits for the hub. */
    assert_null(hub_take(&h, is_state, NULL, 500));
    assert_int_equal(waitpid(h.agent, NULL, WNOHANG), 0);
    close(h.fd);
    h.fd = -1;
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    hub_free(&h);
}

/* No hub to dial: exit non-zero. A bad config: exit 2. */
static void test_no_hub(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    char *rt = xasprintf("%s/rt", h.dir);
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", "x", "secret", "y", "hub_socket",
                            "/nonexistent/hub.sock", "runtime_dir", rt, "argv", kernel_argv());
    assert_int_equal(json_dump_file(cfg, h.cfg_path, 0), 0);
    json_decref(cfg);
    free(rt);
    char *av[] = {"agent", h.cfg_path, NULL};
    fflush(NULL);
    pid_t c = fork();
    if (c == 0)
        exit(agent_main(2, av));
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);

    FILE *fp = fopen(h.cfg_path, "w");
    fputs("{\"id\": \"x\", \"argv\": []}", fp);
    fclose(fp);
    assert_int_equal(agent_main(2, av), 2);
    char *bad[] = {"agent", NULL};
    assert_int_equal(agent_main(1, bad), 2);
    hub_free(&h);
}

/* A real ipykernel in a sandbox: it runs cells, is interrupted through the sandbox's
 * init, and an out-of-memory death is reported as such, then it restarts. Root only. */
static void test_sandboxed_kernel(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: sandboxed kernels need root\n");
        skip();
    }
    struct hub h = {0};
    hub_listen(&h);
    char *sbx = xasprintf("%s/sbx", h.dir);
    char *cg = xasprintf("test-agent-%ld", (long)getpid());
    next_sandbox = json_pack("{s:s, s:[s], s:b, s:I, s:i, s:s}", "state_dir", sbx, "mask_paths",
                             h.dir, "network", 0, "memory_limit", (json_int_t)256 << 20,
                             "pids_limit", 256, "cgroup", cg);
    hub_start_agent(&h, kernel_argv(), "signal");
    expect_state(&h, "running", 60000);
    const char *id = execute(&h,
                             "import os, socket; print(socket.gethostname(), os.getuid(), "
                             "os.getcwd(), len([p for p in os.listdir('/proc') if p.isdigit()]))",
                             false);
    char *out = stream_text(&h, id, 10000);
    print_message("%s", out);
    assert_string_equal(out, "labbook 0 /content 2\n");
    free(out);
    char idc[64];
    snprintf(idc, sizeof(idc), "%s", execute(&h, "import time; time.sleep(30)", false));
    expect_msg(&h, "iopub", "execute_input", idc, 10000);
    usleep(300000);
    hub_send(&h, STREAM_INTERRUPT, NULL, 0);
    struct frame *f = expect_msg(&h, "shell", "execute_reply", idc, 5000);
    assert_string_equal(str(f->content, "ename"), "KeyboardInterrupt");
    execute(&h, "x = bytearray(600 << 20)", false);
    json_t *st = expect_state(&h, "restarting", 20000);
    assert_string_equal(str(st, "reason"),
                        "the kernel died (the runtime ran out of memory: limit 256 MiB)");
    expect_state(&h, "running", 60000);
    close(h.fd);
    h.fd = -1;
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    char *rm = xasprintf("rm -rf '%s'", sbx);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(sbx);
    free(cg);
    hub_free(&h);
}

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* A kernel that floods the agent with badly signed messages on iopub and then writes
 * 200 MiB to its stderr leaves agent.log and agent.log.1 each under the cap, with the
 * floods counted, and what it says afterwards still gets through. */
static void test_log_is_bounded(void **state)
{
    (void)state;
    struct hub h = {0};
    hub_listen(&h);
    next_extra =
        json_pack("{s:i, s:i}", "log_max_bytes", 256 << 10, "log_kernel_bytes_per_s", 64 << 10);
    next_log_file = true;
    json_t *argv =
        json_pack("[s, s, s, s]", PYKERNEL, "-c",
                  "import json, os, sys, time, zmq\n"
                  "c = json.load(open(sys.argv[1]))\n"
                  "pub = zmq.Context().socket(zmq.PUB)\n"
                  "pub.bind('tcp://127.0.0.1:%d' % c['iopub_port'])\n"
                  "time.sleep(1)\n"
                  "for i in range(30000):\n"
                  "    pub.send_multipart([b'<IDS|MSG>', b'0' * 64, b'{}', b'{}', b'{}', b'{}'])\n"
                  "block = b'x' * (1 << 20)\n"
                  "for i in range(200):\n"
                  "    os.write(2, block)\n"
                  "time.sleep(2.5)\n"
                  "os.write(2, b'kernel-done\\n')\n"
                  "time.sleep(60)\n",
                  "{connection_file}");
    hub_start_agent(&h, argv, "signal");
    char *logp = xasprintf("%s/rt/agent.log", h.dir), *old = xasprintf("%s/rt/agent.log.1", h.dir);
    /* Until the kernel's last words and the count of the repeated bad signatures (written
     * 5 s after the first repeat) are in, the files never pass the cap. */
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        assert_true(size_of(logp) <= 256 << 10);
        assert_true(size_of(old) <= 256 << 10);
        char *t1 = NULL, *t2 = NULL;
        size_t n;
        read_file(old, 1 << 20, &t1, &n);
        read_file(logp, 1 << 20, &t2, &n);
        char *both = xasprintf("%s%s", t1 ? t1 : "", t2 ? t2 : "");
        done = strstr(both, "kernel-done") &&
               strstr(both, "bytes of the kernel's output dropped") &&
               (strstr(both, "last message repeated") || strstr(both, "messages suppressed"));
        free(both);
        free(t1);
        free(t2);
        if (!done)
            usleep(50000);
    }
    print_message("agent.log %lld, agent.log.1 %lld bytes\n", (long long)size_of(logp),
                  (long long)size_of(old));
    assert_true(done);
    assert_true(size_of(old) > 0); /* it was rotated */
    hub_send(&h, STREAM_SHUTDOWN, NULL, 0);
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    unlink(logp);
    unlink(old);
    free(logp);
    free(old);
    hub_free(&h);
}

/* Claims the runtime with json; want is NULL for success, else part of the reason. */
static void claim_as(struct hub *h, const char *json, const char *want)
{
    hub_send(h, STREAM_CLAIM, json, strlen(json));
    json_t *st = expect_state(h, "claimed", 10000);
    const char *reason = json_string_value(json_object_get(st, "reason"));
    if (!want && reason)
        fail_msg("claim %s: %s", json, reason);
    if (want && (!reason || !strstr(reason, want)))
        fail_msg("claim %s: reason \"%s\" does not say \"%s\"", json, reason ? reason : "", want);
}

/* A pre-started sandboxed runtime claimed by a hostile hub: a path, "..", an absolute
 * name, a link and a missing user are refused, and only DATA/drive/<user> is bound, by
 * the folder the agent opened (a link swapped in later is not followed at a restart).
 * Then a factory reset: the old kernel exits (its atexit handlers still see its files)
 * before its files move, and the new one starts on an empty /content. Root only. */
static void test_sandboxed_claim_and_reset(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: sandboxed kernels need root\n");
        skip();
    }
    struct hub h = {0};
    hub_listen(&h);
    char *sbx = xasprintf("%s/sbx", h.dir), *data = xasprintf("%s/data", h.dir);
    char *victim = xasprintf("%s/victim", h.dir), *alice = xasprintf("%s/drive/alice", data);
    char *cmd = xasprintf("mkdir -p '%s' '%s/drive/alice' && echo s > '%s/secret.txt' && "
                          "echo a > '%s/alice.txt' && ln -s '%s' '%s/drive/evil'",
                          victim, data, victim, alice, victim, data);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    next_sandbox = json_pack("{s:s, s:[s], s:b, s:s, s:b}", "state_dir", sbx, "mask_paths", h.dir,
                             "network", 0, "data_dir", data, "drive_later", 1);
    hub_start_agent(&h, kernel_argv(), "signal");
    expect_state(&h, "running", 60000);
    char *bad = xasprintf("{\"drive_dir\": \"%s\"}", victim);
    claim_as(&h, bad, "cannot be claimed");
    free(bad);
    claim_as(&h, "{\"user\": \"../victim\"}", "not a user name");
    claim_as(&h, "{\"user\": \"/etc\"}", "not a user name");
    claim_as(&h, "{\"user\": \"evil\"}", "cannot bind the drive");
    claim_as(&h, "{\"user\": \"nobody\"}", "cannot bind the drive");
    claim_as(&h, "{\"user\": \"alice\"}", NULL);
    claim_as(&h, "{\"user\": \"alice\"}", "cannot be claimed"); /* once only */
    const char *id =
        execute(&h, "import os; print(sorted(os.listdir('/content/drive/MyDrive')))", false);
    char *out = stream_text(&h, id, 10000);
    assert_string_equal(out, "['alice.txt']\n");
    free(out);

    /* The hub's user swaps alice's drive for a link to the victim. */
    char *old = xasprintf("%s/drive/alice.old", data);
    assert_int_equal(rename(alice, old), 0);
    assert_int_equal(symlink(victim, alice), 0);
    id = execute(&h,
                 "import atexit, os, time\n"
                 "open('/content/x', 'w').write('x')\n"
                 "def bye():\n"
                 "    time.sleep(0.3)\n"
                 "    open('/content/drive/MyDrive/atexit.txt', 'w').write(\n"
                 "        str(os.path.exists('/content/x')))\n"
                 "atexit.register(bye)\n",
                 false);
    out = stream_text(&h, id, 10000);
    free(out);
    hub_send(&h, STREAM_RESET, NULL, 0);
    json_t *st = expect_state(&h, "restarting", 10000);
    assert_string_equal(str(st, "reason"), "factory reset");
    expect_state(&h, "running", 60000);
    id = execute(&h,
                 "import os; print(os.path.exists('/content/x'), "
                 "sorted(os.listdir('/content/drive/MyDrive')))",
                 false);
    out = stream_text(&h, id, 10000);
    assert_string_equal(out, "False ['alice.txt', 'atexit.txt']\n");
    free(out);
    char *said = xasprintf("%s/atexit.txt", old), *text = NULL;
    size_t n;
    assert_int_equal(read_file(said, 1 << 20, &text, &n), 0);
    assert_string_equal(text, "True"); /* the old kernel had its files until it ended */
    free(text);
    free(said);
    char *vs = xasprintf("%s/atexit.txt", victim);
    assert_int_equal(access(vs, F_OK), -1);
    free(vs);
    /* The old files go (a child of the agent removes them). */
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        char *ls = xasprintf("ls '%s' | grep -q '^reset-'", sbx);
        gone = system(ls) != 0;
        free(ls);
        if (!gone)
            usleep(50000);
    }
    assert_true(gone);
    close(h.fd);
    h.fd = -1;
    assert_int_equal(hub_wait_agent(&h, 10000), 0);
    char *rm = xasprintf("rm -rf '%s' '%s' '%s'", sbx, data, victim);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(sbx);
    free(data);
    free(victim);
    free(alice);
    free(old);
    hub_free(&h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_hub),
        cmocka_unit_test(test_exec_failure),
        cmocka_unit_test(test_restart_limit),
        cmocka_unit_test(test_kernel_lifecycle),
        cmocka_unit_test(test_interrupt_message),
        cmocka_unit_test(test_sandboxed_kernel),
        cmocka_unit_test(test_sandboxed_claim_and_reset),
        cmocka_unit_test(test_log_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
