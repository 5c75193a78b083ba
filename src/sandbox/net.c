/* A runtime's own network (net.h, docs/sandbox.md): the host's half of it. As root a
 * veth pair per runtime and one nftables table for all of them (ip and nft from
 * iproute2 and nftables, run with fixed arguments); rootless a slirp4netns. */
#include "sandbox/net.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define ID_BASE 100000
#define ID_COUNT 65536
#define SLOTS (1 << (32 - NET_SUBNET_BITS - 1))

int net_slot(uint32_t id_base)
{
    if (id_base < ID_BASE || (id_base - ID_BASE) % ID_COUNT)
        return -1;
    uint32_t s = (id_base - ID_BASE) / ID_COUNT;
    return s < SLOTS ? (int)s : -1;
}

static uint32_t subnet(void)
{
    return (uint32_t)NET_SUBNET_A << 24 | (uint32_t)NET_SUBNET_B << 16 |
           (uint32_t)NET_SUBNET_C << 8;
}

uint32_t net_host_addr(int slot)
{
    return subnet() + 2 * (uint32_t)slot;
}

uint32_t net_runtime_addr(int slot)
{
    return subnet() + 2 * (uint32_t)slot + 1;
}

static void fmt_addr(uint32_t a, char *out, size_t n)
{
    snprintf(out, n, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* Runs the tool at one of paths (argv[0] is its name) with input on its stdin; what
 * it prints goes to out (capped, NUL-terminated). Returns its exit status, 127 when
 * none of the paths runs, or a negative errno. */
static int run_tool(const char *const paths[], char *const argv[], const char *input, char *out,
                    size_t outlen)
{
    int in[2] = {-1, -1}, res[2] = {-1, -1};
    out[0] = 0;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0)
                close(in[i]);
            if (res[i] >= 0)
                close(res[i]);
        }
        return -e;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(res[1], 1);
        dup2(res[1], 2);
        char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
        for (size_t i = 0; paths[i]; i++)
            execve(paths[i], argv, envp);
        _exit(127);
    }
    int e = errno;
    close(in[0]);
    close(res[1]);
    if (pid < 0) {
        close(in[1]);
        close(res[0]);
        return -e;
    }
    /* The input is small (under a pipe's buffer): write it all, then read. */
    size_t len = input ? strlen(input) : 0, off = 0;
    while (off < len) {
        ssize_t w = write(in[1], input + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(in[1]);
    size_t got = 0;
    char sink[256];
    for (;;) {
        char *dst = got + 1 < outlen ? out + got : sink;
        size_t room = got + 1 < outlen ? outlen - 1 - got : sizeof(sink);
        ssize_t n = read(res[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst == out + got)
            got += (size_t)n;
    }
    out[got] = 0;
    close(res[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got && out[got - 1] == '\n')
        out[got - 1] = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *const ip_paths[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip", NULL};
static const char *const nft_paths[] = {"/usr/sbin/nft", "/sbin/nft", NULL};

/* One table for every runtime, replaced whole in one transaction (nft -f is atomic).
 * What a runtime sends to the host itself (any of its addresses) is dropped at input;
 * what it sends to another runtime, to link-local addresses (a cloud's metadata
 * service) or over IPv6 is dropped at forward; the rest is masqueraded. */
static const char ruleset_fmt[] =
    "table inet labbook\n"
    "delete table inet labbook\n"
    "table inet labbook {\n"
    "  chain input {\n"
    "    type filter hook input priority -10; policy accept;\n"
    "    iifname \"" NET_IFPREFIX "*\" drop\n"
    "  }\n"
    "  chain forward {\n"
    "    type filter hook forward priority -10; policy accept;\n"
    "    iifname \"" NET_IFPREFIX "*\" oifname \"" NET_IFPREFIX "*\" drop\n"
    "    iifname \"" NET_IFPREFIX "*\" meta nfproto ipv6 drop\n"
    "    iifname \"" NET_IFPREFIX "*\" ip saddr != %s/%d drop\n"
    "    iifname \"" NET_IFPREFIX "*\" ip daddr 169.254.0.0/16 drop\n"
    "  }\n"
    "  chain postrouting {\n"
    "    type nat hook postrouting priority 100; policy accept;\n"
    "    ip saddr %s/%d oifname != \"" NET_IFPREFIX "*\" masquerade\n"
    "  }\n"
    "}\n";

/* Where this host did not forward before labbook turned IPv4 forwarding on, forwarding
 * stays limited to the runtimes' traffic. */
static const char guard_rules[] =
    "table inet labbook_guard\n"
    "delete table inet labbook_guard\n"
    "table inet labbook_guard {\n"
    "  chain forward {\n"
    "    type filter hook forward priority -5; policy accept;\n"
    "    iifname != \"" NET_IFPREFIX "*\" oifname != \"" NET_IFPREFIX "*\" drop\n"
    "  }\n"
    "}\n";

static int host_rules(struct sandbox_error *err)
{
    char *fwd = NULL;
    size_t n = 0;
    bool forwarding =
        read_file("/proc/sys/net/ipv4/ip_forward", 64, &fwd, &n) == 0 && n && fwd[0] == '1';
    free(fwd);
    char net[32], rules[sizeof(ruleset_fmt) + sizeof(guard_rules) + 64], out[512];
    fmt_addr(subnet(), net, sizeof(net));
    int len =
        snprintf(rules, sizeof(rules), ruleset_fmt, net, NET_SUBNET_BITS, net, NET_SUBNET_BITS);
    if (!forwarding)
        snprintf(rules + len, sizeof(rules) - (size_t)len, "%s", guard_rules);
    char *const argv[] = {"nft", "-f", "-", NULL};
    int r = run_tool(nft_paths, argv, rules, out, sizeof(out));
    if (r != 0) {
        sandbox_set_error(err, r < 0 ? -r : EIO, "nft: set up the runtimes' table%s%s",
                          r == 127 ? " (is nftables installed?)" : ": ", r == 127 ? "" : out);
        return r < 0 ? r : -EIO;
    }
    if (!forwarding) {
        int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1\n", 2) != 2) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            sandbox_set_error(err, e, "turn on IPv4 forwarding");
            return -e;
        }
        close(fd);
    }
    return 0;
}

int net_attach_root(pid_t pid, int slot, struct sandbox_error *err)
{
    if (slot < 0) {
        sandbox_set_error(err, EINVAL, "network: the sandbox's id_base is not a runtime slot's");
        return -EINVAL;
    }
    int r = host_rules(err);
    if (r < 0)
        return r;
    char ifname[16], sys[64], host[32], out[512];
    snprintf(ifname, sizeof(ifname), NET_IFPREFIX "%d", slot);
    snprintf(sys, sizeof(sys), "/sys/class/net/%s", ifname);
    /* The pair of this slot's previous sandbox goes with its namespace, but that
     * happens in the background: a restarted kernel may find it still there. */
    struct stat st;
    if (stat(sys, &st) == 0) {
        char *const del[] = {"ip", "link", "del", ifname, NULL};
        run_tool(ip_paths, del, NULL, out, sizeof(out));
    }
    fmt_addr(net_host_addr(slot), host, sizeof(host));
    char cmds[512];
    snprintf(cmds, sizeof(cmds),
             "link add %s type veth peer name eth0 netns %ld\n"
             "addr add %s/31 dev %s\n"
             "link set %s up\n",
             ifname, (long)pid, host, ifname, ifname);
    char *const argv[] = {"ip", "-batch", "-", NULL};
    r = run_tool(ip_paths, argv, cmds, out, sizeof(out));
    if (r != 0) {
        sandbox_set_error(err, r < 0 ? -r : EIO, "network: make the veth pair %s%s%s", ifname,
                          r == 127 ? " (is iproute2 installed?)" : ": ", r == 127 ? "" : out);
        return r < 0 ? r : -EIO;
    }
    return 0;
}

int net_attach_rootless(pid_t pid, pid_t *helper, int *exit_fd, struct sandbox_error *err)
{
    static const char *const paths[] = {"/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", NULL};
    *helper = -1;
    *exit_fd = -1;
    const char *bin = NULL;
    for (size_t i = 0; paths[i] && !bin; i++)
        if (access(paths[i], X_OK) == 0)
            bin = paths[i];
    if (!bin) {
        sandbox_set_error(err, ENOENT, "network: slirp4netns is not installed");
        return -ENOENT;
    }
    if (access("/dev/net/tun", R_OK | W_OK) < 0) {
        sandbox_set_error(err, errno, "network: slirp4netns needs /dev/net/tun");
        return -EACCES;
    }
    int ex[2] = {-1, -1}, rd[2] = {-1, -1}, r = 0;
    if (pipe2(ex, O_CLOEXEC) < 0 || pipe2(rd, O_CLOEXEC) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "pipe");
        goto out;
    }
    char pidbuf[24], exarg[32], rdarg[32];
    snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)pid);
    snprintf(exarg, sizeof(exarg), "--exit-fd=3");
    snprintf(rdarg, sizeof(rdarg), "--ready-fd=4");
    pid_t h = fork();
    if (h == 0) {
        /* fds 3 and 4 in the helper: the exit pipe's read end, the ready pipe's write end. */
        int a = fcntl(ex[0], F_DUPFD_CLOEXEC, 10), b = fcntl(rd[1], F_DUPFD_CLOEXEC, 10);
        if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
            _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        char *const argv[] = {
            "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", exarg, rdarg,
            pidbuf,        "tap0",        NULL};
        char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
        execve(bin, argv, envp);
        _exit(127);
    }
    if (h < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "fork for slirp4netns");
        goto out;
    }
    close(ex[0]);
    close(rd[1]);
    ex[0] = rd[1] = -1;
    char b = 0;
    ssize_t n;
    do
        n = read(rd[0], &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        kill(h, SIGKILL);
        while (waitpid(h, NULL, 0) < 0 && errno == EINTR)
            ;
        r = -EIO;
        sandbox_set_error(err, EIO, "network: slirp4netns did not start");
        goto out;
    }
    *helper = h;
    *exit_fd = ex[1];
    ex[1] = -1;
out:
    for (int i = 0; i < 2; i++) {
        if (ex[i] >= 0)
            close(ex[i]);
        if (rd[i] >= 0)
            close(rd[i]);
    }
    return r;
}
