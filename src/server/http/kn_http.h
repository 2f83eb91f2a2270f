/* kn_http: the HTTP listener (server-to-server RPC, health, metrics); the only
 * module that includes libmicrohttpd.
 *
 * Endpoints:
 *   POST /v2/rpc/{id}   body = payload; needs the HTTP key, as the query
 *                       parameter `http_key` or the header `X-Kaos-Http-Key`.
 *                       200 with the RPC's answer, or a JSON error
 *                       {"code": N, "message": "..."} with an HTTP status that
 *                       matches the code (401 wrong key, 404 unknown id, ...).
 *   GET  /healthz       200 "ok", or 200 "degraded: <why>" when the handler's
 *                       health says so (the server still serves what it
 *                       can: matches keep playing without Postgres)
 *   GET  /metrics       200, Prometheus text format, from the handler
 *
 * Threads: libmicrohttpd runs a thread per connection; the handlers are
 * called on those threads and may block (the RPC waits for an API worker). */
#ifndef KN_HTTP_H
#define KN_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kn_http kn_http;

typedef struct kn_http_handler {
    /* Blocking RPC. *out is kn_malloc'd on success. */
    int (*rpc)(void *ud, const char *id, const char *payload, size_t len, char **out,
               size_t *out_len, char *msg, size_t msg_cap);
    /* Writes the metrics text (NUL-terminated) into buf. */
    void (*metrics)(void *ud, char *buf, size_t cap);
    /* NULL when healthy, else a static text saying what is degraded. May
     * block briefly (a probe). NULL function: always healthy. */
    const char *(*health)(void *ud);
    void *ud;
} kn_http_handler;

typedef struct kn_http_config {
    const char *bind;     /* IPv4 address */
    uint16_t port;        /* 0 = any free port */
    const char *http_key; /* required for /v2/rpc; "" refuses every RPC */
    size_t max_body;      /* largest request body */
} kn_http_config;

int kn_http_start(const kn_http_config *cfg, const kn_http_handler *handler, kn_http **out);
uint16_t kn_http_port(const kn_http *http);
void kn_http_stop(kn_http *http); /* accepts NULL; waits for handlers to return */

#endif
