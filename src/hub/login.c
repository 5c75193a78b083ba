/* Password sign-in off the event loop: failure counters per user name and per address
 * (fixed windows, capped tables), and argon2id checks on libuv's thread pool, at most
 * [server] login_hashes_at_once at a time, each against its own store connection (a
 * struct store is one SQLite connection, for one thread at a time). */
#include "hub/login.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/util.h"
#include "hub/hub.h"

/* ---- failure counters ---- */

#define LIMIT_ENTRIES 4096 /* per table: names and addresses are client-chosen */
#define KEY_MAX 72

struct limit_entry {
    char key[KEY_MAX]; /* "" for a free slot */
    int count;
    int64_t start; /* when its window began */
};

struct limit_table {
    struct limit_entry *e;
    int limit;
};

struct login_limiter {
    struct limit_table users, addrs;
    int window_s;
};

struct login_limiter *login_limiter_new(int per_user, int per_addr, int window_s)
{
    struct login_limiter *l = xcalloc(1, sizeof(*l));
    l->users.e = xcalloc(LIMIT_ENTRIES, sizeof(struct limit_entry));
    l->addrs.e = xcalloc(LIMIT_ENTRIES, sizeof(struct limit_entry));
    l->users.limit = per_user;
    l->addrs.limit = per_addr;
    l->window_s = window_s;
    return l;
}

void login_limiter_free(struct login_limiter *l)
{
    if (!l)
        return;
    free(l->users.e);
    free(l->addrs.e);
    free(l);
}

static void key_of(const char *s, char key[KEY_MAX])
{
    snprintf(key, KEY_MAX, "%s", s && *s ? s : "-");
}

/* The entry for key, or NULL; with create, a new one in a free, expired or else the
 * oldest slot. */
static struct limit_entry *table_find(struct limit_table *t, const char *s, int64_t now,
                                      int window_s, bool create)
{
    char key[KEY_MAX];
    key_of(s, key);
    struct limit_entry *spare = NULL;
    bool spare_live = false;
    for (size_t i = 0; i < LIMIT_ENTRIES; i++) {
        struct limit_entry *e = &t->e[i];
        if (e->key[0] && !strcmp(e->key, key))
            return e;
        if (!create)
            continue;
        bool live = e->key[0] && now - e->start < window_s;
        if (!spare || (spare_live && (!live || e->start < spare->start))) {
            spare = e;
            spare_live = live;
        }
    }
    if (!create)
        return NULL;
    memcpy(spare->key, key, KEY_MAX);
    spare->count = 0;
    spare->start = now;
    return spare;
}

/* Seconds until e allows another attempt, or 0. */
static int64_t wait_of(const struct limit_entry *e, int limit, int window_s, int64_t now)
{
    if (!e || now - e->start >= window_s || e->count < limit)
        return 0;
    return window_s - (now - e->start);
}

static void count(struct limit_entry *e, int window_s, int64_t now)
{
    if (now - e->start >= window_s) {
        e->start = now;
        e->count = 0;
    }
    e->count++;
}

int login_limiter_begin(struct login_limiter *l, const char *name, const char *addr, int64_t now)
{
    struct limit_entry *u = table_find(&l->users, name, now, l->window_s, false);
    struct limit_entry *a = table_find(&l->addrs, addr, now, l->window_s, false);
    int64_t wu = wait_of(u, l->users.limit, l->window_s, now);
    int64_t wa = wait_of(a, l->addrs.limit, l->window_s, now);
    int64_t w = wu > wa ? wu : wa;
    if (w > 0)
        return (int)w;
    count(u ? u : table_find(&l->users, name, now, l->window_s, true), l->window_s, now);
    count(a ? a : table_find(&l->addrs, addr, now, l->window_s, true), l->window_s, now);
    return 0;
}

void login_limiter_success(struct login_limiter *l, const char *name, const char *addr)
{
    if (!l) /* a check that returned after the hub tore its limits down */
        return;
    struct limit_entry *u = table_find(&l->users, name, 0, l->window_s, false);
    if (u)
        u->count = 0;
    struct limit_entry *a = table_find(&l->addrs, addr, 0, l->window_s, false);
    if (a && a->count > 0)
        a->count--;
}

/* ---- the check ---- */

static uint64_t hashes;
static char stand_in[crypto_pwhash_STRBYTES];
static pthread_once_t stand_in_once = PTHREAD_ONCE_INIT;

/* A hash of a random password made as store.c makes users' (argon2id, interactive
 * limits), so that checking against it costs what a real check costs. */
static void make_stand_in(void)
{
    unsigned char raw[32];
    char pw[65];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(pw, sizeof(pw), raw, sizeof(raw));
    if (crypto_pwhash_str_alg(stand_in, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13))
        abort(); /* out of memory */
    sodium_memzero(pw, sizeof(pw));
}

uint64_t login_hash_count(void)
{
    return __atomic_load_n(&hashes, __ATOMIC_RELAXED);
}

int login_verify(struct store *s, const char *name, const char *password, struct user *out)
{
    struct user u;
    int r = store_user_get(s, name, &u);
    if (r == 0 && u.has_password) {
        __atomic_add_fetch(&hashes, 1, __ATOMIC_RELAXED);
        r = store_password_check(s, name, password, out);
        return r == 0 ? 0 : r == -EIO ? -EIO : -EACCES;
    }
    /* Unknown, or no password: the same work and the same answer as a wrong one. */
    pthread_once(&stand_in_once, make_stand_in);
    __atomic_add_fetch(&hashes, 1, __ATOMIC_RELAXED);
    if (crypto_pwhash_str_verify(stand_in, password, strlen(password)) == 0)
        return -EACCES; /* a random password of 64 hex digits, guessed: still no */
    return r == -EIO ? -EIO : -EACCES;
}

/* ---- the pool ---- */

#define SLOTS_MAX 64
#define WAITING_MAX 64 /* checks queued beyond those running: -EBUSY past it */

struct job {
    uv_work_t work;
    struct job *next;
    char *name, *password;
    int slot;
    int r;
    struct user u;
    login_done_fn done;
    void *ctx;
};

static struct {
    uv_loop_t *loop;
    char *db_path;
    int max;
    int running, waiting;
    struct job *head, *tail;
    struct store *stores[SLOTS_MAX];
    bool busy[SLOTS_MAX];
    bool closing;
} pool;

static void stand_in_work(uv_work_t *w)
{
    (void)w;
    pthread_once(&stand_in_once, make_stand_in);
}

static void stand_in_done(uv_work_t *w, int status)
{
    (void)status;
    free(w);
}

void login_init(struct hub *h)
{
    /* Made now, on the pool, so that the first unknown name costs no more than the rest. */
    uv_work_t *w = xcalloc(1, sizeof(*w));
    if (uv_queue_work(h->loop, w, stand_in_work, stand_in_done) < 0)
        free(w);
    pool.loop = h->loop;
    free(pool.db_path);
    pool.db_path = xasprintf("%s/labbook.db", h->data_dir);
    pool.max = h->cfg.login_hashes < SLOTS_MAX ? h->cfg.login_hashes : SLOTS_MAX;
    if (pool.max < 1)
        pool.max = 1;
    pool.closing = false;
}

void login_shutdown(void)
{
    pool.closing = true;
    for (int i = 0; i < SLOTS_MAX; i++)
        if (!pool.busy[i] && pool.stores[i]) {
            store_close(pool.stores[i]);
            pool.stores[i] = NULL;
        }
}

static void job_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct store **s = &pool.stores[j->slot]; /* this slot is this job's alone */
    if (!*s) {
        char *err = NULL;
        if (store_open(pool.db_path, s, &err) < 0) {
            free(err);
            *s = NULL;
            j->r = -EIO;
            return;
        }
    }
    j->r = login_verify(*s, j->name, j->password, &j->u);
}

static void pump(void);

static void job_done(uv_work_t *w, int status)
{
    (void)status;
    struct job *j = w->data;
    pool.running--;
    pool.busy[j->slot] = false;
    if (pool.closing && pool.stores[j->slot]) {
        store_close(pool.stores[j->slot]);
        pool.stores[j->slot] = NULL;
    }
    j->done(j->ctx, j->r, j->r == 0 ? &j->u : NULL);
    sodium_memzero(j->password, strlen(j->password));
    free(j->password);
    free(j->name);
    free(j);
    pump();
}

static void pump(void)
{
    while (pool.head && pool.running < pool.max) {
        struct job *j = pool.head;
        pool.head = j->next;
        if (!pool.head)
            pool.tail = NULL;
        pool.waiting--;
        int slot = 0;
        while (pool.busy[slot])
            slot++;
        pool.busy[slot] = true;
        j->slot = slot;
        pool.running++;
        j->work.data = j;
        if (uv_queue_work(pool.loop, &j->work, job_work, job_done) < 0) {
            job_work(&j->work);
            job_done(&j->work, 0);
        }
    }
}

int login_check_start(struct hub *h, const char *name, const char *password, login_done_fn done,
                      void *ctx)
{
    (void)h;
    if (pool.waiting >= WAITING_MAX)
        return -EBUSY;
    struct job *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup(name);
    j->password = xstrdup(password);
    j->done = done;
    j->ctx = ctx;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.waiting++;
    pump();
    return 0;
}
