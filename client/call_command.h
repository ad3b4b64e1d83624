//  call_command.h - `cartmq call SERVICE [BODY_JSON]` (contract §8)
//
//  Any MDP service from the shell, as grpcurl is for gRPC: the body given
//  as JSON goes out as one msgpack frame (json_pack.h), no body as one
//  empty frame; the reply is printed as one line of JSON: a frame that
//  holds exactly one msgpack value as that value, any other frame as a
//  JSON string of its bytes, and a reply of other than one frame as a JSON
//  array with an entry per frame. Exit 0 when a reply came (whatever it
//  says), 3 when none did, 2 on bad usage (bad JSON included).
//
//  The body is sent exactly as given on every attempt: a mutation of the
//  cart service should carry its own request_id (§4), or run with
//  --retries 0, since the command cannot know what the service does with
//  a resend.

#ifndef CARTMQ_CALL_COMMAND_H
#define CARTMQ_CALL_COMMAND_H

#include "commands.h"

#include <czmq.h>

int call_command_run (commands_globals_t *globals, int argc, char **argv);

//  Writes reply's frames as one line of JSON, as above.
void call_command_print_reply (FILE *out, zmsg_t *reply);

#endif
