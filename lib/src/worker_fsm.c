//  worker_fsm.c - a worker's heartbeat and reconnect timing, no sockets

#include "cartmq/worker_fsm.h"

#include <czmq.h>

struct _cmq_worker_fsm_t {
    int64_t heartbeat_ms;       //  send HEARTBEAT after this much quiet
    int64_t expiry_ms;          //  liveness x heartbeat_ms of broker silence
    int64_t reconnect_min_ms;   //  second backoff
    int64_t reconnect_max_ms;   //  backoff cap
    int64_t last_heard_ms;      //  last message from the broker (or connect)
    int64_t last_sent_ms;       //  last message we sent
    int64_t backoff_ms;         //  wait before the next reconnect
    bool is_reconnect_pending;  //  broker dead or said DISCONNECT
    int64_t reconnect_at_ms;    //  when the pending reconnect is due
};

cmq_worker_fsm_t *
cmq_worker_fsm_new (int heartbeat_ms, int liveness, int reconnect_min_ms,
                    int reconnect_max_ms)
{
    assert (heartbeat_ms > 0);
    assert (liveness > 0);
    assert (reconnect_min_ms >= 0);
    assert (reconnect_max_ms >= 0);
    cmq_worker_fsm_t *self =
      (cmq_worker_fsm_t *) zmalloc (sizeof (cmq_worker_fsm_t));
    self->heartbeat_ms = heartbeat_ms;
    self->expiry_ms = (int64_t) liveness * heartbeat_ms;
    self->reconnect_min_ms = reconnect_min_ms;
    self->reconnect_max_ms = reconnect_max_ms;
    return self;
}

void
cmq_worker_fsm_destroy (cmq_worker_fsm_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  0, then min, doubling, never above max: a broker that keeps refusing
//  us is not hammered, yet the first reconnect costs nothing.
static int64_t
s_next_backoff (cmq_worker_fsm_t *self)
{
    int64_t next =
      self->backoff_ms == 0 ? self->reconnect_min_ms : self->backoff_ms * 2;
    return next > self->reconnect_max_ms ? self->reconnect_max_ms : next;
}

static void
s_schedule_reconnect (cmq_worker_fsm_t *self, int64_t event_ms)
{
    self->is_reconnect_pending = true;
    self->reconnect_at_ms = event_ms + self->backoff_ms;
    self->backoff_ms = s_next_backoff (self);
}

void
cmq_worker_fsm_on_connect (cmq_worker_fsm_t *self, int64_t now_ms)
{
    assert (self);
    //  A fresh socket gives the broker a full liveness window to answer.
    self->last_heard_ms = now_ms;
    self->last_sent_ms = now_ms;
    self->is_reconnect_pending = false;
}

void
cmq_worker_fsm_on_receive (cmq_worker_fsm_t *self, int64_t now_ms,
                           cmq_worker_heard_t heard)
{
    assert (self);
    self->last_heard_ms = now_ms;
    if (heard == CMQ_WORKER_HEARD_WORK)
        self->backoff_ms = 0;
    if (heard == CMQ_WORKER_HEARD_DISCONNECT && !self->is_reconnect_pending)
        s_schedule_reconnect (self, now_ms);
}

void
cmq_worker_fsm_on_send (cmq_worker_fsm_t *self, int64_t now_ms)
{
    assert (self);
    self->last_sent_ms = now_ms;
}

static int64_t
s_expires_at (cmq_worker_fsm_t *self)
{
    return self->last_heard_ms + self->expiry_ms;
}

cmq_worker_action_t
cmq_worker_fsm_on_tick (cmq_worker_fsm_t *self, int64_t now_ms)
{
    assert (self);
    //  Dated from the moment of expiry, not of this tick, so a late tick
    //  does not stretch the backoff.
    if (!self->is_reconnect_pending && now_ms >= s_expires_at (self))
        s_schedule_reconnect (self, s_expires_at (self));
    if (self->is_reconnect_pending)
        //  No heartbeats meanwhile: the broker is dead or has forgotten
        //  us, and would only answer DISCONNECT again.
        return now_ms >= self->reconnect_at_ms ? CMQ_WORKER_DO_RECONNECT
                                               : CMQ_WORKER_DO_NOTHING;
    if (now_ms - self->last_sent_ms >= self->heartbeat_ms)
        return CMQ_WORKER_DO_HEARTBEAT;
    return CMQ_WORKER_DO_NOTHING;
}

bool
cmq_worker_fsm_is_waiting (cmq_worker_fsm_t *self)
{
    assert (self);
    return self->is_reconnect_pending;
}

int64_t
cmq_worker_fsm_wait_ms (cmq_worker_fsm_t *self, int64_t now_ms)
{
    assert (self);
    int64_t due_ms;
    if (self->is_reconnect_pending)
        due_ms = self->reconnect_at_ms;
    else if (now_ms >= s_expires_at (self))
        //  Expired but not yet ticked: the reconnect on_tick will plan.
        due_ms = s_expires_at (self) + self->backoff_ms;
    else {
        due_ms = self->last_sent_ms + self->heartbeat_ms;
        if (s_expires_at (self) < due_ms)
            due_ms = s_expires_at (self);
    }
    return due_ms > now_ms ? due_ms - now_ms : 0;
}
