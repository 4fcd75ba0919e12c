/*
 * Small helpers every program of sbx needs: clocks and randomness. Any thread.
 */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Unix time in milliseconds. */
int64_t sbx_clock_ms(void);

/* A monotonic clock in milliseconds and nanoseconds. */
int64_t sbx_mono_ms(void);
uint64_t sbx_mono_ns(void);

/* Fill BUF with LEN bytes from the kernel's CSPRNG. */
SBX_NODISCARD sbx_err sbx_random(void *buf, size_t len);

/* Read a whole file of at most MAX bytes into a NUL-terminated heap buffer;
 * NULL (errno set) if it cannot be read or is larger. */
char *sbx_read_small_file(const char *path, size_t max);

/* Compare two NUL-terminated secrets in time independent of where they
 * differ. Returns 1 when equal. */
int sbx_secret_equal(const char *a, const char *b);

#endif
