/* kn_auth_wire: the auth service's routes (logins, session refresh, resume
 * and logout) as the pipeline runs them: proto <-> C around kn_auth.
 * The service context (kn_req_service) is the `const kn_auth *`.
 * Worker routes; each answers with a Session (binding it to the caller's
 * connection, an effect) or an Ack (logout, ending the session). */
#ifndef KN_AUTH_WIRE_H
#define KN_AUTH_WIRE_H

#include "kn_pipeline.h"

int kn_auth_wire_device(kn_req *r, char *msg, size_t cap);
int kn_auth_wire_email(kn_req *r, char *msg, size_t cap);
int kn_auth_wire_custom(kn_req *r, char *msg, size_t cap);
int kn_auth_wire_refresh(kn_req *r, char *msg, size_t cap);
int kn_auth_wire_resume(kn_req *r, char *msg, size_t cap);
int kn_auth_wire_logout(kn_req *r, char *msg, size_t cap);

#endif
