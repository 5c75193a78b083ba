/* `labbook user`: add, list, passwd and token, the administrator's commands for the
 * user table in DATA/labbook.db. */
#ifndef LABBOOK_STORE_CLI_USER_H
#define LABBOOK_STORE_CLI_USER_H

/* Runs `labbook user ...`; argv[0] is "user". Writes results to stdout, errors to
 * stderr as "labbook user: ...". Returns the exit status: 0, 1 on an error, 2 on a
 * usage error. Reads passwords from fd 0. */
int cli_user_main(int argc, char **argv);

#endif
