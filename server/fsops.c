/*
 * fsops: file operations inside one sandbox's root, for sbxd's file worker
 * threads. No state of its own: every call works on the fds it opens and
 * closes them before returning. Any thread; reentrant.
 *
 * DESIGN
 * - Resolution. Every caller path goes through fsops_abspath (lexical) and
 *   then openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from root_fd, so
 *   the kernel keeps "..", absolute and relative symlinks inside the root
 *   and refuses /proc magic links. Plain openat/mkdirat/unlinkat/renameat
 *   only ever see a single name below an fd that openat2 produced.
 * - Final components. Creating, moving and removing resolve the parent
 *   directory and act on the last name with *at() calls and O_NOFOLLOW, so
 *   a symlink there is moved or removed itself. Write is the exception: like
 *   open(2) it follows a final symlink to an existing file (inside the
 *   root), and a dangling one is SBX_ENOTFOUND rather than a creation at a
 *   target we would have to resolve by hand. A final "", "." or ".." in the
 *   caller's path is SBX_EINVAL, so "rm x/.." cannot remove x's parent.
 * - Pseudo filesystems. Checks use fstatfs on the fd that is about to be
 *   read, written or renamed (or on the parent for creations), not on a
 *   path, so a rename race cannot swap the checked object.
 * - Modes. New files and directories get exactly the requested mode by
 *   fchmod after creation: the process umask is shared by all threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsops.h"

/* openat2 fails with EAGAIN when a concurrent rename or mount could have
 * moved a ".." step outside the root; the kernel asks us to try again. */
#define FS_EAGAIN_TRIES 16
/* Rounds of "create exclusively, else open existing" in fsops_write. */
#define FS_WRITE_TRIES 4
/* Levels fsops_list descends at most; each level re-resolves from root. */
#define FS_LIST_DEPTH_MAX 32
/* Nesting fsops_rmtree_at enters; each level holds one open directory. */
#define FS_RMTREE_DEPTH 256

#define FS_NOBODY 65534u

/* Kernel interfaces, not storage: sbxd never writes or removes here
 * because a sandbox asked. Listing and stat stay allowed. */
static const struct {
	uint32_t magic;
	const char *name;
} fs_pseudo[] = {
	{PROC_SUPER_MAGIC, "proc"},
	{SYSFS_MAGIC, "sysfs"},
	{CGROUP_SUPER_MAGIC, "cgroup"},
	{CGROUP2_SUPER_MAGIC, "cgroup2"},
	{DEVPTS_SUPER_MAGIC, "devpts"},
	{DEBUGFS_MAGIC, "debugfs"},
	{TRACEFS_MAGIC, "tracefs"},
	{SECURITYFS_MAGIC, "securityfs"},
	{BPF_FS_MAGIC, "bpf"},
	{SELINUX_MAGIC, "selinuxfs"},
	{SMACK_MAGIC, "smackfs"},
	{EFIVARFS_MAGIC, "efivarfs"},
	{PSTOREFS_MAGIC, "pstore"},
	{BINFMTFS_MAGIC, "binfmt_misc"},
	{NSFS_MAGIC, "nsfs"},
	{RDTGROUP_SUPER_MAGIC, "resctrl"},
	{AAFS_MAGIC, "apparmorfs"},
	{BINDERFS_SUPER_MAGIC, "binderfs"},
	{USBDEVICE_SUPER_MAGIC, "usbfs"},
	{OPENPROM_SUPER_MAGIC, "openprom"},
	/* Not in <linux/magic.h>; from fs/fuse, fs/configfs, ipc/mqueue.c. */
	{0x65735543, "fusectl"},
	{0x62656570, "configfs"},
	{0x19800202, "mqueue"},
};

struct fs_list {
	const struct fsops_root *r;
	struct fs_entry *v;
	size_t n, cap;
	size_t bytes; /* strings of the entries so far */
	char *why;
	size_t whylen;
};

struct rm_frame {
	DIR *d;
	char *name; /* this directory's name in its parent */
};

static void fs_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fs_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0) {
		return;
	}
	va_start(ap, fmt);
	(void) vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Write "<op> <path>: <strerror>" and map ERR; never SBX_OK, so a
 * caller's out-params stay unwritten even if errno was somehow 0. */
static sbx_err
fs_fail(char *why, size_t whylen, const char *op, const char *path, int err)
{
	char buf[128];
	sbx_err rv = sbx_err_from_errno(err);

	/* With RESOLVE_NO_MAGICLINKS, ELOOP is also how a /proc magic link
	 * is refused; say so, "too many symlinks" alone misleads. */
	fs_why(why, whylen, "%s %s: %s%s", op, path,
	       strerror_r(err, buf, sizeof(buf)),
	       err == ELOOP ? " (symlink loop or refused /proc magic link)"
			    : "");
	return rv != SBX_OK ? rv : SBX_EINTERNAL;
}

/* close() for cleanup paths, where -1 means "never opened". */
static void
fs_close(int fd)
{
	if (fd >= 0) {
		(void) close(fd);
	}
}

static sbx_err
fs_nomem(char *why, size_t whylen, const char *op, const char *path)
{
	fs_why(why, whylen, "%s %s: out of memory", op, path);
	return SBX_ENOMEM;
}

/* openat2 confined to DIRFD as root; -1 with errno on failure. */
static int
fs_openat2(int dirfd, const char *path, int flags)
{
	struct open_how how;
	int fd, i;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t) (unsigned) (flags | O_CLOEXEC);
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	for (i = 0;; i++) {
		fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN || i == FS_EAGAIN_TRIES) {
			return fd;
		}
	}
}

static sbx_err
fs_resolve(const struct fsops_root *r, const char *ap, int flags, int *fdp,
	   const char *op, char *why, size_t whylen)
{
	int fd;

	if ((fd = fs_openat2(r->root_fd, ap, flags)) < 0) {
		return fs_fail(why, whylen, op, ap, errno);
	}
	*fdp = fd;
	return SBX_OK;
}

/* SBX_EPERM if FD lives on a pseudo filesystem. */
static sbx_err
fs_check_fs(int fd, const char *op, const char *path, char *why, size_t whylen)
{
	struct statfs sf;
	size_t i;

	if (fstatfs(fd, &sf) != 0) {
		return fs_fail(why, whylen, op, path, errno);
	}
	for (i = 0; i < sizeof(fs_pseudo) / sizeof(fs_pseudo[0]); i++) {
		if ((uint32_t) sf.f_type == fs_pseudo[i].magic) {
			fs_why(why, whylen,
			       "%s %s: refused on the %s pseudo filesystem", op,
			       path, fs_pseudo[i].name);
			return SBX_EPERM;
		}
	}
	return SBX_OK;
}

/* FD must be a regular file on a real filesystem; *ST is its stat. */
static sbx_err
fs_check_file(int fd, const char *op, const char *path, struct stat *st,
	      char *why, size_t whylen)
{
	sbx_err rv;

	if ((rv = fs_check_fs(fd, op, path, why, whylen)) != SBX_OK) {
		return rv;
	}
	if (fstat(fd, st) != 0) {
		return fs_fail(why, whylen, op, path, errno);
	}
	if (!S_ISREG(st->st_mode)) {
		fs_why(why, whylen, "%s %s: %s", op, path,
		       S_ISDIR(st->st_mode) ? "is a directory"
					    : "not a regular file");
		return SBX_ESTATE;
	}
	return SBX_OK;
}

/* Fold "//", "." and ".." of P, which starts with '/', in place. Output
 * never overtakes input: each component consumed its leading slash. */
static void
fs_clean(char *p)
{
	size_t rd = 0, wr = 0, start, len;

	while (p[rd] != '\0') {
		while (p[rd] == '/') {
			rd++;
		}
		start = rd;
		while (p[rd] != '\0' && p[rd] != '/') {
			rd++;
		}
		len = rd - start;
		if (len == 0 || (len == 1 && p[start] == '.')) {
			continue;
		}
		if (len == 2 && p[start] == '.' && p[start + 1] == '.') {
			while (wr > 0 && p[wr - 1] != '/') {
				wr--;
			}
			wr = wr > 0 ? wr - 1 : 0;
			continue;
		}
		p[wr++] = '/';
		memmove(p + wr, p + start, len);
		wr += len;
	}
	if (wr == 0) {
		p[wr++] = '/';
	}
	p[wr] = '\0';
}

sbx_err
fsops_abspath(const char *home, const char *path, char **out, char *why,
	      size_t whylen)
{
	const char *base = home;
	size_t len;
	char *buf;

	if (strlen(path) >= FSOPS_PATH_MAX || strlen(home) >= FSOPS_PATH_MAX) {
		fs_why(why, whylen, "path longer than %d bytes",
		       FSOPS_PATH_MAX);
		return SBX_EINVAL;
	}
	/* Only "~" alone or "~/..." means HOME; "~x" is an ordinary name. */
	if (path[0] == '~' && (path[1] == '\0' || path[1] == '/')) {
		path++;
	} else if (path[0] == '/') {
		base = "";
	}
	len = strlen(base) + strlen(path) + 3;
	if ((buf = malloc(len)) == NULL) {
		return fs_nomem(why, whylen, "resolve", path);
	}
	(void) snprintf(buf, len, "/%s/%s", base, path);
	fs_clean(buf);
	if (strlen(buf) >= FSOPS_PATH_MAX) {
		free(buf);
		fs_why(why, whylen, "path longer than %d bytes",
		       FSOPS_PATH_MAX);
		return SBX_EINVAL;
	}
	*out = buf;
	return SBX_OK;
}

/* Refuse a final "", "." or ".." (trailing slashes ignored), then make
 * PATH absolute. For operations that name what they create or remove. */
static sbx_err
fs_prepare(const struct fsops_root *r, const char *path, const char *op,
	   char **ap, char *why, size_t whylen)
{
	size_t end = strlen(path), start, n;

	while (end > 0 && path[end - 1] == '/') {
		end--;
	}
	for (start = end; start > 0 && path[start - 1] != '/'; start--) {
	}
	n = end - start;
	if (n == 0 || (n == 1 && path[start] == '.') ||
	    (n == 2 && path[start] == '.' && path[start + 1] == '.')) {
		fs_why(why, whylen,
		       "%s \"%s\": needs a final name, not \"\", "
		       "\".\", \"..\" or \"/\"",
		       op, path);
		return SBX_EINVAL;
	}
	return fsops_abspath(r->home, path, ap, why, whylen);
}

/* mkdirat, then fchmod to exactly MODE; returns 0 or an errno. */
static int
fs_mkdir_at(int pfd, const char *name, mode_t mode)
{
	int fd, err = 0;

	/* Created owner-only first: a umask cannot strip the owner bits we
	 * need to open it for fchmod, and it is never wider than asked for
	 * anyone but its owner. */
	if (mkdirat(pfd, name, 0700) != 0) {
		return errno;
	}
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, mode) != 0) {
		err = errno;
	}
	fs_close(fd);
	return err;
}

/* Resolve PREFIX, making its last component COMP in CUR if missing. */
static sbx_err
fs_mkparent(const struct fsops_root *r, int cur, const char *prefix,
	    const char *comp, int *out, char *why, size_t whylen)
{
	sbx_err rv;
	int fd, err;

	fd = fs_openat2(r->root_fd, prefix, O_PATH | O_DIRECTORY);
	if (fd < 0 && errno == ENOENT) {
		if ((rv = fs_check_fs(cur, "mkdir", prefix, why, whylen)) !=
		    SBX_OK) {
			return rv;
		}
		err = fs_mkdir_at(cur, comp, 0755);
		/* EEXIST: made meanwhile; the lookup below decides. */
		if (err != 0 && err != EEXIST) {
			return fs_fail(why, whylen, "mkdir", prefix, err);
		}
		fd = fs_openat2(r->root_fd, prefix, O_PATH | O_DIRECTORY);
	}
	if (fd < 0) {
		return fs_fail(why, whylen, "open", prefix, errno);
	}
	*out = fd;
	return SBX_OK;
}

/* Resolve directory DIR (absolute, not "/"), creating what is missing. */
static sbx_err
fs_mkparents(const struct fsops_root *r, char *dir, int *out, char *why,
	     size_t whylen)
{
	char *p = dir, *end;
	sbx_err rv = SBX_OK;
	int cur, fd = -1;

	if ((cur = fs_openat2(r->root_fd, "/", O_PATH | O_DIRECTORY)) < 0) {
		return fs_fail(why, whylen, "open", "/", errno);
	}
	while (rv == SBX_OK && p != NULL) {
		if ((end = strchr(p + 1, '/')) != NULL) {
			*end = '\0';
		}
		rv = fs_mkparent(r, cur, dir, p + 1, &fd, why, whylen);
		if (end != NULL) {
			*end = '/';
		}
		(void) close(cur);
		cur = fd;
		fd = -1;
		p = end;
	}
	if (rv != SBX_OK) {
		fs_close(cur);
		return rv;
	}
	*out = cur;
	return SBX_OK;
}

/*
 * Open the parent directory of AP (O_PATH) into *PFD and point *NAME at
 * AP's last component. AP is cut at its last slash while resolving.
 */
static sbx_err
fs_parent(const struct fsops_root *r, char *ap, bool make, int *pfd,
	  const char **name, const char *op, char *why, size_t whylen)
{
	char *slash = strrchr(ap, '/');
	const char *dir = slash == ap ? "/" : ap;
	sbx_err rv = SBX_OK;
	int fd;

	if (slash == NULL || slash[1] == '\0') {
		fs_why(why, whylen, "%s %s: the root has no parent", op, ap);
		return SBX_EINVAL;
	}
	*slash = '\0';
	fd = fs_openat2(r->root_fd, dir, O_PATH | O_DIRECTORY);
	if (fd < 0 && errno == ENOENT && make) {
		rv = fs_mkparents(r, ap, &fd, why, whylen);
	} else if (fd < 0) {
		rv = fs_fail(why, whylen, op, dir, errno);
	}
	*slash = '/';
	if (rv == SBX_OK) {
		*pfd = fd;
		*name = slash + 1;
	}
	return rv;
}

/* The final component itself (a symlink stays a symlink), O_PATH. */
static sbx_err
fs_open_final(int pfd, const char *name, const char *ap, const char *op,
	      int *fdp, char *why, size_t whylen)
{
	int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		return fs_fail(why, whylen, op, ap, errno);
	}
	*fdp = fd;
	return SBX_OK;
}

static enum fs_type
fs_type_of(mode_t m)
{
	if (S_ISREG(m)) {
		return FS_FILE;
	}
	if (S_ISDIR(m)) {
		return FS_DIRECTORY;
	}
	return S_ISLNK(m) ? FS_SYMLINK : FS_OTHER;
}

/* Host ids as the sandbox's user namespace shows them. */
static void
fs_map_ids(const struct fsops_ids *ids, const struct stat *st,
	   struct fs_entry *e)
{
	if (st->st_uid == ids->host_root_uid) {
		e->uid = 0;
		e->owner = "root";
	} else if (st->st_uid == ids->host_user_uid) {
		e->uid = 1000;
		e->owner = "user";
	} else {
		e->uid = FS_NOBODY;
		e->owner = "nobody";
	}
	if (st->st_gid == ids->host_root_gid) {
		e->gid = 0;
		e->group = "root";
	} else if (st->st_gid == ids->host_user_gid) {
		e->gid = 1000;
		e->group = "user";
	} else {
		e->gid = FS_NOBODY;
		e->group = "nobody";
	}
}

/* Symlink text of NAME below DIRFD, and what E->path reaches in root. */
static sbx_err
fs_entry_link(const struct fsops_root *r, int dirfd, const char *name,
	      struct fs_entry *e, char *why, size_t whylen)
{
	char buf[FSOPS_PATH_MAX];
	struct stat st;
	ssize_t len;
	int fd;

	if ((len = readlinkat(dirfd, name, buf, sizeof(buf) - 1)) < 0) {
		return fs_fail(why, whylen, "readlink", e->path, errno);
	}
	buf[len] = '\0';
	if ((e->symlink_target = strdup(buf)) == NULL) {
		return fs_nomem(why, whylen, "readlink", e->path);
	}
	/* Dangling, looping and magic links reach nothing: UNSPECIFIED. */
	e->target_type = FS_UNSPECIFIED;
	if ((fd = fs_openat2(r->root_fd, e->path, O_PATH)) >= 0) {
		if (fstat(fd, &st) == 0) {
			e->target_type = fs_type_of(st.st_mode);
		}
		(void) close(fd);
	}
	return SBX_OK;
}

/* Describe NAME below DIRFD ("" for DIRFD itself), known as PATH. */
static sbx_err
fs_entry_make(const struct fsops_root *r, int dirfd, const char *name,
	      const char *path, struct fs_entry *out, char *why, size_t whylen)
{
	int flags = AT_SYMLINK_NOFOLLOW | (name[0] == '\0' ? AT_EMPTY_PATH : 0);
	const char *base = strrchr(path, '/');
	sbx_err rv = SBX_OK;
	struct fs_entry e;
	struct stat st;

	if (fstatat(dirfd, name, &st, flags) != 0) {
		return fs_fail(why, whylen, "stat", path, errno);
	}
	memset(&e, 0, sizeof(e));
	e.type = fs_type_of(st.st_mode);
	e.size = (uint64_t) st.st_size;
	e.mode = (uint32_t) (st.st_mode & 07777);
	e.mtime_ms = (int64_t) st.st_mtim.tv_sec * 1000 +
		     st.st_mtim.tv_nsec / 1000000;
	fs_map_ids(&r->ids, &st, &e);
	base = (base == NULL || base[1] == '\0') ? "/" : base + 1;
	if ((e.name = strdup(base)) == NULL ||
	    (e.path = strdup(path)) == NULL) {
		rv = fs_nomem(why, whylen, "stat", path);
	} else if (e.type == FS_SYMLINK) {
		rv = fs_entry_link(r, dirfd, name, &e, why, whylen);
	}
	if (rv != SBX_OK) {
		fs_entry_fini(&e);
		return rv;
	}
	*out = e;
	return SBX_OK;
}

void
fs_entry_fini(struct fs_entry *e)
{
	if (e == NULL) {
		return;
	}
	free(e->name);
	free(e->path);
	free(e->symlink_target);
	e->name = e->path = e->symlink_target = NULL;
}

void
fs_entries_free(struct fs_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fs_entry_fini(&v[i]);
	}
	free(v);
}

/*
 * Open NAME in PFD for writing. A new file is created exclusively (never
 * through a symlink) and chmod'ed; an existing name is opened through the
 * root like open(2) would, following a final symlink inside the root.
 */
static sbx_err
fs_open_write(const struct fsops_root *r, int pfd, const char *name,
	      const char *ap, mode_t mode, int *fdp, char *why, size_t whylen)
{
	const int io = O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd, err, i;

	for (i = 0; i < FS_WRITE_TRIES; i++) {
		fd = openat(pfd, name, io | O_CREAT | O_EXCL | O_NOFOLLOW,
			    mode);
		if (fd >= 0) {
			if (fchmod(fd, mode) != 0) {
				err = errno;
				(void) close(fd);
				return fs_fail(why, whylen, "chmod", ap, err);
			}
			*fdp = fd;
			return SBX_OK;
		}
		if (errno != EEXIST) {
			return fs_fail(why, whylen, "create", ap, errno);
		}
		if ((fd = fs_openat2(r->root_fd, ap, io)) >= 0) {
			*fdp = fd;
			return SBX_OK;
		}
		/* O_NONBLOCK turns "FIFO without reader" into ENXIO. */
		if (errno == ENXIO) {
			fs_why(why, whylen, "write %s: not a regular file", ap);
			return SBX_ESTATE;
		}
		/* ENOENT: removed since, or a dangling symlink; retry. */
		if (errno != ENOENT) {
			return fs_fail(why, whylen, "open", ap, errno);
		}
	}
	fs_why(why, whylen,
	       "write %s: exists but does not resolve "
	       "(dangling symlink?)",
	       ap);
	return SBX_ENOTFOUND;
}

static sbx_err
fs_pwrite_all(int fd, const void *data, size_t len, uint64_t offset,
	      const char *ap, char *why, size_t whylen)
{
	size_t done = 0;
	ssize_t k;

	while (done < len) {
		k = pwrite(fd, (const char *) data + done, len - done,
			   (off_t) (offset + done));
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return fs_fail(why, whylen, "write", ap,
				       k < 0 ? errno : EIO);
		}
		done += (size_t) k;
	}
	return SBX_OK;
}

sbx_err
fsops_write(const struct fsops_root *r, const char *path, uint64_t offset,
	    const void *data, size_t len, bool truncate, bool make_parents,
	    uint32_t mode, struct fs_entry *out, char *why, size_t whylen)
{
	const char *name;
	struct fs_entry e;
	struct stat st;
	char *ap = NULL;
	int pfd = -1, fd = -1;
	sbx_err rv;

	if (len > r->max_chunk) {
		fs_why(why, whylen,
		       "write %s: %zu bytes is over the %zu byte "
		       "limit",
		       path, len, r->max_chunk);
		return SBX_ELIMIT;
	}
	if (offset > (uint64_t) INT64_MAX - len) {
		fs_why(why, whylen, "write %s: offset out of range", path);
		return SBX_ERANGE;
	}
	mode = mode != 0 ? mode & 07777 : 0644;
	if ((rv = fs_prepare(r, path, "write", &ap, why, whylen)) != SBX_OK ||
	    (rv = fs_parent(r, ap, make_parents, &pfd, &name, "write", why,
			    whylen)) != SBX_OK ||
	    (rv = fs_check_fs(pfd, "write", ap, why, whylen)) != SBX_OK ||
	    (rv = fs_open_write(r, pfd, name, ap, (mode_t) mode, &fd, why,
				whylen)) != SBX_OK ||
	    (rv = fs_check_file(fd, "write", ap, &st, why, whylen)) != SBX_OK) {
		goto done;
	}
	if (truncate && ftruncate(fd, 0) != 0) {
		rv = fs_fail(why, whylen, "truncate", ap, errno);
		goto done;
	}
	if ((rv = fs_pwrite_all(fd, data, len, offset, ap, why, whylen)) ==
		    SBX_OK &&
	    (rv = fs_entry_make(r, fd, "", ap, &e, why, whylen)) == SBX_OK) {
		*out = e;
	}
done:
	fs_close(fd);
	fs_close(pfd);
	free(ap);
	return rv;
}

static sbx_err
fs_pread_all(int fd, void *buf, size_t want, uint64_t offset, size_t *got,
	     const char *ap, char *why, size_t whylen)
{
	size_t done = 0;
	ssize_t k;

	while (done < want) {
		k = pread(fd, (char *) buf + done, want - done,
			  (off_t) (offset + done));
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			return fs_fail(why, whylen, "read", ap, errno);
		}
		if (k == 0) {
			break;
		}
		done += (size_t) k;
	}
	*got = done;
	return SBX_OK;
}

sbx_err
fsops_read(const struct fsops_root *r, const char *path, uint64_t offset,
	   size_t length, void *buf, size_t *n, uint64_t *size, bool *eof,
	   char *why, size_t whylen)
{
	size_t want, got = 0;
	struct stat st;
	char *ap = NULL;
	int fd = -1;
	sbx_err rv;

	want = (length == 0 || length > r->max_chunk) ? r->max_chunk : length;
	if (offset > (uint64_t) INT64_MAX - want) {
		fs_why(why, whylen, "read %s: offset out of range", path);
		return SBX_ERANGE;
	}
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; the
	 * regular-file check below then refuses it. */
	if ((rv = fsops_abspath(r->home, path, &ap, why, whylen)) != SBX_OK ||
	    (rv = fs_resolve(r, ap, O_RDONLY | O_NONBLOCK | O_NOCTTY, &fd,
			     "open", why, whylen)) != SBX_OK ||
	    (rv = fs_check_file(fd, "read", ap, &st, why, whylen)) != SBX_OK ||
	    (rv = fs_pread_all(fd, buf, want, offset, &got, ap, why, whylen)) !=
		    SBX_OK) {
		goto done;
	}
	*n = got;
	*size = (uint64_t) st.st_size;
	/* A short read also means the end: the file may have shrunk. */
	*eof = got < want || offset + got >= (uint64_t) st.st_size;
done:
	fs_close(fd);
	free(ap);
	return rv;
}

/* Append NAME (an entry of DIR, open as DFD) to LC. */
static sbx_err
fs_list_add(struct fs_list *lc, int dfd, const char *dir, const char *name,
	    bool top)
{
	struct fs_entry e, *nv;
	char *path;
	sbx_err rv;
	size_t cap;

	if (lc->n >= lc->r->max_entries) {
		fs_why(lc->why, lc->whylen, "list %s: more than %zu entries",
		       dir, lc->r->max_entries);
		return SBX_ELIMIT;
	}
	if (asprintf(&path, "%s%s%s", dir, dir[1] == '\0' ? "" : "/", name) <
	    0) {
		return fs_nomem(lc->why, lc->whylen, "list", dir);
	}
	rv = fs_entry_make(lc->r, dfd, name, path, &e, lc->why, lc->whylen);
	free(path);
	/* Gone since readdir: skip. Below the top, so is what the user may
	 * not stat (a directory readable but not searchable). */
	if (rv == SBX_ENOTFOUND || (rv == SBX_EPERM && !top)) {
		return SBX_OK;
	}
	if (rv != SBX_OK) {
		return rv;
	}
	/* Paths of up to 4 KiB make the entry count alone a poor bound: 100k
	 * of them would be ~400 MiB in memory and in one reply. */
	lc->bytes += strlen(e.name) + strlen(e.path) +
		     (e.symlink_target != NULL ? strlen(e.symlink_target) : 0);
	if (lc->r->max_list_bytes != 0 && lc->bytes > lc->r->max_list_bytes) {
		fs_entry_fini(&e);
		/* DIR last: a deep one may not fit WHY, the reason must. */
		fs_why(lc->why, lc->whylen,
		       "list: more than %zu bytes of names and paths; list "
		       "a subdirectory or use a smaller depth (at %s)",
		       lc->r->max_list_bytes, dir);
		return SBX_ELIMIT;
	}
	if (lc->n == lc->cap) {
		cap = lc->cap != 0 ? lc->cap * 2 : 32;
		if ((nv = realloc(lc->v, cap * sizeof(*nv))) == NULL) {
			fs_entry_fini(&e);
			return fs_nomem(lc->why, lc->whylen, "list", dir);
		}
		lc->v = nv;
		lc->cap = cap;
	}
	lc->v[lc->n++] = e;
	return SBX_OK;
}

static sbx_err
fs_list_dir(struct fs_list *lc, const char *dir, bool top)
{
	struct dirent *de;
	sbx_err rv = SBX_OK;
	int fd, err;
	DIR *d;

	/* Only the top directory may be reached through a final symlink;
	 * below it, O_NOFOLLOW keeps a link swapped in since from being
	 * descended. A subdirectory that vanished or is closed to the user
	 * is skipped, as ls -R would; the top one is an error. */
	fd = fs_openat2(lc->r->root_fd, dir,
			O_RDONLY | O_DIRECTORY | (top ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		err = errno;
		if (!top && (err == ENOENT || err == EACCES || err == ENOTDIR ||
			     err == ELOOP)) {
			return SBX_OK;
		}
		return fs_fail(lc->why, lc->whylen, "list", dir, err);
	}
	if ((d = fdopendir(fd)) == NULL) {
		err = errno;
		(void) close(fd);
		return fs_fail(lc->why, lc->whylen, "list", dir, err);
	}
	while (rv == SBX_OK) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				rv = fs_fail(lc->why, lc->whylen, "list", dir,
					     errno);
			}
			break;
		}
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			rv = fs_list_add(lc, dirfd(d), dir, de->d_name, top);
		}
	}
	(void) closedir(d);
	return rv;
}

static int
fs_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fs_entry *) a)->path,
		      ((const struct fs_entry *) b)->path);
}

sbx_err
fsops_list(const struct fsops_root *r, const char *path, unsigned depth,
	   struct fs_entry **v, size_t *n, char *why, size_t whylen)
{
	struct fs_list lc = {.r = r, .why = why, .whylen = whylen};
	size_t lo = 0, hi, i;
	unsigned level;
	char *ap;
	sbx_err rv;

	if ((rv = fsops_abspath(r->home, path, &ap, why, whylen)) != SBX_OK) {
		return rv;
	}
	/* Breadth first, one open directory at a time: level L lists the
	 * directories that level L-1 appended. The array's path strings
	 * stay put when it grows, so passing them along is safe. */
	depth = depth == 0 ? 1 : depth;
	depth = depth > FS_LIST_DEPTH_MAX ? FS_LIST_DEPTH_MAX : depth;
	rv = fs_list_dir(&lc, ap, true);
	for (level = 2; rv == SBX_OK && level <= depth; level++) {
		for (hi = lc.n, i = lo; rv == SBX_OK && i < hi; i++) {
			if (lc.v[i].type == FS_DIRECTORY) {
				rv = fs_list_dir(&lc, lc.v[i].path, false);
			}
		}
		lo = hi;
	}
	if (rv == SBX_OK) {
		if (lc.n > 1) {
			qsort(lc.v, lc.n, sizeof(*lc.v), fs_entry_cmp);
		}
		*v = lc.v;
		*n = lc.n;
	} else {
		fs_entries_free(lc.v, lc.n);
	}
	free(ap);
	return rv;
}

sbx_err
fsops_stat(const struct fsops_root *r, const char *path, struct fs_entry *out,
	   char *why, size_t whylen)
{
	char *ap = NULL;
	int fd = -1;
	sbx_err rv;

	/* O_PATH | O_NOFOLLOW opens a final symlink (even a magic one)
	 * itself, so stat describes the link. */
	if ((rv = fsops_abspath(r->home, path, &ap, why, whylen)) == SBX_OK &&
	    (rv = fs_resolve(r, ap, O_PATH | O_NOFOLLOW, &fd, "stat", why,
			     whylen)) == SBX_OK) {
		rv = fs_entry_make(r, fd, "", ap, out, why, whylen);
	}
	fs_close(fd);
	free(ap);
	return rv;
}

sbx_err
fsops_mkdir(const struct fsops_root *r, const char *path, bool parents,
	    uint32_t mode, struct fs_entry *out, char *why, size_t whylen)
{
	const char *name;
	char *ap = NULL;
	int pfd = -1, err;
	sbx_err rv;

	mode = mode != 0 ? mode & 07777 : 0755;
	if ((rv = fs_prepare(r, path, "mkdir", &ap, why, whylen)) != SBX_OK ||
	    (rv = fs_parent(r, ap, parents, &pfd, &name, "mkdir", why,
			    whylen)) != SBX_OK ||
	    (rv = fs_check_fs(pfd, "mkdir", ap, why, whylen)) != SBX_OK) {
		goto done;
	}
	if ((err = fs_mkdir_at(pfd, name, (mode_t) mode)) != 0) {
		rv = fs_fail(why, whylen, "mkdir", ap, err);
		goto done;
	}
	rv = fs_entry_make(r, pfd, name, ap, out, why, whylen);
done:
	fs_close(pfd);
	free(ap);
	return rv;
}

sbx_err
fsops_move(const struct fsops_root *r, const char *src, const char *dst,
	   bool make_parents, struct fs_entry *out, char *why, size_t whylen)
{
	int spfd = -1, dpfd = -1, ofd = -1, err;
	char *sp = NULL, *dp = NULL, buf[128];
	const char *sn, *dn;
	sbx_err rv;

	/* The source is checked where it is (a pseudo-fs file or mount),
	 * the destination where it will be created. */
	if ((rv = fs_prepare(r, src, "move", &sp, why, whylen)) != SBX_OK ||
	    (rv = fs_prepare(r, dst, "move", &dp, why, whylen)) != SBX_OK ||
	    (rv = fs_parent(r, sp, false, &spfd, &sn, "move", why, whylen)) !=
		    SBX_OK ||
	    (rv = fs_open_final(spfd, sn, sp, "move", &ofd, why, whylen)) !=
		    SBX_OK ||
	    (rv = fs_check_fs(ofd, "move", sp, why, whylen)) != SBX_OK ||
	    (rv = fs_parent(r, dp, make_parents, &dpfd, &dn, "move", why,
			    whylen)) != SBX_OK ||
	    (rv = fs_check_fs(dpfd, "move", dp, why, whylen)) != SBX_OK) {
		goto done;
	}
	if (renameat(spfd, sn, dpfd, dn) != 0) {
		err = errno;
		fs_why(why, whylen, "move %s -> %s: %s", sp, dp,
		       strerror_r(err, buf, sizeof(buf)));
		rv = sbx_err_from_errno(err);
		goto done;
	}
	rv = fs_entry_make(r, dpfd, dn, dp, out, why, whylen);
done:
	fs_close(ofd);
	fs_close(spfd);
	fs_close(dpfd);
	free(sp);
	free(dp);
	return rv;
}

/* Remove NAME in PFD, a directory if DIR. */
static sbx_err
fs_unlink(int pfd, const char *name, bool dir, bool recursive, const char *ap,
	  char *why, size_t whylen)
{
	sbx_err rv;
	int err;

	if (unlinkat(pfd, name, dir ? AT_REMOVEDIR : 0) == 0) {
		return SBX_OK;
	}
	err = errno;
	/* POSIX allows EEXIST as well as ENOTEMPTY for a full directory. */
	if (!dir || (err != ENOTEMPTY && err != EEXIST)) {
		return fs_fail(why, whylen, "remove", ap, err);
	}
	if (!recursive) {
		fs_why(why, whylen, "remove %s: directory not empty", ap);
		return SBX_ESTATE;
	}
	if ((rv = fsops_rmtree_at(pfd, name)) != SBX_OK) {
		fs_why(why, whylen,
		       "remove %s: could not remove all of it (%s)", ap,
		       sbx_strerror(rv));
	}
	return rv;
}

sbx_err
fsops_remove(const struct fsops_root *r, const char *path, bool recursive,
	     char *why, size_t whylen)
{
	int pfd = -1, ofd = -1;
	const char *name;
	struct stat st;
	char *ap = NULL;
	sbx_err rv;

	if ((rv = fs_prepare(r, path, "remove", &ap, why, whylen)) != SBX_OK ||
	    (rv = fs_parent(r, ap, false, &pfd, &name, "remove", why,
			    whylen)) != SBX_OK ||
	    (rv = fs_open_final(pfd, name, ap, "remove", &ofd, why, whylen)) !=
		    SBX_OK ||
	    (rv = fs_check_fs(ofd, "remove", ap, why, whylen)) != SBX_OK) {
		goto done;
	}
	if (fstat(ofd, &st) != 0) {
		rv = fs_fail(why, whylen, "remove", ap, errno);
		goto done;
	}
	rv = fs_unlink(pfd, name, S_ISDIR(st.st_mode), recursive, ap, why,
		       whylen);
done:
	fs_close(ofd);
	fs_close(pfd);
	free(ap);
	return rv;
}

static void
fs_keep(sbx_err *rv, int err)
{
	if (*rv == SBX_OK) {
		*rv = sbx_err_from_errno(err);
	}
}

/* Open directory NAME in PFD (never through a symlink) as frame F. */
static int
fs_rm_open(struct rm_frame *f, int pfd, const char *name, struct stat *st)
{
	int fd, err;

	memset(f, 0, sizeof(*f));
	fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return errno;
	}
	if (fstat(fd, st) != 0 || (f->name = strdup(name)) == NULL ||
	    (f->d = fdopendir(fd)) == NULL) {
		err = errno;
		free(f->name);
		(void) close(fd);
		return err != 0 ? err : EIO;
	}
	return 0;
}

static void
fs_rm_close(struct rm_frame *f)
{
	(void) closedir(f->d);
	free(f->name);
}

/* Finish the innermost directory: rmdir it and pop its frame. */
static void
fs_rm_leave(struct rm_frame *fr, size_t *depth, int topfd, sbx_err *rv)
{
	struct rm_frame *f = &fr[*depth - 1];
	int pfd = *depth > 1 ? dirfd(fr[*depth - 2].d) : topfd;

	if (unlinkat(pfd, f->name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
		fs_keep(rv, errno);
	}
	fs_rm_close(f);
	(*depth)--;
}

/* One step of the walk: remove or enter the next entry of the innermost
 * directory, or leave it when it is exhausted. Errors are kept, not
 * fatal: cleanup removes what it can. */
static void
fs_rm_step(struct rm_frame *fr, size_t *depth, int topfd, dev_t dev,
	   sbx_err *rv)
{
	struct rm_frame *f = &fr[*depth - 1];
	int fd = dirfd(f->d), err;
	struct dirent *de;
	struct stat st;

	errno = 0;
	if ((de = readdir(f->d)) == NULL) {
		if (errno != 0) {
			fs_keep(rv, errno);
		}
		fs_rm_leave(fr, depth, topfd, rv);
		return;
	}
	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
		return;
	}
	if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno != ENOENT) {
			fs_keep(rv, errno);
		}
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT) {
			fs_keep(rv, errno);
		}
		return;
	}
	/* Another st_dev is a mount point: leave it and all below it; the
	 * rmdir of its parent then fails and reports it. */
	if (st.st_dev != dev) {
		return;
	}
	if (*depth == FS_RMTREE_DEPTH) {
		if (*rv == SBX_OK) {
			*rv = SBX_ELIMIT;
		}
		return;
	}
	if ((err = fs_rm_open(&fr[*depth], fd, de->d_name, &st)) != 0) {
		if (err != ENOENT) {
			fs_keep(rv, err);
		}
		return;
	}
	/* Checked again on the opened fd: a rename race cannot slip a
	 * mount point past the fstatat above. */
	if (st.st_dev != dev) {
		fs_rm_close(&fr[*depth]);
		return;
	}
	(*depth)++;
}

sbx_err
fsops_rmtree_at(int dirfd, const char *name)
{
	struct rm_frame *fr;
	struct stat st;
	size_t depth = 1;
	sbx_err rv = SBX_OK;
	int err;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		return errno == ENOENT ? SBX_OK : sbx_err_from_errno(errno);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
			return sbx_err_from_errno(errno);
		}
		return SBX_OK;
	}
	/* An explicit stack instead of recursion: depth is capped and a
	 * hostile deep tree costs heap, not the worker's stack. */
	if ((fr = calloc(FS_RMTREE_DEPTH, sizeof(*fr))) == NULL) {
		return SBX_ENOMEM;
	}
	if ((err = fs_rm_open(&fr[0], dirfd, name, &st)) != 0) {
		free(fr);
		return err == ENOENT ? SBX_OK : sbx_err_from_errno(err);
	}
	while (depth > 0) {
		fs_rm_step(fr, &depth, dirfd, st.st_dev, &rv);
	}
	free(fr);
	return rv;
}

sbx_err
fsops_creds_enter(uid_t uid, gid_t gid)
{
	/* glibc's setgroups() changes every thread of the process; the raw
	 * syscall changes only this one. Without it root's supplementary
	 * group 0 would still grant group access to root's files. */
	if (syscall(SYS_setgroups, 0, NULL) != 0) {
		return SBX_EPERM;
	}
	(void) setfsgid(gid);
	(void) setfsuid(uid);
	/* setfsuid never reports failure; it returns the previous id, so
	 * an invalid id (-1) reads back the current one. */
	if ((gid_t) setfsgid((gid_t) -1) != gid ||
	    (uid_t) setfsuid((uid_t) -1) != uid || getgroups(0, NULL) != 0) {
		fsops_creds_leave();
		return SBX_EPERM;
	}
	return SBX_OK;
}

void
fsops_creds_leave(void)
{
	/* Back to the thread's effective ids. Supplementary groups stay
	 * dropped: root needs none, its capabilities return with fsuid 0. */
	(void) setfsuid(geteuid());
	(void) setfsgid(getegid());
}
