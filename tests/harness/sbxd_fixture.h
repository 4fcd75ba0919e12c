/*
 * The integration fixture: a real sbxd on scratch directories and ipc://
 * sockets, started per test file, waited for with Health calls (never a
 * sleep), stopped with SIGTERM and required to exit 0 (so ASan's leak check
 * runs). Its log is printed when a test fails. Each fixture gets its own
 * range of sandbox uids, so test files may run in parallel.
 */
#ifndef SBXD_FIXTURE_H
#define SBXD_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "sbx.h"

struct sbxd_fixture {
	char *dir; /* scratch root: state/, run/, sbxd.log */
	char rpc_url[512];
	char events_url[512];
	char log_path[512];
	char state_dir[512];
	const char *extra[16]; /* more --key=value arguments */
	size_t n_extra;
	pid_t pid;
	sbx_client *c;
};

/* Start sbxd with EXTRA settings (NULL-terminated "--key=value" list, may
 * be NULL). Returns 0, or 77 when this host cannot run jails (not root, no
 * bwrap), or -1 on failure. */
int sbxd_start(struct sbxd_fixture *f, const char *name,
               const char *const *extra);

/* Stop with SIGTERM; returns sbxd's exit status (0 expected), printing the
 * log otherwise. Frees the scratch directory unless KEEP is set. */
int sbxd_stop(struct sbxd_fixture *f, bool keep);

/* kill -9 sbxd (jails live on), then start it again on the same dirs. */
int sbxd_crash_restart(struct sbxd_fixture *f);

/* The two halves: kill -9 (and reap) sbxd; start it again and wait. */
void sbxd_crash(struct sbxd_fixture *f);
int sbxd_restart(struct sbxd_fixture *f);

/* Run a second sbxd on the same dirs (it must refuse); returns its exit
 * status, its output in OUT. */
int sbxd_second(struct sbxd_fixture *f, char *out, size_t len);

/* SIGKILL every process whose uid is in [LO, HI): what a daemon's jails
 * left behind. */
void sbxd_kill_uids(unsigned lo, unsigned hi);

/* Print the daemon's log to stderr. */
void sbxd_dump_log(const struct sbxd_fixture *f);

/* Create a sandbox with optional REQ fields; returns its id (heap). */
char *sbxd_create(struct sbxd_fixture *f, Sbx__V1__CreateRequest *req);

/* Get sandbox ID: the info (caller frees) or NULL with *ERR set. */
Sbx__V1__SandboxInfo *sbxd_get(struct sbxd_fixture *f, const char *id,
                               sbx_err *err);

/* Kill sandbox ID; the call's status. */
sbx_err sbxd_kill(struct sbxd_fixture *f, const char *id);

/* Run ARGV (or COMMAND when ARGV is NULL) in SANDBOX and collect stdout and
 * stderr (heap, NUL-terminated). Returns the call status; *CODE gets the
 * exit code (or 128 + signal). */
sbx_err sbxd_run(struct sbxd_fixture *f, const char *sandbox,
                 const char *const *argv, const char *command, char **out,
                 char **err, int *code);

/* The same as USER (NULL: "user"), waiting at most TIMEOUT_MS. Usable on
 * any thread (no cmocka checks). */
sbx_err sbxd_run_as(struct sbxd_fixture *f, const char *sandbox,
                    const char *user, const char *const *argv,
                    const char *command, uint32_t timeout_ms, char **out,
                    char **err, int *code);

#endif
