/*
 * One small logger for sbxd, sbx-init and the gateway (Debian's nng 1.5.2
 * has none). Each line is a stable id plus key=value context:
 *   2026-11-23T11:24:20.123Z NOTICE SBX-SANDBOX-CREATED sbx=4f1c ms=31
 * Alerts grep for ids, not wording. The level is checked before any
 * formatting; repeats of one id beyond a burst per second are counted and
 * summarised instead of printed. Never pass secrets. Any thread.
 */
#ifndef SBX_LOG_H
#define SBX_LOG_H

#include <stdbool.h>

enum sbx_log_level {
	SBX_LOG_ERROR = 0, /* someone must act */
	SBX_LOG_WARN,      /* degraded */
	SBX_LOG_NOTICE,    /* lifecycle */
	SBX_LOG_INFO,
	SBX_LOG_DEBUG, /* development; user output only here */
};

/* Set the threshold and the sink (stderr, or syslog when use_syslog). */
void sbx_log_open(const char *program, enum sbx_log_level level,
                  bool use_syslog);

/* Parse "error", "warn", "notice", "info" or "debug"; -1 if unknown. */
int sbx_log_level_parse(const char *name);

bool sbx_log_enabled(enum sbx_log_level level);

/* ID must be a string literal: the rate limiter keys on its address. */
void sbx_log_write(enum sbx_log_level level, const char *id, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

#define SBX_LOG(level, id, ...)                                               \
	do {                                                                  \
		if (sbx_log_enabled(level)) {                                 \
			sbx_log_write(level, id, __VA_ARGS__);                \
		}                                                             \
	} while (0)

#define log_error(id, ...) SBX_LOG(SBX_LOG_ERROR, id, __VA_ARGS__)
#define log_warn(id, ...) SBX_LOG(SBX_LOG_WARN, id, __VA_ARGS__)
#define log_notice(id, ...) SBX_LOG(SBX_LOG_NOTICE, id, __VA_ARGS__)
#define log_info(id, ...) SBX_LOG(SBX_LOG_INFO, id, __VA_ARGS__)
#define log_debug(id, ...) SBX_LOG(SBX_LOG_DEBUG, id, __VA_ARGS__)

#endif
