/* Sandboxed runtimes: sandbox_spawn() runs a kernel in new user, mount, PID, IPC, UTS
 * (and optionally network) namespaces on a writable overlay of a read-only root, in
 * its own cgroup, with capabilities dropped, no_new_privs and a seccomp filter. */
#ifndef LABBOOK_SANDBOX_SANDBOX_H
#define LABBOOK_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the agent's ipc:// sockets and connection file appear inside a sandbox. */
#define SANDBOX_RUN_DIR "/run/labbook"
/* Where the spec's python_dir (the google.colab package) appears inside, read-only. */
#define SANDBOX_PYTHON_DIR "/run/labbook/python"
/* The PATH a sandboxed kernel gets unless its kernelspec or the hub sets one. */
#define SANDBOX_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* An error from setting a sandbox up: a negative errno and a message naming the step
 * that failed ("mount overlay on /: Permission denied"). */
struct sandbox_error {
    int err;
    char msg[512];
};

/* What to build. Strings and arrays are borrowed for the call. */
struct sandbox_spec {
    const char *state_dir;         /* required: upper/, work/, content/ (under disk/ when
                                      there is a disk quota), run/ live here */
    const char *root_image;        /* NULL: "/" (the host's root filesystem, read-only) */
    const char *drive_dir;         /* NULL: none; else bound read-write at /content/drive/MyDrive */
    bool drive_later;              /* no drive yet: sandbox_attach_drive() binds it later (a
                                      pre-started runtime waiting in the pool) */
    const char *const *mask_paths; /* hidden under an empty tmpfs (dirs) or emptied (files) */
    size_t nmask;
    const char *const *devices; /* extra device nodes, "/dev/nvidia0" */
    size_t ndevices;
    bool network;            /* true: a network namespace of its own with outbound access
                                (sandbox/net.h); false: one with lo only */
    uint64_t memory_limit;   /* bytes, 0: none */
    int64_t pids_limit;      /* 0: none */
    uint32_t cpu_weight;     /* 1..10000 (cgroup v2 cpu.weight; v1 shares scaled), 0: default */
    const char *cgroup_name; /* NULL: no cgroup (no limits, no OOM reasons) */
    uint32_t id_base;        /* outside uid/gid of root inside (0: 100000); as root only */
    const char *hostname;    /* NULL: "labbook" */
    const char *cwd;         /* NULL: "/content" */
    uint64_t disk_bytes;     /* quota of the overlay's writes and /content (as root: an
                                ext4 disk of this size, sandbox/disk.h); 0: none */
    const char *python_dir;  /* NULL: none; else bound read-only at SANDBOX_PYTHON_DIR */
    uint64_t drive_quota;    /* bytes the drive may hold (0: none): over it, the drive is
                                read-only inside (sandbox/quota.h) */
};

struct cgroup;
struct drive_watch;

/* A running sandbox, owned by the caller; release it with sandbox_release() once its
 * pid has been reaped. */
struct sandbox_proc {
    pid_t pid;     /* the sandbox's init, as the caller sees it: signal it, reap it */
    int status_fd; /* init reports the kernel's own exit status here */
    struct cgroup *cg;
    uint64_t memory_limit;
    int64_t pids_limit;
    uint64_t oom_base, pids_base; /* event counters when the kernel started */
    bool have_status;
    int kernel_status;          /* wait status of the kernel itself, once have_status */
    pid_t net_helper;           /* rootless with network: its slirp4netns, else -1 */
    int net_exit_fd;            /* closing it ends net_helper; -1 when none */
    char warning[600];          /* what the sandbox lacks that was asked for ("" when nothing) */
    struct drive_watch *dwatch; /* with a drive and a drive quota */
};

/* Whether sandboxes can be made here: 0, or -ENOTSUP (not root and no user namespaces)
 * with err saying why. */
int sandbox_supported(struct sandbox_error *err);

/* Runs argv (envp is the whole environment; PATH of envp is searched) in a new sandbox
 * as root inside it, working directory spec->cwd. The sandbox's init forwards SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the kernel's process group, reaps
 * orphans, and exits when the kernel exits (SIGKILL it to end everything inside).
 * Returns 0 with *out filled, or a negative errno with err set; -ENOTSUP where no
 * sandbox can be made here. */
int sandbox_spawn(const struct sandbox_spec *spec, char *const argv[], char *const envp[],
                  struct sandbox_proc *out, struct sandbox_error *err);

/* Binds drive_dir (id-mapped as at creation) at /content/drive/MyDrive inside the
 * running sandbox p, made from spec with drive_later: how a pre-started runtime
 * becomes a user's. As root only. Returns 0, or a negative errno with err saying why. */
int sandbox_attach_drive(const struct sandbox_spec *spec, struct sandbox_proc *p,
                         const char *drive_dir, struct sandbox_error *err);

/* After the caller reaped out->pid: why the kernel died, when the sandbox knows better
 * than the exit status ("the runtime ran out of memory: limit 4 GiB"); a string the
 * caller frees, or NULL. Also fills *kernel_status (the kernel's own wait status) when
 * known; returns NULL and leaves it alone otherwise. */
char *sandbox_exit_reason(struct sandbox_proc *p, int *kernel_status);

/* Kills what is left, removes the cgroup and closes the handle; p may be half-built. */
void sandbox_release(struct sandbox_proc *p);

/* The host uid (and gid) of root inside a sandbox built from spec: files the kernel must
 * read, such as the connection file, are chowned to it. */
uid_t sandbox_root_uid(const struct sandbox_spec *spec);

/* The host directory bound at SANDBOX_RUN_DIR for a state_dir; caller frees. */
char *sandbox_host_run_dir(const char *state_dir);

/* Formats "step: strerror(e)" into err (e positive). */
void sandbox_set_error(struct sandbox_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
