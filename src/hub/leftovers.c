/* The start-up sweep of a crashed hub's leftovers: extraction folders and markers,
 * atomic writes' temporary files, chunked uploads' files, orphan tus parts. A name
 * alone is not enough: an entry is removed only if it changed before this hub started
 * (the start marker's time), so nothing this hub is writing is ever touched. */
#include "hub/leftovers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsat.h"
#include "common/log.h"
#include "common/util.h"
#include "hub/drive.h"
#include "hub/hub.h"

static bool starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

static bool ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int leftovers_name_kind(const char *name, bool dir)
{
    if (dir)
        return starts(name, ".labbook-extract-") && strlen(name) > strlen(".labbook-extract-");
    if (starts(name, ".labbook-extract-") && (ends(name, ".done") || ends(name, ".done.tmp")))
        return 1;
    if (starts(name, ".~labbook-upload-") && strlen(name) > strlen(".~labbook-upload-"))
        return 2;
    if (starts(name, ".~labbook-") && ends(name, ".tmp") &&
        strlen(name) > strlen(".~labbook-") + strlen(".tmp"))
        return 1;
    return 0;
}

static bool before(const struct stat *st, const struct timespec *t, int64_t slack_s)
{
    /* The change time: it moves with every write, rename or chmod, and no one can set
     * it back. */
    struct timespec c = st->st_ctim;
    c.tv_sec += slack_s;
    return c.tv_sec < t->tv_sec || (c.tv_sec == t->tv_sec && c.tv_nsec < t->tv_nsec);
}

struct walk {
    const struct leftovers_opts *o;
    dev_t dev;
    int removed;
    char path[PATH_MAX];
};

static void note(struct walk *w, size_t len, const char *name, bool dir)
{
    if (!w->o->removed)
        return;
    char rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "%.*s%s%s", (int)len, w->path, len ? "/" : "", name);
    w->o->removed(w->o->ctx, rel, dir);
}

/* Sweeps the folder dfd (closed here), whose path relative to the top is w->path. */
static void sweep_dir(struct walk *w, int dfd, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    size_t len = strlen(w->path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_dev != w->dev)
            continue; /* a mount point: another file system's business */
        bool dir = S_ISDIR(st.st_mode);
        if (!dir && !S_ISREG(st.st_mode))
            continue; /* links, devices: never ours */
        int kind = leftovers_name_kind(e->d_name, dir);
        if (kind && before(&st, &w->o->before, kind == 2 ? w->o->upload_stale_s : 0)) {
            int r = dir ? fs_remove_tree(dfd, e->d_name, FS_RM_ONE_FS)
                        : (unlinkat(dfd, e->d_name, 0) < 0 ? -errno : 0);
            if (r == 0) {
                w->removed++;
                note(w, len, e->d_name, dir);
            }
            continue;
        }
        if (!dir || depth + 1 >= FS_RM_MAX_DEPTH || len + strlen(e->d_name) + 2 >= PATH_MAX)
            continue;
        int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        snprintf(w->path + len, sizeof(w->path) - len, "%s%s", len ? "/" : "", e->d_name);
        sweep_dir(w, sub, depth + 1);
        w->path[len] = '\0';
    }
    closedir(d);
}

int leftovers_sweep_drive(int dirfd, const struct leftovers_opts *opts)
{
    struct stat st;
    if (fstat(dirfd, &st) < 0)
        return 0;
    struct walk w = {.o = opts, .dev = st.st_dev};
    int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0)
        return 0;
    sweep_dir(&w, dup, 0);
    return w.removed;
}

static bool is_upload_id(const char *s, size_t n)
{
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int leftovers_sweep_uploads(int dirfd, const struct leftovers_opts *opts)
{
    int dup = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        if (dup >= 0)
            close(dup);
        return 0;
    }
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        bool orphan = false;
        if (strlen(n) == 37 && ends(n, ".part") && is_upload_id(n, 32)) {
            char rec[40];
            snprintf(rec, sizeof(rec), "%.32s.json", n);
            struct stat rs;
            orphan = fstatat(dup, rec, &rs, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
        } else if (strlen(n) > 37 && is_upload_id(n, 32) && starts(n + 32, ".json.~tmp")) {
            orphan = true;
        }
        struct stat st;
        if (!orphan || fstatat(dup, n, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            !before(&st, &opts->before, 0))
            continue;
        if (unlinkat(dup, n, 0) == 0) {
            removed++;
            if (opts->removed)
                opts->removed(opts->ctx, n, false);
        }
    }
    closedir(d);
    return removed;
}

/* --- the sweep at start --- */

struct sweep {
    uv_work_t work;
    struct hub *h;
    struct leftovers_opts o;
    char *drive_dir, *uploads_dir;
    const char *user; /* the folder being swept, for the log */
    const char *where;
    int removed;
};

static void log_removed(void *ctx, const char *rel, bool dir)
{
    struct sweep *s = ctx;
    char q[300];
    log_info("removed a crash's leftover %s %s/%s%s", dir ? "folder" : "file", s->where, s->user,
             log_quote(rel, q, sizeof(q)));
}

static void sweep_top(struct sweep *s, const char *top, bool uploads)
{
    DIR *d = opendir(top);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int ufd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ufd < 0)
            continue;
        char label[NAME_MAX + 2];
        snprintf(label, sizeof(label), "%s/", e->d_name);
        s->user = label;
        int n = uploads ? leftovers_sweep_uploads(ufd, &s->o) : leftovers_sweep_drive(ufd, &s->o);
        if (n > 0 && !uploads)
            drive_usage_forget(s->h->drive, e->d_name);
        s->removed += n;
        close(ufd);
    }
    closedir(d);
}

static void sweep_work(uv_work_t *w)
{
    struct sweep *s = w->data;
    s->where = "drive/";
    sweep_top(s, s->drive_dir, false);
    s->where = "uploads/";
    sweep_top(s, s->uploads_dir, true);
}

static void sweep_done(uv_work_t *w, int status)
{
    (void)status;
    struct sweep *s = w->data;
    if (s->removed)
        log_info("removed %d leftovers of an earlier crash", s->removed);
    free(s->drive_dir);
    free(s->uploads_dir);
    free(s);
}

void leftovers_start(struct hub *h)
{
    struct sweep *s = xcalloc(1, sizeof(*s));
    s->work.data = s;
    s->h = h;
    s->drive_dir = xstrdup(h->drive_dir);
    s->uploads_dir = xstrdup(h->drive->uploads_dir);
    s->o.upload_stale_s = 3600;
    s->o.removed = log_removed;
    s->o.ctx = s;
    char *marker = xasprintf("%s/.labbook-start", h->data_dir);
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || futimens(fd, NULL) < 0 || fstat(fd, &st) < 0) {
        log_warn("cannot write %s (%s): crash leftovers are not swept", marker, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(marker);
        sweep_done(&s->work, 0);
        return;
    }
    close(fd);
    free(marker);
    s->o.before = st.st_ctim;
    if (uv_queue_work(h->loop, &s->work, sweep_work, sweep_done) < 0) {
        sweep_work(&s->work);
        sweep_done(&s->work, 0);
    }
}
