/* client: lifecycle, the connection state machine and the poll loop.
 *
 * States: DISCONNECTED -> COOKIE -> CONNECTING -> HANDSHAKE -> CONNECTED ->
 * DISCONNECTING -> DISCONNECTED, and any state -> DISCONNECTED. In plaintext
 * mode CONNECTING goes straight to CONNECTED. COOKIE resends the cookie
 * request until a reply; CONNECTING is ENet's connect carrying the cookie;
 * HANDSHAKE waits for the welcome, and only a good one opens the connection
 * (the connected event). Only set_state writes the state, and it asserts
 * the legal predecessor; entering DISCONNECTED wipes the connection's keys.
 * Every connect that started ends in exactly one disconnected event: from
 * ENet's disconnect event, from a timeout below, from refusing the server
 * (after an error event), or (when the client dropped a connect itself)
 * from `pending_disconnects` at the next poll. Just before it, the
 * completions still pending fire with KAOS_ERR_CLOSED, so none outlives its
 * connection. Time is read only in this file's poll path and in requests.c
 * and dispatch.c (last send, ping timestamps). The config carries its size
 * (kaos.h): fields past the caller's size take their defaults. */
#include "client_internal.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* How long a graceful disconnect may wait for the server's acknowledgement. */
#define DISCONNECT_TIMEOUT_MS 3000
/* Events handled per poll at most, so a flood cannot hold the caller's frame. */
#define MAX_EVENTS_PER_POLL 512
/* How often the cookie request is resent until the server answers. */
#define COOKIE_RESEND_MS 250
/* With connect_timeout_ms 0, how long the phases ENet does not time out
 * itself (cookie, handshake) may last. */
#define UNTIMED_PHASE_MS 30000

/* The smallest config a caller can have: the fields of the first kaos.h
 * with a `size`. A smaller size means the config was not filled by
 * kaos_client_config_default. */
#define CONFIG_SIZE_V1 (offsetof(kaos_client_config, plaintext) + sizeof(bool))

void kaos_client_config_init(kaos_client_config *cfg, size_t size)
{
    assert(cfg && size >= CONFIG_SIZE_V1 && "use kaos_client_config_default");
    kaos_client_config d = {
        .size = size,
        .host = "127.0.0.1",
        .port = 7350,
        .connect_timeout_ms = 5000,
        .keepalive_ms = 15000,
        .protocol_version = KAOS_PROTOCOL_VERSION,
    };
    /* A caller built against a newer kaos.h has fields this library does
     * not know: they are zeroed, and create accepts them only while zero. */
    memset(cfg, 0, size);
    memcpy(cfg, &d, size < sizeof d ? size : sizeof d);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* Copies the caller's config, whatever kaos.h it was built with, into a
 * full one: missing fields take their defaults. KN_ERR_CONFIG for a config
 * not filled by kaos_client_config_default, or one that sets fields this
 * library does not know. */
static int copy_config(kaos_client_config *out, const kaos_client_config *cfg)
{
    if (cfg->size < CONFIG_SIZE_V1) return KN_ERR_CONFIG;
    if (cfg->size > sizeof *out &&
        !all_zero((const uint8_t *)cfg + sizeof *out, cfg->size - sizeof *out))
        return KN_ERR_CONFIG;
    kaos_client_config_init(out, sizeof *out);
    memcpy(out, cfg, cfg->size < sizeof *out ? cfg->size : sizeof *out);
    out->size = sizeof *out;
    return KN_OK;
}

int kaos_client_create(const kaos_client_config *cfg, kaos_client **out)
{
    if (!out) return KN_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!cfg) return KN_ERR_INVALID_ARGUMENT;
    kaos_client_config full;
    if (copy_config(&full, cfg) < 0) return KN_ERR_CONFIG;
    if (!full.host || !full.host[0] || full.port == 0) return KN_ERR_CONFIG;
    if (full.protocol_version > UINT8_MAX) return KN_ERR_CONFIG; /* one byte on the wire */

    kaos_client *c = kn_calloc(1, sizeof *c);
    if (!c) return KN_ERR_NOMEM;
    c->cfg = full;
    c->next_cid = 1;
    kn_map_init(&c->pending);
    int rc = KN_ERR_NOMEM;
    c->host = kn_strdup(full.host);
    if (!c->host) goto fail;
    c->cfg.host = c->host;
    rc = kaos_client__secure_create(c, &full);
    if (rc < 0) goto fail;
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
    kaos_client__secure_reset(c);
    kaos_client__session_clear(c);
    kaos_client__drop_pending(c); /* never fired after destroy (kaos.h) */
    kn_free(c->presences);
    kn_free(c->users);
    kn_free(c->host);
    kn_free(c);
}

static void set_state(kaos_client *c, kaos_client_state next)
{
    switch (next) {
    case KAOS_CLIENT_COOKIE:
        assert(c->state == KAOS_CLIENT_DISCONNECTED);
        break;
    case KAOS_CLIENT_CONNECTING:
        assert(c->state == KAOS_CLIENT_COOKIE);
        break;
    case KAOS_CLIENT_HANDSHAKE:
        assert(c->state == KAOS_CLIENT_CONNECTING && !c->cfg.plaintext);
        break;
    case KAOS_CLIENT_CONNECTED:
        assert(c->state == KAOS_CLIENT_HANDSHAKE ||
               (c->state == KAOS_CLIENT_CONNECTING && c->cfg.plaintext));
        break;
    case KAOS_CLIENT_DISCONNECTING:
        assert(c->state == KAOS_CLIENT_CONNECTED);
        break;
    case KAOS_CLIENT_DISCONNECTED:
        assert(c->state != KAOS_CLIENT_DISCONNECTED);
        kaos_client__secure_reset(c);
        break;
    }
    c->state = next;
    c->state_since_ms = kn_time_mono_ms();
}

int kaos_client_connect(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    if (c->state != KAOS_CLIENT_DISCONNECTED) return KN_ERR_FAILED_PRECONDITION;
    int rc = kaos_client__secure_check(c);
    if (rc < 0) return rc;
    rc = kaos_transport__open(c->transport, c->host, c->cfg.port);
    if (rc < 0) return rc;
    set_state(c, KAOS_CLIENT_COOKIE);
    c->connect_since_ms = c->state_since_ms;
    c->cookie_due_ms = c->state_since_ms; /* the first request leaves at the next poll */
    c->cookie_busy = false;
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
    case KAOS_CLIENT_COOKIE:
    case KAOS_CLIENT_CONNECTING:
    case KAOS_CLIENT_HANDSHAKE:
        /* ENet has no graceful way out of its connect, and a connection
         * still in our handshake has nothing to flush: drop it and owe the
         * caller its disconnected event at the next poll. */
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

/* --- events --------------------------------------------------------------------------- */

/* Each setter replaces one registration; kaos_client's events struct may
 * grow with new kinds without touching any public struct. */
#define DEFINE_EVENT_SETTER(name, type)                                                            \
    void kaos_client_on_##name(kaos_client *c, type fn, void *ud)                                  \
    {                                                                                              \
        assert(c && "kaos_client_on_" #name " needs a client");                                    \
        c->events.name.fn = fn;                                                                    \
        c->events.name.ud = ud;                                                                    \
    }

DEFINE_EVENT_SETTER(connected, kaos_connected_fn)
DEFINE_EVENT_SETTER(disconnected, kaos_disconnected_fn)
DEFINE_EVENT_SETTER(error, kaos_error_fn)
DEFINE_EVENT_SETTER(match_data, kaos_match_data_fn)
DEFINE_EVENT_SETTER(match_presence, kaos_match_presence_fn)
DEFINE_EVENT_SETTER(match_end, kaos_match_end_fn)
DEFINE_EVENT_SETTER(shutdown_notice, kaos_shutdown_notice_fn)
DEFINE_EVENT_SETTER(notifications, kaos_notifications_event_fn)
DEFINE_EVENT_SETTER(status_presence, kaos_status_presence_fn)
DEFINE_EVENT_SETTER(matchmaker_matched, kaos_matchmaker_matched_fn)
DEFINE_EVENT_SETTER(party_presence, kaos_party_presence_fn)
DEFINE_EVENT_SETTER(party_data, kaos_party_data_fn)
DEFINE_EVENT_SETTER(party_leader, kaos_party_leader_fn)
DEFINE_EVENT_SETTER(party_join_request, kaos_party_join_request_fn)
DEFINE_EVENT_SETTER(party_close, kaos_party_close_fn)
DEFINE_EVENT_SETTER(party_ticket, kaos_party_ticket_fn)
DEFINE_EVENT_SETTER(stream_presence, kaos_stream_presence_fn)
DEFINE_EVENT_SETTER(stream_data, kaos_stream_data_fn)
DEFINE_EVENT_SETTER(channel_message, kaos_channel_message_fn)
DEFINE_EVENT_SETTER(channel_presence, kaos_channel_presence_fn)

int kaos_client_flush(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    assert(!c->in_poll && "kaos_client_flush called from a callback");
    kaos_transport__flush(c->transport);
    return KN_OK;
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

/* The state is DISCONNECTED before the callbacks run, so they may
 * reconnect. The completions still pending go first: their requests died
 * with the connection. */
static void fire_disconnected(kaos_client *c, uint32_t reason)
{
    KN_INFO("disconnected from %s:%u (reason %u: %s)", c->host, c->cfg.port, reason,
            kaos_disconnect_reason_text(reason));
    kaos_client__fail_pending(c, KN_ERR_CLOSED, "disconnected before the answer arrived");
    if (c->events.disconnected.fn) c->events.disconnected.fn(c, reason, c->events.disconnected.ud);
}

/* Drops the connection for a local reason and reports it. */
static void give_up(kaos_client *c, const char *why)
{
    KN_WARN("%s %s:%u", why, c->host, c->cfg.port);
    kaos_transport__abort(c->transport);
    set_state(c, KAOS_CLIENT_DISCONNECTED);
    fire_disconnected(c, KAOS_DISCONNECT_NONE);
}

/* The client will not talk to this server: say why (the error event, cid
 * 0, `code` a KAOS_ERR_*), drop the connection and report `reason`. The
 * state is DISCONNECTED before either callback runs. */
static void refuse(kaos_client *c, int code, uint32_t reason, const char *message)
{
    KN_WARN("%s (%s:%u)", message, c->host, c->cfg.port);
    kaos_transport__abort(c->transport);
    set_state(c, KAOS_CLIENT_DISCONNECTED);
    kaos_result r = {.cid = 0, .code = code, .message = message};
    if (c->events.error.fn) c->events.error.fn(c, &r, c->events.error.ud);
    fire_disconnected(c, reason);
}

/* The connection is open for requests: plaintext, or after a good welcome. */
static void open_connection(kaos_client *c)
{
    set_state(c, KAOS_CLIENT_CONNECTED);
    c->last_send_ms = c->state_since_ms;
    KN_INFO("connected to %s:%u (%s)", c->host, c->cfg.port, c->sealed ? "sealed" : "in clear");
    if (c->events.connected.fn) c->events.connected.fn(c, c->events.connected.ud);
}

static void send_cookie_request(kaos_client *c, int64_t now)
{
    int rc = kaos_transport__request_cookie(c->transport, (uint8_t)c->cfg.protocol_version);
    if (rc < 0) KN_DEBUG("cookie request not sent (retrying): %s", kn_err_text(rc));
    c->cookie_due_ms = now + COOKIE_RESEND_MS;
}

/* When the connect attempt gives up: connect_timeout_ms after it began or,
 * without one, UNTIMED_PHASE_MS into a phase ENet does not time out. */
static int64_t connect_deadline(const kaos_client *c)
{
    if (c->cfg.connect_timeout_ms) return c->connect_since_ms + c->cfg.connect_timeout_ms;
    if (c->state == KAOS_CLIENT_CONNECTING) return INT64_MAX;
    return c->state_since_ms + UNTIMED_PHASE_MS;
}

static void send_keepalive(kaos_client *c, int64_t now)
{
    /* Counted as a send even if it fails, so a failing send is not retried
     * on every poll. */
    c->last_send_ms = now;
    /* No completion: its Pong is consumed without reaching the caller. */
    kaos_client_ping(c, NULL, NULL);
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
    case KAOS_CLIENT_COOKIE:
        if (now >= connect_deadline(c)) {
            give_up(c, c->cookie_busy ? "connect timed out: the server is overloaded and asked us "
                                        "to wait; try again later:"
                                      : "connect timed out: no answer to the cookie request; is a "
                                        "KaosNet server listening at");
            fired++;
        } else if (now >= c->cookie_due_ms) {
            send_cookie_request(c, now);
        }
        break;
    case KAOS_CLIENT_CONNECTING:
        if (now >= connect_deadline(c)) {
            give_up(c, "connect timed out:");
            fired++;
        }
        break;
    case KAOS_CLIENT_HANDSHAKE:
        if (now >= connect_deadline(c)) {
            give_up(c, "connect timed out: no handshake welcome from");
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
    case KAOS_CLIENT_COOKIE:
        due = connect_deadline(c);
        if (c->cookie_due_ms < due) due = c->cookie_due_ms;
        break;
    case KAOS_CLIENT_CONNECTING:
    case KAOS_CLIENT_HANDSHAKE:
        due = connect_deadline(c);
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

/* Drops a packet the client will not deliver. */
static void reject(kaos_client *c, uint8_t channel, size_t len, const char *why)
{
    c->stats.packets_rejected++;
    KN_DEBUG("rejected %zu bytes on channel %u: %s", len, channel, why);
}

/* The only packet the HANDSHAKE state accepts is the welcome. */
static void handle_handshake_packet(kaos_client *c, kaos_transport_event *ev)
{
    uint8_t channel = ev->channel;
    size_t len = ev->len;
    kaos_welcome_result r = kaos_client__read_welcome(c, channel, ev->bytes, ev->len);
    kaos_transport__release(ev);
    switch (r.outcome) {
    case KAOS_WELCOME_IGNORED:
        reject(c, channel, len, "not a welcome, during the handshake");
        break;
    case KAOS_WELCOME_SEALED:
    case KAOS_WELCOME_PLAINTEXT:
        open_connection(c);
        break;
    case KAOS_WELCOME_REFUSED:
        refuse(c, r.code, r.reason, r.message);
        break;
    }
}

static void handle_received(kaos_client *c, kaos_transport_event *ev)
{
    c->stats.packets_received++;
    uint8_t channel = ev->channel;
    size_t len = ev->len;
    if (c->state == KAOS_CLIENT_HANDSHAKE) {
        handle_handshake_packet(c, ev);
        return;
    }
    if (c->state != KAOS_CLIENT_CONNECTED && c->state != KAOS_CLIENT_DISCONNECTING) {
        kaos_transport__release(ev);
        reject(c, channel, len, "not connected");
        return;
    }
    const uint8_t *plain;
    size_t plain_len;
    uint8_t *heap;
    int rc = kaos_client__open_packet(c, channel, ev->bytes, ev->len, &plain, &plain_len, &heap);
    if (rc < 0) {
        kaos_transport__release(ev);
        reject(c, channel, len, kn_err_text(rc));
        return;
    }
    kn_envelope *env = NULL;
    rc = kn_envelope_decode(plain, plain_len, &env);
    kaos_transport__release(ev);
    kn_free(heap);
    if (rc < 0) {
        c->stats.malformed_received++;
        KN_DEBUG("dropped %zu bytes on channel %u: %s", plain_len, channel, kn_err_text(rc));
        return;
    }
    kaos_client__dispatch(c, env, channel);
    kn_envelope_free(env);
}

static void handle_cookie(kaos_client *c, const kaos_transport_event *ev)
{
    /* The transport reports replies only while we wait for one. */
    if (c->state != KAOS_CLIENT_COOKIE) return;
    char message[96];
    switch (ev->status) {
    case KN_COOKIE_OK: {
        kaos_transport__set_ping_interval(c->transport, c->cfg.ping_interval_ms);
        int rc = kaos_transport__connect(c->transport, ev->data);
        if (rc < 0) {
            KN_ERROR("cannot start the connect: %s", kn_err_text(rc));
            give_up(c, "connect failed:");
            break;
        }
        set_state(c, KAOS_CLIENT_CONNECTING);
        break;
    }
    case KN_COOKIE_BAD_VERSION:
        snprintf(message, sizeof message, "unsupported protocol version %u; the server speaks %u",
                 (unsigned)c->cfg.protocol_version, (unsigned)ev->version);
        refuse(c, KN_ERR_FAILED_PRECONDITION, KAOS_DISCONNECT_UNSUPPORTED_VERSION, message);
        break;
    default:
        /* BUSY (or a status newer than us): the resend timer asks again. */
        c->cookie_busy = true;
        KN_DEBUG("server busy (cookie status %u); asking again", ev->status);
        break;
    }
}

/* ENet connected: open at once in plaintext mode, else start the handshake. */
static void handle_connected(kaos_client *c)
{
    /* Only the peer being connected produces this; anything else would be
     * an ENet quirk, not worth crashing a game over. */
    if (c->state != KAOS_CLIENT_CONNECTING) {
        KN_WARN("ignored a connect event while not connecting");
        return;
    }
    if (c->cfg.plaintext) {
        open_connection(c);
        return;
    }
    int rc = kaos_client__send_hello(c);
    if (rc < 0) {
        KN_ERROR("cannot send the handshake hello: %s", kn_err_text(rc));
        give_up(c, "connect failed:");
        return;
    }
    c->stats.packets_sent++;
    set_state(c, KAOS_CLIENT_HANDSHAKE);
}

static void handle_event(kaos_client *c, kaos_transport_event *ev)
{
    switch (ev->type) {
    case KAOS_TRANSPORT_EVENT_CONNECTED:
        handle_connected(c);
        break;
    case KAOS_TRANSPORT_EVENT_DISCONNECTED:
        if (c->state != KAOS_CLIENT_DISCONNECTED) set_state(c, KAOS_CLIENT_DISCONNECTED);
        fire_disconnected(c, ev->data);
        break;
    case KAOS_TRANSPORT_EVENT_RECEIVED:
        handle_received(c, ev);
        break;
    case KAOS_TRANSPORT_EVENT_COOKIE:
        handle_cookie(c, ev);
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
