/* relay: relayed matches as streams of the tracker (kn_relay.h).
 *
 * Invariants: a relayed match's stream key is (MATCH_RELAYED, uuid, "",
 * node) and its match id is "<uuid>.<node>"; the relay keeps no state of
 * its own after create. */
#include "kn_relay.h"
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_crypto.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_relay_member_entity, kn_relay_member, PRESENCE);

struct kn_relay {
    kn_relay_config cfg;
    char node[KN_STREAM_LABEL_MAX + 1];
    kn_tracker *tracker;
    uint8_t token_key[32]; /* signs matchmaker tokens; random per process */
};

static kn_relay_member member_of(const kn_presence *p)
{
    kn_relay_member m = {.conn = p->conn, .slot = p->slot};
    memcpy(m.user_id, p->user_id, sizeof m.user_id);
    memcpy(m.session_id, p->session_id, sizeof m.session_id);
    memcpy(m.username, p->username, sizeof m.username);
    return m;
}

/* The mode's presence events: MatchPresenceEvent naming the handle. */
static size_t build_event(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                          size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                          size_t cap)
{
    (void)s;
    kn_relay *r = ud;
    if (n_joins + n_leaves != 1) return 0; /* the tracker changes one presence at a time */
    kn_relay_member m = member_of(n_joins ? joins : leaves);
    Kaos__V1__Presence p, *one[1] = {&p};
    kn_entity_to_proto(&kn_relay_member_entity, &m, &p);
    Kaos__V1__MatchPresenceEvent ev;
    kn_envelope env;
    kn_envelope_presence_event(&env, &ev, one, handle, n_joins == 1);
    size_t n = kn_envelope_packed_size(&env);
    if (n > cap || n > r->cfg.max_message_size) return 0;
    return kn_envelope_pack(&env, buf);
}

int kn_relay_create(const kn_relay_config *cfg, kn_tracker *tracker, kn_relay **out)
{
    *out = NULL;
    if (!cfg->node || strlen(cfg->node) > KN_STREAM_LABEL_MAX || cfg->max_size < 2 ||
        cfg->default_size < 2 || cfg->default_size > cfg->max_size ||
        cfg->max_matches_per_conn == 0)
        return KN_ERR_INVALID_ARGUMENT;
    kn_relay *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    kn_crypto_random(r->token_key, sizeof r->token_key);
    r->cfg = *cfg;
    snprintf(r->node, sizeof r->node, "%s", cfg->node);
    r->cfg.node = r->node;
    r->tracker = tracker;
    kn_tracker_mode mode = {.name = "match",
                            .max_presences = cfg->default_size,
                            .max_per_session = cfg->max_matches_per_conn,
                            .build = build_event,
                            .ud = r};
    int rc = kn_tracker_mode_set(tracker, KN_STREAM_MATCH_RELAYED, &mode);
    if (rc) {
        kn_free(r);
        return rc;
    }
    *out = r;
    return KN_OK;
}

void kn_relay_destroy(kn_relay *r)
{
    kn_free(r);
}

void kn_relay_joined_deinit(kn_relay_joined *j)
{
    kn_free(j->others);
    j->others = NULL;
    j->other_count = 0;
}

size_t kn_relay_match_count(kn_relay *r)
{
    kn_tracker_stats st;
    kn_tracker_stats_get(r->tracker, &st);
    return st.per_mode[KN_STREAM_MATCH_RELAYED];
}

/* --- create / join / leave -------------------------------------------------- */

static kn_presence presence_of(const kn_relay_member *who)
{
    kn_presence p = {.conn = who->conn};
    memcpy(p.user_id, who->user_id, sizeof p.user_id);
    memcpy(p.session_id, who->session_id, sizeof p.session_id);
    memcpy(p.username, who->username, sizeof p.username);
    return p;
}

/* Tracks who on the match of uuid; fills out from what the tracker did. */
static int track(kn_relay *r, const char *uuid, const kn_relay_member *who, uint32_t max_size,
                 bool must_exist, kn_relay_joined *out, char *msg, size_t cap)
{
    kn_stream s = {.mode = KN_STREAM_MATCH_RELAYED};
    snprintf(s.subject, sizeof s.subject, "%s", uuid);
    snprintf(s.label, sizeof s.label, "%s", r->node);
    kn_presence p = presence_of(who);
    kn_tracker_opts opts = {.max_size = max_size, .must_exist = must_exist, .list_others = true};
    kn_tracker_joined j;
    int rc = kn_tracker_track(r->tracker, &s, &p, &opts, &j, msg, cap);
    if (rc) return rc;
    *out = (kn_relay_joined){.handle = j.handle, .size = j.count, .max_size = j.max_size};
    snprintf(out->match_id, sizeof out->match_id, "%s.%s", uuid, r->node);
    out->self = *who;
    out->self.slot = j.slot;
    if (j.n_others) {
        out->others = kn_calloc(j.n_others, sizeof *out->others);
        if (!out->others) { /* the join stands; undo it, as the caller cannot answer */
            kn_free(j.others);
            kn_tracker_untrack_handle(r->tracker, KN_STREAM_MATCH_RELAYED, j.handle, who->conn);
            return KN_ERR_NOMEM;
        }
        for (size_t i = 0; i < j.n_others; i++)
            out->others[i] = member_of(&j.others[i]);
        out->other_count = j.n_others;
    }
    kn_free(j.others);
    return KN_OK;
}

int kn_relay_match_create(kn_relay *r, const kn_relay_member *who, uint32_t max_size,
                          kn_relay_joined *out, char *msg, size_t cap)
{
    *out = (kn_relay_joined){0};
    if (max_size == 0) max_size = r->cfg.default_size;
    if (max_size < 2 || max_size > r->cfg.max_size) {
        snprintf(msg, cap, "max_size must be 2-%u", r->cfg.max_size);
        return KN_ERR_INVALID_ARGUMENT;
    }
    char uuid[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(uuid);
    return track(r, uuid, who, max_size, false, out, msg, cap);
}

int kn_relay_match_join(kn_relay *r, const char *match_id, const kn_relay_member *who,
                        kn_relay_joined *out, char *msg, size_t cap)
{
    *out = (kn_relay_joined){0};
    const char *dot = match_id ? strchr(match_id, '.') : NULL;
    if (!dot || dot == match_id || (size_t)(dot - match_id) > KN_STREAM_ID_MAX ||
        strcmp(dot + 1, r->node)) {
        snprintf(msg, cap, "match not found");
        return match_id && *match_id ? KN_ERR_NOT_FOUND : KN_ERR_INVALID_ARGUMENT;
    }
    char uuid[KN_STREAM_ID_MAX + 1];
    snprintf(uuid, sizeof uuid, "%.*s", (int)(dot - match_id), match_id);
    int rc = track(r, uuid, who, 0, true, out, msg, cap);
    if (rc == KN_ERR_NOT_FOUND) snprintf(msg, cap, "match not found");
    if (rc == KN_ERR_ALREADY_EXISTS) snprintf(msg, cap, "already in this match");
    return rc;
}

int kn_relay_match_leave(kn_relay *r, uint32_t handle, kn_relay_conn conn)
{
    return kn_tracker_untrack_handle(r->tracker, KN_STREAM_MATCH_RELAYED, handle, conn);
}

/* --- data ------------------------------------------------------------------ */

typedef struct data_msg {
    const kn_relay *r;
    int64_t op_code;
    const uint8_t *data;
    size_t len;
} data_msg;

static size_t build_data(void *ud, const kn_presence *sender, uint32_t handle, uint8_t *buf,
                         size_t cap)
{
    const data_msg *d = ud;
    Kaos__V1__MatchData md;
    kn_envelope env;
    kn_envelope_match_data(&env, &md, handle, sender->slot, d->op_code, d->data, d->len);
    size_t n = kn_envelope_packed_size(&env);
    if (n > cap || n > d->r->cfg.max_message_size) return 0;
    return kn_envelope_pack(&env, buf);
}

int kn_relay_data(kn_relay *r, uint32_t handle, kn_relay_conn sender, int64_t op_code,
                  const uint8_t *data, size_t len, const uint32_t *targets, size_t target_count,
                  uint8_t channel, bool reliable)
{
    data_msg d = {r, op_code, data, len};
    return kn_tracker_forward(r->tracker, KN_STREAM_MATCH_RELAYED, handle, sender, targets,
                              target_count, build_data, &d, channel, reliable);
}

/* --- matchmaker tokens ----------------------------------------------------------------------
 * "<match id>~<32 hex>": a fresh relayed match's id and the first 16 bytes
 * of its HMAC-SHA-256 under the relay's key, so only the server can name a
 * match that a token creates. */

static void token_mac(const kn_relay *r, const char *match_id, size_t len, char hex[33])
{
    uint8_t mac[KN_CRYPTO_HMAC_SHA256_SIZE];
    kn_crypto_hmac_sha256(mac, r->token_key, sizeof r->token_key, match_id, len);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

void kn_relay_token_mint(kn_relay *r, char token[KN_RELAY_TOKEN_MAX])
{
    char uuid[KN_UUID_STR_LEN + 1], id[112], hex[33];
    kn_uuid_v4(uuid);
    int n = snprintf(id, sizeof id, "%s.%s", uuid, r->node);
    token_mac(r, id, (size_t)n, hex);
    snprintf(token, KN_RELAY_TOKEN_MAX, "%s~%s", id, hex);
}

int kn_relay_match_join_token(kn_relay *r, const char *token, const kn_relay_member *who,
                              uint32_t max_size, kn_relay_joined *out, char *msg, size_t cap)
{
    *out = (kn_relay_joined){0};
    const char *tilde = strrchr(token, '~');
    const char *dot = tilde ? memchr(token, '.', (size_t)(tilde - token)) : NULL;
    char hex[33];
    if (tilde) token_mac(r, token, (size_t)(tilde - token), hex);
    if (!dot || dot == token || (size_t)(dot - token) > KN_STREAM_ID_MAX ||
        strlen(tilde + 1) != 32 || !kn_crypto_equal(hex, tilde + 1, 32)) {
        snprintf(msg, cap, "invalid match token");
        return KN_ERR_INVALID_ARGUMENT;
    }
    char uuid[KN_STREAM_ID_MAX + 1];
    snprintf(uuid, sizeof uuid, "%.*s", (int)(dot - token), token);
    if (max_size < 2 || max_size > r->cfg.max_size) max_size = r->cfg.max_size;
    int rc = track(r, uuid, who, max_size, false, out, msg, cap);
    if (rc == KN_ERR_ALREADY_EXISTS) snprintf(msg, cap, "already in this match");
    return rc;
}
