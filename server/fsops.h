/*
 * fsops: file operations inside one sandbox's root directory.
 *
 * Every path a caller gives is resolved with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) relative to the sandbox's root fd, so ".." and
 * symlinks (absolute or relative) never leave the sandbox, and /proc magic
 * links are refused. The final component of a path that is created, moved or
 * removed is handled with *at() calls on its resolved parent, never followed.
 * Objects on pseudo filesystems (proc, sysfs, cgroup, devpts, ...) are refused
 * with SBX_EPERM: sbxd must never write a sysctl because a sandbox asked.
 * Only regular files are read or written (a FIFO would block the caller).
 * A path naming what is created, moved or removed must end in a name: a
 * final "", ".", ".." or "/" is SBX_EINVAL (so "x/.." never removes x's
 * parent). Paths of FSOPS_PATH_MAX bytes or more are SBX_EINVAL.
 *
 * The calling thread runs with the sandbox user's fsuid/fsgid (fsops_creds),
 * so the kernel checks permissions as that user and new files belong to it.
 * Functions are reentrant; they run on sbxd's file worker threads.
 *
 * Every function that can fail writes a one-line reason into WHY (WHYLEN
 * bytes), such as "open /home/user/x: No such file or directory".
 */
#ifndef SBX_FSOPS_H
#define SBX_FSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define FSOPS_PATH_MAX 4096

/* Values are the wire FileType. */
enum fs_type {
	FS_UNSPECIFIED = 0,
	FS_FILE = 1,
	FS_DIRECTORY = 2,
	FS_SYMLINK = 3,
	FS_OTHER = 4,
};

/* Host ids of the sandbox's two users and how they look inside. */
struct fsops_ids {
	uid_t host_root_uid; /* shown as uid 0 "root" */
	gid_t host_root_gid;
	uid_t host_user_uid; /* shown as uid 1000 "user" */
	gid_t host_user_gid;
};

struct fsops_root {
	int root_fd;         /* directory fd of the sandbox's "/"; borrowed */
	const char *home;    /* the acting user's home inside, "/home/user" */
	struct fsops_ids ids;
	size_t max_chunk;    /* cap on bytes per read or write call */
	size_t max_entries;  /* cap on entries per list call */
	size_t max_list_bytes; /* cap on a list's names, paths and link
	                          targets together; 0: none */
};

struct fs_entry {
	char *name;           /* base name */
	char *path;           /* absolute inside the sandbox */
	char *symlink_target; /* NULL unless a symlink */
	enum fs_type type;
	enum fs_type target_type; /* for symlinks: what it points to */
	uint64_t size;
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid;  /* as seen inside: 0, 1000 or 65534 */
	uint32_t gid;
	const char *owner; /* "root", "user" or "nobody"; static */
	const char *group;
	int64_t mtime_ms;
};

/* Free the strings of E (E itself is the caller's). Accepts zeroed. */
void fs_entry_fini(struct fs_entry *e);

/* Free an array from fsops_list. */
void fs_entries_free(struct fs_entry *v, size_t n);

/*
 * Turn a caller's path into an absolute, lexically clean path inside the
 * sandbox: "" and "~" are HOME, "~/x" and relative paths are below HOME,
 * "." and ".." components and repeated slashes are folded ("/.." is "/").
 * *OUT is heap; the caller frees it. SBX_EINVAL if too long.
 */
SBX_NODISCARD sbx_err fsops_abspath(const char *home, const char *path,
                                    char **out, char *why, size_t whylen);

/*
 * Write LEN bytes of DATA at OFFSET into regular file PATH, creating it with
 * MODE (0 means 0644) if missing, truncating it first if TRUNCATE, creating
 * missing parents (0755) if MAKE_PARENTS. LEN above max_chunk is SBX_ELIMIT.
 * Like open(2), a final symlink is followed (inside the sandbox) to an
 * existing file; a dangling one is SBX_ENOTFOUND. *OUT describes the file
 * afterwards.
 */
SBX_NODISCARD sbx_err fsops_write(const struct fsops_root *r, const char *path,
                                  uint64_t offset, const void *data,
                                  size_t len, bool truncate, bool make_parents,
                                  uint32_t mode, struct fs_entry *out,
                                  char *why, size_t whylen);

/*
 * Read up to LENGTH bytes (0 or more than max_chunk means max_chunk) at
 * OFFSET of regular file PATH into BUF, which holds at least that many.
 * *N is the count read, *SIZE the file's size, *EOF whether the read reached
 * the end. SBX_ESTATE for a directory or other non-regular file.
 */
SBX_NODISCARD sbx_err fsops_read(const struct fsops_root *r, const char *path,
                                 uint64_t offset, size_t length, void *buf,
                                 size_t *n, uint64_t *size, bool *eof,
                                 char *why, size_t whylen);

/*
 * List directory PATH to DEPTH levels (0 and 1: its own entries), sorted by
 * path. Symlinks are listed, not descended; DEPTH is capped at 32, and
 * subdirectories the user cannot open are listed but not descended. More
 * than max_entries entries, or more than max_list_bytes of their strings,
 * is SBX_ELIMIT. *V is freed with fs_entries_free.
 */
SBX_NODISCARD sbx_err fsops_list(const struct fsops_root *r, const char *path,
                                 unsigned depth, struct fs_entry **v,
                                 size_t *n, char *why, size_t whylen);

/* Describe PATH without following a final symlink (its target's type goes
 * to target_type). */
SBX_NODISCARD sbx_err fsops_stat(const struct fsops_root *r, const char *path,
                                 struct fs_entry *out, char *why,
                                 size_t whylen);

/* Make directory PATH with MODE (0 means 0755); with PARENTS also the
 * missing parents. SBX_EEXIST if PATH exists. */
SBX_NODISCARD sbx_err fsops_mkdir(const struct fsops_root *r, const char *path,
                                  bool parents, uint32_t mode,
                                  struct fs_entry *out, char *why,
                                  size_t whylen);

/* Rename SRC to DST (replacing a file DST), creating DST's parents if
 * MAKE_PARENTS. A symlink SRC is moved itself. *OUT describes DST
 * afterwards. */
SBX_NODISCARD sbx_err fsops_move(const struct fsops_root *r, const char *src,
                                 const char *dst, bool make_parents,
                                 struct fs_entry *out, char *why,
                                 size_t whylen);

/* Remove PATH; a non-empty directory needs RECURSIVE (else SBX_ESTATE).
 * A symlink is removed, never followed. SBX_ENOTFOUND if missing. */
SBX_NODISCARD sbx_err fsops_remove(const struct fsops_root *r, const char *path,
                                   bool recursive, char *why, size_t whylen);

/*
 * Remove NAME below DIRFD and everything in it, as the calling thread's
 * credentials allow, without following symlinks or crossing into other
 * mounts. For cleaning up a dead sandbox's host directories. SBX_OK if NAME
 * does not exist. Best effort: removes what it can and returns the first
 * error. A directory holding a mount, or nested deeper than 256 levels
 * (SBX_ELIMIT), stays, and so do its parents.
 */
SBX_NODISCARD sbx_err fsops_rmtree_at(int dirfd, const char *name);

/*
 * Switch the calling thread's fsuid/fsgid to UID/GID (setfsuid is per
 * thread) and back with fsops_creds_leave. The thread's supplementary
 * groups are dropped (per thread, and not restored by leave) so that root's
 * group 0 grants nothing. SBX_EPERM if the switch did not take.
 */
SBX_NODISCARD sbx_err fsops_creds_enter(uid_t uid, gid_t gid);
void fsops_creds_leave(void);

#endif
