/* A runtime's disk quota made real: its overlay upper layer and /content live on an
 * ext4 file system in a sparse image of the quota's size, loop-mounted at
 * STATE/disk, so that writing past the quota fails with ENOSPC inside the runtime,
 * as a full disk does, and never fills the host's disk. */
#include "sandbox/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

/* Smallest image worth making: ext4 needs a few MiB for itself. */
#define DISK_MIN_BYTES ((uint64_t)16 << 20)

char *disk_mount_dir(const char *state_dir)
{
    return xasprintf("%s/disk", state_dir);
}

bool disk_is_mounted(const char *state_dir)
{
    char *mnt = disk_mount_dir(state_dir);
    struct stat a, b;
    bool yes = stat(mnt, &a) == 0 && stat(state_dir, &b) == 0 && a.st_dev != b.st_dev;
    free(mnt);
    return yes;
}

/* mkfs.ext4 on the image: no journal (the runtime's scratch need not survive a host
 * crash), nothing reserved for root, inode tables written lazily. */
static int make_fs(const char *img, struct sandbox_error *err)
{
    pid_t pid = fork();
    if (pid < 0) {
        sandbox_set_error(err, errno, "fork for mkfs.ext4");
        return -errno;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        const char *path = "PATH=/usr/sbin:/sbin:/usr/bin:/bin";
        char *const envp[] = {(char *)path, NULL};
        char *const argv[] = {"mkfs.ext4",
                              "-q",
                              "-F",
                              "-O",
                              "^has_journal",
                              "-E",
                              "lazy_itable_init=1,nodiscard",
                              "-m",
                              "0",
                              (char *)img,
                              NULL};
        execve("/usr/sbin/mkfs.ext4", argv, envp);
        execve("/sbin/mkfs.ext4", argv, envp);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        sandbox_set_error(
            err, EIO, "mkfs.ext4 %s failed (status %d%s)", img,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "; is e2fsprogs installed?" : "");
        return -EIO;
    }
    return 0;
}

/* Attaches img to a free loop device that lets go of it once unmounted; returns the
 * device's open fd and its path in dev. */
static int loop_attach(int img_fd, char *dev, size_t n, struct sandbox_error *err)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        sandbox_set_error(err, errno, "open /dev/loop-control");
        return -errno;
    }
    int r = -EBUSY;
    for (int tries = 0; tries < 8 && r == -EBUSY; tries++) {
        int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (nr < 0) {
            r = -errno;
            sandbox_set_error(err, errno, "no free loop device");
            break;
        }
        snprintf(dev, n, "/dev/loop%d", nr);
        int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            sandbox_set_error(err, errno, "open %s", dev);
            break;
        }
        struct loop_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.fd = (unsigned)img_fd;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
            return fd;
        r = -errno; /* EBUSY: another process took it first; try the next */
        close(fd);
        if (r != -EBUSY)
            sandbox_set_error(err, -r, "configure %s", dev);
    }
    if (r == -EBUSY)
        sandbox_set_error(err, EBUSY, "every free loop device was taken meanwhile");
    close(ctl);
    return r;
}

int disk_attach(const char *state_dir, uint64_t bytes, struct sandbox_error *err)
{
    char *mnt = disk_mount_dir(state_dir);
    char *img = xasprintf("%s/disk.img", state_dir);
    int fd = -1, loop = -1, r = 0;
    if (bytes < DISK_MIN_BYTES)
        bytes = DISK_MIN_BYTES;
    if (mkdir(mnt, 0755) < 0 && errno != EEXIST) {
        r = -errno;
        sandbox_set_error(err, errno, "mkdir %s", mnt);
        goto out;
    }
    if (disk_is_mounted(state_dir))
        goto out; /* a restart of the same runtime: its files stay */
    fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "open %s", img);
        goto out;
    }
    if (st.st_size == 0) {
        if (ftruncate(fd, (off_t)bytes) < 0) {
            r = -errno;
            sandbox_set_error(err, errno, "size %s", img);
            goto out;
        }
        if ((r = make_fs(img, err)) < 0)
            goto out;
    }
    char dev[64];
    if ((r = loop = loop_attach(fd, dev, sizeof(dev), err)) < 0)
        goto out;
    /* discard: files deleted inside give their blocks back to the host's disk */
    if (mount(dev, mnt, "ext4", MS_NOSUID | MS_NODEV, "discard") < 0) {
        r = -errno;
        sandbox_set_error(err, errno, "mount %s on %s", dev, mnt);
        goto out;
    }
    r = 0;
out:
    if (loop >= 0)
        close(loop); /* the mount holds the device now; autoclear frees it at unmount */
    if (fd >= 0)
        close(fd);
    free(mnt);
    free(img);
    return r;
}

void disk_detach(const char *state_dir)
{
    if (!disk_is_mounted(state_dir))
        return;
    char *mnt = disk_mount_dir(state_dir);
    umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
    free(mnt);
}
