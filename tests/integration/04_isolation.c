/*
 * Isolation and resource limits, against real jails: the network policy,
 * the pids, memory and CPU limits (seen from inside the jail and in the
 * cgroup files on the host), an output flood, what one sandbox can reach of
 * another and of the host, the seccomp filter and the jail's privileges, and
 * the host uids jails run under.
 *
 * Every hostile workload is bounded in time (timeout(1), a loop limit, a
 * call timeout), and each test checks afterwards that the daemon still
 * answers and that a bystander sandbox, created once for the whole file,
 * still runs commands.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

#define MIB (1024ull * 1024ull)
#define FLOOD_BYTES 200000000ull
#define MAX_PIDS 4096

static struct sbxd_fixture fx;
static char *bystander; /* checked to be unharmed after every test */

/* ---- running commands in sandboxes ---- */

/*
 * Run ARGV (or COMMAND through the login shell when ARGV is NULL) as USER
 * in ID, without cmocka checks (usable on any thread). *OUT and *ERR (may
 * be NULL) get stdout and stderr, NUL-terminated; *CODE the exit code or
 * 128 + signal.
 */
static sbx_err
try_run(const char *id, const char *user, char *const *argv,
        const char *command, char **out, char **err, int *code)
{
	return sbxd_run_as(&fx, id, user, (const char *const *) argv, command,
	                   90000, out, err, code);
}

/* Run COMMAND as USER in ID; the call must succeed. Returns the code. */
static int
run_as(const char *id, const char *user, const char *command, char **out,
       char **err)
{
	int code = -1;
	sbx_err rv = try_run(id, user, NULL, command, out, err, &code);

	if (rv != SBX_OK) {
		fail_msg("run '%s' in %s: %s: %s", command, id,
		         sbx_strerror(rv), sbx_last_error());
	}
	return code;
}

/* Run COMMAND and require exit code WANT and, unless NULL, exactly
 * WANT_OUT on stdout. */
static void
check_run(const char *id, const char *user, const char *command, int want,
          const char *want_out)
{
	char *out, *err;
	int code = run_as(id, user, command, &out, &err);

	if (code != want || (want_out != NULL && strcmp(out, want_out) != 0)) {
		fprintf(stderr, "as %s: %s\n code %d (want %d)\n stdout [%s]\n"
		        " want [%s]\n stderr [%s]\n", user, command, code,
		        want, out, want_out != NULL ? want_out : "(any)", err);
	}
	CHECK_INT(code, want);
	if (want_out != NULL) {
		CHECK_STR(out, want_out);
	}
	free(out);
	free(err);
}

/* Run COMMAND; it must exit with WANT and say KEYWORD on stderr. */
static void
check_fails(const char *id, const char *user, const char *command, int want,
            const char *keyword)
{
	char *out, *err;
	int code = run_as(id, user, command, &out, &err);

	if (code != want || strstr(err, keyword) == NULL) {
		fprintf(stderr, "as %s: %s\n code %d (want %d)\n stdout [%s]\n"
		        " stderr [%s] (want '%s')\n", user, command, code, want,
		        out, err, keyword);
	}
	CHECK_INT(code, want);
	CHECK(strstr(err, keyword) != NULL);
	free(out);
	free(err);
}

/* Start COMMAND as USER in ID and leave it running; caller frees. */
static Sbx__V1__ProcessInfo *
start_bg(const char *id, const char *user, const char *command)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	Sbx__V1__ProcessInfo *pi = NULL;

	req.sandbox_id = (char *) id;
	req.user = (char *) user;
	req.command = (char *) command;
	CHECK_OK(sbx_call(fx.c, "ProcessStart", &req.base,
	                  (ProtobufCMessage **) &pi));
	return pi;
}

/* ---- sandboxes and the daemon ---- */

static char *
create_sb(Sbx__V1__NetworkPolicy net, uint64_t memory_bytes,
          uint32_t cpu_millis, uint32_t pids)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__Limits lim = SBX__V1__LIMITS__INIT;
	char *id;

	req.network = net;
	if (memory_bytes != 0 || cpu_millis != 0 || pids != 0) {
		lim.memory_bytes = memory_bytes;
		lim.cpu_millis = cpu_millis;
		lim.pids = pids;
		req.limits = &lim;
	}
	id = sbxd_create(&fx, &req);
	CHECK(id != NULL);
	return id;
}

/* Kill ID through the API: OK, and then Get says NOT_FOUND. Frees ID. */
static void
kill_and_check(char *id)
{
	Sbx__V1__SandboxInfo *info;
	sbx_err err;

	CHECK_OK(sbxd_kill(&fx, id));
	info = sbxd_get(&fx, id, &err);
	CHECK(info == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	free(id);
}

/* Health, with a short timeout: a daemon that hangs must fail fast. */
static sbx_err
health(void)
{
	Sbx__V1__HealthRequest req = SBX__V1__HEALTH_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	err = sbx_call_timeout(fx.c, "Health", &req.base, &rep, 5000);
	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

/* The daemon answers and the bystander runs a command, exactly. */
static void
check_unharmed(void)
{
	Sbx__V1__SandboxInfo *info;
	sbx_err err;

	CHECK_OK(health());
	info = sbxd_get(&fx, bystander, &err);
	CHECK_OK(err);
	CHECK_INT(info->state, SBX__V1__SANDBOX_STATE__STATE_RUNNING);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	check_run(bystander, "user", "echo bystander ok", 0, "bystander ok\n");
}

/* ---- the host's view of a jail ---- */

static char *
proc_read(pid_t pid, const char *file)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
	return sbx_test_read_file(path, NULL);
}

/* Does host process PID live in sandbox ID's cgroups (".../sbx/ID")? */
static bool
in_sandbox(pid_t pid, const char *id)
{
	char *cg = proc_read(pid, "cgroup"), want[96];
	bool r;

	snprintf(want, sizeof(want), "/sbx/%s\n", id);
	r = cg != NULL && strstr(cg, want) != NULL;
	free(cg);
	return r;
}

/* The host pids of sandbox ID's processes (bwrap included). */
static size_t
sandbox_pids(const char *id, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL && n < max) {
		pid_t pid = (pid_t) atoi(e->d_name);

		if (pid > 0 && in_sandbox(pid, id)) {
			out[n++] = pid;
		}
	}
	closedir(d);
	return n;
}

/* Field NAME ("Uid:", "NSpid:") of /proc/PID/status; false if absent. */
static bool
status_field(pid_t pid, const char *name, char *buf, size_t len)
{
	char *st = proc_read(pid, "status"), *p;
	bool found = false;

	if (st != NULL && (p = strstr(st, name)) != NULL) {
		p += strlen(name);
		snprintf(buf, len, "%.*s", (int) strcspn(p, "\n"), p);
		found = true;
	}
	free(st);
	return found;
}

/* Real, effective, saved and fs uid (or gid with "Gid:") of PID. */
static bool
proc_ids(pid_t pid, const char *which, unsigned ids[4])
{
	char line[256];

	return status_field(pid, which, line, sizeof(line)) &&
	       sscanf(line, "%u %u %u %u", &ids[0], &ids[1], &ids[2],
	              &ids[3]) == 4;
}

/* Does PID's cmdline begin with ARGV0? */
static bool
cmdline_is(pid_t pid, const char *argv0)
{
	char *cmd = proc_read(pid, "cmdline");
	bool r = cmd != NULL && strcmp(cmd, argv0) == 0;

	free(cmd);
	return r;
}

/* Host pid of ID's PID 1: sbx-init, pid 1 in its own pid namespace. */
static pid_t
jail_init_pid(const char *id)
{
	pid_t pids[MAX_PIDS], found = 0;
	size_t n = sandbox_pids(id, pids, MAX_PIDS);
	char ns[128], *last;

	for (size_t i = 0; i < n; i++) {
		if (!status_field(pids[i], "NSpid:", ns, sizeof(ns)) ||
		    (last = strrchr(ns, '\t')) == NULL ||
		    strcmp(last + 1, "1") != 0 ||
		    !cmdline_is(pids[i], "/opt/sbx/sbx-init")) {
			continue;
		}
		CHECK(found == 0); /* one PID 1 per sandbox */
		found = pids[i];
	}
	if (found == 0) {
		fprintf(stderr, "no sbx-init found for %s among %zu pids\n",
		        id, n);
	}
	CHECK(found > 0);
	return found;
}

/* The host pid of the process of ID whose argv[0] is ARGV0, or 0. */
static pid_t
find_in_sandbox(const char *id, const char *argv0)
{
	pid_t pids[MAX_PIDS];
	size_t n = sandbox_pids(id, pids, MAX_PIDS);

	for (size_t i = 0; i < n; i++) {
		if (cmdline_is(pids[i], argv0)) {
			return pids[i];
		}
	}
	return 0;
}

/* Wait (bounded) for the process of ID whose argv[0] is ARGV0: a shell
 * that will exec it shows the name in its own arguments first. */
static pid_t
wait_in_sandbox(const char *id, const char *argv0)
{
	long long until = sbx_test_mono_ms() + 10000;
	pid_t pid;

	while ((pid = find_in_sandbox(id, argv0)) == 0 && sbx_test_mono_ms() < until) {
		usleep(20000); /* poll interval */
	}
	if (pid == 0) {
		fprintf(stderr, "no process '%s' in %s\n", argv0, id);
	}
	CHECK(pid > 0);
	return pid;
}

/* The daemon's sandbox uid range [*LO, *HI), from its own command line. */
static void
daemon_uid_range(unsigned *lo, unsigned *hi)
{
	char path[64], *cmd, *p, *end;
	unsigned base = 0, slots = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) fx.pid);
	CHECK((cmd = sbx_test_read_file(path, &len)) != NULL);
	for (p = cmd, end = cmd + len; p < end; p += strlen(p) + 1) {
		if (sscanf(p, "--uid_base=%u", &base) == 1 ||
		    sscanf(p, "--uid_slots=%u", &slots) == 1) {
			continue;
		}
	}
	free(cmd);
	CHECK(base >= 65536 && slots > 0);
	*lo = base;
	*hi = base + 2 * slots;
}

/* Is TOK one of the SEP-separated tokens of LIST (LEN bytes)? */
static bool
has_token(const char *list, size_t len, const char *tok, char sep)
{
	size_t tl = strlen(tok);
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *q = memchr(p, sep, (size_t) (end - p));
		size_t n = (size_t) ((q != NULL ? q : end) - p);

		if (n == tl && strncmp(p, tok, tl) == 0) {
			return true;
		}
		p += n + 1;
	}
	return false;
}

/*
 * The host directory of PID's cgroup for controller CTL: the v1 hierarchy
 * that has CTL if there is one, else the v2 tree (*V2 says which). The
 * path comes from /proc/PID/cgroup and the mount from our mountinfo.
 */
static void
cgroup_dir(pid_t pid, const char *ctl, char *dir, size_t len, bool *v2)
{
	char *cg = proc_read(pid, "cgroup"), *line, *save = NULL;
	char path[1024] = "", v2path[1024] = "", mi[4096];
	char *f[32], *fs, *opts;
	FILE *fp;
	bool found = false;

	CHECK(cg != NULL);
	for (line = strtok_r(cg, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2;

		if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL) {
			continue;
		}
		if (c2 == c1 + 1 && strncmp(line, "0:", 2) == 0) {
			snprintf(v2path, sizeof(v2path), "%s", c2 + 1);
		} else if (has_token(c1 + 1, (size_t) (c2 - c1 - 1), ctl,
		                     ',')) {
			snprintf(path, sizeof(path), "%s", c2 + 1);
		}
	}
	free(cg);
	*v2 = path[0] == '\0';
	CHECK(!*v2 || v2path[0] != '\0');
	CHECK((fp = fopen("/proc/self/mountinfo", "re")) != NULL);
	while (!found && fgets(mi, sizeof(mi), fp) != NULL) {
		size_t nf = 0, sep;
		const char *want = *v2 ? v2path : path, *rel;

		for (char *t = strtok_r(mi, " \n", &save); t != NULL && nf < 32;
		     t = strtok_r(NULL, " \n", &save)) {
			f[nf++] = t;
		}
		for (sep = 6; sep < nf && strcmp(f[sep], "-") != 0; sep++) {
		}
		if (sep + 3 >= nf) {
			continue;
		}
		fs = f[sep + 1];
		opts = f[sep + 3];
		if (*v2 ? strcmp(fs, "cgroup2") != 0
		        : strcmp(fs, "cgroup") != 0 ||
		                  !has_token(opts, strlen(opts), ctl, ',')) {
			continue;
		}
		/* A mount of a subtree (f[3]) shows paths below it. */
		rel = want;
		if (strcmp(f[3], "/") != 0) {
			size_t rl = strlen(f[3]);

			if (strncmp(want, f[3], rl) != 0) {
				continue;
			}
			rel = want + rl;
		}
		snprintf(dir, len, "%s%s", f[4], rel);
		found = true;
	}
	fclose(fp);
	if (!found) {
		fprintf(stderr, "no mount for cgroup controller %s\n", ctl);
	}
	CHECK(found);
}

/* The contents of DIR/FILE with trailing whitespace cut (heap). */
static char *
cg_read(const char *dir, const char *file)
{
	char path[1200], *s;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	s = sbx_test_read_file(path, &n);
	if (s == NULL) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
	}
	CHECK(s != NULL);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) {
		s[--n] = '\0';
	}
	return s;
}

/* The number after KEY in a "key value" cgroup file; -1 if absent. */
static long long
cg_key(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p != NULL && *p != '\0';
	     p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			return atoll(p + kl + 1);
		}
	}
	return -1;
}

/* Wait (bounded) until no host process runs under UID or UID + 1. */
static bool
wait_uid_gone(unsigned uid)
{
	long long until = sbx_test_mono_ms() + 15000;

	while (sbx_test_mono_ms() < until) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		unsigned ids[4];
		bool any = false;

		CHECK(d != NULL);
		while (!any && (e = readdir(d)) != NULL) {
			pid_t pid = (pid_t) atoi(e->d_name);

			any = pid > 0 && proc_ids(pid, "Uid:", ids) &&
			      (ids[0] == uid || ids[0] == uid + 1);
		}
		closedir(d);
		if (!any) {
			return true;
		}
		usleep(20000); /* poll interval */
	}
	return false;
}

/* ---- setup ---- */

static int
setup(void **state)
{
	int rc = sbxd_start(&fx, "isolation", NULL);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		exit(SBX_TEST_SKIP);
	}
	if (rc != 0) {
		return rc;
	}
	bystander = sbxd_create(&fx, NULL);
	return bystander != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void) state;
	free(bystander);
	return sbxd_stop(&fx, false);
}

/* ---- 1. network policy ---- */

struct listener {
	int fd;
	int port;
};

/* Listen on 127.0.0.1 on a free port (retried if taken meanwhile). */
static void
listener_open(struct listener *l)
{
	struct sockaddr_in sa;
	int one = 1;

	for (int i = 0; i < 20; i++) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		l->port = sbx_test_free_port();
		sa.sin_port = htons((uint16_t) l->port);
		l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
		                                SOCK_NONBLOCK, 0);
		CHECK(l->fd >= 0);
		CHECK_INT(setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one,
		                     sizeof(one)), 0);
		if (bind(l->fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
		    listen(l->fd, 8) == 0) {
			return;
		}
		close(l->fd);
	}
	fail_msg("no free port to listen on");
}

/* Is a connection waiting (within WAIT_MS)? */
static bool
listener_pending(const struct listener *l, int wait_ms)
{
	struct pollfd p = {.fd = l->fd, .events = POLLIN};

	return poll(&p, 1, wait_ms) == 1;
}

/* Accept one connection and read it to EOF, each within 5 s (heap). */
static char *
listener_take(const struct listener *l, size_t *len)
{
	struct pollfd p = {.events = POLLIN};
	long long until = sbx_test_mono_ms() + 5000;
	char *buf = calloc(1, 4097);
	size_t n = 0;
	ssize_t r;
	int fd;

	CHECK(buf != NULL);
	CHECK(listener_pending(l, 5000));
	CHECK((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0);
	p.fd = fd;
	while (n < 4096 && sbx_test_mono_ms() < until) {
		if (poll(&p, 1, 100) != 1) {
			continue;
		}
		if ((r = read(fd, buf + n, 4096 - n)) <= 0) {
			break;
		}
		n += (size_t) r;
	}
	close(fd);
	*len = n;
	return buf;
}

/* Interface names of a /proc/net/dev text, comma-separated (heap). */
static char *
interfaces(const char *netdev)
{
	char *names = calloc(1, strlen(netdev) + 1);
	const char *p = netdev;
	int line = 0;

	CHECK(names != NULL);
	for (; p != NULL && *p != '\0'; p = strchr(p, '\n'),
	                                p = p != NULL ? p + 1 : NULL) {
		const char *colon = strchr(p, ':'), *nl = strchr(p, '\n');

		/* Two header lines, then "  name: counters". */
		if (line++ < 2 || colon == NULL || (nl != NULL && colon > nl)) {
			continue;
		}
		while (*p == ' ') {
			p++;
		}
		if (names[0] != '\0') {
			strcat(names, ",");
		}
		strncat(names, p, (size_t) (colon - p));
	}
	return names;
}

/* A python3 client that connects to 127.0.0.1:PORT and sends MSG; it
 * prints "sent", or "connect failed: <errno>" and exits 3. */
static void
connect_cmd(char *buf, size_t len, int port, const char *msg)
{
	snprintf(buf, len,
	         "python3 -c '\n"
	         "import socket, sys\n"
	         "try:\n"
	         "    s = socket.create_connection((\"127.0.0.1\", %d), "
	         "timeout=5)\n"
	         "except OSError as e:\n"
	         "    print(\"connect failed:\", e.errno)\n"
	         "    sys.exit(3)\n"
	         "s.sendall(b\"%s\")\n"
	         "s.close()\n"
	         "print(\"sent\")'",
	         port, msg);
}

/* A DENY sandbox (explicit, or the default without the field) has only
 * lo, and its connects to the host's loopback reach nothing. */
static void
test_network_deny_and_default(void **state)
{
	static const Sbx__V1__NetworkPolicy pol[] = {
		SBX__V1__NETWORK_POLICY__NETWORK_DENY,
		SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT,
	};
	struct listener l;
	char cmd[1024], *out, *names;
	Sbx__V1__SandboxInfo *info;
	sbx_err err;

	(void) state;
	listener_open(&l);
	for (size_t i = 0; i < 2; i++) {
		char *id = create_sb(pol[i], 0, 0, 0);

		info = sbxd_get(&fx, id, &err);
		CHECK_OK(err);
		CHECK_INT(info->network, SBX__V1__NETWORK_POLICY__NETWORK_DENY);
		sbx__v1__sandbox_info__free_unpacked(info, NULL);
		CHECK_INT(run_as(id, "user", "cat /proc/net/dev", &out, NULL),
		          0);
		names = interfaces(out);
		CHECK_STR(names, "lo");
		free(names);
		free(out);
		/* The jail's own lo has no listener there: refused. */
		connect_cmd(cmd, sizeof(cmd), l.port, "from-deny");
		check_run(id, "user", cmd, 3, "connect failed: 111\n");
		snprintf(cmd, sizeof(cmd),
		         "exec 3<>/dev/tcp/127.0.0.1/%d && echo connected",
		         l.port);
		check_fails(id, "root", cmd, 1, "Connection refused");
		CHECK(!listener_pending(&l, 200));
		kill_and_check(id);
	}
	close(l.fd);
	check_unharmed();
}

/* An ALLOW sandbox shares the host's network: the same interfaces, and
 * the test's listener receives exactly the bytes it sends. */
static void
test_network_allow(void **state)
{
	struct listener l;
	char cmd[1024], msg[64], *out, *host, *names, *hostnames, *got;
	Sbx__V1__SandboxInfo *info;
	size_t len;
	sbx_err err;
	char *id;

	(void) state;
	listener_open(&l);
	id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_ALLOW, 0, 0, 0);
	info = sbxd_get(&fx, id, &err);
	CHECK_OK(err);
	CHECK_INT(info->network, SBX__V1__NETWORK_POLICY__NETWORK_ALLOW);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	CHECK_INT(run_as(id, "user", "cat /proc/net/dev", &out, NULL), 0);
	CHECK((host = sbx_test_read_file("/proc/net/dev", NULL)) != NULL);
	names = interfaces(out);
	hostnames = interfaces(host);
	CHECK_STR(names, hostnames);
	CHECK(has_token(names, strlen(names), "lo", ','));
	free(names);
	free(hostnames);
	free(host);
	free(out);
	snprintf(msg, sizeof(msg), "allow-%d-%lld", (int) getpid(),
	         sbx_test_mono_ms());
	connect_cmd(cmd, sizeof(cmd), l.port, msg);
	check_run(id, "user", cmd, 0, "sent\n");
	got = listener_take(&l, &len);
	CHECK_INT(len, strlen(msg));
	CHECK_STR(got, msg);
	free(got);
	CHECK(!listener_pending(&l, 0));
	close(l.fd);
	kill_and_check(id);
	check_unharmed();
}

/* ---- 2. fork bomb ---- */

struct bg_run {
	pthread_t th;
	const char *id;
	const char *command;
	sbx_err rv;
	int code;
	char *out, *err, why[256];
	int done; /* atomic */
};

static void *
bg_run_main(void *arg)
{
	struct bg_run *b = arg;

	b->rv = try_run(b->id, "user", NULL, b->command, &b->out, &b->err,
	                &b->code);
	if (b->rv != SBX_OK) {
		snprintf(b->why, sizeof(b->why), "%s", sbx_last_error());
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static long long
read_ll(const char *dir, const char *file)
{
	char *s = cg_read(dir, file);
	long long v = strcmp(s, "max") == 0 ? -1 : atoll(s);

	free(s);
	return v;
}

/* A fork bomb under pids=64 hits fork failures and never exceeds the
 * cgroup's pids.max; meanwhile the daemon and another sandbox work, and
 * the bomb's sandbox is killed cleanly afterwards, leaving no process. */
static void
test_fork_bomb(void **state)
{
	struct bg_run b = {0};
	char dir[1024];
	long long max, cur, peak = 0, until;
	unsigned uid[4];
	bool v2, raging = false;
	sbx_err mid_health = SBX_EINTERNAL, mid_rv = SBX_EINTERNAL;
	char *mid_out = NULL;
	int mid_code = -1;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 500,
	                     64);
	pid_t init = jail_init_pid(id);

	(void) state;
	CHECK(proc_ids(init, "Uid:", uid));
	cgroup_dir(init, "pids", dir, sizeof(dir), &v2);
	max = read_ll(dir, "pids.max");
	/* Finite, and at least what was asked for the sandbox's own use. */
	CHECK(max >= 64 && max <= 64 + 64);
	/* The bomb's first process returns at once; the shell stays (sleep)
	 * to carry the bomb's complaints on its stderr. Bash gives up a fork
	 * after about 15 s of retries, so the whole run is bounded. */
	b.id = id;
	b.command = "timeout -s KILL 8 bash -c ':(){ :|:& };:'; sleep 4; "
	            "echo bomb-done";
	CHECK_INT(pthread_create(&b.th, NULL, bg_run_main, &b), 0);
	until = sbx_test_mono_ms() + 60000;
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE) &&
	       sbx_test_mono_ms() < until) {
		cur = read_ll(dir, "pids.current");
		peak = cur > peak ? cur : peak;
		if (!raging && cur >= max / 2) {
			/* While it rages: the daemon and a neighbour work
			 * (checked after the join: the thread uses B). */
			raging = true;
			mid_health = health();
			mid_rv = try_run(bystander, "user", NULL, "echo mid",
			                 &mid_out, NULL, &mid_code);
		}
		usleep(10000); /* sampling interval */
	}
	CHECK_INT(pthread_join(b.th, NULL), 0);
	if (b.rv != SBX_OK) {
		fprintf(stderr, "bomb run: %s: %s\n", sbx_strerror(b.rv),
		        b.why);
	}
	CHECK_OK(b.rv);
	if (strstr(b.err, "Resource temporarily unavailable") == NULL) {
		fprintf(stderr, "bomb: code %d out [%s] err [%.2000s]\n",
		        b.code, b.out, b.err);
	}
	CHECK(strstr(b.err, "Resource temporarily unavailable") != NULL);
	CHECK(raging);
	CHECK_OK(mid_health);
	CHECK_OK(mid_rv);
	CHECK_INT(mid_code, 0);
	CHECK_STR(mid_out, "mid\n");
	free(mid_out);
	fprintf(stderr, "bomb: pids.max %lld, peak pids.current %lld\n", max,
	        peak);
	CHECK(peak <= max);
	free(b.out);
	free(b.err);
	check_unharmed();
	/* The leftovers of the bomb die with their sandbox. */
	kill_and_check(id);
	CHECK(wait_uid_gone(uid[0]));
	check_unharmed();
}

/* Sandboxes with small pids limits, down to the smallest allowed (8),
 * start and can run that many processes of their own: sbx-init's threads
 * are not charged to them. */
static void
test_small_pids_limits(void **state)
{
	static const uint32_t limits[] = {8, 16};
	char script[512], want[64], *out, *err;
	int code;

	(void) state;
	for (size_t i = 0; i < 2; i++) {
		uint32_t n = limits[i] - 1; /* python itself is one */
		char *const argv[] = {"python3", "-c", script, NULL};
		char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT,
		                     0, 0, limits[i]);

		snprintf(script, sizeof(script),
		         "import os, time\n"
		         "n = 0\n"
		         "for i in range(%u):\n"
		         "    if os.fork() == 0:\n"
		         "        time.sleep(30)\n"
		         "        os._exit(0)\n"
		         "    n += 1\n"
		         "print(\"forked\", n)\n",
		         n);
		snprintf(want, sizeof(want), "forked %u\n", n);
		CHECK_OK(try_run(id, "user", argv, NULL, &out, &err, &code));
		if (code != 0 || strcmp(out, want) != 0) {
			fprintf(stderr, "pids=%u: code %d out [%s] err [%s]\n",
			        limits[i], code, out, err);
		}
		CHECK_INT(code, 0);
		CHECK_STR(out, want);
		free(out);
		free(err);
		kill_and_check(id);
	}
	check_unharmed();
}

/* ---- 3. memory ---- */

/* Allocating 512 MiB under a 64 MiB limit kills the allocating process
 * only; the sandbox goes on. The limit is in the sandbox's cgroup. */
static void
test_memory_hog(void **state)
{
	char dir[1024], *s, *out, *err;
	bool v2;
	int code;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT,
	                     64 * MIB, 0, 0);
	pid_t init = jail_init_pid(id);
	Sbx__V1__SandboxInfo *info;
	sbx_err rv;

	(void) state;
	cgroup_dir(init, "memory", dir, sizeof(dir), &v2);
	s = cg_read(dir, v2 ? "memory.max" : "memory.limit_in_bytes");
	CHECK_STR(s, "67108864");
	free(s);
	code = run_as(id, "user",
	              "python3 -c 'b = []\n"
	              "for i in range(512):\n"
	              "    b.append(bytearray(1 << 20))\n"
	              "print(\"allocated\", len(b))'",
	              &out, &err);
	if (code != 128 + SIGKILL &&
	    !(code == 1 && strstr(err, "MemoryError") != NULL)) {
		fprintf(stderr, "hog: code %d out [%s] err [%s]\n", code, out,
		        err);
		fail_msg("the memory hog was not stopped");
	}
	CHECK(strstr(out, "allocated") == NULL);
	free(out);
	free(err);
	if (code == 128 + SIGKILL) {
		/* The cgroup's OOM killer did it, not something else. */
		s = cg_read(dir, v2 ? "memory.events" : "memory.oom_control");
		CHECK(cg_key(s, "oom_kill") >= 1);
		free(s);
	}
	/* The sandbox (its sbx-init) survived and runs new processes. */
	info = sbxd_get(&fx, id, &rv);
	CHECK_OK(rv);
	CHECK_INT(info->state, SBX__V1__SANDBOX_STATE__STATE_RUNNING);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	CHECK_INT(jail_init_pid(id), init);
	check_run(id, "user", "echo still here", 0, "still here\n");
	check_unharmed();
	kill_and_check(id);
}

/* ---- 4. CPU ---- */

/* With cpu_millis=200 a 2 s busy loop gets about 0.4 s of CPU. */
static void
test_cpu_limit(void **state)
{
	char dir[1024], *s, *out;
	double cpu = -1, wall = -1;
	bool v2;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 200,
	                     0);
	pid_t init = jail_init_pid(id);

	(void) state;
	cgroup_dir(init, "cpu", dir, sizeof(dir), &v2);
	if (v2) {
		s = cg_read(dir, "cpu.max");
		CHECK_STR(s, "20000 100000");
	} else {
		s = cg_read(dir, "cpu.cfs_quota_us");
		CHECK_STR(s, "20000");
		free(s);
		s = cg_read(dir, "cpu.cfs_period_us");
		CHECK_STR(s, "100000");
	}
	free(s);
	CHECK_INT(run_as(id, "user",
	                 "python3 -c 'import os, time\n"
	                 "t = time.monotonic()\n"
	                 "while time.monotonic() - t < 2.0:\n"
	                 "    pass\n"
	                 "r = os.times()\n"
	                 "print(\"%.3f %.3f\" % (r.user + r.system, "
	                 "time.monotonic() - t))'",
	                 &out, NULL),
	          0);
	CHECK_INT(sscanf(out, "%lf %lf", &cpu, &wall), 2);
	free(out);
	fprintf(stderr, "cpu %.3f s in %.3f s of wall time\n", cpu, wall);
	CHECK(wall >= 2.0);
	CHECK(cpu > 0.05); /* it did run */
	CHECK(cpu < 0.6);
	/* And the kernel says it held the loop back. */
	s = cg_read(dir, "cpu.stat");
	CHECK(cg_key(s, "nr_throttled") > 0);
	free(s);
	kill_and_check(id);
	check_unharmed();
}

/* ---- 5. output flood ---- */

struct flood {
	uint64_t bytes;     /* stdout bytes delivered (atomic) */
	uint64_t err_bytes; /* stderr bytes delivered (atomic) */
	int ended;          /* the flood process has ended (atomic) */
};

/* libsbx I/O thread. */
static void
flood_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
           size_t len)
{
	struct flood *f = arg;

	(void) data;
	__atomic_add_fetch(kind == SBX__V1__EVENT__BODY_STDOUT ? &f->bytes
	                                                       : &f->err_bytes,
	                   len, __ATOMIC_RELAXED);
}

struct prober {
	pthread_t th;
	const struct flood *f;
	int stop; /* atomic */
	int health_ok, health_during, run_ok, run_during, failures;
	char why[256];
};

/* Has the flood begun and not yet ended? */
static int
flooding(const struct flood *f)
{
	return __atomic_load_n(&f->bytes, __ATOMIC_RELAXED) > 0 &&
	       !__atomic_load_n(&f->ended, __ATOMIC_ACQUIRE);
}

/* Health calls and bystander commands, over and over, until told. */
static void *
prober_main(void *arg)
{
	struct prober *p = arg;
	char *out;
	int code;
	sbx_err rv;

	do {
		if ((rv = health()) == SBX_OK) {
			p->health_ok++;
			p->health_during += flooding(p->f);
		} else if (p->failures++ == 0) {
			snprintf(p->why, sizeof(p->why), "Health: %s: %s",
			         sbx_strerror(rv), sbx_last_error());
		}
		rv = try_run(bystander, "user", NULL, "echo probe", &out, NULL,
		             &code);
		if (rv == SBX_OK && code == 0 && strcmp(out, "probe\n") == 0) {
			p->run_ok++;
			p->run_during += flooding(p->f);
		} else if (p->failures++ == 0) {
			snprintf(p->why, sizeof(p->why),
			         "bystander: %s code %d out [%.100s]",
			         sbx_strerror(rv), code, out);
		}
		free(out);
	} while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE));
	return NULL;
}

/* The flood process's record, once it has ended (bounded wait). */
static bool
wait_proc_exit(const char *id, const char *stream, int *exit_code)
{
	Sbx__V1__ProcessListRequest req = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	long long until = sbx_test_mono_ms() + 60000;

	req.sandbox_id = (char *) id;
	while (sbx_test_mono_ms() < until) {
		Sbx__V1__ProcessListReply *rep = NULL;
		bool ended = false;

		CHECK_OK(sbx_call(fx.c, "ProcessList", &req.base,
		                  (ProtobufCMessage **) &rep));
		for (size_t i = 0; i < rep->n_processes; i++) {
			Sbx__V1__ProcessInfo *pi = rep->processes[i];

			if (strcmp(pi->stream, stream) == 0 && !pi->running &&
			    pi->exit != NULL) {
				*exit_code = pi->exit->signal != 0
				                     ? 128 + pi->exit->signal
				                     : pi->exit->exit_code;
				ended = true;
			}
		}
		sbx__v1__process_list_reply__free_unpacked(rep, NULL);
		if (ended) {
			return true;
		}
		usleep(50000); /* poll interval */
	}
	return false;
}

/* 200 MB of output: the stream delivers every byte or ends with
 * DATA_LOSS, never silently fewer; the daemon and a neighbour keep
 * answering throughout, and the sandbox is fine afterwards. */
static void
test_output_flood(void **state)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	struct flood f = {0};
	struct sbx_stream_cbs cbs = {.arg = &f, .on_data = flood_data};
	struct prober p = {0};
	char stream[24], why[512] = "";
	int32_t ec = -1, sig = 0;
	int code = -1;
	uint64_t bytes;
	bool exited;
	sbx_err rv;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);

	(void) state;
	p.f = &f;
	sbx_stream_id(stream);
	req.sandbox_id = id;
	req.stream = stream;
	req.command = "head -c 200000000 /dev/zero";
	CHECK_INT(pthread_create(&p.th, NULL, prober_main, &p), 0);
	rv = sbx_process_run(fx.c, &req, &cbs, 120000, NULL, &ec, &sig);
	if (rv != SBX_OK) {
		snprintf(why, sizeof(why), "%s", sbx_last_error());
	}
	/* A client that lost the stream leaves the flood running in the
	 * sandbox: the probes go on until the process itself has ended. */
	exited = wait_proc_exit(id, stream, &code);
	__atomic_store_n(&f.ended, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	CHECK_INT(pthread_join(p.th, NULL), 0);
	bytes = __atomic_load_n(&f.bytes, __ATOMIC_RELAXED);
	fprintf(stderr, "flood: %s after %llu bytes (%s); health %d (%d "
	        "during), bystander runs %d (%d during)\n", sbx_strerror(rv),
	        (unsigned long long) bytes, why, p.health_ok, p.health_during,
	        p.run_ok, p.run_during);
	if (rv == SBX_OK) {
		CHECK_INT(bytes, FLOOD_BYTES);
		CHECK_INT(ec, 0);
		CHECK_INT(sig, 0);
	} else {
		CHECK_INT(rv, SBX_EDATALOSS);
		CHECK(strstr(why, "dropped") != NULL);
		CHECK(bytes < FLOOD_BYTES);
	}
	CHECK_INT(f.err_bytes, 0);
	if (p.failures != 0) {
		fprintf(stderr, "prober: %d failures, first: %s\n", p.failures,
		        p.why);
	}
	CHECK_INT(p.failures, 0);
	CHECK(p.health_during >= 1);
	CHECK(p.run_during >= 1);
	/* Whatever the client saw, head wrote it all and ended well. */
	CHECK(exited);
	CHECK_INT(code, 0);
	check_run(id, "user", "echo after the flood", 0, "after the flood\n");
	check_unharmed();
	kill_and_check(id);
}

/* ---- 6. one sandbox against another ---- */

/* Wait until COMMAND's output in ID contains WANT (bounded). */
static void
wait_output(const char *id, const char *command, const char *want)
{
	long long until = sbx_test_mono_ms() + 10000;
	bool seen = false;
	char *out;

	while (!seen && sbx_test_mono_ms() < until) {
		CHECK_INT(run_as(id, "user", command, &out, NULL), 0);
		seen = strstr(out, want) != NULL;
		free(out);
		if (!seen) {
			usleep(50000); /* poll interval */
		}
	}
	CHECK(seen);
}

/* A's view of its own processes: PID 1 is sbx-init, and nothing of B. */
static void
check_process_view(const char *a)
{
	char *out, *line, *save = NULL;
	int n = 0;

	CHECK_INT(run_as(a, "user", "ps -eo pid=,args=", &out, NULL), 0);
	CHECK(strstr(out, "sbx-marker-b") == NULL);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		int pid = -1, off = 0;

		CHECK_INT(sscanf(line, " %d %n", &pid, &off), 1);
		if (n == 0) {
			CHECK_INT(pid, 1);
			CHECK(strncmp(line + off, "/opt/sbx/sbx-init ", 18) == 0);
		} else {
			/* Only the command's own shell and ps. */
			CHECK(strncmp(line + off, "/bin/bash ", 10) == 0 ||
			      strncmp(line + off, "ps ", 3) == 0);
		}
	}
	CHECK(n >= 2 && n <= 3);
	free(out);
}

/* A cannot see B's processes, cannot signal them by their host pids,
 * cannot reach B's files by any path (shell or file API, as user or
 * root), and sees only its own minimal identity and /etc. */
static void
test_cross_sandbox(void **state)
{
	static const char *const users[] = {"user", "root"};
	static const char secret[] = "b-secret-contents";
	char hostpath[1200], cmd[2600];
	Sbx__V1__ProcessInfo *pi;
	void *data = NULL;
	size_t len;
	struct stat st;
	char *a = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);
	char *b = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);
	pid_t b_init = jail_init_pid(b), b_marker;
	char *host;

	(void) state;
	pi = start_bg(b, "user", "exec -a sbx-marker-b sleep 300");
	sbx__v1__process_info__free_unpacked(pi, NULL);
	b_marker = wait_in_sandbox(b, "sbx-marker-b");
	/* B itself sees it (so A's not seeing it below means something). */
	wait_output(b, "ps -eo args", "\nsbx-marker-b 300\n");
	CHECK_OK(sbx_file_write(fx.c, b, "secret.txt", NULL, secret,
	                        strlen(secret), 0600));
	/* The file is really there on the host: the probes below are fair. */
	snprintf(hostpath, sizeof(hostpath), "%s/sandboxes/%s/home/secret.txt",
	         fx.state_dir, b);
	CHECK((host = sbx_test_read_file(hostpath, NULL)) != NULL);
	CHECK_STR(host, secret);
	free(host);

	check_process_view(a);
	for (size_t u = 0; u < 2; u++) {
		const char *user = users[u];

		snprintf(cmd, sizeof(cmd), "kill -9 %d", (int) b_init);
		check_fails(a, user, cmd, 1, "No such process");
		snprintf(cmd, sizeof(cmd), "kill -9 %d", (int) b_marker);
		check_fails(a, user, cmd, 1, "No such process");
		snprintf(cmd, sizeof(cmd), "cat %s", hostpath);
		check_fails(a, user, cmd, 1, "No such file or directory");
		snprintf(cmd, sizeof(cmd), "ls %s", fx.dir);
		check_fails(a, user, cmd, 2, "No such file or directory");
		snprintf(cmd, sizeof(cmd), "cat /proc/%d/root%s", (int) b_init,
		         hostpath);
		check_fails(a, user, cmd, 1, "No such file or directory");
		snprintf(cmd, sizeof(cmd), "cat /proc/%d/cwd/secret.txt",
		         (int) b_marker);
		check_fails(a, user, cmd, 1, "No such file or directory");
		snprintf(cmd, sizeof(cmd), "ln -sfn %s /tmp/lnk-%s && "
		         "cat /tmp/lnk-%s", hostpath, user, user);
		check_fails(a, user, cmd, 1, "No such file or directory");
		check_run(a, user, "ls /home", 0, "user\n");
		/* The file API resolves every path inside A's root. */
		snprintf(cmd, sizeof(cmd), "../../../../../../..%s", hostpath);
		CHECK_ERR(sbx_file_read(fx.c, a, hostpath, user, &data, &len,
		                        4096),
		          SBX_ENOTFOUND);
		CHECK_ERR(sbx_file_read(fx.c, a, cmd, user, &data, &len, 4096),
		          SBX_ENOTFOUND);
		snprintf(cmd, sizeof(cmd), "/tmp/lnk-%s", user);
		CHECK_ERR(sbx_file_read(fx.c, a, cmd, user, &data, &len, 4096),
		          SBX_ENOTFOUND);
	}
	check_fails(a, "user", "kill -9 1", 1, "Operation not permitted");
	/* B and its processes are untouched. */
	CHECK_INT(kill(b_init, 0), 0);
	CHECK_INT(kill(b_marker, 0), 0);
	CHECK_INT(find_in_sandbox(b, "sbx-marker-b"), b_marker);
	CHECK_OK(sbx_file_read(fx.c, b, "secret.txt", NULL, &data, &len,
	                       4096));
	CHECK_INT(len, strlen(secret));
	CHECK(memcmp(data, secret, len) == 0);
	free(data);
	/* Identity and /etc, the same in both. */
	for (int i = 0; i < 2; i++) {
		const char *id = i == 0 ? a : b;

		check_run(id, "user", "id -u; id -g; hostname", 0,
		          "1000\n1000\nsbx\n");
		check_run(id, "root", "id -u", 0, "0\n");
		check_fails(id, "user", "ls /etc/shadow", 2,
		            "No such file or directory");
		check_fails(id, "root", "cat /etc/gshadow", 1,
		            "No such file or directory");
		check_run(id, "user", "cut -d: -f1 /etc/passwd", 0,
		          "root\nuser\nnobody\n");
	}
	CHECK_INT(stat("/etc/shadow", &st), 0); /* the host does have one */
	kill_and_check(a);
	kill_and_check(b);
	check_unharmed();
}

/* ---- 7. seccomp and privileges ---- */

/* Python's view of mount(2): its return value and errno text. */
#define MOUNT_PY                                                              \
	"python3 -c 'import ctypes, os\n"                                     \
	"libc = ctypes.CDLL(None, use_errno=True)\n"                         \
	"r = libc.mount(b\"none\", b\"/tmp\", b\"tmpfs\", 0, None)\n"        \
	"print(r, os.strerror(ctypes.get_errno()))'"

/* Namespaces, mounts and other privileged calls fail for user and root;
 * sbx-init's memory is closed to both; read-only binds stay read-only
 * for root, and the host files behind them are unchanged. */
static void
test_privileges(void **state)
{
	static const char *const users[] = {"user", "root"};
	static const char *const host_files[] = {"jail-etc/passwd",
	                                         "jail-etc/hosts",
	                                         "bin/sbx-init"};
	char path[1200], *before[3], *after, *resolv_before, *resolv_after;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);

	(void) state;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", fx.state_dir,
		         host_files[i]);
		CHECK((before[i] = sbx_test_read_file(path, NULL)) != NULL);
	}
	resolv_before = sbx_test_read_file("/etc/resolv.conf", NULL);
	for (size_t u = 0; u < 2; u++) {
		const char *user = users[u];

		check_fails(id, user, "unshare -U true", 1,
		            "Operation not permitted");
		check_fails(id, user, "unshare -n true", 1,
		            "Operation not permitted");
		check_fails(id, user, "unshare -m true", 1,
		            "Operation not permitted");
		check_run(id, user, MOUNT_PY, 0, "-1 Operation not permitted\n");
		check_fails(id, user, "cat /proc/1/environ", 1,
		            "Permission denied");
		check_fails(id, user, "touch /usr/sbx-probe", 1,
		            "Read-only file system");
		check_fails(id, user, "touch /bin/sbx-probe", 1,
		            "Read-only file system");
	}
	/* Root inside owns nothing of the host: every bind that comes from
	 * the host refuses it. */
	check_fails(id, "root", "echo x >> /etc/passwd", 1,
	            "Permission denied");
	check_fails(id, "root", "echo x >> /etc/hosts", 1,
	            "Permission denied");
	check_fails(id, "root", "touch /opt/sbx/sbx-init", 1,
	            "Permission denied");
	check_fails(id, "root", "rm -f /opt/sbx/sbx-init", 1,
	            "cannot remove");
	check_fails(id, "root", "chmod 777 /etc/passwd", 1,
	            "Read-only file system");
	if (resolv_before != NULL) {
		check_fails(id, "root", "echo x >> /etc/resolv.conf", 1,
		            "/etc/resolv.conf");
	}
	check_fails(id, "root", "mount -o remount,rw /usr", 32, "mount");
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", fx.state_dir,
		         host_files[i]);
		CHECK((after = sbx_test_read_file(path, NULL)) != NULL);
		CHECK_STR(after, before[i]);
		free(after);
		free(before[i]);
	}
	resolv_after = sbx_test_read_file("/etc/resolv.conf", NULL);
	CHECK((resolv_before == NULL) == (resolv_after == NULL));
	if (resolv_before != NULL) {
		CHECK_STR(resolv_after, resolv_before);
	}
	free(resolv_before);
	free(resolv_after);
	/* The jail still works after all that. */
	check_run(id, "user", "echo fine", 0, "fine\n");
	kill_and_check(id);
	check_unharmed();
}

/* ---- 8. host uids ---- */

/* Every process of a jail runs under the sandbox's own two host uids,
 * inside the daemon's range: sbx-init (and bwrap) as the "root" one, user
 * processes as the "user" one. None is host root. */
static void
test_host_uids(void **state)
{
	pid_t pids[MAX_PIDS], init, probe;
	unsigned lo, hi, uid[4], gid[4], root_uid;
	size_t n;
	Sbx__V1__ProcessInfo *pi;
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);
	char *other = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0,
	                        0);

	(void) state;
	daemon_uid_range(&lo, &hi);
	init = jail_init_pid(id);
	CHECK(proc_ids(init, "Uid:", uid));
	root_uid = uid[0];
	for (int i = 0; i < 4; i++) {
		CHECK_INT(uid[i], root_uid);
	}
	CHECK(root_uid >= lo && root_uid + 1 < hi);
	CHECK((root_uid - lo) % 2 == 0);
	pi = start_bg(id, "user", "exec -a sbx-uid-probe sleep 300");
	sbx__v1__process_info__free_unpacked(pi, NULL);
	probe = wait_in_sandbox(id, "sbx-uid-probe");
	CHECK(proc_ids(probe, "Uid:", uid));
	CHECK(proc_ids(probe, "Gid:", gid));
	for (int i = 0; i < 4; i++) {
		CHECK_INT(uid[i], root_uid + 1);
		CHECK_INT(gid[i], root_uid + 1);
	}
	n = sandbox_pids(id, pids, MAX_PIDS);
	CHECK(n >= 3); /* bwrap, sbx-init, the probe */
	for (size_t i = 0; i < n; i++) {
		if (!proc_ids(pids[i], "Uid:", uid)) {
			continue; /* exited meanwhile */
		}
		CHECK(uid[0] == root_uid || uid[0] == root_uid + 1);
		CHECK(uid[0] != 0);
	}
	/* Another sandbox has a pair of its own. */
	CHECK(proc_ids(jail_init_pid(other), "Uid:", uid));
	CHECK(uid[0] >= lo && uid[0] < hi);
	CHECK(uid[0] != root_uid && uid[0] != root_uid + 1);
	kill_and_check(id);
	CHECK(wait_uid_gone(root_uid));
	kill_and_check(other);
	check_unharmed();
}

/* ---- a dead jail is dead, even before its corpse is reaped ---- */

/* The state letter of PID (/proc/PID/stat field 3), or 0 if it is gone. */
static char
proc_state(pid_t pid, pid_t *ppid)
{
	char *st = proc_read(pid, "stat"), *p, c = 0;
	int pp = 0;

	if (st != NULL && (p = strrchr(st, ')')) != NULL &&
	    sscanf(p + 1, " %c %d", &c, &pp) == 2 && ppid != NULL) {
		*ppid = (pid_t) pp;
	}
	free(st);
	return c;
}

/* Wait (bounded) until ID is RUNNING again, as after a restart. */
static void
wait_running(const char *id)
{
	long long until = sbx_test_mono_ms() + 15000;
	Sbx__V1__SandboxInfo *info;
	bool running = false;
	sbx_err err;

	while (!running && sbx_test_mono_ms() < until) {
		if ((info = sbxd_get(&fx, id, &err)) != NULL) {
			running = info->state ==
			          SBX__V1__SANDBOX_STATE__STATE_RUNNING;
			sbx__v1__sandbox_info__free_unpacked(info, NULL);
		}
		if (!running) {
			usleep(20000); /* poll interval */
		}
	}
	CHECK(running);
}

/* A jail whose PID 1 was killed while sbxd was down, and whose corpse
 * bwrap has not reaped yet (a zombie, as on a loaded host), is found dead
 * at the restart: not reattached, and its end is told as it happened. */
static void
test_zombie_jail_at_restart(void **state)
{
	char *id = create_sb(SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT, 0, 0, 0);
	pid_t init = jail_init_pid(id), bwrap = 0;
	Sbx__V1__SandboxInfo *info = NULL;
	long long until;
	unsigned uid[4];
	sbx_err err = SBX_OK;

	(void) state;
	CHECK(proc_state(init, &bwrap) != 0);
	CHECK(cmdline_is(bwrap, "/usr/bin/bwrap"));
	CHECK(proc_ids(init, "Uid:", uid));
	sbxd_crash(&fx);
	/* A stopped bwrap cannot reap: sbx-init stays a zombie. */
	CHECK_INT(kill(bwrap, SIGSTOP), 0);
	CHECK_INT(kill(init, SIGKILL), 0);
	until = sbx_test_mono_ms() + 10000;
	while (proc_state(init, NULL) != 'Z' && sbx_test_mono_ms() < until) {
		usleep(10000); /* poll interval */
	}
	CHECK_INT(proc_state(init, NULL), 'Z');
	CHECK_INT(sbxd_restart(&fx), 0);
	until = sbx_test_mono_ms() + 15000;
	while ((info = sbxd_get(&fx, id, &err)) != NULL && sbx_test_mono_ms() < until) {
		sbx__v1__sandbox_info__free_unpacked(info, NULL);
		usleep(20000); /* poll interval */
	}
	CHECK(info == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	if (strstr(sbx_last_error(), "while sbxd was down") == NULL) {
		fprintf(stderr, "end: %s\n", sbx_last_error());
	}
	CHECK(strstr(sbx_last_error(), "while sbxd was down") != NULL);
	/* The kill took bwrap too (SIGKILL ends a stopped process). */
	if (kill(bwrap, SIGCONT) != 0) {
		CHECK_INT(errno, ESRCH);
	}
	CHECK(wait_uid_gone(uid[0]));
	free(id);
	wait_running(bystander);
	check_unharmed();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network_deny_and_default),
		cmocka_unit_test(test_network_allow),
		cmocka_unit_test(test_fork_bomb),
		cmocka_unit_test(test_small_pids_limits),
		cmocka_unit_test(test_memory_hog),
		cmocka_unit_test(test_cpu_limit),
		cmocka_unit_test(test_output_flood),
		cmocka_unit_test(test_cross_sandbox),
		cmocka_unit_test(test_privileges),
		cmocka_unit_test(test_host_uids),
		cmocka_unit_test(test_zombie_jail_at_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
