/* kn_party_wire: the party service's routes (docs/parties.md): proto <->
 * C around kn_party.h, acting as the caller's session. The route's service
 * context is a kn_party_wire. Every route but the matchmaker's runs on the
 * network thread, as the session's end does, so a party never outlives its
 * member's session; the matchmaker's run on API workers (the matchmaker's
 * lock is held through a pass) and check the party did not change
 * meanwhile.
 *
 * kn_party_wire_notify and kn_party_wire_changed are the service's hooks
 * (ud: the kn_party_wire): a note becomes PartyJoinRequest, PartyLeader,
 * PartyClose, or a PartyPresenceEvent leave to a member removed or a
 * request rejected; a change of members removes the party's matchmaker
 * tickets. */
#ifndef KN_PARTY_WIRE_H
#define KN_PARTY_WIRE_H

#include "kn_matchmaker.h"
#include "kn_out.h"
#include "kn_party.h"
#include "kn_pipeline.h"

typedef struct kn_party_wire {
    kn_parties *parties;
    kn_matchmaker *mm; /* NULL: party tickets are refused */
    kn_out *out;
} kn_party_wire;

int kn_party_wire_create(kn_req *r, char *msg, size_t cap);
int kn_party_wire_join(kn_req *r, char *msg, size_t cap);
int kn_party_wire_leave(kn_req *r, char *msg, size_t cap);
int kn_party_wire_promote(kn_req *r, char *msg, size_t cap);
int kn_party_wire_accept(kn_req *r, char *msg, size_t cap);
int kn_party_wire_remove(kn_req *r, char *msg, size_t cap);
int kn_party_wire_close(kn_req *r, char *msg, size_t cap);
int kn_party_wire_join_requests(kn_req *r, char *msg, size_t cap);
int kn_party_wire_data(kn_req *r, char *msg, size_t cap);
int kn_party_wire_matchmaker_add(kn_req *r, char *msg, size_t cap);
int kn_party_wire_matchmaker_remove(kn_req *r, char *msg, size_t cap);
int kn_party_wire_list(kn_req *r, char *msg, size_t cap);

/* The service calls the routes and kaos.party_* share (docs/parties.md).
 *
 * me sends data to the other members as PartyData (channel 0 reliable,
 * else 2). */
int kn_party_wire_send_data(kn_parties *ps, const kn_presence *me, const char *party_id,
                            int64_t op_code, const uint8_t *data, size_t len, bool reliable,
                            char *msg, size_t cap);
/* The leader me adds one matchmaker ticket for the party's members (req's
 * counts, query, properties and widening; its players and party_id are
 * filled here, the leader first): *id its id. The other members get
 * PartyMatchmakerTicket, and me too with tell_leader (a script's call:
 * no answer reaches its client). ABORTED "party changed; retry" when the
 * members changed meanwhile (the ticket is removed), UNAVAILABLE without a
 * matchmaker, and kn_mm_add's refusals. Any thread (an API worker). */
int kn_party_wire_ticket_add(kn_party_wire *pw, const kn_presence *me, const char *party_id,
                             kn_mm_request *req, bool tell_leader, char id[37], char *msg,
                             size_t cap);
/* The leader me removes the party's ticket; NOT_FOUND "ticket not found". */
int kn_party_wire_ticket_remove(kn_party_wire *pw, const kn_presence *me, const char *party_id,
                                const char *ticket, char *msg, size_t cap);

void kn_party_wire_notify(void *ud, const kn_party_note *note);
void kn_party_wire_changed(void *ud, const char *party_id);

#endif
