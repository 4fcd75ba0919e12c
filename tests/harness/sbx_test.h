/*
 * The test harness: cmocka plus sbx's checks, scratch directories and free
 * ports. Every unit and integration test includes this and nothing else of
 * cmocka directly.
 */
#ifndef SBX_TEST_H
#define SBX_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sbx_err.h"

/* Exit code ctest reads as "skipped" (SKIP_RETURN_CODE). */
#define SBX_TEST_SKIP 77

#define CHECK_OK(expr)                                                        \
	do {                                                                  \
		sbx_err check_rv_ = (expr);                                   \
		if (check_rv_ != SBX_OK) {                                    \
			fail_msg("%s: %s (%d)", #expr,                        \
			         sbx_strerror(check_rv_), (int) check_rv_);   \
		}                                                             \
	} while (0)

#define CHECK_ERR(expr, want)                                                 \
	do {                                                                  \
		sbx_err check_rv_ = (expr);                                   \
		if (check_rv_ != (want)) {                                    \
			fail_msg("%s: got %s, want %s", #expr,                \
			         sbx_strerror(check_rv_), sbx_strerror(want)); \
		}                                                             \
	} while (0)

#define CHECK(cond) assert_true(cond)
#define CHECK_STR(a, b) assert_string_equal(a, b)
#define CHECK_INT(a, b) assert_int_equal(a, b)

/*
 * Make a fresh scratch directory under $TMPDIR (or /tmp) and return its path
 * (static storage per call site is not used: the caller frees it with
 * sbx_test_scratch_free, which removes the tree).
 */
char *sbx_test_scratch(const char *name);
void sbx_test_scratch_free(char *dir);

/* Remove a directory tree (no symlinks followed). */
void sbx_test_rmtree(const char *dir);

/* A monotonic clock in milliseconds, for bounded waits. */
long long sbx_test_mono_ms(void);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int sbx_test_free_port(void);

/* Read a whole file into a NUL-terminated heap buffer; NULL on error. */
char *sbx_test_read_file(const char *path, size_t *len);

#endif
