/* Server-side notebook documents: outputs of running cells recorded from kernel messages the
 * way JupyterLab's output area records them, and written into the .ipynb without clobbering
 * concurrent saves. Paths are resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). */
#include "hub/nbdoc.h"

#include "common/fsat.h"
#include "common/nbformat.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <malloc.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define DEFAULT_MAX_CELL_OUTPUT ((size_t)8 << 20)
#define MAX_CELL_OUTPUT_LIMIT ((size_t)1 << 30)
#define DEFAULT_MAX_FILE ((size_t)256 << 20)
/* A notebook file bigger than this is not kept parsed between saves (its tree costs
 * several times its size for as long as the kernel runs): it is read again for the
 * next save, and the memory goes back to the system. */
#define KEEP_TREE_MAX ((size_t)8 << 20)
#define DEFAULT_MAX_RUNS 1024
#define OUT_OVERHEAD 64 /* weight of one output besides its strings */
#define SAVE_TRIES 3

/* A test's hook between a save's write and its last look at the file (the window in which
 * another save may land); nothing in the server. */
#ifndef NBDOC_BEFORE_RENAME
#define NBDOC_BEFORE_RENAME(dirfd, name) ((void)0)
#endif

/* One output of a cell. Streams keep their text in a buffer (they grow by small appends);
 * the others are nbformat output objects with multiline strings joined. */
struct out {
    char *name;      /* stream name; NULL for the others */
    struct buf text; /* stream text, already \r- and \b-processed */
    json_t *j;       /* the output when not a stream */
    char *display_id;
    size_t weight;
};

/* One execute_request and what it produced. */
struct run {
    char *msg_id;
    char *cell_id; /* NULL: found by code */
    char *code;
    json_t *count; /* execution_count: integer or null */
    struct out *outs;
    size_t n, alloc;
    size_t weight;
    bool started, done, truncated, clear_next;
    bool reported; /* nbdoc_take_recorded has named it */
    bool adopted;  /* running before this hub started (nbdoc_mark_adopted) */
    /* Resumed without its first outputs (nbdoc_resume): the cell keeps what the file had
     * (base, taken at the first save), then a note, then what came after. */
    bool keep_file;
    json_t *base;
    int64_t started_ms;      /* when it started, ms since the epoch */
    uint64_t seq;            /* order of starting, for runs landing in the same cell */
    uint64_t gen, saved_gen; /* changes made, and the change the file has */
};

/* What the file looked like when this document last read or wrote it. */
struct ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
};

struct nbdoc {
    pthread_mutex_t lock; /* the runs */
    struct run **runs;
    size_t nruns;
    uint64_t seq;
    size_t ndisplay; /* outputs with a display_id, all runs together */
    struct nbdoc_opts o;
    char *root;

    pthread_mutex_t save_lock; /* everything below; held through a save */
    char *path;
    json_t *nb; /* the file's notebook as last read or written, with our outputs */
    bool have_ident;
    struct ident ident;
    unsigned char hash[crypto_generichash_BYTES]; /* of the file's bytes */
};

/* A run's outputs copied for a save, in nbformat's on-disk form. */
struct snap {
    char *msg_id, *cell_id, *code;
    json_t *outputs, *count;
    bool keep_file;
    json_t *base; /* keep_file: the file's outputs before the run (NULL: not taken yet) */
    uint64_t seq, gen;
    char *resolved_id; /* the id of the cell found by code */
    bool applied;
};

/* ---- paths ------------------------------------------------------------------------------ */

/* Turns an API path into "a/b/c.ipynb"; refuses "." and "..", empty and non-notebook
 * names. Caller frees *out. */
static int path_check(const char *in, char **out)
{
    char *norm;
    int r = fs_path_normalize(in, &norm);
    if (r < 0)
        return r;
    if (!norm[0] || !str_ends_with(norm, ".ipynb")) {
        free(norm);
        return -EINVAL;
    }
    *out = norm;
    return 0;
}

/* Opens rel beneath dirfd: no "..", absolute path or symlink on the way. */
static int open_beneath(int dirfd, const char *rel, int flags)
{
    return fs_open_beneath(dirfd, rel, flags, RESOLVE_NO_SYMLINKS);
}

/* Resolves the folder holding norm as an O_PATH fd, and the file's name in it. */
static int open_dir_of(const char *root, const char *norm, int *dirfd, const char **name)
{
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    const char *slash = strrchr(norm, '/');
    char *parent = slash ? xstrndup(norm, (size_t)(slash - norm)) : xstrdup("");
    int fd = open_beneath(rfd, parent, O_PATH | O_DIRECTORY);
    free(parent);
    close(rfd);
    if (fd < 0)
        return fd;
    *dirfd = fd;
    *name = slash ? slash + 1 : norm;
    return 0;
}

/* Opens the notebook for reading: a regular file, never a FIFO we would block on. */
static int open_file(int dirfd, const char *name, struct stat *st)
{
    int fd = open_beneath(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int r = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL; /* st is zeroed when fstat fails */
        close(fd);
        return r;
    }
    return fd;
}

static struct ident ident_of(const struct stat *st)
{
    return (struct ident){st->st_dev, st->st_ino, st->st_size, st->st_mtim, st->st_ctim};
}

static bool ident_eq(const struct ident *a, const struct ident *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* ---- stream text ------------------------------------------------------------------------ */

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t u8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8)
        return 4;
    if (c >= 0xe0)
        return c < 0xf0 ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* Start of the code point that ends at len (len > 0). */
static size_t u8_back(const char *s, size_t len)
{
    size_t i = len - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80 && len - i < 4)
        i--;
    return i;
}

/* Appends one line in which '\r' returns to the start and what follows overwrites it, as
 * a terminal shows it (and as JupyterLab keeps it). A final '\r' (keep_cr) is kept, so
 * that the next text overwrites the line. Works on code points, not bytes. */
static void overwrite_line(const char *s, size_t n, bool keep_cr, struct buf *out)
{
    /* where each character of the line starts in s (n is below the per-cell cap) */
    uint32_t *starts = xmalloc((n + 1) * sizeof *starts);
    size_t cells = 0, cur = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\r') {
            cur = 0;
            i++;
            continue;
        }
        starts[cur++] = (uint32_t)i;
        if (cur > cells)
            cells = cur;
        i += u8_len((unsigned char)s[i]);
    }
    for (size_t c = 0; c < cells; c++) {
        size_t l = u8_len((unsigned char)s[starts[c]]);
        buf_append(out, s + starts[c], starts[c] + l > n ? n - starts[c] : l);
    }
    if (keep_cr)
        buf_append(out, "\r", 1);
    free(starts);
}

/* Processes stream text as JupyterLab's output model does: a '\b' removes the character
 * before it (not a newline), "\r\n" is a newline, and '\r' overwrites the line. */
static void stream_fix(const char *in, size_t n, struct buf *out)
{
    struct buf a = {0};
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\b' && a.len && a.data[a.len - 1] != '\n')
            a.len = u8_back(a.data, a.len);
        else
            buf_append(&a, in + i, 1);
    }
    size_t start = 0;
    while (start < a.len) {
        const char *nl = memchr(a.data + start, '\n', a.len - start);
        size_t end = nl ? (size_t)(nl - a.data) : a.len;
        size_t e = end;
        bool trailing_cr = false;
        while (e > start && a.data[e - 1] == '\r') {
            e--;
            trailing_cr = !nl;
        }
        if (memchr(a.data + start, '\r', e - start))
            overwrite_line(a.data + start, e - start, trailing_cr, out);
        else {
            buf_append(out, a.data + start, e - start);
            if (trailing_cr)
                buf_append(out, "\r", 1);
        }
        if (nl)
            buf_append(out, "\n", 1);
        start = nl ? end + 1 : a.len;
    }
    buf_free(&a);
}

/* Adds a chunk to a stream's processed text. Only the unfinished last line can change. */
static void stream_append(struct buf *text, const char *chunk, size_t n)
{
    bool plain = !memchr(chunk, '\r', n) && !memchr(chunk, '\b', n) &&
                 !(text->len && text->data[text->len - 1] == '\r');
    if (plain) {
        buf_append(text, chunk, n);
        return;
    }
    size_t tail = 0;
    for (size_t i = text->len; i > 0; i--)
        if (text->data[i - 1] == '\n') {
            tail = i;
            break;
        }
    struct buf in = {0}, fixed = {0};
    if (text->len > tail) /* (text->data is NULL while the stream is empty) */
        buf_append(&in, text->data + tail, text->len - tail);
    buf_append(&in, chunk, n);
    stream_fix(in.data, in.len, &fixed);
    text->len = tail;
    buf_append(text, fixed.data ? fixed.data : "", fixed.len);
    if (text->data)
        text->data[text->len] = '\0';
    buf_free(&in);
    buf_free(&fixed);
}

/* ---- outputs and runs ------------------------------------------------------------------- */

/* Roughly the bytes a JSON value takes in the file. */
static size_t json_weight(const json_t *v)
{
    size_t w = 8, i;
    const char *k;
    json_t *x;
    if (json_is_string(v))
        return w + json_string_length(v);
    if (json_is_array(v)) {
        json_array_foreach(v, i, x) w += json_weight(x);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x) w += strlen(k) + json_weight(x);
    }
    return w;
}

static void out_free(struct out *o)
{
    free(o->name);
    buf_free(&o->text);
    json_decref(o->j);
    free(o->display_id);
}

static void run_clear(struct nbdoc *doc, struct run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->outs[i].display_id)
            doc->ndisplay--;
        out_free(&r->outs[i]);
    }
    r->n = 0;
    r->weight = 0;
    r->truncated = false;
}

static void run_free(struct nbdoc *doc, struct run *r)
{
    if (!r)
        return;
    run_clear(doc, r);
    free(r->outs);
    free(r->msg_id);
    free(r->cell_id);
    free(r->code);
    json_decref(r->count);
    json_decref(r->base);
    free(r);
}

static void run_remove(struct nbdoc *doc, size_t i)
{
    run_free(doc, doc->runs[i]);
    memmove(doc->runs + i, doc->runs + i + 1, (doc->nruns - i - 1) * sizeof *doc->runs);
    doc->nruns--;
}

static struct run *run_find(struct nbdoc *doc, const char *msg_id)
{
    for (size_t i = doc->nruns; i > 0; i--)
        if (!strcmp(doc->runs[i - 1]->msg_id, msg_id))
            return doc->runs[i - 1];
    return NULL;
}

static bool same_cell(const struct run *a, const struct run *b)
{
    if (a->cell_id || b->cell_id)
        return a->cell_id && b->cell_id && !strcmp(a->cell_id, b->cell_id);
    return a->code && b->code && !strcmp(a->code, b->code);
}

static bool run_clean(const struct run *r)
{
    return !r->started || r->gen == r->saved_gen;
}

/* The kernel started r: its cell's outputs are replaced from now on, and earlier runs of
 * the same cell are superseded. */
static void run_start(struct nbdoc *doc, struct run *r)
{
    if (r->started)
        return;
    r->started = true;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r->seq = ++doc->seq;
    r->gen++;
    run_clear(doc, r);
    for (size_t i = doc->nruns; i > 0; i--) {
        struct run *o = doc->runs[i - 1];
        if (o != r && o->started && same_cell(o, r))
            run_remove(doc, i - 1);
    }
}

static struct out *run_push(struct run *r)
{
    if (r->n == r->alloc) {
        r->alloc = r->alloc ? r->alloc * 2 : 4;
        r->outs = xrealloc(r->outs, r->alloc * sizeof *r->outs);
    }
    struct out *o = &r->outs[r->n++];
    memset(o, 0, sizeof *o);
    return o;
}

/* Stops keeping r's outputs: what comes next is only seen live. */
static void run_truncate(struct nbdoc *doc, struct run *r)
{
    size_t cap = doc->o.max_cell_output;
    char *note =
        cap % (1 << 20) == 0 ? xasprintf("%zu MiB", cap >> 20) : xasprintf("%zu bytes", cap);
    struct out *o = run_push(r);
    o->name = xstrdup("stderr");
    buf_printf(&o->text,
               "[labbook] Output truncated: this cell's output passed %s, the most a saved "
               "notebook keeps of one cell. The rest was only shown to the browsers connected "
               "while it ran.\n",
               note);
    free(note);
    o->weight = OUT_OVERHEAD + o->text.len;
    r->weight += o->weight;
    r->truncated = true;
}

/* Before an output is added: a pending clear_output(wait=True) takes effect. */
static void run_before_output(struct nbdoc *doc, struct run *r)
{
    run_start(doc, r);
    if (r->clear_next) {
        run_clear(doc, r);
        r->clear_next = false;
        r->keep_file = false; /* the cell was cleared: what the file had goes too */
    }
    r->gen++;
}

static void add_stream(struct nbdoc *doc, struct run *r, const char *name, const char *text,
                       size_t len)
{
    size_t cap = doc->o.max_cell_output;
    struct out *o = r->n ? &r->outs[r->n - 1] : NULL;
    if (!o || !o->name || strcmp(o->name, name)) {
        o = run_push(r);
        o->name = xstrdup(name);
        o->weight = OUT_OVERHEAD;
        r->weight += OUT_OVERHEAD;
    }
    r->weight -= o->weight;
    stream_append(&o->text, text, len);
    o->weight = OUT_OVERHEAD + o->text.len;
    r->weight += o->weight;
    if (r->weight <= cap)
        return;
    size_t keep = r->weight - o->weight; /* the other outputs */
    size_t room = keep + OUT_OVERHEAD < cap ? cap - keep - OUT_OVERHEAD : 0;
    size_t cut = room < o->text.len ? room : o->text.len;
    while (cut > 0 && cut < o->text.len && ((unsigned char)o->text.data[cut] & 0xc0) == 0x80)
        cut--;
    for (size_t i = cut; i > 0; i--)
        if (o->text.data[i - 1] == '\n') {
            cut = i; /* end on a whole line when there is one */
            break;
        }
    o->text.len = cut;
    if (o->text.data)
        o->text.data[cut] = '\0';
    r->weight = keep + OUT_OVERHEAD + cut;
    o->weight = OUT_OVERHEAD + cut;
    run_truncate(doc, r);
}

static void add_json(struct nbdoc *doc, struct run *r, json_t *j, const char *display_id)
{
    size_t w = OUT_OVERHEAD + json_weight(j);
    if (r->weight + w > doc->o.max_cell_output) {
        json_decref(j);
        run_truncate(doc, r);
        return;
    }
    struct out *o = run_push(r);
    o->j = j;
    o->weight = w;
    r->weight += w;
    if (display_id) {
        o->display_id = xstrdup(display_id);
        doc->ndisplay++;
    }
}

static json_t *obj_or_empty(json_t *content, const char *key)
{
    json_t *v = json_object_get(content, key);
    return json_is_object(v) ? json_incref(v) : json_object();
}

static json_t *count_of(json_t *content)
{
    json_t *v = json_object_get(content, "execution_count");
    return json_is_integer(v) ? json_incref(v) : json_null();
}

static void set_count(struct run *r, json_t *count)
{
    json_decref(r->count);
    r->count = count;
    r->gen++;
}

static const char *display_id_of(json_t *content)
{
    return json_string_value(json_object_get(json_object_get(content, "transient"), "display_id"));
}

/* update_display_data: every output shown with that display_id, in any cell, is replaced. */
static void update_display(struct nbdoc *doc, json_t *content)
{
    const char *id = display_id_of(content);
    if (!id)
        return;
    for (size_t i = 0; i < doc->nruns; i++) {
        struct run *r = doc->runs[i];
        for (size_t k = 0; k < r->n; k++) {
            struct out *o = &r->outs[k];
            if (!o->display_id || strcmp(o->display_id, id))
                continue;
            json_t *j = json_pack("{s:s, s:o, s:o}", "output_type", "display_data", "data",
                                  obj_or_empty(content, "data"), "metadata",
                                  obj_or_empty(content, "metadata"));
            size_t w = OUT_OVERHEAD + json_weight(j);
            if (r->weight - o->weight + w > doc->o.max_cell_output) {
                json_decref(j);
                continue;
            }
            r->weight = r->weight - o->weight + w;
            json_decref(o->j);
            o->j = j;
            o->weight = w;
            r->gen++;
        }
    }
}

static bool is_output_type(const char *t)
{
    return !strcmp(t, "stream") || !strcmp(t, "display_data") || !strcmp(t, "execute_result") ||
           !strcmp(t, "error");
}

/* ---- public: recording ------------------------------------------------------------------ */

int nbdoc_open(const char *drive_root, const char *path, const struct nbdoc_opts *opts,
               struct nbdoc **out)
{
    char *norm = NULL;
    const char *name;
    int dirfd = -1, fd = -1;
    int r = path_check(path, &norm);
    if (r < 0)
        goto out;
    r = open_dir_of(drive_root, norm, &dirfd, &name);
    if (r < 0)
        goto out;
    struct stat st = {0};
    fd = open_file(dirfd, name, &st);
    if (fd < 0) {
        r = fd;
        goto out;
    }
    struct nbdoc *doc = xcalloc(1, sizeof *doc);
    pthread_mutex_init(&doc->lock, NULL);
    pthread_mutex_init(&doc->save_lock, NULL);
    if (opts)
        doc->o = *opts;
    if (!doc->o.max_cell_output)
        doc->o.max_cell_output = DEFAULT_MAX_CELL_OUTPUT;
    if (doc->o.max_cell_output > MAX_CELL_OUTPUT_LIMIT)
        doc->o.max_cell_output = MAX_CELL_OUTPUT_LIMIT; /* stream offsets stay 32-bit */
    if (!doc->o.max_file)
        doc->o.max_file = DEFAULT_MAX_FILE;
    if (!doc->o.max_runs)
        doc->o.max_runs = DEFAULT_MAX_RUNS;
    doc->root = xstrdup(drive_root);
    doc->path = norm;
    norm = NULL; /* owned by the document now */
    *out = doc;
out:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    free(norm);
    return r;
}

int nbdoc_set_path(struct nbdoc *doc, const char *path)
{
    char *norm;
    int r = path_check(path, &norm);
    if (r < 0)
        return r;
    pthread_mutex_lock(&doc->save_lock);
    free(doc->path);
    doc->path = norm;
    json_decref(doc->nb);
    doc->nb = NULL;
    doc->have_ident = false;
    pthread_mutex_unlock(&doc->save_lock);
    return 0;
}

int nbdoc_request(struct nbdoc *doc, const char *msg_id, const char *code, const char *cell_id)
{
    int r = 0;
    pthread_mutex_lock(&doc->lock);
    if (doc->nruns >= doc->o.max_runs) {
        /* Forget the oldest run whose outputs the file has (finished ones first), else the
         * oldest request the kernel never started (it may have restarted meanwhile). */
        size_t victim = SIZE_MAX;
        for (int pass = 0; pass < 3 && victim == SIZE_MAX; pass++)
            for (size_t i = 0; i < doc->nruns && victim == SIZE_MAX; i++) {
                struct run *o = doc->runs[i];
                if (pass == 0   ? o->done && o->started && run_clean(o)
                    : pass == 1 ? o->started && run_clean(o)
                                : !o->started)
                    victim = i;
            }
        if (victim == SIZE_MAX) {
            r = -ENOSPC;
            goto out;
        }
        run_remove(doc, victim);
    }
    struct run *run = xcalloc(1, sizeof *run);
    run->msg_id = xstrdup(msg_id);
    run->code = code ? xstrdup(code) : NULL;
    run->cell_id = cell_id && cell_id[0] ? xstrdup(cell_id) : NULL;
    run->count = json_null();
    doc->runs = xrealloc(doc->runs, (doc->nruns + 1) * sizeof *doc->runs);
    doc->runs[doc->nruns++] = run;
out:
    pthread_mutex_unlock(&doc->lock);
    return r;
}

int nbdoc_request_msg(struct nbdoc *doc, const char *msg_id, const char *content,
                      size_t content_len, const char *metadata, size_t metadata_len)
{
    json_t *c = content ? json_loadb(content, content_len, 0, NULL) : NULL;
    json_t *m = metadata ? json_loadb(metadata, metadata_len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(c, "code"));
    int r = -EINVAL;
    if (!json_is_object(c) || !code)
        goto out;
    r = 0;
    if (json_is_true(json_object_get(c, "silent")))
        goto out;
    r = nbdoc_request(doc, msg_id, code, json_string_value(json_object_get(m, "cellId")));
out:
    json_decref(c);
    json_decref(m);
    return r;
}

int nbdoc_resume(struct nbdoc *doc, const char *msg_id, const char *code, const char *cell_id)
{
    int r = nbdoc_request(doc, msg_id, code, cell_id);
    if (r < 0)
        return r;
    pthread_mutex_lock(&doc->lock);
    struct run *run = run_find(doc, msg_id);
    run_start(doc, run);
    run->keep_file = true;
    run->adopted = true;
    pthread_mutex_unlock(&doc->lock);
    return 0;
}

void nbdoc_mark_adopted(struct nbdoc *doc, const char *msg_id)
{
    pthread_mutex_lock(&doc->lock);
    struct run *run = run_find(doc, msg_id);
    if (run)
        run->adopted = true;
    pthread_mutex_unlock(&doc->lock);
}

void nbdoc_gap(struct nbdoc *doc, const char *msg_id, const char *note)
{
    pthread_mutex_lock(&doc->lock);
    struct run *run = run_find(doc, msg_id);
    if (run && !run->truncated) {
        run_before_output(doc, run);
        struct out *o = run_push(run);
        o->name = xstrdup("stderr");
        buf_printf(&o->text, "%s\n", note);
        o->weight = OUT_OVERHEAD + o->text.len;
        run->weight += o->weight;
    }
    pthread_mutex_unlock(&doc->lock);
}

bool nbdoc_tracks(struct nbdoc *doc, const char *msg_id)
{
    pthread_mutex_lock(&doc->lock);
    bool t = run_find(doc, msg_id) != NULL;
    pthread_mutex_unlock(&doc->lock);
    return t;
}

size_t nbdoc_take_recorded(struct nbdoc *doc, void (*cb)(void *ctx, const char *msg_id), void *ctx)
{
    size_t n = 0;
    pthread_mutex_lock(&doc->lock);
    for (size_t i = 0; i < doc->nruns; i++) {
        struct run *r = doc->runs[i];
        if (r->done && !r->reported && run_clean(r)) {
            r->reported = true;
            cb(ctx, r->msg_id);
            n++;
        }
    }
    pthread_mutex_unlock(&doc->lock);
    return n;
}

int nbdoc_message(struct nbdoc *doc, const char *msg_type, const char *parent_msg_id,
                  const char *content, size_t content_len)
{
    int r = 0;
    json_t *c = NULL;
    pthread_mutex_lock(&doc->lock);
    bool update = !strcmp(msg_type, "update_display_data");
    struct run *run = parent_msg_id ? run_find(doc, parent_msg_id) : NULL;
    if (update ? !doc->ndisplay : !run)
        goto out;
    bool output = is_output_type(msg_type);
    if (output && content_len > doc->o.max_cell_output) {
        /* Too large to keep: not even parsed. */
        run_before_output(doc, run);
        if (!run->truncated)
            run_truncate(doc, run);
        goto out;
    }
    c = json_loadb(content, content_len, 0, NULL);
    if (!json_is_object(c)) {
        r = -EINVAL;
        goto out;
    }
    if (update) {
        update_display(doc, c);
    } else if (!strcmp(msg_type, "status")) {
        const char *st = json_string_value(json_object_get(c, "execution_state"));
        if (st && !strcmp(st, "idle") && !run->done) {
            run->done = true;
            r = 1;
        }
    } else if (!strcmp(msg_type, "execute_input")) {
        run_start(doc, run);
        set_count(run, count_of(c));
    } else if (!strcmp(msg_type, "execute_reply")) {
        const char *st = json_string_value(json_object_get(c, "status"));
        if (st && strcmp(st, "aborted") && (!run->started || json_is_null(run->count))) {
            run_start(doc, run);
            set_count(run, count_of(c));
        }
    } else if (!strcmp(msg_type, "clear_output")) {
        run_start(doc, run);
        if (json_is_true(json_object_get(c, "wait"))) {
            run->clear_next = true;
        } else {
            run_clear(doc, run);
            run->clear_next = false;
            run->keep_file = false;
            run->gen++;
        }
    } else if (output) {
        run_before_output(doc, run);
        if (run->truncated)
            goto out;
        if (!strcmp(msg_type, "stream")) {
            json_t *t = json_object_get(c, "text");
            const char *name = json_string_value(json_object_get(c, "name"));
            if (json_is_string(t) && name)
                add_stream(doc, run, name, json_string_value(t), json_string_length(t));
        } else if (!strcmp(msg_type, "error")) {
            json_t *tb = json_object_get(c, "traceback");
            json_t *ename = json_object_get(c, "ename"), *evalue = json_object_get(c, "evalue");
            add_json(doc, run,
                     json_pack("{s:s, s:o, s:o, s:o}", "output_type", "error", "ename",
                               json_is_string(ename) ? json_incref(ename) : json_string(""),
                               "evalue",
                               json_is_string(evalue) ? json_incref(evalue) : json_string(""),
                               "traceback", json_is_array(tb) ? json_incref(tb) : json_array()),
                     NULL);
        } else {
            bool result = !strcmp(msg_type, "execute_result");
            json_t *j = json_pack("{s:s, s:o, s:o}", "output_type", msg_type, "data",
                                  obj_or_empty(c, "data"), "metadata", obj_or_empty(c, "metadata"));
            if (result) {
                json_object_set_new(j, "execution_count", count_of(c));
                if (json_is_null(run->count))
                    set_count(run, count_of(c));
            }
            add_json(doc, run, j, result ? NULL : display_id_of(c));
        }
    }
out:
    pthread_mutex_unlock(&doc->lock);
    json_decref(c);
    return r;
}

static json_t *out_to_disk(const struct out *o);

json_t *nbdoc_in_flight(struct nbdoc *doc)
{
    json_t *a = json_array();
    pthread_mutex_lock(&doc->lock);
    /* The run started last; the kernel runs requests in order, so the ones it has yet to
     * start come after it (all of them when none has started). */
    size_t last = SIZE_MAX;
    for (size_t i = 0; i < doc->nruns; i++)
        if (doc->runs[i]->started && (last == SIZE_MAX || doc->runs[i]->seq > doc->runs[last]->seq))
            last = i;
    for (size_t i = last == SIZE_MAX ? 0 : last; i < doc->nruns; i++) {
        struct run *r = doc->runs[i];
        bool running = i == last;
        if (running ? r->done : r->started || r->done)
            continue;
        json_t *outs = json_array();
        for (size_t k = 0; k < r->n; k++)
            json_array_append_new(outs, out_to_disk(&r->outs[k]));
        json_t *run =
            json_pack("{s:s, s:s?, s:s?, s:s, s:O, s:o}", "msg_id", r->msg_id, "cell_id",
                      r->cell_id, "code", r->code, "state", running ? "running" : "queued",
                      "execution_count", r->count, "outputs", outs);
        if (running)
            json_object_set_new(run, "started", json_integer((json_int_t)r->started_ms));
        if (r->adopted)
            json_object_set_new(run, "adopted", json_true());
        json_array_append_new(a, run);
    }
    pthread_mutex_unlock(&doc->lock);
    return a;
}

bool nbdoc_dirty(struct nbdoc *doc)
{
    bool dirty = false;
    pthread_mutex_lock(&doc->lock);
    for (size_t i = 0; i < doc->nruns && !dirty; i++)
        dirty = !run_clean(doc->runs[i]);
    pthread_mutex_unlock(&doc->lock);
    return dirty;
}

void nbdoc_close(struct nbdoc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->nruns; i++)
        run_free(doc, doc->runs[i]);
    free(doc->runs);
    free(doc->root);
    free(doc->path);
    json_decref(doc->nb);
    pthread_mutex_destroy(&doc->lock);
    pthread_mutex_destroy(&doc->save_lock);
    free(doc);
}

/* ---- saving ----------------------------------------------------------------------------- */

static bool is_json_mime(const char *k)
{
    return !strcmp(k, "application/json") ||
           (str_starts_with(k, "application/") && str_ends_with(k, "+json"));
}

/* An output in nbformat's on-disk form (new reference). */
static json_t *out_to_disk(const struct out *o)
{
    if (o->name)
        return json_pack("{s:s, s:s, s:o}", "output_type", "stream", "name", o->name, "text",
                         nb_split_lines(o->text.data ? o->text.data : "", o->text.len));
    json_t *j = json_deep_copy(o->j);
    json_t *data = json_object_get(j, "data");
    const char *k;
    json_t *v;
    json_object_foreach(data, k, v)
    {
        if (json_is_string(v) && !is_json_mime(k) &&
            (str_starts_with(k, "text/") || !strcmp(k, "application/javascript") ||
             !strcmp(k, "image/svg+xml")))
            json_object_set_new(data, k,
                                nb_split_lines(json_string_value(v), json_string_length(v)));
    }
    return j;
}

static size_t snaps_take(struct nbdoc *doc, struct snap **out)
{
    pthread_mutex_lock(&doc->lock);
    struct snap *s = xcalloc(doc->nruns + 1, sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < doc->nruns; i++) {
        struct run *r = doc->runs[i];
        if (run_clean(r))
            continue;
        struct snap *p = &s[n++];
        p->msg_id = xstrdup(r->msg_id);
        p->cell_id = r->cell_id ? xstrdup(r->cell_id) : NULL;
        p->code = r->code ? xstrdup(r->code) : NULL;
        p->outputs = json_array();
        for (size_t k = 0; k < r->n; k++)
            json_array_append_new(p->outputs, out_to_disk(&r->outs[k]));
        p->count = json_incref(r->count);
        p->keep_file = r->keep_file;
        p->base = json_incref(r->base);
        p->seq = r->seq;
        p->gen = r->gen;
    }
    pthread_mutex_unlock(&doc->lock);
    /* Later runs win where two land in the same cell. */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && s[k - 1].seq > s[k].seq; k--) {
            struct snap t = s[k];
            s[k] = s[k - 1];
            s[k - 1] = t;
        }
    *out = s;
    return n;
}

/* The file now has the snapshots that were applied. */
static void snaps_done(struct nbdoc *doc, struct snap *s, size_t n)
{
    pthread_mutex_lock(&doc->lock);
    for (size_t i = 0; i < n; i++) {
        if (!s[i].applied)
            continue;
        struct run *r = run_find(doc, s[i].msg_id);
        if (!r)
            continue;
        if (r->saved_gen < s[i].gen)
            r->saved_gen = s[i].gen;
        if (s[i].resolved_id && !r->cell_id)
            r->cell_id = xstrdup(s[i].resolved_id);
        if (r->keep_file && !r->base && s[i].base)
            r->base = json_incref(s[i].base);
        if (r->keep_file && json_is_null(r->count) && !json_is_null(s[i].count)) {
            json_decref(r->count); /* the file's count: nothing new to save */
            r->count = json_incref(s[i].count);
        }
    }
    pthread_mutex_unlock(&doc->lock);
}

static void snaps_free(struct snap *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].msg_id);
        free(s[i].cell_id);
        free(s[i].code);
        free(s[i].resolved_id);
        json_decref(s[i].outputs);
        json_decref(s[i].count);
        json_decref(s[i].base);
    }
    free(s);
}

/* A cell's source as one string, as nbformat joins it. Caller frees. */
static char *cell_source(json_t *cell)
{
    json_t *src = json_object_get(cell, "source");
    if (json_is_string(src))
        return xstrndup(json_string_value(src), json_string_length(src));
    struct buf b = {0};
    size_t i;
    json_t *line;
    json_array_foreach(src, i, line)
    {
        if (json_is_string(line))
            buf_append(&b, json_string_value(line), json_string_length(line));
    }
    buf_append(&b, "", 0);
    return buf_steal(&b, NULL);
}

static bool is_code_cell(json_t *cell)
{
    const char *t = json_string_value(json_object_get(cell, "cell_type"));
    return t && !strcmp(t, "code");
}

/* The cell a run belongs to: by id; by source when the run has no id, or when the
 * notebook has no ids at all (nbformat before 4.5). */
static json_t *find_cell(json_t *cells, const struct snap *s)
{
    size_t i;
    json_t *cell;
    bool any_id = false;
    if (s->cell_id) {
        json_array_foreach(cells, i, cell)
        {
            const char *id = json_string_value(json_object_get(cell, "id"));
            any_id |= id != NULL;
            if (id && !strcmp(id, s->cell_id))
                return cell;
        }
        if (any_id)
            return NULL; /* not saved by the browser yet, or deleted */
    }
    if (!s->code)
        return NULL;
    json_array_foreach(cells, i, cell)
    {
        if (!is_code_cell(cell))
            continue;
        char *src = cell_source(cell);
        bool eq = !strcmp(src, s->code);
        free(src);
        if (eq)
            return cell;
    }
    return NULL;
}

/* Puts the snapshots' outputs into their cells; returns how many found their cell. */
static size_t apply(json_t *nb, struct snap *s, size_t n)
{
    size_t applied = 0;
    json_t *cells = json_object_get(nb, "cells");
    for (size_t i = 0; i < n; i++) {
        json_t *cell = find_cell(cells, &s[i]);
        if (!cell || !is_code_cell(cell))
            continue;
        if (s[i].keep_file) {
            /* What the file had before the run resumed, the note, then what came since. */
            if (!s[i].base) {
                json_t *had = json_object_get(cell, "outputs");
                s[i].base = json_is_array(had) ? json_deep_copy(had) : json_array();
                if (json_is_null(s[i].count)) {
                    json_decref(s[i].count);
                    s[i].count = json_incref(json_object_get(cell, "execution_count"));
                    if (!s[i].count)
                        s[i].count = json_null();
                }
            }
            json_t *all = json_deep_copy(s[i].base);
            json_array_extend(all, s[i].outputs);
            json_object_set_new(cell, "outputs", all);
        } else {
            json_object_set(cell, "outputs", s[i].outputs);
        }
        json_object_set(cell, "execution_count", s[i].count);
        const char *id = json_string_value(json_object_get(cell, "id"));
        if (!s[i].cell_id && id && !s[i].resolved_id)
            s[i].resolved_id = xstrdup(id);
        s[i].applied = true;
        applied++;
    }
    return applied;
}

static int read_all(int fd, size_t max, char **out, size_t *len)
{
    struct buf b = {.cap_max = max};
    for (;;) {
        char *p = buf_reserve(&b, 1 << 16);
        if (!p) {
            buf_free(&b);
            return -EFBIG;
        }
        ssize_t n = read(fd, p, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            buf_free(&b);
            return -e;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    buf_append(&b, "", 0);
    *out = buf_steal(&b, len);
    return 0;
}

/* Makes doc->nb the notebook in the file, reading it again only when it changed. */
static int load(struct nbdoc *doc, int dirfd, const char *name)
{
    struct stat st = {0};
    int fd = open_file(dirfd, name, &st);
    if (fd < 0)
        return fd;
    int r = 0;
    char *data = NULL;
    size_t len = 0;
    struct ident id = ident_of(&st);
    if (doc->nb && doc->have_ident && ident_eq(&id, &doc->ident))
        goto out;
    json_decref(doc->nb);
    doc->nb = NULL;
    doc->have_ident = false;
    if ((size_t)st.st_size > doc->o.max_file) {
        r = -EFBIG;
        goto out;
    }
    r = read_all(fd, doc->o.max_file, &data, &len);
    if (r < 0)
        goto out;
    json_t *nb = json_loadb(data, len, 0, NULL);
    json_t *v = json_object_get(nb, "nbformat");
    if (!json_is_object(nb) || !json_is_integer(v) || json_integer_value(v) != 4 ||
        !json_is_array(json_object_get(nb, "cells"))) {
        json_decref(nb);
        r = -EINVAL;
        goto out;
    }
    doc->nb = nb;
    doc->ident = id;
    doc->have_ident = true;
    crypto_generichash(doc->hash, sizeof doc->hash, (const unsigned char *)data, len, NULL, 0);
out:
    free(data);
    close(fd);
    return r;
}

/* Replaces dirfd/name with data atomically, unless the file is no longer the one read
 * (-EAGAIN). The file's mode is kept. */
static int replace_file(struct nbdoc *doc, int dirfd, const char *name, const char *data,
                        size_t len)
{
    unsigned char rnd[8];
    char hex[17], tmp[64];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, ".~labbook-nbdoc-%s.tmp", hex);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct stat old, mine, now;
    int r = 0;
    if (fstatat(dirfd, name, &old, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
        goto out;
    }
    fchmod(fd, old.st_mode & 07777);
    r = write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && fstat(fd, &mine) < 0)
        r = -errno;
    if (r < 0)
        goto out;
    NBDOC_BEFORE_RENAME(dirfd, name);
    /* Last look before replacing, after the slow write and fsync: did someone else save
     * meanwhile? A save acknowledged to its client must never be rolled back. */
    if (fstatat(dirfd, name, &old, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
        goto out;
    }
    struct ident cur = ident_of(&old);
    if (!ident_eq(&cur, &doc->ident)) {
        r = -EAGAIN;
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        r = -errno;
        goto out;
    }
    int dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    doc->have_ident = fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                      now.st_ino == mine.st_ino && now.st_dev == mine.st_dev;
    if (doc->have_ident)
        doc->ident = ident_of(&now);
    crypto_generichash(doc->hash, sizeof doc->hash, (const unsigned char *)data, len, NULL, 0);
out:
    close(fd);
    if (r < 0)
        unlinkat(dirfd, tmp, 0);
    return r;
}

int nbdoc_save(struct nbdoc *doc)
{
    struct snap *s = NULL;
    int dirfd = -1, r = 0;
    size_t written = 0;
    pthread_mutex_lock(&doc->save_lock);
    size_t n = snaps_take(doc, &s);
    if (!n)
        goto out;
    const char *name;
    r = open_dir_of(doc->root, doc->path, &dirfd, &name);
    if (r < 0)
        goto out;
    for (int tries = 0;; tries++) {
        if (tries == SAVE_TRIES) {
            r = -EBUSY;
            goto out;
        }
        r = load(doc, dirfd, name);
        if (r < 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            s[i].applied = false;
        if (!apply(doc->nb, s, n))
            goto out; /* no cell of theirs is in the file (yet): leave it untouched */
        char *text = json_dumps(doc->nb, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        size_t len = strlen(text);
        text = xrealloc(text, len + 2);
        text[len++] = '\n';
        text[len] = '\0';
        unsigned char h[crypto_generichash_BYTES];
        crypto_generichash(h, sizeof h, (const unsigned char *)text, len, NULL, 0);
        r = memcmp(h, doc->hash, sizeof h) ? replace_file(doc, dirfd, name, text, len) : 0;
        free(text);
        written = len;
        if (r == 0)
            break;
        /* Our copy no longer matches the file (or the write failed): read it again. */
        json_decref(doc->nb);
        doc->nb = NULL;
        doc->have_ident = false;
        if (r != -EAGAIN)
            goto out;
    }
    snaps_done(doc, s, n);
out:
    if (dirfd >= 0)
        close(dirfd);
    snaps_free(s, n);
    if (written > KEEP_TREE_MAX) {
        json_decref(doc->nb);
        doc->nb = NULL;
        malloc_trim(0);
    }
    pthread_mutex_unlock(&doc->save_lock);
    return r;
}
