/* kn_session_wire: the connection-level routes: Ping (answered with the
 * server's clock on the network thread). No service context. */
#ifndef KN_SESSION_WIRE_H
#define KN_SESSION_WIRE_H

#include "kn_pipeline.h"

int kn_session_wire_ping(kn_req *r, char *msg, size_t cap);

#endif
