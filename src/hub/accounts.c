/* Noticing account changes made by other processes: every ACCOUNTS_POLL_MS the hub
 * asks the store whether anything changed (PRAGMA data_version, a read of shared
 * memory), and only then checks each open WebSocket's credential again and each
 * runtime's owner. Between changes, only expiry is checked, by the clock. */
#include "hub/accounts.h"

#include <time.h>

#include "hub/channels.h"
#include "hub/hub.h"
#include "hub/kernels.h"

/* "At once": a revoked token's WebSocket ends within this, plus its close. */
#define ACCOUNTS_POLL_MS 200

static void on_watch(uv_timer_t *t)
{
    struct hub *h = t->data;
    if (h->stopping)
        return;
    int changed = store_auth_changed(h->store);
    int64_t now = (int64_t)time(NULL);
    for (struct kernel *k = h->kernels; k; k = k->next)
        channels_recheck(k, changed > 0, now);
    if (changed > 0)
        kernels_stop_disowned(h);
}

void accounts_watch_start(struct hub *h)
{
    uv_timer_init(h->loop, &h->accounts_watch);
    h->accounts_watch.data = h;
    on_watch(&h->accounts_watch); /* the first check sees a change: all is checked */
    uv_timer_start(&h->accounts_watch, on_watch, ACCOUNTS_POLL_MS, ACCOUNTS_POLL_MS);
}

void accounts_watch_stop(struct hub *h)
{
    if (!uv_is_closing((uv_handle_t *)&h->accounts_watch))
        uv_close((uv_handle_t *)&h->accounts_watch, NULL);
}
