/*
 * Tracked processes: output fds -> event log, stdin queue -> fd, reaping.
 * The table owns every struct proc, and each proc owns its Spawn request
 * (for listings), its fds and its log. Loop thread only.
 *
 * DESIGN
 * Output is read one chunk per wakeup and only while the process's unacked
 * events fit its window; beyond that the pipe fills and the process blocks
 * in write(), which is the point: nothing is lost while sbxd is away.
 * At reap, the output the process wrote before exiting is already in its
 * pipes: it is drained (regardless of the window) before the exit event,
 * so the exit event is always last. Then the fds are closed, and output
 * that orphaned grandchildren still write into inherited pipes (or the
 * pty) is not delivered. A pty is closed only then, never while its
 * process runs: closing the master hangs up the session (SIGHUP), and
 * so remaining members of the session get SIGHUP at reap, as from a
 * closed terminal.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "spawn.h"
#include "util.h"
#include "wire.h"

/* Reads per fd at reap: what a pipe or pty can hold, with margin, and a
 * bound against grandchildren that keep writing. */
#define PROC_DRAIN_READS 16
#define PROC_PTY_EOT 0x04

enum proc_stdin {
	STDIN_NONE, /* never had one: /dev/null */
	STDIN_OPEN,
	STDIN_CLOSING, /* close once the queue is written */
	STDIN_CLOSED,
};

struct proc {
	Sbx__Init__V1__Spawn *spec;
	struct evlog *log;
	pid_t pid;
	bool running;
	int32_t exit_code;
	int32_t exit_signal;
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	int pty_fd;
	int slave_fd; /* held so that the master never reads EIO */
	bool pty_eof; /* the master said EIO anyway: stop polling it */
	enum proc_stdin stdin_state;
	uint8_t *in_buf; /* queued input: in_buf[in_off..in_len) */
	size_t in_off;
	size_t in_len;
	size_t in_cap;
};

struct procs {
	struct proc **v;
	size_t n;
	size_t cap;
	struct procs_limits lim;
};

static void
fd_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
proc_free(struct proc *p)
{
	if (p == NULL) {
		return;
	}
	fd_close(&p->stdin_fd);
	fd_close(&p->stdout_fd);
	fd_close(&p->stderr_fd);
	fd_close(&p->pty_fd);
	fd_close(&p->slave_fd);
	free(p->in_buf);
	evlog_free(p->log);
	if (p->spec != NULL) {
		protobuf_c_message_free_unpacked(&p->spec->base, NULL);
	}
	free(p);
}

sbx_err
procs_new(struct procs **out, const struct procs_limits *lim)
{
	struct procs *t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return SBX_ENOMEM;
	}
	t->lim = *lim;
	*out = t;
	return SBX_OK;
}

void
procs_free(struct procs *t)
{
	if (t == NULL) {
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		proc_free(t->v[i]);
	}
	free(t->v);
	free(t);
}

size_t
procs_count(const struct procs *t)
{
	return t->n;
}

struct proc *
procs_at(struct procs *t, size_t i)
{
	return t->v[i];
}

struct proc *
procs_find(struct procs *t, const char *stream)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i]->spec->stream, stream) == 0) {
			return t->v[i];
		}
	}
	return NULL;
}

static struct proc *
procs_find_running(struct procs *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i]->running && t->v[i]->pid == pid) {
			return t->v[i];
		}
	}
	return NULL;
}

static sbx_err
spawn_check(struct procs *t, const Sbx__Init__V1__Spawn *spec, const char **why)
{
	if (spec->n_argv == 0) {
		*why = "argv is empty";
		return SBX_EINVAL;
	}
	if (!sbx_wire_stream_valid(spec->stream)) {
		*why = "stream must be 1-64 of [A-Za-z0-9._-]";
		return SBX_EINVAL;
	}
	if (spec->pty != NULL &&
	    (spec->pty->cols > 0xffff || spec->pty->rows > 0xffff)) {
		*why = "pty size out of range";
		return SBX_EINVAL;
	}
	if (procs_find(t, spec->stream) != NULL) {
		*why = "stream already in use";
		return SBX_EEXIST;
	}
	if (t->n >= t->lim.max_procs) {
		*why = "too many processes";
		return SBX_ELIMIT;
	}
	return SBX_OK;
}

/* Everything that can fail for lack of memory, before the fork: once the
 * child runs it must be tracked. */
static sbx_err
proc_prepare(struct procs *t, struct proc **out)
{
	struct proc **v;
	struct proc *p;
	size_t cap;

	if (t->n == t->cap) {
		cap = t->cap != 0 ? t->cap * 2 : 16;
		if ((v = realloc(t->v, cap * sizeof(*v))) == NULL) {
			return SBX_ENOMEM;
		}
		t->v = v;
		t->cap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return SBX_ENOMEM;
	}
	p->stdin_fd = p->stdout_fd = p->stderr_fd = p->pty_fd = -1;
	p->slave_fd = -1;
	p->log = evlog_new(t->lim.window_bytes, t->lim.retain_bytes);
	if (p->log == NULL) {
		proc_free(p);
		return SBX_ENOMEM;
	}
	*out = p;
	return SBX_OK;
}

sbx_err
procs_spawn(struct procs *t, Sbx__Init__V1__Spawn *spec, pid_t *pid, char *why,
	    size_t why_len)
{
	struct spawn_io io;
	const char *reason = "out of memory";
	struct proc *p = NULL;
	sbx_err rv;

	if ((rv = spawn_check(t, spec, &reason)) != SBX_OK ||
	    (rv = proc_prepare(t, &p)) != SBX_OK) {
		snprintf(why, why_len, "%s", reason);
		goto out;
	}
	if ((rv = spawn_start(spec, &p->pid, &io, why, why_len)) != SBX_OK) {
		goto out;
	}
	p->spec = spec;
	p->running = true;
	p->stdin_fd = io.stdin_fd;
	p->stdout_fd = io.stdout_fd;
	p->stderr_fd = io.stderr_fd;
	p->pty_fd = io.pty_fd;
	p->slave_fd = io.slave_fd;
	p->stdin_state =
		(io.stdin_fd >= 0 || io.pty_fd >= 0) ? STDIN_OPEN : STDIN_NONE;
	t->v[t->n++] = p;
	*pid = p->pid;
	log_info("SBX-INIT-SPAWNED", "stream=%s pid=%d pty=%d", spec->stream,
		 (int) p->pid, p->pty_fd >= 0);
	p = NULL;
out:
	proc_free(p);
	return rv;
}

/* ---- output ---- */

/*
 * Read one chunk of *FD into an event of KIND. Returns true if data came
 * and more may follow; false on EAGAIN, and at the end of the output
 * (end of file, or EIO from a pty master), after which a pipe is closed
 * and a pty no longer read until reap.
 */
static bool
proc_read_once(struct proc *p, int *fd, enum evlog_kind kind)
{
	struct evlog_event *ev;
	ssize_t n;

	if (evlog_output_begin(p->log, kind, PROC_READ_MAX, &ev) != SBX_OK) {
		/* Out of memory: leave the data in the pipe for later. */
		log_error("SBX-INIT-NOMEM", "stream=%s what=output",
			  p->spec->stream);
		return false;
	}
	while ((n = read(*fd, ev->data, PROC_READ_MAX)) < 0 && errno == EINTR) {
	}
	if (n > 0) {
		evlog_output_commit(p->log, ev, (size_t) n, sbx_clock_ms());
		return true;
	}
	evlog_output_commit(p->log, ev, 0, 0);
	if (n < 0 && errno == EAGAIN) {
		return false;
	}
	if (fd == &p->pty_fd) {
		p->pty_eof = true;
	} else {
		fd_close(fd);
	}
	return false;
}

static void
proc_drain(struct proc *p, int *fd, enum evlog_kind kind)
{
	for (int i = 0; i < PROC_DRAIN_READS && *fd >= 0; i++) {
		if (!proc_read_once(p, fd, kind)) {
			break;
		}
	}
}

/* ---- input ---- */

static void
proc_input_stop(struct proc *p)
{
	if (p->stdin_fd >= 0) {
		fd_close(&p->stdin_fd);
	}
	if (p->stdin_state != STDIN_NONE) {
		p->stdin_state = STDIN_CLOSED;
	}
	p->in_off = p->in_len = 0;
}

static int
proc_input_fd(const struct proc *p)
{
	return p->pty_fd >= 0 ? p->pty_fd : p->stdin_fd;
}

static void
proc_write_input(struct proc *p)
{
	int fd = proc_input_fd(p);
	ssize_t n;

	while (fd >= 0 && p->in_off < p->in_len) {
		n = write(fd, p->in_buf + p->in_off, p->in_len - p->in_off);
		if (n > 0) {
			p->in_off += (size_t) n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return;
		} else {
			/* EPIPE: the process closed its stdin. */
			proc_input_stop(p);
			return;
		}
	}
	p->in_off = p->in_len = 0;
	if (p->stdin_state == STDIN_CLOSING) {
		/* A pty stays open for output; its EOT was in the queue. */
		if (p->stdin_fd >= 0) {
			fd_close(&p->stdin_fd);
		}
		p->stdin_state = STDIN_CLOSED;
	}
}

static sbx_err
proc_input_check(const struct proc *p, const char **why)
{
	if (!p->running) {
		*why = "process has ended";
		return SBX_ESTATE;
	}
	switch (p->stdin_state) {
	case STDIN_NONE:
		*why = "stdin is not open (spawn without stdin)";
		return SBX_ESTATE;
	case STDIN_CLOSING:
	case STDIN_CLOSED:
		*why = "stdin is closed";
		return SBX_ESTATE;
	case STDIN_OPEN:
		break;
	}
	return SBX_OK;
}

static sbx_err
proc_enqueue(struct proc *p, const uint8_t *data, size_t len)
{
	size_t pending = p->in_len - p->in_off, cap;
	uint8_t *buf;

	if (p->in_off > 0) {
		memmove(p->in_buf, p->in_buf + p->in_off, pending);
		p->in_off = 0;
		p->in_len = pending;
	}
	if (pending + len > p->in_cap) {
		cap = p->in_cap != 0 ? p->in_cap : 4096;
		while (cap < pending + len) {
			cap *= 2;
		}
		if ((buf = realloc(p->in_buf, cap)) == NULL) {
			return SBX_ENOMEM;
		}
		p->in_buf = buf;
		p->in_cap = cap;
	}
	if (len > 0) {
		memcpy(p->in_buf + p->in_len, data, len);
	}
	p->in_len += len;
	return SBX_OK;
}

sbx_err
proc_input(struct proc *p, const uint8_t *data, size_t len, const char **why)
{
	sbx_err rv;

	if ((rv = proc_input_check(p, why)) != SBX_OK) {
		return rv;
	}
	if (len > PROC_INPUT_MAX - (p->in_len - p->in_off)) {
		*why = "stdin queue full (1 MiB)";
		return SBX_ELIMIT;
	}
	if ((rv = proc_enqueue(p, data, len)) != SBX_OK) {
		*why = "out of memory";
		return rv;
	}
	proc_write_input(p);
	return SBX_OK;
}

sbx_err
proc_close_stdin(struct proc *p, const char **why)
{
	static const uint8_t eot = PROC_PTY_EOT;
	sbx_err rv;

	if ((rv = proc_input_check(p, why)) != SBX_OK) {
		return rv;
	}
	/* A pty has no half-close: EOT makes the line discipline report
	 * end of file to a reader in canonical mode. */
	if (p->pty_fd >= 0 && (rv = proc_enqueue(p, &eot, 1)) != SBX_OK) {
		*why = "out of memory";
		return rv;
	}
	p->stdin_state = STDIN_CLOSING;
	proc_write_input(p);
	return SBX_OK;
}

/* ---- signals, size ---- */

sbx_err
proc_signal(struct proc *p, int sig, const char **why)
{
	int err;

	if (sig <= 0 || sig > SIGRTMAX) {
		*why = "invalid signal number";
		return SBX_EINVAL;
	}
	if (!p->running) {
		*why = "process has ended";
		return SBX_ESTATE;
	}
	/* The process leads its own group; if it left it (setsid, setpgid),
	 * signal the process alone. */
	if (kill(-p->pid, sig) == 0 ||
	    (errno == ESRCH && kill(p->pid, sig) == 0)) {
		return SBX_OK;
	}
	err = errno;
	*why = strerror(err);
	return sbx_err_from_errno(err);
}

sbx_err
proc_resize(struct proc *p, const Sbx__V1__PtySize *sz, const char **why)
{
	struct winsize ws;

	if (p->spec->pty == NULL) {
		*why = "not a pty";
		return SBX_ESTATE;
	}
	if (!p->running || p->pty_fd < 0) {
		*why = "process has ended";
		return SBX_ESTATE;
	}
	if (sz == NULL || sz->cols == 0 || sz->rows == 0 || sz->cols > 0xffff ||
	    sz->rows > 0xffff) {
		*why = "pty size out of range";
		return SBX_EINVAL;
	}
	memset(&ws, 0, sizeof(ws));
	ws.ws_col = (unsigned short) sz->cols;
	ws.ws_row = (unsigned short) sz->rows;
	if (ioctl(p->pty_fd, TIOCSWINSZ, &ws) != 0) {
		*why = "TIOCSWINSZ failed";
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

/* ---- poll ---- */

static size_t
pollfd_add(struct pollfd *pfd, enum proc_fd_role *roles, size_t n, int fd,
	   short events, enum proc_fd_role role)
{
	if (fd < 0 || events == 0) {
		return n;
	}
	pfd[n].fd = fd;
	pfd[n].events = events;
	pfd[n].revents = 0;
	roles[n] = role;
	return n + 1;
}

size_t
proc_pollfds(const struct proc *p, struct pollfd *pfd, enum proc_fd_role *roles)
{
	short in = evlog_window_open(p->log) ? POLLIN : 0;
	short out = p->in_off < p->in_len ? POLLOUT : 0;
	short pty = (short) ((p->pty_eof ? 0 : in) | out);
	size_t n = 0;

	if (!p->running) {
		return 0;
	}
	n = pollfd_add(pfd, roles, n, p->stdout_fd, in, PROC_FD_STDOUT);
	n = pollfd_add(pfd, roles, n, p->stderr_fd, in, PROC_FD_STDERR);
	n = pollfd_add(pfd, roles, n, p->pty_fd, pty, PROC_FD_PTY);
	n = pollfd_add(pfd, roles, n, p->stdin_fd, out, PROC_FD_STDIN);
	return n;
}

void
proc_on_poll(struct proc *p, enum proc_fd_role role, short revents)
{
	short readable = POLLIN | POLLHUP | POLLERR;

	switch (role) {
	case PROC_FD_STDOUT:
		if ((revents & readable) != 0 && p->stdout_fd >= 0) {
			(void) proc_read_once(p, &p->stdout_fd, EVLOG_STDOUT);
		}
		break;
	case PROC_FD_STDERR:
		if ((revents & readable) != 0 && p->stderr_fd >= 0) {
			(void) proc_read_once(p, &p->stderr_fd, EVLOG_STDERR);
		}
		break;
	case PROC_FD_PTY:
		if ((revents & POLLOUT) != 0) {
			proc_write_input(p);
		}
		if ((revents & readable) != 0 && !p->pty_eof &&
		    evlog_window_open(p->log)) {
			(void) proc_read_once(p, &p->pty_fd, EVLOG_PTY);
		}
		break;
	case PROC_FD_STDIN:
		if ((revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
			proc_write_input(p);
		}
		break;
	}
}

/* ---- reaping ---- */

static void
proc_ended(struct proc *p, int status)
{
	p->running = false;
	if (WIFSIGNALED(status)) {
		p->exit_code = -1;
		p->exit_signal = WTERMSIG(status);
	} else {
		p->exit_code = WEXITSTATUS(status);
		p->exit_signal = 0;
	}
	proc_drain(p, &p->stdout_fd, EVLOG_STDOUT);
	proc_drain(p, &p->stderr_fd, EVLOG_STDERR);
	proc_drain(p, &p->pty_fd, EVLOG_PTY);
	evlog_append_exit(p->log, p->exit_code, p->exit_signal, sbx_clock_ms());
	proc_input_stop(p);
	fd_close(&p->stdout_fd);
	fd_close(&p->stderr_fd);
	fd_close(&p->pty_fd);
	fd_close(&p->slave_fd);
	free(p->in_buf);
	p->in_buf = NULL;
	p->in_cap = 0;
	log_info("SBX-INIT-EXITED", "stream=%s pid=%d code=%d signal=%d",
		 p->spec->stream, (int) p->pid, (int) p->exit_code,
		 (int) p->exit_signal);
}

void
procs_reap(struct procs *t)
{
	struct proc *p;
	int status;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR) {
			continue;
		}
		if (pid <= 0) {
			break; /* none left that exited, or no children */
		}
		if ((p = procs_find_running(t, pid)) != NULL) {
			proc_ended(p, status);
		} else {
			log_debug("SBX-INIT-REAPED", "pid=%d", (int) pid);
		}
	}
}

void
procs_forget(struct procs *t, struct proc *p)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i] == p) {
			memmove(&t->v[i], &t->v[i + 1],
				(t->n - i - 1) * sizeof(*t->v));
			t->n--;
			proc_free(p);
			return;
		}
	}
}

void
procs_kill_all(struct procs *t)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i]->running) {
			(void) kill(-t->v[i]->pid, SIGKILL);
			(void) kill(t->v[i]->pid, SIGKILL);
		}
	}
}

/* ---- accessors ---- */

struct evlog *
proc_log(struct proc *p)
{
	return p->log;
}

const char *
proc_stream(const struct proc *p)
{
	return p->spec->stream;
}

void
proc_view(const struct proc *p, struct proc_view *v)
{
	v->spec = p->spec;
	v->pid = p->pid;
	v->running = p->running;
	v->exit_code = p->exit_code;
	v->exit_signal = p->exit_signal;
}
