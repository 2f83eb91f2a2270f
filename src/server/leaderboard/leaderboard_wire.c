/* leaderboard_wire: the leaderboard routes (kn_leaderboard_wire.h). A write
 * answers LeaderboardRecord, the lists LeaderboardRecordList (whose
 * messages borrow the service's strings until the reply is encoded), a
 * delete Ack. Clients write as themselves, never to an authoritative
 * board. */
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_leaderboard_wire.h"
#include "kn_mem.h"
#include "kn_tournament.h"

#include <stdio.h>

static const char *caller(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

static kn_leaderboards *service(kn_req *r)
{
    return kn_req_service(r);
}

/* A wire limit past what the service's int takes, refused as it would. */
static int too_many(uint32_t limit, char *msg, size_t cap)
{
    return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %u",
                      KN_LB_LIST_MAX, limit);
}

int kn_leaderboard_wire__opts(kn_req *r, int64_t score, int64_t subscore, const char *metadata,
                              int32_t operator_, kn_leaderboard_write_opts *o, char *msg,
                              size_t cap)
{
    /* Nakama's numbering on the wire: 0 the board's, 1 best ... 4 decrement. */
    if (operator_ < 0 || operator_ > 4)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "operator must be 0 (the board's), 1 best, 2 set, 3 increment or 4 "
                          "decrement, not %d",
                          operator_);
    *o = (kn_leaderboard_write_opts){.score = score,
                                     .subscore = subscore,
                                     .username = kn_req_caller(r)->username,
                                     .metadata = metadata && *metadata ? metadata : NULL,
                                     .operator_ = operator_ - 1,
                                     .from_client = true};
    return KN_OK;
}

int kn_leaderboard_wire_record_write(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__LeaderboardRecordWrite *q = kn_req_msg(r)->leaderboard_record_write;
    kn_leaderboard_write_opts o;
    int rc = kn_leaderboard_wire__opts(r, q->score, q->subscore, q->metadata, q->operator_, &o, msg,
                                       cap);
    kn_leaderboard_record rec;
    if (rc || (rc = kn_leaderboard_write(service(r), kn_req_worker(r)->db, q->leaderboard_id,
                                         caller(r), &o, &rec, msg, cap)))
        return rc;
    rc = kn_leaderboard_wire__reply_record(r, &rec);
    kn_free(rec.metadata);
    return rc;
}

int kn_leaderboard_wire__reply_record(kn_req *r, const kn_leaderboard_record *rec)
{
    Kaos__V1__LeaderboardRecord m;
    kn_entity_to_proto(&kn_leaderboard_record_entity, rec, &m);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_LEADERBOARD_RECORD;
    env.leaderboard_record = &m;
    return kn_req_reply(r, &env);
}

static int reply_page(kn_req *r, const kn_leaderboard_page *p)
{
    Kaos__V1__LeaderboardRecord **recs = NULL, **owners = NULL;
    int rc = kn_entity_to_proto_list(&kn_leaderboard_record_entity, p->records, sizeof *p->records,
                                     p->n_records, (void ***)&recs);
    if (rc == KN_OK)
        rc = kn_entity_to_proto_list(&kn_leaderboard_record_entity, p->owner_records,
                                     sizeof *p->owner_records, p->n_owner_records,
                                     (void ***)&owners);
    if (rc == KN_OK) {
        Kaos__V1__LeaderboardRecordList out = KAOS__V1__LEADERBOARD_RECORD_LIST__INIT;
        out.n_records = p->n_records;
        out.records = recs;
        out.n_owner_records = p->n_owner_records;
        out.owner_records = owners;
        out.next_cursor = p->next_cursor ? p->next_cursor : "";
        out.prev_cursor = p->prev_cursor ? p->prev_cursor : "";
        out.rank_count = p->rank_count;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_LEADERBOARD_RECORD_LIST;
        env.leaderboard_record_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(recs);
    kn_free(owners);
    return rc;
}

int kn_leaderboard_wire__list(kn_req *r, bool tournament, const kn_leaderboard_query *q,
                              uint32_t limit, char *msg, size_t cap)
{
    if (limit > KN_LB_LIST_MAX) return too_many(limit, msg, cap);
    kn_leaderboard_page p;
    int rc = (tournament ? kn_tournament_records_list : kn_leaderboard_records_list)(
        service(r), kn_req_worker(r)->db, q, &p, msg, cap);
    if (rc) return rc;
    rc = reply_page(r, &p);
    kn_leaderboard_page_free(&p);
    return rc;
}

int kn_leaderboard_wire__around(kn_req *r, bool tournament, const char *id, const char *owner_id,
                                uint32_t limit, int64_t expiry, char *msg, size_t cap)
{
    if (limit > KN_LB_LIST_MAX) return too_many(limit, msg, cap);
    const char *owner = owner_id && *owner_id ? owner_id : caller(r);
    kn_leaderboard_page p;
    int rc = (tournament ? kn_tournament_records_around : kn_leaderboard_records_around)(
        service(r), kn_req_worker(r)->db, id, owner, (int)limit, expiry, &p, msg, cap);
    if (rc) return rc;
    rc = reply_page(r, &p);
    kn_leaderboard_page_free(&p);
    return rc;
}

int kn_leaderboard_wire_records_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__LeaderboardRecordsList *q = kn_req_msg(r)->leaderboard_records_list;
    kn_leaderboard_query lq = {.id = q->leaderboard_id,
                               .limit = (int)q->limit,
                               .cursor = q->cursor,
                               .expiry = q->expiry,
                               .owner_ids = (const char *const *)q->owner_ids,
                               .n_owner_ids = q->n_owner_ids};
    return kn_leaderboard_wire__list(r, false, &lq, q->limit, msg, cap);
}

int kn_leaderboard_wire_records_around(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__LeaderboardRecordsAround *q = kn_req_msg(r)->leaderboard_records_around;
    return kn_leaderboard_wire__around(r, false, q->leaderboard_id, q->owner_id, q->limit,
                                       q->expiry, msg, cap);
}

int kn_leaderboard_wire_record_delete(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__LeaderboardRecordDelete *q = kn_req_msg(r)->leaderboard_record_delete;
    int rc = kn_leaderboard_record_delete(service(r), kn_req_worker(r)->db, q->leaderboard_id,
                                          caller(r), true, msg, cap);
    return rc ? rc : kn_req_ack(r);
}
