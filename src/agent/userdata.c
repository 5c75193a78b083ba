/* google.colab.userdata's channel from the kernel to the agent (userdata.h): a
 * non-blocking unix socket server inside the agent's zmq_poll loop. */
#include "agent/userdata.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/util.h"
#include "wire/stream.h"

struct client {
    int fd;
    char in[USERDATA_REQUEST_MAX + 1];
    size_t inlen;
    char *out; /* the answer being written */
    size_t outlen, outoff;
    int64_t req; /* > 0 while the hub's answer is awaited */
    uint64_t deadline;
};

struct userdata {
    int lfd;
    struct client c[USERDATA_CLIENTS_MAX];
    int64_t next_req;
    userdata_send_fn send;
    void *ctx;
};

struct userdata *userdata_new(int dirfd, uid_t owner, userdata_send_fn send, void *ctx, char **err)
{
    char path[108];
    int n = snprintf(path, sizeof(path), "/proc/self/fd/%d/" USERDATA_SOCKET_NAME, dirfd);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        *err = xstrdup("the socket's path is too long");
        return NULL;
    }
    if (unlinkat(dirfd, USERDATA_SOCKET_NAME, 0) < 0 && errno != ENOENT) {
        *err = xasprintf("removing the old %s: %s", USERDATA_SOCKET_NAME, strerror(errno));
        return NULL;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = xasprintf("socket: %s", strerror(errno));
        return NULL;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, (size_t)n + 1);
    /* Only the owner may connect (0700 whatever the umask); the folder is new and no
     * kernel runs yet, so nobody can have planted a link at the name. */
    mode_t old = umask(077);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0 || listen(fd, USERDATA_CLIENTS_MAX) < 0) {
        *err = xasprintf("bind %s: %s", USERDATA_SOCKET_NAME, strerror(errno));
        close(fd);
        return NULL;
    }
    if (owner != (uid_t)-1 &&
        fchownat(dirfd, USERDATA_SOCKET_NAME, owner, (gid_t)owner, AT_SYMLINK_NOFOLLOW) < 0) {
        *err = xasprintf("chown %s: %s", USERDATA_SOCKET_NAME, strerror(errno));
        close(fd);
        return NULL;
    }
    struct userdata *u = xcalloc(1, sizeof(*u));
    u->lfd = fd;
    u->send = send;
    u->ctx = ctx;
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++)
        u->c[i].fd = -1;
    return u;
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->out) {
        sodium_memzero(c->out, c->outlen);
        free(c->out);
    }
    sodium_memzero(c->in, sizeof(c->in));
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void userdata_free(struct userdata *u)
{
    if (!u)
        return;
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++)
        client_close(&u->c[i]);
    close(u->lfd);
    free(u);
}

/* Queues a one-line answer (o: stolen) and stops reading. */
static void answer(struct client *c, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(s);
    c->out = xrealloc(s, n + 2);
    c->out[n] = '\n';
    c->out[n + 1] = '\0';
    c->outlen = n + 1;
    c->outoff = 0;
    c->req = 0;
}

static void answer_error(struct client *c, const char *msg)
{
    answer(c, json_pack("{s:s, s:s}", "status", "error", "message", msg));
}

static void on_request(struct userdata *u, struct client *c)
{
    json_t *o = json_loadb(c->in, c->inlen, 0, NULL);
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name) {
        json_decref(o);
        answer_error(c, "the request must be {\"name\": \"NAME\"}");
        return;
    }
    int64_t id = ++u->next_req;
    json_t *q = json_pack("{s:I, s:s}", "req", (json_int_t)id, "name", name);
    json_decref(o);
    char *s = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    int r = u->send(u->ctx, s, strlen(s));
    free(s);
    if (r < 0) {
        answer_error(c, "the runtime is not connected to labbook's hub right now; try again");
        return;
    }
    c->req = id;
}

static void client_read(struct userdata *u, struct client *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->inlen, USERDATA_REQUEST_MAX - c->inlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            client_close(c);
            return;
        }
        char *nl = memchr(c->in + c->inlen, '\n', (size_t)n);
        c->inlen += (size_t)n;
        if (nl) {
            c->inlen = (size_t)(nl - c->in);
            on_request(u, c);
            return;
        }
        if (c->inlen >= USERDATA_REQUEST_MAX) {
            answer_error(c, "the request is too long");
            return;
        }
    }
}

static void client_write(struct client *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            client_close(c);
            return;
        }
        c->outoff += (size_t)n;
    }
    client_close(c);
}

static void accept_clients(struct userdata *u)
{
    for (;;) {
        int fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct client *c = NULL;
        for (int i = 0; i < USERDATA_CLIENTS_MAX && !c; i++)
            if (u->c[i].fd < 0)
                c = &u->c[i];
        if (!c) {
            static const char busy[] = "{\"status\":\"error\",\"message\":\"too many secret "
                                       "requests at once\"}\n";
            if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* nothing more to do: it is closed either way */
            }
            close(fd);
            continue;
        }
        c->fd = fd;
        c->deadline = now_ms() + USERDATA_TIMEOUT_MS;
    }
}

int userdata_poll_items(struct userdata *u, zmq_pollitem_t *items)
{
    int n = 0;
    items[n++] = (zmq_pollitem_t){.fd = u->lfd, .events = ZMQ_POLLIN};
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++) {
        struct client *c = &u->c[i];
        if (c->fd < 0 || (c->req && !c->out))
            continue; /* waiting for the hub: nothing to read or write */
        items[n++] = (zmq_pollitem_t){.fd = c->fd, .events = c->out ? ZMQ_POLLOUT : ZMQ_POLLIN};
    }
    return n;
}

void userdata_handle(struct userdata *u, const zmq_pollitem_t *items, int n)
{
    for (int k = 1; k < n; k++) {
        if (!items[k].revents)
            continue;
        struct client *c = NULL;
        for (int i = 0; i < USERDATA_CLIENTS_MAX && !c; i++)
            if (u->c[i].fd == items[k].fd)
                c = &u->c[i];
        if (!c)
            continue;
        if (c->out)
            client_write(c);
        else if (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            client_read(u, c);
        if (c->fd >= 0 && c->out && c->outoff == 0)
            client_write(c); /* most answers go at once */
    }
    if (n > 0 && (items[0].revents & ZMQ_POLLIN))
        accept_clients(u);
    uint64_t now = now_ms();
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++)
        if (u->c[i].fd >= 0 && now >= u->c[i].deadline)
            client_close(&u->c[i]);
}

long userdata_timeout(struct userdata *u)
{
    uint64_t at = UINT64_MAX;
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++)
        if (u->c[i].fd >= 0 && u->c[i].deadline < at)
            at = u->c[i].deadline;
    if (at == UINT64_MAX)
        return -1;
    uint64_t now = now_ms();
    return at <= now ? 0 : (long)(at - now);
}

void userdata_reply(struct userdata *u, const uint8_t *p, size_t len)
{
    json_t *o = json_loadb((const char *)p, len, 0, NULL);
    json_t *id = json_object_get(o, "req");
    struct client *c = NULL;
    for (int i = 0; json_is_integer(id) && i < USERDATA_CLIENTS_MAX && !c; i++)
        if (u->c[i].fd >= 0 && u->c[i].req == json_integer_value(id))
            c = &u->c[i];
    if (!c) { /* its client left or timed out */
        json_decref(o);
        return;
    }
    json_object_del(o, "req");
    answer(c, o);
    client_write(c);
}

void userdata_hub_lost(struct userdata *u)
{
    for (int i = 0; i < USERDATA_CLIENTS_MAX; i++) {
        struct client *c = &u->c[i];
        if (c->fd >= 0 && c->req && !c->out) {
            answer_error(c, "the runtime lost its connection to labbook's hub; try again");
            client_write(c);
        }
    }
}
