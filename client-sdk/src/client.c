/* client: lifecycle, the connection state machine and the poll loop.
 *
 * States: DISCONNECTED -> CONNECTING -> CONNECTED -> DISCONNECTING ->
 * DISCONNECTED, and any state -> DISCONNECTED. Only set_state writes the
 * state, and it asserts the legal predecessor. Every connect that started
 * ends in exactly one on_disconnected: from ENet's disconnect event, from a
 * timeout below, or (when the client dropped a connect itself) from
 * `pending_disconnects` at the next poll. Time is read only in this file's
 * poll path and in requests.c (last send, ping timestamps). */
#include "client_internal.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <assert.h>

/* How long a graceful disconnect may wait for the server's acknowledgement. */
#define DISCONNECT_TIMEOUT_MS 3000
/* Events handled per poll at most, so a flood cannot hold the caller's frame. */
#define MAX_EVENTS_PER_POLL 512

void kaos_client_config_default(kaos_client_config *cfg)
{
    *cfg = (kaos_client_config){
        .host = "127.0.0.1",
        .port = 7350,
        .connect_timeout_ms = 5000,
        .keepalive_ms = 15000,
        .protocol_version = KAOS_PROTOCOL_VERSION,
    };
}

int kaos_client_create(const kaos_client_config *cfg, kaos_client **out)
{
    if (!out) return KN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!cfg) return KN_ERR_INVALID_ARGUMENT;
    if (!cfg->host || !cfg->host[0] || cfg->port == 0) return KN_ERR_CONFIG;

    kaos_client *c = kn_calloc(1, sizeof *c);
    if (!c) return KN_ERR_NOMEM;
    c->cfg = *cfg;
    c->next_cid = 1;
    int rc = KN_ERR_NOMEM;
    c->host = kn_strdup(cfg->host);
    if (!c->host) goto fail;
    c->cfg.host = c->host;
    rc = kaos_transport__create(&c->transport);
    if (rc < 0) goto fail;
    *out = c;
    return KN_OK;
fail:
    kaos_client_destroy(c);
    return rc;
}

void kaos_client_destroy(kaos_client *c)
{
    if (!c) return;
    assert(!c->in_poll && "kaos_client_destroy called from a callback");
    kaos_transport__destroy(c->transport); /* sends a disconnect if a peer is live */
    kaos_client__session_clear(c);
    kn_free(c->presences);
    kn_free(c->host);
    kn_free(c);
}

static void set_state(kaos_client *c, kaos_client_state next)
{
    switch (next) {
    case KAOS_CLIENT_CONNECTING:
        assert(c->state == KAOS_CLIENT_DISCONNECTED);
        break;
    case KAOS_CLIENT_CONNECTED:
        assert(c->state == KAOS_CLIENT_CONNECTING);
        break;
    case KAOS_CLIENT_DISCONNECTING:
        assert(c->state == KAOS_CLIENT_CONNECTED);
        break;
    case KAOS_CLIENT_DISCONNECTED:
        assert(c->state != KAOS_CLIENT_DISCONNECTED);
        c->keepalive_cid = 0;
        break;
    }
    c->state = next;
    c->state_since_ms = kn_time_mono_ms();
}

int kaos_client_connect(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    if (c->state != KAOS_CLIENT_DISCONNECTED) return KN_ERR_FAILED_PRECONDITION;
    int rc = kaos_transport__connect(c->transport, c->host, c->cfg.port, c->cfg.protocol_version);
    if (rc < 0) return rc;
    set_state(c, KAOS_CLIENT_CONNECTING);
    KN_INFO("connecting to %s:%u (protocol %u)", c->host, c->cfg.port, c->cfg.protocol_version);
    return KN_OK;
}

int kaos_client_disconnect(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    switch (c->state) {
    case KAOS_CLIENT_DISCONNECTED:
        return KN_ERR_CLOSED;
    case KAOS_CLIENT_DISCONNECTING:
        return KN_OK;
    case KAOS_CLIENT_CONNECTING:
        /* ENet has no graceful way out of a handshake: drop it and owe the
         * caller its on_disconnected at the next poll. */
        kaos_transport__abort(c->transport);
        set_state(c, KAOS_CLIENT_DISCONNECTED);
        c->pending_disconnects++;
        return KN_OK;
    case KAOS_CLIENT_CONNECTED:
        kaos_transport__disconnect(c->transport);
        set_state(c, KAOS_CLIENT_DISCONNECTING);
        return KN_OK;
    }
    return KN_ERR_INTERNAL;
}

bool kaos_client_is_connected(const kaos_client *c)
{
    return c && c->state == KAOS_CLIENT_CONNECTED;
}

const kaos_session *kaos_client_session(const kaos_client *c)
{
    return (c && c->has_session) ? &c->session.view : NULL;
}

void kaos_client_get_stats(const kaos_client *c, kaos_client_stats *out)
{
    if (!out) return;
    *out = c ? c->stats : (kaos_client_stats){0};
}

/* The state is DISCONNECTED before the callback runs, so it may reconnect. */
static void fire_disconnected(kaos_client *c, uint32_t reason)
{
    KN_INFO("disconnected from %s:%u (reason %u: %s)", c->host, c->cfg.port, reason,
            kaos_disconnect_reason_text(reason));
    if (c->cfg.callbacks.on_disconnected)
        c->cfg.callbacks.on_disconnected(c, reason, c->cfg.user_data);
}

/* Drops the connection for a local reason and reports it. */
static void give_up(kaos_client *c, const char *why)
{
    KN_WARN("%s %s:%u", why, c->host, c->cfg.port);
    kaos_transport__abort(c->transport);
    set_state(c, KAOS_CLIENT_DISCONNECTED);
    fire_disconnected(c, KAOS_DISCONNECT_NONE);
}

static void send_keepalive(kaos_client *c, int64_t now)
{
    /* Counted as a send even if it fails, so a failing send is not retried
     * on every poll. */
    c->last_send_ms = now;
    int cid = kaos_client_ping(c);
    if (cid > 0) c->keepalive_cid = (uint32_t)cid;
}

/* Runs what is due at `now`; returns the number of callbacks fired. */
static int run_timers(kaos_client *c, int64_t now)
{
    int fired = 0;
    while (c->pending_disconnects > 0) {
        c->pending_disconnects--;
        fire_disconnected(c, KAOS_DISCONNECT_NONE);
        fired++;
    }
    int64_t age = now - c->state_since_ms;
    switch (c->state) {
    case KAOS_CLIENT_DISCONNECTED:
        break;
    case KAOS_CLIENT_CONNECTING:
        if (c->cfg.connect_timeout_ms && age >= c->cfg.connect_timeout_ms) {
            give_up(c, "connect timed out:");
            fired++;
        }
        break;
    case KAOS_CLIENT_CONNECTED:
        if (c->cfg.keepalive_ms && now - c->last_send_ms >= c->cfg.keepalive_ms)
            send_keepalive(c, now);
        break;
    case KAOS_CLIENT_DISCONNECTING:
        if (age >= DISCONNECT_TIMEOUT_MS) {
            give_up(c, "server did not acknowledge the disconnect:");
            fired++;
        }
        break;
    }
    return fired;
}

/* Milliseconds from `now` until the next timer is due (INT64_MAX if none). */
static int64_t next_timer_in(const kaos_client *c, int64_t now)
{
    int64_t due = INT64_MAX;
    switch (c->state) {
    case KAOS_CLIENT_DISCONNECTED:
        break;
    case KAOS_CLIENT_CONNECTING:
        if (c->cfg.connect_timeout_ms) due = c->state_since_ms + c->cfg.connect_timeout_ms;
        break;
    case KAOS_CLIENT_CONNECTED:
        if (c->cfg.keepalive_ms) due = c->last_send_ms + c->cfg.keepalive_ms;
        break;
    case KAOS_CLIENT_DISCONNECTING:
        due = c->state_since_ms + DISCONNECT_TIMEOUT_MS;
        break;
    }
    return due == INT64_MAX ? INT64_MAX : (due > now ? due - now : 0);
}

static void handle_received(kaos_client *c, kaos_transport_event *ev)
{
    c->stats.packets_received++;
    kn_envelope *env = NULL;
    int rc = kn_envelope_decode(ev->bytes, ev->len, &env);
    uint8_t channel = ev->channel;
    size_t len = ev->len;
    kaos_transport__release(ev);
    if (rc < 0) {
        c->stats.malformed_received++;
        KN_DEBUG("dropped %zu bytes on channel %u: %s", len, channel, kn_err_text(rc));
        return;
    }
    kaos_client__dispatch(c, env, channel);
    kn_envelope_free(env);
}

static void handle_event(kaos_client *c, kaos_transport_event *ev)
{
    switch (ev->type) {
    case KAOS_TRANSPORT_EVENT_CONNECTED:
        /* Only the peer being connected produces this; anything else would be
         * an ENet quirk, not worth crashing a game over. */
        if (c->state != KAOS_CLIENT_CONNECTING) {
            KN_WARN("ignored a connect event while not connecting");
            break;
        }
        set_state(c, KAOS_CLIENT_CONNECTED);
        c->last_send_ms = c->state_since_ms;
        KN_INFO("connected to %s:%u", c->host, c->cfg.port);
        if (c->cfg.callbacks.on_connected) c->cfg.callbacks.on_connected(c, c->cfg.user_data);
        break;
    case KAOS_TRANSPORT_EVENT_DISCONNECTED:
        if (c->state != KAOS_CLIENT_DISCONNECTED) set_state(c, KAOS_CLIENT_DISCONNECTED);
        fire_disconnected(c, ev->data);
        break;
    case KAOS_TRANSPORT_EVENT_RECEIVED:
        handle_received(c, ev);
        break;
    case KAOS_TRANSPORT_EVENT_NONE:
        break;
    }
}

static uint32_t clamp_wait(int64_t ms)
{
    return ms <= 0 ? 0 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Phase 1: run timers, and until something happened wait for the first
 * event (at most until timeout_ms, waking up for timers). Phase 2: handle
 * what else is ready without waiting. */
static int poll_events(kaos_client *c, uint32_t timeout_ms)
{
    int64_t now = kn_time_mono_ms();
    int64_t deadline = now + timeout_ms;
    int handled = run_timers(c, now);
    kaos_transport_event ev;
    while (!handled) {
        int64_t wait = deadline - now;
        int64_t timer = next_timer_in(c, now);
        if (timer < wait) wait = timer;
        int rc = kaos_transport__service(c->transport, clamp_wait(wait), &ev);
        if (rc < 0) return rc;
        if (rc > 0) {
            handle_event(c, &ev);
            handled++;
            break;
        }
        now = kn_time_mono_ms();
        handled += run_timers(c, now);
        if (now >= deadline) break;
    }
    while (handled < MAX_EVENTS_PER_POLL) {
        int rc = kaos_transport__service(c->transport, 0, &ev);
        if (rc < 0) return rc;
        if (rc == 0) break;
        handle_event(c, &ev);
        handled++;
    }
    return handled;
}

int kaos_client_poll(kaos_client *c, uint32_t timeout_ms)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    assert(!c->in_poll && "kaos_client_poll called from a callback");
    c->in_poll = true;
    int rc = poll_events(c, timeout_ms);
    /* Send at once what the callbacks queued, instead of at the next poll. */
    kaos_transport__flush(c->transport);
    c->in_poll = false;
    return rc;
}
