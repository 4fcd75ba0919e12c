/*
 * hmap: a string-keyed hash map with open addressing. Keys are borrowed: the
 * caller keeps each key alive (usually it lives in the value) until it is
 * deleted. Not thread-safe; owned by whoever owns the values.
 */
#ifndef SBX_HMAP_H
#define SBX_HMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct hmap_ent {
	const char *key; /* NULL: empty slot */
	void *val;
	bool dead;       /* a deleted slot that probes must skip */
};

struct hmap {
	struct hmap_ent *v;
	size_t cap; /* a power of two, or 0 */
	size_t n;   /* live entries */
	size_t used; /* live plus dead slots */
};

void hmap_init(struct hmap *h);
void hmap_fini(struct hmap *h);

/* The value under KEY, or NULL. */
void *hmap_get(const struct hmap *h, const char *key);

/* Insert KEY (borrowed). SBX_EEXIST if present, SBX_ENOMEM. */
SBX_NODISCARD sbx_err hmap_put(struct hmap *h, const char *key, void *val);

/* Remove KEY and return its value, or NULL. */
void *hmap_del(struct hmap *h, const char *key);

/* Iterate: start with *POS = 0; returns false at the end. Deleting the
 * current entry during iteration is allowed; inserting is not. */
bool hmap_next(const struct hmap *h, size_t *pos, void **val);

#endif
