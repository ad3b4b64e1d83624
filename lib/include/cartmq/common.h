//  common.h - what the client and worker libraries agree on
//
//  One default endpoint for every program and library, and one error
//  model:
//  - an object keeps the reason its last call failed, as hiredis keeps
//    redisContext.errstr: cmq_client_errstr (client),
//    cmq_worker_errstr (worker). A successful call leaves it alone.
//  - a constructor that returns NULL has no object to keep it in, so it
//    writes the reason to the buffer its caller passes (error may be NULL;
//    CMQ_ERRSTR_SIZE bytes always hold the whole reason).
//  - NULL config means all defaults, and so does a number <= 0 in a
//    config field that says "<= 0: default".

#ifndef CARTMQ_COMMON_H
#define CARTMQ_COMMON_H

#define CMQ_DEFAULT_ENDPOINT "tcp://127.0.0.1:5555"

//  Brokers one worker or client may name (contract §7).
#define CMQ_MAX_BROKERS 64

//  Room for any reason a library call gives, NUL included.
#define CMQ_ERRSTR_SIZE 256

#endif
