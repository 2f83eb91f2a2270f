/* kn_notify_wire: the notifications service's routes
 * (docs/notifications.md): list and delete the session user's stored
 * notifications. There is no send route: clients cannot send
 * notifications (as in Nakama); server code calls kn_notify_send. Worker
 * routes; no service context. */
#ifndef KN_NOTIFY_WIRE_H
#define KN_NOTIFY_WIRE_H

#include "kn_pipeline.h"

int kn_notify_wire_list(kn_req *r, char *msg, size_t cap);
int kn_notify_wire_delete(kn_req *r, char *msg, size_t cap);

#endif
