/* matchmaker_wire: the matchmaker's routes and its MatchmakerMatched
 * (kn_matchmaker_wire.h). A ticket's players are the caller's session. */
#include "kn_matchmaker_wire.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"

#include <stdio.h>
#include <string.h>

static void caller_player(kn_req *r, kn_mm_player *p)
{
    const kn_caller *c = kn_req_caller(r);
    *p = (kn_mm_player){.conn = c->conn};
    snprintf(p->user_id, sizeof p->user_id, "%s", c->user_id);
    snprintf(p->session_id, sizeof p->session_id, "%s", c->session_id);
    snprintf(p->username, sizeof p->username, "%s", c->username);
}

int kn_matchmaker_wire_request(const Kaos__V1__MatchmakerAdd *q, kn_mm_prop *props,
                               kn_mm_widen *widen, kn_mm_request *req, char *msg, size_t cap)
{
    if (q->n_widen > KN_MM_WIDEN_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "widen: at most %d rules",
                          KN_MM_WIDEN_MAX);
    for (size_t i = 0; i < q->n_widen; i++) {
        const Kaos__V1__MatchmakerWiden *w = q->widen[i];
        if (strlen(w->property) > KN_MM_PROP_NAME_MAX)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "widen %zu: a property name is 1-%d bytes", i, KN_MM_PROP_NAME_MAX);
        widen[i] = (kn_mm_widen){.step = w->step, .max = w->max};
        snprintf(widen[i].property, sizeof widen[i].property, "%s", w->property);
    }
    size_t n = q->n_string_properties + q->n_numeric_properties;
    if (n > KN_MM_PROPS_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "more than %d properties",
                          KN_MM_PROPS_MAX);
    size_t k = 0;
    for (size_t i = 0; i < q->n_string_properties; i++, k++) {
        const char *name = q->string_properties[i]->key, *v = q->string_properties[i]->value;
        if (strlen(name) > KN_MM_PROP_NAME_MAX || strlen(v) > KN_MM_PROP_VALUE_MAX)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "property names are 1-%d bytes, string values up to %d",
                              KN_MM_PROP_NAME_MAX, KN_MM_PROP_VALUE_MAX);
        props[k] = (kn_mm_prop){0};
        snprintf(props[k].name, sizeof props[k].name, "%s", name);
        snprintf(props[k].str, sizeof props[k].str, "%s", v);
    }
    for (size_t i = 0; i < q->n_numeric_properties; i++, k++) {
        const char *name = q->numeric_properties[i]->key;
        if (strlen(name) > KN_MM_PROP_NAME_MAX)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "property names are 1-%d bytes",
                              KN_MM_PROP_NAME_MAX);
        props[k] = (kn_mm_prop){.is_num = true, .num = q->numeric_properties[i]->value};
        snprintf(props[k].name, sizeof props[k].name, "%s", name);
    }
    *req = (kn_mm_request){.query = q->query,
                           .min_count = q->min_count,
                           .max_count = q->max_count,
                           .count_multiple = q->count_multiple,
                           .props = props,
                           .n_props = n,
                           .widen = widen,
                           .n_widen = q->n_widen};
    return KN_OK;
}

int kn_matchmaker_wire_add_session(kn_matchmaker *mm, kn_sessions *ss, const kn_mm_request *req,
                                   char id[37], char *msg, size_t cap)
{
    const kn_mm_player *me = &req->players[0];
    int rc = kn_mm_add(mm, req, id, msg, cap);
    if (rc) return rc;
    /* The session may have ended while this ran on a worker: then its
     * unbind has passed, and the ticket would outlive it. */
    kn_conn_id now;
    if (kn_sessions_find(ss, me->user_id, me->session_id, &now, NULL, 0) || now != me->conn) {
        kn_mm_remove(mm, id, me->session_id, NULL, 0);
        return kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "session has ended");
    }
    return KN_OK;
}

int kn_matchmaker_wire_add(kn_req *r, char *msg, size_t cap)
{
    kn_mm_prop props[KN_MM_PROPS_MAX];
    kn_mm_widen widen[KN_MM_WIDEN_MAX];
    kn_mm_request req;
    int rc =
        kn_matchmaker_wire_request(kn_req_msg(r)->matchmaker_add, props, widen, &req, msg, cap);
    if (rc) return rc;
    kn_mm_player me;
    caller_player(r, &me);
    req.players = &me;
    req.n_players = 1;
    char id[37];
    rc = kn_matchmaker_wire_add_session(kn_req_service(r), kn_req_sessions(r), &req, id, msg, cap);
    if (rc) return rc;
    Kaos__V1__MatchmakerTicket t = KAOS__V1__MATCHMAKER_TICKET__INIT;
    t.ticket = id;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCHMAKER_TICKET;
    env.matchmaker_ticket = &t;
    return kn_req_reply(r, &env);
}

int kn_matchmaker_wire_remove(kn_req *r, char *msg, size_t cap)
{
    const char *id = kn_req_msg(r)->matchmaker_remove->ticket;
    int rc = kn_mm_remove(kn_req_service(r), id, kn_req_caller(r)->session_id, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

/* --- MatchmakerMatched ------------------------------------------------------------ */

/* One user's entry; its strings point into the ticket (alive meanwhile). */
typedef struct user_msg {
    Kaos__V1__MatchmakerUser u;
    Kaos__V1__Presence p;
    Kaos__V1__MatchmakerUser__StringPropertiesEntry s[KN_MM_PROPS_MAX];
    Kaos__V1__MatchmakerUser__NumericPropertiesEntry d[KN_MM_PROPS_MAX];
    Kaos__V1__MatchmakerUser__StringPropertiesEntry *sp[KN_MM_PROPS_MAX];
    Kaos__V1__MatchmakerUser__NumericPropertiesEntry *dp[KN_MM_PROPS_MAX];
} user_msg;

static void user_fill(user_msg *m, const kn_mm_ticket *t, const kn_mm_player *pl)
{
    kaos__v1__matchmaker_user__init(&m->u);
    kaos__v1__presence__init(&m->p);
    m->p.user_id = (char *)pl->user_id;
    m->p.session_id = (char *)pl->session_id;
    m->p.username = (char *)pl->username;
    m->u.presence = &m->p;
    m->u.party_id = (char *)t->party_id;
    m->u.string_properties = m->sp;
    m->u.numeric_properties = m->dp;
    for (size_t i = 0; i < t->n_props; i++) {
        const kn_mm_prop *p = &t->props[i];
        if (p->is_num) {
            kaos__v1__matchmaker_user__numeric_properties_entry__init(
                &m->d[m->u.n_numeric_properties]);
            m->d[m->u.n_numeric_properties].key = (char *)p->name;
            m->d[m->u.n_numeric_properties].value = p->num;
            m->dp[m->u.n_numeric_properties] = &m->d[m->u.n_numeric_properties];
            m->u.n_numeric_properties++;
        } else {
            kaos__v1__matchmaker_user__string_properties_entry__init(
                &m->s[m->u.n_string_properties]);
            m->s[m->u.n_string_properties].key = (char *)p->name;
            m->s[m->u.n_string_properties].value = (char *)p->str;
            m->sp[m->u.n_string_properties] = &m->s[m->u.n_string_properties];
            m->u.n_string_properties++;
        }
    }
}

int kn_matchmaker_wire_matched(kn_out *out, kn_mm_ticket *const *tickets, size_t n,
                               const char *match_id, const char *token)
{
    size_t users = 0;
    for (size_t i = 0; i < n; i++)
        users += tickets[i]->n_players;
    user_msg *um = kn_calloc(users ? users : 1, sizeof *um);
    Kaos__V1__MatchmakerUser **all = kn_calloc(users ? users : 1, sizeof *all);
    int rc = um && all ? KN_OK : KN_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; rc == KN_OK && i < n; i++)
        for (size_t j = 0; j < tickets[i]->n_players; j++, k++) {
            user_fill(&um[k], tickets[i], &tickets[i]->players[j]);
            all[k] = &um[k].u;
        }
    Kaos__V1__MatchmakerMatched mm = KAOS__V1__MATCHMAKER_MATCHED__INIT;
    mm.match_id = (char *)(match_id ? match_id : "");
    mm.token = (char *)(token ? token : "");
    mm.users = all;
    mm.n_users = users;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCHMAKER_MATCHED;
    env.matchmaker_matched = &mm;
    k = 0;
    for (size_t i = 0; rc == KN_OK && i < n; i++)
        for (size_t j = 0; rc == KN_OK && j < tickets[i]->n_players; j++, k++) {
            const kn_mm_player *pl = &tickets[i]->players[j];
            mm.ticket = (char *)tickets[i]->id;
            mm.self = &um[k].u;
            size_t len = kn_envelope_packed_size(&env);
            uint8_t *buf = kn_malloc(len ? len : 1);
            if (!buf) {
                rc = KN_ERR_NOMEM;
                break;
            }
            kn_envelope_pack(&env, buf);
            /* A player gone meanwhile (NOT_FOUND) just misses it. */
            int sent =
                kn_out_send_user(out, pl->user_id, pl->session_id, KN_CH_CONTROL, buf, len, true);
            if (sent && sent != KN_ERR_NOT_FOUND) rc = sent;
            kn_free(buf);
        }
    kn_free(um);
    kn_free(all);
    return rc;
}
