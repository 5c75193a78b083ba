/* The `labbook` command: serve (the hub), agent (one runtime), user (accounts). */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "common/util.h"
#include "hub/cli_status.h"
#include "hub/hub.h"
#include "store/cli_user.h"

static int usage(FILE *f)
{
    fputs("usage: labbook serve [--config FILE] [--data DIR] [--port N] [--bind ADDR]\n"
          "       labbook user add NAME [--admin] [--password-stdin] [--data DIR] [--config FILE]\n"
          "       labbook user list | passwd NAME | token NAME [--name N] [--expires DAYS]\n"
          "       labbook user tokens NAME | revoke NAME TOKEN_ID|--all\n"
          "       labbook user disable NAME | enable NAME | delete NAME [--purge]\n"
          "         (every user subcommand takes [--data DIR] [--config FILE])\n"
          "       labbook status [--data DIR] [--config FILE]\n"
          "       labbook agent CONFIG.json   (started by the hub)\n",
          f);
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    proc_title_init(argc, argv);
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return hub_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "user"))
        return cli_user_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "status"))
        return cli_status_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "agent"))
        return agent_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        return usage(stdout);
    fprintf(stderr, "labbook: unknown command \"%s\"\n", cmd);
    return usage(stderr);
}
