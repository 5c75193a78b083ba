/* Tests for the GPU scheduler (hub/scheduler.c) on a host with four fake GPUs: grants never
 * overlap over many random sequences, round robin fairness, queue positions, cancel,
 * impossible requests and the per-user cap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "hub/scheduler.h"

static int ask(struct scheduler *s, int64_t user, const char *id, unsigned ngpus, unsigned *gpus)
{
    struct sched_ask a = {.user_id = user, .request_id = id, .profile = "gpu", .ngpus = ngpus};
    char *err = NULL;
    int rc = scheduler_request(s, &a, gpus, &err);
    if (rc < 0)
        assert_non_null(err);
    else
        assert_null(err);
    free(err);
    return rc;
}

/* Releases id and returns the ids granted as a result, "a,b,c" (caller frees). */
static char *release(struct scheduler *s, const char *id)
{
    struct sched_grant *g = NULL;
    size_t n = 0;
    struct buf b = {0};

    assert_int_equal(scheduler_release(s, id, &g, &n), 0);
    buf_append(&b, "", 0);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? "," : "", g[i].request_id);
    free(g);
    return buf_steal(&b, NULL);
}

static void test_grants_at_once_lowest_free(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    unsigned g[SCHED_MAX_GPUS];

    assert_int_equal(ask(s, 1, "a", 2, g), 0);
    assert_int_equal(g[0], 0);
    assert_int_equal(g[1], 1);
    assert_int_equal(ask(s, 2, "b", 1, g), 0);
    assert_int_equal(g[0], 2);
    assert_int_equal(scheduler_free_gpus(s), 1);
    /* a CPU runtime takes nothing and never waits */
    assert_int_equal(ask(s, 3, "cpu", 0, NULL), 0);
    assert_int_equal(ask(s, 3, "c", 2, g), SCHED_QUEUED);
    assert_int_equal(scheduler_position(s, "c"), 1);
    assert_int_equal(scheduler_position(s, "a"), 0);
    assert_int_equal(scheduler_position(s, "nope"), -ENOENT);
    assert_int_equal(scheduler_gpus(s, "c", g), 0);
    assert_int_equal(scheduler_gpus(s, "a", g), 2);
    char *granted = release(s, "a");
    assert_string_equal(granted, "c");
    free(granted);
    assert_int_equal(scheduler_gpus(s, "c", g), 2);
    assert_int_equal(g[0], 0);
    assert_int_equal(g[1], 1);
    assert_int_equal(ask(s, 1, "c", 1, g), -EEXIST);
    assert_int_equal(ask(s, 1, "", 1, g), -EINVAL);
    scheduler_free(s);
}

static void test_round_robin_fairness(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    unsigned g[SCHED_MAX_GPUS];
    char id[16];

    /* user A asks for ten one-GPU runtimes: four run, six wait */
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        assert_int_equal(ask(s, 1, id, 1, g), i < 4 ? 0 : SCHED_QUEUED);
    }
    /* user B asks for one: it waits, but is next in turn */
    assert_int_equal(ask(s, 2, "b0", 1, g), SCHED_QUEUED);
    assert_int_equal(scheduler_position(s, "b0"), 1);
    assert_int_equal(scheduler_position(s, "a4"), 2);
    assert_int_equal(scheduler_position(s, "a9"), 7);
    assert_int_equal(scheduler_queued(s), 7);

    char *granted = release(s, "a0");
    assert_string_equal(granted, "b0"); /* before A's second */
    free(granted);
    granted = release(s, "a1");
    assert_string_equal(granted, "a4");
    free(granted);
    assert_int_equal(scheduler_position(s, "a5"), 1);
    scheduler_free(s);
}

static void test_round_robin_three_users(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(1);
    unsigned g[SCHED_MAX_GPUS];

    assert_int_equal(ask(s, 9, "hold", 1, g), 0);
    /* A, B, C each queue several; serving alternates A B C A B C ... */
    const char *order[] = {"a1", "a2", "a3", "b1", "b2", "c1"};
    int64_t users[] = {1, 1, 1, 2, 2, 3};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        assert_int_equal(ask(s, users[i], order[i], 1, g), SCHED_QUEUED);
    const char *want[] = {"a1", "b1", "c1", "a2", "b2", "a3"};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        assert_int_equal(scheduler_position(s, want[i]), (int)i + 1);
    const char *prev = "hold";
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        char *granted = release(s, prev);
        assert_string_equal(granted, want[i]);
        free(granted);
        prev = want[i];
    }
    char *granted = release(s, prev);
    assert_string_equal(granted, "");
    free(granted);
    assert_int_equal(scheduler_free_gpus(s), 1);
    scheduler_free(s);
}

static void test_big_head_not_overtaken(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    unsigned g[SCHED_MAX_GPUS];

    assert_int_equal(ask(s, 1, "a", 3, g), 0);
    assert_int_equal(ask(s, 2, "big", 4, g), SCHED_QUEUED);
    /* one GPU is free, but the head of the queue needs four: a later small request waits */
    assert_int_equal(ask(s, 3, "small", 1, g), SCHED_QUEUED);
    assert_int_equal(scheduler_position(s, "big"), 1);
    assert_int_equal(scheduler_position(s, "small"), 2);
    assert_int_equal(scheduler_free_gpus(s), 1);
    char *granted = release(s, "a");
    assert_string_equal(granted, "big");
    free(granted);
    granted = release(s, "big");
    assert_string_equal(granted, "small");
    free(granted);
    scheduler_free(s);
}

static void test_cancel(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    unsigned g[SCHED_MAX_GPUS];
    struct sched_grant *gr = NULL;
    size_t n = 0;

    assert_int_equal(ask(s, 1, "a", 3, g), 0);
    assert_int_equal(ask(s, 2, "big", 4, g), SCHED_QUEUED);
    assert_int_equal(ask(s, 3, "s1", 1, g), SCHED_QUEUED);
    assert_int_equal(ask(s, 3, "s2", 1, g), SCHED_QUEUED);
    assert_int_equal(scheduler_position(s, "s2"), 3);
    /* withdrawing the blocking head lets the next one into the free GPU */
    assert_int_equal(scheduler_cancel(s, "big", &gr, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(gr[0].request_id, "s1");
    assert_int_equal(gr[0].user_id, 3);
    assert_int_equal(gr[0].ngpus, 1);
    assert_int_equal(gr[0].gpus[0], 3);
    free(gr);
    assert_int_equal(scheduler_position(s, "big"), -ENOENT);
    assert_int_equal(scheduler_position(s, "s2"), 1);
    assert_int_equal(scheduler_cancel(s, "s2", &gr, &n), 0);
    assert_int_equal(n, 0);
    assert_null(gr);
    assert_int_equal(scheduler_queued(s), 0);
    assert_int_equal(scheduler_cancel(s, "s2", &gr, &n), -ENOENT);
    assert_int_equal(scheduler_release(s, "zzz", &gr, &n), -ENOENT);
    scheduler_free(s);
}

static void test_impossible(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(1);
    struct sched_ask a = {.user_id = 1, .request_id = "x", .profile = "gpu2", .ngpus = 2};
    unsigned g[SCHED_MAX_GPUS];
    char *err = NULL;

    assert_int_equal(scheduler_request(s, &a, g, &err), -E2BIG);
    assert_string_equal(err, "this profile needs 2 GPUs; this server has 1");
    free(err);
    assert_int_equal(scheduler_queued(s), 0);
    scheduler_free(s);

    s = scheduler_new(0);
    a.ngpus = 1;
    assert_int_equal(scheduler_request(s, &a, g, &err), -E2BIG);
    assert_string_equal(err, "this profile needs 1 GPU; this server has none");
    free(err);
    a.ngpus = 0;
    assert_int_equal(scheduler_request(s, &a, NULL, &err), 0);
    scheduler_free(s);
}

static void test_per_user_cap(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    struct sched_ask a = {.user_id = 1, .profile = "gpu", .ngpus = 1, .max_per_user = 2};
    unsigned g[SCHED_MAX_GPUS];
    char *err = NULL;

    a.request_id = "a1";
    assert_int_equal(scheduler_request(s, &a, g, &err), 0);
    a.request_id = "a2";
    assert_int_equal(scheduler_request(s, &a, g, &err), 0);
    a.request_id = "a3";
    assert_int_equal(scheduler_request(s, &a, g, &err), -EDQUOT);
    assert_non_null(strstr(err, "the limit is 2"));
    free(err);
    err = NULL;
    /* the cap is per user and per profile */
    a.profile = "cpu";
    a.ngpus = 0;
    assert_int_equal(scheduler_request(s, &a, g, &err), 0);
    a.profile = "gpu";
    a.ngpus = 1;
    a.user_id = 2;
    a.request_id = "b1";
    assert_int_equal(scheduler_request(s, &a, g, &err), 0);
    /* waiting requests count too */
    a.ngpus = 2;
    a.request_id = "b2";
    assert_int_equal(scheduler_request(s, &a, g, &err), SCHED_QUEUED);
    a.request_id = "b3";
    assert_int_equal(scheduler_request(s, &a, g, &err), -EDQUOT);
    free(err);
    err = NULL;
    char *granted = release(s, "a1");
    assert_string_equal(granted, "b2");
    free(granted);
    /* a1's end gave user 1 a slot again */
    a.user_id = 1;
    a.ngpus = 1;
    a.request_id = "a4";
    assert_int_equal(scheduler_request(s, &a, g, &err), SCHED_QUEUED);
    assert_int_equal(scheduler_position(s, "a4"), 1);
    assert_null(err);
    scheduler_free(s);
}

static void test_adopt(void **state)
{
    (void)state;
    struct scheduler *s = scheduler_new(4);
    struct sched_ask a = {.user_id = 1, .request_id = "old", .profile = "gpu", .ngpus = 2};
    unsigned want[] = {1, 3}, g[SCHED_MAX_GPUS];

    assert_int_equal(scheduler_adopt(s, &a, want), 0);
    assert_int_equal(scheduler_gpus(s, "old", g), 2);
    assert_int_equal(g[0], 1);
    assert_int_equal(g[1], 3);
    a.request_id = "clash";
    unsigned clash[] = {0, 3};
    assert_int_equal(scheduler_adopt(s, &a, clash), -EBUSY);
    unsigned far[] = {0, 7};
    assert_int_equal(scheduler_adopt(s, &a, far), -ENODEV);
    assert_int_equal(ask(s, 2, "new", 2, g), 0);
    assert_int_equal(g[0], 0);
    assert_int_equal(g[1], 2);
    scheduler_free(s);
}

/* ---- property test ---- */

#define PNGPUS 4
#define PMAXREQ 40

struct model {
    char id[16];
    bool live;
    bool granted;
    unsigned ngpus;
    uint64_t gpus;
};

static uint64_t rng = 0x5eed1234abcdULL;

static unsigned rnd(unsigned n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng >> 33) % n);
}

static void apply_grants(struct model *m, size_t nm, struct sched_grant *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < nm; j++) {
            if (!m[j].live || strcmp(m[j].id, g[i].request_id) != 0)
                continue;
            assert_false(m[j].granted);
            assert_int_equal(g[i].ngpus, m[j].ngpus);
            m[j].granted = true;
            for (unsigned k = 0; k < g[i].ngpus; k++) {
                assert_true(g[i].gpus[k] < PNGPUS);
                m[j].gpus |= (uint64_t)1 << g[i].gpus[k];
            }
            assert_int_equal(__builtin_popcountll(m[j].gpus), m[j].ngpus);
            found = true;
        }
        assert_true(found);
    }
}

static void check_invariants(struct scheduler *s, struct model *m, size_t nm)
{
    uint64_t used = 0;
    size_t queued = 0;
    unsigned head_need = 0;
    bool seen_pos[PMAXREQ + 2] = {false};
    unsigned g[SCHED_MAX_GPUS];

    for (size_t j = 0; j < nm; j++) {
        if (!m[j].live)
            continue;
        if (m[j].granted) {
            /* runtimes never share a GPU */
            assert_int_equal(used & m[j].gpus, 0);
            used |= m[j].gpus;
            assert_int_equal(scheduler_position(s, m[j].id), 0);
            int k = scheduler_gpus(s, m[j].id, g);
            assert_int_equal(k, (int)m[j].ngpus);
            uint64_t mask = 0;
            for (int i = 0; i < k; i++)
                mask |= (uint64_t)1 << g[i];
            assert_int_equal(mask, m[j].gpus);
        } else {
            int pos = scheduler_position(s, m[j].id);
            assert_true(pos >= 1 && pos <= PMAXREQ);
            assert_false(seen_pos[pos]);
            seen_pos[pos] = true;
            if (pos == 1)
                head_need = m[j].ngpus;
            queued++;
        }
    }
    assert_int_equal(scheduler_queued(s), queued);
    for (size_t p = 1; p <= queued; p++)
        assert_true(seen_pos[p]); /* positions are exactly 1..queued */
    assert_int_equal(scheduler_free_gpus(s), PNGPUS - __builtin_popcountll(used));
    /* nothing waits that could run: the head needs more than is free */
    if (queued)
        assert_true(head_need > scheduler_free_gpus(s));
}

static void test_property_no_overlap(void **state)
{
    (void)state;
    struct model m[PMAXREQ];
    unsigned next_id = 0, grants_seen = 0;

    for (int round = 0; round < 50; round++) {
        struct scheduler *s = scheduler_new(PNGPUS);
        memset(m, 0, sizeof(m));
        for (int step = 0; step < 400; step++) {
            unsigned op = rnd(10);
            size_t slot = rnd(PMAXREQ);
            struct sched_grant *g = NULL;
            size_t n = 0;

            if (!m[slot].live && op < 6) {
                unsigned need = rnd(6); /* 0..5: 5 is impossible */
                unsigned gp[SCHED_MAX_GPUS];
                snprintf(m[slot].id, sizeof(m[slot].id), "r%u", next_id++);
                int rc = ask(s, (int64_t)rnd(4), m[slot].id, need, gp);
                if (need > PNGPUS) {
                    assert_int_equal(rc, -E2BIG);
                    continue;
                }
                assert_true(rc == 0 || rc == SCHED_QUEUED);
                m[slot].live = true;
                m[slot].granted = false;
                m[slot].ngpus = need;
                m[slot].gpus = 0;
                if (rc == 0) {
                    struct sched_grant one = {.ngpus = need};
                    memcpy(one.request_id, m[slot].id, sizeof(m[slot].id));
                    memcpy(one.gpus, gp, need * sizeof(unsigned));
                    apply_grants(m, PMAXREQ, &one, 1);
                    grants_seen++;
                }
            } else if (m[slot].live) {
                /* the queue's serving order before the release, from the positions */
                const char *order[PMAXREQ + 1] = {NULL};
                bool was_granted = m[slot].granted;
                for (size_t j = 0; j < PMAXREQ; j++) {
                    int pos = m[j].live ? scheduler_position(s, m[j].id) : 0;
                    if (pos > 0)
                        order[pos - 1] = m[j].id;
                }
                int rc = op < 8 ? scheduler_release(s, m[slot].id, &g, &n)
                                : scheduler_cancel(s, m[slot].id, &g, &n);
                assert_int_equal(rc, 0);
                m[slot].live = false;
                /* freeing GPUs serves the queue in exactly the order its positions said */
                if (was_granted)
                    for (size_t i = 0; i < n; i++)
                        assert_string_equal(g[i].request_id, order[i]);
                apply_grants(m, PMAXREQ, g, n);
                grants_seen += (unsigned)n;
                free(g);
            }
            check_invariants(s, m, PMAXREQ);
        }
        scheduler_free(s);
    }
    assert_true(grants_seen > 1000); /* the sequences did exercise the queue */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grants_at_once_lowest_free),
        cmocka_unit_test(test_round_robin_fairness),
        cmocka_unit_test(test_round_robin_three_users),
        cmocka_unit_test(test_big_head_not_overtaken),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_impossible),
        cmocka_unit_test(test_per_user_cap),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_property_no_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
