//  broker_trace.c - --verbose: one debug line per message the core reads
//
//  Sizes and names only, never body bytes; the routing id in hex and the
//  service name escaped, so no peer can forge or split a line (§3).

#include "broker_core_state.h"

//  What the line calls the message: its command, or "invalid".
static const char *
s_kind (const broker_input_t *input, cmq_mdp_status_t status)
{
    static const char *commands[] = { "?",     "READY",     "REQUEST",
                                      "REPLY", "HEARTBEAT", "DISCONNECT" };
    if (status != CMQ_MDP_OK)
        return "invalid";
    if (input->layout.kind == CMQ_MDP_FROM_CLIENT)
        return "REQUEST";
    return commands[input->layout.command];
}

void
broker_trace_input (const broker_input_t *input, cmq_mdp_status_t status)
{
    broker_message_t *message = input->message;
    char peer[BROKER_PEER_HEX_BYTES];
    broker_peer_hex (broker_peer_of_msg (&message->frames[0]), peer);
    char service[BROKER_NAME_LOG_BYTES] = "";
    if (status == CMQ_MDP_OK && input->layout.service >= 0) {
        zmq_msg_t *frame = broker_input_frame (input, input->layout.service);
        cmq_log_escape (zmq_msg_data (frame), zmq_msg_size (frame), service,
                        sizeof (service));
    }
    size_t bytes = 0;
    for (size_t index = 0; index < message->count; index++)
        bytes += zmq_msg_size (&message->frames[index]);
    bool is_client = input->layout.kind == CMQ_MDP_FROM_CLIENT;
    cmq_log_debug ("recv peer=%s from=%s command=%s service=%s frames=%zu "
                   "bytes=%zu",
                   peer,
                   status != CMQ_MDP_OK ? "unknown"
                   : is_client          ? "client"
                                        : "worker",
                   s_kind (input, status), service, message->count, bytes);
}
