/* The drive quota for writes from a runtime (quota.h): a watcher thread per sandbox
 * that walks the drive, and the remount that makes the drive read-only inside. */
#include "sandbox/quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fsat.h"
#include "common/log.h"
#include "common/util.h"

#define RECENT_MAX 64

struct drive_watch {
    pthread_t thread;
    int stop_fd; /* eventfd: written to stop the thread */
    int fan_fd;  /* fanotify on the drive's mount in the sandbox (root), else -1 */
    atomic_bool ro;
    int recent[RECENT_MAX]; /* thread's own: see recent_add */
    int nrecent;
    bool pinned;
    int host_fd; /* the drive folder on the host (unpin) */
    char *dir;
    uint64_t quota;
    struct sandbox_ns ns; /* opened at the start: a reaped pid's number may be reused */
};

int64_t quota_tree_size(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return fs_tree_size(fd);
}

int sandbox_ns_open(pid_t pid, struct sandbox_ns *ns)
{
    char path[64];
    ns->root = ns->mnt = ns->user = -1;
    snprintf(path, sizeof(path), "/proc/%ld/root", (long)pid);
    ns->root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", (long)pid);
    ns->mnt = open(path, O_RDONLY | O_CLOEXEC);
    if (geteuid() != 0) { /* rootless: the mount belongs to the sandbox's user namespace */
        snprintf(path, sizeof(path), "/proc/%ld/ns/user", (long)pid);
        ns->user = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (ns->root < 0 || ns->mnt < 0 || (geteuid() != 0 && ns->user < 0)) {
        int e = errno;
        sandbox_ns_close(ns);
        return -e;
    }
    return 0;
}

void sandbox_ns_close(struct sandbox_ns *ns)
{
    int *fds[] = {&ns->root, &ns->mnt, &ns->user};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

int sandbox_drive_set_readonly(const struct sandbox_ns *ns, bool ro)
{
    int root = ns->root, mnt = ns->mnt, user = ns->user;
    /* A threaded process cannot change its mount namespace: a child does it. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    pid_t c = fork();
    if (c == 0) {
        int e = 0;
        struct mount_attr a = {.attr_set = ro ? MOUNT_ATTR_RDONLY : 0,
                               .attr_clr = ro ? 0 : MOUNT_ATTR_RDONLY};
        if ((user >= 0 && setns(user, CLONE_NEWUSER) < 0) || setns(mnt, CLONE_NEWNS) < 0 ||
            mount_setattr(root, "content/drive/MyDrive", 0, &a, sizeof(a)) < 0)
            e = errno;
        if (write(pfd[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
            _exit(2);
        _exit(e ? 1 : 0);
    }
    close(pfd[1]);
    int e = EIO;
    if (c < 0) {
        e = errno;
    } else {
        while (read(pfd[0], &e, sizeof(e)) < 0 && errno == EINTR)
            ;
        while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    close(pfd[0]);
    return -e;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Files written through the mount lately (fds from fanotify events, one per inode,
 * the RECENT_MAX latest), and whether they were made immutable. */
/* Clears a pinned file's immutable flag through the host's drive folder: the fd's own
 * mount may be read-only by now, and flags cannot change through a read-only mount. */
static void unpin(const struct drive_watch *w, int fd)
{
    struct {
        struct file_handle h;
        unsigned char space[MAX_HANDLE_SZ];
    } fh;
    int mnt_id, f = 0;
    fh.h.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", &fh.h, &mnt_id, AT_EMPTY_PATH) < 0)
        return;
    int hfd = open_by_handle_at(w->host_fd, &fh.h, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (hfd < 0)
        return;
    if (ioctl(hfd, FS_IOC_GETFLAGS, &f) == 0 && (f & FS_IMMUTABLE_FL)) {
        f &= ~FS_IMMUTABLE_FL;
        ioctl(hfd, FS_IOC_SETFLAGS, &f);
    }
    close(hfd);
}

static void recent_clear(struct drive_watch *w)
{
    for (int i = 0; i < w->nrecent; i++) {
        if (w->pinned)
            unpin(w, w->recent[i]);
        close(w->recent[i]);
    }
    w->nrecent = 0;
    w->pinned = false;
}

/* A file open for writing keeps the mount from turning read-only (EBUSY): while the
 * drive is over its quota and not read-only yet, the files being written are made
 * immutable, so that their writers get EPERM (and close them); undone as soon as the
 * mount is read-only, or the drive under its quota again, or the watch stops. */
static void pin(int fd)
{
    int f = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &f) == 0 && !(f & FS_IMMUTABLE_FL)) {
        f |= FS_IMMUTABLE_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &f);
    }
}

static void recent_add(struct drive_watch *w, int fd)
{
    struct stat st, o;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    for (int i = 0; i < w->nrecent; i++) {
        if (fstat(w->recent[i], &o) == 0 && o.st_ino == st.st_ino && o.st_dev == st.st_dev) {
            close(fd);
            return;
        }
    }
    if (w->nrecent == RECENT_MAX) { /* the oldest goes (a pinned one is unpinned) */
        if (w->pinned)
            unpin(w, w->recent[0]);
        close(w->recent[0]);
        memmove(w->recent, w->recent + 1, (RECENT_MAX - 1) * sizeof(int));
        w->nrecent--;
    }
    if (w->pinned)
        pin(fd);
    w->recent[w->nrecent++] = fd;
}

/* Reads what fanotify reported, keeping the files in the recent set. */
static void drain(struct drive_watch *w)
{
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = read(w->fan_fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
             m = FAN_EVENT_NEXT(m, n))
            if (m->fd >= 0)
                recent_add(w, m->fd);
    }
}

/* Waits up to ms for the stop (true) or, with fan, for a write (false either way). */
static bool wait_for(struct drive_watch *w, bool fan, int ms)
{
    struct pollfd p[2] = {{.fd = w->stop_fd, .events = POLLIN},
                          {.fd = w->fan_fd, .events = POLLIN}};
    int n = poll(p, fan ? 2 : 1, ms < 0 ? 0 : ms);
    if (n > 0 && (p[0].revents & POLLIN))
        return true;
    if (fan && n > 0)
        drain(w);
    return false;
}

static void say(const struct drive_watch *w, int64_t used, bool over)
{
    log_msg(over ? LOG_WARN : LOG_INFO,
            "agent: the drive holds %.1f MiB, %s its quota of %.1f MiB: %s",
            (double)used / (1 << 20), over ? "over" : "under", (double)w->quota / (1 << 20),
            over ? "read-only in this runtime until space is freed" : "writable again");
}

/* Measures, then acts: over the quota, the mount is made read-only (and while files
 * open for writing keep it from that, those files are pinned, above); under it, the
 * mount is writable again. Then waits for the next measure: with fanotify (root) and
 * writable, the kernel's next write through its mount of the drive, else (or at the
 * latest) QUOTA_INTERVAL_MS, so that writes fanotify missed and space freed through the
 * hub are seen; never sooner than the gap after the last walk. */
static void *watch_main(void *arg)
{
    struct drive_watch *w = arg;
    for (;;) {
        uint64_t t0 = mono_ms();
        int64_t used = quota_tree_size(w->dir);
        uint64_t took = mono_ms() - t0;
        if (w->fan_fd >= 0)
            drain(w);
        bool over = used >= 0 && (uint64_t)used > w->quota;
        bool ro = atomic_load(&w->ro);
        if (used >= 0 && over && !ro) {
            int r = sandbox_drive_set_readonly(&w->ns, true);
            if (r == 0) {
                atomic_store(&w->ro, true);
                recent_clear(w); /* read-only now: nothing needs pinning */
                say(w, used, true);
            } else if (r == -EBUSY && !w->pinned) {
                w->pinned = true;
                for (int i = 0; i < w->nrecent; i++)
                    pin(w->recent[i]);
                say(w, used, true);
            }
        } else if (used >= 0 && !over && (ro || w->pinned)) {
            if (!ro || sandbox_drive_set_readonly(&w->ns, false) == 0) {
                atomic_store(&w->ro, false);
                recent_clear(w);
                say(w, used, false);
            }
        } else if (!over && w->nrecent > RECENT_MAX / 2) {
            recent_clear(w); /* under the quota: no need to hold them */
        }
        uint64_t gap = took * QUOTA_INTERVAL_FACTOR;
        gap = gap < QUOTA_MIN_GAP_MS        ? QUOTA_MIN_GAP_MS
              : gap > QUOTA_INTERVAL_MAX_MS ? QUOTA_INTERVAL_MAX_MS
                                            : gap;
        uint64_t next = t0 + took + gap;
        bool pending = w->pinned && !atomic_load(&w->ro); /* retry the remount soon */
        if (w->fan_fd >= 0 && !atomic_load(&w->ro)) {
            if (wait_for(w, true, pending ? (int)gap : QUOTA_INTERVAL_MS))
                break;
            uint64_t now = mono_ms();
            if (now < next && wait_for(w, false, (int)(next - now)))
                break;
        } else {
            uint64_t now = mono_ms(),
                     until = next > now + QUOTA_INTERVAL_MS ? next : now + QUOTA_INTERVAL_MS;
            if (wait_for(w, false, (int)(until - now)))
                break;
        }
    }
    recent_clear(w);
    return NULL;
}

struct drive_watch *drive_watch_start(const char *drive_dir, uint64_t quota, pid_t pid)
{
    struct drive_watch *w = xcalloc(1, sizeof(*w));
    if (sandbox_ns_open(pid, &w->ns) < 0) {
        free(w);
        return NULL;
    }
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    w->host_fd = open(drive_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Root: hear of every write through the sandbox's own mount of the drive. */
    w->fan_fd = geteuid() == 0 ? fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                                               O_RDONLY | O_CLOEXEC | O_LARGEFILE)
                               : -1;
    if (w->fan_fd >= 0 && fanotify_mark(w->fan_fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_MODIFY,
                                        w->ns.root, "content/drive/MyDrive") < 0) {
        close(w->fan_fd);
        w->fan_fd = -1;
    }
    w->dir = xstrdup(drive_dir);
    w->quota = quota;
    if (w->stop_fd < 0 || w->host_fd < 0 || pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        sandbox_ns_close(&w->ns);
        if (w->host_fd >= 0)
            close(w->host_fd);
        if (w->stop_fd >= 0)
            close(w->stop_fd);
        if (w->fan_fd >= 0)
            close(w->fan_fd);
        free(w->dir);
        free(w);
        return NULL;
    }
    return w;
}

bool drive_watch_readonly(const struct drive_watch *w)
{
    return w && atomic_load(&w->ro);
}

void drive_watch_stop(struct drive_watch *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    if (write(w->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        abort(); /* an eventfd takes this write */
    pthread_join(w->thread, NULL);
    sandbox_ns_close(&w->ns);
    close(w->stop_fd);
    close(w->host_fd);
    if (w->fan_fd >= 0)
        close(w->fan_fd);
    free(w->dir);
    free(w);
}
