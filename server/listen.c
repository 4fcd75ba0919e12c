/*
 * Listeners. TLS configs are reference counted by NNG, so each listener
 * takes its own hold and ours is released at once.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "util.h"

/* A probe every few seconds. Restarting a listener also closes the pipes
 * it accepted, so a slow host must not look like a dead listener: a probe
 * gets seconds to be taken in, and only several failures in a row count. */
#define LISTEN_PROBE_EVERY_MS 2000
#define LISTEN_PROBE_WAIT_MS 3000
#define LISTEN_PROBE_FAILS 3

static sbx_err
listen_tls(nng_listener l, const struct config *cfg, enum listen_kind kind,
           char *why, size_t whylen)
{
	nng_tls_config *tls = NULL;
	char *cert = NULL, *key = NULL;
	int rv;

	if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
		snprintf(why, whylen, "tls+tcp needs tls_cert_file and "
		                      "tls_key_file");
		return SBX_EINVAL;
	}
	if ((cert = sbx_read_small_file(cfg->tls_cert_file, 1u << 20)) == NULL ||
	    (key = sbx_read_small_file(cfg->tls_key_file, 1u << 20)) == NULL) {
		snprintf(why, whylen, "read tls_cert_file or tls_key_file: %s",
		         strerror(errno));
		rv = NNG_EINVAL;
		goto out;
	}
	if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER)) != 0 ||
	    (rv = nng_tls_config_own_cert(tls, cert, key, NULL)) != 0) {
		snprintf(why, whylen, "tls certificate %s: %s",
		         cfg->tls_cert_file, nng_strerror(rv));
		goto out;
	}
	if (cfg->tls_ca_file[0] != '\0') {
		if ((rv = nng_tls_config_ca_file(tls, cfg->tls_ca_file)) != 0) {
			snprintf(why, whylen, "tls_ca_file %s: %s",
			         cfg->tls_ca_file, nng_strerror(rv));
			goto out;
		}
		rv = nng_tls_config_auth_mode(
		        tls, kind == LISTEN_EVENTS ? NNG_TLS_AUTH_MODE_REQUIRED
		                                   : NNG_TLS_AUTH_MODE_OPTIONAL);
	}
	if (rv == 0) {
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
	}
	if (rv != 0) {
		snprintf(why, whylen, "tls setup: %s", nng_strerror(rv));
	}
out:
	if (tls != NULL) {
		nng_tls_config_free(tls);
	}
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
	}
	free(key);
	free(cert);
	return rv == 0 ? SBX_OK : SBX_EINVAL;
}

/* Create, configure and start a listener for URL. */
static sbx_err
listen_one(struct listeners *ls, const char *url, nng_listener *out,
           char *why, size_t whylen)
{
	const struct config *cfg = ls->cfg;
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, ls->sock, url)) != 0) {
		snprintf(why, whylen, "listen %s: %s", url, nng_strerror(rv));
		return SBX_EINVAL;
	}
	/* Past the cap NNG drops the connection; below twice the cap rpc.c
	 * still answers with a clear RESOURCE_EXHAUSTED. */
	rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ,
	                           ls->kind == LISTEN_RPC
	                                   ? 2 * (size_t) cfg->max_message_bytes
	                                   : 65536);
	if (rv == 0 && strncmp(url, "ipc://", 6) == 0) {
		rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
		                          S_IRUSR | S_IWUSR);
	}
	if (rv == 0 && strncmp(url, "tls+tcp://", 10) == 0 &&
	    listen_tls(l, cfg, ls->kind, why, whylen) != SBX_OK) {
		nng_listener_close(l);
		return SBX_EINVAL;
	}
	if (rv == 0) {
		rv = nng_listener_start(l, 0);
	}
	if (rv != 0) {
		snprintf(why, whylen, "listen %s: %s", url, nng_strerror(rv));
		nng_listener_close(l);
		return SBX_EINVAL;
	}
	*out = l;
	return SBX_OK;
}

/* NNG thread: the socket took in a pipe; count it for its listener. */
static void
listen_on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct listeners *ls = arg;
	int id = nng_listener_id(nng_pipe_listener(p));

	(void) ev;
	for (size_t i = 0; i < LISTEN_MAX; i++) {
		if (id > 0 && nng_listener_id(ls->v[i].l) == id) {
			__atomic_add_fetch(&ls->v[i].added, 1, __ATOMIC_ACQ_REL);
			return;
		}
	}
}

sbx_err
listen_urls(struct listeners *ls, nng_socket s, const struct config *cfg,
            char *const *urls, enum listen_kind kind, char *why,
            size_t whylen)
{
	sbx_err rv;

	memset(ls, 0, sizeof(*ls));
	ls->sock = s;
	ls->cfg = cfg;
	ls->kind = kind;
	if (nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, listen_on_pipe, ls) !=
	    0) {
		snprintf(why, whylen, "pipe notify failed");
		return SBX_EINTERNAL;
	}
	for (size_t i = 0; urls[i] != NULL && i < LISTEN_MAX; i++) {
		struct listener *l = &ls->v[ls->n];

		if ((rv = listen_one(ls, urls[i], &l->l, why, whylen)) !=
		    SBX_OK) {
			return rv;
		}
		l->url = urls[i];
		l->probe_due_ms = sbx_mono_ms() + LISTEN_PROBE_EVERY_MS;
		ls->n++;
		log_notice("SBX-LISTEN", "kind=%s url=%s",
		           kind == LISTEN_RPC ? "rpc" : "events", urls[i]);
	}
	return SBX_OK;
}

/* NNG thread: the probe completed the SP handshake. */
static void
listen_on_probe_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct listener *l = arg;

	(void) p;
	(void) ev;
	__atomic_store_n(&l->probe_ok, 1, __ATOMIC_RELEASE);
}

/* A client of the listener's peer protocol; TLS without verification (it
 * only has to complete the handshake). */
static int
listen_probe_open(struct listeners *ls, struct listener *l)
{
	nng_tls_config *tls = NULL;
	nng_dialer d;
	int rv;

	rv = ls->kind == LISTEN_RPC ? nng_req0_open(&l->probe)
	                            : nng_sub0_open(&l->probe);
	if (rv != 0) {
		return rv;
	}
	__atomic_store_n(&l->probe_ok, 0, __ATOMIC_RELEASE);
	if ((rv = nng_socket_set_int(l->probe, NNG_OPT_RECVBUF, 1)) != 0 ||
	    (rv = nng_pipe_notify(l->probe, NNG_PIPE_EV_ADD_POST,
	                          listen_on_probe_pipe, l)) != 0 ||
	    (rv = nng_dialer_create(&d, l->probe, l->url)) != 0) {
		nng_close(l->probe);
		return rv;
	}
	if (strncmp(l->url, "tls+tcp://", 10) == 0) {
		if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) ==
		            0 &&
		    (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_NONE)) ==
		            0) {
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
		}
		if (tls != NULL) {
			nng_tls_config_free(tls);
		}
	}
	if (rv == 0) {
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0) {
		nng_close(l->probe);
	}
	return rv;
}

/* Close L's listener and listen again on its URL. */
static void
listen_restart(struct listeners *ls, struct listener *l)
{
	char why[256];
	nng_listener fresh;

	nng_listener_close(l->l);
	if (listen_one(ls, l->url, &fresh, why, sizeof(why)) != SBX_OK) {
		/* Try again at the next probe. */
		log_error("SBX-LISTEN-RESTART-FAILED", "url=%s why=\"%s\"",
		          l->url, why);
		return;
	}
	l->l = fresh;
	l->restarts++;
	log_warn("SBX-LISTEN-RESTARTED", "url=%s restarts=%u", l->url,
	         l->restarts);
}

void
listen_check(struct listeners *ls, int64_t now)
{
	for (size_t i = 0; i < ls->n; i++) {
		struct listener *l = &ls->v[i];

		/* An events listener that demands client certificates can't
		 * be probed without one. */
		if (ls->kind == LISTEN_EVENTS &&
		    strncmp(l->url, "tls+tcp://", 10) == 0) {
			continue;
		}
		/* Both ends must have it: the probe finished its handshake
		 * and the socket took in a pipe from this listener. */
		if (l->probing &&
		    __atomic_load_n(&l->probe_ok, __ATOMIC_ACQUIRE) != 0 &&
		    __atomic_load_n(&l->added, __ATOMIC_ACQUIRE) !=
		            l->added_at_probe) {
			nng_close(l->probe);
			l->probing = false;
			l->probe_fails = 0;
			l->probe_due_ms = now + LISTEN_PROBE_EVERY_MS;
		} else if (l->probing && now >= l->probe_deadline_ms) {
			nng_close(l->probe);
			l->probing = false;
			if (++l->probe_fails >= LISTEN_PROBE_FAILS) {
				l->probe_fails = 0;
				listen_restart(ls, l);
			}
			l->probe_due_ms = now;
		} else if (!l->probing && now >= l->probe_due_ms) {
			l->added_at_probe =
			        __atomic_load_n(&l->added, __ATOMIC_ACQUIRE);
			if (listen_probe_open(ls, l) == 0) {
				l->probing = true;
				l->probe_deadline_ms = now + LISTEN_PROBE_WAIT_MS;
			} else {
				l->probe_due_ms = now + LISTEN_PROBE_EVERY_MS;
			}
		}
	}
}

void
listen_fini(struct listeners *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->v[i].probing) {
			nng_close(ls->v[i].probe);
			ls->v[i].probing = false;
		}
	}
}

bool
listen_pipe_is_ipc(nng_pipe p)
{
	nng_sockaddr sa;

	return nng_pipe_get_addr(p, NNG_OPT_LOCADDR, &sa) == 0 &&
	       sa.s_family == NNG_AF_IPC;
}
