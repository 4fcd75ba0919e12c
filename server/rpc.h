/*
 * rpc: the NNG REP socket that serves calls, with a fixed pool of contexts
 * so long calls (create waits for a jail) never starve short ones.
 *
 * Each context is a work item driven by one aio callback: receive, decode
 * and check on an NNG thread, then post to the loop thread, which invokes
 * the handler through protoc-c's service descriptor. A handler completes its
 * call exactly once, at once or later, by calling the closure it was given
 * (success) or rpc_fail (error), on the loop thread.
 */
#ifndef SBX_RPC_H
#define SBX_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "err.h"

struct rpc;
struct rpc_call;
struct loop;
struct config;

struct rpc_hooks {
	void *arg;
	/* Loop thread, after a call completes. REQ is its request, REPLY
	 * its reply (NULL on error). */
	void (*on_done)(void *arg, const char *method,
	                const ProtobufCMessage *req,
	                const ProtobufCMessage *reply, sbx_err status,
	                const char *message, uint64_t latency_ns);
};

/* Listen on cfg's rpc URLs and serve SERVICE. */
SBX_NODISCARD sbx_err rpc_start(struct rpc **out, const struct config *cfg,
                                struct loop *lp, ProtobufCService *service,
                                const struct rpc_hooks *hooks, char *why,
                                size_t whylen);

/* Keep the listeners accepting (see listen.h). Loop tick. */
void rpc_check_listeners(struct rpc *r, int64_t now_mono_ms);

/* Close the socket: no new calls; replies of calls still running fail.
 * Posted calls still run when the loop drains. */
void rpc_close(struct rpc *r);

/* Stop every context and free. Call after the loop has drained and every
 * handler has completed its call. Accepts NULL. */
void rpc_free(struct rpc *r);

/*
 * Complete CALL with an error. FMT describes it for the caller (never a
 * secret). Loop thread only.
 */
void rpc_fail(struct rpc_call *call, sbx_err err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Monotonic ns at which CALL's caller gives up (0: no deadline). */
uint64_t rpc_call_deadline_ns(const struct rpc_call *call);

/* Calls served so far, and calls running now (for health). */
uint64_t rpc_served(const struct rpc *r);

#endif
