/* Kernel process start-up for the agent: ports, connection file, fork+exec with the
 * exec error carried back over a close-on-exec pipe (as libuv's uv_spawn does). */
#include "agent/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/util.h"

extern char **environ;

int kernel_pick_ports(int ports[KPORT_COUNT])
{
    int fds[KPORT_COUNT];
    int r = 0;
    size_t n = 0;
    for (; n < KPORT_COUNT; n++) {
        fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[n] < 0) {
            r = -errno;
            goto out;
        }
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof(sa);
        if (bind(fds[n], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fds[n], (struct sockaddr *)&sa, &sl) < 0) {
            r = -errno;
            n++;
            goto out;
        }
        ports[n] = ntohs(sa.sin_port);
    }
out:
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    return r;
}

int kernel_write_connection_file(const char *path, const int ports[KPORT_COUNT], const char *key,
                                 const char *kernel_name)
{
    return kernel_write_connection(path, "tcp", "127.0.0.1", ports, key, kernel_name, (uid_t)-1);
}

int kernel_write_connection(const char *path, const char *transport, const char *ip,
                            const int ports[KPORT_COUNT], const char *key, const char *kernel_name,
                            uid_t owner)
{
    json_t *o =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s}", "shell_port",
                  ports[KPORT_SHELL], "iopub_port", ports[KPORT_IOPUB], "stdin_port",
                  ports[KPORT_STDIN], "control_port", ports[KPORT_CONTROL], "hb_port",
                  ports[KPORT_HB], "ip", ip, "key", key, "transport", transport, "signature_scheme",
                  "hmac-sha256", "kernel_name", kernel_name ? kernel_name : "");
    if (!o)
        return -EINVAL;
    char *s = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    char *tmp = xasprintf("%s.~%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1], rnd[2],
                          rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    int r = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    r = write_all(fd, s, strlen(s));
    if (!r && owner != (uid_t)-1 && fchown(fd, owner, owner) < 0)
        r = -errno;
    if (!r && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && !r)
        r = -errno;
    if (!r && rename(tmp, path) < 0) /* rename never follows a link at either name */
        r = -errno;
    if (r)
        unlink(tmp);
out:
    free(tmp);
    free(s);
    return r;
}

char *kernel_format_arg(const char *s, const char *conn_file)
{
    static const char pat[] = "{connection_file}";
    struct buf b = {0};
    const char *p;
    while ((p = strstr(s, pat))) {
        buf_append(&b, s, (size_t)(p - s));
        buf_append(&b, conn_file, strlen(conn_file));
        s = p + sizeof(pat) - 1;
    }
    buf_append(&b, s, strlen(s));
    return buf_steal(&b, NULL);
}

/* environ with cmd's entries replacing those of the same name; the strings are
 * borrowed, the array is the caller's. */
static char **merge_env(const struct kernel_cmd *cmd)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **envp = xcalloc(n + cmd->nenv + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < cmd->nenv && !replaced; j++)
            replaced = !strncmp(cmd->env[j], environ[i], nl) && cmd->env[j][nl] == '=';
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < cmd->nenv; j++)
        envp[k++] = cmd->env[j];
    envp[k] = NULL;
    return envp;
}

enum { STAGE_CHDIR = 1, STAGE_STDIN, STAGE_EXEC };

struct child_err {
    int stage;
    int err;
};

/* In the child between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child(const struct kernel_cmd *cmd, char **argv, char **envp, int errfd)
{
    struct child_err ce = {0};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static const int sigs[] = {SIGPIPE, SIGINT,  SIGQUIT, SIGTERM,
                               SIGHUP,  SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        signal(sigs[i], SIG_DFL);
    setsid();
    if (cmd->cwd && chdir(cmd->cwd) < 0) {
        ce = (struct child_err){STAGE_CHDIR, errno};
        goto fail;
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0) {
        ce = (struct child_err){STAGE_STDIN, errno};
        goto fail;
    }
    if (errfd > 3)
        close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0U, 0);
    execvpe(argv[0], argv, envp);
    ce = (struct child_err){STAGE_EXEC, errno};
fail:;
    ssize_t w = write(errfd, &ce, sizeof(ce));
    (void)w;
    _exit(127);
}

int kernel_spawn(const struct kernel_cmd *cmd, const char *conn_file, pid_t *pid, char **err)
{
    int r = 0;
    int p[2] = {-1, -1};
    char **argv = xcalloc(cmd->argc + 1, sizeof(char *));
    for (size_t i = 0; i < cmd->argc; i++)
        argv[i] = kernel_format_arg(cmd->argv[i], conn_file);
    char **envp = merge_env(cmd);
    *err = NULL;
    if (!cmd->argc) {
        r = -EINVAL;
        *err = xstrdup("failed to start kernel: empty argv");
        goto out;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        r = -errno;
        *err = xasprintf("failed to start kernel: pipe: %s", strerror(errno));
        goto out;
    }
    pid_t c = fork();
    if (c < 0) {
        r = -errno;
        *err = xasprintf("failed to start kernel: fork: %s", strerror(errno));
        goto out;
    }
    if (c == 0)
        child(cmd, argv, envp, p[1]);
    close(p[1]);
    p[1] = -1;
    struct child_err ce;
    ssize_t n;
    do
        n = read(p[0], &ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(ce)) {
        /* The child failed before or at exec: reap it and say why. */
        while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
            ;
        r = -ce.err;
        if (ce.stage == STAGE_CHDIR)
            *err = xasprintf("failed to start kernel: chdir %s: %s", cmd->cwd, strerror(ce.err));
        else if (ce.stage == STAGE_STDIN)
            *err = xasprintf("failed to start kernel: /dev/null: %s", strerror(ce.err));
        else
            *err = xasprintf("failed to start kernel: %s: %s", argv[0], strerror(ce.err));
        goto out;
    }
    *pid = c;
out:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    for (size_t i = 0; i < cmd->argc; i++)
        free(argv[i]);
    free(argv);
    free(envp);
    return r;
}
