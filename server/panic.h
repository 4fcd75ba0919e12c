/*
 * SBX_ASSERT: for broken invariants only, never for input, limits or OOM.
 * It stays on in release builds: a crash beats a corrupt sandbox table.
 */
#ifndef SBX_PANIC_H
#define SBX_PANIC_H

#include <stdio.h>
#include <stdlib.h>

#define SBX_ASSERT(cond)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "SBX-PANIC %s:%d assertion %s\n",     \
			        __FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

/* An unreachable branch: a broken invariant with a reason. */
#define SBX_PANIC(why)                                                        \
	do {                                                                  \
		fprintf(stderr, "SBX-PANIC %s:%d %s\n", __FILE__, __LINE__,   \
		        why);                                                 \
		abort();                                                      \
	} while (0)

#endif
