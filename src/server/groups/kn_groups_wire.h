/* kn_groups_wire: the groups service's routes (docs/groups.md): proto <-> C
 * around kn_groups, acting as the session's user. Worker routes; no
 * service context. Changes answer Ack (create answers Group); lists answer
 * GroupList, GroupUserList and UserGroupList. */
#ifndef KN_GROUPS_WIRE_H
#define KN_GROUPS_WIRE_H

#include "kn_pipeline.h"

int kn_groups_wire_create(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_update(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_delete(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_join(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_leave(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_add(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_kick(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_ban(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_promote(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_demote(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_list(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_users_list(kn_req *r, char *msg, size_t cap);
int kn_groups_wire_user_list(kn_req *r, char *msg, size_t cap);

#endif
