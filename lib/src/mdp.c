//  mdp.c - Majordomo Protocol 0.1 (RFC 7/MDP) framing and validation

#include "cartmq/mdp.h"

#include <string.h>

bool
cmq_mdp_frame_is (zframe_t *frame, const char *string)
{
    size_t length = strlen (string);
    return frame && zframe_size (frame) == length &&
           memcmp (zframe_data (frame), string, length) == 0;
}

int
cmq_mdp_parse_credit (zframe_t *frame)
{
    size_t size = zframe_size (frame);
    const byte *data = zframe_data (frame);
    //  At most four digits ("1000"); no sign, space or leading zero
    //  tricks beyond what the range check rejects.
    if (size == 0 || size > 4)
        return -1;
    int value = 0;
    for (size_t index = 0; index < size; index++) {
        if (data[index] < '0' || data[index] > '9')
            return -1;
        value = value * 10 + (data[index] - '0');
    }
    if (value < 1 || value > CMQ_MAX_CREDIT)
        return -1;
    return value;
}

static bool
s_service_ok (zframe_t *frame)
{
    //  Names become C strings and hash keys: no NUL inside.
    size_t size = zframe_size (frame);
    return size > 0 && size <= CMQ_MAX_SERVICE_NAME_BYTES &&
           !memchr (zframe_data (frame), 0, size);
}

//  Client request: [service][body 1+]
static cmq_mdp_status_t
s_parse_client (zmsg_t *msg, size_t remaining, cmq_mdp_message_t *out)
{
    if (remaining == 0)
        return CMQ_MDP_NO_SERVICE;
    out->service = zmsg_next (msg);
    if (!s_service_ok (out->service))
        return CMQ_MDP_BAD_SERVICE;
    if (remaining < 2)
        return CMQ_MDP_NO_BODY;
    out->body_frames = remaining - 1;
    return CMQ_MDP_OK;
}

//  READY: [service] and optionally [credit]
static cmq_mdp_status_t
s_parse_ready (zmsg_t *msg, size_t remaining, cmq_mdp_message_t *out)
{
    if (remaining == 0)
        return CMQ_MDP_MISSING_FRAMES;
    if (remaining > 2)
        return CMQ_MDP_EXTRA_FRAMES;
    out->service = zmsg_next (msg);
    if (!s_service_ok (out->service))
        return CMQ_MDP_BAD_SERVICE;
    if (remaining == 2) {
        out->credit = cmq_mdp_parse_credit (zmsg_next (msg));
        if (out->credit < 0)
            return CMQ_MDP_BAD_CREDIT;
    }
    return CMQ_MDP_OK;
}

//  REQUEST and REPLY: [address][""][body 1+]
static cmq_mdp_status_t
s_parse_routed (zmsg_t *msg, size_t remaining, cmq_mdp_message_t *out)
{
    if (remaining < 3)
        return CMQ_MDP_MISSING_FRAMES;
    out->address = zmsg_next (msg);
    if (zframe_size (zmsg_next (msg)) != 0)
        return CMQ_MDP_NO_ENVELOPE_DELIMITER;
    out->body_frames = remaining - 2;
    return CMQ_MDP_OK;
}

static cmq_mdp_status_t
s_parse_worker (zmsg_t *msg, size_t remaining, cmq_mdp_message_t *out)
{
    if (remaining == 0)
        return CMQ_MDP_NO_COMMAND;
    zframe_t *command = zmsg_next (msg);
    remaining--;
    if (zframe_size (command) != 1)
        return CMQ_MDP_UNKNOWN_COMMAND;
    out->command = (cmq_mdpw_command_t) zframe_data (command)[0];
    switch (out->command) {
        case CMQ_MDPW_READY:
            return s_parse_ready (msg, remaining, out);
        case CMQ_MDPW_REQUEST:
        case CMQ_MDPW_REPLY:
            return s_parse_routed (msg, remaining, out);
        case CMQ_MDPW_HEARTBEAT:
        case CMQ_MDPW_DISCONNECT:
            return remaining ? CMQ_MDP_EXTRA_FRAMES : CMQ_MDP_OK;
        default:
            return CMQ_MDP_UNKNOWN_COMMAND;
    }
}

cmq_mdp_status_t
cmq_mdp_parse (zmsg_t *msg, cmq_mdp_message_t *out)
{
    assert (msg);
    assert (out);
    memset (out, 0, sizeof (*out));
    out->credit = 1;
    size_t frames = zmsg_size (msg);
    if (frames == 0)
        return CMQ_MDP_EMPTY;
    if (zframe_size (zmsg_first (msg)) != 0)
        return CMQ_MDP_NO_DELIMITER;
    if (frames < 2)
        return CMQ_MDP_NO_HEADER;
    zframe_t *header = zmsg_next (msg);
    if (cmq_mdp_frame_is (header, CMQ_MDPC_HEADER)) {
        out->kind = CMQ_MDP_FROM_CLIENT;
        return s_parse_client (msg, frames - 2, out);
    }
    if (cmq_mdp_frame_is (header, CMQ_MDPW_HEADER)) {
        out->kind = CMQ_MDP_FROM_WORKER;
        return s_parse_worker (msg, frames - 2, out);
    }
    return CMQ_MDP_UNKNOWN_HEADER;
}

const char *
cmq_mdp_status_str (cmq_mdp_status_t status)
{
    switch (status) {
        case CMQ_MDP_OK:
            return "ok";
        case CMQ_MDP_EMPTY:
            return "empty message";
        case CMQ_MDP_NO_DELIMITER:
            return "first frame is not empty";
        case CMQ_MDP_NO_HEADER:
            return "missing protocol header";
        case CMQ_MDP_UNKNOWN_HEADER:
            return "unknown protocol header";
        case CMQ_MDP_NO_SERVICE:
            return "missing service name";
        case CMQ_MDP_BAD_SERVICE:
            return "service name empty or too long";
        case CMQ_MDP_NO_BODY:
            return "missing body";
        case CMQ_MDP_NO_COMMAND:
            return "missing command";
        case CMQ_MDP_UNKNOWN_COMMAND:
            return "unknown command";
        case CMQ_MDP_MISSING_FRAMES:
            return "missing frames";
        case CMQ_MDP_EXTRA_FRAMES:
            return "unexpected extra frames";
        case CMQ_MDP_BAD_CREDIT:
            return "invalid credit frame";
        case CMQ_MDP_NO_ENVELOPE_DELIMITER:
            return "client address not followed by an empty frame";
    }
    return "unknown status";
}

static zmsg_t *
s_worker_header (cmq_mdpw_command_t command)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPW_HEADER);
    byte code = (byte) command;
    zmsg_addmem (msg, &code, 1);
    return msg;
}

static void
s_append_body (zmsg_t *msg, zmsg_t **body_p)
{
    if (!body_p || !*body_p)
        return;
    zframe_t *frame;
    while ((frame = zmsg_pop (*body_p)))
        zmsg_append (msg, &frame);
    zmsg_destroy (body_p);
}

zmsg_t *
cmq_mdp_client_request (const char *service, zmsg_t **body_p)
{
    assert (service);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, CMQ_MDPC_HEADER);
    zmsg_addstr (msg, service);
    s_append_body (msg, body_p);
    return msg;
}

zmsg_t *
cmq_mdp_worker_ready (const char *service, int credit)
{
    assert (service);
    zmsg_t *msg = s_worker_header (CMQ_MDPW_READY);
    zmsg_addstr (msg, service);
    if (credit > 1)
        zmsg_addstrf (msg, "%d", credit);
    return msg;
}

zmsg_t *
cmq_mdp_worker_signal (cmq_mdpw_command_t command)
{
    return s_worker_header (command);
}

zmsg_t *
cmq_mdp_worker_reply (zframe_t **address_p, zmsg_t **body_p)
{
    assert (address_p && *address_p);
    zmsg_t *msg = s_worker_header (CMQ_MDPW_REPLY);
    zmsg_append (msg, address_p);
    zmsg_addmem (msg, NULL, 0);
    s_append_body (msg, body_p);
    return msg;
}
