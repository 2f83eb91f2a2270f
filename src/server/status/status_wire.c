/* status_wire: the status routes (kn_status_wire.h). Follow answers Status
 * with the followed users' presences; unfollow and update answer Ack. */
#include "kn_status_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_session.h"
#include "kn_status.h"

#include <stdio.h>
#include <string.h>

/* The caller's session as a presence on a stream. */
static kn_presence caller_presence(kn_req *r)
{
    const kn_caller *c = kn_req_caller(r);
    return kn_presence_of(c->conn, c->user_id, c->session_id, c->username);
}

static int reply_status(kn_req *r, const kn_presence *online, size_t n)
{
    Kaos__V1__UserPresence **pp = NULL;
    int rc = kn_entity_to_proto_list(&kn_presence_entity, online, sizeof *online, n, (void ***)&pp);
    if (rc) return rc;
    Kaos__V1__Status out = KAOS__V1__STATUS__INIT;
    out.n_presences = n;
    out.presences = pp;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STATUS;
    env.status = &out;
    rc = kn_req_reply(r, &env);
    kn_free(pp);
    return rc;
}

int kn_status_wire_follow(kn_req *r, char *msg, size_t cap)
{
    kn_status *st = kn_req_service(r);
    Kaos__V1__StatusFollow *q = kn_req_msg(r)->status_follow;
    kn_presence me = caller_presence(r);
    kn_status_user *users = NULL;
    size_t n = 0;
    int rc = kn_status_resolve(kn_req_worker(r)->db, me.user_id, (const char *const *)q->user_ids,
                               q->n_user_ids, (const char *const *)q->usernames, q->n_usernames,
                               &users, &n, msg, cap);
    kn_presence *online = NULL;
    size_t n_online = 0;
    if (rc == KN_OK) rc = kn_status_follow(st, &me, users, n, &online, &n_online, msg, cap);
    /* The session may have ended while Postgres answered: then its unbind
     * has run, and the follows just made would outlive it. */
    kn_conn_id now;
    if (rc == KN_OK &&
        (kn_sessions_find(kn_req_sessions(r), me.user_id, me.session_id, &now, NULL, 0) ||
         now != me.conn)) {
        for (size_t i = 0; i < n; i++) {
            const char *id = users[i];
            kn_status_unfollow(st, &me, &id, 1, NULL, 0);
        }
        rc = kn_err_msg(KN_ERR_UNAUTHENTICATED, msg, cap, "session has ended");
    }
    if (rc == KN_OK) rc = reply_status(r, online, n_online);
    kn_free(online);
    kn_free(users);
    return rc;
}

int kn_status_wire_unfollow(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__StatusUnfollow *q = kn_req_msg(r)->status_unfollow;
    kn_presence me = caller_presence(r);
    int rc = kn_status_unfollow(kn_req_service(r), &me, (const char *const *)q->user_ids,
                                q->n_user_ids, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_status_wire_update(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__StatusUpdate *q = kn_req_msg(r)->status_update;
    kn_presence me = caller_presence(r);
    int rc = kn_status_update(kn_req_service(r), &me, q->offline ? NULL : q->status, msg, cap);
    return rc ? rc : kn_req_ack(r);
}
