/*
 * From event logs to Up messages: batches of unsent events, in seq order
 * per process, round robin across processes. Loop thread only.
 */
#ifndef SBX_INIT_EVENTS_H
#define SBX_INIT_EVENTS_H

#include "err.h"

#define EVENTS_MSG_BYTES (256 * 1024) /* event data per Up, roughly */
#define EVENTS_MSG_MAX 1024           /* events per Up */

struct events;
struct link;
struct procs;

/* The batching state. NULL when out of memory. Free with events_free. */
struct events *events_new(void);
void events_free(struct events *e);

/*
 * While the link is ready and has nothing queued, pack the unsent events
 * of T into Up messages with id 0 and send them. Events count as sent once
 * packed; if the message is lost, the next hello replays them.
 */
void events_pump(struct events *e, struct procs *t, struct link *l);

/* Hello: move every process's send cursor back to its oldest event. */
void events_replay(struct procs *t);

#endif
