/* kn_party_wire: the party service's routes (docs/parties.md): proto <-> C
 * around kn_party.h, acting as the caller's session. The route's service
 * context is the kn_parties. Every route runs on the network thread, as
 * the session's end does, so a party never outlives its member's session.
 *
 * kn_party_wire_notify is the service's notes hook (ud: the kn_out): a
 * note becomes PartyJoinRequest, PartyLeader, PartyClose, or a
 * PartyPresenceEvent leave to a member removed or a request rejected. */
#ifndef KN_PARTY_WIRE_H
#define KN_PARTY_WIRE_H

#include "kn_party.h"
#include "kn_pipeline.h"

int kn_party_wire_create(kn_req *r, char *msg, size_t cap);
int kn_party_wire_join(kn_req *r, char *msg, size_t cap);
int kn_party_wire_leave(kn_req *r, char *msg, size_t cap);
int kn_party_wire_promote(kn_req *r, char *msg, size_t cap);
int kn_party_wire_accept(kn_req *r, char *msg, size_t cap);
int kn_party_wire_remove(kn_req *r, char *msg, size_t cap);
int kn_party_wire_close(kn_req *r, char *msg, size_t cap);
int kn_party_wire_join_requests(kn_req *r, char *msg, size_t cap);
int kn_party_wire_data(kn_req *r, char *msg, size_t cap);

void kn_party_wire_notify(void *ud, const kn_party_note *note);

#endif
