//  fuzz_mdp.c - libFuzzer target: the MDP parser on arbitrary frames

#include <czmq.h>

#include "cartmq/mdp.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    fuzz_input_t input = { data, size };
    zmsg_t *msg = zmsg_new ();
    size_t frames = fuzz_byte (&input) % 12;
    for (size_t index = 0; index < frames; index++) {
        size_t length;
        const uint8_t *bytes = fuzz_bytes (&input, 255, &length);
        zmsg_addmem (msg, bytes, length);
    }
    cmq_mdp_message_t parsed;
    cmq_mdp_status_t status = cmq_mdp_parse (msg, &parsed);
    assert (cmq_mdp_status_str (status));
    if (status == CMQ_MDP_OK) {
        //  What the parser vouches for must hold.
        assert (parsed.kind == CMQ_MDP_FROM_CLIENT ||
                parsed.kind == CMQ_MDP_FROM_WORKER);
        assert (parsed.credit >= 1 && parsed.credit <= CMQ_MAX_CREDIT);
        if (parsed.service)
            assert (zframe_size (parsed.service) > 0 &&
                    zframe_size (parsed.service) <= CMQ_MAX_SERVICE_NAME_BYTES);
        assert (parsed.body_frames < zmsg_size (msg));
    }
    zmsg_destroy (&msg);
    return 0;
}
