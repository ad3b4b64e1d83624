//  mdp.c - Majordomo Protocol 0.1 (RFC 7/MDP) framing and validation

#include "cartmq/mdp.h"

#include <string.h>

//  1 to 10 ASCII digits, leading zeros allowed, value 1..1000 (§3); or
//  -1. Ten digits fit in 64 bits, so the value is exact before the range
//  check: "0000000016" is 16 and "9999999999" is out of range, not wrapped.
static int
s_credit (cmq_mdp_bytes_t frame)
{
    if (frame.size == 0 || frame.size > CMQ_MAX_CREDIT_DIGITS)
        return -1;
    uint64_t value = 0;
    for (size_t index = 0; index < frame.size; index++) {
        if (frame.data[index] < '0' || frame.data[index] > '9')
            return -1;
        value = value * 10 + (uint64_t) (frame.data[index] - '0');
    }
    if (value < 1 || value > CMQ_MAX_CREDIT)
        return -1;
    return (int) value;
}

static cmq_mdp_bytes_t
s_bytes_of (zframe_t *frame)
{
    cmq_mdp_bytes_t bytes = { zframe_data (frame), zframe_size (frame) };
    return bytes;
}

static bool
s_is (cmq_mdp_bytes_t frame, const char *string)
{
    size_t length = strlen (string);
    return frame.size == length && memcmp (frame.data, string, length) == 0;
}

static bool
s_service_ok (cmq_mdp_bytes_t frame)
{
    //  Names become C strings and hash keys: no NUL inside.
    return frame.size > 0 && frame.size <= CMQ_MAX_SERVICE_NAME_BYTES &&
           !memchr (frame.data, 0, frame.size);
}

//  Client request: [""][MDPC01][service][body 1+]
static cmq_mdp_status_t
s_parse_client (const cmq_mdp_frames_t *frames, cmq_mdp_layout_t *out)
{
    if (frames->count < 3)
        return CMQ_MDP_NO_SERVICE;
    out->service = 2;
    if (!s_service_ok (frames->head[2]))
        return CMQ_MDP_BAD_SERVICE;
    if (frames->count < 4)
        return CMQ_MDP_NO_BODY;
    out->body_frames = frames->count - 3;
    return CMQ_MDP_OK;
}

//  READY: [""][MDPW01][0x01][service] and optionally [credit]
static cmq_mdp_status_t
s_parse_ready (const cmq_mdp_frames_t *frames, cmq_mdp_layout_t *out)
{
    if (frames->count < 4)
        return CMQ_MDP_MISSING_FRAMES;
    if (frames->count > 5)
        return CMQ_MDP_EXTRA_FRAMES;
    out->service = 3;
    if (!s_service_ok (frames->head[3]))
        return CMQ_MDP_BAD_SERVICE;
    if (frames->count == 5) {
        out->credit = s_credit (frames->head[4]);
        if (out->credit < 0)
            return CMQ_MDP_BAD_CREDIT;
    }
    return CMQ_MDP_OK;
}

//  REQUEST and REPLY: [""][MDPW01][command][address][""][body 1+]
static cmq_mdp_status_t
s_parse_routed (const cmq_mdp_frames_t *frames, cmq_mdp_layout_t *out)
{
    if (frames->count < 6)
        return CMQ_MDP_MISSING_FRAMES;
    out->address = 3;
    if (frames->head[4].size != 0)
        return CMQ_MDP_NO_ENVELOPE_DELIMITER;
    out->body_frames = frames->count - 5;
    return CMQ_MDP_OK;
}

static cmq_mdp_status_t
s_parse_worker (const cmq_mdp_frames_t *frames, cmq_mdp_layout_t *out)
{
    if (frames->count < 3)
        return CMQ_MDP_NO_COMMAND;
    if (frames->head[2].size != 1)
        return CMQ_MDP_UNKNOWN_COMMAND;
    out->command = (cmq_mdpw_command_t) frames->head[2].data[0];
    switch (out->command) {
        case CMQ_MDPW_READY:
            return s_parse_ready (frames, out);
        case CMQ_MDPW_REQUEST:
        case CMQ_MDPW_REPLY:
            return s_parse_routed (frames, out);
        case CMQ_MDPW_HEARTBEAT:
        case CMQ_MDPW_DISCONNECT:
            return frames->count > 3 ? CMQ_MDP_EXTRA_FRAMES : CMQ_MDP_OK;
        default:
            return CMQ_MDP_UNKNOWN_COMMAND;
    }
}

cmq_mdp_status_t
cmq_mdp_parse_frames (const cmq_mdp_frames_t *frames, cmq_mdp_layout_t *out)
{
    assert (frames);
    assert (out);
    memset (out, 0, sizeof (*out));
    out->service = -1;
    out->address = -1;
    out->credit = 1;
    if (frames->count == 0)
        return CMQ_MDP_EMPTY;
    if (frames->head[0].size != 0)
        return CMQ_MDP_NO_DELIMITER;
    if (frames->count < 2)
        return CMQ_MDP_NO_HEADER;
    if (s_is (frames->head[1], CMQ_MDPC_HEADER)) {
        out->kind = CMQ_MDP_FROM_CLIENT;
        return s_parse_client (frames, out);
    }
    if (s_is (frames->head[1], CMQ_MDPW_HEADER)) {
        out->kind = CMQ_MDP_FROM_WORKER;
        return s_parse_worker (frames, out);
    }
    return CMQ_MDP_UNKNOWN_HEADER;
}

cmq_mdp_status_t
cmq_mdp_parse (zmsg_t *msg, cmq_mdp_message_t *out)
{
    assert (msg);
    assert (out);
    cmq_mdp_frames_t frames;
    memset (&frames, 0, sizeof (frames));
    zframe_t *head[CMQ_MDP_HEAD_FRAMES] = { NULL };
    frames.count = zmsg_size (msg);
    zframe_t *frame = zmsg_first (msg);
    for (size_t index = 0; frame && index < CMQ_MDP_HEAD_FRAMES; index++) {
        head[index] = frame;
        frames.head[index] = s_bytes_of (frame);
        frame = zmsg_next (msg);
    }
    cmq_mdp_layout_t layout;
    cmq_mdp_status_t status = cmq_mdp_parse_frames (&frames, &layout);
    memset (out, 0, sizeof (*out));
    out->kind = layout.kind;
    out->command = layout.command;
    out->service = layout.service >= 0 ? head[layout.service] : NULL;
    out->address = layout.address >= 0 ? head[layout.address] : NULL;
    out->credit = layout.credit;
    out->body_frames = layout.body_frames;
    return status;
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
