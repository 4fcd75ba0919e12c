/*
 * bwrap command line, the fork/exec of it, and the privileged steps around
 * it. The child between fork and exec uses only async-signal-safe calls and
 * reports the failing step and errno through a CLOEXEC pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "jail.h"
#include "log.h"
#include "syscall_filter.h"

/* Fixed fd numbers in the bwrap process. */
#define FD_INFO 3
#define FD_BLOCK 4
#define FD_SECCOMP 5
#define FD_ERR 6

/* /etc entries a sandbox sees (read-only, when the host has them). The
 * rest of the host's /etc stays out: it may hold secrets. */
static const char *const etc_entries[] = {
	"alternatives", "bash.bashrc", "ca-certificates",
	"ca-certificates.conf", "debian_version", "fonts", "gai.conf",
	"host.conf", "inputrc", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"locale.alias", "localtime", "magic", "magic.mime", "mailcap",
	"matplotlibrc", "mime.types", "os-release", "profile", "profile.d",
	"protocols", "python3", "python3.11", "resolv.conf", "rpc",
	"services", "skel", "ssl", "terminfo", "timezone", "ethertypes",
};

/* Generated files that replace the host's. */
static const char *const etc_generated[] = {"passwd", "group", "hosts",
                                            "hostname", "nsswitch.conf"};

static const char *const usr_links[] = {"bin", "sbin", "lib", "lib64"};

struct argv {
	char **v;
	size_t n;
	size_t cap;
	bool failed;
};

static void
argv_add(struct argv *a, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
argv_add(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (a->failed) {
		return;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap != 0 ? a->cap * 2 : 128;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (v == NULL) {
			a->failed = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		a->failed = true;
		return;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void
argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i]);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static sbx_err
write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	          0644);
	if (fd < 0) {
		return SBX_EINTERNAL;
	}
	if (write(fd, text, len) != (ssize_t) len || fchmod(fd, 0644) != 0) {
		close(fd);
		return SBX_EINTERNAL;
	}
	close(fd);
	return SBX_OK;
}

static sbx_err
jail_write_etc(struct jail_env *env, const struct config *cfg)
{
	char hosts[256], hostname[128];
	const char *texts[5];

	snprintf(hosts, sizeof(hosts),
	         "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost\n",
	         cfg->hostname);
	snprintf(hostname, sizeof(hostname), "%s\n", cfg->hostname);
	texts[0] = "root:x:0:0:root:/root:/bin/bash\n"
	           "user:x:1000:1000:user:/home/user:/bin/bash\n"
	           "nobody:x:65534:65534:nobody:/nonexistent:"
	           "/usr/sbin/nologin\n";
	texts[1] = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";
	texts[2] = hosts;
	texts[3] = hostname;
	texts[4] = "passwd: files\ngroup: files\nshadow: files\n"
	           "hosts: files dns\nnetworks: files\nprotocols: files\n"
	           "services: files\n";
	if (mkdir(env->etc_dir, 0755) != 0 && errno != EEXIST) {
		return SBX_EINTERNAL;
	}
	for (size_t i = 0; i < 5; i++) {
		if (write_file(env->etc_dir, etc_generated[i], texts[i]) !=
		    SBX_OK) {
			return SBX_EINTERNAL;
		}
	}
	return SBX_OK;
}

/* Copy sbx-init to <state_dir>/bin/sbx-init (0755, atomically replaced). */
static sbx_err
jail_copy_init(struct jail_env *env, const struct config *cfg, char *why,
               size_t whylen)
{
	char dir[4096], tmp[4200], buf[65536];
	int in = -1, out = -1;
	sbx_err rv = SBX_EINTERNAL;
	ssize_t n;

	snprintf(dir, sizeof(dir), "%s/bin", cfg->state_dir);
	snprintf(tmp, sizeof(tmp), "%s/sbx-init.tmp", dir);
	if (asprintf(&env->init_path, "%s/sbx-init", dir) < 0) {
		env->init_path = NULL;
		return SBX_ENOMEM;
	}
	if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
	    (in = open(cfg->init_path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	                             O_NOFOLLOW,
	                0755)) < 0) {
		snprintf(why, whylen, "copy sbx-init to %s: %s", dir,
		         strerror(errno));
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t) n) != n) {
			n = -1;
			break;
		}
	}
	if (n < 0 || fchmod(out, 0755) != 0 || fsync(out) != 0 ||
	    rename(tmp, env->init_path) != 0) {
		snprintf(why, whylen, "copy sbx-init: %s", strerror(errno));
		goto out;
	}
	rv = SBX_OK;
out:
	if (in >= 0) {
		close(in);
	}
	if (out >= 0) {
		close(out);
	}
	return rv;
}

sbx_err
jail_env_init(struct jail_env *env, const struct config *cfg, char *why,
              size_t whylen)
{
	struct stat st;
	char path[64];

	memset(env, 0, sizeof(*env));
	env->seccomp_fd = -1;
	env->bwrap_path = cfg->bwrap_path;
	if (access(cfg->bwrap_path, X_OK) != 0) {
		snprintf(why, whylen, "bwrap %s: %s", cfg->bwrap_path,
		         strerror(errno));
		return SBX_ESTATE;
	}
	if (access(cfg->init_path, X_OK) != 0) {
		snprintf(why, whylen, "sbx-init %s: %s", cfg->init_path,
		         strerror(errno));
		return SBX_ESTATE;
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/%s", usr_links[i]);
		env->merged[i] = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
	}
	if (asprintf(&env->etc_dir, "%s/jail-etc", cfg->state_dir) < 0) {
		env->etc_dir = NULL;
		return SBX_ENOMEM;
	}
	if (jail_copy_init(env, cfg, why, whylen) != SBX_OK) {
		return SBX_EINTERNAL;
	}
	if (jail_write_etc(env, cfg) != SBX_OK) {
		snprintf(why, whylen, "write %s: %s", env->etc_dir,
		         strerror(errno));
		return SBX_EINTERNAL;
	}
	return syscall_filter_fd(&env->seccomp_fd, why, whylen);
}

void
jail_env_fini(struct jail_env *env)
{
	if (env->seccomp_fd >= 0) {
		close(env->seccomp_fd);
	}
	free(env->etc_dir);
	free(env->init_path);
	memset(env, 0, sizeof(*env));
	env->seccomp_fd = -1;
}

static void
jail_args(struct argv *a, const struct jail_env *env,
          const struct jail_spec *s)
{
	argv_add(a, "%s", env->bwrap_path);
	argv_add(a, "--unshare-user");
	argv_add(a, "--unshare-pid");
	argv_add(a, "--unshare-ipc");
	argv_add(a, "--unshare-uts");
	argv_add(a, "--unshare-cgroup-try");
	if (!s->net_allow) {
		argv_add(a, "--unshare-net");
	}
	argv_add(a, "--userns-block-fd");
	argv_add(a, "%d", FD_BLOCK);
	argv_add(a, "--info-fd");
	argv_add(a, "%d", FD_INFO);
	argv_add(a, "--seccomp");
	argv_add(a, "%d", FD_SECCOMP);
	argv_add(a, "--uid");
	argv_add(a, "0");
	argv_add(a, "--gid");
	argv_add(a, "0");
	argv_add(a, "--hostname");
	argv_add(a, "%s", s->hostname);
	/* PID 1 needs these to start processes as "user" and signal them;
	 * they hold only inside the jail's user namespace. */
	static const char *const caps[] = {
		"CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN",
		"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
		"CAP_NET_BIND_SERVICE",
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		argv_add(a, "--cap-add");
		argv_add(a, "%s", caps[i]);
	}
	/* bwrap 0.8 makes the parents of bind mounts 0700 (it reads an unset
	 * --perms as 0); make the ones we rely on first, readable by all. */
	static const char *const dirs[] = {"/etc", "/home", "/opt", "/opt/sbx",
	                                   "/var"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		argv_add(a, "--perms");
		argv_add(a, "0755");
		argv_add(a, "--dir");
		argv_add(a, "%s", dirs[i]);
	}
	argv_add(a, "--ro-bind");
	argv_add(a, "/usr");
	argv_add(a, "/usr");
	for (size_t i = 0; i < 4; i++) {
		argv_add(a, env->merged[i] ? "--symlink" : "--ro-bind-try");
		argv_add(a, env->merged[i] ? "usr/%s" : "/%s", usr_links[i]);
		argv_add(a, "/%s", usr_links[i]);
	}
	for (size_t i = 0; i < sizeof(etc_entries) / sizeof(etc_entries[0]);
	     i++) {
		argv_add(a, "--ro-bind-try");
		argv_add(a, "/etc/%s", etc_entries[i]);
		argv_add(a, "/etc/%s", etc_entries[i]);
	}
	for (size_t i = 0; i < 5; i++) {
		argv_add(a, "--ro-bind");
		argv_add(a, "%s/%s", env->etc_dir, etc_generated[i]);
		argv_add(a, "/etc/%s", etc_generated[i]);
	}
	argv_add(a, "--proc");
	argv_add(a, "/proc");
	argv_add(a, "--dev");
	argv_add(a, "/dev");
	static const char *const tmpfs[] = {"/tmp", "/dev/shm", "/var/tmp"};
	for (size_t i = 0; i < 3; i++) {
		argv_add(a, "--perms");
		argv_add(a, "1777");
		argv_add(a, "--size");
		argv_add(a, "%llu", (unsigned long long) s->tmp_bytes);
		argv_add(a, "--tmpfs");
		argv_add(a, "%s", tmpfs[i]);
	}
	argv_add(a, "--size");
	argv_add(a, "1048576");
	argv_add(a, "--tmpfs");
	argv_add(a, "/run");
	argv_add(a, "--bind");
	argv_add(a, "%s", s->run_dir);
	argv_add(a, JAIL_RUN_DIR);
	argv_add(a, "--bind");
	argv_add(a, "%s/home", s->sandbox_dir);
	argv_add(a, "/home/user");
	argv_add(a, "--bind");
	argv_add(a, "%s/root", s->sandbox_dir);
	argv_add(a, "/root");
	argv_add(a, "--ro-bind");
	argv_add(a, "%s", env->init_path);
	argv_add(a, JAIL_INIT_PATH);
	argv_add(a, "--chdir");
	argv_add(a, "/");
	argv_add(a, "--new-session");
	argv_add(a, "--as-pid-1");
	argv_add(a, "--");
	argv_add(a, JAIL_INIT_PATH);
	argv_add(a, "--socket");
	argv_add(a, JAIL_INIT_SOCKET);
}

/* The child's copy of its error pipe's fd; written only in the child. */
static int child_err_fd = -1;

/* Child-side failure report: step and errno, then exit. */
static void __attribute__((noreturn))
child_fail(int step)
{
	int msg[2] = {step, errno};

	if (write(child_err_fd, msg, sizeof(msg)) < 0) {
		/* Nothing left to tell; the parent sees EOF. */
	}
	_exit(127);
}

enum child_step {
	STEP_SIGNALS = 1,
	STEP_SETSID,
	STEP_CGROUP,
	STEP_SECCOMP,
	STEP_FDS,
	STEP_RLIMIT,
	STEP_IDS,
	STEP_EXEC,
};

static const char *const step_names[] = {
	"", "signals", "setsid", "join cgroup", "open seccomp filter",
	"set up fds", "rlimits", "switch uid", "exec bwrap",
};

/* Move FD to a number at or above 64 so that dup2 into 3..6 cannot clobber
 * another source. Async-signal-safe. */
static int
fd_high(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 64);
}

/* Set resource R to at most V. Only lowers: raising past the hard limit
 * needs CAP_SYS_RESOURCE, which sbxd may not have. Async-signal-safe. */
static int
rlimit_lower(__rlimit_resource_t r, rlim_t v)
{
	struct rlimit rl;

	if (getrlimit(r, &rl) != 0) {
		return -1;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v) {
		v = rl.rlim_max;
	}
	rl.rlim_cur = rl.rlim_max = v;
	return setrlimit(r, &rl);
}

struct child_args {
	char **argv;
	char **envp;
	int info_w, block_r, seccomp, err_w, devnull, log_fd;
	const int *cgroup_fds;
	size_t n_cgroup_fds;
	uid_t uid;
	gid_t gid;
	rlim_t nproc;
};

static void __attribute__((noreturn))
jail_child(const struct child_args *c)
{
	struct sigaction sa;
	sigset_t none;
	char self[40] = "/proc/self/fd/";
	int hi[6], sfd, n, i;

	child_err_fd = c->err_w;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&none);
	if ((errno = pthread_sigmask(SIG_SETMASK, &none, NULL)) != 0 ||
	    sigaction(SIGPIPE, &sa, NULL) != 0) {
		child_fail(STEP_SIGNALS);
	}
	if (setsid() < 0) {
		child_fail(STEP_SETSID);
	}
	for (size_t k = 0; k < c->n_cgroup_fds; k++) {
		if (write(c->cgroup_fds[k], "0", 1) != 1) {
			child_fail(STEP_CGROUP);
		}
	}
	/* A fresh open file description, so bwrap reads from offset 0
	 * whatever other children did with the shared memfd. */
	for (n = c->seccomp, i = 14; n > 0; n /= 10) {
		i++;
	}
	self[i] = '\0';
	for (n = c->seccomp; i > 14; n /= 10) {
		self[--i] = (char) ('0' + n % 10);
	}
	if ((sfd = open(self, O_RDONLY | O_CLOEXEC)) < 0) {
		child_fail(STEP_SECCOMP);
	}
	/* Move every source out of the way of the fixed numbers first, so
	 * that no dup2 below clobbers a source it still needs. */
	hi[0] = fd_high(c->info_w);
	hi[1] = fd_high(c->block_r);
	hi[2] = fd_high(sfd);
	hi[3] = fd_high(c->err_w);
	hi[4] = fd_high(c->devnull);
	hi[5] = fd_high(c->log_fd);
	for (i = 0; i < 6; i++) {
		if (hi[i] < 0) {
			child_fail(STEP_FDS);
		}
	}
	child_err_fd = hi[3];
	if (dup2(hi[4], 0) < 0 || dup2(hi[5], 1) < 0 || dup2(hi[5], 2) < 0 ||
	    dup2(hi[0], FD_INFO) < 0 || dup2(hi[1], FD_BLOCK) < 0 ||
	    dup2(hi[2], FD_SECCOMP) < 0 || dup2(hi[3], FD_ERR) < 0) {
		child_fail(STEP_FDS);
	}
	child_err_fd = FD_ERR;
	if (fcntl(FD_ERR, F_SETFD, FD_CLOEXEC) < 0 ||
	    close_range(FD_ERR + 1, ~0U, 0) < 0) {
		child_fail(STEP_FDS);
	}
	if (rlimit_lower(RLIMIT_NPROC, c->nproc) != 0 ||
	    rlimit_lower(RLIMIT_CORE, 0) != 0 ||
	    rlimit_lower(RLIMIT_NOFILE, 65536) != 0) {
		child_fail(STEP_RLIMIT);
	}
	if (setgroups(0, NULL) != 0 || setresgid(c->gid, c->gid, c->gid) != 0 ||
	    setresuid(c->uid, c->uid, c->uid) != 0) {
		child_fail(STEP_IDS);
	}
	execve(c->argv[0], c->argv, c->envp);
	child_fail(STEP_EXEC);
}

/* Read the child's report: 0 bytes means bwrap was exec'd. */
static sbx_err
jail_child_result(int err_r, pid_t pid, char *why, size_t whylen)
{
	int msg[2];
	ssize_t n;

	do {
		n = read(err_r, msg, sizeof(msg));
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		return SBX_OK;
	}
	if (n == (ssize_t) sizeof(msg) && msg[0] > 0 && msg[0] <= STEP_EXEC) {
		snprintf(why, whylen, "jail: %s: %s", step_names[msg[0]],
		         strerror(msg[1]));
	} else {
		snprintf(why, whylen, "jail: child failed before exec");
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
	return SBX_EINTERNAL;
}

sbx_err
jail_spawn(const struct jail_env *env, const struct jail_spec *s,
           struct jail_start *out, char *why, size_t whylen)
{
	static char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	struct argv a = {0};
	struct child_args c;
	int info[2] = {-1, -1}, block[2] = {-1, -1}, err[2] = {-1, -1};
	int devnull = -1;
	sbx_err rv = SBX_EINTERNAL;
	pid_t pid;

	jail_args(&a, env, s);
	if (a.failed) {
		argv_free(&a);
		return SBX_ENOMEM;
	}
	if (pipe2(info, O_CLOEXEC) != 0 || pipe2(block, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "jail pipes: %s", strerror(errno));
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.argv = a.v;
	c.envp = envp;
	c.info_w = info[1];
	c.block_r = block[0];
	c.seccomp = env->seccomp_fd;
	c.err_w = err[1];
	c.devnull = devnull;
	c.log_fd = s->log_fd;
	c.cgroup_fds = s->cgroup_fds;
	c.n_cgroup_fds = s->n_cgroup_fds;
	c.uid = s->host_root;
	c.gid = (gid_t) s->host_root;
	c.nproc = s->nproc;
	if ((pid = fork()) < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		jail_child(&c);
	}
	close(err[1]);
	err[1] = -1;
	if ((rv = jail_child_result(err[0], pid, why, whylen)) != SBX_OK) {
		goto out;
	}
	if (fcntl(info[0], F_SETFL, O_NONBLOCK) != 0) {
		/* The loop reads it when epoll says so; blocking is harmless. */
	}
	out->bwrap_pid = pid;
	out->info_fd = info[0];
	out->block_fd = block[1];
	info[0] = block[1] = -1;
out:
	for (int i = 0; i < 2; i++) {
		if (info[i] >= 0) {
			close(info[i]);
		}
		if (block[i] >= 0) {
			close(block[i]);
		}
		if (err[i] >= 0) {
			close(err[i]);
		}
	}
	if (devnull >= 0) {
		close(devnull);
	}
	argv_free(&a);
	return rv;
}

sbx_err
jail_info_pid(const char *json, size_t len, pid_t *pid)
{
	static const char key[] = "\"child-pid\"";
	const char *p, *end = json + len;
	long v = 0;

	p = memmem(json, len, key, sizeof(key) - 1);
	if (p == NULL) {
		return SBX_EINVAL;
	}
	p += sizeof(key) - 1;
	while (p < end && (*p == ' ' || *p == ':' || *p == '\t')) {
		p++;
	}
	if (p == end || *p < '0' || *p > '9') {
		return SBX_EINVAL;
	}
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 0x3fffffff) {
			return SBX_EINVAL;
		}
	}
	if (v <= 0) {
		return SBX_EINVAL;
	}
	*pid = (pid_t) v;
	return SBX_OK;
}

static sbx_err
write_proc(pid_t pid, const char *file, const char *text, char *why,
           size_t whylen)
{
	char path[64];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 ||
	    write(fd, text, len) != (ssize_t) len) {
		snprintf(why, whylen, "write %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return SBX_EINTERNAL;
	}
	close(fd);
	return SBX_OK;
}

sbx_err
jail_map_ids(pid_t pid, uid_t host_root, uid_t host_user, char *why,
             size_t whylen)
{
	char map[96];
	sbx_err rv;

	snprintf(map, sizeof(map), "0 %u 1\n1000 %u 1\n", (unsigned) host_root,
	         (unsigned) host_user);
	if ((rv = write_proc(pid, "uid_map", map, why, whylen)) != SBX_OK) {
		return rv;
	}
	return write_proc(pid, "gid_map", map, why, whylen);
}

sbx_err
jail_release(int block_fd)
{
	ssize_t n;

	do {
		n = write(block_fd, "1", 1);
	} while (n < 0 && errno == EINTR);
	close(block_fd);
	return n == 1 ? SBX_OK : SBX_EINTERNAL;
}

sbx_err
jail_start_time(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long v;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return SBX_ENOTFOUND;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return SBX_ENOTFOUND;
	}
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields are
	 * counted from the last ')'. Field 3 follows it; start is field 22. */
	if ((p = strrchr(buf, ')')) == NULL) {
		return SBX_EINTERNAL;
	}
	/* Field 3 is the state. A killed PID 1 stays a zombie until bwrap
	 * reaps it, which may take a while on a loaded host; the jail is
	 * gone all the same (at a restart, "jail exited while sbxd was down"
	 * instead of a reattach to a corpse). */
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X')) {
		return SBX_ENOTFOUND;
	}
	for (field = 2; field < 22 && p != NULL; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p == NULL || sscanf(p + 1, "%llu", &v) != 1) {
		return SBX_EINTERNAL;
	}
	*start = v;
	return SBX_OK;
}
