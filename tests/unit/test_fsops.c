/*
 * fsops.c: lexical paths, confinement to the sandbox root, pseudo-fs
 * refusal, credentials, and each file operation. Needs root (chown,
 * setfsuid); skips otherwise. A scratch directory plays the sandbox root.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>

#include "fsops.h"
#include "sbx_test.h"

#define ROOT_UID 4242
#define USER_UID 4243

struct fx {
	char *dir; /* host path of the sandbox root */
	char host[PATH_MAX];
	struct fsops_root r;
	char why[512];
	mode_t umask; /* restored at teardown: a failed check skips resets */
};

/* Host path of REL below the sandbox root (one buffer: use at once). */
static const char *
hp(struct fx *f, const char *rel)
{
	(void) snprintf(f->host, sizeof(f->host), "%s/%s", f->dir, rel);
	return f->host;
}

static void
put(struct fx *f, const char *rel, const char *text)
{
	int fd = open(hp(f, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0644);

	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
	CHECK(close(fd) == 0);
}

static void
mk(struct fx *f, const char *rel)
{
	CHECK(mkdir(hp(f, rel), 0755) == 0);
}

static void
ln(struct fx *f, const char *target, const char *rel)
{
	CHECK(symlink(target, hp(f, rel)) == 0);
}

static bool
exists(struct fx *f, const char *rel)
{
	struct stat st;

	return lstat(hp(f, rel), &st) == 0;
}

static char *
slurp(struct fx *f, const char *rel)
{
	char *s = sbx_test_read_file(hp(f, rel), NULL);

	CHECK(s != NULL);
	return s;
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	f->umask = umask(022);
	f->dir = sbx_test_scratch("fsops");
	f->r.root_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	f->r.home = "/home/user";
	f->r.ids.host_root_uid = ROOT_UID;
	f->r.ids.host_root_gid = ROOT_UID;
	f->r.ids.host_user_uid = USER_UID;
	f->r.ids.host_user_gid = USER_UID;
	f->r.max_chunk = 4096;
	f->r.max_entries = 100;
	if (f->r.root_fd < 0 || chmod(f->dir, 0755) != 0 ||
	    mkdir(hp(f, "home"), 0755) != 0 ||
	    mkdir(hp(f, "home/user"), 0755) != 0 ||
	    chown(hp(f, "home/user"), USER_UID, USER_UID) != 0) {
		(void) close(f->r.root_fd);
		sbx_test_scratch_free(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	fsops_creds_leave();
	umask(f->umask);
	(void) close(f->r.root_fd);
	sbx_test_scratch_free(f->dir);
	free(f);
	return 0;
}

static void
test_abspath(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"", "/home/user"},
		{"~", "/home/user"},
		{"~/", "/home/user"},
		{"~/a/../b", "/home/user/b"},
		{"x//y/./z", "/home/user/x/y/z"},
		{"/../../etc", "/etc"},
		{"/", "/"},
		{"~x", "/home/user/~x"},
		{"a/~", "/home/user/a/~"},
		{"..", "/home"},
		{"~/..", "/home"},
		{"../../../../..", "/"},
		{"//a//b//", "/a/b"},
		{"/a/./b/.", "/a/b"},
		{"...", "/home/user/..."},
		{"a/b/../../..", "/home"},
		{"/.a/..b", "/.a/..b"},
	};
	char *out, *big, why[128];
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_OK(fsops_abspath("/home/user", cases[i].in, &out, why,
				       sizeof(why)));
		if (strcmp(out, cases[i].want) != 0) {
			fail_msg("abspath(\"%s\") = \"%s\", want \"%s\"",
				 cases[i].in, out, cases[i].want);
		}
		free(out);
	}
	/* A path of FSOPS_PATH_MAX bytes leaves no room for its NUL. */
	big = malloc(FSOPS_PATH_MAX + 1);
	CHECK(big != NULL);
	memset(big, 'a', FSOPS_PATH_MAX);
	big[FSOPS_PATH_MAX] = '\0';
	out = NULL;
	CHECK_ERR(fsops_abspath("/home/user", big, &out, why, sizeof(why)),
		  SBX_EINVAL);
	CHECK(out == NULL);
	CHECK(strstr(why, "longer") != NULL);
	/* Short enough alone, too long below HOME. */
	big[FSOPS_PATH_MAX - 5] = '\0';
	CHECK_ERR(fsops_abspath("/home/user", big, &out, why, sizeof(why)),
		  SBX_EINVAL);
	big[0] = '/';
	CHECK_OK(fsops_abspath("/home/user", big, &out, why, sizeof(why)));
	free(out);
	free(big);
}

/* Calls whose entry only matters for success. */
static sbx_err
wr(struct fx *f, const char *path, const char *text, bool trunc, bool parents,
   uint32_t mode)
{
	struct fs_entry e;
	sbx_err rv;

	rv = fsops_write(&f->r, path, 0, text, strlen(text), trunc, parents,
			 mode, &e, f->why, sizeof(f->why));
	if (rv == SBX_OK) {
		fs_entry_fini(&e);
	}
	return rv;
}

static sbx_err
mkd(struct fx *f, const char *path, bool parents, uint32_t mode)
{
	struct fs_entry e;
	sbx_err rv;

	rv = fsops_mkdir(&f->r, path, parents, mode, &e, f->why,
			 sizeof(f->why));
	if (rv == SBX_OK) {
		fs_entry_fini(&e);
	}
	return rv;
}

static sbx_err
mv(struct fx *f, const char *src, const char *dst, bool parents)
{
	struct fs_entry e;
	sbx_err rv;

	rv = fsops_move(&f->r, src, dst, parents, &e, f->why, sizeof(f->why));
	if (rv == SBX_OK) {
		fs_entry_fini(&e);
	}
	return rv;
}

static sbx_err
rm(struct fx *f, const char *path, bool recursive)
{
	return fsops_remove(&f->r, path, recursive, f->why, sizeof(f->why));
}

static sbx_err
rd(struct fx *f, const char *path)
{
	char buf[16];
	uint64_t size;
	size_t n;
	bool eof;

	return fsops_read(&f->r, path, 0, sizeof(buf), buf, &n, &size, &eof,
			  f->why, sizeof(f->why));
}

/* Read LEN at OFF and check the count, size and EOF flag. */
static void
rd_at(struct fx *f, const char *path, uint64_t off, size_t len, void *buf,
      size_t want_n, uint64_t want_size, bool want_eof)
{
	uint64_t size;
	size_t n;
	bool eof;

	CHECK_OK(fsops_read(&f->r, path, off, len, buf, &n, &size, &eof, f->why,
			    sizeof(f->why)));
	CHECK_INT(n, want_n);
	CHECK_INT(size, want_size);
	CHECK_INT(eof, want_eof);
}

static void
read_text(struct fx *f, const char *path, const char *want)
{
	char buf[256];
	uint64_t size;
	size_t n;
	bool eof;

	if (fsops_read(&f->r, path, 0, sizeof(buf) - 1, buf, &n, &size, &eof,
		       f->why, sizeof(f->why)) != SBX_OK) {
		fail_msg("read %s: %s", path, f->why);
	}
	buf[n] = '\0';
	CHECK_STR(buf, want);
}

/* Host permission bits of REL. */
static unsigned
mode_of(struct fx *f, const char *rel)
{
	struct stat st;

	CHECK(stat(hp(f, rel), &st) == 0);
	return st.st_mode & 07777;
}

static void
fill_chunk(uint8_t *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		p[i] = (uint8_t) ((i + seed) & 0xff);
	}
}

static void
test_write_read(void **state)
{
	struct fx *f = *state;
	uint8_t chunk[1024], want[3072], got[4096];
	struct fs_entry e;
	size_t i;

	/* Three chunks of all 256 byte values at offsets, the first
	 * truncating a longer old file. */
	put(f, "home/user/bin", "old content that is longer than nothing");
	for (i = 0; i < 3; i++) {
		fill_chunk(chunk, sizeof(chunk), (unsigned) i * 7);
		memcpy(want + i * sizeof(chunk), chunk, sizeof(chunk));
		CHECK_OK(fsops_write(&f->r, "bin", i * sizeof(chunk), chunk,
				     sizeof(chunk), i == 0, false, 0, &e,
				     f->why, sizeof(f->why)));
		CHECK_INT(e.size, (i + 1) * sizeof(chunk));
		fs_entry_fini(&e);
	}
	rd_at(f, "~/bin", 0, 1000, got, 1000, 3072, false);
	CHECK(memcmp(got, want, 1000) == 0);
	rd_at(f, "/home/user/bin", 3000, 1000, got, 72, 3072, true);
	CHECK(memcmp(got, want + 3000, 72) == 0);
	/* Length 0 means max_chunk. */
	rd_at(f, "bin", 0, 0, got, 3072, 3072, true);
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	/* Past the end: nothing, at EOF; exactly up to the end is EOF. */
	rd_at(f, "bin", 5000, 10, got, 0, 3072, true);
	rd_at(f, "bin", 2072, 1000, got, 1000, 3072, true);

	/* Truncate to a short write; the file shrinks. */
	CHECK_OK(fsops_write(&f->r, "bin", 0, "xy", 2, true, false, 0, &e,
			     f->why, sizeof(f->why)));
	CHECK_INT(e.size, 2);
	CHECK_INT(e.type, FS_FILE);
	CHECK_STR(e.name, "bin");
	CHECK_STR(e.path, "/home/user/bin");
	fs_entry_fini(&e);
}

static void
test_write_limits(void **state)
{
	struct fx *f = *state;
	uint8_t big[5000];
	struct fs_entry e;

	memset(big, 'b', sizeof(big));
	CHECK_ERR(fsops_write(&f->r, "big", 0, big, f->r.max_chunk + 1, false,
			      false, 0, &e, f->why, sizeof(f->why)),
		  SBX_ELIMIT);
	CHECK(!exists(f, "home/user/big"));
	CHECK_ERR(fsops_write(&f->r, "far", UINT64_MAX - 1, "x", 1, false,
			      false, 0, &e, f->why, sizeof(f->why)),
		  SBX_ERANGE);
	CHECK_ERR(rd(f, "missing"), SBX_ENOTFOUND);
	CHECK_STR(f->why, "open /home/user/missing: No such file or directory");
	/* No final name, or a directory. */
	CHECK_ERR(wr(f, "", "x", false, false, 0), SBX_EINVAL);
	CHECK_ERR(wr(f, "a/..", "x", false, false, 0), SBX_EINVAL);
	CHECK_ERR(wr(f, "/", "x", false, false, 0), SBX_EINVAL);
	CHECK_ERR(wr(f, "~", "x", false, false, 0), SBX_ESTATE);
}

static void
test_make_parents(void **state)
{
	struct fx *f = *state;

	CHECK_ERR(wr(f, "a/b/c.txt", "c", false, false, 0), SBX_ENOTFOUND);
	CHECK(!exists(f, "home/user/a"));
	umask(077);
	CHECK_OK(wr(f, "a/b/c.txt", "c", false, true, 0600));
	CHECK_INT(mode_of(f, "home/user/a"), 0755);
	CHECK_INT(mode_of(f, "home/user/a/b"), 0755);
	CHECK_INT(mode_of(f, "home/user/a/b/c.txt"), 0600);
	/* Parents below an existing symlinked directory land inside it. */
	ln(f, "/home/user/a", "home/user/la");
	CHECK_OK(wr(f, "la/n1/n2/f", "f", false, true, 0));
	CHECK(exists(f, "home/user/a/n1/n2/f"));
	CHECK_INT(mode_of(f, "home/user/a/n1"), 0755);
	/* A file in the way of a parent. */
	CHECK_ERR(wr(f, "a/b/c.txt/d", "d", false, true, 0), SBX_ESTATE);
}

static void
test_modes(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;

	/* Mode 0 is 0644 even under umask 077; 0755 is not cut to 0700. */
	umask(077);
	CHECK_OK(wr(f, "d.txt", "d", false, false, 0));
	CHECK_INT(mode_of(f, "home/user/d.txt"), 0644);
	CHECK_OK(wr(f, "x.sh", "#!", false, false, 0755));
	CHECK_INT(mode_of(f, "home/user/x.sh"), 0755);
	/* The mode applies at creation only. */
	CHECK_OK(fsops_write(&f->r, "d.txt", 0, "e", 1, false, false, 0600, &e,
			     f->why, sizeof(f->why)));
	CHECK_INT(e.mode, 0644);
	fs_entry_fini(&e);
	umask(0);
	CHECK_OK(wr(f, "u0", "u", false, false, 0));
	CHECK_INT(mode_of(f, "home/user/u0"), 0644);
	CHECK_OK(wr(f, "u6", "u", false, false, 0600));
	CHECK_INT(mode_of(f, "home/user/u6"), 0600);
}

/* Files for the creds tests, made as root. */
static void
creds_files(struct fx *f)
{
	put(f, "home/user/secret", "s");
	CHECK(chown(hp(f, "home/user/secret"), 0, 0) == 0);
	CHECK(chmod(hp(f, "home/user/secret"), 0600) == 0);
	/* Only group 0 may read. */
	put(f, "home/user/group0", "g");
	CHECK(chown(hp(f, "home/user/group0"), 0, 0) == 0);
	CHECK(chmod(hp(f, "home/user/group0"), 0640) == 0);
	put(f, "home/user/byroot", "r");
	CHECK(chown(hp(f, "home/user/byroot"), ROOT_UID, ROOT_UID) == 0);
	mk(f, "home/user/closed");
	put(f, "home/user/closed/x", "x");
	CHECK(chmod(hp(f, "home/user/closed"), 0700) == 0);
}

static void
test_creds_owner(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;
	struct stat st;

	creds_files(f);
	CHECK_OK(fsops_creds_enter(USER_UID, USER_UID));
	CHECK_INT(setfsuid((uid_t) -1), USER_UID);
	CHECK_OK(fsops_write(&f->r, "mine.txt", 0, "m", 1, false, true, 0, &e,
			     f->why, sizeof(f->why)));
	CHECK_INT(e.uid, 1000);
	CHECK_STR(e.owner, "user");
	CHECK_INT(e.gid, 1000);
	CHECK_STR(e.group, "user");
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&f->r, "secret", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.uid, 65534);
	CHECK_STR(e.owner, "nobody");
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&f->r, "byroot", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.uid, 0);
	CHECK_STR(e.owner, "root");
	CHECK_STR(e.group, "root");
	fs_entry_fini(&e);
	fsops_creds_leave();
	CHECK_INT(setfsuid((uid_t) -1), 0);
	CHECK_INT(setfsgid((gid_t) -1), 0);
	CHECK(stat(hp(f, "home/user/mine.txt"), &st) == 0);
	CHECK_INT(st.st_uid, USER_UID);
	CHECK_INT(st.st_gid, USER_UID);
}

static void
test_creds_denied(void **state)
{
	struct fx *f = *state;
	const gid_t g0 = 0;
	struct fs_entry *v;
	size_t n;

	creds_files(f);
	/* Like sbxd, be in group 0: it must not come along into the user's
	 * credentials (process-wide is fine in a single-threaded test). */
	CHECK(setgroups(1, &g0) == 0);
	CHECK_OK(fsops_creds_enter(USER_UID, USER_UID));
	CHECK_ERR(rd(f, "secret"), SBX_EPERM);
	CHECK(strstr(f->why, "Permission denied") != NULL);
	CHECK_ERR(rd(f, "group0"), SBX_EPERM);
	CHECK_ERR(wr(f, "/etc-new", "x", false, false, 0), SBX_EPERM);
	CHECK_ERR(mkd(f, "/rootdir", false, 0), SBX_EPERM);
	/* A closed subdirectory is listed but not entered; listing it
	 * directly is refused. */
	CHECK_OK(fsops_list(&f->r, "", 2, &v, &n, f->why, sizeof(f->why)));
	CHECK_INT(n, 4);
	CHECK_STR(v[1].path, "/home/user/closed");
	fs_entries_free(v, n);
	CHECK_ERR(
		fsops_list(&f->r, "closed", 1, &v, &n, f->why, sizeof(f->why)),
		SBX_EPERM);
	fsops_creds_leave();
	CHECK(!exists(f, "etc-new"));
	CHECK(!exists(f, "rootdir"));
}

static void
test_escapes(void **state)
{
	struct fx *f = *state;
	struct fs_entry *v;
	size_t n;

	mk(f, "etc");
	put(f, "etc/passwd", "decoy-passwd\n");
	put(f, "etc/hostname", "decoy-host\n");
	ln(f, "/etc", "home/user/evil");
	ln(f, "../../../../../etc", "home/user/evil2");
	ln(f, "../../../../../../../../", "home/user/up");
	ln(f, "/proc/self/root/etc/passwd", "home/user/magic");

	read_text(f, "../../../../etc/passwd", "decoy-passwd\n");
	read_text(f, "evil/hostname", "decoy-host\n");
	read_text(f, "evil2/hostname", "decoy-host\n");
	read_text(f, "up/etc/passwd", "decoy-passwd\n");
	/* ".." is folded lexically before any symlink is followed. */
	CHECK_ERR(rd(f, "evil/../etc/passwd"), SBX_ENOTFOUND);
	/* The host has /etc/shadow; the sandbox does not. */
	CHECK_ERR(rd(f, "evil/shadow"), SBX_ENOTFOUND);
	/* There is no /proc in this root: no way out through it either. */
	CHECK_ERR(rd(f, "magic"), SBX_ENOTFOUND);

	/* Creations through the links stay inside too. */
	CHECK_OK(wr(f, "evil2/sbx-fsops-escape", "x", false, false, 0));
	CHECK(exists(f, "etc/sbx-fsops-escape"));
	CHECK(access("/etc/sbx-fsops-escape", F_OK) != 0);
	CHECK_OK(mkd(f, "up/etc/sbx-fsops-dir", false, 0));
	CHECK(exists(f, "etc/sbx-fsops-dir"));
	CHECK(access("/etc/sbx-fsops-dir", F_OK) != 0);
	CHECK_OK(fsops_list(&f->r, "evil", 1, &v, &n, f->why, sizeof(f->why)));
	CHECK_INT(n, 4);
	CHECK_STR(v[0].path, "/home/user/evil/hostname");
	fs_entries_free(v, n);
}

/* F's settings with the host's "/" as the sandbox root: magic links and
 * pseudo filesystems are all there. Nothing may change the host. */
static struct fsops_root
host_root(struct fx *f)
{
	struct fsops_root r = f->r;

	r.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(r.root_fd >= 0);
	r.home = "/";
	return r;
}

static void
test_host_magic(void **state)
{
	struct fx *f = *state;
	struct fsops_root r = host_root(f);
	struct fs_entry e;
	char buf[64];
	uint64_t size;
	size_t n;
	bool eof;

	CHECK_ERR(fsops_read(&r, "/proc/self/root/etc/hostname", 0, 10, buf, &n,
			     &size, &eof, f->why, sizeof(f->why)),
		  SBX_EINVAL);
	CHECK(strstr(f->why, "magic link") != NULL);
	CHECK_ERR(fsops_read(&r, "/proc/self/fd/0", 0, 10, buf, &n, &size, &eof,
			     f->why, sizeof(f->why)),
		  SBX_EINVAL);
	/* Stat is allowed anywhere and describes the link itself. */
	CHECK_OK(fsops_stat(&r, "/proc/self", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_SYMLINK);
	CHECK_INT(e.target_type, FS_DIRECTORY);
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&r, "/proc/self/root", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_SYMLINK);
	CHECK_INT(e.target_type, FS_UNSPECIFIED);
	fs_entry_fini(&e);
	(void) close(r.root_fd);
}

static void
test_host_pseudo(void **state)
{
	struct fx *f = *state;
	struct fsops_root r = host_root(f);
	char buf[64], lnk[PATH_MAX], *before, *after;
	struct fs_entry e;
	uint64_t size;
	size_t n;
	bool eof;

	before = sbx_test_read_file("/proc/sys/kernel/hostname", NULL);
	CHECK(before != NULL);
	CHECK_ERR(fsops_read(&r, "/proc/sys/kernel/hostname", 0, 10, buf, &n,
			     &size, &eof, f->why, sizeof(f->why)),
		  SBX_EPERM);
	CHECK(strstr(f->why, "proc pseudo filesystem") != NULL);
	CHECK_ERR(fsops_write(&r, "/proc/sys/kernel/hostname", 0, "pwned", 5,
			      true, false, 0, &e, f->why, sizeof(f->why)),
		  SBX_EPERM);
	/* Through a symlink on a real filesystem: the check is on the
	 * opened file, not on the path's parent. */
	ln(f, "/proc/sys/kernel/hostname", "hostlink");
	(void) snprintf(lnk, sizeof(lnk), "%s/hostlink", f->dir);
	CHECK_ERR(fsops_write(&r, lnk, 0, "pwned", 5, true, false, 0, &e,
			      f->why, sizeof(f->why)),
		  SBX_EPERM);
	CHECK_ERR(fsops_read(&r, lnk, 0, 10, buf, &n, &size, &eof, f->why,
			     sizeof(f->why)),
		  SBX_EPERM);
	after = sbx_test_read_file("/proc/sys/kernel/hostname", NULL);
	CHECK(after != NULL);
	CHECK_STR(before, after);
	free(before);
	free(after);
	(void) close(r.root_fd);
}

static void
test_host_pseudo_names(void **state)
{
	struct fx *f = *state;
	struct fsops_root r = host_root(f);
	struct fs_entry e;

	CHECK_ERR(fsops_remove(&r, "/proc/self", false, f->why, sizeof(f->why)),
		  SBX_EPERM);
	CHECK_ERR(fsops_mkdir(&r, "/proc/sbx-fsops", false, 0, &e, f->why,
			      sizeof(f->why)),
		  SBX_EPERM);
	CHECK_ERR(fsops_move(&r, "/proc/self", "/tmp/sbx-fsops-self", false, &e,
			     f->why, sizeof(f->why)),
		  SBX_EPERM);
	(void) close(r.root_fd);
}

/* A cgroup directory, where mkdir would make a cgroup. On hybrid hosts
 * /sys/fs/cgroup itself is a tmpfs: look below it too. */
static void
test_host_cgroup(void **state)
{
	static const char *const cg[] = {
		"/sys/fs/cgroup",
		"/sys/fs/cgroup/unified",
		"/sys/fs/cgroup/pids",
	};
	struct fx *f = *state;
	struct fsops_root r = host_root(f);
	char dir[PATH_MAX];
	struct fs_entry e;
	struct statfs sf;
	size_t i;

	for (i = 0; i < sizeof(cg) / sizeof(cg[0]); i++) {
		if (statfs(cg[i], &sf) != 0 ||
		    (sf.f_type != CGROUP2_SUPER_MAGIC &&
		     sf.f_type != CGROUP_SUPER_MAGIC)) {
			continue;
		}
		(void) snprintf(dir, sizeof(dir), "%s/sbx-fsops-test", cg[i]);
		CHECK_ERR(fsops_mkdir(&r, dir, false, 0, &e, f->why,
				      sizeof(f->why)),
			  SBX_EPERM);
		CHECK(strstr(f->why, "cgroup") != NULL);
		CHECK(access(dir, F_OK) != 0);
	}
	(void) close(r.root_fd);
}

static void
test_final_symlink(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;
	struct stat st;
	char *s;

	put(f, "home/user/target", "T");
	ln(f, "/home/user/target", "home/user/link");
	/* Write follows a final symlink, inside the root. */
	CHECK_OK(fsops_write(&f->r, "link", 0, "new", 3, true, false, 0, &e,
			     f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_FILE);
	CHECK_INT(e.size, 3);
	fs_entry_fini(&e);
	s = slurp(f, "home/user/target");
	CHECK_STR(s, "new");
	free(s);
	CHECK(lstat(hp(f, "home/user/link"), &st) == 0 && S_ISLNK(st.st_mode));
	/* A dangling one is not followed into a creation. */
	ln(f, "/home/user/nothere", "home/user/dl");
	CHECK_ERR(wr(f, "dl", "x", false, false, 0), SBX_ENOTFOUND);
	CHECK(!exists(f, "home/user/nothere"));

	/* Move and remove act on the link itself. */
	CHECK_OK(fsops_move(&f->r, "link", "moved", false, &e, f->why,
			    sizeof(f->why)));
	CHECK_INT(e.type, FS_SYMLINK);
	CHECK_STR(e.symlink_target, "/home/user/target");
	CHECK_INT(e.target_type, FS_FILE);
	fs_entry_fini(&e);
	CHECK(lstat(hp(f, "home/user/moved"), &st) == 0 && S_ISLNK(st.st_mode));
	CHECK_OK(rm(f, "moved", false));
	CHECK(!exists(f, "home/user/moved"));
	CHECK(exists(f, "home/user/target"));
	CHECK_OK(rm(f, "dl", false));
	CHECK(!exists(f, "home/user/dl"));
}

static void
test_non_regular(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t1;

	CHECK(mkfifo(hp(f, "home/user/fifo"), 0666) == 0);
	CHECK(clock_gettime(CLOCK_MONOTONIC, &t0) == 0);
	CHECK_ERR(rd(f, "fifo"), SBX_ESTATE);
	CHECK(strstr(f->why, "not a regular file") != NULL);
	CHECK_ERR(wr(f, "fifo", "x", false, false, 0), SBX_ESTATE);
	CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0);
	CHECK(t1.tv_sec - t0.tv_sec < 2);
	CHECK_ERR(rd(f, "~"), SBX_ESTATE);
	CHECK_STR(f->why, "read /home/user: is a directory");
}

static void
check_entry(const struct fs_entry *e, const char *path, enum fs_type type)
{
	CHECK_STR(e->path, path);
	CHECK_INT(e->type, type);
}

static void
list_tree(struct fx *f)
{
	put(f, "home/user/b.txt", "bb");
	put(f, "home/user/a.txt", "a");
	mk(f, "home/user/d");
	put(f, "home/user/d/x", "x");
	mk(f, "home/user/d/y");
	put(f, "home/user/d/y/z", "z");
	ln(f, "/home/user/d", "home/user/ln");
	ln(f, "/nowhere", "home/user/dangling");
}

/* LIST PATH to DEPTH and check it has N entries. */
static struct fs_entry *
list_n(struct fx *f, const char *path, unsigned depth, size_t want)
{
	struct fs_entry *v;
	size_t n;

	CHECK_OK(
		fsops_list(&f->r, path, depth, &v, &n, f->why, sizeof(f->why)));
	CHECK_INT(n, want);
	return v;
}

static void
test_list_one(void **state)
{
	struct fx *f = *state;
	struct fs_entry *v;

	list_tree(f);
	v = list_n(f, "", 1, 5);
	check_entry(&v[0], "/home/user/a.txt", FS_FILE);
	CHECK_STR(v[0].name, "a.txt");
	CHECK_INT(v[0].size, 1);
	CHECK_INT(v[0].mode, 0644);
	CHECK(v[0].symlink_target == NULL);
	check_entry(&v[1], "/home/user/b.txt", FS_FILE);
	check_entry(&v[2], "/home/user/d", FS_DIRECTORY);
	check_entry(&v[3], "/home/user/dangling", FS_SYMLINK);
	CHECK_INT(v[3].target_type, FS_UNSPECIFIED);
	CHECK_STR(v[3].symlink_target, "/nowhere");
	check_entry(&v[4], "/home/user/ln", FS_SYMLINK);
	CHECK_INT(v[4].target_type, FS_DIRECTORY);
	CHECK_STR(v[4].symlink_target, "/home/user/d");
	fs_entries_free(v, 5);
	fs_entries_free(list_n(f, "~", 0, 5), 5);
	/* Through a symlinked directory, and from the root. */
	v = list_n(f, "ln", 1, 2);
	check_entry(&v[0], "/home/user/ln/x", FS_FILE);
	fs_entries_free(v, 2);
	v = list_n(f, "/", 1, 1);
	check_entry(&v[0], "/home", FS_DIRECTORY);
	fs_entries_free(v, 1);
}

static void
test_list_deep(void **state)
{
	struct fx *f = *state;
	struct fs_entry *v;
	size_t n;

	list_tree(f);
	/* Depth 2 adds d's entries, not ln's (a symlink) nor d/y/z. */
	v = list_n(f, "/home/user", 2, 7);
	check_entry(&v[2], "/home/user/d", FS_DIRECTORY);
	check_entry(&v[3], "/home/user/d/x", FS_FILE);
	check_entry(&v[4], "/home/user/d/y", FS_DIRECTORY);
	check_entry(&v[5], "/home/user/dangling", FS_SYMLINK);
	fs_entries_free(v, 7);
	v = list_n(f, "/home/user", 3, 8);
	check_entry(&v[5], "/home/user/d/y/z", FS_FILE);
	fs_entries_free(v, 8);

	f->r.max_entries = 3;
	v = NULL;
	CHECK_ERR(fsops_list(&f->r, "", 1, &v, &n, f->why, sizeof(f->why)),
		  SBX_ELIMIT);
	CHECK(v == NULL);
	CHECK(strstr(f->why, "more than 3 entries") != NULL);
	f->r.max_entries = 6;
	CHECK_ERR(fsops_list(&f->r, "", 2, &v, &n, f->why, sizeof(f->why)),
		  SBX_ELIMIT);
	CHECK_ERR(fsops_list(&f->r, "a.txt", 1, &v, &n, f->why, sizeof(f->why)),
		  SBX_ESTATE);
	CHECK_ERR(fsops_list(&f->r, "nope", 1, &v, &n, f->why, sizeof(f->why)),
		  SBX_ENOTFOUND);
}

static void
test_stat(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;
	struct stat st;

	put(f, "home/user/f", "12345");
	mk(f, "home/user/dir");
	ln(f, "f", "home/user/rel");

	CHECK_OK(fsops_stat(&f->r, "f", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_FILE);
	CHECK_INT(e.size, 5);
	CHECK_STR(e.name, "f");
	CHECK(stat(hp(f, "home/user/f"), &st) == 0);
	CHECK_INT(e.mtime_ms, (int64_t) st.st_mtim.tv_sec * 1000 +
				      st.st_mtim.tv_nsec / 1000000);
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&f->r, "dir", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_DIRECTORY);
	CHECK_INT(e.mode, 0755);
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&f->r, "rel", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_SYMLINK);
	CHECK_INT(e.target_type, FS_FILE);
	CHECK_STR(e.symlink_target, "f");
	fs_entry_fini(&e);
	CHECK_OK(fsops_stat(&f->r, "/", &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_DIRECTORY);
	CHECK_STR(e.name, "/");
	CHECK_STR(e.path, "/");
	fs_entry_fini(&e);
	CHECK_ERR(fsops_stat(&f->r, "missing", &e, f->why, sizeof(f->why)),
		  SBX_ENOTFOUND);
	CHECK_ERR(fsops_stat(&f->r, "f/sub", &e, f->why, sizeof(f->why)),
		  SBX_ESTATE);
	fs_entry_fini(NULL);
}

static void
test_mkdir(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;

	umask(077);
	CHECK_OK(
		fsops_mkdir(&f->r, "nd", false, 0, &e, f->why, sizeof(f->why)));
	CHECK_INT(e.type, FS_DIRECTORY);
	CHECK_INT(e.mode, 0755);
	CHECK_STR(e.path, "/home/user/nd");
	fs_entry_fini(&e);
	CHECK_INT(mode_of(f, "home/user/nd"), 0755);
	CHECK_ERR(mkd(f, "nd", false, 0), SBX_EEXIST);
	CHECK_ERR(mkd(f, "nd", true, 0), SBX_EEXIST);
	CHECK_ERR(mkd(f, "p/q/r", false, 0), SBX_ENOTFOUND);
	CHECK_OK(mkd(f, "p/q/r/", true, 0711));
	CHECK_INT(mode_of(f, "home/user/p/q"), 0755);
	CHECK_INT(mode_of(f, "home/user/p/q/r"), 0711);
	/* A mode without owner read still ends exact. */
	CHECK_OK(mkd(f, "wo", false, 0300));
	CHECK_INT(mode_of(f, "home/user/wo"), 0300);
}

static void
test_mkdir_refused(void **state)
{
	struct fx *f = *state;

	put(f, "home/user/file", "x");
	CHECK_ERR(mkd(f, "file/sub", true, 0), SBX_ESTATE);
	CHECK_ERR(mkd(f, "/", false, 0), SBX_EINVAL);
	CHECK_ERR(mkd(f, "x/..", false, 0), SBX_EINVAL);
}

static void
test_move(void **state)
{
	struct fx *f = *state;
	struct fs_entry e;
	char *s;

	put(f, "home/user/a", "A");
	put(f, "home/user/old", "OLD");
	mk(f, "home/user/d");
	put(f, "home/user/d/in", "I");

	CHECK_OK(
		fsops_move(&f->r, "a", "b", false, &e, f->why, sizeof(f->why)));
	CHECK_STR(e.path, "/home/user/b");
	CHECK_INT(e.type, FS_FILE);
	fs_entry_fini(&e);
	CHECK(!exists(f, "home/user/a"));
	CHECK_OK(mv(f, "d", "/home/user/e", false));
	CHECK(exists(f, "home/user/e/in"));
	CHECK_ERR(mv(f, "b", "no/such/c", false), SBX_ENOTFOUND);
	CHECK(exists(f, "home/user/b"));
	CHECK_OK(mv(f, "b", "no/such/c", true));
	CHECK(exists(f, "home/user/no/such/c"));
	/* Replacing a file. */
	CHECK_OK(mv(f, "no/such/c", "old", false));
	s = slurp(f, "home/user/old");
	CHECK_STR(s, "A");
	free(s);
}

static void
test_move_refused(void **state)
{
	struct fx *f = *state;

	put(f, "home/user/old", "OLD");
	mk(f, "home/user/e");
	CHECK_ERR(mv(f, "missing", "x", false), SBX_ENOTFOUND);
	CHECK_ERR(mv(f, "/", "x", false), SBX_EINVAL);
	CHECK_ERR(mv(f, "old", "/", false), SBX_EINVAL);
	CHECK_ERR(mv(f, "..", "x", false), SBX_EINVAL);
	/* A directory into itself. */
	CHECK_ERR(mv(f, "e", "e/sub", false), SBX_EINVAL);
	CHECK(strstr(f->why, "move /home/user/e -> /home/user/e/sub") != NULL);
}

static void
test_remove(void **state)
{
	struct fx *f = *state;

	put(f, "home/user/f", "x");
	mk(f, "home/user/empty");
	mk(f, "home/user/full");
	mk(f, "home/user/full/sub");
	put(f, "home/user/full/sub/g", "g");
	mk(f, "keep");
	put(f, "keep/precious", "p");
	ln(f, "/keep", "home/user/lnout");
	ln(f, "/keep", "home/user/full/lnin");

	CHECK_OK(rm(f, "f", false));
	CHECK(!exists(f, "home/user/f"));
	CHECK_ERR(rm(f, "f", false), SBX_ENOTFOUND);
	CHECK_OK(rm(f, "empty", false));
	CHECK(!exists(f, "home/user/empty"));
	CHECK_ERR(rm(f, "full", false), SBX_ESTATE);
	CHECK(strstr(f->why, "not empty") != NULL);
	CHECK_OK(rm(f, "full", true));
	CHECK(!exists(f, "home/user/full"));
	CHECK_OK(rm(f, "lnout", true));
	CHECK(!exists(f, "home/user/lnout"));
	CHECK(exists(f, "keep/precious"));
}

static void
test_remove_refused(void **state)
{
	struct fx *f = *state;

	CHECK_ERR(rm(f, "/", true), SBX_EINVAL);
	CHECK_ERR(rm(f, "..", true), SBX_EINVAL);
	CHECK_ERR(rm(f, "", true), SBX_EINVAL);
	CHECK_ERR(rm(f, "~/.", true), SBX_EINVAL);
	CHECK_ERR(rm(f, "/..", true), SBX_EINVAL);
	CHECK(exists(f, "home/user"));
}

static void
test_rmtree(void **state)
{
	struct fx *f = *state;
	char target[PATH_MAX];
	int dfd;

	mk(f, "outside");
	put(f, "outside/precious", "p");
	mk(f, "t");
	put(f, "t/a", "a");
	mk(f, "t/b");
	mk(f, "t/b/c");
	mk(f, "t/b/d");
	put(f, "t/b/d/e", "e");
	CHECK(mkfifo(hp(f, "t/b/fifo"), 0600) == 0);
	(void) snprintf(target, sizeof(target), "%s/outside", f->dir);
	ln(f, target, "t/b/link");
	ln(f, target, "tl");

	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	CHECK_OK(fsops_rmtree_at(dfd, "t"));
	CHECK(!exists(f, "t"));
	CHECK(exists(f, "outside/precious"));
	CHECK_OK(fsops_rmtree_at(dfd, "t"));
	/* A symlink at the top is removed, not followed. */
	CHECK_OK(fsops_rmtree_at(dfd, "tl"));
	CHECK(!exists(f, "tl"));
	CHECK(exists(f, "outside/precious"));
	(void) close(dfd);
}

/* Deeper than the cap: an error, no crash, and the top stays. */
static void
test_rmtree_deep(void **state)
{
	struct fx *f = *state;
	int dfd, fd, next, i;

	mk(f, "deep");
	fd = open(hp(f, "deep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (i = 0; i < 300; i++) {
		CHECK(mkdirat(fd, "d", 0755) == 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CHECK(next >= 0);
		(void) close(fd);
		fd = next;
	}
	(void) close(fd);
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fsops_rmtree_at(dfd, "deep") != SBX_OK);
	CHECK(exists(f, "deep"));
	(void) close(dfd);
}

/* A mount point inside the tree is neither entered nor removed. */
static void
test_rmtree_mount(void **state)
{
	struct fx *f = *state;
	char mnt[PATH_MAX];
	bool kept;
	sbx_err rv;
	int dfd;

	mk(f, "t");
	mk(f, "t/m");
	put(f, "t/other", "o");
	(void) snprintf(mnt, sizeof(mnt), "%s/t/m", f->dir);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
		skip();
	}
	put(f, "t/m/inmount", "i");
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rv = fsops_rmtree_at(dfd, "t");
	kept = exists(f, "t/m/inmount");
	/* Unmount before any check can fail: a failed test must not leave
	 * a mount behind under /tmp. */
	CHECK(umount2(mnt, MNT_DETACH) == 0);
	CHECK(rv != SBX_OK);
	CHECK(kept);
	CHECK(!exists(f, "t/other"));
	CHECK_OK(fsops_rmtree_at(dfd, "t"));
	CHECK(!exists(f, "t"));
	(void) close(dfd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abspath),
		T(test_write_read),
		T(test_write_limits),
		T(test_make_parents),
		T(test_modes),
		T(test_creds_owner),
		T(test_creds_denied),
		T(test_escapes),
		T(test_host_magic),
		T(test_host_pseudo),
		T(test_host_pseudo_names),
		T(test_host_cgroup),
		T(test_final_symlink),
		T(test_non_regular),
		T(test_list_one),
		T(test_list_deep),
		T(test_stat),
		T(test_mkdir),
		T(test_mkdir_refused),
		T(test_move),
		T(test_move_refused),
		T(test_remove),
		T(test_remove_refused),
		T(test_rmtree),
		T(test_rmtree_deep),
		T(test_rmtree_mount),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "unit_fsops needs root (chown, setfsuid)\n");
		return SBX_TEST_SKIP;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
