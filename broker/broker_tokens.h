//  broker_tokens.h - the names a REQUEST gives its worker for a request
//
//  Contract §3: the client address a REQUEST carries is a 12-byte token, a
//  slot index into this table (4 bytes) and that slot's generation (8
//  bytes). A slot's generation goes up when it is taken and again when it
//  is freed (odd while in use), so a token names one request for the
//  broker's whole life and a stale or forged one matches nothing. Finding
//  a request by its token is O(1) and allocates nothing; giving one a
//  token is amortised O(1) (the table grows only when more requests are
//  out at once than ever before).

#ifndef BROKER_TOKENS_H
#define BROKER_TOKENS_H

#include "broker_request.h"

typedef struct _broker_tokens_t broker_tokens_t;

broker_tokens_t *broker_tokens_new (void);

void broker_tokens_destroy (broker_tokens_t **self_p);

//  Gives request its token (request->token) unless it has one already.
void broker_tokens_assign (broker_tokens_t *self, broker_request_t *request);

//  The request's token names nothing from now on; its bytes stay in the
//  request, for a send still pending. Nothing if it has no token.
void broker_tokens_release (broker_tokens_t *self, broker_request_t *request);

//  The request a token names, or NULL (wrong size, stale, forged).
broker_request_t *broker_tokens_find (broker_tokens_t *self, const byte *data,
                                      size_t size);

#endif
