/*
 * libsbx internals shared by client.c, stream.c and files.c.
 */
#ifndef SBX_CLIENT_INTERNAL_H
#define SBX_CLIENT_INTERNAL_H

#include <pthread.h>

#include <nng/nng.h>

#include "sbx.h"

/* One REQ context with its aio, reused across calls. */
struct slot {
	struct slot *next_all;
	struct slot *next_free;
	nng_ctx ctx;
	nng_aio *aio;
};

struct sbx_client {
	ProtobufCService service; /* first: the stubs' handle */
	nng_socket req;
	char *events_url;
	char *token;
	char *tls_ca_file;
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_server_name;
	uint32_t timeout_ms;
	uint32_t event_queue;
	char holder[24]; /* this client's follower id for StreamHold */
	uint64_t next_id; /* atomic */

	pthread_mutex_t slots_mtx;
	struct slot *free_slots;
	struct slot *all_slots;

	/* Events: the SUB socket and its I/O thread, started with the first
	 * stream. mtx guards the stream list and is held while callbacks run
	 * (so closing a stream waits for its callback to return). */
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	bool io_started;
	bool io_stop;
	pthread_t io;
	nng_socket sub;
	struct sbx_stream *streams;
};

/* Record a failure for sbx_last_error() and return ERR. */
sbx_err sbx_fail(sbx_err err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Configure TLS on a dialer from the client's options. */
sbx_err sbx_dialer_tls(sbx_client *c, nng_dialer d, const char *url,
                       bool client_cert);

/* Start the I/O thread and dial the event socket (once). Takes c->mtx. */
sbx_err sbx_events_start(sbx_client *c);

/* Stop the I/O thread and close every stream (client close). */
void sbx_events_stop(sbx_client *c);

#endif
