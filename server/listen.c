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
#include <nng/supplemental/tls/tls.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "util.h"

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

sbx_err
listen_urls(nng_socket s, const struct config *cfg, char *const *urls,
            enum listen_kind kind, char *why, size_t whylen)
{
	for (size_t i = 0; urls[i] != NULL; i++) {
		const char *url = urls[i];
		nng_listener l;
		int rv;

		if ((rv = nng_listener_create(&l, s, url)) != 0) {
			snprintf(why, whylen, "listen %s: %s", url,
			         nng_strerror(rv));
			return SBX_EINVAL;
		}
		/* Past the cap NNG drops the connection; below twice the cap
		 * rpc.c still answers with a clear RESOURCE_EXHAUSTED. */
		rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ,
		                           kind == LISTEN_RPC
		                                   ? 2 * (size_t) cfg->max_message_bytes
		                                   : 65536);
		if (rv == 0 && strncmp(url, "ipc://", 6) == 0) {
			rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
			                          S_IRUSR | S_IWUSR);
		}
		if (rv == 0 && strncmp(url, "tls+tcp://", 10) == 0 &&
		    listen_tls(l, cfg, kind, why, whylen) != SBX_OK) {
			nng_listener_close(l);
			return SBX_EINVAL;
		}
		if (rv == 0) {
			rv = nng_listener_start(l, 0);
		}
		if (rv != 0) {
			snprintf(why, whylen, "listen %s: %s", url,
			         nng_strerror(rv));
			nng_listener_close(l);
			return SBX_EINVAL;
		}
		log_notice("SBX-LISTEN", "kind=%s url=%s",
		           kind == LISTEN_RPC ? "rpc" : "events", url);
	}
	return SBX_OK;
}

bool
listen_pipe_is_ipc(nng_pipe p)
{
	nng_sockaddr sa;

	return nng_pipe_get_addr(p, NNG_OPT_LOCADDR, &sa) == 0 &&
	       sa.s_family == NNG_AF_IPC;
}
