/* relay: match registry, membership and fan-out for relayed matches. */
#include "kn_relay.h"
#include "kn_codec.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <stdio.h>
#include <string.h>

KN_ENTITY_DEFINE(kn_relay_member_entity, kn_relay_member, PRESENCE);

typedef struct match {
    uint32_t handle;
    uint64_t id_key;
    char match_id[112];
    uint32_t max_size, count, next_slot;
    kn_relay_member *members; /* max_size entries, count used */
    kn_relay_conn *scratch;   /* max_size entries: fan-out target list */
} match;

/* The handles a connection holds (it may be in several matches). */
typedef struct membership {
    uint32_t count;
    uint32_t handles[];
} membership;

struct kn_relay {
    kn_relay_config cfg;
    char node[65];
    kn_relay_sink sink;
    kn_map by_handle; /* handle -> match */
    kn_map by_id;     /* id_key -> match */
    kn_map by_conn;   /* conn -> membership */
    uint32_t next_handle;
    uint8_t *buf;     /* envelope scratch, max_message_size + headroom */
    size_t buf_cap;
};

int kn_relay_create(const kn_relay_config *cfg, const kn_relay_sink *sink, kn_relay **out)
{
    *out = NULL;
    if (!cfg->node || strlen(cfg->node) > 64 || cfg->max_size < 2 || cfg->default_size < 2 ||
        cfg->default_size > cfg->max_size || cfg->max_matches_per_conn == 0)
        return KN_ERR_INVALID_ARGUMENT;
    kn_relay *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    r->cfg = *cfg;
    snprintf(r->node, sizeof r->node, "%s", cfg->node);
    r->cfg.node = r->node;
    r->sink = *sink;
    kn_map_init(&r->by_handle);
    kn_map_init(&r->by_id);
    kn_map_init(&r->by_conn);
    r->buf_cap = cfg->max_message_size + 64;
    r->buf = kn_malloc(r->buf_cap);
    if (!r->buf) {
        kn_relay_destroy(r);
        return KN_ERR_NOMEM;
    }
    *out = r;
    return KN_OK;
}

static void free_match(match *m)
{
    if (!m) return;
    kn_free(m->members);
    kn_free(m->scratch);
    kn_free(m);
}

void kn_relay_destroy(kn_relay *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->by_handle.cap; i++)
        if (r->by_handle.slots[i].key) free_match(r->by_handle.slots[i].value);
    for (size_t i = 0; i < r->by_conn.cap; i++)
        if (r->by_conn.slots[i].key) kn_free(r->by_conn.slots[i].value);
    kn_map_deinit(&r->by_handle);
    kn_map_deinit(&r->by_id);
    kn_map_deinit(&r->by_conn);
    kn_free(r->buf);
    kn_free(r);
}

size_t kn_relay_match_count(const kn_relay *r)
{
    return r->by_handle.count;
}

/* --- membership index ----------------------------------------------------- */

static int add_membership(kn_relay *r, kn_relay_conn conn, uint32_t handle)
{
    membership *ms = kn_map_get(&r->by_conn, conn);
    if (!ms) {
        ms = kn_calloc(1, sizeof *ms + r->cfg.max_matches_per_conn * sizeof(uint32_t));
        if (!ms) return KN_ERR_NOMEM;
        if (kn_map_put(&r->by_conn, conn, ms)) {
            kn_free(ms);
            return KN_ERR_NOMEM;
        }
    }
    if (ms->count == r->cfg.max_matches_per_conn) return KN_ERR_RESOURCE_EXHAUSTED;
    ms->handles[ms->count++] = handle;
    return KN_OK;
}

static void drop_membership(kn_relay *r, kn_relay_conn conn, uint32_t handle)
{
    membership *ms = kn_map_get(&r->by_conn, conn);
    if (!ms) return;
    for (uint32_t i = 0; i < ms->count; i++)
        if (ms->handles[i] == handle) ms->handles[i] = ms->handles[--ms->count];
    if (ms->count == 0) kn_free(kn_map_del(&r->by_conn, conn));
}

static bool has_room(kn_relay *r, kn_relay_conn conn)
{
    membership *ms = kn_map_get(&r->by_conn, conn);
    return !ms || ms->count < r->cfg.max_matches_per_conn;
}

/* --- events ---------------------------------------------------------------- */

/* Packs env into the scratch buffer and sends it to every member but skip. */
static void broadcast(kn_relay *r, match *m, const kn_envelope *env, kn_relay_conn skip,
                      uint8_t channel, bool reliable)
{
    size_t n = kn_envelope_packed_size(env);
    uint8_t *buf = n <= r->buf_cap ? r->buf : kn_malloc(n);
    if (!buf) return;
    kn_envelope_pack(env, buf);
    size_t k = 0;
    for (uint32_t i = 0; i < m->count; i++)
        if (m->members[i].conn != skip) m->scratch[k++] = m->members[i].conn;
    if (k) r->sink.send_many(r->sink.ud, m->scratch, k, channel, buf, n, reliable);
    if (buf != r->buf) kn_free(buf);
}

static void presence_event(kn_relay *r, match *m, const kn_relay_member *who, bool join)
{
    Kaos__V1__Presence p;
    kn_entity_to_proto(&kn_relay_member_entity, who, &p);
    Kaos__V1__Presence *list[1] = {&p};
    Kaos__V1__MatchPresenceEvent ev;
    kn_envelope env;
    kn_envelope_presence_event(&env, &ev, list, m->handle, join);
    broadcast(r, m, &env, who->conn, KN_CHANNEL_CONTROL, true);
}

/* --- create / join / leave -------------------------------------------------- */

static void fill_joined(match *m, uint32_t self_index, kn_relay_joined *out)
{
    /* Put self last so "others" is one contiguous run. */
    uint32_t last = m->count - 1;
    if (self_index != last) {
        kn_relay_member tmp = m->members[self_index];
        m->members[self_index] = m->members[last];
        m->members[last] = tmp;
    }
    out->match_id = m->match_id;
    out->handle = m->handle;
    out->size = m->count;
    out->max_size = m->max_size;
    out->self = &m->members[last];
    out->others = m->members;
    out->other_count = last;
}

static int add_member(kn_relay *r, match *m, const kn_relay_member *who)
{
    int rc = add_membership(r, who->conn, m->handle);
    if (rc) return rc;
    kn_relay_member *mb = &m->members[m->count++];
    *mb = *who;
    mb->slot = ++m->next_slot;
    return KN_OK;
}

int kn_relay_match_create(kn_relay *r, const kn_relay_member *who, uint32_t max_size,
                          kn_relay_joined *out)
{
    if (max_size == 0) max_size = r->cfg.default_size;
    if (max_size < 2 || max_size > r->cfg.max_size) return KN_ERR_INVALID_ARGUMENT;
    if (!has_room(r, who->conn)) return KN_ERR_RESOURCE_EXHAUSTED;
    match *m = kn_calloc(1, sizeof *m);
    if (!m) return KN_ERR_NOMEM;
    m->max_size = max_size;
    m->members = kn_calloc(max_size, sizeof *m->members);
    m->scratch = kn_calloc(max_size, sizeof *m->scratch);
    if (!m->members || !m->scratch) goto nomem;
    char uuid[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(uuid);
    snprintf(m->match_id, sizeof m->match_id, "%s.%s", uuid, r->node);
    m->id_key = kn_map_key_str(m->match_id);
    do { /* skip 0 and handles still in use after wrap-around */
        m->handle = ++r->next_handle;
    } while (m->handle == 0 || kn_map_get(&r->by_handle, m->handle));
    if (kn_map_get(&r->by_id, m->id_key)) goto nomem; /* 64-bit hash clash: ~never */
    if (kn_map_put(&r->by_handle, m->handle, m)) goto nomem;
    if (kn_map_put(&r->by_id, m->id_key, m)) {
        kn_map_del(&r->by_handle, m->handle);
        goto nomem;
    }
    if (add_member(r, m, who)) {
        kn_map_del(&r->by_handle, m->handle);
        kn_map_del(&r->by_id, m->id_key);
        goto nomem;
    }
    fill_joined(m, 0, out);
    return KN_OK;
nomem:
    free_match(m);
    return KN_ERR_NOMEM;
}

int kn_relay_match_join(kn_relay *r, const char *match_id, const kn_relay_member *who,
                        kn_relay_joined *out)
{
    if (!match_id || !*match_id) return KN_ERR_INVALID_ARGUMENT;
    match *m = kn_map_get(&r->by_id, kn_map_key_str(match_id));
    if (!m || strcmp(m->match_id, match_id)) return KN_ERR_NOT_FOUND;
    for (uint32_t i = 0; i < m->count; i++)
        if (m->members[i].conn == who->conn) return KN_ERR_ALREADY_EXISTS;
    if (m->count == m->max_size || !has_room(r, who->conn)) return KN_ERR_RESOURCE_EXHAUSTED;
    int rc = add_member(r, m, who);
    if (rc) return rc;
    presence_event(r, m, &m->members[m->count - 1], true);
    fill_joined(m, m->count - 1, out);
    return KN_OK;
}

static void remove_member(kn_relay *r, match *m, uint32_t i)
{
    kn_relay_member gone = m->members[i];
    m->members[i] = m->members[--m->count];
    drop_membership(r, gone.conn, m->handle);
    if (m->count == 0) {
        kn_map_del(&r->by_handle, m->handle);
        kn_map_del(&r->by_id, m->id_key);
        free_match(m);
        return;
    }
    presence_event(r, m, &gone, false);
}

int kn_relay_match_leave(kn_relay *r, uint32_t handle, kn_relay_conn conn)
{
    match *m = kn_map_get(&r->by_handle, handle);
    if (!m) return KN_ERR_NOT_FOUND;
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->members[i].conn == conn) {
            remove_member(r, m, i);
            return KN_OK;
        }
    }
    return KN_ERR_NOT_FOUND;
}

void kn_relay_conn_closed(kn_relay *r, kn_relay_conn conn)
{
    membership *ms;
    /* Each leave shrinks (and finally frees) the membership record. */
    while ((ms = kn_map_get(&r->by_conn, conn)) && ms->count > 0)
        kn_relay_match_leave(r, ms->handles[ms->count - 1], conn);
}

/* --- data ------------------------------------------------------------------ */

int kn_relay_data(kn_relay *r, uint32_t handle, kn_relay_conn sender, int64_t op_code,
                  const uint8_t *data, size_t len, const uint32_t *targets, size_t target_count,
                  uint8_t channel, bool reliable)
{
    match *m = kn_map_get(&r->by_handle, handle);
    if (!m) return KN_ERR_NOT_FOUND;
    const kn_relay_member *from = NULL;
    for (uint32_t i = 0; i < m->count && !from; i++)
        if (m->members[i].conn == sender) from = &m->members[i];
    if (!from) return KN_ERR_NOT_FOUND;

    Kaos__V1__MatchData md;
    kn_envelope env;
    kn_envelope_match_data(&env, &md, handle, from->slot, op_code, data, len);
    size_t n = kn_envelope_packed_size(&env);
    if (n > r->buf_cap) return KN_ERR_TOO_LARGE;
    kn_envelope_pack(&env, r->buf);

    size_t k = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        const kn_relay_member *mb = &m->members[i];
        if (mb->conn == sender) continue;
        bool wanted = target_count == 0;
        for (size_t t = 0; t < target_count && !wanted; t++) wanted = targets[t] == mb->slot;
        if (wanted) m->scratch[k++] = mb->conn;
    }
    if (k) r->sink.send_many(r->sink.ud, m->scratch, k, channel, r->buf, n, reliable);
    return KN_OK;
}
