//  forwarder.c - cartmq-forwarder: reference MDP/0.1 forwarders to compare
//  the broker with
//
//  Not a broker: one service, no heartbeats of its own, no expiry, no
//  statistics, no MMI and no validation beyond what keeps it from
//  crashing. It exists to measure how fast this traffic can go on this
//  machine, so the real broker has a ceiling to be compared with.
//
//  --mode conformant: the least work an MDP/0.1 broker can do. A FIFO of
//  idle workers, one request per worker, requests kept in arrival order
//  while every worker is busy. The ceiling for plain workers.
//
//  --mode pipelined: no flow control. Each request goes to the next worker
//  that said READY, round robin, whatever it is doing, so requests queue
//  inside the workers' sockets. The physical limit of this traffic, and
//  the ceiling for workers that take several requests at once.
//
//  Both speak MDP/0.1 to clients and workers, so the same cartmq-worker
//  and cartmq bench run against them. Frames are moved from socket to
//  socket with raw libzmq, never copied. A worker's HEARTBEAT is answered
//  with a HEARTBEAT so that an idle worker does not give up on us and
//  reconnect; that costs nothing while requests flow.

#include "cartmq/common.h"
#include "cartmq/options.h"

#include <czmq.h>  //  zlist_t, for the --bind list only

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_PROGRAM    "cartmq-forwarder"
#define S_MAX_FRAMES 64   //  longer messages are dropped
#define S_MAX_ID     256  //  routing ids are at most 255 bytes

typedef enum { S_CONFORMANT, S_PIPELINED } s_mode_t;

//  A message as read: frames[0] is the sender's routing id. The receive
//  buffer has room for S_MAX_FRAMES; a queued request for its own only.
typedef struct {
    int count;
    zmq_msg_t frames[];
} s_message_t;

typedef struct {
    unsigned char id[S_MAX_ID];
    size_t size;
} s_worker_t;

//  A ring of pointers that grows by doubling.
typedef struct {
    void **items;
    size_t head;      //  index of the oldest item
    size_t count;     //  items held
    size_t capacity;  //  a power of two
} s_ring_t;

typedef struct {
    s_mode_t mode;
    void *router;
    s_ring_t workers;  //  s_worker_t: conformant idle FIFO, pipelined all
    size_t next;       //  pipelined: round-robin position in workers
    s_ring_t pending;  //  s_message_t: requests waiting for a worker
    unsigned char service[S_MAX_ID];  //  from the first READY
    size_t service_size;
} s_forwarder_t;

static volatile sig_atomic_t s_interrupted = 0;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_interrupted = 1;
}

//  ---------------------------------------------------------------------
//  Ring

static void
s_ring_push (s_ring_t *self, void *item)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 64;
        void **items = (void **) malloc (capacity * sizeof (void *));
        if (!items)
            abort ();
        for (size_t index = 0; index < self->count; index++)
            items[index] =
              self->items[(self->head + index) & (self->capacity - 1)];
        free (self->items);
        self->items = items;
        self->head = 0;
        self->capacity = capacity;
    }
    self->items[(self->head + self->count) & (self->capacity - 1)] = item;
    self->count++;
}

static void *
s_ring_pop (s_ring_t *self)
{
    if (self->count == 0)
        return NULL;
    void *item = self->items[self->head];
    self->head = (self->head + 1) & (self->capacity - 1);
    self->count--;
    return item;
}

//  The item at position index (0: oldest).
static void *
s_ring_at (s_ring_t *self, size_t index)
{
    return self->items[(self->head + index) & (self->capacity - 1)];
}

//  Removes the item at position index, keeping the order of the rest.
static void
s_ring_remove_at (s_ring_t *self, size_t index)
{
    for (size_t at = index; at + 1 < self->count; at++)
        self->items[(self->head + at) & (self->capacity - 1)] =
          self->items[(self->head + at + 1) & (self->capacity - 1)];
    self->count--;
}

//  ---------------------------------------------------------------------
//  Messages

static void
s_message_close (s_message_t *message, int from)
{
    for (int index = from; index < message->count; index++)
        zmq_msg_close (&message->frames[index]);
    message->count = from;
}

//  Reads one whole message. Returns 0, or -1 on interrupt or error.
//  A message longer than S_MAX_FRAMES is read to its end and dropped
//  (count 0).
static int
s_message_recv (void *socket, s_message_t *message)
{
    message->count = 0;
    bool is_too_long = false;
    while (true) {
        zmq_msg_t *frame = &message->frames[message->count];
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, socket, 0) < 0) {
            zmq_msg_close (frame);
            s_message_close (message, 0);
            return -1;
        }
        bool has_more = zmq_msg_more (frame);
        if (message->count < S_MAX_FRAMES - 1)
            message->count++;
        else {
            zmq_msg_close (frame);
            is_too_long = true;
        }
        if (!has_more)
            break;
    }
    if (is_too_long)
        s_message_close (message, 0);
    return 0;
}

static bool
s_frame_is (zmq_msg_t *frame, const char *string, size_t size)
{
    return zmq_msg_size (frame) == size &&
           memcmp (zmq_msg_data (frame), string, size) == 0;
}

//  Sends frames[from..count-1] of message, the last one ending the
//  message, and closes them; frames before `from` stay.
static void
s_send_frames (void *socket, s_message_t *message, int from)
{
    for (int index = from; index < message->count; index++) {
        int flags = index + 1 < message->count ? ZMQ_SNDMORE : 0;
        zmq_msg_send (&message->frames[index], socket, flags);
        zmq_msg_close (&message->frames[index]);
    }
    message->count = from;
}

//  Moves every frame of source into a new heap message.
static s_message_t *
s_message_take (s_message_t *source)
{
    s_message_t *message = (s_message_t *) malloc (
      sizeof (s_message_t) + (size_t) source->count * sizeof (zmq_msg_t));
    if (!message)
        abort ();
    for (int index = 0; index < source->count; index++) {
        zmq_msg_init (&message->frames[index]);
        zmq_msg_move (&message->frames[index], &source->frames[index]);
        zmq_msg_close (&source->frames[index]);
    }
    message->count = source->count;
    source->count = 0;
    return message;
}

//  ---------------------------------------------------------------------
//  Workers

static s_worker_t *
s_worker_new (zmq_msg_t *identity)
{
    s_worker_t *worker = (s_worker_t *) malloc (sizeof (s_worker_t));
    if (!worker)
        abort ();
    worker->size = zmq_msg_size (identity);
    if (worker->size > S_MAX_ID)
        worker->size = S_MAX_ID;
    memcpy (worker->id, zmq_msg_data (identity), worker->size);
    return worker;
}

static bool
s_worker_is (s_worker_t *worker, zmq_msg_t *identity)
{
    return worker->size == zmq_msg_size (identity) &&
           memcmp (worker->id, zmq_msg_data (identity), worker->size) == 0;
}

//  Forgets a worker wherever it is in the list.
static void
s_forget_worker (s_forwarder_t *self, zmq_msg_t *identity)
{
    for (size_t index = 0; index < self->workers.count; index++) {
        s_worker_t *worker = (s_worker_t *) s_ring_at (&self->workers, index);
        if (s_worker_is (worker, identity)) {
            s_ring_remove_at (&self->workers, index);
            free (worker);
            return;
        }
    }
}

//  Sends request [client][""][MDPC01][service][body...] to a worker as
//  [worker][""][MDPW01][REQUEST][client][""][body...] and consumes it.
//  Returns -1 if that worker is gone or its pipe is full (errno says
//  which); the request is then untouched.
static int
s_send_request (s_forwarder_t *self, s_worker_t *worker, s_message_t *request)
{
    //  Only the routing frame can fail: after it, the message is going.
    if (zmq_send (self->router, worker->id, worker->size,
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    zmq_send (self->router, "", 0, ZMQ_SNDMORE);
    zmq_send (self->router, "MDPW01", 6, ZMQ_SNDMORE);
    zmq_send (self->router, "\002", 1, ZMQ_SNDMORE);
    zmq_msg_send (&request->frames[0], self->router, ZMQ_SNDMORE);
    zmq_send (self->router, "", 0, ZMQ_SNDMORE);
    s_send_frames (self->router, request, 4);
    s_message_close (request, 0);
    return 0;
}

//  Hands a request to a worker: the conformant mode takes the idle worker
//  at the front, the pipelined one the next in turn. Workers that are gone
//  are forgotten. Returns 0 when sent (request consumed), -1 when no
//  worker took it (request untouched).
static int
s_dispatch (s_forwarder_t *self, s_message_t *request)
{
    while (self->workers.count > 0) {
        s_worker_t *worker;
        if (self->mode == S_CONFORMANT)
            worker = (s_worker_t *) s_ring_pop (&self->workers);
        else {
            self->next = (self->next + 1) % self->workers.count;
            worker = (s_worker_t *) s_ring_at (&self->workers, self->next);
        }
        if (s_send_request (self, worker, request) == 0) {
            if (self->mode == S_CONFORMANT)
                free (worker);  //  busy until it replies
            return 0;
        }
        if (errno == EAGAIN) {
            //  That worker's pipe is full: keep the request for later.
            if (self->mode == S_CONFORMANT)
                s_ring_push (&self->workers, worker);
            return -1;
        }
        if (self->mode == S_PIPELINED)
            s_ring_remove_at (&self->workers, self->next);
        free (worker);  //  gone: EHOSTUNREACH
    }
    return -1;
}

//  Sends waiting requests while some worker can take one.
static void
s_drain_pending (s_forwarder_t *self)
{
    while (self->pending.count > 0 && self->workers.count > 0) {
        s_message_t *request = (s_message_t *) s_ring_at (&self->pending, 0);
        if (s_dispatch (self, request) != 0)
            return;
        s_ring_pop (&self->pending);
        free (request);
    }
}

//  ---------------------------------------------------------------------
//  Traffic

static void
s_on_client (s_forwarder_t *self, s_message_t *message)
{
    //  [client][""][MDPC01][service][body...]: at least one body frame.
    if (message->count < 5) {
        s_message_close (message, 0);
        return;
    }
    if (self->pending.count == 0 && s_dispatch (self, message) == 0)
        return;
    s_message_t *copy = s_message_take (message);
    s_ring_push (&self->pending, copy);
}

//  [worker][""][MDPW01][REPLY][client][""][body...] goes to the client as
//  [client][""][MDPC01][service][body...].
static void
s_on_reply (s_forwarder_t *self, s_message_t *message)
{
    if (message->count < 7) {
        s_message_close (message, 0);
        return;
    }
    if (zmq_msg_send (&message->frames[4], self->router,
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        zmq_send (self->router, "", 0, ZMQ_SNDMORE);
        zmq_send (self->router, "MDPC01", 6, ZMQ_SNDMORE);
        zmq_send (self->router, self->service, self->service_size, ZMQ_SNDMORE);
        s_send_frames (self->router, message, 6);
    }
    if (self->mode == S_CONFORMANT)
        s_ring_push (&self->workers, s_worker_new (&message->frames[0]));
    s_drain_pending (self);
    s_message_close (message, 0);
}

static void
s_on_worker (s_forwarder_t *self, s_message_t *message)
{
    if (message->count < 4 || zmq_msg_size (&message->frames[3]) != 1) {
        s_message_close (message, 0);
        return;
    }
    zmq_msg_t *identity = &message->frames[0];
    unsigned char command =
      *(unsigned char *) zmq_msg_data (&message->frames[3]);
    if (command == 0x03)
        s_on_reply (self, message);
    else if (command == 0x01 && message->count >= 5) {
        //  READY [service] [credit]: the credit frame is not ours to read.
        if (self->service_size == 0) {
            size_t size = zmq_msg_size (&message->frames[4]);
            self->service_size = size < S_MAX_ID ? size : S_MAX_ID;
            memcpy (self->service, zmq_msg_data (&message->frames[4]),
                    self->service_size);
        }
        s_forget_worker (self, identity);
        s_ring_push (&self->workers, s_worker_new (identity));
        s_drain_pending (self);
    } else if (command == 0x04) {
        if (zmq_msg_send (identity, self->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) >=
            0) {
            zmq_send (self->router, "", 0, ZMQ_SNDMORE);
            zmq_send (self->router, "MDPW01", 6, ZMQ_SNDMORE);
            zmq_send (self->router, "\004", 1, 0);
        }
    } else if (command == 0x05)
        s_forget_worker (self, identity);
    s_message_close (message, 0);
}

static void
s_on_message (s_forwarder_t *self, s_message_t *message)
{
    //  [sender][""][header]...
    if (message->count < 3 || zmq_msg_size (&message->frames[1]) != 0) {
        s_message_close (message, 0);
        return;
    }
    if (s_frame_is (&message->frames[2], "MDPC01", 6))
        s_on_client (self, message);
    else if (s_frame_is (&message->frames[2], "MDPW01", 6))
        s_on_worker (self, message);
    else
        s_message_close (message, 0);
}

//  ---------------------------------------------------------------------
//  Program

static int
s_parse (int argc, char **argv, cmq_option_t *table, char **mode_p,
         s_mode_t *mode)
{
    cmq_options_spec_t spec = { S_PROGRAM,
                                "[--bind ENDPOINT]... "
                                "[--mode conformant|pipelined]",
                                NULL, false };
    int count = 0;
    int next_arg = argc;
    cmq_options_result_t result =
      cmq_options_parse (&spec, table, argc, argv, NULL, 0, &count, &next_arg);
    if (result == CMQ_OPTIONS_EXIT)
        return 0;
    if (result != CMQ_OPTIONS_OK)
        return 2;
    if (!*mode_p || strcmp (*mode_p, "conformant") == 0)
        *mode = S_CONFORMANT;
    else if (strcmp (*mode_p, "pipelined") == 0)
        *mode = S_PIPELINED;
    else {
        fprintf (stderr, "%s: --mode: conformant or pipelined\n", S_PROGRAM);
        return 2;
    }
    return -1;
}

static int
s_bind_all (void *router, char **endpoints, int count)
{
    for (int index = 0; index < count; index++)
        if (zmq_bind (router, endpoints[index]) != 0) {
            fprintf (stderr, "%s: cannot bind '%s': %s\n", S_PROGRAM,
                     endpoints[index], zmq_strerror (errno));
            return -1;
        }
    return 0;
}

static void
s_serve (s_forwarder_t *self)
{
    s_message_t *message = (s_message_t *) malloc (
      sizeof (s_message_t) + S_MAX_FRAMES * sizeof (zmq_msg_t));
    if (!message)
        abort ();
    while (!s_interrupted) {
        if (s_message_recv (self->router, message) != 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (message->count > 0)
            s_on_message (self, message);
    }
    free (message);
}

static void
s_forwarder_free (s_forwarder_t *self)
{
    s_worker_t *worker;
    while ((worker = (s_worker_t *) s_ring_pop (&self->workers)))
        free (worker);
    s_message_t *request;
    while ((request = (s_message_t *) s_ring_pop (&self->pending))) {
        s_message_close (request, 0);
        free (request);
    }
    free (self->workers.items);
    free (self->pending.items);
}

int
main (int argc, char **argv)
{
    char *mode_name = NULL;
    zlist_t *binds = NULL;
    cmq_option_t table[] = {
        { "bind", CMQ_OPT_STRING_LIST, "ENDPOINT",
          "bind here (repeatable; default " CMQ_DEFAULT_ENDPOINT ")", 0, 0,
          &binds },
        { "mode", CMQ_OPT_STRING, "MODE",
          "conformant (idle-worker FIFO, one request per worker) or "
          "pipelined (round robin, no flow control)",
          0, 0, &mode_name },
        { NULL, 0, NULL, NULL, 0, 0, NULL }
    };
    s_forwarder_t self;
    memset (&self, 0, sizeof (self));
    int rc = s_parse (argc, argv, table, &mode_name, &self.mode);
    if (rc != -1) {
        cmq_options_free (table);
        return rc;
    }
    char *endpoints[64];
    int endpoint_count = 0;
    for (char *bind = binds ? (char *) zlist_first (binds) : NULL;
         bind && endpoint_count < 64; bind = (char *) zlist_next (binds))
        endpoints[endpoint_count++] = bind;
    if (endpoint_count == 0)
        endpoints[endpoint_count++] = CMQ_DEFAULT_ENDPOINT;

    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_signal;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);

    void *context = zmq_ctx_new ();
    self.router = zmq_socket (context, ZMQ_ROUTER);
    int on = 1;
    int linger = 0;
    zmq_setsockopt (self.router, ZMQ_ROUTER_MANDATORY, &on, sizeof (on));
    zmq_setsockopt (self.router, ZMQ_LINGER, &linger, sizeof (linger));
    rc = 1;
    if (s_bind_all (self.router, endpoints, endpoint_count) == 0) {
        fprintf (stderr, "%s: %s mode, bound to %s\n", S_PROGRAM,
                 self.mode == S_CONFORMANT ? "conformant" : "pipelined",
                 endpoints[0]);
        s_serve (&self);
        rc = 0;
    }
    zmq_close (self.router);
    zmq_ctx_term (context);
    s_forwarder_free (&self);
    cmq_options_free (table);
    return rc;
}
