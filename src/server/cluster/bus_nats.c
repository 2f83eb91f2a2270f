/* bus_nats: the cluster bus over NATS core publish/subscribe (kn_cluster.h,
 * kn_cluster_nats_*). The only file that includes the NATS C client.
 *
 * Invariants: the connection is made in the background and remade forever
 * (the server serves whether NATS is there or not); while it is down the
 * client library keeps publishes and subscriptions in its reconnect buffer
 * and replays them when it is back. Every subscription shares the library's
 * global delivery threads (no thread per user subscription). The
 * connection has no echo: a node never hears its own messages. Connection
 * changes reach the attached cluster as kn_cluster_bus_changed. */
#include "kn_cluster.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <nats/nats.h>

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define RECONNECT_WAIT_MS 250
#define PING_INTERVAL_MS  2000 /* a silent partition is found in two to three of these */
#define RECONNECT_BUF     (8 * 1024 * 1024)

struct kn_cluster_nats {
    natsConnection *conn;
    _Atomic(kn_cluster *) cluster;
    atomic_int busy; /* callbacks inside the cluster now: detaching waits for them */
    atomic_uint_fast64_t reconnects;
};

static void tell(kn_cluster_nats *n, bool connected)
{
    atomic_fetch_add(&n->busy, 1);
    kn_cluster *c = atomic_load(&n->cluster);
    if (c) kn_cluster_bus_changed(c, connected);
    atomic_fetch_sub(&n->busy, 1);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    tell(closure, true);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    tell(closure, false);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    kn_cluster_nats *n = closure;
    atomic_fetch_add(&n->reconnects, 1);
    tell(n, true);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    KN_WARN("cluster bus: %s", natsStatus_GetText(err));
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    kn_cluster_nats *n = closure;
    atomic_fetch_add(&n->busy, 1);
    kn_cluster *c = atomic_load(&n->cluster);
    if (c)
        kn_cluster_receive(c, (const uint8_t *)natsMsg_GetData(msg),
                           (size_t)natsMsg_GetDataLength(msg), kn_time_mono_ms());
    atomic_fetch_sub(&n->busy, 1);
    natsMsg_Destroy(msg);
}

static int status_err(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return KN_OK;
    case NATS_NO_MEMORY:
        return KN_ERR_NOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return KN_ERR_INVALID_ARGUMENT;
    default:
        return KN_ERR_UNAVAILABLE;
    }
}

static int bus_publish(void *ud, const char *subject, const uint8_t *data, size_t len)
{
    kn_cluster_nats *n = ud;
    return status_err(natsConnection_Publish(n->conn, subject, data, (int)len));
}

static int bus_subscribe(void *ud, const char *subject, void **sub)
{
    kn_cluster_nats *n = ud;
    natsSubscription *s = NULL;
    natsStatus st = natsConnection_Subscribe(&s, n->conn, subject, on_msg, n);
    if (st != NATS_OK) return status_err(st);
    /* A slow node drops (and the library counts) rather than stalling the bus. */
    natsSubscription_SetPendingLimits(s, 65536, 64 * 1024 * 1024);
    *sub = s;
    return KN_OK;
}

static void bus_unsubscribe(void *ud, void *sub)
{
    (void)ud;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

static bool bus_connected(void *ud)
{
    kn_cluster_nats *n = ud;
    return natsConnection_Status(n->conn) == NATS_CONN_STATUS_CONNECTED;
}

int kn_cluster_nats_open(const char *url, const char *name, kn_cluster_nats **out,
                         kn_cluster_bus *bus)
{
    *out = NULL;
    kn_cluster_nats *n = kn_calloc(1, sizeof *n);
    if (!n) return KN_ERR_NOMEM;
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    /* A comma-separated list of URLs is one option: the client splits it. */
    if (s == NATS_OK) s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK) s = natsOptions_SetName(opts, name);
    if (s == NATS_OK) s = natsOptions_SetNoEcho(opts, true);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, RECONNECT_WAIT_MS);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, RECONNECT_BUF);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, PING_INTERVAL_MS);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 2);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(opts, true);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, n);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, n);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, n);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, on_error, n);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&n->conn, opts);
        if (s == NATS_NOT_YET_CONNECTED) {
            KN_WARN("cluster bus: %s not reachable yet; serving alone and retrying every %d ms",
                    url, RECONNECT_WAIT_MS);
            s = NATS_OK;
        }
    }
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        KN_ERROR("cluster bus: cannot use %s: %s", url, natsStatus_GetText(s));
        kn_cluster_nats_close(n);
        return status_err(s) == KN_ERR_UNAVAILABLE ? KN_ERR_CONFIG : status_err(s);
    }
    *bus = (kn_cluster_bus){bus_publish, bus_subscribe, bus_unsubscribe, bus_connected, n};
    *out = n;
    return KN_OK;
}

void kn_cluster_nats_attach(kn_cluster_nats *n, kn_cluster *c)
{
    if (!n) return;
    atomic_store(&n->cluster, c);
    if (c) {
        kn_cluster_bus_changed(c, bus_connected(n));
        return;
    }
    while (atomic_load(&n->busy)) { /* a callback still holds the old cluster */
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
}

void kn_cluster_nats_close(kn_cluster_nats *n)
{
    if (!n) return;
    atomic_store(&n->cluster, NULL);
    if (n->conn) {
        if (natsConnection_Status(n->conn) == NATS_CONN_STATUS_CONNECTED)
            natsConnection_FlushTimeout(n->conn, 500); /* the Leave, the last ends */
        natsConnection_Close(n->conn);
        natsConnection_Destroy(n->conn);
    }
    /* The library's threads (a callback may still be running) and memory;
     * then nothing can reach n. */
    nats_CloseAndWait(2000);
    kn_free(n);
}

uint64_t kn_cluster_nats_reconnects(kn_cluster_nats *n)
{
    return n ? atomic_load(&n->reconnects) : 0;
}
