/*
 * fork -> child setup -> exec, reporting failure through a pipe.
 *
 * sbx-init has NNG's threads, so the child of fork() may only make
 * async-signal-safe calls until it execs: every array and string it needs
 * is built before fork (struct child_plan), and a failing step writes
 * {step, errno} to a close-on-exec pipe and _exit()s. The parent reads
 * that pipe: end of file means exec succeeded.
 *
 * A pty's slave is opened here, from its master (TIOCGPTPEER: no path to
 * look up), and sbx-init keeps it open until the process is reaped. A
 * master whose slave is closed by everyone reads EIO, and closing the
 * master then would hang up the session: a process that closes its stdio
 * just before exiting (coreutils does) would die of SIGHUP instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "spawn.h"

/* glibc's own default when PATH is unset. */
#define SPAWN_DEFAULT_PATH "/bin:/usr/bin"
#define SPAWN_PTY_COLS 80
#define SPAWN_PTY_ROWS 24
#define SPAWN_TTY_MAX 64

/* The child's steps, named in the error sent to sbxd. */
enum child_step {
	STEP_SIGNALS = 1,
	STEP_SETSID,
	STEP_CTTY,
	STEP_DEVNULL,
	STEP_DUP,
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CHDIR,
	STEP_FDS,
	STEP_EXEC,
};

struct child_report {
	int32_t step;
	int32_t err;
};

/* Everything the child needs, prepared before fork. */
struct child_plan {
	char **argv; /* NULL-terminated, strings borrowed from the spec */
	char **envp;
	const char *path; /* the PATH to search for argv[0] */
	const char *cwd;
	int tty_fd; /* the pty slave, or -1 */
	bool switch_ids;
	uid_t uid;
	gid_t gid;
	int in_fd; /* the child's ends; in_fd -1 means /dev/null */
	int out_fd;
	int err_fd;
	int report_fd;
};

/* Both ends of every pipe of one spawn; -1 where unused. */
struct spawn_fds {
	int parent_in, parent_out, parent_err, master, slave;
	int child_in, child_out, child_err;
	int report_r, report_w;
};

/* ---- child side: async-signal-safe only ---- */

static _Noreturn void
child_fail(const struct child_plan *plan, enum child_step step, int err)
{
	struct child_report rep = {.step = (int32_t) step, .err = err};
	ssize_t n;

	/* If the parent is gone there is nobody to tell. */
	n = write(plan->report_fd, &rep, sizeof(rep));
	(void) n;
	_exit(127);
}

static bool
has_slash(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '/') {
			return true;
		}
	}
	return false;
}

/* Try argv[0] in each directory of plan->path, as execvpe() does, but
 * with the PATH of the new environment rather than sbx-init's own. */
static int
child_exec(const struct child_plan *plan)
{
	const char *file = plan->argv[0], *p = plan->path, *end;
	size_t flen = strlen(file), dlen;
	bool eacces = false;
	char buf[PATH_MAX];
	int err = ENOENT;

	if (flen == 0) {
		return ENOENT;
	}
	if (has_slash(file)) {
		execve(file, plan->argv, plan->envp);
		return errno;
	}
	for (;; p = end + 1) {
		for (end = p; *end != '\0' && *end != ':'; end++) {
		}
		dlen = (size_t) (end - p);
		if (dlen + 1 + flen < sizeof(buf)) {
			/* An empty entry is the current directory (POSIX). */
			memcpy(buf, p, dlen);
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(dlen != 0 ? buf : file, plan->argv, plan->envp);
			err = errno;
			if (err == EACCES) {
				eacces = true;
			} else if (err != ENOENT && err != ENOTDIR &&
				   err != ESTALE && err != ENODEV &&
				   err != ETIMEDOUT) {
				return err;
			}
		}
		if (*end == '\0') {
			break;
		}
	}
	return eacces ? EACCES : err;
}

static void
child_signals(const struct child_plan *plan)
{
	struct sigaction sa;
	sigset_t none;

	/* Ignored dispositions and the blocked mask survive exec. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		/* SIGKILL, SIGSTOP and glibc's own signals refuse: fine. */
		(void) sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
		child_fail(plan, STEP_SIGNALS, errno);
	}
}

static void
child_stdio(const struct child_plan *plan)
{
	int in = plan->in_fd;

	if (plan->tty_fd >= 0) {
		/* The new session's controlling terminal. */
		if (ioctl(plan->tty_fd, TIOCSCTTY, 0) != 0) {
			child_fail(plan, STEP_CTTY, errno);
		}
		if (dup2(plan->tty_fd, 0) < 0 || dup2(plan->tty_fd, 1) < 0 ||
		    dup2(plan->tty_fd, 2) < 0) {
			child_fail(plan, STEP_DUP, errno);
		}
		return;
	}
	if (in < 0 && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		child_fail(plan, STEP_DEVNULL, errno);
	}
	/* Every source fd is above 2 (see spawn.h), so no dup2 here can
	 * overwrite another's source. */
	if (dup2(in, 0) < 0 || dup2(plan->out_fd, 1) < 0 ||
	    dup2(plan->err_fd, 2) < 0) {
		child_fail(plan, STEP_DUP, errno);
	}
}

static void
child_ids(const struct child_plan *plan)
{
	if (!plan->switch_ids) {
		return;
	}
	/* Raw syscalls: glibc's wrappers synchronise every thread of the
	 * process, machinery that has no business after fork. Groups first,
	 * then gid, then uid, which drops the right to change the others. */
	if (syscall(SYS_setgroups, 0, NULL) != 0) {
		child_fail(plan, STEP_SETGROUPS, errno);
	}
	if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) != 0) {
		child_fail(plan, STEP_SETGID, errno);
	}
	if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) != 0) {
		child_fail(plan, STEP_SETUID, errno);
	}
}

static void
child_close_fds(const struct child_plan *plan)
{
	struct rlimit rl;

	/* Mark rather than close: the report pipe must live until exec. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		child_fail(plan, STEP_FDS, errno);
	}
	for (rlim_t fd = 3; fd < rl.rlim_cur && fd < 1048576; fd++) {
		(void) fcntl((int) fd, F_SETFD, FD_CLOEXEC);
	}
}

static _Noreturn void
child_run(const struct child_plan *plan)
{
	child_signals(plan);
	if (setsid() < 0) {
		child_fail(plan, STEP_SETSID, errno);
	}
	child_stdio(plan);
	/* Ids before chdir: the new user may enter directories (its own
	 * 0700 home) that sbx-init, without CAP_DAC_OVERRIDE, may not. */
	child_ids(plan);
	if (chdir(plan->cwd) != 0) {
		child_fail(plan, STEP_CHDIR, errno);
	}
	child_close_fds(plan);
	child_fail(plan, STEP_EXEC, child_exec(plan));
}

/* ---- parent side ---- */

static void
fd_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
fds_init(struct spawn_fds *f)
{
	f->parent_in = f->parent_out = f->parent_err = f->master = -1;
	f->slave = -1;
	f->child_in = f->child_out = f->child_err = -1;
	f->report_r = f->report_w = -1;
}

static void
fds_close_child(struct spawn_fds *f)
{
	fd_close(&f->child_in);
	fd_close(&f->child_out);
	fd_close(&f->child_err);
	fd_close(&f->report_w);
}

static void
fds_close_all(struct spawn_fds *f)
{
	fds_close_child(f);
	fd_close(&f->report_r);
	fd_close(&f->parent_in);
	fd_close(&f->parent_out);
	fd_close(&f->parent_err);
	fd_close(&f->master);
	fd_close(&f->slave);
}

/* A close-on-exec pipe whose PARENT_END is also non-blocking. */
static int
pipe_open(int *child_end, int *parent_end, bool parent_reads)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0) {
		return errno;
	}
	*parent_end = parent_reads ? p[0] : p[1];
	*child_end = parent_reads ? p[1] : p[0];
	if (fcntl(*parent_end, F_SETFL, O_NONBLOCK) != 0) {
		return errno;
	}
	return 0;
}

/* The slave by name, where TIOCGPTPEER (Linux 4.13) is not available. */
static int
pty_open_slave_by_name(int master)
{
	char name[SPAWN_TTY_MAX];

	if (ptsname_r(master, name, sizeof(name)) != 0) {
		return -1;
	}
	return open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static int
pty_open(struct spawn_fds *f, const Sbx__V1__PtySize *size)
{
	struct winsize ws;

	memset(&ws, 0, sizeof(ws));
	ws.ws_col = (unsigned short) (size->cols != 0 ? size->cols
						      : SPAWN_PTY_COLS);
	ws.ws_row = (unsigned short) (size->rows != 0 ? size->rows
						      : SPAWN_PTY_ROWS);
	f->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (f->master < 0 || grantpt(f->master) != 0 ||
	    unlockpt(f->master) != 0 ||
	    ioctl(f->master, TIOCSWINSZ, &ws) != 0 ||
	    fcntl(f->master, F_SETFL, O_NONBLOCK) != 0) {
		return errno;
	}
	f->slave = ioctl(f->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (f->slave < 0) {
		/* An old kernel, or a seccomp filter that knows no better. */
		f->slave = pty_open_slave_by_name(f->master);
	}
	return f->slave < 0 ? errno : 0;
}

static int
fds_open(struct spawn_fds *f, const Sbx__Init__V1__Spawn *spec)
{
	int report[2];
	int err;

	if (pipe2(report, O_CLOEXEC) != 0) {
		return errno;
	}
	f->report_r = report[0];
	f->report_w = report[1];
	if (spec->pty != NULL) {
		return pty_open(f, spec->pty);
	}
	if ((spec->stdin &&
	     (err = pipe_open(&f->child_in, &f->parent_in, false)) != 0) ||
	    (err = pipe_open(&f->child_out, &f->parent_out, true)) != 0 ||
	    (err = pipe_open(&f->child_err, &f->parent_err, true)) != 0) {
		return err;
	}
	return 0;
}

static const char *
env_path(const Sbx__Init__V1__Spawn *spec)
{
	for (size_t i = 0; i < spec->n_env; i++) {
		if (strncmp(spec->env[i], "PATH=", 5) == 0) {
			return spec->env[i] + 5;
		}
	}
	return SPAWN_DEFAULT_PATH;
}

static int
plan_build(struct child_plan *plan, const Sbx__Init__V1__Spawn *spec,
	   const struct spawn_fds *f)
{
	memset(plan, 0, sizeof(*plan));
	plan->argv = calloc(spec->n_argv + 1, sizeof(char *));
	plan->envp = calloc(spec->n_env + 1, sizeof(char *));
	if (plan->argv == NULL || plan->envp == NULL) {
		return ENOMEM;
	}
	memcpy(plan->argv, spec->argv, spec->n_argv * sizeof(char *));
	memcpy(plan->envp, spec->env, spec->n_env * sizeof(char *));
	plan->path = env_path(spec);
	plan->cwd = spec->cwd[0] != '\0' ? spec->cwd : "/";
	plan->tty_fd = f->slave;
	plan->uid = (uid_t) spec->uid;
	plan->gid = (gid_t) spec->gid;
	plan->switch_ids = plan->uid != getuid() || plan->gid != getgid();
	plan->in_fd = f->child_in;
	plan->out_fd = f->child_out;
	plan->err_fd = f->child_err;
	plan->report_fd = f->report_w;
	return 0;
}

static sbx_err
err_status(int err)
{
	switch (err) {
	case ENOENT:
		return SBX_ENOTFOUND;
	case EACCES:
		return SBX_EPERM;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EAGAIN:
		return SBX_ELIMIT;
	default:
		return SBX_EINTERNAL;
	}
}

static void
report_explain(const struct child_report *rep, const struct child_plan *plan,
	       char *why, size_t why_len)
{
	const char *what = strerror(rep->err);

	switch ((enum child_step) rep->step) {
	case STEP_EXEC:
		snprintf(why, why_len, "exec %s: %s", plan->argv[0], what);
		break;
	case STEP_CHDIR:
		snprintf(why, why_len, "chdir %s: %s", plan->cwd, what);
		break;
	case STEP_SETUID:
		snprintf(why, why_len, "setuid %u: %s", (unsigned) plan->uid,
			 what);
		break;
	case STEP_SETGID:
		snprintf(why, why_len, "setgid %u: %s", (unsigned) plan->gid,
			 what);
		break;
	case STEP_SIGNALS:
	case STEP_SETSID:
	case STEP_CTTY:
	case STEP_DEVNULL:
	case STEP_DUP:
	case STEP_SETGROUPS:
	case STEP_FDS:
		snprintf(why, why_len, "child setup step %d: %s",
			 (int) rep->step, what);
		break;
	default: /* the step crossed a pipe: never trust it blindly */
		snprintf(why, why_len, "child setup failed: %s", what);
		break;
	}
}

/* Wait for the child's exec; on failure reap it and explain. */
static sbx_err
report_read(int fd, pid_t pid, const struct child_plan *plan, char *why,
	    size_t why_len)
{
	struct child_report rep;
	ssize_t n;
	int status;

	while ((n = read(fd, &rep, sizeof(rep))) < 0 && errno == EINTR) {
	}
	if (n == 0) {
		return SBX_OK;
	}
	/* The child exits right after reporting; reap it here so that the
	 * SIGCHLD loop never sees a process nobody tracks as failed. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (n != (ssize_t) sizeof(rep)) {
		snprintf(why, why_len, "spawn: lost the child's report");
		return SBX_EINTERNAL;
	}
	report_explain(&rep, plan, why, why_len);
	return err_status(rep.err);
}

sbx_err
spawn_start(const Sbx__Init__V1__Spawn *spec, pid_t *pid, struct spawn_io *io,
	    char *why, size_t why_len)
{
	struct child_plan plan = {0};
	struct spawn_fds f;
	sbx_err rv;
	pid_t child;
	int err;

	fds_init(&f);
	if ((err = fds_open(&f, spec)) != 0 ||
	    (err = plan_build(&plan, spec, &f)) != 0) {
		snprintf(why, why_len, "spawn setup: %s", strerror(err));
		rv = err_status(err);
		goto out;
	}
	if ((child = fork()) < 0) {
		err = errno;
		snprintf(why, why_len, "fork: %s", strerror(err));
		rv = err_status(err);
		goto out;
	}
	if (child == 0) {
		child_run(&plan);
	}
	fds_close_child(&f);
	if ((rv = report_read(f.report_r, child, &plan, why, why_len)) ==
	    SBX_OK) {
		*pid = child;
		io->stdin_fd = f.parent_in;
		io->stdout_fd = f.parent_out;
		io->stderr_fd = f.parent_err;
		io->pty_fd = f.master;
		io->slave_fd = f.slave;
		f.parent_in = f.parent_out = f.parent_err = -1;
		f.master = f.slave = -1;
	}
out:
	free(plan.argv);
	free(plan.envp);
	fds_close_all(&f);
	return rv;
}
