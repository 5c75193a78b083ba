/* libFuzzer target: the launcher's check of an agent config sent by the (unprivileged,
 * so less trusted) hub. Whatever the bytes, it answers 0 or -EINVAL with a reason, and
 * accepts only configs that keep the sandbox in this data folder. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hub/launcher.h"

static const struct launcher_conf conf = {.data_dir = "/srv/lb",
                                          .runtimes_dir = "/srv/lb/runtimes",
                                          .drive_dir = "/srv/lb/drive",
                                          .sock_path = "/srv/lb/run/hub.sock",
                                          .self_exe = "/usr/bin/labbook",
                                          .python_dir = "/usr/share/labbook/python",
                                          .sandboxed = true};

#define ID "0b2d2bba-023e-4267-865e-475912a92f21"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *why = NULL;
    int r = launcher_check_config(&conf, ID, (const char *)data, size, &why);
    if (r != 0 && (r != -EINVAL || !why))
        abort();
    if (r == 0) {
        /* accepted: then it is a sandbox in the runtime's own folder, data hidden */
        json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        json_t *s = json_object_get(o, "sandbox");
        const char *st = json_string_value(json_object_get(s, "state_dir"));
        if (!st || strcmp(st, "/srv/lb/runtimes/" ID))
            abort();
        json_decref(o);
    }
    free(why);
    char id[64];
    if (size < sizeof(id)) {
        memcpy(id, data, size);
        id[size] = '\0';
        if (launcher_valid_id(id) && (strlen(id) != 36 || strchr(id, '/') || strchr(id, '.')))
            abort();
    }
    return 0;
}
