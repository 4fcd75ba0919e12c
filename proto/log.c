/*
 * The logger. Its threshold and rate limiter are the one piece of process
 * state shared by every thread, guarded by a mutex; formatting happens
 * outside the lock.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

#define LOG_BURST 20 /* lines per id per second before summarising */
#define LOG_SLOTS 64

struct log_slot {
	const char *id;
	time_t second;
	unsigned count;
	unsigned dropped;
};

static struct {
	pthread_mutex_t mtx;
	enum sbx_log_level level;
	bool syslog;
	char program[32];
	struct log_slot slots[LOG_SLOTS];
} logger = {
	.mtx = PTHREAD_MUTEX_INITIALIZER,
	.level = SBX_LOG_NOTICE,
	.program = "sbx",
};

static const char *const level_names[] = {"ERROR", "WARN", "NOTICE", "INFO",
                                          "DEBUG"};

void
sbx_log_open(const char *program, enum sbx_log_level level, bool use_syslog)
{
	pthread_mutex_lock(&logger.mtx);
	logger.level = level;
	logger.syslog = use_syslog;
	snprintf(logger.program, sizeof(logger.program), "%s", program);
	pthread_mutex_unlock(&logger.mtx);
	if (use_syslog) {
		openlog(logger.program, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

int
sbx_log_level_parse(const char *name)
{
	static const char *const lower[] = {"error", "warn", "notice", "info",
	                                    "debug"};

	for (int i = 0; i < 5; i++) {
		if (strcmp(name, lower[i]) == 0) {
			return i;
		}
	}
	return -1;
}

bool
sbx_log_enabled(enum sbx_log_level level)
{
	/* A racy read is fine: the level changes only at start-up. */
	return level <= __atomic_load_n(&logger.level, __ATOMIC_RELAXED);
}

/*
 * Count this line against its id's burst. Returns how many earlier lines of
 * the id were dropped and must be summarised now, or -1 to drop this one.
 */
static long
log_admit(const char *id, time_t now)
{
	struct log_slot *s;
	long summary = 0;

	s = &logger.slots[((uintptr_t) id >> 4) % LOG_SLOTS];
	if (s->id != id || s->second != now) {
		if (s->id == id) {
			summary = s->dropped;
		}
		s->id = id;
		s->second = now;
		s->count = 0;
		s->dropped = 0;
	}
	if (++s->count > LOG_BURST) {
		s->dropped++;
		return -1;
	}
	return summary;
}

static void
log_emit(enum sbx_log_level level, const char *line)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
	                           LOG_DEBUG};
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (logger.syslog) {
		syslog(prio[level], "%s %s", level_names[level], line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s %s %s\n", stamp, ts.tv_nsec / 1000000,
	        logger.program, level_names[level], line);
}

void
sbx_log_write(enum sbx_log_level level, const char *id, const char *fmt, ...)
{
	char body[1024];
	char line[1200];
	va_list ap;
	long summary;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0) {
		body[0] = '\0';
	}
	pthread_mutex_lock(&logger.mtx);
	summary = log_admit(id, time(NULL));
	if (summary > 0) {
		snprintf(line, sizeof(line), "SBX-LOG-SUPPRESSED id=%s count=%ld",
		         id, summary);
		log_emit(SBX_LOG_WARN, line);
	}
	if (summary >= 0) {
		snprintf(line, sizeof(line), "%s %s", id, body);
		log_emit(level, line);
	}
	pthread_mutex_unlock(&logger.mtx);
}
