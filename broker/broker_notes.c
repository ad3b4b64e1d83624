//  broker_notes.c - drop and refusal lines, summarised
//
//  Names are kept as bytes and escaped (service names) or written in hex
//  (routing ids) only when the line is written, so no peer can forge or
//  split a line.

#include "broker_notes.h"

#include "broker_peer.h"
#include "cartmq/log.h"
#include "cartmq/mdp.h"

//  Service names and routing ids both fit.
#define S_NAME_BYTES BROKER_PEER_MAX_BYTES
_Static_assert(CMQ_MAX_SERVICE_NAME_BYTES <= S_NAME_BYTES,
               "a service name fits a note");

typedef struct {
    broker_note_kind_t kind;
    const char *reason;  //  static string
    uint64_t count;
    size_t name_size;
    byte name[S_NAME_BYTES];
} s_note_t;

struct _broker_notes_t {
    s_note_t notes[BROKER_NOTES_MAX];
    size_t count;
    uint64_t unlisted;  //  counts past BROKER_NOTES_MAX this interval
    int64_t written_us;
};

broker_notes_t *
broker_notes_new (int64_t now_us)
{
    broker_notes_t *self = (broker_notes_t *) zmalloc (sizeof (*self));
    self->written_us = now_us - BROKER_NOTES_INTERVAL_US;
    return self;
}

void
broker_notes_destroy (broker_notes_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

void
broker_notes_add (broker_notes_t *self, broker_note_kind_t kind,
                  const char *reason, const void *name, size_t name_size)
{
    assert (self && reason && name_size <= S_NAME_BYTES);
    for (size_t index = 0; index < self->count; index++) {
        s_note_t *note = &self->notes[index];
        if (note->kind == kind && note->reason == reason &&
            note->name_size == name_size &&
            memcmp (note->name, name, name_size) == 0) {
            note->count++;
            return;
        }
    }
    if (self->count == BROKER_NOTES_MAX) {
        self->unlisted++;
        return;
    }
    s_note_t *note = &self->notes[self->count++];
    note->kind = kind;
    note->reason = reason;
    note->count = 1;
    note->name_size = name_size;
    memcpy (note->name, name, name_size);
}

static void
s_write_note (const s_note_t *note)
{
    unsigned long long count = (unsigned long long) note->count;
    if (note->kind == BROKER_NOTE_DROPPED) {
        char name[CMQ_LOG_ESCAPED_BYTES (S_NAME_BYTES)];
        cmq_log_escape (note->name, note->name_size, name, sizeof (name));
        cmq_log_warning ("requests dropped reason=%s service=%s count=%llu",
                         note->reason, name, count);
        return;
    }
    char hex[BROKER_PEER_HEX_BYTES];
    broker_peer_t peer = { note->name, note->name_size };
    cmq_log_warning ("%s peer=%s count=%llu reason=%s",
                     note->kind == BROKER_NOTE_REFUSED
                       ? "invalid message"
                       : "invalid client message dropped",
                     broker_peer_hex (peer, hex), count, note->reason);
}

void
broker_notes_write (broker_notes_t *self, int64_t now_us)
{
    assert (self);
    if (self->count == 0 && self->unlisted == 0)
        return;
    if (now_us - self->written_us < BROKER_NOTES_INTERVAL_US)
        return;
    for (size_t index = 0; index < self->count; index++)
        s_write_note (&self->notes[index]);
    if (self->unlisted)
        cmq_log_warning ("requests dropped or messages refused, not listed "
                         "above count=%llu",
                         (unsigned long long) self->unlisted);
    self->count = 0;
    self->unlisted = 0;
    self->written_us = now_us;
}

size_t
broker_notes_lines (broker_notes_t *self)
{
    assert (self);
    return self->count;
}

uint64_t
broker_notes_unlisted (broker_notes_t *self)
{
    assert (self);
    return self->unlisted;
}
