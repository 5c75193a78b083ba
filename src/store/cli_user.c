/* `labbook user add|list|passwd|token`: manages the user table of DATA/labbook.db from
 * the command line. Passwords come from stdin (prompted without echo on a terminal). */
#include "store/cli_user.h"

#include "common/config.h"
#include "common/util.h"
#include "store/store.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD_MAX 1024

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct opts {
    const char *data;
    const char *config;
    bool admin;
    bool password_stdin;
    const char *cmd;
    const char *args[4];
    int nargs;
};

static const char usage_text[] =
    "usage: labbook user add NAME [--admin] [--password-stdin]\n"
    "       labbook user list\n"
    "       labbook user passwd NAME      (new password from stdin, one line)\n"
    "       labbook user token NAME       (prints a new API token)\n"
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
        } else if (!strcmp(a, "--data") || !strcmp(a, "--config")) {
            dest = a[2] == 'd' ? &o->data : &o->config;
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a), -1;
            value = argv[++i];
        } else if (str_starts_with(a, "--data=")) {
            dest = &o->data;
            value = a + strlen("--data=");
        } else if (str_starts_with(a, "--config=")) {
            dest = &o->config;
            value = a + strlen("--config=");
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

/* Opens DATA/labbook.db, creating DATA (0700) if needed. Reports its own errors. */
static int open_store(const struct opts *o, struct store **out)
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
out:
    free(err);
    free(path);
    config_free(&cfg);
    return r;
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
    printf("%-32s  %-5s  %-8s  %s\n", u->name, u->admin ? "yes" : "no",
           u->has_password ? "yes" : "no", created);
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
    printf("%-32s  %-5s  %-8s  %s\n", "NAME", "ADMIN", "PASSWORD", "CREATED");
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
    printf("password set for %s\n", name);
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
    if (open_store(o, &s) < 0) {
        r = EXIT_ERR;
        goto out;
    }
    int sr = store_token_create(s, name, &token);
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
    if (is_add)
        return cmd_add(&o);
    if (!strcmp(o.cmd, "list"))
        return cmd_list(&o);
    if (!strcmp(o.cmd, "passwd"))
        return cmd_passwd(&o);
    if (!strcmp(o.cmd, "token"))
        return cmd_token(&o);
    char *q = quoted(o.cmd);
    r = usage_error("unknown subcommand %s", q);
    free(q);
    return r;
}
