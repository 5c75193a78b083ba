/* Starting a kernel process: free ports, the connection file, and fork+exec of the
 * kernelspec's argv in its own session with errno reported over a close-on-exec pipe.
 */
#ifndef LABBOOK_AGENT_KERNEL_H
#define LABBOOK_AGENT_KERNEL_H

#include <stddef.h>
#include <sys/types.h>

/* The five Jupyter channels' ports, in this order. */
enum kernel_port { KPORT_SHELL, KPORT_CONTROL, KPORT_STDIN, KPORT_IOPUB, KPORT_HB, KPORT_COUNT };

/* Finds KPORT_COUNT distinct free TCP ports on 127.0.0.1 (bound to port 0 together,
 * then released, as jupyter_client does). Returns 0 or a negative errno. */
int kernel_pick_ports(int ports[KPORT_COUNT]);

/* Writes the connection file (tcp on 127.0.0.1, hmac-sha256, mode 0600) atomically to
 * path. Returns 0 or a negative errno. */
int kernel_write_connection_file(const char *path, const int ports[KPORT_COUNT], const char *key,
                                 const char *kernel_name);

/* The same with any transport: "tcp" with an address, or "ipc" with a path prefix (the
 * kernel binds ipc://<ip>-<port>), owned by owner:owner ((uid_t)-1: as made). The
 * folder may be one the kernel can write (a sandbox's run/): the temporary file gets a
 * fresh name, is made O_EXCL|O_NOFOLLOW and fchowned before the rename, so no link the
 * kernel planted is followed. Returns 0 or a negative errno. */
int kernel_write_connection(const char *path, const char *transport, const char *ip,
                            const int ports[KPORT_COUNT], const char *key, const char *kernel_name,
                            uid_t owner);

/* What to run: argv (argc entries, "{connection_file}" not yet substituted), extra
 * environment entries "NAME=value" merged over the caller's environment, and the
 * working directory (NULL: the caller's). All borrowed. */
struct kernel_cmd {
    char *const *argv;
    size_t argc;
    char *const *env;
    size_t nenv;
    const char *cwd;
};

/* Forks and execs cmd with "{connection_file}" replaced by conn_file: its own session
 * and process group (setsid), stdin from /dev/null, stdout and stderr inherited,
 * every other descriptor closed, the signal mask and dispositions reset. On success
 * *pid is the kernel's pid (and process group). On failure returns a negative errno
 * and sets *err to a message the caller owns ("failed to start kernel: /x: No such
 * file or directory"). */
int kernel_spawn(const struct kernel_cmd *cmd, const char *conn_file, pid_t *pid, char **err);

/* Replaces every "{connection_file}" in s by conn_file; returns a new string the
 * caller owns. */
char *kernel_format_arg(const char *s, const char *conn_file);

#endif
