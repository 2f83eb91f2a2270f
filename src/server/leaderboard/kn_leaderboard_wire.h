/* kn_leaderboard_wire: the leaderboards' routes (docs/leaderboards.md):
 * proto <-> C around kn_leaderboard, acting as the session's user. Worker
 * routes; their service context is the kn_leaderboards. */
#ifndef KN_LEADERBOARD_WIRE_H
#define KN_LEADERBOARD_WIRE_H

#include "kn_pipeline.h"

int kn_leaderboard_wire_record_write(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_records_list(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_records_around(kn_req *r, char *msg, size_t cap);
int kn_leaderboard_wire_record_delete(kn_req *r, char *msg, size_t cap);

#endif
