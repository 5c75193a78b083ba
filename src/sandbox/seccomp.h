/* The syscall filter of sandboxed kernels: built with libseccomp in the parent (where
 * allocating is safe), installed in the child just before exec with one prctl. */
#ifndef LABBOOK_SANDBOX_SECCOMP_H
#define LABBOOK_SANDBOX_SECCOMP_H

#include <stddef.h>

#include "sandbox/sandbox.h"

/* A compiled BPF program (struct sock_filter[]), owned by whoever holds it. */
struct seccomp_filter_prog {
    void *insns;
    unsigned short len; /* instructions */
};

/* Builds the deny-list filter (docs/sandbox.md lists it). Returns 0 with *out to free
 * with seccomp_filter_free(), or a negative errno with err set. */
int seccomp_filter_build(struct seccomp_filter_prog *out, struct sandbox_error *err);

/* Installs p on the calling thread; async-signal-safe (fork children may call it).
 * no_new_privs must be set first. Returns 0 or a negative errno. */
int seccomp_filter_install(const struct seccomp_filter_prog *p);

void seccomp_filter_free(struct seccomp_filter_prog *p);

/* The names of the syscalls the filter refuses (for docs and tests). */
extern const char *const seccomp_filter_denied[];

#endif
