/* lg_sdk: the SDK clients of a single-threaded load generator (bench/storage,
 * bench/social), written against the public SDK header only (kaos.h).
 *
 * lg_sdk_pool_open creates n clients; each connects and logs in with a
 * fresh device id (its own user), 100 at a time; idle clients ping every
 * 5 s so a long setup does not get them dropped. lg_sdk_pool_pump polls the clients whose
 * socket is readable (epoll; the socket found as lg_util.h says) and every
 * client every 10 ms for ENet's timers. A disconnect is printed and marks
 * the client dead; errors of no request are printed.
 *
 * Failures while opening (a client that cannot be created, connect or log
 * in within 60 s) end the process with a message (lg_die). */
#ifndef LG_SDK_H
#define LG_SDK_H

#include <kaos.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct lg_sdk_client {
    kaos_client *c;
    int fd, index;
    bool authed;
    bool dead;        /* disconnected, or given up by the load generator */
    char user_id[40]; /* once logged in */
    void *ud;         /* the load generator's, for its own callbacks */
} lg_sdk_client;

typedef struct lg_sdk_pool {
    lg_sdk_client *cl;
    int n, ep;
    int64_t last_sweep;
    int sweep_ms; /* every client is polled this often (set after open; 0 = 10 ms) */
} lg_sdk_pool;

/* Opens n clients to host:port (server_key NULL: insecure dev mode). each
 * (may be NULL) is called on every client after it is created and before it
 * connects, to set k->ud and add callbacks. Returns once all are logged in. */
void lg_sdk_pool_open(lg_sdk_pool *p, int n, const char *host, uint16_t port,
                      const char *server_key, void (*each)(lg_sdk_client *k, void *ud), void *ud);
/* The same, client i connecting to ports[i] (ports NULL: all to port), for
 * clients behind a proxy (bench/soak). */
void lg_sdk_pool_open_ports(lg_sdk_pool *p, int n, const char *host, uint16_t port,
                            const uint16_t *ports, const char *server_key,
                            void (*each)(lg_sdk_client *k, void *ud), void *ud);
/* ENet's ping interval of the clients opened from now on (0: the SDK's default). */
void lg_sdk_set_ping_interval(uint32_t ms);
/* Polls readable clients for up to ms, and every client every sweep_ms. */
void lg_sdk_pool_pump(lg_sdk_pool *p, int ms);
int lg_sdk_pool_dead(const lg_sdk_pool *p); /* clients marked dead */
void lg_sdk_pool_close(lg_sdk_pool *p);

/* Prints "<program>: <message>" and exits with status 1. */
__attribute__((format(printf, 1, 2), noreturn)) void lg_die(const char *fmt, ...);

#endif
