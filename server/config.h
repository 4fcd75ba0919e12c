/*
 * config: sbxd's settings. Embedded defaults, then a "key = value" file,
 * then "--key=value" arguments, each overriding the one before. Every key of
 * the file is also a command-line option. Read once at start.
 */
#ifndef SBX_CONFIG_H
#define SBX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CONFIG_MAX_URLS 4

struct config {
	char *listen;       /* comma-separated rpc URLs */
	char *events;       /* comma-separated event URLs */
	char *rpc_urls[CONFIG_MAX_URLS + 1];    /* parsed, NULL-ended */
	char *events_urls[CONFIG_MAX_URLS + 1];
	char *state_dir;
	char *run_dir;
	char *token_file;
	char *token; /* read from token_file; never logged */
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_ca_file;
	char *init_path;
	char *bwrap_path;
	char *hostname;
	uint32_t max_sandboxes;
	uint32_t default_timeout_s;
	uint32_t max_timeout_s;
	uint64_t default_memory_mb;
	uint64_t max_memory_mb;
	uint32_t default_cpu_millis;
	uint32_t max_cpu_millis;
	uint32_t default_pids;
	uint32_t max_pids;
	bool network_allow; /* default policy */
	uint32_t rpc_contexts;
	uint32_t max_message_bytes;
	uint32_t file_chunk_bytes;
	uint32_t event_backlog_bytes;
	uint32_t uid_base;
	uint32_t uid_slots;
	bool cgroups;
	uint32_t log_level;
	bool log_syslog;
	uint32_t create_timeout_ms;
	uint32_t file_workers;
	uint32_t dead_retention_s;
	uint32_t audit_retention_days;
};

/* Fill CFG with the embedded defaults. */
SBX_NODISCARD sbx_err config_defaults(struct config *cfg);

/* Apply one "key" = "value" setting. SBX_EINVAL with WHY if the key is
 * unknown or the value malformed or out of range. */
SBX_NODISCARD sbx_err config_set(struct config *cfg, const char *key,
                                 const char *value, char *why, size_t whylen);

/* Apply the settings of the file at PATH. */
SBX_NODISCARD sbx_err config_load_file(struct config *cfg, const char *path,
                                       char *why, size_t whylen);

/* Derive and check: split URL lists, read the token file, check that the
 * listeners' security needs are met (token for non-ipc rpc, TLS with client
 * certificates for non-ipc events). */
SBX_NODISCARD sbx_err config_finish(struct config *cfg, char *why,
                                    size_t whylen);

void config_fini(struct config *cfg);

/* Print every key with its current value (secrets masked) to F. */
void config_dump(const struct config *cfg, void *f);

#endif
