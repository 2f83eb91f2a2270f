/* ast_player: see ast_player.h. Every state change happens in a callback
 * or in ast_player_poll, both on the caller's thread. Each request names
 * its completion (on_session, on_found, on_joined); the connection and
 * match events are registered on the client. */
#define _POSIX_C_SOURCE 200809L

#include "ast_player.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RPC_ID        "asteroids_find_or_create"
#define JOIN_ATTEMPTS 5
#define RETRY_MS      200
/* A request refused with UNAVAILABLE ("server overloaded; try again later")
 * is tried again after 100, 200, 400, 800 and 1600 ms, then fails. */
#define BUSY_TRIES      5
#define BUSY_BACKOFF_MS 100

int64_t ast_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ast_state_name(ast_state s)
{
    static const char *const names[] = {"connecting", "authenticating", "waiting",
                                        "finding",    "joining",        "playing",
                                        "leaving",    "done",           "failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static void fail(ast_player *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(ast_player *p, const char *fmt, ...)
{
    if (p->state == AST_FAILED) return; /* the first failure is the one worth telling */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->state = AST_FAILED;
    if (p->client && kaos_client_is_connected(p->client)) kaos_client_disconnect(p->client);
}

static void device_id(const char *prefix, char *out, size_t cap)
{
    unsigned char bytes[12] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    if (got != sizeof bytes) { /* no /dev/urandom: unique enough for a demo */
        uint64_t x = (uint64_t)ast_now_ms() ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof bytes; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            bytes[i] = (unsigned char)(x >> 56);
        }
    }
    size_t n = (size_t)snprintf(out, cap, "%s-", prefix ? prefix : "asteroids");
    for (size_t i = 0; i < sizeof bytes && n + 2 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", bytes[i]);
}

static void on_joined(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud);
static void on_found(kaos_client *c, const kaos_result *r, const char *payload, size_t len,
                     void *ud);

static void join(ast_player *p, const char *id)
{
    snprintf(p->match_id, sizeof p->match_id, "%s", id);
    p->state = AST_JOINING;
    p->attempts++;
    int rc = kaos_client_match_join(p->client, p->match_id, NULL, on_joined, p);
    if (rc < 0) fail(p, "cannot join: %s", kaos_err_text(rc));
}

static bool request_failed(ast_player *p, const kaos_result *r);

static void on_ticket(kaos_client *c, const kaos_result *r, const char *ticket, void *ud)
{
    (void)c;
    (void)ticket;
    request_failed(ud, r); /* else: FINDING until MatchmakerMatched */
}

/* The matchmaker's answer: the asteroids match the server's matched hook
 * created for the group (lua-examples/asteroids.lua). */
static void on_matched(kaos_client *c, const kaos_matchmaker_matched *m, void *ud)
{
    (void)c;
    ast_player *p = ud;
    if (p->state != AST_FINDING) return;
    if (!*m->match_id) {
        fail(p, "matched without an asteroids match (is the matched hook of asteroids.lua "
                "loaded?)");
        return;
    }
    join(p, m->match_id);
}

/* A ticket: same game and region, skill within 300 either way, 2-4 players. */
static void find_by_matchmaker(ast_player *p)
{
    double skill = p->cfg.skill > 0 ? p->cfg.skill : 1000;
    char query[192];
    snprintf(query, sizeof query,
             "+properties.game:asteroids +properties.region:%s +properties.skill:>=%.0f "
             "+properties.skill:<=%.0f",
             p->cfg.region, skill - 300, skill + 300);
    const char *names[] = {"game", "region"}, *values[] = {"asteroids", p->cfg.region};
    const char *num_names[] = {"skill"};
    kaos_matchmaker_request req = {.min_count = 2,
                                   .max_count = 4,
                                   .query = query,
                                   .properties = {names, values, 2, num_names, &skill, 1}};
    int rc = kaos_client_matchmaker_add(p->client, &req, on_ticket, p);
    if (rc < 0) fail(p, "cannot add a matchmaker ticket: %s", kaos_err_text(rc));
}

static void find(ast_player *p)
{
    p->state = AST_FINDING;
    if (p->cfg.region) {
        find_by_matchmaker(p);
        return;
    }
    int rc = kaos_client_rpc_call(p->client, RPC_ID, "", on_found, p);
    if (rc < 0) fail(p, "cannot call %s: %s", RPC_ID, kaos_err_text(rc));
}

/* A find or a join refused with UNAVAILABLE: true when another try is due
 * later (ast_player_poll makes it), false when the tries are used up. */
static bool retry_later(ast_player *p, const kaos_result *r)
{
    if (r->code != KAOS_ERR_UNAVAILABLE || p->busy_tries >= BUSY_TRIES) return false;
    p->retry_at_ms = ast_now_ms() + ((int64_t)BUSY_BACKOFF_MS << p->busy_tries);
    p->busy_tries++;
    p->state = AST_WAITING;
    return true;
}

/* A request's completion reported an error: true (and the player failed). */
static bool request_failed(ast_player *p, const kaos_result *r)
{
    if (r->code == KAOS_OK) return false;
    fail(p, "error while %s: %s (%s)", ast_state_name(p->state), r->message,
         kaos_err_text(r->code));
    return true;
}

/* --- callbacks ------------------------------------------------------------------------------ */

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);

static void on_connected(kaos_client *c, void *ud)
{
    ast_player *p = ud;
    char dev[64];
    device_id(p->cfg.device_prefix, dev, sizeof dev);
    p->state = AST_AUTHENTICATING;
    int rc = kaos_client_auth_device(c, dev, p->cfg.username, true, NULL, on_session, p);
    if (rc < 0) fail(p, "cannot authenticate: %s", kaos_err_text(rc));
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    ast_player *p = ud;
    if (p->state == AST_LEAVING)
        p->state = AST_DONE;
    else if (p->state != AST_FAILED)
        fail(p, "disconnected while %s (%s)", ast_state_name(p->state),
             reason ? kaos_disconnect_reason_text(reason) : "no answer from the server");
}

/* Errors of no request of ours (cid 0: the connection itself). */
static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    ast_player *p = ud;
    if (p->state == AST_PLAYING) return; /* not about our requests: keep playing */
    fail(p, "error while %s: %s (%s)", ast_state_name(p->state), r->message,
         kaos_err_text(r->code));
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    ast_player *p = ud;
    if (request_failed(p, r) || p->state != AST_AUTHENTICATING) return;
    snprintf(p->user_id, sizeof p->user_id, "%s", s->user_id);
    if (p->cfg.match_id)
        join(p, p->cfg.match_id);
    else
        p->state = AST_WAITING; /* ast_player_poll calls the RPC once may_find is set */
}

static void on_found(kaos_client *c, const kaos_result *r, const char *payload, size_t len,
                     void *ud)
{
    ast_player *p = ud;
    if (p->state == AST_FINDING && retry_later(p, r)) return;
    if (request_failed(p, r) || p->state != AST_FINDING) return;
    if (!len || len >= sizeof p->match_id) {
        fail(p, "%s answered %zu bytes, not a match id", RPC_ID, len);
        return;
    }
    join(p, payload);
}

static void on_joined(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud)
{
    ast_player *p = ud;
    /* A join refused because the match filled up (PERMISSION_DENIED) or ended
     * (NOT_FOUND) since the RPC answered: ask again. */
    if (p->state == AST_JOINING && !p->cfg.match_id &&
        (r->code == KAOS_ERR_PERMISSION_DENIED || r->code == KAOS_ERR_NOT_FOUND) &&
        p->attempts < JOIN_ATTEMPTS) {
        p->state = AST_WAITING;
        p->retry_at_ms = ast_now_ms() + RETRY_MS;
        return;
    }
    if (p->state == AST_JOINING && retry_later(p, r)) return;
    if (request_failed(p, r) || p->state != AST_JOINING) return;
    p->state = AST_PLAYING;
    p->handle = m->handle;
    snprintf(p->match_id, sizeof p->match_id, "%s", m->match_id);
    p->joined_ms = ast_now_ms();
}

static void on_snapshot(ast_player *p, const uint8_t *data, size_t len)
{
    if (ast_snapshot_decode(data, len, &p->snap) != 0) {
        p->malformed++;
        return;
    }
    p->have_snapshot = true;
    p->snapshots++;
    const ast_ship *me = ast_player_ship(p);
    /* The first snapshot echoing a new seq closes that input's round trip. */
    if (me && me->last_seq != p->acked_seq && p->sent_ms[me->last_seq]) {
        p->rtt_sum_ms += ast_now_ms() - p->sent_ms[me->last_seq];
        p->rtt_n++;
        p->acked_seq = me->last_seq;
    }
}

static void on_event(ast_player *p, int64_t op, const uint8_t *data, size_t len)
{
    ast_event ev;
    if (ast_event_decode(op, data, len, &ev) != 0) {
        p->malformed++;
        return;
    }
    p->events++;
    switch (op) {
    case AST_OP_WELCOME:
        p->welcomed = true;
        p->my_id = ev.id;
        p->tick_rate = ev.tick_rate;
        p->max_players = ev.max_players;
        break;
    case AST_OP_JOINED:
        if (ev.id >= 1 && ev.id <= AST_MAX_PLAYERS) {
            ast_roster_entry *r = &p->roster[ev.id];
            r->present = true;
            r->slot = ev.slot;
            r->score = ev.score;
            memcpy(r->name, ev.name, sizeof r->name);
        }
        break;
    case AST_OP_LEFT:
        if (ev.id >= 1 && ev.id <= AST_MAX_PLAYERS) p->roster[ev.id].present = false;
        break;
    case AST_OP_SCORE:
        if (ev.id >= 1 && ev.id <= AST_MAX_PLAYERS) p->roster[ev.id].score = ev.score;
        break;
    case AST_OP_DEATH:
        if (p->welcomed && ev.id == p->my_id) p->deaths++;
        if (p->welcomed && ev.killer == p->my_id) p->kills++;
        break;
    default:
        break;
    }
    if (p->cfg.on_event) p->cfg.on_event(p, &ev, p->cfg.ud);
}

static void on_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op,
                          const uint8_t *data, size_t len, bool reliable, void *ud)
{
    ast_player *p = ud;
    /* Match data and the Match answer travel on different channels: data may
     * come first, and it can only be from the match being joined. */
    if (!p->handle) p->handle = match;
    if (match != p->handle) return;
    p->bytes += len;
    if (op == AST_OP_SNAPSHOT)
        on_snapshot(p, data, len);
    else
        on_event(p, op, data, len);
}

static void on_match_end(kaos_client *c, uint32_t match, const char *match_id, int code,
                         const char *reason, void *ud)
{
    ast_player *p = ud;
    snprintf(p->ended, sizeof p->ended, "%s", *reason ? reason : "match ended");
    fail(p, "the match ended: %s (code %d)", p->ended, code);
}

/* --- the public functions ----------------------------------------------------------------- */

int ast_player_option(ast_player_config *cfg, int opt, const char *arg)
{
    char *end = NULL;
    switch (opt) {
    case 'k': cfg->server_key = arg; return 1;
    case 'i': cfg->insecure = true; return 1;
    case 'h': cfg->host = arg; return 1;
    case 'p': {
        long port = strtol(arg, &end, 10);
        if (*end || port < 1 || port > 65535) return -1;
        cfg->port = (uint16_t)port;
        return 1;
    }
    case 'm': cfg->match_id = arg; return 1;
    case 'M':
        cfg->region = arg;
        return *arg ? 1 : -1;
    case 'S':
        cfg->skill = strtod(arg, &end);
        return *end || !(cfg->skill > 0 && cfg->skill < 1e6) ? -1 : 1;
    default: return 0;
    }
}

bool ast_player_have_key(ast_player_config *cfg, const char *prog)
{
    const char *env = getenv("KAOS_SERVER_KEY");
    if (!cfg->server_key && env && *env) cfg->server_key = env;
    if (cfg->server_key || cfg->insecure) return true;
    fprintf(stderr, "%s: no server key: pass -k KEY (the \"server public key\" the server printed "
                    "at start), or -i for insecure dev mode\n", prog);
    return false;
}

int ast_player_start(ast_player *p, const ast_player_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    kaos_client_config kc;
    kaos_client_config_default(&kc);
    if (cfg->host) kc.host = cfg->host;
    if (cfg->port) kc.port = cfg->port;
    kc.server_key = cfg->server_key;
    kc.insecure_dev_mode = cfg->insecure;
    kc.keepalive_ms = 2000;
    int rc = kaos_client_create(&kc, &p->client);
    if (rc < 0) {
        snprintf(p->error, sizeof p->error, "cannot create a client: %s%s", kaos_err_text(rc),
                 rc == KAOS_ERR_CONFIG ? " (the server key must be 64 hex digits)" : "");
        p->state = AST_FAILED;
        return -1;
    }
    kaos_client_on_connected(p->client, on_connected, p);
    kaos_client_on_disconnected(p->client, on_disconnected, p);
    kaos_client_on_error(p->client, on_error, p);
    kaos_client_on_match_data(p->client, on_match_data, p);
    kaos_client_on_match_end(p->client, on_match_end, p);
    kaos_client_on_matchmaker_matched(p->client, on_matched, p);
    rc = kaos_client_connect(p->client);
    if (rc < 0) {
        snprintf(p->error, sizeof p->error, "cannot connect: %s", kaos_err_text(rc));
        p->state = AST_FAILED;
        return -1;
    }
    return 0;
}

void ast_player_poll(ast_player *p, uint32_t timeout_ms)
{
    if (!p->client) return;
    if (p->state == AST_WAITING && ast_now_ms() >= p->retry_at_ms) {
        if (p->cfg.match_id)
            join(p, p->cfg.match_id); /* a retry after UNAVAILABLE */
        else if (p->may_find)
            find(p);
    }
    int rc = kaos_client_poll(p->client, timeout_ms);
    if (rc < 0) fail(p, "poll: %s", kaos_err_text(rc));
}

int ast_player_send_input(ast_player *p, uint8_t buttons)
{
    if (p->state != AST_PLAYING) return -1;
    uint8_t buf[2];
    p->seq++;
    p->sent_ms[p->seq] = ast_now_ms();
    size_t n = ast_input_encode(buf, buttons, p->seq);
    int rc = kaos_client_match_send(p->client, p->handle, AST_OP_INPUT, buf, n, false, NULL, 0);
    if (rc < 0) return rc;
    p->inputs++;
    return 0;
}

void ast_player_stop(ast_player *p)
{
    if (!p->client || p->state == AST_DONE || p->state == AST_FAILED) return;
    if (kaos_client_disconnect(p->client) < 0)
        p->state = AST_DONE; /* nothing to disconnect */
    else
        p->state = AST_LEAVING;
}

bool ast_player_finished(const ast_player *p)
{
    return p->state == AST_DONE || p->state == AST_FAILED;
}

void ast_player_destroy(ast_player *p)
{
    kaos_client_destroy(p->client);
    p->client = NULL;
}

const ast_ship *ast_player_ship(const ast_player *p)
{
    if (!p->welcomed || !p->have_snapshot) return NULL;
    for (unsigned i = 0; i < p->snap.n_ships; i++)
        if (p->snap.ships[i].id == p->my_id) return &p->snap.ships[i];
    return NULL;
}
