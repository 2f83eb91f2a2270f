/* kn_leaderboard_wire: the leaderboards' routes (docs/leaderboards.md):
 * proto <-> C around kn_leaderboard, acting as the session's user. Worker
 * routes; their service context is the kn_leaderboards. */
#ifndef KN_LEADERBOARD_WIRE_H
#define KN_LEADERBOARD_WIRE_H

#include "kn_leaderboard.h"
#include "kn_pipeline.h"

int kn_leaderboard_wire_record_write(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_records_list(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_records_around(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_record_delete(kn_req *r, char *msg, size_t cap);

/* Tournaments (tournament_wire.c): join answers Ack, list TournamentList,
 * the record lists LeaderboardRecordList, a write LeaderboardRecord. */
int kn_tournament_wire_join(kn_req *r, char *msg, size_t cap);
int kn_tournament_wire_list(kn_req *r, char *msg, size_t cap);
int kn_tournament_wire_records_list(kn_req *r, char *msg, size_t cap);
int kn_tournament_wire_records_around(kn_req *r, char *msg, size_t cap);
int kn_tournament_wire_record_write(kn_req *r, char *msg, size_t cap);
/* Shared with tournament_wire.c: the reply of a written record. */
int kn_leaderboard_wire__reply_record(kn_req *r, const kn_leaderboard_record *rec);
/* A page of a board's (tournament: a tournament's) records, or around an
 * owner ("" = the caller), answered with LeaderboardRecordList. */
int kn_leaderboard_wire__list(kn_req *r, bool tournament, const kn_leaderboard_query *q,
                              uint32_t limit, char *msg, size_t cap);
int kn_leaderboard_wire__around(kn_req *r, bool tournament, const char *id, const char *owner_id,
                                uint32_t limit, int64_t expiry, char *msg, size_t cap);
/* A client write's options (the operator in Nakama's wire numbering). */
int kn_leaderboard_wire__opts(kn_req *r, int64_t score, int64_t subscore, const char *metadata,
                              int32_t operator_, kn_leaderboard_write_opts *o, char *msg,
                              size_t cap);

#endif
