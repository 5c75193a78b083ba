/* A runtime's own disk of a fixed size (the profile's disk_mb): an ext4 image
 * loop-mounted at STATE/disk, holding the overlay's upper layer and /content. Needs
 * root (loop devices); see docs/sandbox.md. */
#ifndef LABBOOK_SANDBOX_DISK_H
#define LABBOOK_SANDBOX_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/* STATE/disk, where the disk is mounted; caller frees. */
char *disk_mount_dir(const char *state_dir);

/* Whether STATE/disk is mounted (a file system other than STATE's). */
bool disk_is_mounted(const char *state_dir);

/* Mounts STATE/disk.img (made of `bytes`, sparse, with mkfs.ext4, the first time) at
 * STATE/disk; does nothing when it is mounted already. Returns 0, or a negative
 * errno with err saying which step failed. */
int disk_attach(const char *state_dir, uint64_t bytes, struct sandbox_error *err);

/* Unmounts STATE/disk if mounted (lazily: files still open keep it until closed); the
 * loop device goes with it. */
void disk_detach(const char *state_dir);

#endif
