/*
 * RPC contexts. Each struct rpc_call cycles RECV -> RUN -> SEND -> RECV.
 * RECV and SEND completions run on NNG threads and touch nothing but their
 * own call; RUN happens on the loop thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "msgbuf.h"
#include "loop.h"
#include "panic.h"
#include "rpc.h"
#include "util.h"
#include "wire.h"

enum call_state { CALL_RECV, CALL_RUN, CALL_SEND };

struct rpc_call {
	struct rpc *rpc;
	nng_aio *aio;
	nng_ctx ctx;
	enum call_state state;
	struct loop_cmd cmd;
	Sbx__V1__Call *env;
	uint64_t id; /* the Call's id, echoed even when it is refused */
	ProtobufCMessage *req;
	unsigned method;
	uint64_t recv_ns;
	uint64_t deadline_ns;
	bool completed;
};

struct rpc {
	nng_socket sock;
	bool *inline_ok; /* per method: may run on the NNG thread */
	struct loop *loop;
	ProtobufCService *service;
	struct rpc_hooks hooks;
	const char *token; /* required on non-ipc pipes when set */
	struct listeners listeners;
	size_t max_msg;
	uint64_t served;
	unsigned n;
	struct rpc_call calls[];
};

static void
call_reset(struct rpc_call *c)
{
	if (c->req != NULL) {
		protobuf_c_message_free_unpacked(c->req, NULL);
		c->req = NULL;
	}
	if (c->env != NULL) {
		sbx__v1__call__free_unpacked(c->env, NULL);
		c->env = NULL;
	}
}

/* Pack the Result and send it. Any thread that owns the call. */
static void
call_send(struct rpc_call *c, sbx_err st, const char *message,
          const ProtobufCMessage *payload)
{
	uint64_t id = c->id;
	size_t hint = 64 + (message != NULL ? strlen(message) : 0) +
	              (payload != NULL && st == SBX_OK
	                       ? protobuf_c_message_get_packed_size(payload)
	                       : 0);
	struct sbx_msgbuf b;

	if (sbx_msgbuf_init(&b, hint) == 0) {
		sbx_wire_result_encode(&b.base, id, st, message, payload);
		if (b.err != 0) {
			/* Too big to send: say so instead. */
			nng_msg_clear(b.msg);
			b.err = 0;
			sbx_wire_result_encode(&b.base, id, SBX_ELIMIT,
			                       "reply too large", NULL);
		}
	}
	c->state = CALL_SEND;
	if (b.msg == NULL || b.err != 0) {
		if (b.msg != NULL) {
			nng_msg_free(b.msg);
		}
		/* No memory for a reply: drop it; the caller times out. */
		call_reset(c);
		c->state = CALL_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	nng_aio_set_msg(c->aio, b.msg);
	nng_ctx_send(c->ctx, c->aio);
}

static const char *
call_method_name(const struct rpc_call *c)
{
	return c->rpc->service->descriptor->methods[c->method].name;
}

/* Loop thread: the handler finished. */
static void
call_complete(struct rpc_call *c, sbx_err st, const char *message,
              const ProtobufCMessage *payload)
{
	struct rpc *r = c->rpc;

	SBX_ASSERT(c->state == CALL_RUN && !c->completed);
	c->completed = true;
	r->served++;
	if (r->hooks.on_done != NULL) {
		r->hooks.on_done(r->hooks.arg, call_method_name(c), c->req,
		                 payload, st, message,
		                 sbx_mono_ns() - c->recv_ns);
	}
	call_send(c, st, message, payload);
}

static void
rpc_closure(const ProtobufCMessage *msg, void *data)
{
	struct rpc_call *c = data;

	if (msg == NULL) {
		call_complete(c, SBX_EINTERNAL, "handler returned no reply",
		              NULL);
		return;
	}
	call_complete(c, SBX_OK, NULL, msg);
}

void
rpc_fail(struct rpc_call *c, sbx_err err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_complete(c, err, msg, NULL);
}

uint64_t
rpc_call_deadline_ns(const struct rpc_call *c)
{
	return c->deadline_ns;
}

uint64_t
rpc_served(const struct rpc *r)
{
	return r->served;
}

/* Loop thread: run the handler. */
static void
call_on_run(struct loop_cmd *cmd)
{
	struct rpc_call *c = (struct rpc_call *) ((char *) cmd -
	                                          offsetof(struct rpc_call, cmd));
	ProtobufCService *svc = c->rpc->service;

	c->completed = false;
	if (c->deadline_ns != 0 && sbx_mono_ns() >= c->deadline_ns) {
		rpc_fail(c, SBX_ETIMEDOUT, "deadline passed before %s ran",
		         call_method_name(c));
		return;
	}
	svc->invoke(svc, c->method, c->req, rpc_closure, c);
}

/*
 * NNG thread: decode and check a received call. Returns SBX_OK to run it,
 * else the status to answer with at once, MESSAGE saying why.
 */
static sbx_err
call_decode(struct rpc_call *c, nng_msg *msg, char *message, size_t mlen)
{
	struct rpc *r = c->rpc;
	const ProtobufCServiceDescriptor *sd = r->service->descriptor;
	const ProtobufCMethodDescriptor *m;
	size_t len = nng_msg_len(msg);
	const char *why = NULL;

	/* Read before any check, so that every refusal below still names
	 * its call: libsbx takes a Result with another id for a reply to
	 * another call, and would report INTERNAL instead of the reason. */
	c->id = sbx_wire_call_peek_id(nng_msg_body(msg), len);
	if (len > r->max_msg) {
		snprintf(message, mlen, "message of %zu bytes exceeds the cap "
		         "of %zu", len, r->max_msg);
		return SBX_ELIMIT;
	}
	if (sbx_wire_call_decode(nng_msg_body(msg), len, &c->env, &why) !=
	    SBX_OK) {
		snprintf(message, mlen, "%s", why);
		return SBX_EINVAL;
	}
	if (r->token != NULL && !listen_pipe_is_ipc(nng_msg_get_pipe(msg)) &&
	    !sbx_secret_equal(c->env->token, r->token)) {
		snprintf(message, mlen, "missing or wrong token");
		return SBX_EAUTH;
	}
	m = protobuf_c_service_descriptor_get_method_by_name(sd,
	                                                     c->env->method);
	if (m == NULL) {
		snprintf(message, mlen, "unknown method '%s'", c->env->method);
		return SBX_ENOTSUP;
	}
	c->method = (unsigned) (m - sd->methods);
	if (sbx_wire_unpack(m->input, c->env->payload.data,
	                    c->env->payload.len, &c->req) != SBX_OK) {
		snprintf(message, mlen, "malformed %s payload",
		         m->input->short_name);
		return SBX_EINVAL;
	}
	c->deadline_ns = c->env->timeout_ms != 0
	                         ? c->recv_ns +
	                                   (uint64_t) c->env->timeout_ms *
	                                           1000000u
	                         : 0;
	return SBX_OK;
}

static void
call_on_aio(void *arg)
{
	struct rpc_call *c = arg;
	char message[256];
	nng_msg *msg;
	sbx_err st;
	int rv = nng_aio_result(c->aio);

	switch (c->state) {
	case CALL_RECV:
		if (rv != 0) {
			if (rv != NNG_ECLOSED) {
				nng_ctx_recv(c->ctx, c->aio);
			}
			return;
		}
		msg = nng_aio_get_msg(c->aio);
		c->recv_ns = sbx_mono_ns();
		st = call_decode(c, msg, message, sizeof(message));
		nng_msg_free(msg);
		if (st != SBX_OK) {
			log_info("SBX-RPC-REJECT", "status=%s why=\"%s\"",
			         sbx_strerror(st), message);
			call_send(c, st, message, NULL);
			return;
		}
		c->state = CALL_RUN;
		c->cmd.fn = call_on_run;
		/* Short read-only calls run right here when the loop is
		 * asleep, as its owner; others queue for the loop thread. */
		if (c->rpc->inline_ok[c->method] &&
		    loop_try_enter(c->rpc->loop)) {
			call_on_run(&c->cmd);
			loop_leave(c->rpc->loop);
			return;
		}
		loop_post(c->rpc->loop, &c->cmd);
		return;
	case CALL_RUN:
		SBX_PANIC("aio completion while the call runs");
		return;
	case CALL_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
		}
		call_reset(c);
		if (rv == NNG_ECLOSED) {
			return;
		}
		c->state = CALL_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
}

/* Calls that only read loop state, never block and finish at once. Anything
 * that forks, waits on a jail, touches files or changes state is not here. */
static const char *const inline_methods[] = {
	"Health", "Get", "List", "ProcessList", "EventsFetch",
};

static bool *
rpc_inline_table(const ProtobufCServiceDescriptor *sd)
{
	bool *v = calloc(sd->n_methods, sizeof(*v));

	for (size_t i = 0; v != NULL && i < sizeof(inline_methods) /
	                                           sizeof(inline_methods[0]);
	     i++) {
		const ProtobufCMethodDescriptor *m =
		        protobuf_c_service_descriptor_get_method_by_name(
		                sd, inline_methods[i]);

		if (m != NULL) {
			v[m - sd->methods] = true;
		}
	}
	return v;
}

sbx_err
rpc_start(struct rpc **out, const struct config *cfg, struct loop *lp,
          ProtobufCService *service, const struct rpc_hooks *hooks, char *why,
          size_t whylen)
{
	unsigned n = cfg->rpc_contexts;
	struct rpc *r;
	int rv;

	if ((r = calloc(1, sizeof(*r) + n * sizeof(r->calls[0]))) == NULL) {
		return SBX_ENOMEM;
	}
	r->loop = lp;
	r->service = service;
	r->hooks = *hooks;
	r->token = cfg->token;
	r->max_msg = cfg->max_message_bytes;
	if ((r->inline_ok = rpc_inline_table(service->descriptor)) == NULL) {
		free(r);
		return SBX_ENOMEM;
	}
	if ((rv = nng_rep0_open(&r->sock)) != 0) {
		free(r->inline_ok);
		snprintf(why, whylen, "rep socket: %s", nng_strerror(rv));
		free(r);
		return SBX_EINTERNAL;
	}
	for (; r->n < n; r->n++) {
		struct rpc_call *c = &r->calls[r->n];

		c->rpc = r;
		if (nng_aio_alloc(&c->aio, call_on_aio, c) != 0) {
			break;
		}
		if (nng_ctx_open(&c->ctx, r->sock) != 0) {
			nng_aio_free(c->aio);
			break;
		}
	}
	if (r->n < n) {
		snprintf(why, whylen, "rpc contexts: out of memory");
		rpc_free(r);
		return SBX_ENOMEM;
	}
	if (listen_urls(&r->listeners, r->sock, cfg, cfg->rpc_urls,
	                LISTEN_RPC, why, whylen) != SBX_OK) {
		rpc_free(r);
		return SBX_EINVAL;
	}
	for (unsigned i = 0; i < r->n; i++) {
		r->calls[i].state = CALL_RECV;
		nng_ctx_recv(r->calls[i].ctx, r->calls[i].aio);
	}
	*out = r;
	return SBX_OK;
}

void
rpc_check_listeners(struct rpc *r, int64_t now_mono_ms)
{
	listen_check(&r->listeners, now_mono_ms);
}

void
rpc_close(struct rpc *r)
{
	if (r != NULL) {
		listen_fini(&r->listeners);
		/* Aborts every pending receive and send. */
		nng_close(r->sock);
	}
}

void
rpc_free(struct rpc *r)
{
	if (r == NULL) {
		return;
	}
	listen_fini(&r->listeners);
	nng_close(r->sock);
	/* Wait for each callback to finish before freeing anything. */
	for (unsigned i = 0; i < r->n; i++) {
		nng_aio_stop(r->calls[i].aio);
	}
	for (unsigned i = 0; i < r->n; i++) {
		call_reset(&r->calls[i]);
		nng_aio_free(r->calls[i].aio);
	}
	free(r->inline_ok);
	free(r);
}
