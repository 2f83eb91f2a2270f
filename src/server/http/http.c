/* http: libmicrohttpd behind the small kn_http contract. */
#include "kn_http.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct kn_http {
    struct MHD_Daemon *daemon;
    kn_http_handler handler;
    char *key;
    size_t max_body;
    uint16_t port;
};

/* Per-request state while the body arrives. */
typedef struct body {
    char *data;
    size_t len;
    bool too_large;
} body;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

unsigned kn_http_status(int wire)
{
    switch (wire) {
    case 0:
        return 200;
    case 3:
        return 400;
    case 5:
        return 404;
    case 6:
        return 409;
    case 9:
        return 412;
    case 7:
        return 403;
    case 8:
        return 429;
    case 12:
        return 501;
    case 14:
        return 503;
    case 16:
        return 401;
    default:
        return 500;
    }
}

static enum MHD_Result error_reply(struct MHD_Connection *conn, int err, const char *msg)
{
    char buf[512], esc[300];
    size_t k = 0;
    for (const char *p = msg; *p && k + 2 < sizeof esc; p++) { /* minimal JSON escaping */
        if (*p == '"' || *p == '\\') esc[k++] = '\\';
        esc[k++] = (char)((unsigned char)*p < 0x20 ? ' ' : *p);
    }
    esc[k] = '\0';
    int wire = kn_err_to_wire(err);
    int n = snprintf(buf, sizeof buf, "{\"code\":%d,\"message\":\"%s\"}", wire, esc);
    return reply(conn, kn_http_status(wire), "application/json", buf, (size_t)n);
}

static bool key_ok(const kn_http *h, struct MHD_Connection *conn)
{
    const char *k = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "http_key");
    if (!k) k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Kaos-Http-Key");
    size_t want = strlen(h->key);
    if (!k || !want || strlen(k) != want) return false;
    return kn_crypto_equal(k, h->key, want);
}

static enum MHD_Result handle_rpc(kn_http *h, struct MHD_Connection *conn, const char *id, body *b)
{
    if (!key_ok(h, conn)) return error_reply(conn, KN_ERR_UNAUTHENTICATED, "wrong http key");
    if (b->too_large) return error_reply(conn, KN_ERR_TOO_LARGE, "request body too large");
    char *out = NULL, msg[256] = "";
    size_t out_len = 0;
    int rc = h->handler.rpc(h->handler.ud, id, b->data ? b->data : "", b->len, &out, &out_len, msg,
                            sizeof msg);
    if (rc) return error_reply(conn, rc, *msg ? msg : kn_err_text(rc));
    enum MHD_Result r = reply(conn, 200, "application/json", out ? out : "", out_len);
    kn_free(out);
    return r;
}

static const char *req_header(const kn_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static const char *req_arg(const kn_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Adds each "Name: value" line of lines to r. */
static void add_headers(struct MHD_Response *r, const char *lines)
{
    char line[1024];
    while (lines && *lines) {
        const char *nl = strchr(lines, '\n');
        size_t n = nl ? (size_t)(nl - lines) : strlen(lines);
        if (n < sizeof line) {
            memcpy(line, lines, n);
            line[n] = '\0';
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = '\0';
                const char *v = colon + 1;
                while (*v == ' ')
                    v++;
                MHD_add_response_header(r, line, v);
            }
        }
        lines = nl ? nl + 1 : lines + n;
    }
}

static enum MHD_Result handle_app(kn_http *h, struct MHD_Connection *conn, const char *url,
                                  const char *method, body *b)
{
    char addr[64] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, addr,
                  sizeof addr);
    kn_http_request req = {.method = method,
                           .path = url,
                           .address = addr,
                           .body = b->data && !b->too_large ? b->data : "",
                           .body_len = b->too_large ? 0 : b->len,
                           .body_too_large = b->too_large,
                           .header = req_header,
                           .arg = req_arg,
                           .conn = conn};
    kn_http_response res = {.status = 200};
    h->handler.app(h->handler.ud, &req, &res);
    struct MHD_Response *r = MHD_create_response_from_buffer(
        res.body_len, res.body ? res.body : (char *)"",
        res.body_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!res.body_static) kn_free(res.body);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            res.content_type ? res.content_type : "application/json");
    add_headers(r, res.headers);
    enum MHD_Result rc = MHD_queue_response(conn, res.status ? res.status : 500, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    kn_http *h = cls;
    body *b = *con_cls;
    if (!b) { /* first call: headers only */
        b = kn_calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*data_size) { /* a chunk of the body */
        if (b->len + *data_size > h->max_body) {
            b->too_large = true;
        } else {
            char *grown = kn_realloc(b->data, b->len + *data_size + 1);
            if (!grown) return MHD_NO;
            memcpy(grown + b->len, data, *data_size);
            b->data = grown;
            b->len += *data_size;
            b->data[b->len] = '\0';
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (h->handler.app) return handle_app(h, conn, url, method, b);
    if (!strcmp(method, "GET") && !strcmp(url, "/healthz")) {
        const char *why = h->handler.health ? h->handler.health(h->handler.ud) : NULL;
        char text[4096];
        int n = why ? snprintf(text, sizeof text, "degraded: %s\n", why)
                    : snprintf(text, sizeof text, "ok\n");
        size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
        if (h->handler.health_detail)
            len = h->handler.health_detail(h->handler.ud, text, len, sizeof text);
        return reply(conn, 200, "text/plain", text, len < sizeof text ? len : sizeof text - 1);
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/metrics")) {
        char buf[16384] = "";
        if (h->handler.metrics) h->handler.metrics(h->handler.ud, buf, sizeof buf);
        return reply(conn, 200, "text/plain; version=0.0.4", buf, strlen(buf));
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/v2/nodes") && h->handler.nodes) {
        char buf[16384];
        size_t n = h->handler.nodes(h->handler.ud, buf, sizeof buf);
        return reply(conn, 200, "application/json", buf, n < sizeof buf ? n : sizeof buf - 1);
    }
    static const char prefix[] = "/v2/rpc/";
    if (!strncmp(url, prefix, sizeof prefix - 1) && url[sizeof prefix - 1]) {
        if (strcmp(method, "POST")) return error_reply(conn, KN_ERR_INVALID_ARGUMENT, "use POST");
        return handle_rpc(h, conn, url + sizeof prefix - 1, b);
    }
    return error_reply(conn, KN_ERR_NOT_FOUND, "no such endpoint");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    body *b = *con_cls;
    if (b) {
        kn_free(b->data);
        kn_free(b);
    }
    *con_cls = NULL;
}

int kn_http_start(const kn_http_config *cfg, const kn_http_handler *handler, kn_http **out)
{
    *out = NULL;
    kn_http *h = kn_calloc(1, sizeof *h);
    if (!h) return KN_ERR_NOMEM;
    h->handler = *handler;
    h->max_body = cfg->max_body ? cfg->max_body : 65536;
    h->key = kn_strdup(cfg->http_key ? cfg->http_key : "");
    if (!h->key) {
        kn_free(h);
        return KN_ERR_NOMEM;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
    if (inet_pton(AF_INET, cfg->bind && *cfg->bind ? cfg->bind : "0.0.0.0", &addr.sin_addr) != 1) {
        KN_ERROR("bad http bind address %s", cfg->bind);
        kn_http_stop(h);
        return KN_ERR_CONFIG;
    }
    h->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        cfg->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!h->daemon) {
        KN_ERROR("cannot listen for HTTP on %s:%u", cfg->bind, cfg->port);
        kn_http_stop(h);
        return KN_ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    *out = h;
    return KN_OK;
}

uint16_t kn_http_port(const kn_http *h)
{
    return h->port;
}

void kn_http_stop(kn_http *h)
{
    if (!h) return;
    if (h->daemon) MHD_stop_daemon(h->daemon);
    if (h->key) kn_crypto_wipe(h->key, strlen(h->key));
    kn_free(h->key);
    kn_free(h);
}
