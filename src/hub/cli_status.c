/* `labbook status`: reads DATA/run/status.json (written by the hub every 2 s, since the
 * CLI cannot see the hub's memory) and prints the GPUs, the runtimes and the queue as
 * tables; a missing or stale file means the hub is not running. */
#include "hub/cli_status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/config.h"

#define STATUS_MAX (16 << 20)

static const char usage_text[] = "usage: labbook status [--data DIR] [--config FILE]\n"
                                 "       --data DIR      data folder (default: the config's, "
                                 "else ./var)\n"
                                 "       --config FILE   labbook.ini to read\n";

/* A string from the file, safe for a terminal and cut to width: at most `width`
 * characters, control bytes as '?'. */
static void cell(struct buf *b, const char *s, int width, bool last)
{
    int n = 0;
    if (!s)
        s = "-";
    for (; *s && n < width; s++, n++) {
        unsigned char c = (unsigned char)*s;
        char o = c < 0x20 || c == 0x7f ? '?' : (char)c;
        buf_append(b, &o, 1);
    }
    if (last)
        return;
    for (; n < width + 2; n++)
        buf_append(b, " ", 1);
}

/* "512 B", "12 KiB", "212 MiB", "1.5 GiB". */
static void human_bytes(char *out, size_t len, json_t *v)
{
    if (!json_is_integer(v)) {
        snprintf(out, len, "-");
        return;
    }
    double x = (double)json_integer_value(v);
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (x >= 1024 && u + 1 < ARRAY_SIZE(unit)) {
        x /= 1024;
        u++;
    }
    if (u >= 3)
        snprintf(out, len, "%.1f %s", x, unit[u]);
    else
        snprintf(out, len, "%.0f %s", x, unit[u]);
}

/* "4 s", "5 min", "2 h 3 min", "1 d 4 h". */
static void human_age(char *out, size_t len, json_int_t s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(out, len, "%d s", (int)s);
    else if (s < 3600)
        snprintf(out, len, "%d min", (int)(s / 60));
    else if (s < 86400)
        snprintf(out, len, "%d h %d min", (int)(s / 3600), (int)(s % 3600 / 60));
    else
        snprintf(out, len, "%d d %d h", (int)(s / 86400), (int)(s % 86400 / 3600));
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

void cli_status_format(const json_t *st, struct buf *b)
{
    json_t *gpus = json_object_get(st, "gpus"), *rts = json_object_get(st, "runtimes");
    json_t *queue = json_object_get(st, "queue"), *v;
    size_t i;
    buf_printf(b, "GPUs (%d free)\n", (int)json_integer_value(json_object_get(st, "gpus_free")));
    if (json_array_size(gpus) == 0) {
        buf_printf(b, "  none\n");
    } else {
        buf_printf(b, "  ");
        cell(b, "GPU", 3, false);
        cell(b, "NAME", 28, false);
        cell(b, "UTIL", 5, false);
        cell(b, "MEMORY", 10, false);
        cell(b, "HOLDER", 24, true);
        buf_printf(b, "\n");
    }
    json_array_foreach(gpus, i, v)
    {
        char idx[16], util[16], mem[32], holder[128];
        snprintf(idx, sizeof(idx), "%d", (int)json_integer_value(json_object_get(v, "index")));
        json_t *u = json_object_get(v, "util");
        if (json_is_integer(u))
            snprintf(util, sizeof(util), "%d %%", (int)json_integer_value(u));
        else
            snprintf(util, sizeof(util), "-");
        human_bytes(mem, sizeof(mem), json_object_get(v, "memory_used"));
        const char *who = str(v, "holder"), *rid = str(v, "runtime");
        if (who)
            snprintf(holder, sizeof(holder), "%.63s (%.8s)", who, rid ? rid : "?");
        else
            snprintf(holder, sizeof(holder), "free");
        buf_printf(b, "  ");
        cell(b, idx, 3, false);
        cell(b, str(v, "name"), 28, false);
        cell(b, util, 5, false);
        cell(b, mem, 10, false);
        cell(b, holder, 80, true);
        buf_printf(b, "\n");
    }
    buf_printf(b, "\nRuntimes (%zu)\n", json_array_size(rts));
    if (json_array_size(rts) == 0) {
        buf_printf(b, "  none\n");
    } else {
        buf_printf(b, "  ");
        cell(b, "ID", 8, false);
        cell(b, "OWNER", 16, false);
        cell(b, "PROFILE", 10, false);
        cell(b, "STATE", 10, false);
        cell(b, "RAM", 21, false);
        cell(b, "CPU", 6, false);
        cell(b, "GPUS", 6, false);
        cell(b, "AGE", 12, true);
        buf_printf(b, "\n");
    }
    json_array_foreach(rts, i, v)
    {
        char ram[64], used[24], lim[24], cpu[16], gl[64] = "-", age[32], state[24];
        json_t *mem = json_object_get(v, "memory");
        human_bytes(used, sizeof(used), json_object_get(mem, "used"));
        human_bytes(lim, sizeof(lim), json_object_get(mem, "limit"));
        snprintf(ram, sizeof(ram), "%s / %s", used, lim);
        json_t *pct = json_object_get(json_object_get(v, "cpu"), "percent");
        if (json_is_number(pct))
            snprintf(cpu, sizeof(cpu), "%.0f %%", json_number_value(pct));
        else
            snprintf(cpu, sizeof(cpu), "-");
        json_t *g, *gs = json_object_get(v, "gpus");
        size_t j, off = 0;
        json_array_foreach(gs, j, g)
        {
            int w = snprintf(gl + off, sizeof(gl) - off, "%s%d", j ? "," : "",
                             (int)json_integer_value(json_object_get(g, "index")));
            if (w < 0 || (size_t)w >= sizeof(gl) - off)
                break;
            off += (size_t)w;
        }
        human_age(age, sizeof(age), json_integer_value(json_object_get(v, "age_s")));
        const char *s = str(v, "state"), *es = str(v, "execution_state");
        if (s && !strcmp(s, "running") && es && !strcmp(es, "busy"))
            snprintf(state, sizeof(state), "busy");
        else if (s && !strcmp(s, "running"))
            snprintf(state, sizeof(state), "idle");
        else
            snprintf(state, sizeof(state), "%.20s", s ? s : "?");
        buf_printf(b, "  ");
        cell(b, str(v, "id"), 8, false);
        cell(b, str(v, "owner"), 16, false);
        cell(b, str(v, "profile"), 10, false);
        cell(b, state, 10, false);
        cell(b, ram, 21, false);
        cell(b, cpu, 6, false);
        cell(b, gl, 6, false);
        cell(b, age, 12, true);
        buf_printf(b, "\n");
    }
    buf_printf(b, "\nQueue (%zu waiting)\n", json_array_size(queue));
    if (json_array_size(queue) == 0) {
        buf_printf(b, "  empty\n");
        return;
    }
    buf_printf(b, "  ");
    cell(b, "POS", 4, false);
    cell(b, "OWNER", 16, false);
    cell(b, "PROFILE", 10, false);
    cell(b, "ID", 8, true);
    buf_printf(b, "\n");
    json_array_foreach(queue, i, v)
    {
        char pos[16];
        snprintf(pos, sizeof(pos), "%d", (int)json_integer_value(json_object_get(v, "position")));
        buf_printf(b, "  ");
        cell(b, pos, 4, false);
        cell(b, str(v, "owner"), 16, false);
        cell(b, str(v, "profile"), 10, false);
        cell(b, str(v, "id"), 8, true);
        buf_printf(b, "\n");
    }
}

int cli_status_main(int argc, char **argv)
{
    const char *data = NULL, *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((!strcmp(argv[i], "--data") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            if (argv[i][2] == 'd')
                data = argv[++i];
            else
                config_path = argv[++i];
            continue;
        }
        fprintf(stderr, "labbook status: unexpected argument \"%s\"\n%s", argv[i], usage_text);
        return 2;
    }
    struct config cfg = {0};
    char *err = NULL, *text = NULL, *path = NULL;
    json_t *st = NULL;
    int rc = 1;
    if (config_load(config_path, &cfg, &err) < 0) {
        fprintf(stderr, "labbook status: %s\n", err);
        free(err);
        return 1;
    }
    path = xasprintf("%s/run/status.json", data ? data : cfg.data_dir);
    struct stat sb;
    size_t len;
    int r = stat(path, &sb);
    if (r < 0) {
        printf("The hub is not running: %s does not exist.\n", path);
        goto out;
    }
    time_t now = time(NULL);
    if (now - sb.st_mtime > CLI_STATUS_STALE_S) {
        printf("The hub is not running: its status file %s was last written %lld s ago.\n", path,
               (long long)(now - sb.st_mtime));
        goto out;
    }
    if ((r = read_file(path, STATUS_MAX, &text, &len)) < 0) {
        fprintf(stderr, "labbook status: cannot read %s: %s\n", path, strerror(-r));
        goto out;
    }
    json_error_t je;
    st = json_loadb(text, len, 0, &je);
    if (!json_is_object(st)) {
        fprintf(stderr, "labbook status: %s is not valid: %s\n", path, je.text);
        goto out;
    }
    struct buf b = {0};
    cli_status_format(st, &b);
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
    rc = 0;
out:
    json_decref(st);
    free(text);
    free(path);
    config_free(&cfg);
    return rc;
}
