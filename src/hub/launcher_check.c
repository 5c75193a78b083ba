/* What the launcher will do for the hub (launcher.h): the checks on a runtime id and
 * on an agent's config, apart from the rest so that a fuzz target can link them. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsat.h"
#include "common/util.h"
#include "hub/kernels.h"
#include "hub/launcher.h"
#include "store/store.h"

bool launcher_valid_id(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

int launcher_open_drive(const char *data_dir, const char *user)
{
    if (!user || !store_user_name_valid(user))
        return -EINVAL;
    int data = open(data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (data < 0)
        return -errno;
    char *rel = xasprintf("drive/%s", user);
    int fd = fs_open_beneath(data, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    free(rel);
    close(data);
    return fd;
}

static int reject(char **why, const char *fmt, const char *what)
{
    *why = xasprintf(fmt, what);
    return -EINVAL;
}

int launcher_check_config(const struct launcher_conf *conf, const char *id, const char *json,
                          size_t len, char **why)
{
    *why = NULL;
    json_error_t je;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    int r = 0;
    char *dir = xasprintf("%s/%s", conf->runtimes_dir, id);
    if (!json_is_object(o)) {
        r = reject(why, "the agent config is not a JSON object: %s", je.text);
        goto out;
    }
    const char *s = json_string_value(json_object_get(o, "id"));
    if (!s || strcmp(s, id)) {
        r = reject(why, "the agent config is for another runtime than %s", id);
        goto out;
    }
    s = json_string_value(json_object_get(o, "hub_socket"));
    if (!s || strcmp(s, conf->sock_path)) {
        r = reject(why, "the agent config must dial %s", conf->sock_path);
        goto out;
    }
    s = json_string_value(json_object_get(o, "runtime_dir"));
    if (!s || strcmp(s, dir)) {
        r = reject(why, "the agent config's runtime_dir must be %s", dir);
        goto out;
    }
    json_t *sbx = json_object_get(o, "sandbox");
    if (!conf->sandboxed) {
        if (sbx)
            r = reject(why, "%s", "this hub does not sandbox runtimes");
        goto out; /* its agent runs as the hub's user: nothing more to hold it to */
    }
    if (!json_is_object(sbx)) {
        r = reject(why, "%s", "the agent config must describe a sandbox");
        goto out;
    }
    s = json_string_value(json_object_get(sbx, "state_dir"));
    if (!s || strcmp(s, dir)) {
        r = reject(why, "the sandbox's state_dir must be %s", dir);
        goto out;
    }
    s = json_string_value(json_object_get(sbx, "root_image"));
    if (s && strcmp(s, "/")) {
        r = reject(why, "the sandbox's root image must be /, not %s", s);
        goto out;
    }
    if (json_object_get(sbx, "drive_dir")) {
        r = reject(why, "%s", "the sandbox's drive is named by its user (drive_user), not a path");
        goto out;
    }
    json_t *du = json_object_get(sbx, "drive_user");
    bool later = json_is_true(json_object_get(sbx, "drive_later"));
    if (du || later) {
        s = json_string_value(json_object_get(sbx, "data_dir"));
        if (!s || strcmp(s, conf->data_dir)) {
            r = reject(why, "the sandbox's data_dir must be %s", conf->data_dir);
            goto out;
        }
    }
    if (du) {
        int dfd = launcher_open_drive(conf->data_dir, json_string_value(du));
        if (dfd < 0) {
            r = reject(why, "the sandbox's drive must be a user's folder in %s", conf->drive_dir);
            goto out;
        }
        close(dfd);
    }
    bool masked = false;
    json_t *m;
    size_t i;
    json_array_foreach(json_object_get(sbx, "mask_paths"), i, m)
    {
        if (json_is_string(m) && !strcmp(json_string_value(m), conf->data_dir))
            masked = true;
    }
    if (!masked) {
        r = reject(why, "the sandbox must hide the data folder %s", conf->data_dir);
        goto out;
    }
    json_array_foreach(json_object_get(sbx, "devices"), i, m)
    {
        s = json_string_value(m);
        if (!s || strncmp(s, "/dev/nvidia", 11) || strstr(s, "..")) {
            r = reject(why, "device %s is not a GPU's", s ? s : "(not a string)");
            goto out;
        }
    }
    s = json_string_value(json_object_get(sbx, "python_dir"));
    if (json_object_get(sbx, "python_dir") &&
        (!s || !conf->python_dir || strcmp(s, conf->python_dir))) {
        r = reject(why, "the sandbox's python_dir must be %s",
                   conf->python_dir ? conf->python_dir : "absent");
        goto out;
    }
    json_t *base = json_object_get(sbx, "id_base");
    if (!json_is_integer(base) || json_integer_value(base) < KERNEL_ID_BASE ||
        json_integer_value(base) > KERNEL_ID_BASE + (json_int_t)KERNEL_ID_SLOTS * 65536) {
        r = reject(why, "%s", "the sandbox's id_base is outside labbook's ranges");
        goto out;
    }
out:
    free(dir);
    json_decref(o);
    return r;
}
