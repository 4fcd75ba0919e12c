/*
 * sbx-init: PID 1 of a sandbox jail. It starts the sandbox's processes for
 * sbxd, relays their stdin and output, reaps every child, and keeps each
 * process's output until sbxd has stored it, so sandboxes survive a
 * restart of sbxd.
 *
 *   sbx-init --socket PATH [--peer-uid UID] [--window BYTES]
 *            [--retain BYTES] [--max-procs N] [--log-level LEVEL]
 *
 * One thread runs everything below with poll(); NNG has its own threads,
 * which touch nothing here but link.c's callbacks. The loop owns struct
 * init.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "down.h"
#include "events.h"
#include "init.h"
#include "link.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#define INIT_WINDOW_DEFAULT (1024 * 1024)
#define INIT_RETAIN_DEFAULT (256 * 1024)
#define INIT_MAX_PROCS_DEFAULT 1024
#define INIT_MAX_PROCS_LIMIT 65536
#define INIT_RECV_BURST 64 /* Downs per wakeup, so output keeps moving */
#define INIT_FIXED_FDS 4   /* signalfd, NNG recv, NNG send, watchdog */
#define OVERFLOWUID_PATH "/proc/sys/kernel/overflowuid"

/* The poll set, rebuilt each turn; sized once for max_procs. */
struct loop_fds {
	struct pollfd *pfd;
	enum proc_fd_role *roles;
	struct proc **procs;
	size_t cap;
};

/* ---- options ---- */

static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9') {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != '\n') || v < min ||
	    v > max) {
		return -1;
	}
	*out = (uint64_t) v;
	return 0;
}

/* sbxd is host root, which has no uid in the jail's user namespace: the
 * kernel shows it as the overflow uid. */
static int
read_overflow_uid(uint64_t *out)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(OVERFLOWUID_PATH, O_RDONLY | O_CLOEXEC)) < 0) {
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return -1;
	}
	buf[n] = '\0';
	return parse_u64(buf, 0, UINT32_MAX, out);
}

static void
usage(void)
{
	fprintf(stderr, "usage: sbx-init --socket PATH [--peer-uid UID] "
			"[--window BYTES]\n"
			"                [--retain BYTES] [--max-procs N] "
			"[--log-level LEVEL]\n");
}

static int
opts_set(struct init_opts *o, int c, const char *arg)
{
	uint64_t v = 0;

	switch (c) {
	case 's':
		o->socket_path = arg;
		return 0;
	case 'u':
		return parse_u64(arg, 0, UINT32_MAX, &o->peer_uid);
	case 'w':
		if (parse_u64(arg, 1, SIZE_MAX / 2, &v) == 0) {
			o->window_bytes = (size_t) v;
			return 0;
		}
		return -1;
	case 'r':
		if (parse_u64(arg, 0, SIZE_MAX / 2, &v) == 0) {
			o->retain_bytes = (size_t) v;
			return 0;
		}
		return -1;
	case 'm':
		if (parse_u64(arg, 1, INIT_MAX_PROCS_LIMIT, &v) == 0) {
			o->max_procs = (uint32_t) v;
			return 0;
		}
		return -1;
	case 'l':
		return (o->log_level = sbx_log_level_parse(arg)) < 0 ? -1 : 0;
	default:
		return -1;
	}
}

static int
opts_parse(struct init_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"peer-uid", required_argument, NULL, 'u'},
		{"window", required_argument, NULL, 'w'},
		{"retain", required_argument, NULL, 'r'},
		{"max-procs", required_argument, NULL, 'm'},
		{"log-level", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	bool have_uid = false;
	int c;

	o->window_bytes = INIT_WINDOW_DEFAULT;
	o->retain_bytes = INIT_RETAIN_DEFAULT;
	o->max_procs = INIT_MAX_PROCS_DEFAULT;
	o->log_level = SBX_LOG_NOTICE;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opts_set(o, c, optarg) != 0) {
			if (c != '?') {
				fprintf(stderr, "sbx-init: bad value: %s\n",
					optarg);
			}
			return -1;
		}
		have_uid = have_uid || c == 'u';
	}
	if (optind != argc || o->socket_path == NULL) {
		return -1;
	}
	if (!have_uid && read_overflow_uid(&o->peer_uid) != 0) {
		fprintf(stderr, "sbx-init: cannot read %s\n", OVERFLOWUID_PATH);
		return -1;
	}
	return 0;
}

/* ---- process setup ---- */

/* Keep 0, 1 and 2 open, so that no fd made later lands there and gets
 * confused with a child's stdio (see spawn.h). */
static sbx_err
fds_std_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
			continue;
		}
		/* Lower fds are open, so this lands on FD. */
		if (open("/dev/null", O_RDWR) != fd) {
			return SBX_EINTERNAL;
		}
	}
	return SBX_OK;
}

/*
 * Not dumpable: sandbox processes of the same uid can neither ptrace nor
 * read us. Subreaper: orphans come to us for reaping even when we are not
 * PID 1 (tests); PID 1 gets them anyway. Signals are blocked before NNG starts
 * its threads, which inherit the mask, so SIGCHLD always reaches the signalfd.
 */
static sbx_err
process_setup(struct init *in)
{
	struct sigaction ign;
	sigset_t set;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) ||
	    fds_std_open() != SBX_OK) {
		log_error("SBX-INIT-SETUP", "step=prctl/fds err=%s",
			  strerror(errno));
		return SBX_EINTERNAL;
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigaction(SIGPIPE, &ign, NULL) != 0 ||
	    sigaction(SIGHUP, &ign, NULL) != 0 ||
	    sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (in->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("SBX-INIT-SETUP", "step=signals err=%s",
			  strerror(errno));
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

static sbx_err
modules_open(struct init *in)
{
	struct procs_limits lim = {
		.window_bytes = in->opts.window_bytes,
		.retain_bytes = in->opts.retain_bytes,
		.max_procs = in->opts.max_procs,
	};
	sbx_err rv;

	if ((rv = procs_new(&in->procs, &lim)) != SBX_OK) {
		return rv;
	}
	if ((in->events = events_new()) == NULL) {
		return SBX_ENOMEM;
	}
	return link_open(&in->link, in->opts.socket_path, in->opts.peer_uid);
}

/* ---- the loop ---- */

/*
 * SIGTERM or SIGINT stops sbx-init. As PID 1 of the jail, only from
 * outside its pid namespace (the sender's pid reads as 0): a sandbox
 * process must not be able to end its own sandbox's init this way.
 */
static void
loop_on_signals(struct init *in)
{
	struct signalfd_siginfo si;
	bool reap = false;

	while (read(in->sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap = true;
		} else if (getpid() == 1 && si.ssi_pid != 0) {
			log_warn("SBX-INIT-SIGNAL-IGNORED", "signal=%u pid=%u",
				 si.ssi_signo, si.ssi_pid);
		} else {
			log_notice("SBX-INIT-STOPPING", "signal=%u",
				   si.ssi_signo);
			in->stopping = true;
		}
	}
	if (reap) {
		procs_reap(in->procs);
	}
}

static void
loop_on_recv(struct init *in)
{
	Sbx__Init__V1__Down *d;
	uint32_t pipe;
	sbx_err rv;

	for (int i = 0; i < INIT_RECV_BURST; i++) {
		rv = link_recv(in->link, &d, &pipe);
		if (rv == SBX_EUNAVAIL) {
			return;
		}
		if (rv == SBX_OK) {
			down_dispatch(in, d, pipe);
		}
	}
}

static size_t
loop_fill(struct init *in, struct loop_fds *lf)
{
	size_t n = INIT_FIXED_FDS, k;
	struct proc *p;

	lf->pfd[0] = (struct pollfd){.fd = in->sig_fd, .events = POLLIN};
	lf->pfd[1] =
		(struct pollfd){.fd = link_recv_fd(in->link), .events = POLLIN};
	/* A negative fd is skipped by poll(). */
	lf->pfd[2] = (struct pollfd){
		.fd = link_pending(in->link) ? link_send_fd(in->link) : -1,
		.events = POLLIN};
	lf->pfd[3] = (struct pollfd){.fd = link_probe_fd(in->link),
				     .events = POLLIN};
	for (size_t i = 0; i < procs_count(in->procs); i++) {
		p = procs_at(in->procs, i);
		k = proc_pollfds(p, &lf->pfd[n], &lf->roles[n]);
		for (size_t j = 0; j < k; j++) {
			lf->procs[n + j] = p;
		}
		n += k;
	}
	return n;
}

/*
 * Process I/O first: no process is forgotten before the Downs (acks) are
 * handled, so the pointers in LF stay valid. Reaping comes before the
 * Downs, so that a request never acts on a process that has exited but
 * is not yet marked so.
 */
static void
loop_dispatch(struct init *in, struct loop_fds *lf, size_t n)
{
	for (size_t i = INIT_FIXED_FDS; i < n; i++) {
		if (lf->pfd[i].revents != 0) {
			proc_on_poll(lf->procs[i], lf->roles[i],
				     lf->pfd[i].revents);
		}
	}
	if (lf->pfd[0].revents != 0) {
		loop_on_signals(in);
	}
	if (lf->pfd[1].revents != 0) {
		loop_on_recv(in);
	}
	link_flush(in->link);
	events_pump(in->events, in->procs, in->link);
	link_tick(in->link, sbx_mono_ms());
}

static sbx_err
loop_run(struct init *in, struct loop_fds *lf)
{
	int err, timeout;
	size_t n;

	while (!in->stopping) {
		n = loop_fill(in, lf);
		timeout = link_timeout_ms(in->link, sbx_mono_ms());
		if (poll(lf->pfd, (nfds_t) n, timeout) < 0) {
			if ((err = errno) == EINTR) {
				continue;
			}
			log_error("SBX-INIT-POLL", "err=%s", strerror(err));
			return SBX_EINTERNAL;
		}
		loop_dispatch(in, lf, n);
	}
	return SBX_OK;
}

static sbx_err
loop_fds_alloc(struct loop_fds *lf, uint32_t max_procs)
{
	lf->cap = INIT_FIXED_FDS + (size_t) max_procs * PROC_POLLFDS_MAX;
	lf->pfd = calloc(lf->cap, sizeof(*lf->pfd));
	lf->roles = calloc(lf->cap, sizeof(*lf->roles));
	lf->procs = calloc(lf->cap, sizeof(*lf->procs));
	if (lf->pfd == NULL || lf->roles == NULL || lf->procs == NULL) {
		return SBX_ENOMEM;
	}
	return SBX_OK;
}

static void
loop_fds_free(struct loop_fds *lf)
{
	free(lf->pfd);
	free(lf->roles);
	free(lf->procs);
}

int
main(int argc, char **argv)
{
	struct init in = {.sig_fd = -1};
	struct loop_fds lf = {0};
	sbx_err rv;

	if (opts_parse(&in.opts, argc, argv) != 0) {
		usage();
		return 2;
	}
	sbx_log_open("sbx-init", (enum sbx_log_level) in.opts.log_level, false);
	if ((rv = process_setup(&in)) == SBX_OK &&
	    (rv = loop_fds_alloc(&lf, in.opts.max_procs)) == SBX_OK &&
	    (rv = modules_open(&in)) == SBX_OK) {
		log_notice("SBX-INIT-STARTED",
			   "socket=%s peer_uid=%" PRIu64 " pid=%d",
			   in.opts.socket_path, in.opts.peer_uid,
			   (int) getpid());
		rv = loop_run(&in, &lf);
	}
	if (rv != SBX_OK) {
		log_error("SBX-INIT-FAILED", "status=%s", sbx_strerror(rv));
	}
	/* Outside a jail nothing else would end them. */
	if (in.procs != NULL) {
		procs_kill_all(in.procs);
	}
	link_close(in.link);
	procs_free(in.procs);
	events_free(in.events);
	loop_fds_free(&lf);
	if (in.sig_fd >= 0) {
		close(in.sig_fd);
	}
	return rv == SBX_OK ? 0 : 1;
}
