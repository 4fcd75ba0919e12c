/*
 * Configuration: one table of keys drives defaults, the file parser, the
 * command line and the dump, so a new setting is one row.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

enum ckind { C_STR, C_U32, C_U64, C_BOOL, C_NET, C_LEVEL };

struct ckey {
	const char *name;
	enum ckind kind;
	size_t off;
	const char *def;
	uint64_t min;
	uint64_t max;
};

#define O(f) offsetof(struct config, f)

static const struct ckey keys[] = {
	{"listen", C_STR, O(listen), "ipc:///run/sbx/rpc", 0, 0},
	{"events", C_STR, O(events), "ipc:///run/sbx/events", 0, 0},
	{"state_dir", C_STR, O(state_dir), "/var/lib/sbx", 0, 0},
	{"run_dir", C_STR, O(run_dir), "/run/sbx", 0, 0},
	{"token_file", C_STR, O(token_file), "", 0, 0},
	{"tls_cert_file", C_STR, O(tls_cert_file), "", 0, 0},
	{"tls_key_file", C_STR, O(tls_key_file), "", 0, 0},
	{"tls_ca_file", C_STR, O(tls_ca_file), "", 0, 0},
	{"init_path", C_STR, O(init_path), SBX_INIT_DEFAULT, 0, 0},
	{"bwrap_path", C_STR, O(bwrap_path), "/usr/bin/bwrap", 0, 0},
	{"hostname", C_STR, O(hostname), "sbx", 0, 0},
	{"max_sandboxes", C_U32, O(max_sandboxes), "1000", 1, 100000},
	{"default_timeout_s", C_U32, O(default_timeout_s), "300", 1, 31536000},
	{"max_timeout_s", C_U32, O(max_timeout_s), "86400", 1, 31536000},
	{"default_memory_mb", C_U64, O(default_memory_mb), "1024", 16,
	 1u << 24},
	{"max_memory_mb", C_U64, O(max_memory_mb), "16384", 16, 1u << 24},
	{"default_cpu_millis", C_U32, O(default_cpu_millis), "1000", 10,
	 1000000},
	{"max_cpu_millis", C_U32, O(max_cpu_millis), "0", 0, 1000000},
	{"default_pids", C_U32, O(default_pids), "512", 8, 1u << 22},
	{"max_pids", C_U32, O(max_pids), "32768", 8, 1u << 22},
	{"network", C_NET, O(network_allow), "deny", 0, 0},
	{"rpc_contexts", C_U32, O(rpc_contexts), "256", 1, 4096},
	{"max_message_bytes", C_U32, O(max_message_bytes), "16777216", 65536,
	 1u << 30},
	{"file_chunk_bytes", C_U32, O(file_chunk_bytes), "4194304", 4096,
	 1u << 28},
	{"event_backlog_bytes", C_U32, O(event_backlog_bytes), "1048576",
	 4096, 1u << 30},
	{"uid_base", C_U32, O(uid_base), "200000", 65536, 4000000000u},
	{"uid_slots", C_U32, O(uid_slots), "10000", 1, 1000000},
	{"cgroups", C_BOOL, O(cgroups), "true", 0, 0},
	{"log_level", C_LEVEL, O(log_level), "notice", 0, 0},
	{"log_syslog", C_BOOL, O(log_syslog), "false", 0, 0},
	{"create_timeout_ms", C_U32, O(create_timeout_ms), "10000", 100,
	 600000},
	{"file_workers", C_U32, O(file_workers), "4", 1, 256},
	{"dead_retention_s", C_U32, O(dead_retention_s), "3600", 0, 31536000},
	{"audit_retention_days", C_U32, O(audit_retention_days), "30", 1,
	 36500},
};

static const struct ckey *
config_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, name) == 0) {
			return &keys[i];
		}
	}
	return NULL;
}

static sbx_err
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char) s[0])) {
		return SBX_EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		return SBX_EINVAL;
	}
	*out = v;
	return SBX_OK;
}

static sbx_err
parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "on") == 0 ||
	    strcmp(s, "yes") == 0 || strcmp(s, "1") == 0) {
		*out = true;
	} else if (strcmp(s, "false") == 0 || strcmp(s, "off") == 0 ||
	           strcmp(s, "no") == 0 || strcmp(s, "0") == 0) {
		*out = false;
	} else {
		return SBX_EINVAL;
	}
	return SBX_OK;
}

sbx_err
config_set(struct config *cfg, const char *key, const char *value, char *why,
           size_t whylen)
{
	const struct ckey *k = config_key(key);
	char *base = (char *) cfg;
	uint64_t v;
	char **sp;
	int lvl;
	sbx_err rv = SBX_OK;

	if (k == NULL) {
		snprintf(why, whylen, "unknown setting '%s'", key);
		return SBX_EINVAL;
	}
	switch (k->kind) {
	case C_STR:
		sp = (char **) (base + k->off);
		free(*sp);
		if ((*sp = strdup(value)) == NULL) {
			return SBX_ENOMEM;
		}
		break;
	case C_U32:
		if ((rv = parse_u64(value, k->min, k->max, &v)) == SBX_OK) {
			*(uint32_t *) (base + k->off) = (uint32_t) v;
		}
		break;
	case C_U64:
		if ((rv = parse_u64(value, k->min, k->max, &v)) == SBX_OK) {
			*(uint64_t *) (base + k->off) = v;
		}
		break;
	case C_BOOL:
		rv = parse_bool(value, (bool *) (base + k->off));
		break;
	case C_NET:
		if (strcmp(value, "allow") == 0 || strcmp(value, "deny") == 0) {
			*(bool *) (base + k->off) = value[0] == 'a';
		} else {
			rv = SBX_EINVAL;
		}
		break;
	case C_LEVEL:
		if ((lvl = sbx_log_level_parse(value)) < 0) {
			rv = SBX_EINVAL;
		} else {
			*(uint32_t *) (base + k->off) = (uint32_t) lvl;
		}
		break;
	}
	if (rv != SBX_OK) {
		snprintf(why, whylen, "bad value '%s' for '%s'", value, key);
	}
	return rv;
}

sbx_err
config_defaults(struct config *cfg)
{
	char why[128];
	sbx_err rv;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if ((rv = config_set(cfg, keys[i].name, keys[i].def, why,
		                     sizeof(why))) != SBX_OK) {
			return rv;
		}
	}
	return SBX_OK;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s)) {
		s++;
	}
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1])) {
		*--e = '\0';
	}
	return s;
}

sbx_err
config_load_file(struct config *cfg, const char *path, char *why,
                 size_t whylen)
{
	char line[4096], inner[256];
	unsigned lineno = 0;
	sbx_err rv = SBX_OK;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(why, whylen, "open %s: %s", path, strerror(errno));
		return SBX_ENOTFOUND;
	}
	while (rv == SBX_OK && fgets(line, sizeof(line), f) != NULL) {
		char *eq, *key, *s = trim(line);

		lineno++;
		if (*s == '\0' || *s == '#') {
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(why, whylen, "%s:%u: expected key = value",
			         path, lineno);
			rv = SBX_EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(s);
		if ((rv = config_set(cfg, key, trim(eq + 1), inner,
		                     sizeof(inner))) != SBX_OK) {
			snprintf(why, whylen, "%s:%u: %s", path, lineno, inner);
		}
	}
	fclose(f);
	return rv;
}

static sbx_err
split_urls(char *list, char **out, char *why, size_t whylen)
{
	size_t n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		tok = trim(tok);
		if (*tok == '\0') {
			continue;
		}
		if (n == CONFIG_MAX_URLS) {
			snprintf(why, whylen, "at most %d URLs per list",
			         CONFIG_MAX_URLS);
			return SBX_EINVAL;
		}
		out[n++] = tok;
	}
	out[n] = NULL;
	return SBX_OK;
}

/* Read the token: one line, at least 16 characters; the file must not be
 * readable by others. */
static sbx_err
read_token(struct config *cfg, char *why, size_t whylen)
{
	char buf[600];
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(cfg->token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) <
	            0 ||
	    fstat(fd, &st) != 0) {
		snprintf(why, whylen, "token_file %s: %s", cfg->token_file,
		         strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return SBX_EINVAL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if ((st.st_mode & 077) != 0) {
		snprintf(why, whylen, "token_file %s is readable by others",
		         cfg->token_file);
		return SBX_EPERM;
	}
	if (n < 0) {
		n = 0;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16 || strlen(buf) > 512) {
		snprintf(why, whylen, "token in %s must be 16..512 characters",
		         cfg->token_file);
		return SBX_EINVAL;
	}
	cfg->token = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return cfg->token != NULL ? SBX_OK : SBX_ENOMEM;
}

static bool
url_is_ipc(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0;
}

sbx_err
config_finish(struct config *cfg, char *why, size_t whylen)
{
	bool remote_rpc = false, remote_events = false;
	sbx_err rv;

	if ((rv = split_urls(cfg->listen, cfg->rpc_urls, why, whylen)) !=
	            SBX_OK ||
	    (rv = split_urls(cfg->events, cfg->events_urls, why, whylen)) !=
	            SBX_OK) {
		return rv;
	}
	if (cfg->rpc_urls[0] == NULL || cfg->events_urls[0] == NULL) {
		snprintf(why, whylen, "listen and events need a URL each");
		return SBX_EINVAL;
	}
	for (size_t i = 0; cfg->rpc_urls[i] != NULL; i++) {
		remote_rpc |= !url_is_ipc(cfg->rpc_urls[i]);
	}
	for (size_t i = 0; cfg->events_urls[i] != NULL; i++) {
		const char *u = cfg->events_urls[i];

		if (!url_is_ipc(u) && strncmp(u, "tls+tcp://", 10) != 0) {
			snprintf(why, whylen,
			         "events URL %s: only ipc:// or tls+tcp:// "
			         "(events carry sandbox output and have no "
			         "per-message auth)",
			         u);
			return SBX_EINVAL;
		}
		remote_events |= !url_is_ipc(u);
	}
	if (cfg->token_file[0] != '\0' &&
	    (rv = read_token(cfg, why, whylen)) != SBX_OK) {
		return rv;
	}
	if (remote_rpc && cfg->token == NULL) {
		snprintf(why, whylen,
		         "a non-ipc listener needs token_file (refusing to "
		         "serve calls unauthenticated over the network)");
		return SBX_EINVAL;
	}
	if (remote_events && cfg->tls_ca_file[0] == '\0') {
		snprintf(why, whylen,
		         "a tls+tcp events listener needs tls_ca_file: "
		         "subscribers must present client certificates");
		return SBX_EINVAL;
	}
	if (cfg->max_cpu_millis == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->max_cpu_millis = (uint32_t) (n > 0 ? n : 1) * 1000;
	}
	if (cfg->default_timeout_s > cfg->max_timeout_s ||
	    cfg->default_memory_mb > cfg->max_memory_mb ||
	    cfg->default_pids > cfg->max_pids) {
		snprintf(why, whylen, "a default exceeds its maximum");
		return SBX_EINVAL;
	}
	if (cfg->default_cpu_millis > cfg->max_cpu_millis) {
		cfg->default_cpu_millis = cfg->max_cpu_millis;
	}
	return SBX_OK;
}

void
config_fini(struct config *cfg)
{
	char *base = (char *) cfg;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].kind == C_STR) {
			free(*(char **) (base + keys[i].off));
		}
	}
	if (cfg->token != NULL) {
		explicit_bzero(cfg->token, strlen(cfg->token));
		free(cfg->token);
	}
	memset(cfg, 0, sizeof(*cfg));
}

void
config_dump(const struct config *cfg, void *fp)
{
	static const char *const levels[] = {"error", "warn", "notice", "info",
	                                     "debug"};
	const char *base = (const char *) cfg;
	FILE *f = fp;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct ckey *k = &keys[i];
		const void *p = base + k->off;

		fprintf(f, "%s = ", k->name);
		switch (k->kind) {
		case C_STR:
			fprintf(f, "%s\n", *(char *const *) p);
			break;
		case C_U32:
			fprintf(f, "%u\n", *(const uint32_t *) p);
			break;
		case C_U64:
			fprintf(f, "%llu\n",
			        (unsigned long long) *(const uint64_t *) p);
			break;
		case C_BOOL:
			fprintf(f, "%s\n", *(const bool *) p ? "true" : "false");
			break;
		case C_NET:
			fprintf(f, "%s\n", *(const bool *) p ? "allow" : "deny");
			break;
		case C_LEVEL:
			fprintf(f, "%s\n", levels[*(const uint32_t *) p]);
			break;
		}
	}
}
