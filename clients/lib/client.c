/*
 * libsbx connection and calls. Each call borrows a slot (REQ context plus
 * aio) from a free list, so concurrent calls from many threads each have
 * their own request in flight on one socket.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "internal.h"
#include "msgbuf.h"
#include "util.h"
#include "wire.h"

static __thread char last_error[512];

SBX_API const char *
sbx_last_error(void)
{
	return last_error;
}

sbx_err
sbx_fail(sbx_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

static sbx_err
nng_to_err(int rv)
{
	switch (rv) {
	case NNG_ETIMEDOUT:
		return SBX_ETIMEDOUT;
	case NNG_ENOMEM:
		return SBX_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return SBX_EINVAL;
	case NNG_ECANCELED:
		return SBX_ECANCELED;
	default:
		return SBX_EUNAVAIL;
	}
}

static char *
opt_str(const char *v, const char *env, const char *def)
{
	const char *s = v != NULL ? v : (env != NULL ? getenv(env) : NULL);

	if (s == NULL || s[0] == '\0') {
		s = def;
	}
	return s != NULL ? strdup(s) : NULL;
}

/* Our certificate, for event listeners that require one. */
static int
client_own_cert(sbx_client *c, nng_tls_config *tls)
{
	char *cert, *key;
	int rv = 0;

	if (c->tls_cert_file == NULL || c->tls_key_file == NULL) {
		return 0;
	}
	cert = sbx_read_small_file(c->tls_cert_file, 1u << 20);
	key = sbx_read_small_file(c->tls_key_file, 1u << 20);
	if (cert == NULL || key == NULL) {
		rv = NNG_EINVAL;
	} else {
		rv = nng_tls_config_own_cert(tls, cert, key, NULL);
	}
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
	}
	free(cert);
	free(key);
	return rv;
}

sbx_err
sbx_dialer_tls(sbx_client *c, nng_dialer d, const char *url, bool client_cert)
{
	nng_tls_config *tls = NULL;
	char host[256] = "";
	const char *h;
	int rv;

	if (strncmp(url, "tls+tcp://", 10) != 0) {
		return SBX_OK;
	}
	if (c->tls_server_name != NULL) {
		snprintf(host, sizeof(host), "%s", c->tls_server_name);
	} else if ((h = url + 10) != NULL) {
		snprintf(host, sizeof(host), "%.*s", (int) strcspn(h, ":/"), h);
	}
	if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0 ||
	    (rv = nng_tls_config_server_name(tls, host)) != 0 ||
	    (c->tls_ca_file != NULL &&
	     ((rv = nng_tls_config_ca_file(tls, c->tls_ca_file)) != 0 ||
	      (rv = nng_tls_config_auth_mode(tls,
	                                     NNG_TLS_AUTH_MODE_REQUIRED)) !=
	              0)) ||
	    (client_cert && (rv = client_own_cert(c, tls)) != 0) ||
	    (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0) {
		if (tls != NULL) {
			nng_tls_config_free(tls);
		}
		return sbx_fail(SBX_EINVAL, "tls setup for %s: %s", url,
		                nng_strerror(rv));
	}
	nng_tls_config_free(tls);
	return SBX_OK;
}

static void
client_invoke(ProtobufCService *svc, unsigned method,
              const ProtobufCMessage *input, ProtobufCClosure closure,
              void *closure_data)
{
	sbx_client *c = (sbx_client *) svc;
	ProtobufCMessage *reply = NULL;
	const char *name = svc->descriptor->methods[method].name;

	if (sbx_call(c, name, input, &reply) != SBX_OK) {
		closure(NULL, closure_data);
		return;
	}
	closure(reply, closure_data);
	protobuf_c_message_free_unpacked(reply, NULL);
}

SBX_API ProtobufCService *
sbx_client_service(sbx_client *c)
{
	return &c->service;
}

SBX_API sbx_err
sbx_client_open(sbx_client **out, const struct sbx_client_opts *o)
{
	static const struct sbx_client_opts none;
	sbx_client *c;
	nng_dialer d;
	char *url;
	sbx_err err;
	int rv;

	if (o == NULL) {
		o = &none;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	c->service.descriptor = &sbx__v1__sandboxes__descriptor;
	c->service.invoke = client_invoke;
	c->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : 60000;
	c->event_queue = o->event_queue != 0 ? o->event_queue : 8192;
	sbx_stream_id(c->holder);
	c->holder[0] = 'h';
	c->next_id = 1;
	pthread_mutex_init(&c->slots_mtx, NULL);
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	url = opt_str(o->url, "SBX_URL", SBX_DEFAULT_URL);
	c->events_url = opt_str(o->events_url, "SBX_EVENTS_URL",
	                        SBX_DEFAULT_EVENTS_URL);
	c->token = opt_str(o->token, "SBX_TOKEN", NULL);
	c->tls_ca_file = opt_str(o->tls_ca_file, NULL, NULL);
	c->tls_cert_file = opt_str(o->tls_cert_file, NULL, NULL);
	c->tls_key_file = opt_str(o->tls_key_file, NULL, NULL);
	c->tls_server_name = opt_str(o->tls_server_name, NULL, NULL);
	if (url == NULL || c->events_url == NULL) {
		err = sbx_fail(SBX_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rv = nng_req0_open(&c->req)) != 0) {
		err = sbx_fail(nng_to_err(rv), "req socket: %s",
		               nng_strerror(rv));
		goto fail;
	}
	/* Calls are not idempotent (create): never resend on a timer. */
	if ((rv = nng_socket_set_ms(c->req, NNG_OPT_REQ_RESENDTIME,
	                            NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(c->req, NNG_OPT_RECVMAXSZ,
	                              256u << 20)) != 0 ||
	    (rv = nng_socket_set_ms(c->req, NNG_OPT_RECONNMINT, 10)) != 0 ||
	    (rv = nng_socket_set_ms(c->req, NNG_OPT_RECONNMAXT, 1000)) != 0 ||
	    (rv = nng_dialer_create(&d, c->req, url)) != 0) {
		err = sbx_fail(nng_to_err(rv), "%s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if ((err = sbx_dialer_tls(c, d, url, false)) != SBX_OK) {
		goto fail;
	}
	if ((rv = nng_dialer_start(d, 0)) != 0) {
		err = sbx_fail(nng_to_err(rv), "sbxd at %s: %s", url,
		               nng_strerror(rv));
		goto fail;
	}
	free(url);
	*out = c;
	return SBX_OK;
fail:
	free(url);
	sbx_client_close(c);
	return err;
}

SBX_API void
sbx_client_close(sbx_client *c)
{
	struct slot *s, *next;

	if (c == NULL) {
		return;
	}
	sbx_events_stop(c);
	nng_close(c->req);
	for (s = c->all_slots; s != NULL; s = next) {
		next = s->next_all;
		nng_aio_free(s->aio);
		free(s);
	}
	pthread_mutex_destroy(&c->slots_mtx);
	pthread_mutex_destroy(&c->mtx);
	pthread_cond_destroy(&c->cv);
	free(c->events_url);
	free(c->token);
	free(c->tls_ca_file);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->tls_server_name);
	free(c);
}

/* Slots live until the client closes: all_slots links every one, the free
 * list those not in use. */
static struct slot *
slot_get(sbx_client *c)
{
	struct slot *s;

	pthread_mutex_lock(&c->slots_mtx);
	if ((s = c->free_slots) != NULL) {
		c->free_slots = s->next_free;
		pthread_mutex_unlock(&c->slots_mtx);
		return s;
	}
	pthread_mutex_unlock(&c->slots_mtx);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return NULL;
	}
	if (nng_aio_alloc(&s->aio, NULL, NULL) != 0) {
		free(s);
		return NULL;
	}
	if (nng_ctx_open(&s->ctx, c->req) != 0) {
		nng_aio_free(s->aio);
		free(s);
		return NULL;
	}
	pthread_mutex_lock(&c->slots_mtx);
	s->next_all = c->all_slots;
	c->all_slots = s;
	pthread_mutex_unlock(&c->slots_mtx);
	return s;
}

static void
slot_put(sbx_client *c, struct slot *s)
{
	pthread_mutex_lock(&c->slots_mtx);
	s->next_free = c->free_slots;
	c->free_slots = s;
	pthread_mutex_unlock(&c->slots_mtx);
}

/* Send one request on slot S and wait for its reply message. */
static sbx_err
slot_exchange(struct slot *s, nng_msg *req, uint32_t timeout_ms,
              nng_msg **rep, const char *method)
{
	uint64_t start_ns = sbx_mono_ns();
	bool sent = false;
	int rv;

	if (s->aio == NULL && nng_aio_alloc(&s->aio, NULL, NULL) != 0) {
		nng_msg_free(req);
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	nng_aio_set_timeout(s->aio, (nng_duration) timeout_ms);
	nng_aio_set_msg(s->aio, req);
	nng_ctx_send(s->ctx, s->aio);
	nng_aio_wait(s->aio);
	if ((rv = nng_aio_result(s->aio)) != 0) {
		nng_msg_free(req);
	} else {
		sent = true;
		nng_ctx_recv(s->ctx, s->aio);
		nng_aio_wait(s->aio);
		if ((rv = nng_aio_result(s->aio)) == 0) {
			*rep = nng_aio_get_msg(s->aio);
		}
	}
	/*
	 * NNG 1.5's expiry thread takes a timed-out aio off its list, drops
	 * its lock and only then calls the cancel function. If the operation
	 * completed in between, that stale cancel lands on the slot's NEXT
	 * operation (same aio, same context) and fails it at once with
	 * "Timed out". The race needs an operation still pending at its
	 * deadline, so only a call that lasted about its timeout is at risk
	 * (2 ms cover NNG's ms clock): then drop the aio, since
	 * nng_aio_free() waits for an expiry in flight, and the next call on
	 * this slot allocates a fresh one.
	 */
	if (sbx_mono_ns() - start_ns + 2000000u >=
	    (uint64_t) timeout_ms * 1000000u) {
		nng_aio_free(s->aio);
		s->aio = NULL;
	}
	if (rv != 0) {
		return sbx_fail(nng_to_err(rv), "%s: %s: %s", method,
		                sent ? "no reply" : "sbxd unreachable",
		                nng_strerror(rv));
	}
	return SBX_OK;
}

/* Unpack a Result of call ID into *REPLY (type OUT). */
static sbx_err
result_unpack(nng_msg *msg, uint64_t id, const char *method,
              const ProtobufCMessageDescriptor *out, ProtobufCMessage **reply)
{
	Sbx__V1__Result *r = NULL;
	sbx_err err;

	if (sbx_wire_result_decode(nng_msg_body(msg), nng_msg_len(msg), &r) !=
	    SBX_OK) {
		return sbx_fail(SBX_EINTERNAL, "%s: malformed reply", method);
	}
	if (r->id != id) {
		err = sbx_fail(SBX_EINTERNAL, "%s: reply to another call",
		               method);
	} else if (r->status != SBX__V1__STATUS__OK) {
		err = sbx_fail((sbx_err) r->status, "%s", r->message);
	} else if (sbx_wire_unpack(out, r->payload.data, r->payload.len,
	                           reply) != SBX_OK) {
		err = sbx_fail(SBX_EINTERNAL, "%s: malformed %s", method,
		               out->short_name);
	} else {
		err = SBX_OK;
	}
	sbx__v1__result__free_unpacked(r, NULL);
	return err;
}

SBX_API sbx_err
sbx_call_timeout(sbx_client *c, const char *method,
                 const ProtobufCMessage *req, ProtobufCMessage **reply,
                 uint32_t timeout_ms)
{
	const ProtobufCMethodDescriptor *m;
	struct sbx_msgbuf b;
	nng_msg *rep = NULL;
	struct slot *s;
	uint64_t id;
	sbx_err err;

	m = protobuf_c_service_descriptor_get_method_by_name(
	        &sbx__v1__sandboxes__descriptor, method);
	if (m == NULL) {
		return sbx_fail(SBX_EINVAL, "unknown method %s", method);
	}
	if (req == NULL || req->descriptor != m->input) {
		return sbx_fail(SBX_EINVAL, "%s takes a %s", method,
		                m->input->short_name);
	}
	if (timeout_ms == 0) {
		timeout_ms = c->timeout_ms;
	}
	id = __atomic_fetch_add(&c->next_id, 1, __ATOMIC_RELAXED);
	if (sbx_msgbuf_init(&b, sbx_wire_call_size(method, id, timeout_ms,
	                                           c->token, req)) != 0) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	sbx_wire_call_encode(&b.base, method, id, timeout_ms, c->token, req);
	if (b.err != 0 || (s = slot_get(c)) == NULL) {
		nng_msg_free(b.msg);
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	err = slot_exchange(s, b.msg, timeout_ms, &rep, method);
	slot_put(c, s);
	if (err != SBX_OK) {
		return err;
	}
	err = result_unpack(rep, id, method, m->output, reply);
	nng_msg_free(rep);
	return err;
}

SBX_API sbx_err
sbx_call(sbx_client *c, const char *method, const ProtobufCMessage *req,
         ProtobufCMessage **reply)
{
	return sbx_call_timeout(c, method, req, reply, 0);
}
