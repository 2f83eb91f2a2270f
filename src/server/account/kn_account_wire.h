/* kn_account_wire: the account service's routes (docs/accounts.md): proto
 * <-> C around kn_account, always for the session's own user. Worker
 * routes; no service context. */
#ifndef KN_ACCOUNT_WIRE_H
#define KN_ACCOUNT_WIRE_H

#include "kn_pipeline.h"

int kn_account_wire_get(kn_req *r, char *msg, size_t cap);
int kn_account_wire_update(kn_req *r, char *msg, size_t cap);
int kn_account_wire_users_get(kn_req *r, char *msg, size_t cap);
int kn_account_wire_delete(kn_req *r, char *msg, size_t cap);
int kn_account_wire_link_device(kn_req *r, char *msg, size_t cap);
int kn_account_wire_link_email(kn_req *r, char *msg, size_t cap);
int kn_account_wire_link_custom(kn_req *r, char *msg, size_t cap);
int kn_account_wire_unlink_device(kn_req *r, char *msg, size_t cap);
int kn_account_wire_unlink_email(kn_req *r, char *msg, size_t cap);
int kn_account_wire_unlink_custom(kn_req *r, char *msg, size_t cap);

#endif
