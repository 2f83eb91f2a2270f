/* kn_status_wire: the status service's routes (docs/status.md): proto <->
 * C around kn_status, acting as the session (its connection follows and
 * publishes). The route's service context is the kn_status. Follow runs on
 * a worker (it reads Postgres); unfollow and update on the network thread. */
#ifndef KN_STATUS_WIRE_H
#define KN_STATUS_WIRE_H

#include "kn_pipeline.h"

int kn_status_wire_follow(kn_req *r, char *msg, size_t cap);
int kn_status_wire_unfollow(kn_req *r, char *msg, size_t cap);
int kn_status_wire_update(kn_req *r, char *msg, size_t cap);

#endif
