/* kn_friends_wire: the friends service's routes (docs/friends.md): proto
 * <-> C around kn_friends, acting as the session's user. Worker routes;
 * their service context is a const kn_friends_deps * (kn_friends.h; NULL:
 * the defaults and no block hook): add takes its config's max_friends,
 * block tells its blocked hook. */
#ifndef KN_FRIENDS_WIRE_H
#define KN_FRIENDS_WIRE_H

#include "kn_pipeline.h"

int kn_friends_wire_add(kn_req *r, char *msg, size_t cap);
int kn_friends_wire_delete(kn_req *r, char *msg, size_t cap);
int kn_friends_wire_block(kn_req *r, char *msg, size_t cap);
int kn_friends_wire_list(kn_req *r, char *msg, size_t cap);
int kn_friends_wire_metadata_update(kn_req *r, char *msg, size_t cap);
int kn_friends_wire_of_friends_list(kn_req *r, char *msg, size_t cap);

#endif
