/* session_wire: connection-level routes (kn_session_wire.h). */
#include "kn_session_wire.h"
#include "kn_time.h"

int kn_session_wire_ping(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__Pong pong = KAOS__V1__PONG__INIT;
    pong.client_time_ms = kn_req_msg(r)->ping->client_time_ms;
    pong.server_time_ms = (uint64_t)kn_time_wall_ms();
    kn_envelope out = KN_ENVELOPE_INIT;
    out.message_case = KAOS__V1__ENVELOPE__MESSAGE_PONG;
    out.pong = &pong;
    return kn_req_reply(r, &out);
}
