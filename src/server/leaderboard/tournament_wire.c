/* tournament_wire: the tournament routes (kn_leaderboard_wire.h). A join
 * answers Ack, a list TournamentList (its messages borrow the service's
 * strings until the reply is encoded), the record lists
 * LeaderboardRecordList and a write LeaderboardRecord, as the leaderboard
 * routes do. Clients join and write as themselves. */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_leaderboard_wire.h"
#include "kn_mem.h"
#include "kn_tournament.h"

static const char *caller(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

static kn_leaderboards *service(kn_req *r)
{
    return kn_req_service(r);
}

static kn_db *db_of(kn_req *r)
{
    return kn_req_worker(r)->db;
}

int kn_tournament_wire_join(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__TournamentJoin *q = kn_req_msg(r)->tournament_join;
    int rc = kn_tournament_join(service(r), db_of(r), q->tournament_id, caller(r), msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_tournament_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__TournamentsList *q = kn_req_msg(r)->tournaments_list;
    if (q->limit > KN_TOURNAMENT_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %u",
                          KN_TOURNAMENT_LIST_MAX, q->limit);
    if (q->category_start > KN_TOURNAMENT_CATEGORY_MAX ||
        q->category_end > KN_TOURNAMENT_CATEGORY_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "categories must be 0-%d",
                          KN_TOURNAMENT_CATEGORY_MAX);
    /* Both 0: every category (the message's zero value). */
    bool all = q->category_start == 0 && q->category_end == 0;
    kn_tournament_query lq = {.category_start = (int)q->category_start,
                              .category_end =
                                  all ? KN_TOURNAMENT_CATEGORY_MAX : (int)q->category_end,
                              .start_time = q->start_time,
                              .end_time = q->end_time,
                              .limit = (int)q->limit,
                              .cursor = q->cursor};
    kn_tournament *list = NULL;
    size_t n = 0;
    char *cursor = NULL;
    int rc = kn_tournament_list(service(r), db_of(r), &lq, &list, &n, &cursor, msg, cap);
    if (rc) return rc;
    Kaos__V1__Tournament **ts = NULL;
    rc = kn_entity_to_proto_list(&kn_tournament_entity, list, sizeof *list, n, (void ***)&ts);
    if (rc == KN_OK) {
        for (size_t i = 0; i < n; i++)
            ts[i]->operator_ = list[i].operator_;
        Kaos__V1__TournamentList out = KAOS__V1__TOURNAMENT_LIST__INIT;
        out.n_tournaments = n;
        out.tournaments = ts;
        out.cursor = cursor ? cursor : "";
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_TOURNAMENT_LIST;
        env.tournament_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(ts);
    kn_free(cursor);
    kn_tournaments_free(list, n);
    return rc;
}

int kn_tournament_wire_records_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__TournamentRecordsList *q = kn_req_msg(r)->tournament_records_list;
    kn_leaderboard_query lq = {.id = q->tournament_id,
                               .limit = (int)q->limit,
                               .cursor = q->cursor,
                               .expiry = q->expiry,
                               .owner_ids = (const char *const *)q->owner_ids,
                               .n_owner_ids = q->n_owner_ids};
    return kn_leaderboard_wire__list(r, true, &lq, q->limit, msg, cap);
}

int kn_tournament_wire_records_around(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__TournamentRecordsAround *q = kn_req_msg(r)->tournament_records_around;
    return kn_leaderboard_wire__around(r, true, q->tournament_id, q->owner_id, q->limit, q->expiry,
                                       msg, cap);
}

int kn_tournament_wire_record_write(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__TournamentRecordWrite *q = kn_req_msg(r)->tournament_record_write;
    kn_leaderboard_write_opts o;
    int rc = kn_leaderboard_wire__opts(r, q->score, q->subscore, q->metadata, q->operator_, &o, msg,
                                       cap);
    kn_leaderboard_record rec;
    if (rc || (rc = kn_tournament_record_write(service(r), db_of(r), q->tournament_id, caller(r),
                                               &o, &rec, msg, cap)))
        return rc;
    rc = kn_leaderboard_wire__reply_record(r, &rec);
    kn_free(rec.metadata);
    return rc;
}
