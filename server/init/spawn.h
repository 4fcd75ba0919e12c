/*
 * Fork and exec one process of the sandbox, nothing else: its fds, its
 * session, its ids, its directory. Loop thread only.
 */
#ifndef SBX_INIT_SPAWN_H
#define SBX_INIT_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "init.pb-c.h"

/* The fds sbx-init keeps of a spawned process, all non-blocking and
 * close-on-exec; -1 where there is none. */
struct spawn_io {
	int stdin_fd;  /* write end of the stdin pipe (SPEC stdin, no pty) */
	int stdout_fd; /* read ends of the output pipes (no pty) */
	int stderr_fd;
	int pty_fd;   /* the pty master: output and input */
	int slave_fd; /* the pty slave, kept open (see spawn.c) */
};

/*
 * Start SPEC (already validated: argv is not empty) in a new session, as
 * its uid and gid, in its cwd ("/" if empty), with exactly its env, the
 * program searched along the PATH of that env. Returns once the child has
 * exec'd or failed to. On success writes *PID and *IO. On error writes a
 * sentence for sbxd to WHY ("exec python4: No such file or directory"),
 * leaves no child behind and returns SBX_ENOTFOUND (ENOENT: no program,
 * no cwd), SBX_EPERM (EACCES), SBX_ELIMIT (out of fds, processes or
 * memory) or SBX_EINTERNAL.
 * The caller keeps fds 0, 1 and 2 open (on /dev/null if nothing else), so
 * that every fd made here is above them.
 */
SBX_NODISCARD sbx_err spawn_start(const Sbx__Init__V1__Spawn *spec, pid_t *pid,
				  struct spawn_io *io, char *why,
				  size_t why_len);

#endif
