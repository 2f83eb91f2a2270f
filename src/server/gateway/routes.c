/* routes: the table of kn_routes.h, indexed by message case. */
#include "kn_routes.h"
#include "kn_account_wire.h"
#include "kn_auth_wire.h"
#include "kn_chat_wire.h"
#include "kn_friends_wire.h"
#include "kn_groups_wire.h"
#include "kn_leaderboard_wire.h"
#include "kn_match_wire.h"
#include "kn_matchmaker_wire.h"
#include "kn_notify_wire.h"
#include "kn_party_wire.h"
#include "kn_rpc.h"
#include "kn_status_wire.h"
#include "kn_storage_wire.h"
#include "kn_time.h"

int kn_gateway_ping(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__Pong pong = KAOS__V1__PONG__INIT;
    pong.client_time_ms = kn_req_msg(r)->ping->client_time_ms;
    pong.server_time_ms = (uint64_t)kn_time_wall_ms();
    kn_envelope out = KN_ENVELOPE_INIT;
    out.message_case = KAOS__V1__ENVELOPE__MESSAGE_PONG;
    out.pong = &pong;
    return kn_req_reply(r, &out);
}

#define LINE_(msg, svc, pre, login, chans, where, fn)                                              \
    [KAOS__V1__ENVELOPE__MESSAGE_##                                                                \
        msg] = {KAOS__V1__ENVELOPE__MESSAGE_##msg, KN_SVC_##svc, pre, login, chans, where, fn},
static const kn_route table[] = {KN_ROUTES(LINE_)};
#undef LINE_

#define N_TABLE (sizeof table / sizeof table[0])

const kn_route *kn_routes_find(int message_case)
{
    return message_case > 0 && (size_t)message_case < N_TABLE && table[message_case].handle
               ? &table[message_case]
               : NULL;
}

bool kn_routes_is_client_op(int message_case)
{
    return kn_routes_find(message_case) != NULL;
}

#define ONE_(...) +1
static const size_t n_lines = 0 KN_ROUTES(ONE_);
#undef ONE_

size_t kn_routes_count(void)
{
    return n_lines;
}

const kn_route *kn_routes_at(size_t i)
{
    size_t seen = 0;
    for (size_t k = 0; k < N_TABLE; k++)
        if (table[k].handle && seen++ == i) return &table[k];
    return NULL;
}
