/* kn_matchmaker_wire: the matchmaker's routes (MatchmakerAdd answers
 * MatchmakerTicket, MatchmakerRemove answers Ack; their service context is
 * the kn_matchmaker) and the MatchmakerMatched each player of a formed
 * group receives. The routes run on API workers: a ticket is memory, but
 * the matchmaker's lock is held while a pass runs, and a network thread
 * must not wait for that. */
#ifndef KN_MATCHMAKER_WIRE_H
#define KN_MATCHMAKER_WIRE_H

#include "kn_matchmaker.h"
#include "kn_out.h"
#include "kn_pipeline.h"

int kn_matchmaker_wire_add(kn_req *r, char *msg, size_t cap);
/* q's properties into props (KN_MM_PROPS_MAX), its widening rules into
 * widen (KN_MM_WIDEN_MAX), and the rest of req (players and party_id left
 * to the caller). INVALID_ARGUMENT for too many or too long properties or
 * rules (kn_mm_add checks the rest). */
int kn_matchmaker_wire_request(const Kaos__V1__MatchmakerAdd *q, kn_mm_prop *props,
                               kn_mm_widen *widen, kn_mm_request *req, char *msg, size_t cap);
int kn_matchmaker_wire_remove(kn_req *r, char *msg, size_t cap);
/* kn_mm_add for a session's ticket (req->players[0], bound to ss on this
 * node: its conn), undone with UNAUTHENTICATED "session has ended" when
 * the session ended meanwhile (its unbind, which removes its tickets, has
 * passed). The route's and kaos.matchmaker_add's one way in. Any thread. */
int kn_matchmaker_wire_add_session(kn_matchmaker *mm, kn_sessions *ss, const kn_mm_request *req,
                                   char id[37], char *msg, size_t cap);

/* Sends MatchmakerMatched to every player of the group (its session, on
 * whichever thread owns it): match_id (an authoritative match) or token (a
 * relayed match's). Any thread. KN_OK when every message was handed over;
 * a player who has gone meanwhile is skipped. */
int kn_matchmaker_wire_matched(kn_out *out, kn_mm_ticket *const *tickets, size_t n,
                               const char *match_id, const char *token);

#endif
