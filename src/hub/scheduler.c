/* Whole-GPU allotment and the fair queue (see scheduler.h). Requests live in one list in
 * arrival order, granted and queued alike; the queue is served strictly in its fair order,
 * so a big request at the head is never overtaken and a position is a promise. */
#include "hub/scheduler.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct user {
    struct user *next;
    int64_t id;
    uint64_t served;  /* clock of this user's last grant; 0: none while known */
    unsigned held;    /* entries, granted and queued */
    unsigned queued;  /* entries waiting */
    uint64_t head;    /* scratch for scheduler_position: arrival of its oldest queued */
    unsigned counted; /* scratch for scheduler_position */
};

struct entry {
    struct entry *next;
    char id[SCHED_ID_MAX];
    char *profile;
    struct user *user;
    unsigned ngpus;
    bool granted;
    uint64_t gpus; /* bit i: holds GPU i */
    uint64_t arrival;
};

struct scheduler {
    unsigned ngpus;
    uint64_t busy; /* bit i: GPU i is held */
    struct entry *entries;
    size_t nentries, nqueued;
    struct user *users;
    uint64_t clock;    /* stamps users' grants */
    uint64_t arrivals; /* stamps requests */
};

struct scheduler *scheduler_new(unsigned ngpus)
{
    struct scheduler *s = xcalloc(1, sizeof(*s));

    s->ngpus = ngpus > SCHED_MAX_GPUS ? SCHED_MAX_GPUS : ngpus;
    return s;
}

void scheduler_free(struct scheduler *s)
{
    if (!s)
        return;
    for (struct entry *e = s->entries, *next; e; e = next) {
        next = e->next;
        free(e->profile);
        free(e);
    }
    for (struct user *u = s->users, *next; u; u = next) {
        next = u->next;
        free(u);
    }
    free(s);
}

static struct entry *find(const struct scheduler *s, const char *id)
{
    for (struct entry *e = s->entries; e; e = e->next)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static struct user *user_get(struct scheduler *s, int64_t id)
{
    struct user *u;

    for (u = s->users; u; u = u->next)
        if (u->id == id)
            return u;
    u = xcalloc(1, sizeof(*u));
    u->id = id;
    u->next = s->users;
    s->users = u;
    return u;
}

/* Forgets a user who holds and waits for nothing: coming back, they count as new. */
static void user_put(struct scheduler *s, struct user *u)
{
    if (u->held)
        return;
    for (struct user **pp = &s->users; *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            free(u);
            return;
        }
    }
}

static unsigned popcount64(uint64_t x)
{
    return (unsigned)__builtin_popcountll(x);
}

static uint64_t all_gpus(const struct scheduler *s)
{
    return s->ngpus == 64 ? ~(uint64_t)0 : (((uint64_t)1 << s->ngpus) - 1);
}

/* Gives e the lowest-numbered free GPUs; the caller checked there are enough. */
static void grant(struct scheduler *s, struct entry *e)
{
    uint64_t avail = all_gpus(s) & ~s->busy;

    for (unsigned k = 0; k < e->ngpus; k++) {
        uint64_t bit = avail & -avail;
        e->gpus |= bit;
        avail &= ~bit;
    }
    s->busy |= e->gpus;
    e->granted = true;
    e->user->queued--;
    /* only GPU grants take a turn: a CPU runtime must not move its user down the queue */
    if (e->ngpus > 0)
        e->user->served = ++s->clock;
    s->nqueued--;
}

static void fill_gpus(const struct entry *e, unsigned *gpus)
{
    unsigned k = 0;

    for (unsigned i = 0; i < SCHED_MAX_GPUS; i++)
        if (e->gpus & ((uint64_t)1 << i))
            gpus[k++] = i;
}

/* The queued request the fair order serves next: the oldest request of the user served
 * least recently (never-served users first, by the age of their oldest request). */
static struct entry *next_queued(const struct scheduler *s)
{
    struct entry *best = NULL;

    for (struct entry *e = s->entries; e; e = e->next) {
        if (e->granted)
            continue;
        if (!best || e->user->served < best->user->served ||
            (e->user->served == best->user->served && e->arrival < best->arrival))
            best = e;
    }
    return best;
}

/* Serves the queue in order while its head fits; appends each grant to *grants. */
static void dispatch(struct scheduler *s, struct sched_grant **grants, size_t *n)
{
    struct entry *e;

    while ((e = next_queued(s)) && e->ngpus <= s->ngpus - popcount64(s->busy)) {
        grant(s, e);
        if (grants) {
            struct sched_grant *g;
            *grants = xrealloc(*grants, (*n + 1) * sizeof(**grants));
            g = &(*grants)[(*n)++];
            memset(g, 0, sizeof(*g));
            memcpy(g->request_id, e->id, sizeof(g->request_id));
            g->user_id = e->user->id;
            g->ngpus = e->ngpus;
            fill_gpus(e, g->gpus);
        }
    }
}

static bool same_profile(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Checks an ask against everything but GPU availability; adds it to the queue. */
static int enqueue(struct scheduler *s, const struct sched_ask *ask, struct entry **out, char **err)
{
    struct entry *e, **tail;
    struct user *u = NULL;
    unsigned mine = 0, mine_queued = 0;
    size_t idlen = ask->request_id ? strlen(ask->request_id) : 0;

    *err = NULL;
    if (idlen == 0 || idlen >= SCHED_ID_MAX) {
        *err = xstrdup("invalid runtime request id");
        return -EINVAL;
    }
    if (ask->ngpus > s->ngpus) {
        if (s->ngpus == 0)
            *err = xasprintf("this profile needs %u GPU%s; this server has none", ask->ngpus,
                             ask->ngpus == 1 ? "" : "s");
        else
            *err = xasprintf("this profile needs %u GPU%s; this server has %u", ask->ngpus,
                             ask->ngpus == 1 ? "" : "s", s->ngpus);
        return -E2BIG;
    }
    if (find(s, ask->request_id)) {
        *err = xasprintf("runtime request \"%s\" exists already", ask->request_id);
        return -EEXIST;
    }
    for (e = s->entries; e; e = e->next) {
        if (e->user->id != ask->user_id)
            continue;
        if (!e->granted)
            mine_queued++;
        if (same_profile(e->profile, ask->profile))
            mine++;
    }
    if (ask->max_per_user && mine >= ask->max_per_user) {
        *err = xasprintf("you already have %u runtime%s of this profile (running or waiting); "
                         "the limit is %u: shut one down first",
                         mine, mine == 1 ? "" : "s", ask->max_per_user);
        return -EDQUOT;
    }
    if (s->nentries >= SCHED_MAX_REQUESTS ||
        (ask->ngpus > 0 && mine_queued >= SCHED_MAX_QUEUED_PER_USER)) {
        *err = xstrdup("too many runtimes are waiting for GPUs; try again later");
        return -EAGAIN;
    }
    u = user_get(s, ask->user_id);
    e = xcalloc(1, sizeof(*e));
    memcpy(e->id, ask->request_id, idlen + 1);
    e->profile = ask->profile ? xstrdup(ask->profile) : NULL;
    e->user = u;
    e->ngpus = ask->ngpus;
    e->arrival = ++s->arrivals;
    for (tail = &s->entries; *tail; tail = &(*tail)->next)
        ;
    *tail = e;
    s->nentries++;
    s->nqueued++;
    u->held++;
    u->queued++;
    *out = e;
    return 0;
}

int scheduler_request(struct scheduler *s, const struct sched_ask *ask, unsigned *gpus, char **err)
{
    struct entry *e;
    int rc = enqueue(s, ask, &e, err);

    if (rc < 0)
        return rc;
    if (e->ngpus == 0) {
        /* a CPU runtime takes no GPU and waits for nobody */
        grant(s, e);
        return 0;
    }
    /* Before this ask, the queue's head did not fit (or the queue was empty), so the only
     * request dispatch can grant now is this one, if the fair order puts it first. */
    dispatch(s, NULL, NULL);
    if (!e->granted)
        return SCHED_QUEUED;
    fill_gpus(e, gpus);
    return 0;
}

static void entry_remove(struct scheduler *s, struct entry *victim)
{
    for (struct entry **pp = &s->entries; *pp; pp = &(*pp)->next) {
        if (*pp != victim)
            continue;
        *pp = victim->next;
        break;
    }
    s->nentries--;
    if (victim->granted)
        s->busy &= ~victim->gpus;
    else {
        s->nqueued--;
        victim->user->queued--;
    }
    victim->user->held--;
    user_put(s, victim->user);
    free(victim->profile);
    free(victim);
}

int scheduler_release(struct scheduler *s, const char *request_id, struct sched_grant **grants,
                      size_t *n)
{
    struct entry *e = find(s, request_id);

    *grants = NULL;
    *n = 0;
    if (!e)
        return -ENOENT;
    entry_remove(s, e);
    dispatch(s, grants, n);
    return 0;
}

int scheduler_cancel(struct scheduler *s, const char *request_id, struct sched_grant **grants,
                     size_t *n)
{
    return scheduler_release(s, request_id, grants, n);
}

int scheduler_adopt(struct scheduler *s, const struct sched_ask *ask, const unsigned *gpus)
{
    uint64_t mask = 0;
    struct sched_ask unlimited = *ask;
    struct entry *e;
    char *err = NULL;
    int rc;

    for (unsigned i = 0; i < ask->ngpus; i++) {
        if (gpus[i] >= s->ngpus)
            return -ENODEV;
        if ((mask | s->busy) & ((uint64_t)1 << gpus[i]))
            return -EBUSY;
        mask |= (uint64_t)1 << gpus[i];
    }
    unlimited.max_per_user = 0; /* it runs already: the cap is no reason to lose it */
    rc = enqueue(s, &unlimited, &e, &err);
    free(err);
    if (rc < 0)
        return rc;
    e->granted = true;
    e->gpus = mask;
    s->busy |= mask;
    s->nqueued--;
    e->user->queued--;
    /* no turn taken (served stays): taking one could reorder the queue without a dispatch */
    return 0;
}

int scheduler_position(const struct scheduler *s, const char *request_id)
{
    const struct entry *target = find(s, request_id);
    unsigned k = 0, pos = 0;
    const struct user *tu;

    if (!target)
        return -ENOENT;
    if (target->granted)
        return 0;
    tu = target->user;
    /* The fair order serves in rounds: each waiting user's oldest, users ranked by (last
     * served, oldest arrival); then each one's second oldest in the same ranking; and so on.
     * So the target, its user's k-th waiting request (from 0), comes after everyone's
     * first k and after the k-th of each user ranked before its user. */
    for (struct user *u = s->users; u; u = u->next) {
        u->head = 0;
        u->counted = 0;
    }
    for (const struct entry *e = s->entries; e; e = e->next) {
        if (e->granted)
            continue;
        if (e->user->counted == 0)
            e->user->head = e->arrival;
        e->user->counted++;
        if (e == target)
            k = e->user->counted - 1;
    }
    for (const struct user *u = s->users; u; u = u->next) {
        if (u->queued == 0)
            continue;
        pos += u->queued < k ? u->queued : k;
        if (u != tu && u->queued > k &&
            (u->served < tu->served || (u->served == tu->served && u->head < tu->head)))
            pos++;
    }
    return (int)pos + 1;
}

int scheduler_gpus(const struct scheduler *s, const char *request_id, unsigned *gpus)
{
    const struct entry *e = find(s, request_id);

    if (!e)
        return -ENOENT;
    if (!e->granted)
        return 0;
    fill_gpus(e, gpus);
    return (int)popcount64(e->gpus);
}

unsigned scheduler_free_gpus(const struct scheduler *s)
{
    return s->ngpus - popcount64(s->busy);
}

size_t scheduler_queued(const struct scheduler *s)
{
    return s->nqueued;
}
