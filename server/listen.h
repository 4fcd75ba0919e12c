/*
 * listen: NNG listeners for a list of URLs with the transport options
 * sbxd's policy needs (ipc sockets mode 0600, a receive size cap, TLS from
 * the configured certificate files, client certificates required on event
 * listeners), and a watchdog that keeps them accepting.
 *
 * Debian's NNG 1.5.2 has a bug (nng#1518, fixed in 1.6): a peer that closes
 * its connection during the SP handshake makes the listener stop accepting
 * for good: the transport still accepts and negotiates connections, but the
 * socket never takes them in. Three bytes from any local process, or any
 * remote one on tcp, would take sbxd off the air. So every listener is
 * probed: a client of the peer protocol dials it every few seconds, and if
 * the socket takes in no pipe from that listener for three probes in a row,
 * the listener is closed and listened again.
 *
 * Loop thread only (start-up, then the tick).
 */
#ifndef SBX_LISTEN_H
#define SBX_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "err.h"

struct config;

enum listen_kind { LISTEN_RPC, LISTEN_EVENTS };

#define LISTEN_MAX 4

struct listener {
	nng_listener l;
	const char *url;
	nng_socket probe;
	bool probing;
	int probe_ok;         /* atomic: the probe's side of the handshake */
	int added;            /* atomic: pipes the socket took in from it */
	int added_at_probe;
	int64_t probe_due_ms; /* monotonic: when to start the next probe */
	int64_t probe_deadline_ms;
	uint32_t restarts;
	unsigned probe_fails; /* failed probes in a row */
};

struct listeners {
	nng_socket sock;
	const struct config *cfg;
	enum listen_kind kind;
	struct listener v[LISTEN_MAX];
	size_t n;
};

/* Listen on URLS with socket S. */
SBX_NODISCARD sbx_err listen_urls(struct listeners *ls, nng_socket s,
                                  const struct config *cfg, char *const *urls,
                                  enum listen_kind kind, char *why,
                                  size_t whylen);

/* The watchdog step: call from the tick. */
void listen_check(struct listeners *ls, int64_t now_mono_ms);

/* Close the probes (the listeners close with their socket). */
void listen_fini(struct listeners *ls);

/* True if pipe P is an ipc connection (local, guarded by file modes). */
bool listen_pipe_is_ipc(nng_pipe p);

#endif
