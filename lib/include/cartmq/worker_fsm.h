//  worker_fsm.h - a worker's heartbeat and reconnect timing, no sockets
//
//  Input: what happened (connected, heard from the broker, sent something,
//  told DISCONNECT) and the time. Output: what to do now (send a HEARTBEAT,
//  drop the socket and connect afresh). cmq_worker_t drives it; unit tests
//  drive it with made-up times.
//
//  Rules (RFC 7 and the contract §2/§3):
//  - send HEARTBEAT when nothing was sent for heartbeat_ms;
//  - the broker is dead when silent for liveness x heartbeat_ms: reconnect;
//  - DISCONNECT: reconnect;
//  - reconnects wait a backoff: 0 the first time, then reconnect_min_ms,
//    doubling up to reconnect_max_ms; hearing a REQUEST or HEARTBEAT from
//    the broker resets it to 0;
//  - the old socket is closed the moment the broker is judged dead or says
//    DISCONNECT, not when the backoff ends (cmq_worker_fsm_is_waiting):
//    a broker never sees two registrations of one worker (§5).

#ifndef CARTMQ_WORKER_FSM_H
#define CARTMQ_WORKER_FSM_H

#include <stdbool.h>
#include <stdint.h>

typedef struct _cmq_worker_fsm_t cmq_worker_fsm_t;

typedef enum {
    CMQ_WORKER_DO_NOTHING = 0,
    CMQ_WORKER_DO_HEARTBEAT = 1,  //  send HEARTBEAT now
    CMQ_WORKER_DO_RECONNECT = 2   //  destroy socket, new socket, READY
} cmq_worker_action_t;

//  What came from the broker.
typedef enum {
    CMQ_WORKER_HEARD_WORK = 1,        //  REQUEST or HEARTBEAT: resets the
                                      //  backoff
    CMQ_WORKER_HEARD_DISCONNECT = 2,  //  DISCONNECT: a reconnect is due
                                      //  after the backoff
    CMQ_WORKER_HEARD_OTHER = 3        //  anything else: a sign of life only
} cmq_worker_heard_t;

cmq_worker_fsm_t *cmq_worker_fsm_new (int heartbeat_ms, int liveness,
                                      int reconnect_min_ms,
                                      int reconnect_max_ms);

void cmq_worker_fsm_destroy (cmq_worker_fsm_t **self_p);

//  A fresh socket was opened, or its connection came up and READY went
//  out, at now_ms: the broker has a full liveness window from then.
void cmq_worker_fsm_on_connect (cmq_worker_fsm_t *self, int64_t now_ms);

//  A message came from the broker at now_ms; heard says what it was.
void cmq_worker_fsm_on_receive (cmq_worker_fsm_t *self, int64_t now_ms,
                                cmq_worker_heard_t heard);

//  We sent something (READY, REPLY, HEARTBEAT) at now_ms.
void cmq_worker_fsm_on_send (cmq_worker_fsm_t *self, int64_t now_ms);

//  What is due at now_ms. RECONNECT wins over HEARTBEAT.
cmq_worker_action_t cmq_worker_fsm_on_tick (cmq_worker_fsm_t *self,
                                            int64_t now_ms);

//  True from the moment on_tick found the broker dead, or on_receive was
//  told DISCONNECT, until the next on_connect: the socket must be closed
//  now, and a new one opened when on_tick says RECONNECT. A socket kept
//  open through the backoff could register with a broker that comes back,
//  and then be dropped without a word, leaving a phantom worker there.
bool cmq_worker_fsm_is_waiting (cmq_worker_fsm_t *self);

//  Milliseconds from now_ms until on_tick may have something to do (>= 0):
//  the poll timeout.
int64_t cmq_worker_fsm_wait_ms (cmq_worker_fsm_t *self, int64_t now_ms);

#endif
