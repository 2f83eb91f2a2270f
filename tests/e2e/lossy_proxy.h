/* lossy_proxy: a UDP relay on loopback that drops, delays and jitters
 * datagrams in both directions, for impairment tests. Clients talk to its
 * port; it talks to the server from one socket per client, so the server
 * sees a stable address per client (cookies stay valid). Runs its own
 * thread; bounded queue; stops on lossy_stop. */
#ifndef KN_E2E_LOSSY_PROXY_H
#define KN_E2E_LOSSY_PROXY_H

#include <stdint.h>

typedef struct lossy_proxy lossy_proxy;

typedef struct lossy_stats {
    uint64_t forwarded, dropped, reordered;
} lossy_stats;

/* loss in [0,1); delay and jitter in ms (each datagram waits delay ± jitter). */
lossy_proxy *lossy_start(uint16_t server_port, double loss, int delay_ms, int jitter_ms,
                         uint16_t *listen_port);
void lossy_stop(lossy_proxy *p, lossy_stats *stats);

#endif
