/*
 * Functions shared by the files of the sandbox module (sandbox.c,
 * sandbox_start.c, sandbox_proc.c) and nobody else. Loop thread only.
 */
#ifndef SBX_SANDBOX_INT_H
#define SBX_SANDBOX_INT_H

#include "init.pb-c.h"
#include "sandbox.h"

/* The one place a sandbox's state changes. */
void sandbox_set_state(struct sandbox *sb, enum sandbox_state to);

/* The jail is gone (or never started): clean up and go DEAD. */
void sandbox_jail_gone(struct sandbox *sb);

/* Fail every start waiter with ERR and MESSAGE. */
void sandbox_fail_start_waiters(struct sandbox *sb, sbx_err err,
                                const char *message);


/* Process events from sbx-init (Up with id 0), and the exits published
 * for every running process when the jail ends. */
void sandbox_proc_on_up(struct sandbox *sb, const Sbx__Init__V1__Up *up);
void sandbox_proc_end_all(struct sandbox *sb);
void sandbox_proc_free_all(struct sandbox *sb);
void sandbox_proc_gc(struct sandbox *sb, int64_t now_mono_ms);
SBX_NODISCARD sbx_err sandbox_proc_sync(struct sandbox *sb,
                                        const Sbx__Init__V1__HelloReply *h);

/* Link callbacks (sandbox_start.c). */
void sandbox_link_open(struct sandbox *sb);

/* The last bytes of the jail's log, for error messages. */
void sandbox_log_tail(const struct sandbox *sb, char *buf, size_t len);

/* Uid slots. */
SBX_NODISCARD sbx_err sandbox_uid_alloc(struct server *srv, uint32_t *slot);
void sandbox_uid_claim(struct server *srv, uint32_t slot);
void sandbox_uid_release(struct server *srv, uint32_t slot);

#endif
