/* The agent's file service for the runtime's /content (files.h): list, read, write,
 * mkdir and delete, each path opened with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
 * beneath the folder. Small synchronous IO, capped per request. */
#include "agent/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/fsat.h"
#include "common/utf8.h"
#include "common/util.h"
#include "sandbox/disk.h"
#include "wire/stream.h"

char *files_content_dir(const char *state_dir)
{
    if (disk_is_mounted(state_dir)) {
        char *d = disk_mount_dir(state_dir);
        char *c = xasprintf("%s/content", d);
        free(d);
        return c;
    }
    return xasprintf("%s/content", state_dir);
}

struct answer {
    json_t *o;
    uint8_t *data; /* a file's bytes, owned */
    size_t dlen;
};

static void fail(struct answer *a, int status, const char *msg)
{
    json_object_set_new(a->o, "status", json_integer(status));
    json_object_set_new(a->o, "message", json_string(msg));
}

/* Answers a negative errno from opening or changing path. */
static void fail_errno(struct answer *a, int e, const char *path)
{
    char msg[512];
    int status = 500;
    switch (-e) {
    case ENOENT:
    case ENOTDIR:
        status = 404;
        snprintf(msg, sizeof(msg), "no such file or folder in /content: %s", path);
        break;
    case EXDEV:
    case ELOOP:
        status = 403;
        snprintf(msg, sizeof(msg), "%s leads out of /content (through a symlink?)", path);
        break;
    case EACCES:
    case EPERM:
        status = 403;
        snprintf(msg, sizeof(msg), "%s: permission denied", path);
        break;
    case EEXIST:
        status = 409;
        snprintf(msg, sizeof(msg), "%s exists already", path);
        break;
    case ENOTEMPTY:
        status = 409;
        snprintf(msg, sizeof(msg), "the folder %s is not empty", path);
        break;
    case EISDIR:
        status = 409;
        snprintf(msg, sizeof(msg), "%s is a folder", path);
        break;
    case ENOSPC:
    case EDQUOT:
        status = 507;
        snprintf(msg, sizeof(msg), "the runtime's disk is full");
        break;
    default:
        snprintf(msg, sizeof(msg), "%s: %s", path, strerror(-e));
        break;
    }
    fail(a, status, msg);
}

static const char *type_of(mode_t m)
{
    return S_ISDIR(m) ? "directory" : S_ISREG(m) ? "file" : S_ISLNK(m) ? "symlink" : "other";
}

/* /content/drive is where the sandbox mounts the user's drive; on the host it is the
 * empty mount point, and removing that would take the drive away from the running
 * kernel. The drive has its own API: it is neither shown nor reached here. */
static bool is_drive(const char *rel)
{
    return !strcmp(rel, "drive") || str_starts_with(rel, "drive/");
}

static void list_dir(struct answer *a, int fd, bool top)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        fail_errno(a, -errno, "folder");
        return;
    }
    json_t *entries = json_array();
    struct dirent *de;
    bool truncated = false;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || (top && is_drive(de->d_name)))
            continue;
        if (json_array_size(entries) >= FILES_MAX_ENTRIES) {
            truncated = true;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        json_array_append_new(entries,
                              json_pack("{s:o, s:s, s:I, s:I}", "name", json_text(de->d_name),
                                        "type", type_of(st.st_mode), "size", (json_int_t)st.st_size,
                                        "mtime", (json_int_t)st.st_mtime));
    }
    closedir(d);
    json_object_set_new(a->o, "status", json_integer(200));
    json_object_set_new(a->o, "type", json_string("directory"));
    json_object_set_new(a->o, "entries", entries);
    if (truncated)
        json_object_set_new(a->o, "truncated", json_true());
}

static void too_big(struct answer *a, const struct files_root *root, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof(msg),
             "%s over %zu %s: move big files through the drive (/content/drive/MyDrive), "
             "which has ranged downloads and resumable uploads",
             what, root->max_bytes >= (1u << 20) ? root->max_bytes >> 20 : root->max_bytes >> 10,
             root->max_bytes >= (1u << 20) ? "MiB" : "KiB");
    fail(a, 413, msg);
}

/* "read" (and "list"): a folder's entries, or a regular file's bytes. */
static void op_read(struct answer *a, const struct files_root *root, int rootfd, const char *rel,
                    bool list_only)
{
    int fd = fs_open_beneath(rootfd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, RESOLVE_NO_SYMLINKS);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fail_errno(a, fd < 0 ? fd : -errno, rel);
        if (fd >= 0)
            close(fd);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        list_dir(a, fd, !rel[0]);
        return;
    }
    if (list_only || !S_ISREG(st.st_mode)) {
        close(fd);
        fail(a, list_only ? 409 : 403, list_only ? "not a folder" : "not a regular file");
        return;
    }
    if ((uint64_t)st.st_size > root->max_bytes) {
        close(fd);
        too_big(a, root, "the file is");
        return;
    }
    a->data = xmalloc((size_t)st.st_size + 1);
    size_t have = 0;
    while (have < (size_t)st.st_size) {
        ssize_t n = read(fd, a->data + have, (size_t)st.st_size - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail_errno(a, -errno, rel);
            close(fd);
            free(a->data);
            a->data = NULL;
            return;
        }
        if (n == 0)
            break; /* it shrank meanwhile: send what there is */
        have += (size_t)n;
    }
    close(fd);
    a->dlen = have;
    json_object_set_new(a->o, "status", json_integer(200));
    json_object_set_new(a->o, "type", json_string("file"));
}

/* Opens rel's parent folder beneath rootfd; *base points at rel's last name. */
static int open_parent(int rootfd, const char *rel, char **parent, const char **base)
{
    const char *slash = strrchr(rel, '/');
    *parent = slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
    *base = slash ? slash + 1 : rel;
    return fs_open_beneath(rootfd, *parent, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
}

/* "write": the file is written to a temporary name, owned by the sandbox's root, and
 * renamed over rel, so the kernel never sees half of it. */
static void op_write(struct answer *a, const struct files_root *root, int pfd, const char *rel,
                     const char *base, const uint8_t *data, size_t dlen)
{
    if (dlen > root->max_bytes) {
        too_big(a, root, "the upload is");
        return;
    }
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        fail_errno(a, -EISDIR, rel);
        return;
    }
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    char tmp[64];
    snprintf(tmp, sizeof(tmp), ".labbook-upload-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    int fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail_errno(a, -errno, rel);
        return;
    }
    int r = write_all(fd, data, dlen);
    if (r == 0 && root->set_owner && fchown(fd, root->owner, root->owner) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(pfd, tmp, pfd, base) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(pfd, tmp, 0);
        fail_errno(a, r, rel);
        return;
    }
    json_object_set_new(a->o, "status", json_integer(201));
}

static void op_mkdir(struct answer *a, const struct files_root *root, int pfd, const char *rel,
                     const char *base)
{
    if (mkdirat(pfd, base, 0755) < 0) {
        fail_errno(a, -errno, rel);
        return;
    }
    if (root->set_owner && fchownat(pfd, base, root->owner, root->owner, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = -errno;
        unlinkat(pfd, base, AT_REMOVEDIR);
        fail_errno(a, e, rel);
        return;
    }
    json_object_set_new(a->o, "status", json_integer(201));
}

/* "delete": a file (or symlink: the link itself), or an empty folder. */
static void op_delete(struct answer *a, int pfd, const char *rel, const char *base)
{
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        unlinkat(pfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
        fail_errno(a, -errno, rel);
        return;
    }
    json_object_set_new(a->o, "status", json_integer(204));
}

static void serve(struct answer *a, const struct files_root *root, json_t *req, const uint8_t *data,
                  size_t dlen)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *path = json_string_value(json_object_get(req, "path"));
    if (!op || !path) {
        fail(a, 400, "a file request needs \"op\" and \"path\"");
        return;
    }
    if (!root->content_dir) {
        fail(a, 404, "this runtime has no /content (not sandboxed)");
        return;
    }
    char *rel = NULL;
    if (path[0] == '/' || fs_path_normalize(path, &rel) < 0) {
        fail(a, 400, "bad path: it must be relative to /content, without \".\" or \"..\"");
        return;
    }
    if (is_drive(rel)) {
        fail(a, 403, "/content/drive is your drive: reach it through the drive, not the runtime");
        free(rel);
        return;
    }
    int rootfd = open(root->content_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0) {
        fail(a, errno == ENOENT ? 404 : 500, "the runtime's /content is not there (yet)");
        free(rel);
        return;
    }
    bool changes = !strcmp(op, "write") || !strcmp(op, "mkdir") || !strcmp(op, "delete");
    if (!strcmp(op, "read") || !strcmp(op, "list")) {
        op_read(a, root, rootfd, rel, !strcmp(op, "list"));
    } else if (changes && !rel[0]) {
        fail(a, 400, "that cannot be done to /content itself");
    } else if (changes) {
        char *parent;
        const char *base;
        int pfd = open_parent(rootfd, rel, &parent, &base);
        if (pfd < 0)
            fail_errno(a, pfd, parent[0] ? parent : "/content");
        else if (!strcmp(op, "write"))
            op_write(a, root, pfd, rel, base, data, dlen);
        else if (!strcmp(op, "mkdir"))
            op_mkdir(a, root, pfd, rel, base);
        else
            op_delete(a, pfd, rel, base);
        if (pfd >= 0)
            close(pfd);
        free(parent);
    } else {
        fail(a, 400, "unknown file operation");
    }
    close(rootfd);
    free(rel);
}

uint8_t *files_serve(const struct files_root *root, const uint8_t *p, size_t len, size_t *out_len)
{
    struct answer a = {.o = json_object()};
    const char *js;
    size_t jlen, dlen = 0;
    const uint8_t *data = NULL;
    json_t *req = NULL;
    if (stream_file_split(p, len, &js, &jlen, &data, &dlen) < 0 ||
        !(req = json_loadb(js, jlen, 0, NULL)) || !json_is_object(req)) {
        fail(&a, 400, "malformed file request");
    } else {
        json_t *id = json_object_get(req, "req");
        if (id)
            json_object_set(a.o, "req", id);
        serve(&a, root, req, data, dlen);
    }
    json_decref(req);
    char *s = json_dumps(a.o, JSON_COMPACT);
    json_decref(a.o);
    uint8_t *out = stream_file_pack(s, strlen(s), a.data, a.dlen, out_len);
    free(s);
    free(a.data);
    return out;
}
