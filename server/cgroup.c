/*
 * cgroup: one cgroup per sandbox for memory, cpu and pids on v1, v2 or
 * hybrid hosts. Loop thread only; a struct cgroup_env is owned by its caller
 * and holds every path, so the module has no state of its own.
 *
 * DESIGN: cgroup_env_open reads the self file first (the cgroup path of
 * each controller) and then mountinfo (where each hierarchy is mounted),
 * picks one hierarchy per controller and de-duplicates them into at most
 * three "hierarchies in use", each with a base directory
 * "<mount><own path>/<subtree>". Everything later is "<base>/<id>" in each
 * of those, so a co-mount or the single v2 tree is visited once.
 *
 * Files are written with O_CREAT|O_TRUNC: cgroupfs files exist already and
 * ignore both, and a fake tree of plain directories then works for tests.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"

#define CG_NCTL 3
#define CG_BIT(c) (1u << (c))
#define CG_PERIOD_US 100000
#define CG_KILL_PASSES 16
#define CG_MI_FIELDS 32 /* mountinfo has 10 fields plus optional tags */

_Static_assert(CGROUP_MAX_FDS >= CG_NCTL, "one fd per hierarchy in use");

enum cg_ctl { CG_MEMORY, CG_CPU, CG_PIDS };

static const char *const ctl_names[CG_NCTL] = {"memory", "cpu", "pids"};

/* A hierarchy in use: a v1 mount or the v2 tree, and which of our
 * controllers (CG_BIT) are used there. */
struct cg_hier {
	char *base; /* "<mount><own path>/<subtree>" */
	bool v2;
	unsigned ctls;
};

struct cgroup_env {
	struct cg_hier h[CG_NCTL];
	size_t nh;
	const char *mode;
};

/* What detection found; freed once the env is built. */
struct cg_layout {
	char *v1own[CG_NCTL]; /* own path per controller, from the self file */
	char *v1dir[CG_NCTL]; /* "<mount><own path>" per v1 controller */
	char *v2own;
	char *v2mnt;
	char *v2dir;
};

struct pidset {
	pid_t *v;
	size_t n, cap;
};

static void __attribute__((format(printf, 3, 4)))
say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
}

/*
 * Ids are checked by the RPC layer ([0-9a-z-]{1,64}); this is defense in
 * depth, since an id becomes a path component under every hierarchy.
 */
static bool
name_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && s[0] != '.' &&
	       strchr(s, '/') == NULL && strstr(s, "..") == NULL;
}

/* BUF (PATH_MAX bytes) = "A/B" or, when C is not NULL, "A/B/C". */
static int
cg_path(char *buf, const char *a, const char *b, const char *c)
{
	int r;

	if (c != NULL) {
		r = snprintf(buf, PATH_MAX, "%s/%s/%s", a, b, c);
	} else {
		r = snprintf(buf, PATH_MAX, "%s/%s", a, b);
	}
	return r < 0 || r >= PATH_MAX ? ENAMETOOLONG : 0;
}

static bool
cg_has(const char *dir, const char *file)
{
	char path[PATH_MAX];

	return cg_path(path, dir, file, NULL) == 0 && access(path, F_OK) == 0;
}

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Write VAL to DIR/FILE. Returns 0 or an errno value, WHY naming the file. */
static int
cg_write(const char *dir, const char *file, const char *val, char *why,
         size_t whylen)
{
	char path[PATH_MAX];
	size_t len = strlen(val);
	ssize_t n;
	int fd, e;

	if ((e = cg_path(path, dir, file, NULL)) != 0) {
		say(why, whylen, "write %s/%s: %s", dir, file, strerror(e));
		return e;
	}
	if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC,
	               0644)) < 0) {
		e = errno;
	} else {
		/* cgroupfs takes a value in one write; short means failed. */
		if ((n = write(fd, val, len)) < 0) {
			e = errno;
		} else if ((size_t) n != len) {
			e = EIO;
		}
		if (close(fd) != 0 && e == 0) {
			e = errno;
		}
	}
	if (e != 0) {
		say(why, whylen, "write %s: %s", path, strerror(e));
	}
	return e;
}

/* Read DIR/FILE (a small cgroup file) into BUF as a string. */
static int
cg_read(const char *dir, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX];
	size_t got = 0;
	ssize_t n = 1;
	int fd, e;

	buf[0] = '\0';
	if ((e = cg_path(path, dir, file, NULL)) != 0) {
		return e;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return errno;
	}
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0) {
		got += (size_t) n;
	}
	e = n < 0 ? errno : 0;
	close(fd); /* read-only: nothing to learn from close */
	buf[got] = '\0';
	return e;
}

static bool
parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (!isdigit((unsigned char) *s)) {
		return false;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || (*end != '\0' && !isspace((unsigned char) *end))) {
		return false;
	}
	*v = x;
	return true;
}

/* Read a number from DIR/FILE; a missing file reads as 0, since optional
 * files differ between kernels and configurations. */
static int
read_u64(const char *dir, const char *file, uint64_t *v)
{
	char buf[64];
	int e;

	*v = 0;
	if ((e = cg_read(dir, file, buf, sizeof(buf))) != 0) {
		return e == ENOENT ? 0 : e;
	}
	return parse_u64(buf, v) ? 0 : EIO;
}

/* True if TOK is one of the SEPS-separated tokens of LIST. */
static bool
has_token(const char *list, const char *tok, const char *seps)
{
	size_t tl = strlen(tok), n;

	for (; *list != '\0'; list += n + (list[n] != '\0')) {
		n = strcspn(list, seps);
		if (n == tl && strncmp(list, tok, tl) == 0) {
			return true;
		}
	}
	return false;
}

/* Keep the first value seen: later lines of the same kind are ignored. */
static sbx_err
set_str(char **dst, const char *a, const char *b)
{
	if (*dst == NULL && asprintf(dst, "%s%s", a, b) < 0) {
		*dst = NULL;
		return SBX_ENOMEM;
	}
	return SBX_OK;
}

/* Parse "N:ctl,ctl:/path" lines; "0::/path" is the v2 cgroup. */
static sbx_err
parse_self(struct cg_layout *lo, const char *file, char *why, size_t whylen)
{
	char *line = NULL, *ctls, *path;
	size_t cap = 0;
	sbx_err rv = SBX_OK;
	FILE *f;

	if ((f = fopen(file, "re")) == NULL) {
		say(why, whylen, "open %s: %s", file, strerror(errno));
		return SBX_ESTATE;
	}
	while (rv == SBX_OK && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if ((ctls = strchr(line, ':')) == NULL ||
		    (path = strchr(ctls + 1, ':')) == NULL) {
			continue;
		}
		*ctls++ = '\0';
		*path++ = '\0';
		if (*ctls == '\0' && strcmp(line, "0") == 0) {
			rv = set_str(&lo->v2own, path, "");
		}
		for (int c = 0; c < CG_NCTL && rv == SBX_OK; c++) {
			if (has_token(ctls, ctl_names[c], ",")) {
				rv = set_str(&lo->v1own[c], path, "");
			}
		}
	}
	free(line);
	fclose(f);
	return rv;
}

/* Undo mountinfo's octal escapes ("\040" is a space) in place. */
static void
unescape(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d = (char) ((s[1] - '0') << 6 | (s[2] - '0') << 3 |
			             (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = '\0';
}

/* OWN relative to a mount whose ROOT is a subtree of the hierarchy (a bind
 * mount, or a container's view); NULL if OWN lies outside it. */
static const char *
rel_path(const char *root, const char *own)
{
	size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);

	if (strncmp(own, root, rl) != 0 ||
	    (own[rl] != '/' && own[rl] != '\0')) {
		return NULL;
	}
	return strcmp(own + rl, "/") == 0 ? "" : own + rl;
}

static sbx_err
add_mount(struct cg_layout *lo, const char *root, const char *mnt,
          const char *fstype, const char *opts)
{
	const char *rel;
	sbx_err rv = SBX_OK;

	if (strcmp(fstype, "cgroup2") == 0 && lo->v2dir == NULL &&
	    lo->v2own != NULL && (rel = rel_path(root, lo->v2own)) != NULL) {
		if ((rv = set_str(&lo->v2mnt, mnt, "")) == SBX_OK) {
			rv = set_str(&lo->v2dir, mnt, rel);
		}
	}
	if (strcmp(fstype, "cgroup") != 0) {
		return rv;
	}
	/* v1 super options list the controllers: "rw,cpu,cpuacct". */
	for (int c = 0; c < CG_NCTL && rv == SBX_OK; c++) {
		if (lo->v1own[c] != NULL &&
		    has_token(opts, ctl_names[c], ",") &&
		    (rel = rel_path(root, lo->v1own[c])) != NULL) {
			rv = set_str(&lo->v1dir[c], mnt, rel);
		}
	}
	return rv;
}

/* Fields: id parent dev root mountpoint opts [tags...] - fstype src super. */
static sbx_err
parse_mounts(struct cg_layout *lo, const char *file, char *why, size_t whylen)
{
	char *line = NULL, *f[CG_MI_FIELDS], *save;
	size_t cap = 0, nf, sep;
	sbx_err rv = SBX_OK;
	FILE *fp;

	if ((fp = fopen(file, "re")) == NULL) {
		say(why, whylen, "open %s: %s", file, strerror(errno));
		return SBX_ESTATE;
	}
	while (rv == SBX_OK && getline(&line, &cap, fp) > 0) {
		nf = 0;
		for (char *t = strtok_r(line, " \n", &save);
		     t != NULL && nf < CG_MI_FIELDS;
		     t = strtok_r(NULL, " \n", &save)) {
			f[nf++] = t;
		}
		for (sep = 6; sep < nf && strcmp(f[sep], "-") != 0; sep++) {
		}
		if (sep + 3 < nf) {
			unescape(f[3]);
			unescape(f[4]);
			rv = add_mount(lo, f[3], f[4], f[sep + 1], f[sep + 3]);
		}
	}
	free(line);
	fclose(fp);
	return rv;
}

/* A v2 controller must be in the root's cgroup.controllers (else it is
 * bound to v1 or absent) and in ours (else our parent did not delegate). */
static const char *
v2_missing(const struct cg_layout *lo, const char *ctl, char *buf, size_t len)
{
	const char *dirs[2] = {lo->v2mnt, lo->v2dir};

	for (int i = 0; i < 2; i++) {
		if (cg_read(dirs[i], "cgroup.controllers", buf, len) != 0 ||
		    !has_token(buf, ctl, " \n")) {
			return dirs[i];
		}
	}
	return NULL;
}

/* Choose each controller's hierarchy and merge shared ones. */
static sbx_err
pick(struct cgroup_env *env, const struct cg_layout *lo, const char *subtree,
     char *why, size_t whylen)
{
	char buf[512], base[PATH_MAX];
	const char *dir, *miss;
	int nv2 = 0;
	size_t i;

	for (int c = 0; c < CG_NCTL; c++) {
		bool v2 = lo->v1dir[c] == NULL;

		dir = v2 ? lo->v2dir : lo->v1dir[c];
		if (v2 && dir == NULL) {
			say(why, whylen, "cgroup controller %s unavailable: "
			    "no v1 hierarchy and no cgroup2 mount",
			    ctl_names[c]);
			return SBX_ESTATE;
		}
		if (v2 && (miss = v2_missing(lo, ctl_names[c], buf,
		                             sizeof(buf))) != NULL) {
			say(why, whylen, "cgroup controller %s unavailable: "
			    "no v1 hierarchy and not in %s/cgroup.controllers",
			    ctl_names[c], miss);
			return SBX_ESTATE;
		}
		nv2 += v2;
		if (cg_path(base, dir, subtree, NULL) != 0) {
			say(why, whylen, "path too long: %s", dir);
			return SBX_ESTATE;
		}
		for (i = 0; i < env->nh; i++) {
			if (strcmp(env->h[i].base, base) == 0) {
				break;
			}
		}
		if (i == env->nh &&
		    (env->h[env->nh++].base = strdup(base)) == NULL) {
			return SBX_ENOMEM;
		}
		env->h[i].v2 = v2;
		env->h[i].ctls |= CG_BIT(c);
	}
	env->mode = nv2 == 0 ? "v1" : nv2 == CG_NCTL ? "v2" : "hybrid";
	return SBX_OK;
}

/* "+memory +cpu +pids", for those of CTLS. */
static void
ctl_list(unsigned ctls, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int c = 0; c < CG_NCTL; c++) {
		if ((ctls & CG_BIT(c)) != 0 && n < len) {
			n += (size_t) snprintf(buf + n, len - n, "%s+%s",
			                       n > 0 ? " " : "", ctl_names[c]);
		}
	}
}

/*
 * v2 enables controllers only for the children of a cgroup without
 * processes, the root excepted. sbxd lives in its own cgroup, so unless that
 * is the root it must first move to a leaf beside the subtree. A namespace
 * root looks like "/" but is not the real root: only that has no
 * cgroup.type file.
 */
static sbx_err
v2_delegate(const struct cg_hier *h, const struct cg_layout *lo,
            const struct cgroup_paths *p, char *why, size_t whylen)
{
	char ctl[32], leaf[PATH_MAX];
	bool root = strcmp(lo->v2dir, lo->v2mnt) == 0 &&
	            !cg_has(lo->v2dir, "cgroup.type");
	int e = 0;

	ctl_list(h->ctls, ctl, sizeof(ctl));
	if (!root && p->move_self) {
		if (snprintf(leaf, sizeof(leaf), "%s/%s-daemon", lo->v2dir,
		             p->subtree) >= (int) sizeof(leaf)) {
			e = ENAMETOOLONG;
			say(why, whylen, "path too long: %s", lo->v2dir);
		} else if (mkdir(leaf, 0755) != 0 && errno != EEXIST) {
			e = errno;
			say(why, whylen, "mkdir %s: %s", leaf, strerror(e));
		} else if ((e = cg_write(leaf, "cgroup.procs", "0", why,
		                         whylen)) == 0) {
			log_notice("SBX-CGROUP-MOVED-SELF", "path=%s", leaf);
		}
	}
	if (e == 0 && (e = cg_write(lo->v2dir, "cgroup.subtree_control", ctl,
	                            why, whylen)) == EBUSY) {
		say(why, whylen, "cannot enable %s in %s: other processes live "
		    "there; run sbxd in its own delegated cgroup (systemd "
		    "Delegate=yes)%s", ctl, lo->v2dir,
		    p->move_self ? "" : " and allow move_self");
	}
	return e == 0 ? SBX_OK : SBX_ESTATE;
}

/* Make each subtree base; on v2 also pass the controllers down to it. */
static sbx_err
prepare(struct cgroup_env *env, const struct cg_layout *lo,
        const struct cgroup_paths *p, char *why, size_t whylen)
{
	char ctl[32];
	sbx_err rv;
	int e = 0;

	for (size_t i = 0; i < env->nh && e == 0; i++) {
		struct cg_hier *h = &env->h[i];

		if (h->v2 &&
		    (rv = v2_delegate(h, lo, p, why, whylen)) != SBX_OK) {
			return rv;
		}
		if (mkdir(h->base, 0755) != 0 && errno != EEXIST) {
			e = errno;
			say(why, whylen, "mkdir %s: %s", h->base, strerror(e));
		} else if (h->v2) {
			ctl_list(h->ctls, ctl, sizeof(ctl));
			e = cg_write(h->base, "cgroup.subtree_control", ctl,
			             why, whylen);
		}
	}
	return e == 0 ? SBX_OK : SBX_ESTATE;
}

static void
layout_fini(struct cg_layout *lo)
{
	for (int c = 0; c < CG_NCTL; c++) {
		free(lo->v1own[c]);
		free(lo->v1dir[c]);
	}
	free(lo->v2own);
	free(lo->v2mnt);
	free(lo->v2dir);
}

sbx_err
cgroup_env_open(struct cgroup_env **out, const struct cgroup_paths *paths,
                char *why, size_t whylen)
{
	struct cgroup_paths p = {"/proc/self/mountinfo", "/proc/self/cgroup",
	                         "sbx", false};
	struct cg_layout lo = {0};
	struct cgroup_env *env;
	sbx_err rv;

	if (paths != NULL) {
		p.mountinfo = paths->mountinfo ? paths->mountinfo : p.mountinfo;
		p.self = paths->self ? paths->self : p.self;
		p.subtree = paths->subtree ? paths->subtree : p.subtree;
		p.move_self = paths->move_self;
	}
	if (!name_ok(p.subtree)) {
		say(why, whylen, "bad cgroup subtree name");
		return SBX_EINVAL;
	}
	if ((env = calloc(1, sizeof(*env))) == NULL) {
		return SBX_ENOMEM;
	}
	if ((rv = parse_self(&lo, p.self, why, whylen)) != SBX_OK ||
	    (rv = parse_mounts(&lo, p.mountinfo, why, whylen)) != SBX_OK ||
	    (rv = pick(env, &lo, p.subtree, why, whylen)) != SBX_OK ||
	    (rv = prepare(env, &lo, &p, why, whylen)) != SBX_OK) {
		cgroup_env_free(env);
	} else {
		*out = env;
	}
	layout_fini(&lo);
	return rv;
}

void
cgroup_env_free(struct cgroup_env *env)
{
	if (env != NULL) {
		for (size_t i = 0; i < env->nh; i++) {
			free(env->h[i].base);
		}
		free(env);
	}
}

const char *
cgroup_env_mode(const struct cgroup_env *env)
{
	return env->mode;
}

/* Apply the limits of H's controllers in DIR. 0 means "leave the default". */
static int
set_limits(const struct cg_hier *h, const char *dir,
           const struct cgroup_limits *lim, char *why, size_t whylen)
{
	uint64_t quota = (uint64_t) lim->cpu_millis * (CG_PERIOD_US / 1000);
	bool mem = (h->ctls & CG_BIT(CG_MEMORY)) && lim->memory_bytes != 0;
	bool cpu = (h->ctls & CG_BIT(CG_CPU)) && lim->cpu_millis != 0;
	bool pids = (h->ctls & CG_BIT(CG_PIDS)) && lim->pids != 0;
	char v[48];
	int e = 0;

	snprintf(v, sizeof(v), "%" PRIu64, lim->memory_bytes);
	if (mem && h->v2) {
		/* No swap beyond the limit; the file is absent without swap. */
		e = cg_write(dir, "memory.max", v, why, whylen);
		if (e == 0 && cg_has(dir, "memory.swap.max")) {
			e = cg_write(dir, "memory.swap.max", "0", why, whylen);
		}
	} else if (mem) {
		/* The kernel wants memsw >= limit at all times, so memsw goes
		 * second; it is absent without swap accounting. */
		e = cg_write(dir, "memory.limit_in_bytes", v, why, whylen);
		if (e == 0 && cg_has(dir, "memory.memsw.limit_in_bytes")) {
			e = cg_write(dir, "memory.memsw.limit_in_bytes", v,
			             why, whylen);
		}
	}
	if (e == 0 && cpu && h->v2) {
		snprintf(v, sizeof(v), "%" PRIu64 " %d", quota, CG_PERIOD_US);
		e = cg_write(dir, "cpu.max", v, why, whylen);
	} else if (e == 0 && cpu) {
		snprintf(v, sizeof(v), "%d", CG_PERIOD_US);
		e = cg_write(dir, "cpu.cfs_period_us", v, why, whylen);
		snprintf(v, sizeof(v), "%" PRIu64, quota);
		if (e == 0) {
			e = cg_write(dir, "cpu.cfs_quota_us", v, why, whylen);
		}
	}
	if (e == 0 && pids) {
		snprintf(v, sizeof(v), "%" PRIu32, lim->pids);
		e = cg_write(dir, "pids.max", v, why, whylen);
	}
	return e;
}

sbx_err
cgroup_create(struct cgroup_env *env, const char *id,
              const struct cgroup_limits *lim, char *why, size_t whylen)
{
	char dir[CG_NCTL][PATH_MAX];
	size_t made, i;
	int e = 0;

	if (!name_ok(id)) {
		say(why, whylen, "bad sandbox id");
		return SBX_EINVAL;
	}
	/* All directories first: an existing one must stop us before any
	 * limit is written, and then only what we made is removed. */
	for (made = 0; made < env->nh; made++) {
		char *d = dir[made];

		if ((e = cg_path(d, env->h[made].base, id, NULL)) == 0 &&
		    mkdir(d, 0755) != 0) {
			e = errno;
		}
		if (e != 0) {
			say(why, whylen, "mkdir %s: %s", d, strerror(e));
			break;
		}
	}
	for (i = 0; i < env->nh && e == 0; i++) {
		e = set_limits(&env->h[i], dir[i], lim, why, whylen);
	}
	if (e == 0) {
		return SBX_OK;
	}
	while (made > 0) {
		if (rmdir(dir[--made]) != 0) {
			log_warn("SBX-CGROUP-LEAK", "path=%s err=%s", dir[made],
			         strerror(errno));
		}
	}
	if (e == EEXIST) {
		return SBX_EEXIST;
	}
	return e == EACCES || e == EPERM || e == EROFS ? SBX_EPERM
	                                               : SBX_EINTERNAL;
}

sbx_err
cgroup_join_fds(struct cgroup_env *env, const char *id, int *fds, size_t *n)
{
	char path[PATH_MAX];
	int tmp[CG_NCTL], e = 0;
	size_t i;

	if (!name_ok(id)) {
		return SBX_EINVAL;
	}
	for (i = 0; i < env->nh; i++) {
		e = cg_path(path, env->h[i].base, id, "cgroup.procs");
		if (e != 0) {
			break;
		}
		if ((tmp[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
			e = errno;
			break;
		}
	}
	if (e != 0) {
		while (i > 0) {
			close(tmp[--i]); /* never written: nothing to report */
		}
		return sbx_err_from_errno(e);
	}
	memcpy(fds, tmp, env->nh * sizeof(int));
	*n = env->nh;
	return SBX_OK;
}

bool
cgroup_exists(struct cgroup_env *env, const char *id)
{
	char dir[PATH_MAX];

	if (!name_ok(id)) {
		return false;
	}
	for (size_t i = 0; i < env->nh; i++) {
		if (cg_path(dir, env->h[i].base, id, NULL) == 0 &&
		    is_dir(dir)) {
			return true;
		}
	}
	return false;
}

/* Adds PID; 1 if it was new, 0 if seen, -1 without memory. */
static int
pidset_add(struct pidset *s, pid_t pid)
{
	pid_t *v;

	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == pid) {
			return 0;
		}
	}
	if (s->n == s->cap) {
		s->cap = s->cap != 0 ? s->cap * 2 : 64;
		if ((v = realloc(s->v, s->cap * sizeof(*v))) == NULL) {
			return -1;
		}
		s->v = v;
	}
	s->v[s->n++] = pid;
	return 1;
}

/* SIGKILL each pid of DIR/cgroup.procs not signalled before; *FRESH counts
 * them. sbxd itself and init are never signalled, whatever the file says. */
static int
kill_pass(const char *dir, struct pidset *seen, size_t *fresh)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	uint64_t v;
	int e, r = 0;
	FILE *f;

	if ((e = cg_path(path, dir, "cgroup.procs", NULL)) != 0) {
		return e;
	}
	if ((f = fopen(path, "re")) == NULL) {
		return errno == ENOENT ? 0 : errno;
	}
	while (e == 0 && getline(&line, &cap, f) > 0) {
		if (!parse_u64(line, &v) || v <= 1 || v > INT_MAX ||
		    (pid_t) v == getpid() ||
		    (r = pidset_add(seen, (pid_t) v)) == 0) {
			continue;
		}
		if (r < 0) {
			e = ENOMEM;
		} else if (kill((pid_t) v, SIGKILL) == 0 || errno == ESRCH) {
			(*fresh)++;
		} else {
			e = errno;
		}
	}
	free(line);
	fclose(f);
	return e;
}

/*
 * Without cgroup.kill a task may fork between our read of cgroup.procs and
 * its kill, so passes repeat until one finds no new pid. That ends it: a
 * task with SIGKILL pending cannot complete a fork, and dying tasks that
 * stay listed for a moment are not new.
 */
static int
kill_procs(const char *dir)
{
	struct pidset seen = {0};
	size_t fresh = 1;
	int e = 0, pass;

	for (pass = 0; pass < CG_KILL_PASSES && fresh > 0 && e == 0; pass++) {
		fresh = 0;
		e = kill_pass(dir, &seen, &fresh);
	}
	if (e == 0 && fresh > 0) {
		log_warn("SBX-CGROUP-KILL-PASSES", "path=%s passes=%d", dir,
		         pass);
	}
	free(seen.v);
	return e;
}

sbx_err
cgroup_kill(struct cgroup_env *env, const char *id)
{
	char dir[PATH_MAX];
	bool found = false;
	int e = 0;

	if (!name_ok(id)) {
		return SBX_EINVAL;
	}
	for (size_t i = 0; i < env->nh && e == 0; i++) {
		if (cg_path(dir, env->h[i].base, id, NULL) != 0 ||
		    !is_dir(dir)) {
			continue;
		}
		found = true;
		/* cgroup.kill (Linux 5.14) kills the whole tree atomically. */
		if (env->h[i].v2 && cg_has(dir, "cgroup.kill")) {
			e = cg_write(dir, "cgroup.kill", "1", NULL, 0);
		} else {
			e = kill_procs(dir);
		}
	}
	if (!found) {
		return SBX_ENOTFOUND;
	}
	return sbx_err_from_errno(e);
}

sbx_err
cgroup_remove(struct cgroup_env *env, const char *id)
{
	char dir[PATH_MAX];
	sbx_err rv = SBX_OK, r;
	int e;

	if (!name_ok(id)) {
		return SBX_EINVAL;
	}
	for (size_t i = 0; i < env->nh; i++) {
		if ((e = cg_path(dir, env->h[i].base, id, NULL)) == 0 &&
		    rmdir(dir) != 0) {
			e = errno;
		}
		if (e == 0 || e == ENOENT) {
			continue;
		}
		/* EBUSY: tasks remain (ENOTEMPTY: child cgroups). Go on with
		 * the others; the caller retries the whole call later. */
		r = e == EBUSY || e == ENOTEMPTY ? SBX_ESTATE
		                                 : sbx_err_from_errno(e);
		rv = rv != SBX_OK ? rv : r;
	}
	return rv;
}

/* v1 cpuacct.usage is in ns; v2 (and nothing on v1 without cpuacct
 * co-mounted with cpu) has usage_usec in cpu.stat. */
static int
read_cpu(const char *dir, uint64_t *usec)
{
	char buf[1024];
	const char *p;
	uint64_t ns;
	int e;

	*usec = 0;
	if (cg_has(dir, "cpuacct.usage")) {
		e = read_u64(dir, "cpuacct.usage", &ns);
		*usec = ns / 1000;
		return e;
	}
	if ((e = cg_read(dir, "cpu.stat", buf, sizeof(buf))) != 0) {
		return e == ENOENT ? 0 : e;
	}
	for (p = buf; (p = strstr(p, "usage_usec ")) != NULL; p++) {
		if (p == buf || p[-1] == '\n') {
			p += strlen("usage_usec ");
			return parse_u64(p, usec) ? 0 : EIO;
		}
	}
	return 0;
}

sbx_err
cgroup_read_stat(struct cgroup_env *env, const char *id,
                 struct cgroup_stat *st)
{
	struct cgroup_stat s = {0};
	char dir[PATH_MAX];
	uint64_t pids = 0;
	int e = 0;

	if (!name_ok(id)) {
		return SBX_EINVAL;
	}
	if (!cgroup_exists(env, id)) {
		return SBX_ENOTFOUND;
	}
	for (size_t i = 0; i < env->nh && e == 0; i++) {
		const struct cg_hier *h = &env->h[i];

		if ((e = cg_path(dir, h->base, id, NULL)) != 0) {
			break;
		}
		if ((h->ctls & CG_BIT(CG_MEMORY)) != 0) {
			e = read_u64(dir, h->v2 ? "memory.current"
			                        : "memory.usage_in_bytes",
			             &s.memory_bytes);
		}
		if (e == 0 && (h->ctls & CG_BIT(CG_CPU)) != 0) {
			e = read_cpu(dir, &s.cpu_usec);
		}
		if (e == 0 && (h->ctls & CG_BIT(CG_PIDS)) != 0) {
			e = read_u64(dir, "pids.current", &pids);
		}
	}
	if (e != 0) {
		return sbx_err_from_errno(e);
	}
	s.pids = pids > UINT32_MAX ? UINT32_MAX : (uint32_t) pids;
	*st = s;
	return SBX_OK;
}
