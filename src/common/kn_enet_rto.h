/* kn_enet_rto: a cap on ENet's retransmission timeout, shared by the only
 * two users of ENet (src/server/net/net.c and client-sdk/src/transport.c).
 * Header only, to be included after <enet/enet.h>, which only those two
 * files may include (scripts/check-includes.sh).
 *
 * Why. ENet 1.3.17 doubles a reliable command's retransmission timeout on
 * every retry, without bound, and ends the connection once one command has
 * been sent 6 times (the peer's timeoutLimit, 32 = 2^5) and its latest send
 * is 5 s old (timeoutMinimum) — even while acknowledgements of other
 * commands keep arriving. At a loss of p each way a try fails with
 * probability 1 - (1 - p)^2: 0.44 at 25 %, and 0.44^6 = 0.7 % of the reliable
 * commands of such a link reach that point, so a player on a bad but live
 * link was dropped within about a minute (bench/soak found it: 13 of 20
 * clients at 25 % loss and 100 ± 50 ms, in 75 s).
 *
 * Invariant kept: no reliable command in flight waits more than
 * KN_ENET_RTO_CAP_MS for its next try (on the server up to 100 ms more: see
 * below). Then the "latest send 5 s old" test
 * can only pass when nothing at all was acknowledged for 5 s (an
 * acknowledgement resets ENet's clock), so a connection that still hears
 * from its peer is never ended by ENet, and a silent one is ended as before
 * (about 5 s after its first unacknowledged command, 30 s at most). The
 * cost: a command on a link that is really down is retried once a second
 * rather than ever more rarely. */
#ifndef KN_ENET_RTO_H
#define KN_ENET_RTO_H

#include <stdbool.h>
#include <stdint.h>

#define KN_ENET_RTO_CAP_MS 1000

/* Caps the timeout of every reliable command in flight to every connected
 * peer of `host` and brings the peer's next timeout check forward to match.
 * Call it often next to enet_host_service: the SDK before each call (one
 * peer), the server's network loop every 100 ms (it walks every peer slot,
 * so not every round); a wait ENet doubled in between is cut back at the
 * next call, far from the 5 s that end a connection. */
static inline void kn_enet_cap_rto(ENetHost *host, enet_uint32 cap_ms)
{
    for (ENetPeer *p = host->peers; p < &host->peers[host->peerCount]; p++) {
        if (p->state != ENET_PEER_STATE_CONNECTED) continue;
        ENetListIterator it = enet_list_begin(&p->sentReliableCommands);
        for (bool first = true; it != enet_list_end(&p->sentReliableCommands);
             it = enet_list_next(it), first = false) {
            ENetOutgoingCommand *c = (ENetOutgoingCommand *)it;
            if (c->roundTripTimeout > cap_ms) c->roundTripTimeout = cap_ms;
            /* ENet checks timeouts at nextTimeout, set from the first command. */
            enet_uint32 due = c->sentTime + c->roundTripTimeout;
            if (first && (int32_t)(due - p->nextTimeout) < 0) p->nextTimeout = due;
        }
    }
}

#endif
