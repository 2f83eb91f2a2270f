/* party_wire: the party routes and notes (kn_party_wire.h). Create and an
 * open join answer Party; list answers PartyJoinRequest; data has no
 * answer (errors still come back); the rest answer Ack. */
#include "kn_party_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_matchmaker_wire.h"

#include <stdio.h>
#include <string.h>

static kn_parties *parties_of(kn_req *r)
{
    return ((kn_party_wire *)kn_req_service(r))->parties;
}

/* The caller's session as a presence on a stream. */
static kn_presence caller_presence(kn_req *r)
{
    const kn_caller *c = kn_req_caller(r);
    return kn_presence_of(c->conn, c->user_id, c->session_id, c->username);
}

static void to_proto(const kn_presence *p, Kaos__V1__UserPresence *out)
{
    kaos__v1__user_presence__init(out);
    kn_entity_to_proto(&kn_presence_entity, p, out);
}

/* A presence named in a request: its user and session ids, required. */
static int named(const Kaos__V1__UserPresence *p, char *msg, size_t cap)
{
    if (!p || !p->user_id || !*p->user_id || !p->session_id || !*p->session_id)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "presence needs a user id and a session id");
    return KN_OK;
}

static int party_msg(const kn_party_view *v, Kaos__V1__Party *out, Kaos__V1__UserPresence *leader,
                     Kaos__V1__UserPresence ***pp);

static int reply_party(kn_req *r, const kn_party_view *v, const kn_presence *self)
{
    Kaos__V1__UserPresence **pp = NULL, me, leader;
    Kaos__V1__Party out;
    int rc = party_msg(v, &out, &leader, &pp);
    if (rc) return rc;
    to_proto(self, &me);
    out.self = &me;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY;
    env.party = &out;
    rc = kn_req_reply(r, &env);
    kn_free(pp);
    return rc;
}

/* Fills out (and the presences it points to, *pp: kn_free) from v. */
static int party_msg(const kn_party_view *v, Kaos__V1__Party *out, Kaos__V1__UserPresence *leader,
                     Kaos__V1__UserPresence ***pp)
{
    int rc = kn_entity_to_proto_list(&kn_presence_entity, v->members, sizeof *v->members,
                                     v->n_members, (void ***)pp);
    if (rc) return rc;
    to_proto(&v->leader, leader);
    kaos__v1__party__init(out);
    out->party_id = (char *)v->party_id;
    out->open = v->open;
    out->hidden = v->hidden;
    out->max_size = v->max_size;
    out->label = (char *)v->label;
    out->leader = leader;
    out->n_presences = v->n_members;
    out->presences = *pp;
    return KN_OK;
}

int kn_party_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyListRequest *q = kn_req_msg(r)->party_list_request;
    kn_party_view *views = NULL;
    size_t n = 0;
    int rc = kn_party_list(parties_of(r), q->query, q->limit, &views, &n, msg, cap);
    if (rc) return rc;
    Kaos__V1__Party *parties = kn_calloc(n ? n : 1, sizeof *parties);
    Kaos__V1__Party **pps = kn_calloc(n ? n : 1, sizeof *pps);
    Kaos__V1__UserPresence *leaders = kn_calloc(n ? n : 1, sizeof *leaders);
    Kaos__V1__UserPresence ***members = kn_calloc(n ? n : 1, sizeof *members);
    if (!parties || !pps || !leaders || !members) rc = KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < n; i++) {
        rc = party_msg(&views[i], &parties[i], &leaders[i], &members[i]);
        pps[i] = &parties[i];
    }
    if (rc == KN_OK) {
        Kaos__V1__PartyList out = KAOS__V1__PARTY_LIST__INIT;
        out.n_parties = n;
        out.parties = pps;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_LIST;
        env.party_list = &out;
        rc = kn_req_reply(r, &env);
    }
    for (size_t i = 0; members && i < n; i++)
        kn_free(members[i]);
    kn_free(members);
    kn_free(leaders);
    kn_free(pps);
    kn_free(parties);
    kn_party_views_free(views, n);
    if (rc == KN_ERR_NOMEM) return kn_err_msg(rc, msg, cap, "out of memory");
    return rc;
}

int kn_party_wire_create(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyCreate *q = kn_req_msg(r)->party_create;
    kn_presence me = caller_presence(r);
    kn_party_config cfg = {
        .open = q->open, .max_size = q->max_size, .label = q->label, .hidden = q->hidden};
    kn_party_view v;
    int rc = kn_party_create(parties_of(r), &me, &cfg, &v, msg, cap);
    if (rc) return rc;
    rc = reply_party(r, &v, &me);
    kn_free(v.members);
    return rc;
}

int kn_party_wire_join(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyJoin *q = kn_req_msg(r)->party_join;
    kn_presence me = caller_presence(r);
    kn_party_view v;
    memset(&v, 0, sizeof v);
    bool pending = false;
    int rc = kn_party_join(parties_of(r), &me, q->party_id, &pending, &v, msg, cap);
    if (rc) return rc;
    if (pending) return kn_req_ack(r);
    rc = reply_party(r, &v, &me);
    kn_free(v.members);
    return rc;
}

int kn_party_wire_leave(kn_req *r, char *msg, size_t cap)
{
    kn_presence me = caller_presence(r);
    int rc = kn_party_leave(parties_of(r), &me, kn_req_msg(r)->party_leave->party_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_party_wire_promote(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyPromote *q = kn_req_msg(r)->party_promote;
    kn_presence me = caller_presence(r);
    int rc = named(q->presence, msg, cap);
    if (rc == KN_OK)
        rc = kn_party_promote(parties_of(r), &me, q->party_id, q->presence->user_id,
                              q->presence->session_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_party_wire_accept(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyAccept *q = kn_req_msg(r)->party_accept;
    kn_presence me = caller_presence(r);
    int rc = named(q->presence, msg, cap);
    if (rc == KN_OK)
        rc = kn_party_accept(parties_of(r), &me, q->party_id, q->presence->user_id,
                             q->presence->session_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_party_wire_remove(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyRemove *q = kn_req_msg(r)->party_remove;
    kn_presence me = caller_presence(r);
    int rc = named(q->presence, msg, cap);
    if (rc == KN_OK)
        rc = kn_party_remove(parties_of(r), &me, q->party_id, q->presence->user_id,
                             q->presence->session_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_party_wire_close(kn_req *r, char *msg, size_t cap)
{
    kn_presence me = caller_presence(r);
    int rc = kn_party_close(parties_of(r), &me, kn_req_msg(r)->party_close->party_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

/* A PartyJoinRequest of the n presences in list. */
static int join_request_env(const char *party_id, const kn_presence *list, size_t n,
                            Kaos__V1__PartyJoinRequest *out, kn_envelope *env)
{
    Kaos__V1__UserPresence **pp = NULL;
    int rc = kn_entity_to_proto_list(&kn_presence_entity, list, sizeof *list, n, (void ***)&pp);
    if (rc) return rc;
    kaos__v1__party_join_request__init(out);
    out->party_id = (char *)party_id;
    out->n_presences = n;
    out->presences = pp;
    *env = (kn_envelope)KN_ENVELOPE_INIT;
    env->message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_JOIN_REQUEST;
    env->party_join_request = out;
    return KN_OK;
}

int kn_party_wire_join_requests(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyJoinRequestList *q = kn_req_msg(r)->party_join_request_list;
    kn_presence me = caller_presence(r);
    kn_presence *list = NULL;
    size_t n = 0;
    int rc = kn_party_requests(parties_of(r), &me, q->party_id, &list, &n, msg, cap);
    Kaos__V1__PartyJoinRequest out;
    kn_envelope env;
    if (rc == KN_OK && (rc = join_request_env(q->party_id, list, n, &out, &env)) == KN_OK) {
        rc = kn_req_reply(r, &env);
        kn_free(out.presences);
    }
    kn_free(list);
    return rc;
}

int kn_party_wire_send_data(kn_parties *ps, const kn_presence *me, const char *party_id,
                            int64_t op_code, const uint8_t *data, size_t len, bool reliable,
                            char *msg, size_t cap)
{
    Kaos__V1__UserPresence sender;
    to_proto(me, &sender);
    Kaos__V1__PartyData d = KAOS__V1__PARTY_DATA__INIT;
    d.party_id = (char *)party_id;
    d.presence = &sender;
    d.op_code = op_code;
    d.data = (ProtobufCBinaryData){len, (uint8_t *)data};
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_DATA;
    env.party_data = &d;
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc = kn_envelope_encode(&env, &bytes, &n);
    if (rc) return kn_err_msg(rc, msg, cap, "out of memory");
    rc = kn_party_send(ps, me, party_id, bytes, n, reliable, msg, cap);
    kn_free(bytes);
    return rc;
}

int kn_party_wire_data(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyDataSend *q = kn_req_msg(r)->party_data_send;
    kn_presence me = caller_presence(r);
    return kn_party_wire_send_data(parties_of(r), &me, q->party_id, q->op_code, q->data.data,
                                   q->data.len, q->reliable, msg, cap);
}

void kn_party_wire_changed(void *ud, const char *party_id)
{
    kn_party_wire *pw = ud;
    if (pw->mm) kn_mm_remove_session(pw->mm, party_id); /* never waits for a pass */
}

/* PartyMatchmakerTicket to the members: all but the leader `me` (the
 * wire answers it), or all of them (tell_leader). Best effort. */
static void tell_ticket(kn_party_wire *pw, const kn_presence *me, const char *party_id,
                        const char *id, bool tell_leader)
{
    Kaos__V1__PartyMatchmakerTicket t = KAOS__V1__PARTY_MATCHMAKER_TICKET__INIT;
    t.party_id = (char *)party_id;
    t.ticket = (char *)id;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_MATCHMAKER_TICKET;
    env.party_matchmaker_ticket = &t;
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (kn_envelope_encode(&env, &bytes, &len) == KN_OK) {
        kn_party_send(pw->parties, me, party_id, bytes, len, true, NULL, 0);
        if (tell_leader) kn_out_send(pw->out, &me->conn, 1, KN_CHANNEL_CONTROL, bytes, len, true);
    }
    kn_free(bytes);
}

/* The members of v as the ticket's players, the leader first. */
static void players_of(const kn_party_view *v, kn_mm_player *players)
{
    for (size_t i = 0, k = 1; i < v->n_members; i++) {
        const kn_presence *m = &v->members[i];
        kn_mm_player *p = &players[m->conn == v->leader.conn ? 0 : k++];
        *p = (kn_mm_player){.conn = m->conn};
        snprintf(p->user_id, sizeof p->user_id, "%s", m->user_id);
        snprintf(p->session_id, sizeof p->session_id, "%s", m->session_id);
        snprintf(p->username, sizeof p->username, "%s", m->username);
    }
}

int kn_party_wire_ticket_add(kn_party_wire *pw, const kn_presence *me, const char *party_id,
                             kn_mm_request *req, bool tell_leader, char id[37], char *msg,
                             size_t cap)
{
    if (!pw->mm) return kn_err_msg(KN_ERR_UNAVAILABLE, msg, cap, "matchmaker unavailable");
    kn_party_view v;
    int rc = kn_party_get(pw->parties, party_id, &v, msg, cap);
    if (rc) return rc;
    const char *verb = "add matchmaker tickets";
    rc = kn_party_check_leader(pw->parties, me, party_id, v.version, verb, msg, cap);
    kn_mm_player *players = kn_calloc(v.n_members, sizeof *players);
    if (rc == KN_OK && !players) rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    if (rc == KN_OK) {
        players_of(&v, players);
        req->players = players;
        req->n_players = v.n_members;
        req->party_id = party_id;
        rc = kn_mm_add(pw->mm, req, id, msg, cap);
        req->players = NULL;
        req->n_players = 0;
    }
    /* The members may have changed while this ran on a worker: the change
     * removed the party's tickets before this one existed, so it goes too. */
    if (rc == KN_OK &&
        kn_party_check_leader(pw->parties, me, party_id, v.version, verb, msg, cap)) {
        kn_mm_remove_session(pw->mm, party_id);
        rc = kn_err_msg(KN_ERR_ABORTED, msg, cap, "party changed; retry");
    }
    if (rc == KN_OK) tell_ticket(pw, me, party_id, id, tell_leader);
    kn_free(players);
    kn_free(v.members);
    return rc;
}

int kn_party_wire_matchmaker_add(kn_req *r, char *msg, size_t cap)
{
    kn_party_wire *pw = kn_req_service(r);
    Kaos__V1__PartyMatchmakerAdd *q = kn_req_msg(r)->party_matchmaker_add;
    if (!pw->mm) return kn_err_msg(KN_ERR_UNAVAILABLE, msg, cap, "matchmaker unavailable");
    if (!q->ticket) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "ticket is required");
    kn_presence me = caller_presence(r);
    kn_mm_prop props[KN_MM_PROPS_MAX];
    kn_mm_widen widen[KN_MM_WIDEN_MAX];
    kn_mm_request req;
    char id[37] = "";
    int rc = kn_matchmaker_wire_request(q->ticket, props, widen, &req, msg, cap);
    if (rc == KN_OK) rc = kn_party_wire_ticket_add(pw, &me, q->party_id, &req, false, id, msg, cap);
    if (rc) return rc;
    Kaos__V1__PartyMatchmakerTicket t = KAOS__V1__PARTY_MATCHMAKER_TICKET__INIT;
    t.party_id = q->party_id;
    t.ticket = id;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_MATCHMAKER_TICKET;
    env.party_matchmaker_ticket = &t;
    return kn_req_reply(r, &env);
}

int kn_party_wire_ticket_remove(kn_party_wire *pw, const kn_presence *me, const char *party_id,
                                const char *ticket, char *msg, size_t cap)
{
    if (!pw->mm) return kn_err_msg(KN_ERR_UNAVAILABLE, msg, cap, "matchmaker unavailable");
    kn_party_view v;
    int rc = kn_party_get(pw->parties, party_id, &v, msg, cap);
    if (rc) return rc;
    rc = kn_party_check_leader(pw->parties, me, party_id, v.version, "remove matchmaker tickets",
                               msg, cap);
    kn_free(v.members);
    /* Owned by the party's id (kn_mm_remove): another party's ticket is not found. */
    return rc ? rc : kn_mm_remove(pw->mm, ticket, party_id, msg, cap);
}

int kn_party_wire_matchmaker_remove(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__PartyMatchmakerRemove *q = kn_req_msg(r)->party_matchmaker_remove;
    kn_presence me = caller_presence(r);
    int rc = kn_party_wire_ticket_remove(kn_req_service(r), &me, q->party_id, q->ticket, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

/* An accepted requester learns the party: a PartyPresenceEvent joining
 * every member (itself included), then its leader. */
static void notify_accepted(kn_out *out, const kn_party_note *note)
{
    Kaos__V1__UserPresence **pp = NULL;
    if (kn_entity_to_proto_list(&kn_presence_entity, note->members, sizeof *note->members,
                                note->n_members, (void ***)&pp))
        return;
    Kaos__V1__PartyPresenceEvent ev = KAOS__V1__PARTY_PRESENCE_EVENT__INIT;
    ev.party_id = (char *)note->party_id;
    ev.n_joins = note->n_members;
    ev.joins = pp;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_PRESENCE;
    env.party_presence = &ev;
    for (size_t i = 0; i < note->n_to; i++)
        kn_out_send_env(out, note->to[i], &env);
    kn_free(pp);
    Kaos__V1__UserPresence p;
    to_proto(note->presence, &p);
    Kaos__V1__PartyLeader leader = KAOS__V1__PARTY_LEADER__INIT;
    leader.party_id = (char *)note->party_id;
    leader.presence = &p;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_LEADER;
    env.party_leader = &leader;
    for (size_t i = 0; i < note->n_to; i++)
        kn_out_send_env(out, note->to[i], &env);
}

void kn_party_wire_notify(void *ud, const kn_party_note *note)
{
    kn_out *out = ((kn_party_wire *)ud)->out;
    kn_envelope env = KN_ENVELOPE_INIT;
    Kaos__V1__UserPresence p;
    if (note->presence) to_proto(note->presence, &p);
    Kaos__V1__PartyLeader leader = KAOS__V1__PARTY_LEADER__INIT;
    Kaos__V1__PartyClose close = KAOS__V1__PARTY_CLOSE__INIT;
    Kaos__V1__PartyJoinRequest request;
    Kaos__V1__PartyPresenceEvent gone = KAOS__V1__PARTY_PRESENCE_EVENT__INIT;
    Kaos__V1__UserPresence *leaves[1] = {&p};
    switch (note->kind) {
    case KN_PARTY_NOTE_JOIN_REQUEST:
        if (join_request_env(note->party_id, note->presence, 1, &request, &env)) return;
        break;
    case KN_PARTY_NOTE_LEADER:
        leader.party_id = (char *)note->party_id;
        leader.presence = &p;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_LEADER;
        env.party_leader = &leader;
        break;
    case KN_PARTY_NOTE_CLOSE:
        close.party_id = (char *)note->party_id;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_CLOSE;
        env.party_close = &close;
        break;
    case KN_PARTY_NOTE_ACCEPTED:
        notify_accepted(out, note);
        return;
    case KN_PARTY_NOTE_REMOVED:
        gone.party_id = (char *)note->party_id;
        gone.n_leaves = 1;
        gone.leaves = leaves;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_PRESENCE;
        env.party_presence = &gone;
        break;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (kn_envelope_encode(&env, &bytes, &len) == KN_OK)
        kn_out_send(out, note->to, note->n_to, KN_CHANNEL_CONTROL, bytes, len, true);
    if (note->kind == KN_PARTY_NOTE_JOIN_REQUEST) kn_free(request.presences);
    kn_free(bytes);
}
