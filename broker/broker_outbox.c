//  broker_outbox.c - messages the core wants sent, in order

#include "broker_outbox.h"

typedef enum { S_REQUEST, S_REPLY, S_COMMAND } s_kind_t;

//  Routing ids and service names are at most BROKER_PEER_MAX_BYTES (libzmq
//  and the MDP parser see to that), so they fit inline.
_Static_assert(CMQ_MAX_SERVICE_NAME_BYTES <= BROKER_PEER_MAX_BYTES,
               "a service name fits an entry");
typedef struct {
    byte data[BROKER_PEER_MAX_BYTES];
    size_t size;
} s_bytes_t;

//  A reply body of up to this many frames lives inside its entry, so a
//  reply allocates nothing; longer ones get an array of their own.
#define S_INLINE_FRAMES 2

typedef struct {
    s_kind_t kind;
    s_bytes_t peer;              //  routing id it goes to
    s_bytes_t service;           //  REPLY: the service that answered
    cmq_mdpw_command_t command;  //  COMMAND
    broker_request_t *request;   //  REQUEST: borrowed client id and body
    zmq_msg_t *body;             //  REPLY: body frames, owned (inline or
                                 //  heap)
    size_t body_count;
    zmq_msg_t inline_body[S_INLINE_FRAMES];
} s_entry_t;

//  Entries are made once and reused between flushes. They never move (the
//  array holds pointers), so an inline body's zmq_msg_t stay where libzmq
//  put them and entry->body may point into its own entry.
struct _broker_outbox_t {
    s_entry_t **entries;
    size_t count;     //  entries in use, in send order
    size_t capacity;  //  entries made
};

//  Makes entries up to capacity.
static void
s_grow (broker_outbox_t *self, size_t capacity)
{
    self->entries =
      (s_entry_t **) realloc (self->entries, capacity * sizeof (s_entry_t *));
    assert (self->entries);
    for (size_t index = self->capacity; index < capacity; index++)
        self->entries[index] = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    self->capacity = capacity;
}

broker_outbox_t *
broker_outbox_new (void)
{
    broker_outbox_t *self = (broker_outbox_t *) zmalloc (sizeof (*self));
    s_grow (self, 64);
    return self;
}

static void
s_entry_clear (s_entry_t *entry)
{
    for (size_t index = 0; index < entry->body_count; index++)
        zmq_msg_close (&entry->body[index]);
    if (entry->body != entry->inline_body)
        free (entry->body);
    entry->body = NULL;
    entry->body_count = 0;
    broker_request_unref (&entry->request);
}

//  Room for count body frames, initialised empty.
static void
s_entry_body (s_entry_t *entry, size_t count)
{
    entry->body = count <= S_INLINE_FRAMES
                    ? entry->inline_body
                    : (zmq_msg_t *) malloc (count * sizeof (zmq_msg_t));
    assert (entry->body);
    for (size_t index = 0; index < count; index++)
        zmq_msg_init (&entry->body[index]);
    entry->body_count = count;
}

void
broker_outbox_destroy (broker_outbox_t **self_p)
{
    assert (self_p);
    broker_outbox_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++)
        s_entry_clear (self->entries[index]);
    for (size_t index = 0; index < self->capacity; index++)
        free (self->entries[index]);
    free (self->entries);
    free (self);
    *self_p = NULL;
}

static void
s_bytes_set (s_bytes_t *bytes, const void *data, size_t size)
{
    assert (size <= sizeof (bytes->data));
    memcpy (bytes->data, data, size);
    bytes->size = size;
}

static s_entry_t *
s_append (broker_outbox_t *self, s_kind_t kind, broker_peer_t peer)
{
    if (self->count == self->capacity)
        s_grow (self, self->capacity * 2);
    s_entry_t *entry = self->entries[self->count++];
    entry->kind = kind;
    entry->request = NULL;
    entry->body = NULL;
    entry->body_count = 0;
    s_bytes_set (&entry->peer, peer.data, peer.size);
    return entry;
}

void
broker_outbox_add_request (broker_outbox_t *self, broker_peer_t worker,
                           broker_request_t *request)
{
    assert (self && worker.data && request);
    s_entry_t *entry = s_append (self, S_REQUEST, worker);
    entry->request = broker_request_ref (request);
}

void
broker_outbox_add_reply (broker_outbox_t *self, broker_peer_t client,
                         const char *service, zmq_msg_t *body, size_t count)
{
    assert (self && client.data && service && body && count > 0);
    s_entry_t *entry = s_append (self, S_REPLY, client);
    s_bytes_set (&entry->service, service, strlen (service));
    s_entry_body (entry, count);
    for (size_t index = 0; index < count; index++)
        zmq_msg_move (&entry->body[index], &body[index]);
}

void
broker_outbox_add_reply_bytes (broker_outbox_t *self, broker_peer_t client,
                               const char *service, const void *data,
                               size_t size)
{
    assert (self && client.data && service && (data || size == 0));
    zmq_msg_t frame;
    zmq_msg_init_size (&frame, size);
    if (size)
        memcpy (zmq_msg_data (&frame), data, size);
    broker_outbox_add_reply (self, client, service, &frame, 1);
    zmq_msg_close (&frame);  //  empty once moved
}

void
broker_outbox_add_command (broker_outbox_t *self, broker_peer_t peer,
                           cmq_mdpw_command_t command)
{
    assert (self && peer.data);
    s_entry_t *entry = s_append (self, S_COMMAND, peer);
    entry->command = command;
}

size_t
broker_outbox_size (broker_outbox_t *self)
{
    assert (self);
    return self->count;
}

//  ---------------------------------------------------------------------
//  Emitting: the one place that lays out the frames of each message.

//  [peer][""][protocol]: 0, or -1 with errno when the peer refused the
//  message (nothing emitted).
static int
s_emit_header (broker_sink_t *sink, s_entry_t *entry, const char *protocol)
{
    if (sink->bytes (sink, entry->peer.data, entry->peer.size, true) < 0)
        return -1;
    sink->bytes (sink, "", 0, true);
    sink->bytes (sink, protocol, 6, true);
    return 0;
}

//  [worker][""][MDPW01][REQUEST][token][""][body...]
static int
s_emit_request (broker_sink_t *sink, s_entry_t *entry)
{
    if (s_emit_header (sink, entry, CMQ_MDPW_HEADER))
        return -1;
    byte command = CMQ_MDPW_REQUEST;
    sink->bytes (sink, &command, 1, true);
    size_t address_size;
    const byte *address =
      broker_request_address (entry->request, &address_size);
    sink->bytes (sink, address, address_size, true);
    sink->bytes (sink, "", 0, true);
    broker_request_emit_body (entry->request, sink);
    return 0;
}

//  [client][""][MDPC01][service][body...], the body frames moved out.
static int
s_emit_reply (broker_sink_t *sink, s_entry_t *entry)
{
    if (s_emit_header (sink, entry, CMQ_MDPC_HEADER))
        return -1;
    sink->bytes (sink, entry->service.data, entry->service.size, true);
    //  The entry's clear closes what the sink leaves.
    for (size_t index = 0; index < entry->body_count; index++)
        sink->frame (sink, &entry->body[index], index + 1 < entry->body_count);
    return 0;
}

//  [worker][""][MDPW01][command] for HEARTBEAT and DISCONNECT.
static int
s_emit_command (broker_sink_t *sink, s_entry_t *entry)
{
    if (s_emit_header (sink, entry, CMQ_MDPW_HEADER))
        return -1;
    byte command = (byte) entry->command;
    sink->bytes (sink, &command, 1, false);
    return 0;
}

static int
s_emit (broker_sink_t *sink, s_entry_t *entry)
{
    if (entry->kind == S_REQUEST)
        return s_emit_request (sink, entry);
    if (entry->kind == S_REPLY)
        return s_emit_reply (sink, entry);
    return s_emit_command (sink, entry);
}

//  MMI answers are replies too, but the core does not count them as
//  delivered; no worker may serve an mmi.* name (RFC 8), so the name says
//  which is which.
static bool
s_is_mmi (const s_entry_t *entry)
{
    return entry->service.size >= 4 &&
           memcmp (entry->service.data, "mmi.", 4) == 0;
}

//  Notes a message a full peer refused, for the caller's count and log.
static void
s_note_full (broker_outbox_sent_t *sent, s_entry_t *entry)
{
    if (entry->kind == S_REPLY && !s_is_mmi (entry))
        sent->replies_full++;
    else if (entry->kind == S_REQUEST)
        sent->requests_full++;
    else
        sent->others_full++;
    sent->last_full_size = entry->peer.size;
    memcpy (sent->last_full_peer, entry->peer.data, entry->peer.size);
}

void
broker_outbox_flush (broker_outbox_t *self, broker_sink_t *sink,
                     broker_outbox_sent_t *sent)
{
    assert (self && sink && sent);
    for (size_t index = 0; index < self->count; index++) {
        s_entry_t *entry = self->entries[index];
        //  EHOSTUNREACH: the peer left; dropped, as ROUTER always did.
        if (s_emit (sink, entry) && errno == EAGAIN)
            s_note_full (sent, entry);
        s_entry_clear (entry);
    }
    self->count = 0;
}

//  ---------------------------------------------------------------------
//  The test sink: frames into a zmsg_t

typedef struct {
    broker_sink_t base;
    zmsg_t *msg;
} s_zmsg_sink_t;

static int
s_zmsg_bytes (broker_sink_t *sink, const void *data, size_t size, bool more)
{
    (void) more;
    zmsg_addmem (((s_zmsg_sink_t *) sink)->msg, data, size);
    return 0;
}

static void
s_zmsg_frame (broker_sink_t *sink, zmq_msg_t *frame, bool more)
{
    s_zmsg_bytes (sink, zmq_msg_data (frame), zmq_msg_size (frame), more);
}

zmsg_t *
broker_outbox_pop (broker_outbox_t *self)
{
    assert (self);
    if (self->count == 0)
        return NULL;
    s_entry_t *entry = self->entries[0];
    memmove (&self->entries[0], &self->entries[1],
             (self->count - 1) * sizeof (s_entry_t *));
    self->entries[--self->count] = entry;  //  free again, behind the rest
    s_zmsg_sink_t sink = { { s_zmsg_bytes, s_zmsg_frame }, zmsg_new () };
    s_emit (&sink.base, entry);
    s_entry_clear (entry);
    return sink.msg;
}
