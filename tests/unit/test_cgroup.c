/*
 * cgroup.c: layout detection, limits, join, kill, stats and fail-closed
 * creation on fake v1, v2 and hybrid trees (plain directories described by
 * fake mountinfo and self files), then once on the real host when root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "sbx_test.h"

#define MIB (UINT64_C(1) << 20)

/* A fake tree: ROOT holds the "mounts"; "@" in texts stands for ROOT. */
struct fake {
	char *root;
	char mountinfo[PATH_MAX];
	char self[PATH_MAX];
	struct cgroup_paths paths;
	struct cgroup_env *env;
};

/* OUT (PATH_MAX bytes) = "A/B". */
static void
join(char *out, const char *a, const char *b)
{
	CHECK(snprintf(out, PATH_MAX, "%s/%s", a, b) < PATH_MAX);
}

static void
fk_path(const struct fake *f, const char *rel, char *out)
{
	join(out, f->root, rel);
}

static void
fk_mkdir(const struct fake *f, const char *rel)
{
	char p[PATH_MAX];

	fk_path(f, rel, p);
	for (char *s = p + strlen(f->root) + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			CHECK(mkdir(p, 0755) == 0 || errno == EEXIST);
			*s = c;
			if (c == '\0') {
				break;
			}
		}
	}
}

/* Write TEXT, with "@" replaced by the root, to ROOT/REL. */
static void
fk_put(const struct fake *f, const char *rel, const char *text)
{
	char p[PATH_MAX];
	FILE *fp;

	fk_path(f, rel, p);
	CHECK((fp = fopen(p, "we")) != NULL);
	for (; *text != '\0'; text++) {
		if (*text == '@') {
			fputs(f->root, fp);
		} else {
			fputc(*text, fp);
		}
	}
	CHECK(fclose(fp) == 0);
}

/* ROOT/REL holds exactly WANT; WANT NULL means it must not exist. */
static void
fk_check(const struct fake *f, const char *rel, const char *want)
{
	char p[PATH_MAX], *got;

	fk_path(f, rel, p);
	got = sbx_test_read_file(p, NULL);
	if (want == NULL && got != NULL) {
		fail_msg("%s exists: \"%s\"", p, got);
	} else if (want != NULL && got == NULL) {
		fail_msg("%s: %s", p, strerror(errno));
	} else if (want != NULL && strcmp(got, want) != 0) {
		fail_msg("%s: got \"%s\", want \"%s\"", p, got, want);
	}
	free(got);
}

static bool
fk_isdir(const struct fake *f, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	fk_path(f, rel, p);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* What cgroupfs does on rmdir: the control files go with the directory. */
static void
fk_empty(const struct fake *f, const char *rel)
{
	char p[PATH_MAX], q[PATH_MAX];
	struct dirent *de;
	DIR *d;

	fk_path(f, rel, p);
	CHECK((d = opendir(p)) != NULL);
	while ((de = readdir(d)) != NULL) {
		if (de->d_type == DT_REG) {
			join(q, p, de->d_name);
			CHECK(unlink(q) == 0);
		}
	}
	closedir(d);
}

static void
fk_init(struct fake *f, const char *name, const char *mountinfo,
        const char *self)
{
	memset(f, 0, sizeof(*f));
	f->root = sbx_test_scratch(name);
	fk_put(f, "mountinfo", mountinfo);
	fk_put(f, "self", self);
	fk_path(f, "mountinfo", f->mountinfo);
	fk_path(f, "self", f->self);
	f->paths.mountinfo = f->mountinfo;
	f->paths.self = f->self;
	f->paths.subtree = "sbx";
}

static int
fk_teardown(void **state)
{
	struct fake *f = *state;

	cgroup_env_free(f->env);
	sbx_test_scratch_free(f->root);
	free(f);
	return 0;
}

#define V1_MEM "memory/nested/x/sbx/" /* the v1 memory subtree */

/* v1: memory nested like this host's, cpu co-mounted with cpuacct, a cpuset
 * hierarchy that must not be mistaken for cpu. */
static int
v1_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	char why[256] = "";

	fk_init(f, "cg-v1",
	        "22 1 0:20 / @ rw - tmpfs tmpfs rw\n"
	        "30 22 0:28 / @/cpuset rw - cgroup cgroup rw,cpuset\n"
	        "31 22 0:26 / @/memory rw,nosuid shared:9 - cgroup cgroup "
	        "rw,memory\n"
	        "32 22 0:27 / @/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	        "33 22 0:29 / @/pids rw shared:1 master:2 - cgroup cgroup "
	        "rw,pids\n",
	        "5:pids:/\n4:cpuset:/\n3:cpu,cpuacct:/\n2:memory:/nested/x\n"
	        "0::/\n");
	fk_mkdir(f, "memory/nested/x");
	fk_mkdir(f, "cpu,cpuacct");
	fk_mkdir(f, "cpuset");
	fk_mkdir(f, "pids");
	*state = f;
	if (cgroup_env_open(&f->env, &f->paths, why, sizeof(why)) != SBX_OK) {
		fprintf(stderr, "v1 open: %s\n", why);
		return -1;
	}
	return 0;
}

static void
test_v1_limits(void **state)
{
	struct fake *f = *state;
	struct cgroup_limits lim = {64 * MIB, 1500, 32};
	struct cgroup_limits none = {0, 0, 0};
	char why[256];

	CHECK_STR(cgroup_env_mode(f->env), "v1");
	CHECK(fk_isdir(f, V1_MEM));
	CHECK(fk_isdir(f, "cpu,cpuacct/sbx"));
	CHECK(fk_isdir(f, "pids/sbx"));
	CHECK(!fk_isdir(f, "cpuset/sbx"));

	CHECK_OK(cgroup_create(f->env, "abc", &lim, why, sizeof(why)));
	CHECK(cgroup_exists(f->env, "abc"));
	fk_check(f, V1_MEM "abc/memory.limit_in_bytes", "67108864");
	/* memsw is written only where swap accounting made the file. */
	fk_check(f, V1_MEM "abc/memory.memsw.limit_in_bytes", NULL);
	fk_check(f, V1_MEM "abc/pids.max", NULL);
	fk_check(f, "cpu,cpuacct/sbx/abc/cpu.cfs_period_us", "100000");
	fk_check(f, "cpu,cpuacct/sbx/abc/cpu.cfs_quota_us", "150000");
	fk_check(f, "cpu,cpuacct/sbx/abc/memory.limit_in_bytes", NULL);
	fk_check(f, "pids/sbx/abc/pids.max", "32");

	/* A second create fails and leaves the first one alone. */
	CHECK_ERR(cgroup_create(f->env, "abc", &lim, why, sizeof(why)),
	          SBX_EEXIST);
	fk_check(f, "pids/sbx/abc/pids.max", "32");

	/* Zero limits write nothing at all. */
	CHECK_OK(cgroup_create(f->env, "z", &none, why, sizeof(why)));
	fk_check(f, V1_MEM "z/memory.limit_in_bytes", NULL);
	fk_check(f, "cpu,cpuacct/sbx/z/cpu.cfs_period_us", NULL);
	fk_check(f, "cpu,cpuacct/sbx/z/cpu.cfs_quota_us", NULL);
	fk_check(f, "pids/sbx/z/pids.max", NULL);
	CHECK_OK(cgroup_remove(f->env, "z"));
	CHECK(!cgroup_exists(f->env, "z"));
}

static void
test_v1_join_remove(void **state)
{
	struct fake *f = *state;
	struct cgroup_limits lim = {64 * MIB, 1500, 32};
	int fds[CGROUP_MAX_FDS];
	char why[256];
	size_t n = 0;

	CHECK_OK(cgroup_create(f->env, "abc", &lim, why, sizeof(why)));
	/* One fd per hierarchy, in memory, cpu, pids order. */
	fk_put(f, V1_MEM "abc/cgroup.procs", "");
	fk_put(f, "cpu,cpuacct/sbx/abc/cgroup.procs", "");
	fk_put(f, "pids/sbx/abc/cgroup.procs", "");
	CHECK_OK(cgroup_join_fds(f->env, "abc", fds, &n));
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++) {
		static const char tag[] = "mcp";

		CHECK(write(fds[i], &tag[i], 1) == 1);
		CHECK(fcntl(fds[i], F_GETFD) == FD_CLOEXEC);
		close(fds[i]);
	}
	fk_check(f, V1_MEM "abc/cgroup.procs", "m");
	fk_check(f, "cpu,cpuacct/sbx/abc/cgroup.procs", "c");
	fk_check(f, "pids/sbx/abc/cgroup.procs", "p");

	/* A non-empty directory stands in for a cgroup with tasks. */
	CHECK_ERR(cgroup_remove(f->env, "abc"), SBX_ESTATE);
	fk_empty(f, V1_MEM "abc");
	fk_empty(f, "cpu,cpuacct/sbx/abc");
	fk_empty(f, "pids/sbx/abc");
	CHECK_OK(cgroup_remove(f->env, "abc"));
	CHECK(!cgroup_exists(f->env, "abc"));
	CHECK(!fk_isdir(f, V1_MEM "abc"));
	CHECK_OK(cgroup_remove(f->env, "abc"));
	CHECK_ERR(cgroup_join_fds(f->env, "abc", fds, &n), SBX_ENOTFOUND);
}

static void
test_v1_fail_closed(void **state)
{
	struct fake *f = *state;
	struct cgroup_limits lim = {64 * MIB, 1000, 32};
	char why[256] = "", a[PATH_MAX], b[PATH_MAX];

	/* Existing in one hierarchy only: what we made goes, theirs stays. */
	fk_mkdir(f, "pids/sbx/dup");
	CHECK_ERR(cgroup_create(f->env, "dup", &lim, why, sizeof(why)),
	          SBX_EEXIST);
	CHECK(!fk_isdir(f, V1_MEM "dup"));
	CHECK(!fk_isdir(f, "cpu,cpuacct/sbx/dup"));
	CHECK(fk_isdir(f, "pids/sbx/dup"));

	/* A subtree that is a file fails the last mkdir (ENOTDIR). */
	fk_path(f, "pids/sbx", a);
	fk_path(f, "pids/sbx-saved", b);
	CHECK(rename(a, b) == 0);
	fk_put(f, "pids/sbx", "");
	CHECK_ERR(cgroup_create(f->env, "ff", &lim, why, sizeof(why)),
	          SBX_EINTERNAL);
	CHECK(strstr(why, "pids/sbx/ff") != NULL);
	CHECK(strstr(why, "Not a directory") != NULL);
	CHECK(!fk_isdir(f, V1_MEM "ff"));
	CHECK(!fk_isdir(f, "cpu,cpuacct/sbx/ff"));
	CHECK(!cgroup_exists(f->env, "ff"));
}

static void
test_v1_bad_ids(void **state)
{
	static const char *const bad[] = {"", "a/b", "..", ".", "x..y",
	                                  "../../etc", ".hidden"};
	struct fake *f = *state;
	struct cgroup_limits lim = {MIB, 100, 1};
	struct cgroup_stat st;
	int fds[CGROUP_MAX_FDS];
	char why[128];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_ERR(cgroup_create(f->env, bad[i], &lim, why, sizeof(why)),
		          SBX_EINVAL);
		CHECK_ERR(cgroup_join_fds(f->env, bad[i], fds, &n), SBX_EINVAL);
		CHECK_ERR(cgroup_kill(f->env, bad[i]), SBX_EINVAL);
		CHECK_ERR(cgroup_remove(f->env, bad[i]), SBX_EINVAL);
		CHECK_ERR(cgroup_read_stat(f->env, bad[i], &st), SBX_EINVAL);
		CHECK(!cgroup_exists(f->env, bad[i]));
	}
}

static void
test_v1_kill_and_stat(void **state)
{
	struct fake *f = *state;
	struct cgroup_limits lim = {0, 0, 0};
	struct cgroup_stat st = {0};
	char why[128], procs[64];
	int status;
	pid_t child;

	CHECK_ERR(cgroup_kill(f->env, "k"), SBX_ENOTFOUND);
	CHECK_ERR(cgroup_read_stat(f->env, "k", &st), SBX_ENOTFOUND);
	CHECK_OK(cgroup_create(f->env, "k", &lim, why, sizeof(why)));

	/* Missing stat files read as zero. */
	st.pids = 99;
	CHECK_OK(cgroup_read_stat(f->env, "k", &st));
	CHECK_INT(st.memory_bytes, 0);
	CHECK_INT(st.cpu_usec, 0);
	CHECK_INT(st.pids, 0);

	fk_put(f, V1_MEM "k/memory.usage_in_bytes", "12345\n");
	fk_put(f, "cpu,cpuacct/sbx/k/cpuacct.usage", "5000999\n");
	fk_put(f, "pids/sbx/k/pids.current", "3\n");
	CHECK_OK(cgroup_read_stat(f->env, "k", &st));
	CHECK_INT(st.memory_bytes, 12345);
	CHECK_INT(st.cpu_usec, 5000);
	CHECK_INT(st.pids, 3);

	/* The list names the test itself and junk: only the child dies, so a
	 * wrong kill takes this test down. */
	if ((child = fork()) == 0) {
		pause();
		_exit(0);
	}
	CHECK(child > 0);
	snprintf(procs, sizeof(procs), "junk\n%d\n12x\n%d\n", (int) getpid(),
	         (int) child);
	fk_put(f, V1_MEM "k/cgroup.procs", procs);
	CHECK_OK(cgroup_kill(f->env, "k"));
	kill(child, SIGTERM); /* backstop: a missed kill fails, not hangs */
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* v2 with sbxd in a non-root cgroup "/svc", allowed to move itself. */
static int
v2_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	fk_init(f, "cg-v2",
	        "40 22 0:30 / @/unified rw shared:4 - cgroup2 cgroup2 "
	        "rw,nsdelegate\n",
	        "0::/svc\n");
	fk_mkdir(f, "unified/svc");
	fk_put(f, "unified/cgroup.controllers", "cpuset cpu io memory pids\n");
	fk_put(f, "unified/svc/cgroup.controllers", "cpu io memory pids\n");
	f->paths.move_self = true;
	*state = f;
	return 0;
}

static void
test_v2_delegate_and_limits(void **state)
{
	struct fake *f = *state;
	struct cgroup_limits lim = {64 * MIB, 250, 10};
	struct cgroup_stat st;
	int fds[CGROUP_MAX_FDS];
	char why[256] = "";
	size_t n = 0;

	CHECK_OK(cgroup_env_open(&f->env, &f->paths, why, sizeof(why)));
	CHECK_STR(cgroup_env_mode(f->env), "v2");
	fk_check(f, "unified/svc/sbx-daemon/cgroup.procs", "0");
	fk_check(f, "unified/svc/cgroup.subtree_control", "+memory +cpu +pids");
	fk_check(f, "unified/svc/sbx/cgroup.subtree_control",
	         "+memory +cpu +pids");

	CHECK_OK(cgroup_create(f->env, "abc", &lim, why, sizeof(why)));
	fk_check(f, "unified/svc/sbx/abc/memory.max", "67108864");
	fk_check(f, "unified/svc/sbx/abc/memory.swap.max", NULL);
	fk_check(f, "unified/svc/sbx/abc/cpu.max", "25000 100000");
	fk_check(f, "unified/svc/sbx/abc/pids.max", "10");

	fk_put(f, "unified/svc/sbx/abc/cgroup.procs", "");
	CHECK_OK(cgroup_join_fds(f->env, "abc", fds, &n));
	CHECK_INT(n, 1);
	close(fds[0]);

	/* cgroup.kill is used where present: no pid is read. */
	fk_put(f, "unified/svc/sbx/abc/cgroup.procs", "1\n");
	fk_put(f, "unified/svc/sbx/abc/cgroup.kill", "");
	CHECK_OK(cgroup_kill(f->env, "abc"));
	fk_check(f, "unified/svc/sbx/abc/cgroup.kill", "1");

	fk_put(f, "unified/svc/sbx/abc/memory.current", "4096\n");
	fk_put(f, "unified/svc/sbx/abc/cpu.stat",
	       "nr_usage_usec 5\nusage_usec 777\nuser_usec 700\n");
	fk_put(f, "unified/svc/sbx/abc/pids.current", "2\n");
	CHECK_OK(cgroup_read_stat(f->env, "abc", &st));
	CHECK_INT(st.memory_bytes, 4096);
	CHECK_INT(st.cpu_usec, 777);
	CHECK_INT(st.pids, 2);
}

static void
test_v2_missing_controller(void **state)
{
	struct fake *f = *state;
	struct cgroup_env *env = NULL;
	char why[256] = "";

	/* Not in the root: bound elsewhere or not built. */
	fk_put(f, "unified/cgroup.controllers", "cpu memory\n");
	CHECK_ERR(cgroup_env_open(&env, &f->paths, why, sizeof(why)),
	          SBX_ESTATE);
	CHECK(strstr(why, "controller pids") != NULL);
	CHECK(strstr(why, "unified/cgroup.controllers") != NULL);

	/* In the root but not delegated to our cgroup. */
	fk_put(f, "unified/cgroup.controllers", "cpu memory pids\n");
	fk_put(f, "unified/svc/cgroup.controllers", "cpu pids\n");
	CHECK_ERR(cgroup_env_open(&env, &f->paths, why, sizeof(why)),
	          SBX_ESTATE);
	CHECK(strstr(why, "controller memory") != NULL);
	CHECK(strstr(why, "svc/cgroup.controllers") != NULL);
	CHECK(env == NULL);
	CHECK(!fk_isdir(f, "unified/svc/sbx"));
	CHECK(!fk_isdir(f, "unified/svc/sbx-daemon"));

	/* No cgroup2 mount and no v1 hierarchy either. */
	fk_put(f, "mountinfo", "22 1 0:20 / @ rw - tmpfs tmpfs rw\n");
	CHECK_ERR(cgroup_env_open(&env, &f->paths, why, sizeof(why)),
	          SBX_ESTATE);
	CHECK(strstr(why, "controller memory") != NULL);

	f->paths.subtree = "../up";
	CHECK_ERR(cgroup_env_open(&env, &f->paths, why, sizeof(why)),
	          SBX_EINVAL);
}

/* A cgroup namespace shows "/" for a cgroup that is not the real root
 * (it has cgroup.type), so sbxd must still leave it. */
static void
test_v2_namespace_root(void **state)
{
	struct fake *f = *state;
	char why[256] = "";

	fk_put(f, "self", "0::/\n");
	fk_put(f, "unified/cgroup.controllers", "cpu memory pids\n");
	fk_put(f, "unified/cgroup.type", "domain\n");
	CHECK_OK(cgroup_env_open(&f->env, &f->paths, why, sizeof(why)));
	fk_check(f, "unified/sbx-daemon/cgroup.procs", "0");
	fk_check(f, "unified/cgroup.subtree_control", "+memory +cpu +pids");
}

/* Memory on v1 (mounted at a path with a space), cpu and pids on the v2
 * root, which needs no move. */
static void
test_hybrid(void **state)
{
	struct fake *f;
	struct cgroup_limits lim = {1024 * MIB, 2000, 100};
	int fds[CGROUP_MAX_FDS];
	char why[256] = "";
	size_t n = 0;

	f = calloc(1, sizeof(*f));
	*state = f;
	fk_init(f, "cg-hybrid",
	        "35 31 0:32 / @/mem\\040ory rw - cgroup cgroup rw,memory\n"
	        "41 31 0:38 / @/unified rw - cgroup2 cgroup2 rw\n",
	        "4:memory:/\n0::/\n");
	fk_mkdir(f, "mem ory");
	fk_mkdir(f, "unified");
	fk_put(f, "unified/cgroup.controllers", "cpu pids\n");
	f->paths.move_self = true;

	CHECK_OK(cgroup_env_open(&f->env, &f->paths, why, sizeof(why)));
	CHECK_STR(cgroup_env_mode(f->env), "hybrid");
	CHECK(!fk_isdir(f, "unified/sbx-daemon"));
	fk_check(f, "unified/cgroup.subtree_control", "+cpu +pids");
	fk_check(f, "unified/sbx/cgroup.subtree_control", "+cpu +pids");

	CHECK_OK(cgroup_create(f->env, "h1", &lim, why, sizeof(why)));
	fk_check(f, "mem ory/sbx/h1/memory.limit_in_bytes", "1073741824");
	fk_check(f, "unified/sbx/h1/memory.max", NULL);
	fk_check(f, "unified/sbx/h1/cpu.max", "200000 100000");
	fk_check(f, "unified/sbx/h1/pids.max", "100");
	fk_put(f, "mem ory/sbx/h1/cgroup.procs", "");
	fk_put(f, "unified/sbx/h1/cgroup.procs", "");
	CHECK_OK(cgroup_join_fds(f->env, "h1", fds, &n));
	CHECK_INT(n, 2);
	close(fds[0]);
	close(fds[1]);
}

/* TOK is one of the comma-separated LIST ("rw,cpu,cpuacct"). */
static bool
has_tok(const char *list, const char *tok)
{
	char l[1100], t[80];

	snprintf(l, sizeof(l), ",%s,", list);
	snprintf(t, sizeof(t), ",%s,", tok);
	return strstr(l, t) != NULL;
}

/*
 * The real host. Paths are found independently of the module: /proc/PID/
 * cgroup for PID's cgroup of controller CTL, mountinfo for the mount (v1 if
 * CTL has a v1 mount, else the cgroup2 one; mount roots assumed "/").
 */
static bool
host_dir(const char *ctl, pid_t pid, char *out)
{
	char file[64], *line = NULL, *ctls, *path, rel[2][PATH_MAX] = {"", ""};
	char mnt[2][PATH_MAX] = {"", ""}, fs[64], opts[1024], pt[PATH_MAX];
	size_t cap = 0;
	FILE *f;
	int v2;

	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int) pid);
	CHECK((f = fopen(file, "re")) != NULL);
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if ((ctls = strchr(line, ':')) == NULL ||
		    (path = strchr(++ctls, ':')) == NULL) {
			continue;
		}
		*path++ = '\0';
		if (*ctls == '\0' || has_tok(ctls, ctl)) {
			snprintf(rel[*ctls == '\0'], PATH_MAX, "%s", path);
		}
	}
	fclose(f);
	CHECK((f = fopen("/proc/self/mountinfo", "re")) != NULL);
	while (getline(&line, &cap, f) > 0) {
		if ((path = strstr(line, " - ")) == NULL ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", pt) != 1 ||
		    sscanf(path, " - %63s %*s %1023s", fs, opts) != 2) {
			continue;
		}
		if (strcmp(fs, "cgroup2") == 0) {
			snprintf(mnt[1], PATH_MAX, "%s", pt);
		} else if (strcmp(fs, "cgroup") == 0 && has_tok(opts, ctl)) {
			snprintf(mnt[0], PATH_MAX, "%s", pt);
		}
	}
	free(line);
	fclose(f);
	v2 = mnt[0][0] == '\0' || rel[0][0] == '\0';
	if (mnt[v2][0] == '\0' || rel[v2][0] == '\0') {
		return false;
	}
	snprintf(out, PATH_MAX, "%s%s", mnt[v2],
	         strcmp(rel[v2], "/") == 0 ? "" : rel[v2]);
	return true;
}

struct real {
	struct cgroup_env *env;
	char sub[64];
	pid_t child;
};

static int
real_setup(void **state)
{
	struct real *r = calloc(1, sizeof(*r));

	snprintf(r->sub, sizeof(r->sub), "sbx-unittest-%d", (int) getpid());
	r->child = -1;
	*state = r;
	return 0;
}

/* Remove the test's subtree in each hierarchy; STRICT checks it went. */
static void
real_rm_subtree(const struct real *r, bool strict)
{
	static const char *const ctls[] = {"memory", "cpu", "pids"};
	char dir[PATH_MAX], p[PATH_MAX];

	for (size_t i = 0; i < 3; i++) {
		if (host_dir(ctls[i], getpid(), dir)) {
			join(p, dir, r->sub);
			if (rmdir(p) != 0 && errno != ENOENT && strict) {
				fail_msg("rmdir %s: %s", p, strerror(errno));
			}
		}
	}
}

/* After a failure too: nothing may stay behind on the host. */
static int
real_teardown(void **state)
{
	struct real *r = *state;

	if (r->child > 0) {
		kill(r->child, SIGKILL);
		waitpid(r->child, NULL, 0);
	}
	if (r->env != NULL) {
		if (cgroup_remove(r->env, "t1") != SBX_OK ||
		    cgroup_remove(r->env, "t2") != SBX_OK) {
			fprintf(stderr, "teardown: sandbox cgroups remain\n");
		}
		cgroup_env_free(r->env);
	}
	real_rm_subtree(r, false);
	free(r);
	return 0;
}

/* False (and a note) where the host test cannot run. */
static bool
real_open(struct real *r)
{
	struct cgroup_paths paths = {NULL, NULL, r->sub, false};
	char why[512] = "";

	if (geteuid() != 0) {
		print_message("skipped: the real-host test needs root\n");
		return false;
	}
	if (cgroup_env_open(&r->env, &paths, why, sizeof(why)) != SBX_OK) {
		print_message("skipped: no usable cgroups here: %s\n", why);
		return false;
	}
	print_message("host cgroup mode: %s\n", cgroup_env_mode(r->env));
	return true;
}

/* DIR/FILE on cgroupfs holds WANT and a newline. */
static void
real_check(const char *dir, const char *file, const char *want)
{
	char p[PATH_MAX], *got;

	join(p, dir, file);
	if ((got = sbx_test_read_file(p, NULL)) == NULL) {
		fail_msg("%s: %s", p, strerror(errno));
		return; /* not reached: fail_msg does not return */
	}
	got[strcspn(got, "\n")] = '\0';
	if (strcmp(got, want) != 0) {
		fail_msg("%s: got \"%s\", want \"%s\"", p, got, want);
	}
	free(got);
}

static bool
real_has(const char *dir, const char *file)
{
	char p[PATH_MAX];

	join(p, dir, file);
	return access(p, F_OK) == 0;
}

/* The child joins through the fds as the jail child will, then waits. */
static pid_t
real_spawn(struct real *r)
{
	int fds[CGROUP_MAX_FDS], pfd[2];
	size_t n = 0;
	char ok = 'n';
	pid_t pid;

	CHECK_OK(cgroup_join_fds(r->env, "t1", fds, &n));
	CHECK(n >= 1 && n <= CGROUP_MAX_FDS);
	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	if ((pid = fork()) == 0) {
		ok = 'y';
		for (size_t i = 0; i < n; i++) {
			if (write(fds[i], "0", 1) != 1) {
				ok = 'n';
			}
		}
		if (write(pfd[1], &ok, 1) != 1 || ok != 'y') {
			_exit(1);
		}
		pause();
		_exit(0);
	}
	r->child = pid;
	CHECK(pid > 0);
	for (size_t i = 0; i < n; i++) {
		close(fds[i]);
	}
	close(pfd[1]);
	CHECK(read(pfd[0], &ok, 1) == 1);
	CHECK(ok == 'y');
	close(pfd[0]);
	return pid;
}

/* The child is in DIR: a line of its cgroup.procs is PID. */
static void
real_check_member(const char *dir, pid_t pid)
{
	char p[PATH_MAX], want[32], *got, *lines;

	join(p, dir, "cgroup.procs");
	snprintf(want, sizeof(want), "\n%d\n", (int) pid);
	CHECK((got = sbx_test_read_file(p, NULL)) != NULL);
	CHECK(asprintf(&lines, "\n%s", got) > 0);
	CHECK(strstr(lines, want) != NULL);
	free(lines);
	free(got);
}

/* The limits test_real_host asked for, in v1 or v2 files: DIR holds the
 * memory, cpu and pids cgroups. */
static void
real_check_limits(char dir[3][PATH_MAX])
{
	if (real_has(dir[0], "memory.limit_in_bytes")) {
		real_check(dir[0], "memory.limit_in_bytes", "67108864");
		if (real_has(dir[0], "memory.memsw.limit_in_bytes")) {
			real_check(dir[0], "memory.memsw.limit_in_bytes",
			           "67108864");
		}
	} else {
		real_check(dir[0], "memory.max", "67108864");
		if (real_has(dir[0], "memory.swap.max")) {
			real_check(dir[0], "memory.swap.max", "0");
		}
	}
	if (real_has(dir[1], "cpu.cfs_quota_us")) {
		real_check(dir[1], "cpu.cfs_period_us", "100000");
		real_check(dir[1], "cpu.cfs_quota_us", "50000");
	} else {
		real_check(dir[1], "cpu.max", "50000 100000");
	}
	real_check(dir[2], "pids.max", "32");
}

/* The child's memory, cpu and pids cgroups are sandbox t1's, and each
 * cgroup.procs lists it. */
static void
real_child_dirs(const struct real *r, char dir[3][PATH_MAX])
{
	static const char *const ctls[] = {"memory", "cpu", "pids"};
	char tail[96];
	size_t tl;

	tl = (size_t) snprintf(tail, sizeof(tail), "/%s/t1", r->sub);
	for (size_t i = 0; i < 3; i++) {
		CHECK(host_dir(ctls[i], r->child, dir[i]));
		if (strlen(dir[i]) < tl ||
		    strcmp(dir[i] + strlen(dir[i]) - tl, tail) != 0) {
			fail_msg("%s cgroup of the child: %s", ctls[i], dir[i]);
		}
		real_check_member(dir[i], r->child);
	}
}

static void
test_real_lifecycle(void **state)
{
	struct real *r = *state;
	struct cgroup_limits lim = {64 * MIB, 500, 32};
	char why[512] = "", dir[3][PATH_MAX];
	struct cgroup_stat st;
	int status;

	if (!real_open(r)) {
		return;
	}
	CHECK_OK(cgroup_create(r->env, "t1", &lim, why, sizeof(why)));
	CHECK_ERR(cgroup_create(r->env, "t1", &lim, why, sizeof(why)),
	          SBX_EEXIST);
	real_spawn(r);
	real_child_dirs(r, dir);
	real_check_limits(dir);
	CHECK_OK(cgroup_read_stat(r->env, "t1", &st));
	CHECK(st.pids >= 1);

	CHECK_OK(cgroup_kill(r->env, "t1"));
	kill(r->child, SIGTERM); /* backstop: a missed kill fails, not hangs */
	CHECK(waitpid(r->child, &status, 0) == r->child);
	r->child = -1;
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_OK(cgroup_remove(r->env, "t1"));
	CHECK(!cgroup_exists(r->env, "t1"));
	for (size_t i = 0; i < 3; i++) {
		CHECK(access(dir[i], F_OK) != 0 && errno == ENOENT);
	}
	real_rm_subtree(r, true);
}

/* The kernel refuses a quota under 1 ms, after the memory limit was
 * written: everything made must go. */
static void
test_real_fail_closed(void **state)
{
	struct real *r = *state;
	struct cgroup_limits tiny = {64 * MIB, 1, 32};
	char why[512] = "";

	if (!real_open(r)) {
		return;
	}
	CHECK_ERR(cgroup_create(r->env, "t2", &tiny, why, sizeof(why)),
	          SBX_EINTERNAL);
	print_message("why: %s\n", why);
	CHECK(strstr(why, "cpu") != NULL && strstr(why, "Invalid") != NULL);
	CHECK(!cgroup_exists(r->env, "t2"));
	real_rm_subtree(r, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v1_limits, v1_setup,
		                                fk_teardown),
		cmocka_unit_test_setup_teardown(test_v1_join_remove, v1_setup,
		                                fk_teardown),
		cmocka_unit_test_setup_teardown(test_v1_fail_closed, v1_setup,
		                                fk_teardown),
		cmocka_unit_test_setup_teardown(test_v1_bad_ids, v1_setup,
		                                fk_teardown),
		cmocka_unit_test_setup_teardown(test_v1_kill_and_stat,
		                                v1_setup, fk_teardown),
		cmocka_unit_test_setup_teardown(test_v2_delegate_and_limits,
		                                v2_setup, fk_teardown),
		cmocka_unit_test_setup_teardown(test_v2_missing_controller,
		                                v2_setup, fk_teardown),
		cmocka_unit_test_setup_teardown(test_v2_namespace_root,
		                                v2_setup, fk_teardown),
		cmocka_unit_test_teardown(test_hybrid, fk_teardown),
		cmocka_unit_test_setup_teardown(test_real_lifecycle,
		                                real_setup, real_teardown),
		cmocka_unit_test_setup_teardown(test_real_fail_closed,
		                                real_setup, real_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
