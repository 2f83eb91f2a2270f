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
 *                       can: matches keep playing without Postgres), then
 *                       the lines of health_detail (a cluster's peers)
 *   GET  /metrics       200, Prometheus text format, from the handler
 *   GET  /v2/nodes      200, JSON from the handler's nodes (a cluster's healthy
 *                       nodes, for clients picking one); 404 without it
 *
 * An application listener (kn_http_handler.app set: the admin console) gets
 * every request instead, as a kn_http_request, and answers with a
 * kn_http_response; the endpoints above are then not served on it.
 *
 * Threads: libmicrohttpd runs a thread per connection; the handlers are
 * called on those threads and may block (the RPC waits for an API worker). */
#ifndef KN_HTTP_H
#define KN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_http kn_http;

/* One request as an application sees it. Everything is borrowed for the
 * call; the lookups are case-insensitive for headers, exact for arguments,
 * and return NULL when absent. The body is NUL-terminated (body_len bytes
 * before the NUL); body_too_large when it passed max_body (body is then "").
 */
typedef struct kn_http_request {
    const char *method;
    const char *path;    /* without the query string, percent-decoded by libmicrohttpd */
    const char *address; /* the peer's IP address as text */
    const char *body;
    size_t body_len;
    bool body_too_large;
    const char *(*header)(const struct kn_http_request *req, const char *name);
    const char *(*arg)(const struct kn_http_request *req, const char *name);
    void *conn; /* the library's connection, for the lookups */
} kn_http_request;

/* What the application answers. body is kn_malloc'd (taken by the listener)
 * unless body_static; headers is "Name: value\n" lines (may be NULL),
 * copied. */
typedef struct kn_http_response {
    unsigned status;
    const char *content_type;
    char *body;
    size_t body_len;
    bool body_static;
    char headers[1024];
} kn_http_response;

typedef struct kn_http_handler {
    /* Blocking RPC. *out is kn_malloc'd on success. */
    int (*rpc)(void *ud, const char *id, const char *payload, size_t len, char **out,
               size_t *out_len, char *msg, size_t msg_cap);
    /* Writes the metrics text (NUL-terminated) into buf. */
    void (*metrics)(void *ud, char *buf, size_t cap);
    /* NULL when healthy, else a static text saying what is degraded. May
     * block briefly (a probe). NULL function: always healthy. */
    const char *(*health)(void *ud);
    /* Lines after the first of /healthz, appended at buf[n..cap); returns
     * the new length. NULL: none. */
    size_t (*health_detail)(void *ud, char *buf, size_t n, size_t cap);
    /* The JSON of GET /v2/nodes into buf; returns its length (< cap). NULL:
     * no such endpoint. */
    size_t (*nodes)(void *ud, char *buf, size_t cap);
    /* Application listener: answers every request (rpc, metrics and health
     * unused). res arrives zeroed with status 200. */
    void (*app)(void *ud, const kn_http_request *req, kn_http_response *res);
    void *ud;
} kn_http_handler;

typedef struct kn_http_config {
    const char *bind;     /* IPv4 address */
    uint16_t port;        /* 0 = any free port */
    const char *http_key; /* required for /v2/rpc; "" refuses every RPC */
    size_t max_body;      /* largest request body */
} kn_http_config;

/* The HTTP status that answers a wire error code (0 -> 200, 3 -> 400,
 * 16 -> 401, ...): one table for every listener. */
unsigned kn_http_status(int wire_code);

int kn_http_start(const kn_http_config *cfg, const kn_http_handler *handler, kn_http **out);
uint16_t kn_http_port(const kn_http *http);
void kn_http_stop(kn_http *http); /* accepts NULL; waits for handlers to return */

#endif
