/*
 * sbxd's requests (Down messages): one table row and one handler each.
 * Loop thread only.
 */
#ifndef SBX_INIT_DOWN_H
#define SBX_INIT_DOWN_H

#include <stdint.h>

#include "init.h"
#include "init.pb-c.h"

/*
 * Handle D, received on connection PIPE, and answer it with an Up of the
 * same id (acks with id 0 get no answer). Takes ownership of D.
 */
void down_dispatch(struct init *in, Sbx__Init__V1__Down *d, uint32_t pipe);

#endif
