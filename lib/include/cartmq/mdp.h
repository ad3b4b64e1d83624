//  mdp.h - Majordomo Protocol 0.1 (RFC 7/MDP) framing and validation
//
//  Messages are CZMQ zmsg_t as they come off a socket. The parser reads a
//  message and says what it is, without changing it: the frames it points
//  at are borrowed from the message. Builders return new messages.

#ifndef CARTMQ_MDP_H
#define CARTMQ_MDP_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#define CMQ_MDPC_HEADER "MDPC01"
#define CMQ_MDPW_HEADER "MDPW01"

//  Limits on what peers may send. Each is checked before anything is
//  allocated for it.
#define CMQ_MAX_SERVICE_NAME_BYTES 255
#define CMQ_MAX_FRAME_BYTES        (1024 * 1024)
#define CMQ_MAX_CREDIT             1000
#define CMQ_MAX_CREDIT_DIGITS      10  //  "0000000016" is 16

typedef enum {
    CMQ_MDPW_READY = 1,
    CMQ_MDPW_REQUEST = 2,
    CMQ_MDPW_REPLY = 3,
    CMQ_MDPW_HEARTBEAT = 4,
    CMQ_MDPW_DISCONNECT = 5
} cmq_mdpw_command_t;

typedef enum {
    CMQ_MDP_OK = 0,
    CMQ_MDP_EMPTY,                 //  no frames at all
    CMQ_MDP_NO_DELIMITER,          //  first frame is not empty
    CMQ_MDP_NO_HEADER,             //  nothing after the delimiter
    CMQ_MDP_UNKNOWN_HEADER,        //  neither MDPC01 nor MDPW01
    CMQ_MDP_NO_SERVICE,            //  client request without a service
    CMQ_MDP_BAD_SERVICE,           //  service name empty, too long or has NUL
    CMQ_MDP_NO_BODY,               //  request or reply without a body frame
    CMQ_MDP_NO_COMMAND,            //  worker message without a command
    CMQ_MDP_UNKNOWN_COMMAND,       //  command frame is not 0x01..0x05
    CMQ_MDP_MISSING_FRAMES,        //  command lacks frames it needs
    CMQ_MDP_EXTRA_FRAMES,          //  command has frames it must not
    CMQ_MDP_BAD_CREDIT,            //  READY credit frame not 1..1000
    CMQ_MDP_NO_ENVELOPE_DELIMITER  //  REQUEST/REPLY address not followed
                                   //  by an empty frame
} cmq_mdp_status_t;

typedef enum {
    CMQ_MDP_FROM_CLIENT = 1,  //  MDPC01
    CMQ_MDP_FROM_WORKER = 2   //  MDPW01
} cmq_mdp_kind_t;

//  What a message says. Frame pointers are borrowed from the parsed
//  message and valid while it lives unchanged.
typedef struct {
    cmq_mdp_kind_t kind;
    cmq_mdpw_command_t command;  //  worker messages only
    zframe_t *service;           //  client request/reply, or READY
    zframe_t *address;           //  REQUEST and REPLY: the client address
    int credit;                  //  READY: 1..1000 (1 without the frame)
    size_t body_frames;          //  frames of body at the end of the message
} cmq_mdp_message_t;

//  Parses a message that starts with the empty delimiter frame: what a
//  ROUTER reads after the routing id, or what a DEALER reads. Checks the
//  header, the command and the frame counts, and for READY the service
//  name and the optional credit frame. Never changes msg.
cmq_mdp_status_t cmq_mdp_parse (zmsg_t *msg, cmq_mdp_message_t *out);

//  The same rules over frames held any other way (the broker reads raw
//  zmq_msg_t): the parser needs the bytes of the first CMQ_MDP_HEAD_FRAMES
//  frames and how many frames there are in all.
#define CMQ_MDP_HEAD_FRAMES 6

typedef struct {
    const byte *data;
    size_t size;
} cmq_mdp_bytes_t;

typedef struct {
    cmq_mdp_bytes_t head[CMQ_MDP_HEAD_FRAMES];  //  the first frames
    size_t count;                               //  all frames
} cmq_mdp_frames_t;

//  What a message says, by frame index (0 is the empty delimiter).
typedef struct {
    cmq_mdp_kind_t kind;
    cmq_mdpw_command_t command;  //  worker messages only
    int service;                 //  client request or READY, else -1
    int address;                 //  REQUEST and REPLY, else -1
    int credit;                  //  READY: 1..1000 (1 without the frame)
    size_t body_frames;          //  frames of body at the end of the message
} cmq_mdp_layout_t;

cmq_mdp_status_t cmq_mdp_parse_frames (const cmq_mdp_frames_t *frames,
                                       cmq_mdp_layout_t *out);

//  A short human phrase for a status, for logs ("unknown header").
const char *cmq_mdp_status_str (cmq_mdp_status_t status);

//  Builders: each returns a new message starting with the empty delimiter
//  (a DEALER sends it as is; a ROUTER pushes the routing id first).
//  Body messages are taken and destroyed; *body_p is set to NULL.

//  [""][MDPC01][service][body...]
zmsg_t *cmq_mdp_client_request (const char *service, zmsg_t **body_p);

//  [""][MDPW01][READY][service] and, when credit > 1, [credit]
zmsg_t *cmq_mdp_worker_ready (const char *service, int credit);

//  [""][MDPW01][command] for HEARTBEAT and DISCONNECT
zmsg_t *cmq_mdp_worker_signal (cmq_mdpw_command_t command);

//  [""][MDPW01][REPLY][address][""][body...]; takes *address_p.
zmsg_t *cmq_mdp_worker_reply (zframe_t **address_p, zmsg_t **body_p);

#endif
