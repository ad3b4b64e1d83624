//  broker_outbox.c - messages the core wants sent, in order

#include "broker_outbox.h"

typedef enum { S_REQUEST, S_REPLY, S_COMMAND } s_kind_t;

//  Routing ids and service names are at most 255 bytes (the MDP parser
//  and libzmq see to that), so they fit inline.
typedef struct {
    byte data[256];
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
//  Sending: small frames by zmq_send (libzmq keeps up to 33 bytes inside
//  the message, no allocation); bodies as frames.

//  Every frame goes with ZMQ_DONTWAIT. The socket is a ROUTER with
//  ZMQ_ROUTER_MANDATORY, so the first frame (the routing id) is where
//  libzmq decides: 0 and the rest of the message is taken whatever
//  happens; EAGAIN when the peer's pipe holds its high-water mark of
//  unsent messages; EHOSTUNREACH when no such peer is connected. Later
//  frames of an accepted message never fail with EAGAIN (router.cpp checks
//  the high-water mark on the first frame only), so a message is never
//  cut in half, and DONTWAIT means a full peer can never block the loop.
static int
s_send_small (void *handle, const void *data, size_t size, bool more)
{
    return zmq_send (handle, data, size,
                     ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
}

//  0, or -1 with errno when the peer refused the message (nothing sent).
static int
s_send_header (void *handle, s_entry_t *entry, const char *protocol)
{
    if (s_send_small (handle, entry->peer.data, entry->peer.size, true) < 0)
        return -1;
    s_send_small (handle, "", 0, true);
    s_send_small (handle, protocol, 6, true);
    return 0;
}

static int
s_send_request (void *handle, s_entry_t *entry)
{
    if (s_send_header (handle, entry, CMQ_MDPW_HEADER))
        return -1;
    byte command = CMQ_MDPW_REQUEST;
    s_send_small (handle, &command, 1, true);
    size_t address_size;
    const byte *address =
      broker_request_address (entry->request, &address_size);
    s_send_small (handle, address, address_size, true);
    s_send_small (handle, "", 0, true);
    broker_request_send_body (entry->request, handle);
    return 0;
}

static int
s_send_reply (void *handle, s_entry_t *entry)
{
    if (s_send_header (handle, entry, CMQ_MDPC_HEADER))
        return -1;
    s_send_small (handle, entry->service.data, entry->service.size, true);
    //  A sent frame is left empty; the entry's clear closes the rest.
    for (size_t index = 0; index < entry->body_count; index++)
        zmq_msg_send (&entry->body[index], handle,
                      ZMQ_DONTWAIT |
                        (index + 1 < entry->body_count ? ZMQ_SNDMORE : 0));
    return 0;
}

static int
s_send_command (void *handle, s_entry_t *entry)
{
    if (s_send_header (handle, entry, CMQ_MDPW_HEADER))
        return -1;
    byte command = (byte) entry->command;
    s_send_small (handle, &command, 1, false);
    return 0;
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
broker_outbox_send (broker_outbox_t *self, zsock_t *socket,
                    broker_outbox_sent_t *sent)
{
    assert (self && socket && sent);
    void *handle = zsock_resolve (socket);
    for (size_t index = 0; index < self->count; index++) {
        s_entry_t *entry = self->entries[index];
        int rc;
        if (entry->kind == S_REQUEST)
            rc = s_send_request (handle, entry);
        else if (entry->kind == S_REPLY)
            rc = s_send_reply (handle, entry);
        else
            rc = s_send_command (handle, entry);
        //  EHOSTUNREACH: the peer left; dropped, as ROUTER always did.
        if (rc && zmq_errno () == EAGAIN)
            s_note_full (sent, entry);
        s_entry_clear (entry);
    }
    self->count = 0;
}

//  ---------------------------------------------------------------------
//  Popping as plain messages, for tests

static zmsg_t *
s_entry_to_msg (s_entry_t *entry)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, entry->peer.data, entry->peer.size);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg,
                 entry->kind == S_REPLY ? CMQ_MDPC_HEADER : CMQ_MDPW_HEADER);
    if (entry->kind == S_REPLY) {
        zmsg_addmem (msg, entry->service.data, entry->service.size);
        for (size_t index = 0; index < entry->body_count; index++)
            zmsg_addmem (msg, zmq_msg_data (&entry->body[index]),
                         zmq_msg_size (&entry->body[index]));
        return msg;
    }
    byte command = entry->kind == S_REQUEST ? (byte) CMQ_MDPW_REQUEST
                                            : (byte) entry->command;
    zmsg_addmem (msg, &command, 1);
    if (entry->kind == S_REQUEST) {
        size_t address_size;
        const byte *address =
          broker_request_address (entry->request, &address_size);
        zmsg_addmem (msg, address, address_size);
        zmsg_addmem (msg, NULL, 0);
        zmsg_t *body = broker_request_body_copy (entry->request);
        zframe_t *part;
        while ((part = zmsg_pop (body)))
            zmsg_append (msg, &part);
        zmsg_destroy (&body);
    }
    return msg;
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
    zmsg_t *msg = s_entry_to_msg (entry);
    s_entry_clear (entry);
    return msg;
}
