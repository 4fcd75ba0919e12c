/*
 * Open addressing with linear probing and tombstones; grows at 3/4 load.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char) *s;
		h *= 1099511628211ull;
	}
	return h;
}

void
hmap_init(struct hmap *h)
{
	memset(h, 0, sizeof(*h));
}

void
hmap_fini(struct hmap *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static struct hmap_ent *
hmap_slot(const struct hmap *h, const char *key)
{
	size_t mask = h->cap - 1;
	size_t i = (size_t) hash_str(key) & mask;

	for (;; i = (i + 1) & mask) {
		struct hmap_ent *e = &h->v[i];

		if (e->key == NULL && !e->dead) {
			return NULL;
		}
		if (e->key != NULL && strcmp(e->key, key) == 0) {
			return e;
		}
	}
}

void *
hmap_get(const struct hmap *h, const char *key)
{
	struct hmap_ent *e;

	if (h->cap == 0 || (e = hmap_slot(h, key)) == NULL) {
		return NULL;
	}
	return e->val;
}

static void
hmap_insert(struct hmap_ent *v, size_t cap, const char *key, void *val)
{
	size_t mask = cap - 1;
	size_t i = (size_t) hash_str(key) & mask;

	while (v[i].key != NULL) {
		i = (i + 1) & mask;
	}
	v[i].key = key;
	v[i].val = val;
	v[i].dead = false;
}

static sbx_err
hmap_grow(struct hmap *h)
{
	size_t cap = h->cap != 0 ? h->cap : 16;
	struct hmap_ent *v;

	/* Rehash at the same size when tombstones, not entries, fill it. */
	if ((h->n + 1) * 2 > cap) {
		cap *= 2;
	}
	if ((v = calloc(cap, sizeof(*v))) == NULL) {
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < h->cap; i++) {
		if (h->v[i].key != NULL) {
			hmap_insert(v, cap, h->v[i].key, h->v[i].val);
		}
	}
	free(h->v);
	h->v = v;
	h->cap = cap;
	h->used = h->n;
	return SBX_OK;
}

sbx_err
hmap_put(struct hmap *h, const char *key, void *val)
{
	sbx_err rv;

	if (hmap_get(h, key) != NULL) {
		return SBX_EEXIST;
	}
	if ((h->used + 1) * 4 > h->cap * 3 && (rv = hmap_grow(h)) != SBX_OK) {
		return rv;
	}
	hmap_insert(h->v, h->cap, key, val);
	h->n++;
	h->used++;
	return SBX_OK;
}

void *
hmap_del(struct hmap *h, const char *key)
{
	struct hmap_ent *e;
	void *val;

	if (h->cap == 0 || (e = hmap_slot(h, key)) == NULL) {
		return NULL;
	}
	val = e->val;
	e->key = NULL;
	e->val = NULL;
	e->dead = true;
	h->n--;
	return val;
}

bool
hmap_next(const struct hmap *h, size_t *pos, void **val)
{
	for (; *pos < h->cap; (*pos)++) {
		if (h->v[*pos].key != NULL) {
			*val = h->v[(*pos)++].val;
			return true;
		}
	}
	return false;
}
