/* Archives unpacked into the drive with libarchive, on the thread pool: zip, tar
 * (plain, gzip, bzip2, xz, zstd) and 7z, with safety rules (no absolute paths, no
 * "..", no symlinks, devices, FIFOs or setuid bits, hard links only within the
 * archive) and limits (total size, entries, entry size, compression ratio, quota).
 * Everything lands in a hidden temporary folder first and is renamed into place at
 * the end, so a failed extraction leaves nothing behind. See docs/drive.md. */
#ifndef LABBOOK_HUB_EXTRACT_H
#define LABBOOK_HUB_EXTRACT_H

#include <stdbool.h>
#include <stdint.h>

struct hub;
struct http_req;
struct drive;
struct user;

/* Limits of one extraction; 0 means none. */
struct extract_limits {
    int64_t max_bytes, max_entries, max_entry, max_ratio;
    int64_t quota_free; /* bytes the drive may still take; < 0: no quota */
    const bool *cancel; /* when set and true, the extraction stops (hub shutdown) */
};

/* Progress and result of one extraction; filled by extract_run. */
struct extract_result {
    int64_t entries, bytes; /* updated as it goes (read with __atomic_load_n) */
    char error[512];        /* set when it fails */
};

/* Unpacks the archive read from archive_fd (from its start) into the folder to_fd,
 * through a temporary folder tmp_name made in to_fd: entries are written there, then
 * moved into to_fd (merging into folders that exist, replacing files) once all are
 * in. Before the first move, a marker "<tmp_name>.done" (with the counts) is made
 * durable beside the folder, so that a crash during the moves can be finished by
 * extract_recover_dir. Blocking. Returns 0, or a negative errno with res->error saying
 * which rule or limit refused the archive; then nothing of it is left in to_fd. */
int extract_run(int archive_fd, int to_fd, const char *tmp_name, const struct extract_limits *lim,
                struct extract_result *res);

/* After a crash of an extraction into to_fd through tmp_name: when its marker is
 * there, finishes the moves (res gets the counts the marker kept) and returns 1;
 * otherwise returns 0. Either way the temporary folder and the marker are removed
 * (never following a link). A negative errno when the moves could not be finished.
 * Blocking. */
int extract_recover_dir(int to_fd, const char *tmp_name, struct extract_result *res);

/* Checks one entry's path and makes it relative ("./a/b" is "a/b"). Returns 0 and a
 * new string in *out, or -EINVAL (absolute, "..", empty, NUL, too long). Pure. */
int extract_entry_path(const char *name, char **out);

/* Where an archive that came by tus waits while it is extracted: DATA/uploads/<user>
 * (dir), its upload id, and the folder and name the upload asked for (where it is kept
 * in the drive if the extraction is cut off by the server). */
struct extract_upload {
    const char *dir, *id, *path, *filename;
};

/* Starts extracting the archive open on archive_fd (taken over) into the folder to
 * (normalized, created if missing) of u's drive; up, when not NULL, is the tus upload
 * the archive is (copied). The job is recorded in the store, so that the next hub
 * reports it after a crash. Returns 0 with the job's id in id_out, or a negative errno
 * with *err (caller frees); -EAGAIN when the user has too many extractions running. */
int extract_start(struct hub *h, const struct user *u, int archive_fd, const char *to,
                  const struct extract_upload *up, char id_out[64], char **err);

/* At start, before the loop runs: loads the recorded jobs; each one that a crash cut
 * off is finished (its marker is there: the target is complete) or undone (the target
 * as it was, the job failed with the reason, an uploaded archive kept in the drive).
 * Blocking. */
void extract_recover(struct hub *h);

/* POST /api/drive/extract, GET /api/drive/extract (the user's jobs) and
 * GET /api/drive/extract/{id} (rest after "/extract"). */
void extract_api(struct hub *h, struct http_req *req, const char *rest);
/* Frees the finished jobs at shutdown (running ones finish first). */
void extract_free_all(struct drive *d);

#endif
