/*
 * registry: the SQLite store (state.db, WAL) of sandboxes, their labels,
 * metadata and env, deadlines, jail identity, and the audit log of calls that
 * change state. sbxd rebuilds its memory state from it at start.
 *
 * Memory is the source of truth while sbxd runs; the registry is written
 * through on every change so that a kill -9 loses nothing. Loop thread only.
 *
 * Unless a function says otherwise, SQLite failures are logged once
 * (SBX-REGISTRY-SQL) and returned as SBX_EINTERNAL; out of memory is
 * SBX_ENOMEM.
 */
#ifndef SBX_REGISTRY_H
#define SBX_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct registry;

struct reg_kv {
	char *key;
	char *value;
};

/* One sandbox row. Strings are heap (reg_sandbox_fini frees them) when
 * produced by registry_load; callers of registry_put keep ownership. */
struct reg_sandbox {
	char *id;
	int state;          /* enum sandbox_state values, opaque here */
	char *template_name;
	int64_t created_ms; /* unix ms */
	int64_t deadline_ms;
	int64_t ended_ms;   /* 0 while alive */
	char *end_reason;   /* NULL while alive */
	uint32_t uid_slot;  /* index of its host uid pair */
	int32_t init_pid;   /* host pid of sbx-init, 0 before it started */
	uint64_t init_start; /* its start time (clock ticks since boot) */
	uint64_t memory_bytes;
	uint32_t cpu_millis;
	uint32_t pids;
	int network; /* NetworkPolicy value */
	struct reg_kv *labels;
	size_t n_labels;
	struct reg_kv *metadata;
	size_t n_metadata;
	struct reg_kv *env;
	size_t n_env;
};

/* Free S's strings and arrays and zero S. Accepts a zeroed struct. */
void reg_sandbox_fini(struct reg_sandbox *s);

/*
 * Open or create the database at PATH (mode 0600, as are its -wal and -shm
 * files), in WAL mode with synchronous=NORMAL, and migrate its schema.
 * SBX_EINTERNAL with WHY on failure (symlink or not a regular file,
 * unreadable, corrupt, another program's database, newer schema); nothing is
 * logged, the caller reports WHY. *OUT is written only on success.
 */
SBX_NODISCARD sbx_err registry_open(struct registry **out, const char *path,
                                    char *why, size_t whylen);

/* Close. Accepts NULL. */
void registry_close(struct registry *r);

/* Insert sandbox S with its labels, metadata and env (one transaction).
 * SBX_EEXIST if the id exists; SBX_EINVAL if a key repeats within one of
 * the three sets or a required string is NULL (nothing is inserted). */
SBX_NODISCARD sbx_err registry_insert(struct registry *r,
                                      const struct reg_sandbox *s);

/* Update a sandbox's state; END_REASON and ENDED_MS when it died. These
 * three updates return SBX_ENOTFOUND when no sandbox has ID. */
SBX_NODISCARD sbx_err registry_set_state(struct registry *r, const char *id,
                                         int state, const char *end_reason,
                                         int64_t ended_ms);

SBX_NODISCARD sbx_err registry_set_deadline(struct registry *r, const char *id,
                                            int64_t deadline_ms);

SBX_NODISCARD sbx_err registry_set_init(struct registry *r, const char *id,
                                        int32_t pid, uint64_t start);

/*
 * Call CB for every sandbox, oldest first (created_ms, then id). CB borrows
 * the row for the call. A non-OK return from CB stops the walk and is
 * returned. CB may call the other registry functions (rows it updates are not
 * seen again; whether rows it inserts are seen is unspecified) but not
 * registry_load, which then returns SBX_ESTATE.
 */
SBX_NODISCARD sbx_err registry_load(struct registry *r,
                                    sbx_err (*cb)(const struct reg_sandbox *s,
                                                  void *arg),
                                    void *arg);

/* Delete sandbox ID and its rows. SBX_OK if there is no such sandbox. */
SBX_NODISCARD sbx_err registry_delete(struct registry *r, const char *id);

/*
 * Append an audit row: when, which call, on which sandbox (may be NULL),
 * its outcome, and a short DETAIL (may be NULL; never secrets). DETAIL is
 * cut at 512 bytes.
 */
SBX_NODISCARD sbx_err registry_audit(struct registry *r, int64_t ts_ms,
                                     const char *method, const char *sandbox,
                                     sbx_err status, const char *detail);

/* Count audit rows of METHOD, or all rows when METHOD is NULL (tests and
 * metrics). */
SBX_NODISCARD sbx_err registry_audit_count(struct registry *r,
                                           const char *method, int64_t *n);

/*
 * Delete dead sandboxes that ended before DEAD_BEFORE_MS and audit rows
 * older than AUDIT_BEFORE_MS.
 */
SBX_NODISCARD sbx_err registry_purge(struct registry *r,
                                     int64_t dead_before_ms,
                                     int64_t audit_before_ms);

#endif
