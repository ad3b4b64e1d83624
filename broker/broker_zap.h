//  broker_zap.h - the broker's ZAP handler: CURVE keys in, key as User-Id
//
//  An actor bound on inproc://zeromq.zap.01 (RFC 27) that admits a CURVE
//  peer whose public key is on its allow-list and answers with that key,
//  Z85-encoded, as the ZAP User-Id. libzmq then attaches it to every
//  message the peer sends, as the "User-Id" property
//  (zmq_msg_gets (3)), which is how the broker checks each message
//  against the allow-list of the moment (revocation, contract §6). CZMQ's
//  zauth answers with an empty User-Id, so it cannot serve here.
//
//  Commands on the actor's pipe:
//      KEYS key...   replace the allow-list (Z85 public keys); signals 0,
//                    or 1 if the handler could not bind its endpoint
//      $TERM         end

#ifndef BROKER_ZAP_H
#define BROKER_ZAP_H

#include <czmq.h>

#define BROKER_ZAP_ENDPOINT "inproc://zeromq.zap.01"

//  zactor_fn: zactor_new (broker_zap_actor, NULL). Binds the ZAP endpoint
//  before it signals, so no CURVE handshake can happen without it.
void broker_zap_actor (zsock_t *pipe, void *args);

#endif
