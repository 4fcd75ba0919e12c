/*
 * registry: sbxd's write-through store (state.db) of sandboxes, their
 * labels, metadata and env, and the audit log. Loop thread only; struct
 * registry owns the SQLite connection and its prepared statements.
 *
 * DESIGN
 * - WAL with synchronous=NORMAL: a commit reaches the WAL in the page cache
 *   before it returns, so a kill -9 of sbxd loses nothing; only an OS crash
 *   or power loss can drop the last commits. A commit costs no fsync, which
 *   keeps the write-through cheap enough for the loop thread.
 * - The file holds sandbox env, which can be secrets. It is created 0600
 *   before SQLite sees it (and tightened if it exists); SQLite creates -wal
 *   and -shm with the mode of the database file (findCreateFileMode and
 *   unixOpenSharedMemory in os_unix.c), whatever the umask.
 * - Every statement is prepared once at open; a call binds, steps, resets.
 * - uint64 fields are stored as the int64 with the same bits and cast back.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "registry.h"

#define REG_DETAIL_MAX 512

enum reg_kind { KV_LABEL = 0, KV_METADATA = 1, KV_ENV = 2 };

/* Migration N takes user_version N to N + 1; the last sets the current. */
static const char *const reg_migrations[] = {
	"CREATE TABLE sandboxes ("
	" id TEXT PRIMARY KEY NOT NULL, state INTEGER NOT NULL, template TEXT,"
	" created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
	" ended_ms INTEGER NOT NULL, end_reason TEXT,"
	" uid_slot INTEGER NOT NULL, init_pid INTEGER NOT NULL,"
	" init_start INTEGER NOT NULL, memory_bytes INTEGER NOT NULL,"
	" cpu_millis INTEGER NOT NULL, pids INTEGER NOT NULL,"
	" network INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
	"CREATE TABLE kv ("
	" sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,"
	" kind INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,"
	" PRIMARY KEY (sandbox_id, kind, key)) STRICT, WITHOUT ROWID;"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, method TEXT NOT NULL,"
	" sandbox_id TEXT, status INTEGER NOT NULL, detail TEXT) STRICT;"
	"CREATE INDEX audit_ts ON audit(ts_ms);"
	"PRAGMA user_version = 1;",
};

#define REG_VERSION                                                           \
	((int64_t) (sizeof(reg_migrations) / sizeof(reg_migrations[0])))

/* Columns of sandboxes in the order ST_INSERT binds and ST_LOAD reads. */
enum reg_col {
	C_ID, C_STATE, C_TEMPLATE, C_CREATED, C_DEADLINE, C_ENDED, C_REASON,
	C_UID_SLOT, C_INIT_PID, C_INIT_START, C_MEMORY, C_CPU, C_PIDS,
	C_NETWORK,
};

#define REG_COLS                                                              \
	"id, state, template, created_ms, deadline_ms, ended_ms, end_reason, " \
	"uid_slot, init_pid, init_start, memory_bytes, cpu_millis, pids, "    \
	"network"

enum reg_stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_INSERT, ST_INSERT_KV,
	ST_SET_STATE, ST_SET_DEADLINE, ST_SET_INIT, ST_LOAD, ST_LOAD_KV,
	ST_DELETE, ST_AUDIT, ST_AUDIT_COUNT, ST_PURGE_DEAD, ST_PURGE_AUDIT,
	ST_COUNT,
};

static const char *const reg_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT] = "INSERT INTO sandboxes (" REG_COLS ") VALUES "
	              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
	              "?14)",
	[ST_INSERT_KV] = "INSERT INTO kv (sandbox_id, kind, key, value) "
	                 "VALUES (?1, ?2, ?3, ?4)",
	[ST_SET_STATE] = "UPDATE sandboxes SET state = ?2, end_reason = ?3, "
	                 "ended_ms = ?4 WHERE id = ?1",
	[ST_SET_DEADLINE] = "UPDATE sandboxes SET deadline_ms = ?2 WHERE id = ?1",
	[ST_SET_INIT] = "UPDATE sandboxes SET init_pid = ?2, init_start = ?3 "
	                "WHERE id = ?1",
	/* No index on created_ms: the sort completes before the first row, so
	 * a callback's updates cannot make rows reappear (isolation.html). */
	[ST_LOAD] = "SELECT " REG_COLS " FROM sandboxes ORDER BY created_ms, id",
	[ST_LOAD_KV] = "SELECT kind, key, value FROM kv WHERE sandbox_id = ?1 "
	               "ORDER BY kind, key",
	[ST_DELETE] = "DELETE FROM sandboxes WHERE id = ?1",
	[ST_AUDIT] = "INSERT INTO audit (ts_ms, method, sandbox_id, status, "
	             "detail) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_AUDIT_COUNT] = "SELECT count(*) FROM audit "
	                   "WHERE ?1 IS NULL OR method = ?1",
	[ST_PURGE_DEAD] = "DELETE FROM sandboxes "
	                  "WHERE ended_ms != 0 AND ended_ms < ?1",
	[ST_PURGE_AUDIT] = "DELETE FROM audit WHERE ts_ms < ?1",
};

struct registry {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	bool loading; /* ST_LOAD is mid-walk and must not be reset */
};

static void reg_why(char *why, size_t whylen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
reg_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
}

/*
 * Log the connection's last error once and map it. Call before any
 * ROLLBACK, which would replace the message.
 */
static sbx_err
reg_fail(struct registry *r, const char *op, const char *id)
{
	int ext = sqlite3_extended_errcode(r->db);

	log_error("SBX-REGISTRY-SQL", "op=%s sbx=%s rc=%d err=%s", op,
	          id != NULL ? id : "-", ext, sqlite3_errmsg(r->db));
	if (ext == SQLITE_CONSTRAINT_PRIMARYKEY ||
	    ext == SQLITE_CONSTRAINT_UNIQUE) {
		return SBX_EEXIST;
	}
	/* NOT NULL and friends: a caller passed a NULL where a value is due. */
	return (ext & 0xff) == SQLITE_CONSTRAINT ? SBX_EINVAL : SBX_EINTERNAL;
}

/* Finish a statement. Its step result was handled; reset's repeat of it
 * adds nothing. Clearing drops pointers to the caller's strings. */
static void
reg_reset(sqlite3_stmt *st)
{
	(void) sqlite3_reset(st);
	(void) sqlite3_clear_bindings(st);
}

/* Step a bound statement that returns no rows, then reset it. */
static sbx_err
reg_run(struct registry *r, enum reg_stmt which, const char *op,
        const char *id)
{
	sqlite3_stmt *st = r->st[which];
	sbx_err rv = SBX_OK;

	if (sqlite3_step(st) != SQLITE_DONE) {
		rv = reg_fail(r, op, id);
	}
	reg_reset(st);
	return rv;
}

/* A bind failed (out of memory, or a string over SQLite's limit). */
static sbx_err
reg_bind_fail(struct registry *r, enum reg_stmt which, const char *op,
              const char *id)
{
	sbx_err rv = reg_fail(r, op, id);

	reg_reset(r->st[which]);
	return rv;
}

static void
reg_rollback(struct registry *r)
{
	/* A failed COMMIT may already have ended the transaction. */
	if (!sqlite3_get_autocommit(r->db) &&
	    reg_run(r, ST_ROLLBACK, "rollback", NULL) != SBX_OK) {
		/* Logged; the connection rolls back when it closes anyway. */
	}
}

/* Open (creating it 0600 when CREATE) PATH and make sure it is a regular
 * file of mode 0600. A missing file is fine when not CREATE. */
static sbx_err
reg_secure_file(const char *path, bool create, char *why, size_t whylen)
{
	int flags = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	struct stat st;
	sbx_err rv = SBX_OK;
	int fd, err;

	if ((fd = open(path, flags | (create ? O_CREAT : 0), 0600)) < 0) {
		err = errno;
		if (err == ENOENT && !create) {
			return SBX_OK;
		}
		reg_why(why, whylen, "open %s: %s", path,
		        err == ELOOP ? "is a symlink, refused" : strerror(err));
		return SBX_EINTERNAL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		reg_why(why, whylen, "%s: not a regular file", path);
		rv = SBX_EINTERNAL;
	} else if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
		reg_why(why, whylen, "chmod 0600 %s: %s", path,
		        strerror(errno));
		rv = SBX_EINTERNAL;
	}
	close(fd);
	return rv;
}

/* The database and the WAL and shared-memory files a crash left behind. */
static sbx_err
reg_secure_files(const char *path, char *why, size_t whylen)
{
	static const char *const sfx[] = {"-wal", "-shm"};
	char aux[PATH_MAX];
	sbx_err rv;

	if ((rv = reg_secure_file(path, true, why, whylen)) != SBX_OK) {
		return rv;
	}
	for (size_t i = 0; i < 2 && rv == SBX_OK; i++) {
		if ((size_t) snprintf(aux, sizeof(aux), "%s%s", path, sfx[i]) >=
		    sizeof(aux)) {
			reg_why(why, whylen, "%s: path too long", path);
			return SBX_EINTERNAL;
		}
		rv = reg_secure_file(aux, false, why, whylen);
	}
	return rv;
}

/* Run SQL, which yields one integer row, into *V. */
static int
reg_scalar(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK) {
		return rc;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*v = (int64_t) sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static sbx_err
reg_connect(struct registry *r, const char *path, char *why, size_t whylen)
{
	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                  SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	const char *step = "open";
	int64_t wal = 0;
	int rc;

	/* A failed open still allocates a handle; registry_close frees it. */
	if ((rc = sqlite3_open_v2(path, &r->db, flags, NULL)) == SQLITE_OK) {
		sqlite3_extended_result_codes(r->db, 1);
		step = "pragmas";
		rc = sqlite3_db_config(r->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	}
	/* journal_mode is the first statement to read the file, so this is
	 * where a corrupt or foreign file is found. */
	if (rc == SQLITE_OK &&
	    (rc = sqlite3_busy_timeout(r->db, 5000)) == SQLITE_OK &&
	    (rc = sqlite3_exec(r->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	                       NULL)) == SQLITE_OK &&
	    (rc = reg_scalar(r->db,
	                     "SELECT journal_mode = 'wal' "
	                     "FROM pragma_journal_mode",
	                     &wal)) == SQLITE_OK &&
	    (rc = sqlite3_exec(r->db,
	                       "PRAGMA synchronous = NORMAL;"
	                       "PRAGMA foreign_keys = ON",
	                       NULL, NULL, NULL)) == SQLITE_OK) {
		if (wal) {
			return SBX_OK;
		}
		reg_why(why, whylen, "%s: WAL mode unavailable here", path);
		return SBX_EINTERNAL;
	}
	reg_why(why, whylen, "%s: %s: %s", path, step,
	        r->db != NULL ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
	return SBX_EINTERNAL;
}

/* Bring the schema to REG_VERSION. Writers are excluded throughout, so two
 * processes opening a new file cannot both create the tables. */
static sbx_err
reg_migrate(struct registry *r, const char *path, char *why, size_t whylen)
{
	int64_t version = 0, objects = 0;

	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	            SQLITE_OK ||
	    reg_scalar(r->db, "PRAGMA user_version", &version) != SQLITE_OK ||
	    reg_scalar(r->db, "SELECT count(*) FROM sqlite_schema",
	               &objects) != SQLITE_OK) {
		goto sql_fail;
	}
	if (version > REG_VERSION) {
		reg_why(why, whylen,
		        "%s: schema version %lld is newer than this sbxd's %lld; "
		        "refusing to downgrade",
		        path, (long long) version, (long long) REG_VERSION);
		goto fail;
	}
	if (version == 0 && objects != 0) {
		reg_why(why, whylen, "%s: not an sbx registry (has tables but "
		        "no schema version)", path);
		goto fail;
	}
	for (; version < REG_VERSION; version++) {
		if (sqlite3_exec(r->db, reg_migrations[version], NULL, NULL,
		                 NULL) != SQLITE_OK) {
			goto sql_fail;
		}
	}
	if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		return SBX_OK;
	}
sql_fail:
	reg_why(why, whylen, "%s: schema: %s", path, sqlite3_errmsg(r->db));
fail:
	if (!sqlite3_get_autocommit(r->db)) {
		(void) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return SBX_EINTERNAL;
}

sbx_err
registry_open(struct registry **out, const char *path, char *why,
              size_t whylen)
{
	struct registry *r;
	sbx_err rv;
	int rc = SQLITE_OK;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		reg_why(why, whylen, "out of memory");
		return SBX_ENOMEM;
	}
	if ((rv = reg_secure_files(path, why, whylen)) != SBX_OK ||
	    (rv = reg_connect(r, path, why, whylen)) != SBX_OK ||
	    (rv = reg_migrate(r, path, why, whylen)) != SBX_OK) {
		registry_close(r);
		return rv;
	}
	for (int i = 0; i < ST_COUNT && rc == SQLITE_OK; i++) {
		rc = sqlite3_prepare_v3(r->db, reg_sql[i], -1,
		                        SQLITE_PREPARE_PERSISTENT, &r->st[i],
		                        NULL);
	}
	if (rc != SQLITE_OK) {
		reg_why(why, whylen, "%s: prepare: %s", path,
		        sqlite3_errmsg(r->db));
		registry_close(r);
		return SBX_EINTERNAL;
	}
	*out = r;
	return SBX_OK;
}

void
registry_close(struct registry *r)
{
	if (r == NULL) {
		return;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(r->st[i]);
	}
	/* Closing the last connection checkpoints and removes the WAL. */
	if (sqlite3_close(r->db) != SQLITE_OK) {
		log_error("SBX-REGISTRY-CLOSE", "err=%s", sqlite3_errmsg(r->db));
	}
	free(r);
}

static void
reg_kv_free(struct reg_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void
reg_sandbox_fini(struct reg_sandbox *s)
{
	free(s->id);
	free(s->template_name);
	free(s->end_reason);
	reg_kv_free(s->labels, s->n_labels);
	reg_kv_free(s->metadata, s->n_metadata);
	reg_kv_free(s->env, s->n_env);
	memset(s, 0, sizeof(*s));
}

static bool
reg_bind_sandbox(sqlite3_stmt *st, const struct reg_sandbox *s)
{
	/* uint64 values keep their bits in the int64; registry_load casts
	 * them back, so values above INT64_MAX survive. */
	return sqlite3_bind_text(st, C_ID + 1, s->id, -1, SQLITE_STATIC) ||
	       sqlite3_bind_int(st, C_STATE + 1, s->state) ||
	       sqlite3_bind_text(st, C_TEMPLATE + 1, s->template_name, -1,
	                         SQLITE_STATIC) ||
	       sqlite3_bind_int64(st, C_CREATED + 1, s->created_ms) ||
	       sqlite3_bind_int64(st, C_DEADLINE + 1, s->deadline_ms) ||
	       sqlite3_bind_int64(st, C_ENDED + 1, s->ended_ms) ||
	       sqlite3_bind_text(st, C_REASON + 1, s->end_reason, -1,
	                         SQLITE_STATIC) ||
	       sqlite3_bind_int64(st, C_UID_SLOT + 1, s->uid_slot) ||
	       sqlite3_bind_int(st, C_INIT_PID + 1, s->init_pid) ||
	       sqlite3_bind_int64(st, C_INIT_START + 1,
	                          (sqlite3_int64) s->init_start) ||
	       sqlite3_bind_int64(st, C_MEMORY + 1,
	                          (sqlite3_int64) s->memory_bytes) ||
	       sqlite3_bind_int64(st, C_CPU + 1, s->cpu_millis) ||
	       sqlite3_bind_int64(st, C_PIDS + 1, s->pids) ||
	       sqlite3_bind_int(st, C_NETWORK + 1, s->network);
}

static sbx_err
reg_insert_kvs(struct registry *r, const char *id, enum reg_kind kind,
               const struct reg_kv *kv, size_t n)
{
	sqlite3_stmt *st = r->st[ST_INSERT_KV];
	sbx_err rv = SBX_OK;

	for (size_t i = 0; i < n && rv == SBX_OK; i++) {
		if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) ||
		    sqlite3_bind_int(st, 2, (int) kind) ||
		    sqlite3_bind_text(st, 3, kv[i].key, -1, SQLITE_STATIC) ||
		    sqlite3_bind_text(st, 4, kv[i].value, -1, SQLITE_STATIC)) {
			rv = reg_bind_fail(r, ST_INSERT_KV, "insert_kv", id);
		} else {
			rv = reg_run(r, ST_INSERT_KV, "insert_kv", id);
		}
	}
	/* The sandbox row is new, so a clash is a key given twice. */
	return rv == SBX_EEXIST ? SBX_EINVAL : rv;
}

sbx_err
registry_insert(struct registry *r, const struct reg_sandbox *s)
{
	sbx_err rv;

	if ((rv = reg_run(r, ST_BEGIN, "begin", s->id)) != SBX_OK) {
		return rv;
	}
	if (reg_bind_sandbox(r->st[ST_INSERT], s)) {
		rv = reg_bind_fail(r, ST_INSERT, "insert", s->id);
	}
	if (rv != SBX_OK ||
	    (rv = reg_run(r, ST_INSERT, "insert", s->id)) != SBX_OK ||
	    (rv = reg_insert_kvs(r, s->id, KV_LABEL, s->labels,
	                         s->n_labels)) != SBX_OK ||
	    (rv = reg_insert_kvs(r, s->id, KV_METADATA, s->metadata,
	                         s->n_metadata)) != SBX_OK ||
	    (rv = reg_insert_kvs(r, s->id, KV_ENV, s->env, s->n_env)) !=
	            SBX_OK ||
	    (rv = reg_run(r, ST_COMMIT, "commit", s->id)) != SBX_OK) {
		reg_rollback(r);
	}
	return rv;
}

/* Run a bound single-row UPDATE; SBX_ENOTFOUND when no row has ID. */
static sbx_err
reg_update(struct registry *r, enum reg_stmt which, const char *op,
           const char *id)
{
	sbx_err rv;

	if ((rv = reg_run(r, which, op, id)) == SBX_OK &&
	    sqlite3_changes(r->db) == 0) {
		/* Memory is the truth: a missing row means an earlier
		 * write-through failed. */
		log_warn("SBX-REGISTRY-MISSING", "op=%s sbx=%s", op, id);
		rv = SBX_ENOTFOUND;
	}
	return rv;
}

sbx_err
registry_set_state(struct registry *r, const char *id, int state,
                   const char *end_reason, int64_t ended_ms)
{
	sqlite3_stmt *st = r->st[ST_SET_STATE];

	if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int(st, 2, state) ||
	    sqlite3_bind_text(st, 3, end_reason, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 4, ended_ms)) {
		return reg_bind_fail(r, ST_SET_STATE, "set_state", id);
	}
	return reg_update(r, ST_SET_STATE, "set_state", id);
}

sbx_err
registry_set_deadline(struct registry *r, const char *id, int64_t deadline_ms)
{
	sqlite3_stmt *st = r->st[ST_SET_DEADLINE];

	if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int64(st, 2, deadline_ms)) {
		return reg_bind_fail(r, ST_SET_DEADLINE, "set_deadline", id);
	}
	return reg_update(r, ST_SET_DEADLINE, "set_deadline", id);
}

sbx_err
registry_set_init(struct registry *r, const char *id, int32_t pid,
                  uint64_t start)
{
	sqlite3_stmt *st = r->st[ST_SET_INIT];

	if (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int(st, 2, pid) ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64) start)) {
		return reg_bind_fail(r, ST_SET_INIT, "set_init", id);
	}
	return reg_update(r, ST_SET_INIT, "set_init", id);
}

static sbx_err
reg_nomem(const char *id)
{
	log_error("SBX-REGISTRY-NOMEM", "op=load sbx=%s", id != NULL ? id : "-");
	return SBX_ENOMEM;
}

/* A heap copy of column I, NULL staying NULL; false when out of memory. */
static bool
reg_col_dup(sqlite3_stmt *st, int i, char **out)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	*out = v != NULL ? strdup((const char *) v) : NULL;
	return v == NULL || *out != NULL;
}

static sbx_err
reg_read_row(sqlite3_stmt *st, struct reg_sandbox *s)
{
	s->state = sqlite3_column_int(st, C_STATE);
	s->created_ms = (int64_t) sqlite3_column_int64(st, C_CREATED);
	s->deadline_ms = (int64_t) sqlite3_column_int64(st, C_DEADLINE);
	s->ended_ms = (int64_t) sqlite3_column_int64(st, C_ENDED);
	s->uid_slot = (uint32_t) sqlite3_column_int64(st, C_UID_SLOT);
	s->init_pid = (int32_t) sqlite3_column_int(st, C_INIT_PID);
	s->init_start = (uint64_t) sqlite3_column_int64(st, C_INIT_START);
	s->memory_bytes = (uint64_t) sqlite3_column_int64(st, C_MEMORY);
	s->cpu_millis = (uint32_t) sqlite3_column_int64(st, C_CPU);
	s->pids = (uint32_t) sqlite3_column_int64(st, C_PIDS);
	s->network = sqlite3_column_int(st, C_NETWORK);
	if (!reg_col_dup(st, C_ID, &s->id) ||
	    !reg_col_dup(st, C_TEMPLATE, &s->template_name) ||
	    !reg_col_dup(st, C_REASON, &s->end_reason)) {
		return reg_nomem(s->id);
	}
	return SBX_OK;
}

/* Append the current kv row of ST (kind, key, value) to S. */
static sbx_err
reg_kv_push(sqlite3_stmt *st, struct reg_sandbox *s)
{
	struct reg_kv **arr, *p;
	size_t *n;

	switch (sqlite3_column_int(st, 0)) {
	case KV_LABEL:
		arr = &s->labels;
		n = &s->n_labels;
		break;
	case KV_METADATA:
		arr = &s->metadata;
		n = &s->n_metadata;
		break;
	case KV_ENV:
		arr = &s->env;
		n = &s->n_env;
		break;
	default:
		log_error("SBX-REGISTRY-CORRUPT", "sbx=%s kind=%d", s->id,
		          sqlite3_column_int(st, 0));
		return SBX_EINTERNAL;
	}
	/* The capacity is the power of two at or above *n, so a push grows
	 * the array exactly when *n is 0 or a power of two. */
	if ((*n & (*n - 1)) == 0) {
		if ((p = reallocarray(*arr, *n ? *n * 2 : 1, sizeof(*p))) ==
		    NULL) {
			return reg_nomem(s->id);
		}
		*arr = p;
	}
	p = &(*arr)[*n];
	memset(p, 0, sizeof(*p));
	(*n)++; /* counted now so that fini frees a half-copied pair */
	if (!reg_col_dup(st, 1, &p->key) || !reg_col_dup(st, 2, &p->value)) {
		return reg_nomem(s->id);
	}
	return SBX_OK;
}

static sbx_err
reg_load_kvs(struct registry *r, struct reg_sandbox *s)
{
	sqlite3_stmt *st = r->st[ST_LOAD_KV];
	sbx_err rv = SBX_OK;
	int rc;

	if ((rc = sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC)) ==
	    SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
		       (rv = reg_kv_push(st, s)) == SBX_OK) {
		}
	}
	if (rv == SBX_OK && rc != SQLITE_DONE) {
		rv = reg_fail(r, "load_kv", s->id);
	}
	reg_reset(st);
	return rv;
}

sbx_err
registry_load(struct registry *r,
              sbx_err (*cb)(const struct reg_sandbox *s, void *arg),
              void *arg)
{
	sqlite3_stmt *st = r->st[ST_LOAD];
	struct reg_sandbox s;
	sbx_err rv = SBX_OK;
	int rc;

	if (r->loading) {
		log_error("SBX-REGISTRY-REENTER", "op=load");
		return SBX_ESTATE;
	}
	r->loading = true;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&s, 0, sizeof(s));
		if ((rv = reg_read_row(st, &s)) == SBX_OK &&
		    (rv = reg_load_kvs(r, &s)) == SBX_OK) {
			rv = cb(&s, arg);
		}
		reg_sandbox_fini(&s);
		if (rv != SBX_OK) {
			break;
		}
	}
	if (rv == SBX_OK && rc != SQLITE_DONE) {
		rv = reg_fail(r, "load", NULL);
	}
	reg_reset(st);
	r->loading = false;
	return rv;
}

sbx_err
registry_delete(struct registry *r, const char *id)
{
	/* One statement, so the cascade to kv is atomic without BEGIN. */
	if (sqlite3_bind_text(r->st[ST_DELETE], 1, id, -1, SQLITE_STATIC)) {
		return reg_bind_fail(r, ST_DELETE, "delete", id);
	}
	return reg_run(r, ST_DELETE, "delete", id);
}

/* Bytes of DETAIL to keep: at most REG_DETAIL_MAX, and never half of a
 * UTF-8 sequence (the first byte cut must not be a continuation byte). */
static size_t
reg_detail_len(const char *detail)
{
	size_t n = strnlen(detail, REG_DETAIL_MAX);

	while (n > 0 && ((unsigned char) detail[n] & 0xc0) == 0x80) {
		n--;
	}
	return n;
}

sbx_err
registry_audit(struct registry *r, int64_t ts_ms, const char *method,
               const char *sandbox, sbx_err status, const char *detail)
{
	sqlite3_stmt *st = r->st[ST_AUDIT];
	int len = detail != NULL ? (int) reg_detail_len(detail) : 0;

	if (sqlite3_bind_int64(st, 1, ts_ms) ||
	    sqlite3_bind_text(st, 2, method, -1, SQLITE_STATIC) ||
	    sqlite3_bind_text(st, 3, sandbox, -1, SQLITE_STATIC) ||
	    sqlite3_bind_int(st, 4, (int) status) ||
	    sqlite3_bind_text(st, 5, detail, len, SQLITE_STATIC)) {
		return reg_bind_fail(r, ST_AUDIT, "audit", sandbox);
	}
	return reg_run(r, ST_AUDIT, "audit", sandbox);
}

sbx_err
registry_audit_count(struct registry *r, const char *method, int64_t *n)
{
	sqlite3_stmt *st = r->st[ST_AUDIT_COUNT];
	sbx_err rv = SBX_OK;

	if (sqlite3_bind_text(st, 1, method, -1, SQLITE_STATIC) ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rv = reg_fail(r, "audit_count", NULL);
	} else {
		*n = (int64_t) sqlite3_column_int64(st, 0);
	}
	reg_reset(st);
	return rv;
}

/* Run a purge statement with ?1 = BEFORE; *N is the rows it deleted. */
static sbx_err
reg_purge_one(struct registry *r, enum reg_stmt which, int64_t before,
              int *n)
{
	sbx_err rv;

	if (sqlite3_bind_int64(r->st[which], 1, before)) {
		return reg_bind_fail(r, which, "purge", NULL);
	}
	if ((rv = reg_run(r, which, "purge", NULL)) == SBX_OK) {
		*n = sqlite3_changes(r->db);
	}
	return rv;
}

sbx_err
registry_purge(struct registry *r, int64_t dead_before_ms,
               int64_t audit_before_ms)
{
	int n_dead = 0, n_audit = 0;
	sbx_err rv;

	if ((rv = reg_run(r, ST_BEGIN, "begin", NULL)) != SBX_OK) {
		return rv;
	}
	if ((rv = reg_purge_one(r, ST_PURGE_DEAD, dead_before_ms, &n_dead)) !=
	            SBX_OK ||
	    (rv = reg_purge_one(r, ST_PURGE_AUDIT, audit_before_ms,
	                        &n_audit)) != SBX_OK ||
	    (rv = reg_run(r, ST_COMMIT, "commit", NULL)) != SBX_OK) {
		reg_rollback(r);
		return rv;
	}
	log_info("SBX-REGISTRY-PURGED", "sandboxes=%d audit=%d", n_dead,
	         n_audit);
	return SBX_OK;
}
