/* `labbook user add|list|passwd|token|tokens|revoke|disable|enable|delete`: manages the
 * users and tokens of DATA/labbook.db from the command line. Passwords come from stdin
 * (prompted without echo on a terminal). A running hub notices every change here at
 * once (docs/store.md, "Revocation"). */
#include "store/cli_user.h"

#include "common/config.h"
#include "common/fsat.h"
#include "common/util.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD_MAX 1024
#define EXPIRES_DAYS_MAX 36500
/* How long disable and delete wait for a running hub to stop the user's runtimes. */
#define RUNTIMES_WAIT_MS 15000

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct opts {
    const char *data;
    const char *config;
    bool admin;
    bool password_stdin;
    const char *token_name; /* token --name */
    const char *expires;    /* token --expires DAYS */
    bool all;               /* revoke --all */
    bool purge;             /* delete --purge */
    const char *cmd;
    const char *args[4];
    int nargs;
};

static const char usage_text[] =
    "usage: labbook user add NAME [--admin] [--password-stdin]\n"
    "       labbook user list\n"
    "       labbook user passwd NAME      (new password from stdin, one line)\n"
    "       labbook user token NAME [--name N] [--expires DAYS]   (prints a new API token)\n"
    "       labbook user tokens NAME      (lists NAME's tokens: id, name, dates)\n"
    "       labbook user revoke NAME TOKEN_ID|--all   (--all: every token and session)\n"
    "       labbook user disable NAME | enable NAME\n"
    "       labbook user delete NAME [--purge]   (--purge: remove the drive too)\n"
    "options for every subcommand:\n"
    "       --data DIR      data folder (default: the config's, else ./var)\n"
    "       --config FILE   labbook.ini to read\n";

static void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("labbook user: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("labbook user: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* A user-controlled string made safe to print: quoted, non-printable bytes escaped,
 * long strings cut. Caller frees. */
static char *quoted(const char *s)
{
    struct buf b = {0};
    buf_append(&b, "'", 1);
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 64) {
            buf_append(&b, "...", 3);
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\')
            buf_printf(&b, "\\x%02x", c);
        else
            buf_append(&b, &s[i], 1);
    }
    buf_append(&b, "'", 1);
    return buf_steal(&b, NULL);
}

static const char name_rule[] = "a name is 1-32 characters of a-z, 0-9, '_', '.' and '-', "
                                "starting with a letter or digit";

/* The option a (--data, --config, --name, --expires; "--opt=value" or "--opt") is
 * stored where the result points; *value is what followed '=', or NULL. NULL for
 * another option. */
static const char **value_option(struct opts *o, const char *a, const char **value)
{
    static const struct {
        const char *name;
        size_t off;
    } known[] = {{"--data", offsetof(struct opts, data)},
                 {"--config", offsetof(struct opts, config)},
                 {"--name", offsetof(struct opts, token_name)},
                 {"--expires", offsetof(struct opts, expires)}};
    for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
        size_t n = strlen(known[i].name);
        if (strncmp(a, known[i].name, n) || (a[n] != '\0' && a[n] != '='))
            continue;
        *value = a[n] == '=' ? a + n + 1 : NULL;
        return (const char **)((char *)o + known[i].off);
    }
    return NULL;
}

/* Parses argv into o; returns -1 for a usage error (already reported), 1 for --help. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    bool options_done = false;
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dest = NULL;
        const char *value = NULL;
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (!o->cmd)
                o->cmd = a;
            else if (o->nargs < (int)ARRAY_SIZE(o->args))
                o->args[o->nargs++] = a;
            else
                return usage_error("too many arguments"), -1;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 1;
        } else if (!strcmp(a, "--admin")) {
            o->admin = true;
        } else if (!strcmp(a, "--password-stdin")) {
            o->password_stdin = true;
        } else if (!strcmp(a, "--all")) {
            o->all = true;
        } else if (!strcmp(a, "--purge")) {
            o->purge = true;
        } else if ((dest = value_option(o, a, &value))) {
            if (!value) {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", a), -1;
                value = argv[++i];
            }
        } else {
            char *q = quoted(a);
            usage_error("unknown option %s", q);
            free(q);
            return -1;
        }
        if (dest) {
            if (!*value)
                return usage_error("%s needs a non-empty value", a), -1;
            *dest = value;
        }
    }
    return 0;
}

/* Opens DATA/labbook.db, creating DATA (0700) if needed; *data_out (may be NULL; the
 * caller frees) gets DATA. Reports its own errors. */
static int open_store_at(const struct opts *o, struct store **out, char **data_out)
{
    struct config cfg;
    char *err = NULL, *path = NULL;
    int r = config_load(o->config, &cfg, &err);
    if (r < 0) {
        err_msg("%s", err ? err : strerror(-r));
        goto out;
    }
    const char *data = o->data ? o->data : cfg.data_dir;
    if (!data || !*data) {
        err_msg("no data folder: pass --data DIR");
        r = -EINVAL;
        goto out;
    }
    r = mkdir_p(data, 0700);
    if (r < 0) {
        err_msg("creating the data folder %s: %s", data, strerror(-r));
        goto out;
    }
    /* A hub started as root runs as its own user and owns the folder: so must we. */
    r = become_owner_of(data);
    if (r < 0) {
        err_msg("becoming the owner of %s: %s", data, strerror(-r));
        goto out;
    }
    path = xasprintf("%s/labbook.db", data);
    r = store_open(path, out, &err);
    if (r < 0)
        err_msg("%s", err ? err : strerror(-r));
    else if (data_out)
        *data_out = xstrdup(data);
out:
    free(err);
    free(path);
    config_free(&cfg);
    return r;
}

static int open_store(const struct opts *o, struct store **out)
{
    return open_store_at(o, out, NULL);
}

/* Reads one line from fd into buf (NUL-terminated, without the newline). Returns its
 * length, -E2BIG if it does not fit in cap - 1 bytes, or another negative errno. */
static ssize_t read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0 || c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            too_long = true;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return too_long ? -E2BIG : (ssize_t)n;
}

/* Prompts on stderr and reads a line from the terminal on fd 0 without echo. */
static ssize_t prompt_no_echo(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(0, &old) < 0)
        return -errno;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(0, TCSAFLUSH, &quiet) < 0)
        return -errno;
    ssize_t n = read_line(0, buf, cap);
    tcsetattr(0, TCSAFLUSH, &old);
    return n;
}

/* Reads a new password from stdin: one line, or on a terminal twice without echo.
 * Returns 0 or -1 (reported). buf must hold PASSWORD_MAX + 2 bytes. */
static int read_new_password(char *buf)
{
    const size_t cap = PASSWORD_MAX + 2;
    ssize_t n;
    if (isatty(0)) {
        char again[PASSWORD_MAX + 2];
        n = prompt_no_echo("New password: ", buf, cap);
        if (n >= 0) {
            ssize_t m = prompt_no_echo("Retype password: ", again, cap);
            if (m >= 0 && (m != n || sodium_memcmp(buf, again, (size_t)n) != 0)) {
                sodium_memzero(again, sizeof(again));
                err_msg("the passwords do not match");
                return -1;
            }
            if (m < 0)
                n = m;
        }
        sodium_memzero(again, sizeof(again));
    } else {
        n = read_line(0, buf, cap);
    }
    if (n == -E2BIG || n > PASSWORD_MAX) {
        err_msg("the password is too long (at most %d bytes)", PASSWORD_MAX);
        return -1;
    }
    if (n < 0) {
        err_msg("reading the password: %s", strerror((int)-n));
        return -1;
    }
    if (n == 0) {
        err_msg("empty password: none set");
        return -1;
    }
    return 0;
}

/* Checks the NAME argument; returns 0 or an exit status. */
static int need_name(const struct opts *o, bool must_be_valid)
{
    if (o->nargs < 1)
        return usage_error("%s needs a user NAME", o->cmd);
    if (o->nargs > 1) {
        char *q = quoted(o->args[1]);
        int r = usage_error("unexpected argument %s", q);
        free(q);
        return r;
    }
    if (must_be_valid && !store_user_name_valid(o->args[0])) {
        char *q = quoted(o->args[0]);
        err_msg("invalid user name %s: %s", q, name_rule);
        free(q);
        return EXIT_ERR;
    }
    return 0;
}

static int report_store_error(int r, const char *name, const char *doing)
{
    char *q = quoted(name);
    if (r == -ENOENT)
        err_msg("no user named %s", q);
    else if (r == -EEXIST)
        err_msg("the name %s is taken", q);
    else
        err_msg("%s %s: %s", doing, q, strerror(-r));
    free(q);
    return EXIT_ERR;
}

static int flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_msg("writing to stdout: %s", strerror(errno));
        return EXIT_ERR;
    }
    return EXIT_OK;
}

static int cmd_add(const struct opts *o)
{
    struct store *s = NULL;
    char password[PASSWORD_MAX + 2];
    struct user u;
    const char *name = o->args[0];
    int r = need_name(o, true);
    if (r)
        return r;
    if (open_store(o, &s) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    /* Refuse a taken name before asking for a password. */
    if (store_user_get(s, name, &u) == 0) {
        r = report_store_error(-EEXIST, name, "adding");
        goto out;
    }
    if (o->password_stdin && read_new_password(password) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    int sr = store_user_add(s, name, o->admin, o->password_stdin ? password : NULL);
    if (sr < 0) {
        r = report_store_error(sr, name, "adding");
        goto out;
    }
    printf("added user %s%s\n", name, o->admin ? " (admin)" : "");
    if (!o->password_stdin)
        err_msg("%s has no password: it signs in with a token ('labbook user token %s') "
                "until one is set with 'labbook user passwd %s'",
                name, name, name);
    r = flush_stdout();
out:
    sodium_memzero(password, sizeof(password));
    store_close(s);
    return r;
}

static void print_user(void *ctx, const struct user *u)
{
    (void)ctx;
    char created[32] = "?";
    time_t t = (time_t)u->created;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("%-32s  %-5s  %-8s  %-23s  %s\n", u->name, u->admin ? "yes" : "no",
           u->has_password ? "yes" : "no", created, u->disabled ? "disabled" : "active");
}

static int cmd_list(const struct opts *o)
{
    struct store *s = NULL;
    int r;
    if (o->nargs > 0) {
        char *q = quoted(o->args[0]);
        r = usage_error("unexpected argument %s", q);
        free(q);
        return r;
    }
    if (open_store(o, &s) < 0)
        return EXIT_ERR;
    printf("%-32s  %-5s  %-8s  %-23s  %s\n", "NAME", "ADMIN", "PASSWORD", "CREATED", "STATE");
    int sr = store_user_list(s, print_user, NULL);
    if (sr < 0) {
        err_msg("listing users: %s", strerror(-sr));
        r = EXIT_ERR;
    } else {
        r = flush_stdout();
    }
    store_close(s);
    return r;
}

static int cmd_passwd(const struct opts *o)
{
    struct store *s = NULL;
    char password[PASSWORD_MAX + 2];
    struct user u;
    const char *name = o->args[0];
    int r = need_name(o, false);
    if (r)
        return r;
    if (open_store(o, &s) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    int sr = store_user_get(s, name, &u);
    if (sr < 0) {
        r = report_store_error(sr, name, "looking up");
        goto out;
    }
    if (read_new_password(password) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    sr = store_user_set_password(s, name, password);
    if (sr < 0) {
        r = report_store_error(sr, name, "setting the password of");
        goto out;
    }
    printf("password set for %s; their sessions in browsers have ended\n", name);
    r = flush_stdout();
out:
    sodium_memzero(password, sizeof(password));
    store_close(s);
    return r;
}

static int cmd_token(const struct opts *o)
{
    struct store *s = NULL;
    char *token = NULL;
    const char *name = o->args[0];
    int r = need_name(o, false);
    if (r)
        return r;
    int64_t expires = 0;
    if (o->expires) {
        /* Days, a fraction allowed ("0.5": twelve hours). */
        char *end = NULL;
        errno = 0;
        double days = strtod(o->expires, &end);
        if (errno || end == o->expires || *end || !(days > 0 && days <= EXPIRES_DAYS_MAX)) {
            char *q = quoted(o->expires);
            r = usage_error("--expires takes a number of days above 0, at most %d, not %s",
                            EXPIRES_DAYS_MAX, q);
            free(q);
            goto out;
        }
        double secs = days * 86400.0; /* NaN and infinities were refused above */
        int64_t whole = (int64_t)secs;
        expires = (int64_t)time(NULL) + (whole < secs ? whole + 1 : whole > 0 ? whole : 1);
    }
    if (o->token_name && !store_token_name_valid(o->token_name)) {
        char *q = quoted(o->token_name);
        r = usage_error("invalid token name %s: at most %d printable ASCII characters", q,
                        STORE_TOKEN_NAME_MAX);
        free(q);
        goto out;
    }
    if (open_store(o, &s) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    int sr = store_token_create_named(s, name, o->token_name, expires, &token, NULL);
    if (sr < 0) {
        r = report_store_error(sr, name, "creating a token for");
        goto out;
    }
    printf("%s\n", token);
    r = flush_stdout();
out:
    if (token)
        sodium_memzero(token, strlen(token));
    free(token);
    store_close(s);
    return r;
}

/* "2026-01-31 12:00 UTC" for a unix time; "-" for 0. */
static void format_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(out, 32, "-");
}

static void print_token(void *ctx, const struct store_token *t)
{
    int64_t now = *(const int64_t *)ctx;
    char created[32], used[32], expires[32];
    format_time(t->created, created);
    format_time(t->last_used, used);
    format_time(t->expires, expires);
    if (!t->expires)
        snprintf(expires, sizeof(expires), "never");
    printf("%-10s  %-24s  %-20s  %-20s  %s%s\n", t->id, t->name[0] ? t->name : "-", created, used,
           expires, t->expires && t->expires <= now ? " (expired)" : "");
}

static int cmd_tokens(const struct opts *o)
{
    struct store *s = NULL;
    const char *name = o->args[0];
    int r = need_name(o, false);
    if (r)
        return r;
    if (open_store(o, &s) < 0)
        return EXIT_ERR;
    int64_t now = (int64_t)time(NULL);
    printf("%-10s  %-24s  %-20s  %-20s  %s\n", "ID", "NAME", "CREATED", "LAST USED", "EXPIRES");
    int sr = store_token_list(s, name, print_token, &now);
    if (sr < 0)
        r = report_store_error(sr, name, "listing the tokens of");
    else
        r = flush_stdout();
    store_close(s);
    return r;
}

static int cmd_revoke(const struct opts *o)
{
    struct store *s = NULL;
    const char *name = o->args[0];
    if (o->nargs < 1)
        return usage_error("revoke needs a user NAME");
    if (o->all ? o->nargs != 1 : o->nargs != 2)
        return usage_error("revoke takes a user NAME and either a TOKEN_ID or --all");
    if (open_store(o, &s) < 0)
        return EXIT_ERR;
    int r, sr;
    if (o->all) {
        int64_t nt = 0, nl = 0;
        sr = store_token_revoke_all(s, name, &nt, &nl);
        if (sr == 0)
            printf("revoked %lld tokens of %s and ended %lld sessions\n", (long long)nt, name,
                   (long long)nl);
    } else {
        sr = store_token_revoke(s, name, o->args[1]);
        if (sr == -ENOENT && store_user_get(s, name, &(struct user){0}) == 0) {
            char *q = quoted(o->args[1]), *qn = quoted(name);
            err_msg("%s has no token %s (see 'labbook user tokens %s')", qn, q, name);
            free(q);
            free(qn);
            store_close(s);
            return EXIT_ERR;
        }
        if (sr == 0)
            printf("revoked token %s of %s\n", o->args[1], name);
    }
    r = sr < 0 ? report_store_error(sr, name, "revoking the tokens of") : flush_stdout();
    store_close(s);
    return r;
}

/* True if a hub is serving this data folder: something listens on its agent socket. */
static bool hub_running(const char *data)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run/hub.sock", data);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

/* Waits (a while) for a running hub to stop the runtimes of the user whose id this was:
 * it notices the change at once, and each runtime's record goes when it has stopped.
 * Returns how many are still recorded. */
static int64_t wait_runtimes(struct store *s, const char *data, int64_t id)
{
    int64_t n = 0;
    if (store_state_count_owned(s, "runtime", id, &n) < 0 || n == 0)
        return n;
    if (!hub_running(data))
        return n;
    for (int waited = 0; waited < RUNTIMES_WAIT_MS && n > 0; waited += 100) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (store_state_count_owned(s, "runtime", id, &n) < 0)
            break;
    }
    return n;
}

static void report_runtimes_left(int64_t left, const char *name)
{
    if (left > 0)
        err_msg("%lld runtimes of %s are still recorded: the hub stops them when it notices "
                "(at once while it runs, else when it starts)",
                (long long)left, name);
}

static int cmd_disable(const struct opts *o, bool disable)
{
    struct store *s = NULL;
    char *data = NULL;
    struct user u;
    const char *name = o->args[0];
    int r = need_name(o, false);
    if (r)
        return r;
    if (open_store_at(o, &s, &data) < 0)
        return EXIT_ERR;
    int sr = store_user_get(s, name, &u);
    if (sr == 0)
        sr = store_user_set_disabled(s, name, disable);
    if (sr < 0) {
        r = report_store_error(sr, name, disable ? "disabling" : "enabling");
        goto out;
    }
    if (disable) {
        printf("disabled %s: every sign-in is refused, their sessions have ended\n", name);
        report_runtimes_left(wait_runtimes(s, data, u.id), name);
    } else {
        printf("enabled %s\n", name);
    }
    r = flush_stdout();
out:
    store_close(s);
    free(data);
    return r;
}

/* Removes DATA/drive/NAME and everything in it, never following a symbolic link (the
 * folder itself may be one: then only the link goes). The one place the CLI removes
 * a tree. A runtime still stopping may write meanwhile: a few tries. */
static int purge_drive(const char *data, const char *name)
{
    char *drive = xasprintf("%s/drive", data);
    int r = 0;
    int dfd = open(drive, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        r = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    for (int tries = 0; tries < 5; tries++) {
        r = fs_remove_tree(dfd, name, FS_RM_ONE_FS | FS_RM_WRITABLE);
        if (r == -ENOENT)
            r = 0;
        if (r != -ENOTEMPTY && r != -EEXIST)
            break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(dfd);
out:
    free(drive);
    return r;
}

static int cmd_delete(const struct opts *o)
{
    struct store *s = NULL;
    char *data = NULL;
    int64_t id = 0;
    const char *name = o->args[0];
    int r = need_name(o, false);
    if (r)
        return r;
    /* The name becomes a path below: only a valid one (every user's is). */
    if (o->purge && !store_user_name_valid(name)) {
        char *q = quoted(name);
        err_msg("no user named %s", q);
        free(q);
        return EXIT_ERR;
    }
    if (open_store_at(o, &s, &data) < 0)
        return EXIT_ERR;
    int sr = store_user_delete(s, name, &id);
    if (sr < 0) {
        r = report_store_error(sr, name, "deleting");
        goto out;
    }
    int64_t left = wait_runtimes(s, data, id);
    if (o->purge) {
        sr = purge_drive(data, name);
        if (sr < 0) {
            err_msg("deleted %s, but removing their drive %s/drive/%s failed: %s", name, data, name,
                    strerror(-sr));
            r = EXIT_ERR;
            goto out;
        }
        printf("deleted %s and their drive\n", name);
    } else {
        printf("deleted %s; their drive is kept in %s/drive/%s\n", name, data, name);
    }
    report_runtimes_left(left, name);
    r = flush_stdout();
out:
    store_close(s);
    free(data);
    return r;
}

int cli_user_main(int argc, char **argv)
{
    struct opts o;
    int r = parse_args(argc, argv, &o);
    if (r < 0)
        return EXIT_USAGE;
    if (r > 0)
        return EXIT_OK;
    if (!o.cmd)
        return usage_error("%s", "a subcommand is needed");
    bool is_add = !strcmp(o.cmd, "add");
    if (!is_add && (o.admin || o.password_stdin))
        return usage_error("%s", o.admin ? "--admin is only for 'add'"
                                         : "--password-stdin is only for 'add'");
    if (strcmp(o.cmd, "token") && (o.token_name || o.expires))
        return usage_error("%s", o.token_name ? "--name is only for 'token'"
                                              : "--expires is only for 'token'");
    if (strcmp(o.cmd, "revoke") && o.all)
        return usage_error("%s", "--all is only for 'revoke'");
    if (strcmp(o.cmd, "delete") && o.purge)
        return usage_error("%s", "--purge is only for 'delete'");
    if (is_add)
        return cmd_add(&o);
    if (!strcmp(o.cmd, "list"))
        return cmd_list(&o);
    if (!strcmp(o.cmd, "passwd"))
        return cmd_passwd(&o);
    if (!strcmp(o.cmd, "token"))
        return cmd_token(&o);
    if (!strcmp(o.cmd, "tokens"))
        return cmd_tokens(&o);
    if (!strcmp(o.cmd, "revoke"))
        return cmd_revoke(&o);
    if (!strcmp(o.cmd, "disable") || !strcmp(o.cmd, "enable"))
        return cmd_disable(&o, o.cmd[0] == 'd');
    if (!strcmp(o.cmd, "delete"))
        return cmd_delete(&o);
    char *q = quoted(o.cmd);
    r = usage_error("unknown subcommand %s", q);
    free(q);
    return r;
}
