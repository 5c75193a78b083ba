/* Sandboxed kernels (docs/sandbox.md): the parent prepares everything that allocates
 * (paths, the seccomp program, the cgroup, id-mapped mounts of the root image and the
 * drive), clones a child into new namespaces, and the child builds the root, becomes
 * the namespace's init, and starts the kernel. Child steps report over a pipe. */
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "common/util.h"
#include "sandbox/cgroup.h"
#include "sandbox/disk.h"
#include "sandbox/hidden.h"
#include "sandbox/net.h"
#include "sandbox/quota.h"
#include "sandbox/seccomp.h"

#define ID_COUNT 65536
#define DEFAULT_ID_BASE 100000

enum msg_type { MSG_ERROR = 1, MSG_READY, MSG_EXIT };

/* What the sandbox's init tells the parent; one write each, under PIPE_BUF. */
struct sb_msg {
    int32_t type;
    int32_t err;    /* MSG_ERROR: errno */
    int32_t status; /* MSG_EXIT: the kernel's wait status */
    char what[244]; /* MSG_ERROR: the step */
};

/* Host paths that are other people's business or scratch: hidden even when the spec
 * says nothing, beyond what the general rule hides (hide_unreadable). /var/log is not
 * among them: apt-get writes there, and its secrets are not world-readable. Writable ones get a
 * fresh empty tmpfs, the others a read-only one; files are emptied in the overlay. */
static const struct {
    const char *path;
    const char *opts; /* tmpfs options; NULL: read-only and empty */
} default_masks[] = {
    {"/tmp", "mode=1777"},
    {"/var/tmp", "mode=1777"},
    {"/run", "mode=755"},
    {"/root", "mode=700"},
    {"/home", NULL},
    {"/mnt", NULL},
    {"/media", NULL},
    {"/srv", NULL},
    {"/var/mail", NULL},
    {"/var/spool", NULL},
    {"/var/backups", NULL},
    {"/etc/ssh", NULL},
    {"/etc/ssl/private", NULL},
    {"/boot", NULL},
    {"/etc/shadow", NULL},
    {"/etc/gshadow", NULL},
    {"/etc/shadow-", NULL},
    {"/etc/gshadow-", NULL},
};

static const char *const proc_null[] = {"proc/kcore",         "proc/kallsyms",   "proc/kmsg",
                                        "proc/keys",          "proc/timer_list", "proc/sched_debug",
                                        "proc/latency_stats", "proc/timer_stats"};
static const char *const proc_ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys",
                                      "proc/sysrq-trigger"};
static const char *const hide_dirs[] = {"proc/acpi", "proc/scsi", "sys/firmware"};
static const char *const std_devices[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                          "/dev/random", "/dev/urandom", "/dev/tty"};

/* Capabilities root inside keeps (in its own user namespace): what installing packages
 * needs. Everything else, CAP_SYS_ADMIN first, leaves the bounding set. */
static const int keep_caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FOWNER,           CAP_FSETID,
    CAP_KILL,    CAP_SETGID,       CAP_SETUID,           CAP_SETPCAP,
    CAP_SETFCAP, CAP_SYS_CHROOT,   CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE};

void sandbox_set_error(struct sandbox_error *err, int e, const char *fmt, ...)
{
    if (!err)
        return;
    char step[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(step, sizeof(step), fmt, ap);
    va_end(ap);
    err->err = -e;
    snprintf(err->msg, sizeof(err->msg), "%s: %s", step, strerror(e));
}

uid_t sandbox_root_uid(const struct sandbox_spec *spec)
{
    if (geteuid() != 0)
        return geteuid();
    return spec->id_base ? spec->id_base : DEFAULT_ID_BASE;
}

char *sandbox_host_run_dir(const char *state_dir)
{
    return xasprintf("%s/run", state_dir);
}

static bool userns_allowed(void)
{
    char *s = NULL;
    size_t n;
    int64_t v = 1;
    if (read_file("/proc/sys/kernel/unprivileged_userns_clone", 1 << 20, &s, &n) == 0) {
        s[strcspn(s, "\n")] = 0;
        str_to_i64(s, 0, INT64_MAX, &v);
        free(s);
        if (v == 0)
            return false;
    }
    s = NULL;
    if (read_file("/proc/sys/user/max_user_namespaces", 1 << 20, &s, &n) == 0) {
        s[strcspn(s, "\n")] = 0;
        str_to_i64(s, 0, INT64_MAX, &v);
        free(s);
        if (v == 0)
            return false;
    }
    return true;
}

int sandbox_supported(struct sandbox_error *err)
{
    if (geteuid() == 0 || userns_allowed())
        return 0;
    sandbox_set_error(err, ENOTSUP, "sandbox: not root and user namespaces are disabled");
    return -ENOTSUP;
}

/* ---- the child: no allocation from here on (it is a clone of a threaded process) ---- */

struct child_ctx {
    const struct sandbox_spec *spec;
    char *const *argv;
    char *const *envp;
    const struct seccomp_filter_prog *prog;
    bool root; /* the caller is root: id ranges and id-mapped mounts */
    int sync_fd, status_fd;
    int userns_fd;       /* root: the kernel's user namespace, already mapped */
    int drive_userns_fd; /* root, a drive not root's: maps its owner to root inside */
    int drive_tree_fd;   /* root: a detached clone of the drive, made in the caller's mount
                            namespace (drive_dir may be /proc/self/fd/N, a folder the caller
                            opened, which a new mount namespace cannot clone) */
    uid_t id_base;       /* root: the host uid of root inside */
    const char *upper, *work, *merged, *lower, *content, *run;
    const char *hosts; /* NULL, or a hosts file naming the sandbox's hostname */
    const char *root_image;
};

static void send_msg(int fd, int type, int err, int status, const char *what)
{
    struct sb_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.err = err;
    m.status = status;
    if (what)
        snprintf(m.what, sizeof(m.what), "%s", what);
    ssize_t w;
    do
        w = write(fd, &m, sizeof(m));
    while (w < 0 && errno == EINTR);
}

static void __attribute__((noreturn, format(printf, 3, 4)))
fail(const struct child_ctx *c, int e, const char *fmt, ...)
{
    char what[244];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    send_msg(c->status_fd, MSG_ERROR, e, 0, what);
    _exit(127);
}

static pid_t raw_fork(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

static bool exists(const char *rel, mode_t *mode)
{
    struct stat st;
    if (lstat(rel, &st) < 0)
        return false;
    if (mode)
        *mode = st.st_mode;
    return true;
}

static void set_ro(const struct child_ctx *c, const char *rel)
{
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, rel, AT_RECURSIVE, &a, sizeof(a)) < 0)
        fail(c, errno, "remount /%s read-only", rel);
}

static void bind_file(const struct child_ctx *c, const char *src, const char *rel)
{
    int fd = open(rel, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd >= 0)
        close(fd);
    if (mount(src, rel, NULL, MS_BIND, NULL) < 0)
        fail(c, errno, "bind %s on /%s", src, rel);
}

/* Hides rel (relative to the new root): a directory under an empty tmpfs (read-only
 * when opts is NULL), a file emptied in the overlay (the host's copy is untouched). */
static void mask(const struct child_ctx *c, const char *rel, const char *opts)
{
    mode_t m;
    if (!*rel || !exists(rel, &m))
        return;
    if (S_ISDIR(m)) {
        unsigned long fl = MS_NOSUID | MS_NODEV | (opts ? 0 : MS_RDONLY);
        char o[128];
        /* Writable ones belong to root inside. */
        if (opts && c->root)
            snprintf(o, sizeof(o), "%s,uid=%u,gid=%u", opts, (unsigned)c->id_base,
                     (unsigned)c->id_base);
        else
            snprintf(o, sizeof(o), "%s", opts ? opts : "mode=755,size=4k");
        if (mount("tmpfs", rel, "tmpfs", fl, o) < 0)
            fail(c, errno, "mask /%s", rel);
    } else if (S_ISREG(m)) {
        int fd = open(rel, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        else if (errno != EROFS || mount("/dev/null", rel, NULL, MS_BIND, NULL) < 0)
            fail(c, errno, "mask /%s", rel); /* read-only (rootless): covered instead */
    }
}

static void mkdirs(const struct child_ctx *c, const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", rel);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            fail(c, errno, "mkdir /%s", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        fail(c, errno, "mkdir /%s", p);
}

static void setup_dev(const struct child_ctx *c)
{
    if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k") < 0)
        fail(c, errno, "mount tmpfs on /dev");
    for (size_t i = 0; i < ARRAY_SIZE(std_devices); i++)
        bind_file(c, std_devices[i], std_devices[i] + 1);
    for (size_t i = 0; i < c->spec->ndevices; i++) {
        const char *d = c->spec->devices[i];
        if (strncmp(d, "/dev/", 5) || strstr(d, ".."))
            fail(c, EINVAL, "device %s", d);
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", d + 1);
        char *slash = strrchr(parent, '/');
        *slash = 0;
        mkdirs(c, parent, 0755);
        bind_file(c, d, d + 1);
    }
    mkdirs(c, "dev/pts", 0755);
    mkdirs(c, "dev/shm", 01777);
    const char *pts_opts = c->root ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
                                   : "newinstance,ptmxmode=0666,mode=0620";
    if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts) < 0)
        fail(c, errno, "mount devpts on /dev/pts");
    if (mount("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        fail(c, errno, "mount tmpfs on /dev/shm");
    static const char *const links[][2] = {{"pts/ptmx", "dev/ptmx"},
                                           {"/proc/self/fd", "dev/fd"},
                                           {"/proc/self/fd/0", "dev/stdin"},
                                           {"/proc/self/fd/1", "dev/stdout"},
                                           {"/proc/self/fd/2", "dev/stderr"}};
    for (size_t i = 0; i < ARRAY_SIZE(links); i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            fail(c, errno, "symlink /%s", links[i][1]);
}

static void loopback_up(const struct child_ctx *c)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        fail(c, errno, "bring lo up");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        fail(c, errno, "bring lo up");
    close(s);
}

static void set_inet(struct sockaddr *sa, uint32_t addr)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(addr);
    memcpy(sa, &in, sizeof(in));
}

/* As root with outbound access: eth0 (the veth end the parent put here) gets the
 * slot's runtime address on a /31 with the host's end as the default route. */
static void eth0_up(const struct child_ctx *c)
{
    int slot = net_slot(c->id_base);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "eth0", 5);
    if (s < 0)
        fail(c, errno, "network: socket");
    set_inet(&ifr.ifr_addr, net_runtime_addr(slot));
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
        fail(c, errno, "network: address of eth0");
    set_inet(&ifr.ifr_netmask, 0xfffffffeU);
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
        fail(c, errno, "network: netmask of eth0");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        fail(c, errno, "network: bring eth0 up");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        fail(c, errno, "network: bring eth0 up");
    struct rtentry rt;
    memset(&rt, 0, sizeof(rt));
    set_inet(&rt.rt_dst, 0);
    set_inet(&rt.rt_genmask, 0);
    set_inet(&rt.rt_gateway, net_host_addr(slot));
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(s, SIOCADDRT, &rt) < 0)
        fail(c, errno, "network: default route");
    close(s);
}

/* Waits for the parent's go (sent once the maps are written and the cgroup joined). */
static void wait_go(const struct child_ctx *c)
{
    char byte = 0;
    ssize_t n;
    do
        n = read(c->sync_fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || byte != 'g')
        _exit(127); /* the parent gave up; it says why */
}

/* A detached clone of path, id-mapped through userns_fd (host uid k is k inside), then
 * attached at target. Returns 0 or a negative errno. */
/* Id-maps the detached mount fd and attaches it at target; closes fd. */
static int attach_idmapped_tree(int fd, int userns_fd, bool rdonly, const char *target)
{
    struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP | (rdonly ? MOUNT_ATTR_RDONLY : 0),
                           .userns_fd = (uint64_t)userns_fd};
    int r = 0;
    if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0 ||
        move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        r = -errno;
    close(fd);
    return r;
}

static int attach_idmapped(const char *path, int userns_fd, bool rdonly, const char *target)
{
    int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return -errno;
    return attach_idmapped_tree(fd, userns_fd, rdonly, target);
}

static void set_oom_adj(const char *v)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t w = write(fd, v, strlen(v));
        (void)w;
        close(fd);
    }
}

static void drop_caps(void)
{
    uint64_t keep = 0;
    for (size_t i = 0; i < ARRAY_SIZE(keep_caps); i++)
        keep |= 1ULL << keep_caps[i];
    for (int cap = 0; cap < 64; cap++)
        if (!(keep & (1ULL << cap)))
            prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    syscall(SYS_capget, &h, d);
    for (int i = 0; i < 2; i++) {
        uint32_t k = (uint32_t)(keep >> (32 * i));
        d[i].effective &= k;
        d[i].permitted &= k;
        d[i].inheritable &= k;
    }
    syscall(SYS_capset, &h, d);
}

enum { KSTAGE_STDIN = 1, KSTAGE_NNP, KSTAGE_SECCOMP, KSTAGE_USERNS, KSTAGE_EXEC };

/* The kernel process: its own session, defaults for signals, capabilities cut down,
 * no_new_privs, the seccomp filter, then exec. Failures go to errfd. */
static void __attribute__((noreturn)) kernel_child(const struct child_ctx *c, int errfd)
{
    int ce[2] = {0, 0};
    setsid();
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nul = open("/dev/null", O_RDONLY);
    if (nul < 0 || dup2(nul, 0) < 0) {
        ce[0] = KSTAGE_STDIN, ce[1] = errno;
        goto fail;
    }
    if (nul > 0)
        close(nul);
    set_oom_adj("0");
    if (c->root && (setns(c->userns_fd, CLONE_NEWUSER) < 0 || setgroups(0, NULL) < 0 ||
                    setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
        ce[0] = KSTAGE_USERNS, ce[1] = errno;
        goto fail;
    }
    drop_caps();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        ce[0] = KSTAGE_NNP, ce[1] = errno;
        goto fail;
    }
    int r = seccomp_filter_install(c->prog);
    if (r < 0) {
        ce[0] = KSTAGE_SECCOMP, ce[1] = -r;
        goto fail;
    }
    close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0U, 0);
    execvpe(c->argv[0], c->argv, c->envp);
    ce[0] = KSTAGE_EXEC, ce[1] = errno;
fail:;
    ssize_t w = write(errfd, ce, sizeof(ce));
    (void)w;
    _exit(127);
}

/* PID 1 of the sandbox: starts the kernel, forwards signals to its process group, reaps
 * every orphan, and leaves with the kernel, reporting its wait status first. */
static void __attribute__((noreturn)) init_main(const struct child_ctx *c)
{
    proc_title_set("labbook-init"); /* not the agent's command line with host paths */
    sigset_t set;
    sigemptyset(&set);
    static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
        sigaddset(&set, fwd[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        fail(c, errno, "pipe");
    pid_t k = raw_fork(0);
    if (k < 0)
        fail(c, errno, "fork the kernel");
    if (k == 0) {
        close(ep[0]);
        kernel_child(c, ep[1]);
    }
    close(ep[1]);
    int ce[2];
    ssize_t n;
    do
        n = read(ep[0], ce, sizeof(ce));
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof(ce)) {
        static const char *const stage[] = {"", "open /dev/null", "set no_new_privs",
                                            "install the seccomp filter",
                                            "enter the user namespace"};
        if (ce[0] == KSTAGE_EXEC)
            fail(c, ce[1], "exec %s", c->argv[0]);
        fail(c, ce[1], "%s", stage[ce[0] > 0 && ce[0] < KSTAGE_EXEC ? ce[0] : 0]);
    }
    send_msg(c->status_fd, MSG_READY, 0, 0, NULL);
    for (;;) {
        siginfo_t si;
        int s = sigwaitinfo(&set, &si);
        if (s < 0)
            continue;
        if (s != SIGCHLD) {
            if (kill(-k, s) < 0)
                kill(k, s);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != k)
                continue;
            send_msg(c->status_fd, MSG_EXIT, 0, st, NULL);
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
}

/* Rootless, an overlay of the image cannot be had: its root has mounts under it,
 * which a user namespace may not clone for overlayfs, and with one id mapped a copy-up
 * of root's files fails anyway. The root is then a small tmpfs holding the image's
 * top-level symlinks and, for each top-level folder, a read-only recursive bind of it;
 * /content, /tmp and the other masks are writable as usual. Leaves the cwd at the new
 * root. No allocation: this runs in a child of a threaded process. */
static void rootless_root(const struct child_ctx *c)
{
    if (mount("tmpfs", c->merged, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") < 0)
        fail(c, errno, "mount a tmpfs for the root at %s", c->merged);
    int img = open(c->root_image, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (img < 0)
        fail(c, errno, "open %s", c->root_image);
    if (chdir(c->merged) < 0)
        fail(c, errno, "chdir to the new root");
    char buf[8192], src[PATH_MAX], target[PATH_MAX];
    for (;;) {
        long n = syscall(SYS_getdents64, img, buf, sizeof(buf));
        if (n < 0)
            fail(c, errno, "list %s", c->root_image);
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            off += d->reclen;
            if (!strcmp(d->name, ".") || !strcmp(d->name, ".."))
                continue;
            if (d->type == DT_LNK) {
                ssize_t l = readlinkat(img, d->name, target, sizeof(target) - 1);
                if (l < 0)
                    continue;
                target[l] = 0;
                if (symlinkat(target, AT_FDCWD, d->name) < 0)
                    fail(c, errno, "symlink /%s", d->name);
                continue;
            }
            if (d->type != DT_DIR)
                continue;
            if (mkdir(d->name, 0755) < 0)
                fail(c, errno, "mkdir /%s", d->name);
            if (!strcmp(d->name, "proc") || !strcmp(d->name, "sys") || !strcmp(d->name, "dev"))
                continue; /* made fresh below */
            snprintf(src, sizeof(src), "%s/%s", strcmp(c->root_image, "/") ? c->root_image : "",
                     d->name);
            if (mount(src, d->name, NULL, MS_BIND | MS_REC, NULL) < 0)
                fail(c, errno, "bind %s on /%s", src, d->name);
            set_ro(c, d->name);
        }
    }
    close(img);
}

static void __attribute__((noreturn)) child_main(const struct child_ctx *c)
{
    const struct sandbox_spec *sp = c->spec;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    setsid();
    wait_go(c);
    close(c->sync_fd);
    /* init is a clone of the agent and looks as big: the OOM killer must take what
     * runs inside, not init, which reports why the kernel died. The kernel resets it. */
    set_oom_adj("-1000");
    /* Rootless, this process is in the new user namespace: become its root. As root it
     * stays real root until the kernel enters the user namespace (kernel_child). */
    if (!c->root && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        fail(c, errno, "become root in the user namespace");
    const char *host = sp->hostname ? sp->hostname : "labbook";
    if (sethostname(host, strlen(host)) < 0)
        fail(c, errno, "sethostname");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(c, errno, "make / private");
    loopback_up(c);
    if (sp->network && c->root)
        eth0_up(c);

    if (!c->root) {
        rootless_root(c);
        goto built;
    }
    /* The root: an overlay of the (id-mapped) image with a writable upper layer. */
    const char *lower = c->root_image;
    if (c->root) {
        int r = attach_idmapped(c->root_image, c->userns_fd, true, c->lower);
        if (r < 0)
            fail(c, -r, "id-map %s at %s", c->root_image, c->lower);
        lower = c->lower;
    }
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        fail(c, errno, "mount overlay on /: fsopen");
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0)
        fail(c, errno, "mount overlay on /: lowerdir %s", lower);
    if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", c->upper, 0) < 0)
        fail(c, errno, "mount overlay on /: upperdir %s", c->upper);
    if (fsconfig(fs, FSCONFIG_SET_STRING, "workdir", c->work, 0) < 0)
        fail(c, errno, "mount overlay on /: workdir %s", c->work);
    if (!c->root && fsconfig(fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
        fail(c, errno, "mount overlay on /: userxattr");
    if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        fail(c, errno, "mount overlay on /");
    int mfd = fsmount(fs, FSMOUNT_CLOEXEC, 0);
    if (mfd < 0)
        fail(c, errno, "mount overlay on /: fsmount");
    close(fs);
    if (move_mount(mfd, "", AT_FDCWD, c->merged, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        fail(c, errno, "mount overlay on /: attach at %s", c->merged);
    if (fchdir(mfd) < 0)
        fail(c, errno, "chdir to the new root");
built:

    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(c, errno, "mount proc on /proc");
    if (mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        /* sysfs needs a network namespace of our own; else the host's, read-only. */
        if (mount("/sys", "sys", NULL, MS_BIND | MS_REC, NULL) < 0)
            fail(c, errno, "bind /sys");
        set_ro(c, "sys");
    }
    setup_dev(c);

    for (size_t i = 0; i < ARRAY_SIZE(default_masks); i++)
        mask(c, default_masks[i].path + 1, default_masks[i].opts);
    for (size_t i = 0; i < sp->nmask; i++) {
        const char *m = sp->mask_paths[i];
        if (m[0] != '/' || strstr(m, ".."))
            fail(c, EINVAL, "mask %s", m);
        mask(c, m + 1, NULL);
    }

    mkdirs(c, "content", 0755);
    if (mount(c->content, "content", NULL, MS_BIND, NULL) < 0)
        fail(c, errno, "bind %s on /content", c->content);
    if (sp->drive_dir || sp->drive_later) {
        mkdirs(c, "content/drive/MyDrive", 0755);
        if (c->root && chown("content/drive", c->id_base, c->id_base) < 0)
            fail(c, errno, "chown /content/drive");
    }
    if (sp->drive_dir) {
        int r = 0;
        if (c->root)
            r = c->drive_tree_fd < 0
                    ? -EBADF
                    : attach_idmapped_tree(c->drive_tree_fd,
                                           c->drive_userns_fd >= 0 ? c->drive_userns_fd
                                                                   : c->userns_fd,
                                           false, "content/drive/MyDrive");
        else if (mount(sp->drive_dir, "content/drive/MyDrive", NULL, MS_BIND | MS_REC, NULL) < 0)
            r = -errno;
        if (r < 0)
            fail(c, -r, "bind %s on /content/drive/MyDrive", sp->drive_dir);
    }
    /* The hostname resolves without DNS (a lookup of it would otherwise leave the
     * runtime and wait on the host's resolver). */
    if (c->hosts && exists("etc/hosts", NULL) &&
        mount(c->hosts, "etc/hosts", NULL, MS_BIND, NULL) < 0)
        fail(c, errno, "bind %s on /etc/hosts", c->hosts);
    mkdirs(c, SANDBOX_RUN_DIR + 1, 0755);
    if (mount(c->run, SANDBOX_RUN_DIR + 1, NULL, MS_BIND, NULL) < 0)
        fail(c, errno, "bind %s on %s", c->run, SANDBOX_RUN_DIR);
    if (sp->python_dir) { /* the google.colab package, wherever the host keeps it */
        mkdirs(c, SANDBOX_PYTHON_DIR + 1, 0755);
        int r = c->root
                    ? attach_idmapped(sp->python_dir, c->userns_fd, true, SANDBOX_PYTHON_DIR + 1)
                    : -ENOTSUP;
        if (r < 0) { /* rootless, or a filesystem without id mapping: its files show as
                        nobody's, readable when they are world-readable */
            if (mount(sp->python_dir, SANDBOX_PYTHON_DIR + 1, NULL, MS_BIND | MS_REC, NULL) < 0)
                fail(c, errno, "bind %s on %s", sp->python_dir, SANDBOX_PYTHON_DIR);
            set_ro(c, SANDBOX_PYTHON_DIR + 1);
        }
    }

    for (size_t i = 0; i < ARRAY_SIZE(proc_null); i++)
        if (exists(proc_null[i], NULL) && mount("/dev/null", proc_null[i], NULL, MS_BIND, NULL) < 0)
            fail(c, errno, "mask /%s", proc_null[i]);
    for (size_t i = 0; i < ARRAY_SIZE(hide_dirs); i++)
        if (exists(hide_dirs[i], NULL) &&
            mount("tmpfs", hide_dirs[i], "tmpfs", MS_RDONLY, "size=4k") < 0)
            fail(c, errno, "mask /%s", hide_dirs[i]);
    for (size_t i = 0; i < ARRAY_SIZE(proc_ro); i++) {
        if (!exists(proc_ro[i], NULL))
            continue;
        if (mount(proc_ro[i], proc_ro[i], NULL, MS_BIND | MS_REC, NULL) < 0)
            fail(c, errno, "bind /%s", proc_ro[i]);
        set_ro(c, proc_ro[i]);
    }

    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(c, errno, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        fail(c, errno, "detach the old root");
    const char *cwd = sp->cwd ? sp->cwd : "/content";
    if (chdir("/") < 0 || chdir(cwd) < 0)
        fail(c, errno, "chdir %s", cwd);
    /* Keep only the status pipe and (root) the user namespace. */
    int keep[2] = {c->status_fd, c->userns_fd};
    if (keep[1] >= 0 && keep[1] < keep[0]) {
        keep[0] = c->userns_fd;
        keep[1] = c->status_fd;
    }
    unsigned from = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < 0)
            continue;
        if ((unsigned)keep[i] > from)
            close_range(from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    close_range(from, ~0U, 0);
    init_main(c);
}

/* ---- the parent ---- */

/* Ends a rootless sandbox's slirp4netns (closing its exit fd) and reaps it. */
static void net_helper_stop(struct sandbox_proc *p)
{
    if (p->net_exit_fd >= 0)
        close(p->net_exit_fd);
    p->net_exit_fd = -1;
    if (p->net_helper > 0)
        while (waitpid(p->net_helper, NULL, 0) < 0 && errno == EINTR)
            ;
    p->net_helper = -1;
}

static int write_proc(pid_t pid, const char *file, const char *s)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%ld/%s", (long)pid, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, s, strlen(s));
    int r = w == (ssize_t)strlen(s) ? 0 : w < 0 ? -errno : -EIO;
    close(fd);
    return r;
}

/* A user namespace mapping 0..ID_COUNT-1 to base.., held by a short-lived child that
 * is reaped here. Returns an fd or a negative errno. */
static int make_userns_map(const char *uid_map, const char *gid_map, struct sandbox_error *err);

static int make_userns(uid_t base, struct sandbox_error *err)
{
    char map[64];
    snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)base, ID_COUNT);
    return make_userns_map(map, map, err);
}

/* A user namespace for id-mapping a drive owned by uid:gid (the hub's user) so that
 * its files are root's inside the sandbox whose root is base, and root's writes there
 * land as uid:gid: *fd, or -1 when the drive is root's (the sandbox's own map serves).
 * Returns 0 or a negative errno. */
static int drive_userns(const char *drive_dir, uid_t base, int *fd, struct sandbox_error *err)
{
    struct stat st;
    *fd = -1;
    if (stat(drive_dir, &st) < 0 || st.st_uid == 0)
        return 0;
    char um[64], gm[64];
    snprintf(um, sizeof(um), "%u %u 1\n", (unsigned)st.st_uid, (unsigned)base);
    snprintf(gm, sizeof(gm), "%u %u 1\n", (unsigned)st.st_gid, (unsigned)base);
    int r = make_userns_map(um, gm, err);
    if (r < 0)
        return r;
    *fd = r;
    return 0;
}

static int make_userns_map(const char *uid_map, const char *gid_map, struct sandbox_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        int e = errno;
        sandbox_set_error(err, e, "pipe");
        return -e;
    }
    pid_t pid = raw_fork(CLONE_NEWUSER);
    if (pid == 0) {
        char b;
        close(p[1]);
        while (read(p[0], &b, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(p[0]);
    int r = 0, fd = -1;
    if (pid < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "clone a user namespace");
        goto out;
    }
    char ns[64];
    if ((r = write_proc(pid, "uid_map", uid_map)) < 0 ||
        (r = write_proc(pid, "gid_map", gid_map)) < 0) {
        sandbox_set_error(err, -r, "write the uid/gid map");
        goto out;
    }
    snprintf(ns, sizeof(ns), "/proc/%ld/ns/user", (long)pid);
    if ((fd = open(ns, O_RDONLY | O_CLOEXEC)) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "open %s", ns);
    }
out:
    close(p[1]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return r < 0 ? r : fd;
}

static int prepare_dir(const char *p, bool root, uid_t owner, struct sandbox_error *err)
{
    int r = mkdir_p(p, 0755);
    if (r < 0) {
        sandbox_set_error(err, -r, "mkdir %s", p);
        return r;
    }
    if (root && owner && chown(p, owner, owner) < 0) {
        int e = errno;
        sandbox_set_error(err, e, "chown %s", p);
        return -e;
    }
    return 0;
}

/* state_dir/hosts: the image's /etc/hosts and the sandbox's hostname on 127.0.1.1,
 * bound over /etc/hosts inside (root inside may edit it). Returns its path, or NULL. */
static char *write_hosts(const struct sandbox_spec *spec, bool root, uid_t base)
{
    const char *img = spec->root_image ? spec->root_image : "/";
    char *src = xasprintf("%s/etc/hosts", strcmp(img, "/") ? img : "");
    char *text = NULL;
    size_t n = 0;
    if (read_file(src, 1 << 20, &text, &n) < 0)
        text = xstrdup("127.0.0.1 localhost\n");
    char *out = xasprintf("%s%s127.0.1.1 %s\n", text, n && text[n - 1] != '\n' ? "\n" : "",
                          spec->hostname ? spec->hostname : "labbook");
    char *path = xasprintf("%s/hosts", spec->state_dir);
    if (write_file_atomic(path, out, strlen(out), 0644) < 0 ||
        (root && chown(path, base, base) < 0)) {
        free(path);
        path = NULL;
    }
    free(src);
    free(text);
    free(out);
    return path;
}

/* What an unprivileged host user could not read is not readable inside either: each
 * such entry of the image (hidden.h) gets an empty stand-in in the upper layer. The
 * folders masked as a whole are not walked. */
static int hide_unreadable(const struct sandbox_spec *spec, const char *image, const char *upper,
                           uid_t base, struct sandbox_error *err)
{
    size_t n = 0;
    const char **skip = xcalloc(ARRAY_SIZE(default_masks) + spec->nmask + 1, sizeof(char *));
    for (size_t i = 0; i < ARRAY_SIZE(default_masks); i++)
        skip[n++] = default_masks[i].path;
    for (size_t i = 0; i < spec->nmask; i++)
        skip[n++] = spec->mask_paths[i];
    struct hidden_list l;
    int r = hidden_get(image, skip, n, &l, err);
    if (r == 0)
        r = hidden_prepare_upper(&l, image, upper, base, err);
    hidden_list_free(&l);
    free(skip);
    return r;
}

int sandbox_spawn(const struct sandbox_spec *spec, char *const argv[], char *const envp[],
                  struct sandbox_proc *out, struct sandbox_error *err)
{
    memset(out, 0, sizeof(*out));
    out->status_fd = -1;
    out->net_exit_fd = -1;
    out->net_helper = -1;
    err->err = 0;
    err->msg[0] = 0;
    if (sandbox_supported(err) < 0)
        return -ENOTSUP;
    if (!spec->state_dir || !argv || !argv[0]) {
        sandbox_set_error(err, EINVAL, "sandbox: state_dir and argv are required");
        return -EINVAL;
    }
    bool root = geteuid() == 0;
    uid_t base = spec->id_base ? spec->id_base : DEFAULT_ID_BASE;
    struct seccomp_filter_prog prog = {0};
    int sp[2] = {-1, -1}, st[2] = {-1, -1}, userns = -1, drive_ns = -1;
    pid_t pid = -1;
    int r;
    struct child_ctx c = {.spec = spec,
                          .argv = argv,
                          .envp = envp,
                          .prog = &prog,
                          .root = root,
                          .userns_fd = -1,
                          .drive_userns_fd = -1,
                          .drive_tree_fd = -1};
    c.id_base = base;
    /* With a quota (as root), what the runtime writes lives on its own disk. */
    if (root && spec->disk_bytes && (r = disk_attach(spec->state_dir, spec->disk_bytes, err)) < 0)
        return r;
    char *wdir =
        root && spec->disk_bytes ? disk_mount_dir(spec->state_dir) : xstrdup(spec->state_dir);
    char *upper = xasprintf("%s/upper", wdir);
    char *work = xasprintf("%s/work", wdir);
    char *merged = xasprintf("%s/merged", spec->state_dir);
    char *lower = xasprintf("%s/lower", spec->state_dir);
    char *content = xasprintf("%s/content", wdir);
    free(wdir);
    char *run = sandbox_host_run_dir(spec->state_dir);
    char *hosts = write_hosts(spec, root, base);
    c.hosts = hosts;
    c.upper = upper, c.work = work, c.merged = merged, c.lower = lower, c.content = content,
    c.run = run;
    c.root_image = spec->root_image ? spec->root_image : "/";

    if ((r = prepare_dir(upper, root, base, err)) < 0 ||
        (r = prepare_dir(work, root, base, err)) < 0 ||
        (r = prepare_dir(merged, root, 0, err)) < 0 || (r = prepare_dir(lower, root, 0, err)) < 0 ||
        (r = prepare_dir(content, root, base, err)) < 0 ||
        (r = prepare_dir(run, root, base, err)) < 0)
        goto out;
    if (root && (r = hide_unreadable(spec, c.root_image, upper, base, err)) < 0)
        goto out;
    if ((r = seccomp_filter_build(&prog, err)) < 0)
        goto out;
    if (spec->cgroup_name) {
        struct cgroup_limits l = {spec->memory_limit, spec->pids_limit, spec->cpu_weight};
        r = cgroup_open(NULL, spec->cgroup_name, &l, &out->cg, err);
        /* Rootless without a delegated cgroup: run without limits (docs/sandbox.md). */
        if (r < 0 && root)
            goto out;
    }
    out->memory_limit = spec->memory_limit;
    out->pids_limit = spec->pids_limit;
    if (pipe2(sp, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "pipe");
        goto out;
    }
    c.sync_fd = sp[0];
    c.status_fd = st[1];
    if (root && (r = userns = make_userns(base, err)) < 0)
        goto out;
    c.userns_fd = userns;
    if (root && spec->drive_dir && (r = drive_userns(spec->drive_dir, base, &drive_ns, err)) < 0)
        goto out;
    c.drive_userns_fd = drive_ns;
    if (root && spec->drive_dir &&
        (c.drive_tree_fd =
             open_tree(AT_FDCWD, spec->drive_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "bind %s on /content/drive/MyDrive", spec->drive_dir);
        goto out;
    }
    /* As root the namespaces belong to the host's user namespace (root inside cannot
     * mount or reconfigure them); rootless they need a user namespace of their own. */
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
    if (!root)
        flags |= CLONE_NEWUSER;
    flags |= CLONE_NEWNET; /* always a network of its own (docs/sandbox.md, "Network") */
    if (root && spec->network && net_slot(base) < 0) {
        r = -EINVAL;
        sandbox_set_error(err, EINVAL, "network: id_base %u is not a runtime slot's",
                          (unsigned)base);
        goto out;
    }
    pid = raw_fork(flags);
    if (pid < 0) {
        r = errno == EPERM || errno == EINVAL || errno == ENOSPC ? -ENOTSUP : -errno;
        sandbox_set_error(err, errno, "clone new namespaces");
        goto out;
    }
    if (pid == 0) {
        close(sp[1]);
        close(st[0]);
        child_main(&c);
    }
    close(sp[0]);
    close(st[1]);
    sp[0] = st[1] = -1;

    if (!root) {
        char uid[64], gid[64];
        snprintf(uid, sizeof(uid), "0 %u 1\n", (unsigned)getuid());
        snprintf(gid, sizeof(gid), "0 %u 1\n", (unsigned)getgid());
        if ((r = write_proc(pid, "setgroups", "deny")) < 0 ||
            (r = write_proc(pid, "uid_map", uid)) < 0 ||
            (r = write_proc(pid, "gid_map", gid)) < 0) {
            sandbox_set_error(err, -r, "write the uid/gid map");
            goto out;
        }
    }
    if (spec->network) {
        r = root ? net_attach_root(pid, net_slot(base), err)
                 : net_attach_rootless(pid, &out->net_helper, &out->net_exit_fd, err);
        /* Rootless without slirp4netns (or /dev/net/tun): loopback only, said once. */
        if (!root && (r == -ENOENT || r == -EACCES)) {
            snprintf(out->warning, sizeof(out->warning),
                     "%s: the runtime has only its loopback (docs/sandbox.md, \"Network\")",
                     err->msg);
            err->err = 0;
            err->msg[0] = 0;
            r = 0;
        }
        if (r < 0)
            goto out;
    }
    if (out->cg) {
        struct cgroup_events ev;
        if ((r = cgroup_attach(out->cg, pid)) < 0) {
            sandbox_set_error(err, -r, "cgroup: attach");
            goto out;
        }
        if (cgroup_read_events(out->cg, &ev) == 0) {
            out->oom_base = ev.oom_kills;
            out->pids_base = ev.pids_max;
        }
    }
    if (write(sp[1], "g", 1) != 1) {
        r = -errno;
        sandbox_set_error(err, -r, "start the sandbox");
        goto out;
    }
    struct sb_msg m;
    ssize_t n;
    do
        n = read(st[0], &m, sizeof(m));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(m) || m.type != MSG_READY) {
        if (n == (ssize_t)sizeof(m) && m.type == MSG_ERROR) {
            m.what[sizeof(m.what) - 1] = 0;
            r = m.err ? -m.err : -EIO;
            sandbox_set_error(err, m.err ? m.err : EIO, "%s", m.what);
        } else {
            r = -EIO;
            sandbox_set_error(err, EIO, "the sandbox's init died while starting");
        }
        goto out;
    }
    fcntl(st[0], F_SETFL, fcntl(st[0], F_GETFL) | O_NONBLOCK);
    out->pid = pid;
    if (spec->drive_dir && spec->drive_quota)
        out->dwatch = drive_watch_start(spec->drive_dir, spec->drive_quota, pid);
    out->status_fd = st[0];
    st[0] = -1;
    pid = -1;
    r = 0;
out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (r < 0) {
        cgroup_destroy(out->cg);
        out->cg = NULL;
        net_helper_stop(out);
    }
    int close_fds[] = {sp[0], sp[1], st[0], st[1], userns, drive_ns, c.drive_tree_fd};
    for (size_t i = 0; i < ARRAY_SIZE(close_fds); i++)
        if (close_fds[i] >= 0)
            close(close_fds[i]);
    seccomp_filter_free(&prog);
    free(upper);
    free(work);
    free(merged);
    free(lower);
    free(content);
    free(run);
    free(hosts);
    return r;
}

int sandbox_attach_drive(const struct sandbox_spec *spec, struct sandbox_proc *p,
                         const char *drive_dir, struct sandbox_error *err)
{
    err->err = 0;
    err->msg[0] = 0;
    if (geteuid() != 0 || p->pid <= 0) {
        sandbox_set_error(err, EPERM, "a drive can be bound later only by root");
        return -EPERM;
    }
    /* The id-mapping needs a user namespace with the sandbox's map, not that one. */
    uid_t base = spec->id_base ? spec->id_base : DEFAULT_ID_BASE;
    int userns = -1;
    int r0 = drive_userns(drive_dir, base, &userns, err);
    if (r0 < 0)
        return r0;
    if (userns < 0 && (userns = make_userns(base, err)) < 0)
        return userns;
    int tree = -1, root = -1, mnt = -1, r = 0;
    char path[64];
    tree = open_tree(AT_FDCWD, drive_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
    if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "id-map %s", drive_dir);
        goto out;
    }
    snprintf(path, sizeof(path), "/proc/%ld/root", (long)p->pid);
    root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", (long)p->pid);
    mnt = open(path, O_RDONLY | O_CLOEXEC);
    if (root < 0 || mnt < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "open the sandbox's %s",
                          root < 0 ? "root" : "mount namespace");
        goto out;
    }
    /* A mount lands in the caller's mount namespace, which a threaded process cannot
     * change: a child enters the sandbox's and attaches the drive there. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "pipe");
        goto out;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int e = 0;
        if (setns(mnt, CLONE_NEWNS) < 0 ||
            move_mount(tree, "", root, "content/drive/MyDrive", MOVE_MOUNT_F_EMPTY_PATH) < 0)
            e = errno;
        if (write(pfd[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
            _exit(2);
        _exit(e ? 1 : 0);
    }
    close(pfd[1]);
    int e = EIO;
    if (pid < 0) {
        e = errno;
    } else {
        while (read(pfd[0], &e, sizeof(e)) < 0 && errno == EINTR)
            ;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close(pfd[0]);
    if (e) {
        r = -e;
        sandbox_set_error(err, e, "bind %s on /content/drive/MyDrive", drive_dir);
    } else if (spec->drive_quota && !p->dwatch) {
        p->dwatch = drive_watch_start(drive_dir, spec->drive_quota, p->pid);
    }
out:
    int fds[] = {userns, tree, root, mnt};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

char *sandbox_exit_reason(struct sandbox_proc *p, int *kernel_status)
{
    if (!p)
        return NULL;
    struct sb_msg m;
    while (!p->have_status && p->status_fd >= 0 &&
           read(p->status_fd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
        if (m.type == MSG_EXIT) {
            p->have_status = true;
            p->kernel_status = m.status;
        }
    }
    if (p->have_status && kernel_status)
        *kernel_status = p->kernel_status;
    struct cgroup_events ev;
    if (!p->cg || cgroup_read_events(p->cg, &ev) < 0)
        return NULL;
    char *r = NULL;
    if (ev.oom_kills > p->oom_base) {
        char lim[32];
        cgroup_format_bytes(p->memory_limit, lim, sizeof(lim));
        r = p->memory_limit ? xasprintf("the runtime ran out of memory: limit %s", lim)
                            : xstrdup("the runtime ran out of memory");
    } else if (ev.pids_max > p->pids_base) {
        r = xasprintf("the runtime hit its process limit: %" PRId64 " processes", p->pids_limit);
    }
    p->oom_base = ev.oom_kills;
    p->pids_base = ev.pids_max;
    return r;
}

void sandbox_release(struct sandbox_proc *p)
{
    if (!p)
        return;
    drive_watch_stop(p->dwatch);
    p->dwatch = NULL;
    if (p->status_fd >= 0)
        close(p->status_fd);
    p->status_fd = -1;
    cgroup_destroy(p->cg);
    p->cg = NULL;
    net_helper_stop(p);
}
