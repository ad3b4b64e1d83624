//  broker_notes.h - drop and refusal lines, summarised
//
//  Contract §3: a drop or a refused message is not logged one line each
//  (a peer could flood the log) but counted per (kind, reason, name) and
//  written as one line per distinct triple at most once a second, from the
//  core's tick. At most BROKER_NOTES_MAX distinct lines per interval; the
//  rest are one count. Noting is a scan of at most BROKER_NOTES_MAX
//  entries and allocates nothing.

#ifndef BROKER_NOTES_H
#define BROKER_NOTES_H

#include <czmq.h>
#include <stdint.h>

#define BROKER_NOTES_MAX         32
#define BROKER_NOTES_INTERVAL_US 1000000

typedef enum {
    BROKER_NOTE_DROPPED,         //  a request dropped; name is the service
    BROKER_NOTE_CLIENT_INVALID,  //  a client message dropped; name is the peer
    BROKER_NOTE_REFUSED          //  a peer sent DISCONNECT; name is the peer
} broker_note_kind_t;

typedef struct _broker_notes_t broker_notes_t;

//  The first summary may be written at once.
broker_notes_t *broker_notes_new (int64_t now_us);

void broker_notes_destroy (broker_notes_t **self_p);

//  Counts one under (kind, reason, name). reason is a static string
//  (compared as a pointer); name is a service name or a routing id.
void broker_notes_add (broker_notes_t *self, broker_note_kind_t kind,
                       const char *reason, const void *name, size_t name_size);

//  Writes the lines and starts a new interval, if there is anything to
//  write and the last summary is at least an interval old.
void broker_notes_write (broker_notes_t *self, int64_t now_us);

//  Distinct lines and the count past them, this interval (for tests).
size_t broker_notes_lines (broker_notes_t *self);

uint64_t broker_notes_unlisted (broker_notes_t *self);

#endif
