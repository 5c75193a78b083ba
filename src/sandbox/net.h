/* A runtime's own network (docs/sandbox.md, "Network"): every sandbox has a network
 * namespace of its own; with outbound access it gets, as root, a veth pair to the host
 * with addresses derived from its id slot and one nftables table that masquerades its
 * traffic and drops whatever it sends to the host itself or to another runtime;
 * rootless, a slirp4netns that cannot reach the host's loopback. */
#ifndef LABBOOK_SANDBOX_NET_H
#define LABBOOK_SANDBOX_NET_H

#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* The runtimes' addresses: runtime slot s (id_base = 100000 + 65536 s) gets the /31
 * NET_SUBNET + 2 s (the host's end, its gateway) and + 2 s + 1 (its eth0). Fixed
 * here, not taken from the hub: the host routes these addresses. */
#define NET_SUBNET_A 10
#define NET_SUBNET_B 213
#define NET_SUBNET_C 128
#define NET_SUBNET_BITS 19 /* 10.213.128.0/19: 4096 slots of two addresses */
#define NET_IFPREFIX "lbk" /* host ends are lbk<slot> */

/* The slot of a sandbox whose root is host uid id_base (0..4095), or -1. */
int net_slot(uint32_t id_base);

/* Host-order IPv4 addresses of slot's host end and of the runtime's eth0. */
uint32_t net_host_addr(int slot);
uint32_t net_runtime_addr(int slot);

/* As root, for the sandbox whose init is pid (in its new network namespace, not yet
 * running): makes sure the host's nftables table and IPv4 forwarding are in place,
 * then creates the veth pair lbk<slot> (host) / eth0 (in pid's namespace) and gives
 * the host end its address. The child configures eth0 itself. Returns 0 or a
 * negative errno with err set. */
int net_attach_root(pid_t pid, int slot, struct sandbox_error *err);

/* Rootless: starts slirp4netns for pid's namespace (tap0, host loopback unreachable)
 * and waits until it is ready. *helper is its pid (reap it), *exit_fd the fd whose
 * closing ends it. Returns 0, -ENOENT when slirp4netns is not installed, -EACCES when
 * /dev/net/tun is not the caller's to use, or another negative errno, with err set. */
int net_attach_rootless(pid_t pid, pid_t *helper, int *exit_fd, struct sandbox_error *err);

#endif
