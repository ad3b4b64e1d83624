//  curve.h - CurveZMQ certificates for clients, workers and the broker
//
//  Certificates are CZMQ zcert files as `cartmq keygen NAME` writes them:
//  NAME holds the public key, NAME_secret both keys (mode 0600).

#ifndef CARTMQ_CURVE_H
#define CARTMQ_CURVE_H

#include <czmq.h>
#include <stddef.h>

//  Loads a secret certificate. Fails (NULL, reason in error) if the file is
//  missing or unreadable, readable by others than its owner (group or
//  world), or holds no secret key (a public file given by mistake).
zcert_t *cmq_curve_load_secret (const char *path, char *error,
                                size_t error_size);

//  Loads a public certificate (the broker's, for --curve-server). Fails if
//  missing, unreadable or not a certificate.
zcert_t *cmq_curve_load_public (const char *path, char *error,
                                size_t error_size);

//  Makes sock a CURVE client of the server whose public cert file is
//  server_public, using our secret cert file. Returns 0, or -1 with the
//  reason in error.
int cmq_curve_setup_client (zsock_t *sock, const char *server_public,
                            const char *our_secret, char *error,
                            size_t error_size);

//  Writes NAME and NAME_secret (0600). Returns 0, or -1 with reason.
int cmq_curve_keygen (const char *name, char *error, size_t error_size);

#endif
