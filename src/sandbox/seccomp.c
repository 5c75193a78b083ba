/* The sandbox's seccomp filter: allow by default, refuse with EPERM what container
 * runtimes refuse (kernel keyring, bpf, perf, modules, kexec, reboot, swap, mounts,
 * handles, userfaultfd, namespace creation...), and ENOSYS for clone3 so that libc falls
 * back to clone, whose flags the filter can inspect. */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "common/util.h"

const char *const seccomp_filter_denied[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount2",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "fanotify_init",
    "name_to_handle_at",
    "quotactl_fd",
    "syslog",
    NULL,
};

int seccomp_filter_build(struct seccomp_filter_prog *out, struct sandbox_error *err)
{
    *out = (struct seccomp_filter_prog){0};
    int r = 0, fd = -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        sandbox_set_error(err, ENOMEM, "seccomp: init");
        return -ENOMEM;
    }
    for (size_t i = 0; seccomp_filter_denied[i]; i++) {
        int nr = seccomp_syscall_resolve_name(seccomp_filter_denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0 && r != -EEXIST) {
            sandbox_set_error(err, -r, "seccomp: deny %s", seccomp_filter_denied[i]);
            goto out;
        }
    }
    /* New user namespaces would give root inside a fresh set of capabilities. */
    if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))) < 0 ||
        (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))) < 0 ||
        (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0) {
        sandbox_set_error(err, -r, "seccomp: clone and unshare rules");
        goto out;
    }
    fd = memfd_create("labbook-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "seccomp: memfd_create");
        goto out;
    }
    if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
        sandbox_set_error(err, -r, "seccomp: export");
        goto out;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
        size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        r = -EINVAL;
        sandbox_set_error(err, EINVAL, "seccomp: export size");
        goto out;
    }
    out->insns = xmalloc((size_t)size);
    if (pread(fd, out->insns, (size_t)size, 0) != (ssize_t)size) {
        r = -EIO;
        sandbox_set_error(err, EIO, "seccomp: reading the exported filter");
        seccomp_filter_free(out);
        goto out;
    }
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return r;
}

int seccomp_filter_install(const struct seccomp_filter_prog *p)
{
    struct sock_fprog prog = {.len = p->len, .filter = p->insns};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return -errno;
    return 0;
}

void seccomp_filter_free(struct seccomp_filter_prog *p)
{
    if (!p)
        return;
    free(p->insns);
    *p = (struct seccomp_filter_prog){0};
}
