/* requests: builds the envelopes a client sends, sends them, and remembers
 * each request's completion by cid.
 *
 * A request is one row of REQUESTS (the envelope it travels in, the kind of
 * answer it waits for) plus a small builder that checks the arguments and
 * fills the message; call() does the rest for all of them: a fresh cid, the
 * pending completion, the send. The completion is recorded before the send
 * and removed again if the send fails, so a request either returns its cid
 * and completes exactly once, or returns an error and never completes.
 *
 * Every envelope is packed into the client's send buffer, so nothing larger
 * than KAOS_MAX_MESSAGE_SIZE can leave; secure.c seals it on the way out.
 * Requests go reliably on the control channel; match data goes on channel 1
 * or 2 with cid 0, since nothing answers it. Arguments are checked before
 * the connection state, so a bad call fails the same way connected or not. */
#include "client_internal.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <stdint.h>

/* protobuf-c's message structs hold non-const pointers, but packing only
 * reads them; these casts let borrowed const data be packed without a copy. */
static char *unconst_str(const char *s)
{
    return (char *)(uintptr_t)s;
}

static uint8_t *unconst_bytes(const void *p)
{
    return (uint8_t *)(uintptr_t)p;
}

static uint32_t *unconst_u32(const uint32_t *p)
{
    return (uint32_t *)(uintptr_t)p;
}

static char **unconst_list(const char *const *p)
{
    return (char **)(uintptr_t)p;
}

static uint32_t take_cid(kaos_client *c)
{
    uint32_t cid = c->next_cid;
    c->next_cid = cid >= INT32_MAX ? 1 : cid + 1;
    return cid;
}

static int send_bytes(kaos_client *c, uint8_t channel, const void *data, size_t len, bool reliable)
{
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    int rc = kaos_client__send_packet(c, channel, data, len, reliable);
    if (rc < 0) return rc;
    c->stats.packets_sent++;
    c->last_send_ms = kn_time_mono_ms();
    return KN_OK;
}

int kaos_client__send(kaos_client *c, const kn_envelope *env, uint8_t channel, bool reliable)
{
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    size_t len = kn_envelope_packed_size(env);
    if (len > sizeof c->send_buf) return KN_ERR_TOO_LARGE;
    kn_envelope_pack(env, c->send_buf);
    int rc = send_bytes(c, channel, c->send_buf, len, reliable);
    if (rc < 0) return rc;
    KN_DEBUG("sent %s cid=%u (%zu bytes, channel %u)", kn_envelope_type_name(env->message_case),
             env->cid, len, channel);
    return KN_OK;
}

/* Every request: its name, the envelope case it is sent as, and the kind of
 * answer its completion waits for (dispatch.c turns that answer into the
 * public struct). Adding a request: a row here, a builder below, a
 * prototype in kaos.h. */
#define REQUESTS(X)                                                                                \
    X(AUTH_DEVICE, AUTHENTICATE_DEVICE, SESSION)                                                   \
    X(AUTH_EMAIL, AUTHENTICATE_EMAIL, SESSION)                                                     \
    X(AUTH_CUSTOM, AUTHENTICATE_CUSTOM, SESSION)                                                   \
    X(SESSION_REFRESH, SESSION_REFRESH, SESSION)                                                   \
    X(SESSION_RESUME, SESSION_RESUME, SESSION)                                                     \
    X(SESSION_LOGOUT, SESSION_LOGOUT, DONE)                                                        \
    X(PING, PING, PONG)                                                                            \
    X(RPC_CALL, RPC, RPC)                                                                          \
    X(MATCH_CREATE, MATCH_CREATE, MATCH)                                                           \
    X(MATCH_JOIN, MATCH_JOIN, MATCH)                                                               \
    X(MATCH_LEAVE, MATCH_LEAVE, DONE)                                                              \
    X(MATCH_LIST, MATCH_LIST_REQUEST, MATCH_LIST)                                                  \
    X(MATCH_GET, MATCH_GET, MATCH_LIST)                                                            \
    X(ACCOUNT_GET, ACCOUNT_GET, ACCOUNT)                                                           \
    X(ACCOUNT_UPDATE, ACCOUNT_UPDATE, DONE)                                                        \
    X(ACCOUNT_DELETE, ACCOUNT_DELETE, DONE)                                                        \
    X(ACCOUNT_LINK_DEVICE, LINK_DEVICE, DONE)                                                      \
    X(ACCOUNT_LINK_EMAIL, LINK_EMAIL, DONE)                                                        \
    X(ACCOUNT_LINK_CUSTOM, LINK_CUSTOM, DONE)                                                      \
    X(ACCOUNT_UNLINK_DEVICE, UNLINK_DEVICE, DONE)                                                  \
    X(ACCOUNT_UNLINK_EMAIL, UNLINK_EMAIL, DONE)                                                    \
    X(ACCOUNT_UNLINK_CUSTOM, UNLINK_CUSTOM, DONE)                                                  \
    X(USERS_GET, USERS_GET, USERS)                                                                 \
    X(STORAGE_WRITE, STORAGE_WRITE, STORAGE_ACKS)                                                  \
    X(STORAGE_READ, STORAGE_READ, STORAGE_OBJECTS)                                                 \
    X(STORAGE_DELETE, STORAGE_DELETE, DONE)                                                        \
    X(STORAGE_LIST, STORAGE_LIST, STORAGE_OBJECTS)                                                 \
    X(FRIENDS_ADD, FRIENDS_ADD, DONE)                                                              \
    X(FRIENDS_DELETE, FRIENDS_DELETE, DONE)                                                        \
    X(FRIENDS_BLOCK, FRIENDS_BLOCK, DONE)                                                          \
    X(FRIENDS_LIST, FRIENDS_LIST, FRIENDS)                                                         \
    X(FRIENDS_METADATA_UPDATE, FRIENDS_METADATA_UPDATE, DONE)                                      \
    X(FRIENDS_OF_FRIENDS_LIST, FRIENDS_OF_FRIENDS_LIST, FRIENDS_OF_FRIENDS)                        \
    X(NOTIFICATIONS_LIST, NOTIFICATIONS_LIST, NOTIFICATIONS)                                       \
    X(NOTIFICATIONS_DELETE, NOTIFICATIONS_DELETE, DONE)                                            \
    X(GROUP_CREATE, GROUP_CREATE, GROUP)                                                           \
    X(GROUP_UPDATE, GROUP_UPDATE, DONE)                                                            \
    X(GROUP_DELETE, GROUP_DELETE, DONE)                                                            \
    X(GROUP_JOIN, GROUP_JOIN, DONE)                                                                \
    X(GROUP_LEAVE, GROUP_LEAVE, DONE)                                                              \
    X(GROUP_USERS_ADD, GROUP_USERS_ADD, DONE)                                                      \
    X(GROUP_USERS_KICK, GROUP_USERS_KICK, DONE)                                                    \
    X(GROUP_USERS_BAN, GROUP_USERS_BAN, DONE)                                                      \
    X(GROUP_USERS_PROMOTE, GROUP_USERS_PROMOTE, DONE)                                              \
    X(GROUP_USERS_DEMOTE, GROUP_USERS_DEMOTE, DONE)                                                \
    X(GROUPS_LIST, GROUPS_LIST, GROUPS)                                                            \
    X(GROUP_USERS_LIST, GROUP_USERS_LIST, GROUP_USERS)                                             \
    X(USER_GROUPS_LIST, USER_GROUPS_LIST, USER_GROUPS)                                             \
    X(STATUS_FOLLOW, STATUS_FOLLOW, STATUS)                                                        \
    X(STATUS_UNFOLLOW, STATUS_UNFOLLOW, DONE)                                                      \
    X(STATUS_UPDATE, STATUS_UPDATE, DONE)                                                          \
    X(CHANNEL_JOIN, CHANNEL_JOIN, CHANNEL)                                                         \
    X(CHANNEL_LEAVE, CHANNEL_LEAVE, DONE)                                                          \
    X(CHANNEL_MESSAGE_SEND, CHANNEL_MESSAGE_SEND, CHANNEL_MESSAGE)                                 \
    X(CHANNEL_MESSAGE_UPDATE, CHANNEL_MESSAGE_UPDATE, CHANNEL_MESSAGE)                             \
    X(CHANNEL_MESSAGE_REMOVE, CHANNEL_MESSAGE_REMOVE, CHANNEL_MESSAGE)                             \
    X(CHANNEL_MESSAGES_LIST, CHANNEL_MESSAGES_LIST, CHANNEL_MESSAGES)                              \
    X(MATCHMAKER_ADD, MATCHMAKER_ADD, TICKET)                                                      \
    X(MATCHMAKER_REMOVE, MATCHMAKER_REMOVE, DONE)                                                  \
    X(MATCH_JOIN_TOKEN, MATCH_JOIN, MATCH)                                                         \
    X(LEADERBOARD_RECORD_WRITE, LEADERBOARD_RECORD_WRITE, LEADERBOARD_RECORD)                      \
    X(LEADERBOARD_RECORDS_LIST, LEADERBOARD_RECORDS_LIST, LEADERBOARD_RECORDS)                     \
    X(LEADERBOARD_RECORDS_AROUND, LEADERBOARD_RECORDS_AROUND, LEADERBOARD_RECORDS)                 \
    X(LEADERBOARD_RECORD_DELETE, LEADERBOARD_RECORD_DELETE, DONE)                                  \
    X(TOURNAMENT_JOIN, TOURNAMENT_JOIN, DONE)                                                      \
    X(TOURNAMENTS_LIST, TOURNAMENTS_LIST, TOURNAMENTS)                                             \
    X(TOURNAMENT_RECORD_WRITE, TOURNAMENT_RECORD_WRITE, LEADERBOARD_RECORD)                        \
    X(TOURNAMENT_RECORDS_LIST, TOURNAMENT_RECORDS_LIST, LEADERBOARD_RECORDS)                       \
    X(TOURNAMENT_RECORDS_AROUND, TOURNAMENT_RECORDS_AROUND, LEADERBOARD_RECORDS)                   \
    X(PARTY_CREATE, PARTY_CREATE, PARTY)                                                           \
    X(PARTY_JOIN, PARTY_JOIN, PARTY)                                                               \
    X(PARTY_LEAVE, PARTY_LEAVE, DONE)                                                              \
    X(PARTY_PROMOTE, PARTY_PROMOTE, DONE)                                                          \
    X(PARTY_ACCEPT, PARTY_ACCEPT, DONE)                                                            \
    X(PARTY_REMOVE, PARTY_REMOVE, DONE)                                                            \
    X(PARTY_CLOSE, PARTY_CLOSE, DONE)                                                              \
    X(PARTY_JOIN_REQUESTS, PARTY_JOIN_REQUEST_LIST, PARTY_REQUESTS)                                \
    X(PARTY_MATCHMAKER_ADD, PARTY_MATCHMAKER_ADD, PARTY_TICKET)                                    \
    X(PARTY_MATCHMAKER_REMOVE, PARTY_MATCHMAKER_REMOVE, DONE)                                      \
    X(PARTY_LIST, PARTY_LIST_REQUEST, PARTY_LIST)

typedef enum request_kind {
#define AS_ENUM(name, envelope, reply) REQ_##name,
    REQUESTS(AS_ENUM)
#undef AS_ENUM
} request_kind;

typedef struct request_row {
    Kaos__V1__Envelope__MessageCase envelope;
    kaos_reply_kind reply;
} request_row;

static const request_row requests[] = {
#define AS_ROW(name, envelope, reply)                                                              \
    [REQ_##name] = {KAOS__V1__ENVELOPE__MESSAGE_##envelope, KAOS_REPLY_##reply},
    REQUESTS(AS_ROW)
#undef AS_ROW
};

/* Sends `env` (its message set by the builder, as the union member named
 * for the row's envelope case) as request `kind` with a fresh cid and
 * remembers `fn`/`ud` under that cid. Returns the cid, or a negative error
 * and then nothing is remembered. */
static int call(kaos_client *c, request_kind kind, kn_envelope *env, kaos__fn fn, void *ud)
{
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    kaos_pending *p = kn_malloc(sizeof *p);
    if (!p) return KN_ERR_NOMEM;
    env->message_case = requests[kind].envelope;
    env->cid = take_cid(c);
    *p = (kaos_pending){.cid = env->cid, .reply = requests[kind].reply, .fn = fn, .ud = ud};
    /* A cid still pending after INT32_MAX later requests would be a leak in
     * the caller's loop; refuse rather than overwrite its completion. */
    int rc = kn_map_get(&c->pending, p->cid) ? KN_ERR_RESOURCE_EXHAUSTED
                                             : kn_map_put(&c->pending, p->cid, p);
    if (rc == KN_OK) rc = kaos_client__send(c, env, KN_CHANNEL_CONTROL, true);
    if (rc < 0) {
        if (kn_map_get(&c->pending, p->cid) == p) kn_map_del(&c->pending, p->cid);
        kn_free(p);
        return rc;
    }
    return (int)p->cid;
}

/* Counts the key/value pairs of a NULL-terminated list; negative if a key
 * has no value. */
static int count_pairs(const char *const *vars, size_t *out)
{
    size_t n = 0;
    while (vars && vars[2 * n]) {
        if (!vars[2 * n + 1]) return KN_ERR_INVALID_ARGUMENT;
        n++;
    }
    *out = n;
    return KN_OK;
}

/* Session variables as a map field: one builder per generated entry type
 * (their layouts match, their descriptors do not). Frees with kn_free. */
#define DEFINE_VARS_BUILDER(name, T, INIT)                                                         \
    static int name(const char *const *vars, size_t n, T **entries, T ***pointers)                 \
    {                                                                                              \
        *entries = NULL;                                                                           \
        *pointers = NULL;                                                                          \
        if (!n) return KN_OK;                                                                      \
        *entries = kn_calloc(n, sizeof **entries);                                                 \
        *pointers = kn_calloc(n, sizeof **pointers);                                               \
        if (!*entries || !*pointers) {                                                             \
            kn_free(*entries);                                                                     \
            kn_free(*pointers);                                                                    \
            return KN_ERR_NOMEM;                                                                   \
        }                                                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            INIT(&(*entries)[i]);                                                                  \
            (*entries)[i].key = unconst_str(vars[2 * i]);                                          \
            (*entries)[i].value = unconst_str(vars[2 * i + 1]);                                    \
            (*pointers)[i] = &(*entries)[i];                                                       \
        }                                                                                          \
        return KN_OK;                                                                              \
    }

DEFINE_VARS_BUILDER(device_vars, Kaos__V1__AuthenticateDevice__VarsEntry,
                    kaos__v1__authenticate_device__vars_entry__init)
DEFINE_VARS_BUILDER(email_vars, Kaos__V1__AuthenticateEmail__VarsEntry,
                    kaos__v1__authenticate_email__vars_entry__init)
DEFINE_VARS_BUILDER(custom_vars, Kaos__V1__AuthenticateCustom__VarsEntry,
                    kaos__v1__authenticate_custom__vars_entry__init)
DEFINE_VARS_BUILDER(join_metadata, Kaos__V1__MatchJoin__MetadataEntry,
                    kaos__v1__match_join__metadata_entry__init)

/* --- authentication and the session ------------------------------------------------ */

int kaos_client_auth_device(kaos_client *c, const char *device_id, const char *username,
                            bool create, const char *const *vars, kaos_session_fn done, void *ud)
{
    size_t n_vars;
    if (!c || !device_id || count_pairs(vars, &n_vars) < 0) return KN_ERR_INVALID_ARGUMENT;
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    Kaos__V1__AuthenticateDevice__VarsEntry *entries, **pointers;
    if (device_vars(vars, n_vars, &entries, &pointers)) return KN_ERR_NOMEM;
    Kaos__V1__AuthenticateDevice msg = KAOS__V1__AUTHENTICATE_DEVICE__INIT;
    msg.device_id = unconst_str(device_id);
    if (username) msg.username = unconst_str(username);
    msg.create = create;
    msg.n_vars = n_vars;
    msg.vars = pointers;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.authenticate_device = &msg;
    int rc = call(c, REQ_AUTH_DEVICE, &env, KAOS__FN(done), ud);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_auth_email(kaos_client *c, const char *email, const char *password,
                           const char *username, bool create, const char *const *vars,
                           kaos_session_fn done, void *ud)
{
    size_t n_vars;
    if (!c || !email || !password || count_pairs(vars, &n_vars) < 0) return KN_ERR_INVALID_ARGUMENT;
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    Kaos__V1__AuthenticateEmail__VarsEntry *entries, **pointers;
    if (email_vars(vars, n_vars, &entries, &pointers)) return KN_ERR_NOMEM;
    Kaos__V1__AuthenticateEmail msg = KAOS__V1__AUTHENTICATE_EMAIL__INIT;
    msg.email = unconst_str(email);
    msg.password = unconst_str(password);
    if (username) msg.username = unconst_str(username);
    msg.create = create;
    msg.n_vars = n_vars;
    msg.vars = pointers;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.authenticate_email = &msg;
    int rc = call(c, REQ_AUTH_EMAIL, &env, KAOS__FN(done), ud);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_auth_custom(kaos_client *c, const char *custom_id, const char *username,
                            bool create, const char *const *vars, kaos_session_fn done, void *ud)
{
    size_t n_vars;
    if (!c || !custom_id || count_pairs(vars, &n_vars) < 0) return KN_ERR_INVALID_ARGUMENT;
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    Kaos__V1__AuthenticateCustom__VarsEntry *entries, **pointers;
    if (custom_vars(vars, n_vars, &entries, &pointers)) return KN_ERR_NOMEM;
    Kaos__V1__AuthenticateCustom msg = KAOS__V1__AUTHENTICATE_CUSTOM__INIT;
    msg.id = unconst_str(custom_id);
    if (username) msg.username = unconst_str(username);
    msg.create = create;
    msg.n_vars = n_vars;
    msg.vars = pointers;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.authenticate_custom = &msg;
    int rc = call(c, REQ_AUTH_CUSTOM, &env, KAOS__FN(done), ud);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_session_refresh(kaos_client *c, kaos_session_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    if (!c->has_session || !c->session.refresh_token[0]) return KN_ERR_UNAUTHENTICATED;
    Kaos__V1__SessionRefresh msg = KAOS__V1__SESSION_REFRESH__INIT;
    msg.refresh_token = c->session.refresh_token;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.session_refresh = &msg;
    return call(c, REQ_SESSION_REFRESH, &env, KAOS__FN(done), ud);
}

int kaos_client_session_resume(kaos_client *c, const char *token, kaos_session_fn done, void *ud)
{
    if (!c || !token) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__SessionResume msg = KAOS__V1__SESSION_RESUME__INIT;
    msg.token = unconst_str(token);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.session_resume = &msg;
    return call(c, REQ_SESSION_RESUME, &env, KAOS__FN(done), ud);
}

int kaos_client_session_logout(kaos_client *c, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__SessionLogout msg = KAOS__V1__SESSION_LOGOUT__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.session_logout = &msg;
    int cid = call(c, REQ_SESSION_LOGOUT, &env, KAOS__FN(done), ud);
    if (cid > 0) kaos_client__session_clear(c); /* its tokens are dead once the server answers */
    return cid;
}

int kaos_client_ping(kaos_client *c, kaos_pong_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__Ping msg = KAOS__V1__PING__INIT;
    /* Echoed in the Pong; only this client reads it, so its own clock is fine. */
    msg.client_time_ms = (uint64_t)kn_time_mono_ms();
    kn_envelope env = KN_ENVELOPE_INIT;
    env.ping = &msg;
    return call(c, REQ_PING, &env, KAOS__FN(done), ud);
}

int kaos_client_rpc_call(kaos_client *c, const char *id, const char *payload, kaos_rpc_fn done,
                         void *ud)
{
    if (!c || !id || !*id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__Rpc msg = KAOS__V1__RPC__INIT;
    msg.id = unconst_str(id);
    msg.payload = unconst_str(payload ? payload : "");
    kn_envelope env = KN_ENVELOPE_INIT;
    env.rpc = &msg;
    return call(c, REQ_RPC_CALL, &env, KAOS__FN(done), ud);
}

/* --- matches ------------------------------------------------------------------------ */

int kaos_client_match_create(kaos_client *c, uint32_t max_size, kaos_match_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchCreate msg = KAOS__V1__MATCH_CREATE__INIT;
    msg.max_size = max_size;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_create = &msg;
    return call(c, REQ_MATCH_CREATE, &env, KAOS__FN(done), ud);
}

int kaos_client_match_create_authoritative(kaos_client *c, const char *handler,
                                           const char *params_json, kaos_match_fn done, void *ud)
{
    if (!c || !handler || !*handler) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchCreate msg = KAOS__V1__MATCH_CREATE__INIT;
    msg.handler = unconst_str(handler);
    if (params_json) msg.params = unconst_str(params_json);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_create = &msg;
    return call(c, REQ_MATCH_CREATE, &env, KAOS__FN(done), ud);
}

int kaos_client_match_join(kaos_client *c, const char *match_id, const char *const *metadata,
                           kaos_match_fn done, void *ud)
{
    size_t n;
    if (!c || !match_id || count_pairs(metadata, &n) < 0) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchJoin__MetadataEntry *entries, **pointers;
    if (join_metadata(metadata, n, &entries, &pointers)) return KN_ERR_NOMEM;
    Kaos__V1__MatchJoin msg = KAOS__V1__MATCH_JOIN__INIT;
    msg.match_id = unconst_str(match_id);
    msg.n_metadata = n;
    msg.metadata = pointers;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_join = &msg;
    int rc = call(c, REQ_MATCH_JOIN, &env, KAOS__FN(done), ud);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_match_leave(kaos_client *c, uint32_t match, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchLeave msg = KAOS__V1__MATCH_LEAVE__INIT;
    msg.match = match;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_leave = &msg;
    return call(c, REQ_MATCH_LEAVE, &env, KAOS__FN(done), ud);
}

int kaos_client_match_list(kaos_client *c, uint32_t limit, const char *label, const char *query,
                           int32_t min_size, int32_t max_size, kaos_match_list_fn done, void *ud)
{
    if (!c || limit > 100) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchListRequest msg = KAOS__V1__MATCH_LIST_REQUEST__INIT;
    msg.limit = limit;
    if (label) msg.label = unconst_str(label);
    if (query) msg.query = unconst_str(query);
    msg.min_size = min_size;
    msg.max_size = max_size;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_list_request = &msg;
    return call(c, REQ_MATCH_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_match_get(kaos_client *c, const char *match_id, kaos_match_list_fn done, void *ud)
{
    if (!c || !match_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchGet msg = KAOS__V1__MATCH_GET__INIT;
    msg.match_id = unconst_str(match_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_get = &msg;
    return call(c, REQ_MATCH_GET, &env, KAOS__FN(done), ud);
}

int kaos_client_match_send(kaos_client *c, uint32_t match, int64_t op_code, const void *data,
                           size_t len, bool reliable, const uint32_t *targets, size_t target_count)
{
    if (!c || (len && !data) || (target_count && !targets)) return KN_ERR_INVALID_ARGUMENT;
    /* Each of these alone would overflow the limit; refuse before packing. */
    if (len > KAOS_MAX_MESSAGE_SIZE || target_count > KAOS_MAX_MESSAGE_SIZE)
        return KN_ERR_TOO_LARGE;
    Kaos__V1__MatchDataSend msg = KAOS__V1__MATCH_DATA_SEND__INIT;
    msg.match = match;
    msg.op_code = op_code;
    msg.data.data = unconst_bytes(data);
    msg.data.len = len;
    msg.n_targets = target_count;
    msg.targets = unconst_u32(targets);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND;
    env.match_data_send = &msg;
    uint8_t channel = reliable ? KN_CHANNEL_MATCH_RELIABLE : KN_CHANNEL_MATCH_UNRELIABLE;
    return kaos_client__send(c, &env, channel, reliable);
}

int kaos_client_send_raw(kaos_client *c, uint8_t channel, const void *data, size_t len,
                         bool reliable)
{
    if (!c || channel >= KN_CHANNEL_COUNT || (len && !data)) return KN_ERR_INVALID_ARGUMENT;
    if (len > KAOS_MAX_MESSAGE_SIZE) return KN_ERR_TOO_LARGE;
    return send_bytes(c, channel, data, len, reliable);
}

/* --- the account ------------------------------------------------------------------ */

/* An OptionalString for a field to change; NULL = absent (unchanged). */
static Kaos__V1__OptionalString *optional(Kaos__V1__OptionalString *slot, const char *value)
{
    if (!value) return NULL;
    kaos__v1__optional_string__init(slot);
    slot->value = unconst_str(value);
    return slot;
}

static bool all_set(const char *const *list, size_t n)
{
    if (n && !list) return false;
    for (size_t i = 0; i < n; i++)
        if (!list[i]) return false;
    return true;
}

int kaos_client_account_get(kaos_client *c, kaos_account_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__AccountGet msg = KAOS__V1__ACCOUNT_GET__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.account_get = &msg;
    return call(c, REQ_ACCOUNT_GET, &env, KAOS__FN(done), ud);
}

int kaos_client_account_update(kaos_client *c, const kaos_account_changes *changes,
                               kaos_done_fn done, void *ud)
{
    if (!c || !changes) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__OptionalString f[7];
    Kaos__V1__AccountUpdate msg = KAOS__V1__ACCOUNT_UPDATE__INIT;
    msg.username = optional(&f[0], changes->username);
    msg.display_name = optional(&f[1], changes->display_name);
    msg.avatar_url = optional(&f[2], changes->avatar_url);
    msg.lang_tag = optional(&f[3], changes->lang_tag);
    msg.location = optional(&f[4], changes->location);
    msg.timezone = optional(&f[5], changes->timezone);
    msg.metadata = optional(&f[6], changes->metadata);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.account_update = &msg;
    return call(c, REQ_ACCOUNT_UPDATE, &env, KAOS__FN(done), ud);
}

int kaos_client_account_delete(kaos_client *c, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__AccountDelete msg = KAOS__V1__ACCOUNT_DELETE__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.account_delete = &msg;
    int cid = call(c, REQ_ACCOUNT_DELETE, &env, KAOS__FN(done), ud);
    if (cid > 0) kaos_client__session_clear(c); /* as on logout: its tokens die with the account */
    return cid;
}

int kaos_client_account_link_device(kaos_client *c, const char *device_id, kaos_done_fn done,
                                    void *ud)
{
    if (!c || !device_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkDevice msg = KAOS__V1__LINK_DEVICE__INIT;
    msg.id = unconst_str(device_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.link_device = &msg;
    return call(c, REQ_ACCOUNT_LINK_DEVICE, &env, KAOS__FN(done), ud);
}

int kaos_client_account_link_email(kaos_client *c, const char *email, const char *password,
                                   kaos_done_fn done, void *ud)
{
    if (!c || !email || !password) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkEmail msg = KAOS__V1__LINK_EMAIL__INIT;
    msg.email = unconst_str(email);
    msg.password = unconst_str(password);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.link_email = &msg;
    return call(c, REQ_ACCOUNT_LINK_EMAIL, &env, KAOS__FN(done), ud);
}

int kaos_client_account_link_custom(kaos_client *c, const char *custom_id, kaos_done_fn done,
                                    void *ud)
{
    if (!c || !custom_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkCustom msg = KAOS__V1__LINK_CUSTOM__INIT;
    msg.id = unconst_str(custom_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.link_custom = &msg;
    return call(c, REQ_ACCOUNT_LINK_CUSTOM, &env, KAOS__FN(done), ud);
}

int kaos_client_account_unlink_device(kaos_client *c, const char *device_id, kaos_done_fn done,
                                      void *ud)
{
    if (!c || !device_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkDevice msg = KAOS__V1__UNLINK_DEVICE__INIT;
    msg.id = unconst_str(device_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.unlink_device = &msg;
    return call(c, REQ_ACCOUNT_UNLINK_DEVICE, &env, KAOS__FN(done), ud);
}

int kaos_client_account_unlink_email(kaos_client *c, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkEmail msg = KAOS__V1__UNLINK_EMAIL__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.unlink_email = &msg;
    return call(c, REQ_ACCOUNT_UNLINK_EMAIL, &env, KAOS__FN(done), ud);
}

int kaos_client_account_unlink_custom(kaos_client *c, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkCustom msg = KAOS__V1__UNLINK_CUSTOM__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.unlink_custom = &msg;
    return call(c, REQ_ACCOUNT_UNLINK_CUSTOM, &env, KAOS__FN(done), ud);
}

int kaos_client_users_get(kaos_client *c, const char *const *ids, size_t id_count,
                          const char *const *usernames, size_t username_count, kaos_users_fn done,
                          void *ud)
{
    if (!c || !all_set(ids, id_count) || !all_set(usernames, username_count))
        return KN_ERR_INVALID_ARGUMENT;
    /* Either list alone past the limit would not fit; refuse before packing. */
    if (id_count > KAOS_MAX_MESSAGE_SIZE || username_count > KAOS_MAX_MESSAGE_SIZE)
        return KN_ERR_TOO_LARGE;
    Kaos__V1__UsersGet msg = KAOS__V1__USERS_GET__INIT;
    msg.n_ids = id_count;
    msg.ids = unconst_list(ids);
    msg.n_usernames = username_count;
    msg.usernames = unconst_list(usernames);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.users_get = &msg;
    return call(c, REQ_USERS_GET, &env, KAOS__FN(done), ud);
}

/* --- storage ---------------------------------------------------------------------- */

/* A request may hold at most this many objects before packing is even tried:
 * each takes at least a few bytes, so more could never fit in one message. */
#define MAX_LISTED KAOS_MAX_MESSAGE_SIZE

int kaos_client_storage_write(kaos_client *c, const kaos_storage_write_object *objects,
                              size_t count, kaos_storage_acks_fn done, void *ud)
{
    if (!c || (count && !objects)) return KN_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++)
        if (!objects[i].collection || !objects[i].key || !objects[i].value)
            return KN_ERR_INVALID_ARGUMENT;
    if (count > MAX_LISTED) return KN_ERR_TOO_LARGE;
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    Kaos__V1__WriteStorageObject *msgs = count ? kn_calloc(count, sizeof *msgs) : NULL;
    Kaos__V1__WriteStorageObject **ptrs = count ? kn_calloc(count, sizeof *ptrs) : NULL;
    int rc = KN_ERR_NOMEM;
    if (count && (!msgs || !ptrs)) goto done;
    for (size_t i = 0; i < count; i++) {
        const kaos_storage_write_object *o = &objects[i];
        Kaos__V1__WriteStorageObject *m = &msgs[i];
        kaos__v1__write_storage_object__init(m);
        m->collection = unconst_str(o->collection);
        m->key = unconst_str(o->key);
        m->value = unconst_str(o->value);
        if (o->version) m->version = unconst_str(o->version);
        if (o->permissions_set) { /* absent = the server's default (owner) */
            m->read_case = KAOS__V1__WRITE_STORAGE_OBJECT__READ_PERMISSION_READ;
            m->permission_read = o->permission_read;
            m->write_case = KAOS__V1__WRITE_STORAGE_OBJECT__WRITE_PERMISSION_WRITE;
            m->permission_write = o->permission_write;
        }
        ptrs[i] = m;
    }
    Kaos__V1__StorageWrite msg = KAOS__V1__STORAGE_WRITE__INIT;
    msg.n_objects = count;
    msg.objects = ptrs;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.storage_write = &msg;
    rc = call(c, REQ_STORAGE_WRITE, &env, KAOS__FN(done), ud);
done:
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

/* The ids as StorageObjectId messages, sent as a StorageDelete (with their
 * versions) or a StorageRead. */
static int send_ids(kaos_client *c, const kaos_storage_id *ids, size_t count, bool del,
                    kaos__fn done, void *ud)
{
    if (!c || (count && !ids)) return KN_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++)
        if (!ids[i].collection || !ids[i].key) return KN_ERR_INVALID_ARGUMENT;
    if (count > MAX_LISTED) return KN_ERR_TOO_LARGE;
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    Kaos__V1__StorageObjectId *msgs = count ? kn_calloc(count, sizeof *msgs) : NULL;
    Kaos__V1__StorageObjectId **ptrs = count ? kn_calloc(count, sizeof *ptrs) : NULL;
    int rc = KN_ERR_NOMEM;
    if (count && (!msgs || !ptrs)) goto done;
    for (size_t i = 0; i < count; i++) {
        kaos__v1__storage_object_id__init(&msgs[i]);
        msgs[i].collection = unconst_str(ids[i].collection);
        msgs[i].key = unconst_str(ids[i].key);
        if (ids[i].user_id) msgs[i].user_id = unconst_str(ids[i].user_id);
        if (del && ids[i].version) msgs[i].version = unconst_str(ids[i].version);
        ptrs[i] = &msgs[i];
    }
    kn_envelope env = KN_ENVELOPE_INIT;
    Kaos__V1__StorageRead read = KAOS__V1__STORAGE_READ__INIT;
    Kaos__V1__StorageDelete remove = KAOS__V1__STORAGE_DELETE__INIT;
    if (del) {
        remove.n_object_ids = count;
        remove.object_ids = ptrs;
        env.storage_delete = &remove;
        rc = call(c, REQ_STORAGE_DELETE, &env, done, ud);
    } else {
        read.n_object_ids = count;
        read.object_ids = ptrs;
        env.storage_read = &read;
        rc = call(c, REQ_STORAGE_READ, &env, done, ud);
    }
done:
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

int kaos_client_storage_read(kaos_client *c, const kaos_storage_id *ids, size_t count,
                             kaos_storage_objects_fn done, void *ud)
{
    return send_ids(c, ids, count, false, KAOS__FN(done), ud);
}

int kaos_client_storage_delete(kaos_client *c, const kaos_storage_id *ids, size_t count,
                               kaos_done_fn done, void *ud)
{
    return send_ids(c, ids, count, true, KAOS__FN(done), ud);
}

int kaos_client_storage_list(kaos_client *c, const char *user_id, const char *collection,
                             uint32_t limit, const char *cursor, kaos_storage_objects_fn done,
                             void *ud)
{
    if (!c || !collection) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__StorageList msg = KAOS__V1__STORAGE_LIST__INIT;
    if (user_id) msg.user_id = unconst_str(user_id);
    msg.collection = unconst_str(collection);
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.storage_list = &msg;
    return call(c, REQ_STORAGE_LIST, &env, KAOS__FN(done), ud);
}

/* --- friends ---------------------------------------------------------------------- */

/* FriendsAdd, FriendsDelete and FriendsBlock carry the same two lists. */
static int check_names(kaos_client *c, const char *const *ids, size_t id_count,
                       const char *const *usernames, size_t username_count)
{
    if (!c || !all_set(ids, id_count) || !all_set(usernames, username_count))
        return KN_ERR_INVALID_ARGUMENT;
    /* Either list alone past the limit would not fit; refuse before packing. */
    if (id_count > KAOS_MAX_MESSAGE_SIZE || username_count > KAOS_MAX_MESSAGE_SIZE)
        return KN_ERR_TOO_LARGE;
    return KN_OK;
}

#define SET_NAMES(msg)                                                                             \
    ((msg).n_ids = id_count, (msg).ids = unconst_list(ids), (msg).n_usernames = username_count,    \
     (msg).usernames = unconst_list(usernames))

int kaos_client_friends_add_metadata(kaos_client *c, const char *const *ids, size_t id_count,
                                     const char *const *usernames, size_t username_count,
                                     const char *metadata, kaos_done_fn done, void *ud)
{
    int rc = check_names(c, ids, id_count, usernames, username_count);
    if (rc) return rc;
    Kaos__V1__FriendsAdd msg = KAOS__V1__FRIENDS_ADD__INIT;
    SET_NAMES(msg);
    if (metadata) msg.metadata = unconst_str(metadata);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_add = &msg;
    return call(c, REQ_FRIENDS_ADD, &env, KAOS__FN(done), ud);
}

int kaos_client_friends_add(kaos_client *c, const char *const *ids, size_t id_count,
                            const char *const *usernames, size_t username_count, kaos_done_fn done,
                            void *ud)
{
    return kaos_client_friends_add_metadata(c, ids, id_count, usernames, username_count, NULL, done,
                                            ud);
}

int kaos_client_friends_metadata_update(kaos_client *c, const char *user_id, const char *metadata,
                                        kaos_done_fn done, void *ud)
{
    if (!c || !user_id || !metadata) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__FriendsMetadataUpdate msg = KAOS__V1__FRIENDS_METADATA_UPDATE__INIT;
    msg.id = unconst_str(user_id);
    msg.metadata = unconst_str(metadata);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_metadata_update = &msg;
    return call(c, REQ_FRIENDS_METADATA_UPDATE, &env, KAOS__FN(done), ud);
}

int kaos_client_friends_of_friends_list(kaos_client *c, uint32_t limit, const char *cursor,
                                        kaos_friends_of_friends_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__FriendsOfFriendsList msg = KAOS__V1__FRIENDS_OF_FRIENDS_LIST__INIT;
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_of_friends_list = &msg;
    return call(c, REQ_FRIENDS_OF_FRIENDS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_friends_delete(kaos_client *c, const char *const *ids, size_t id_count,
                               const char *const *usernames, size_t username_count,
                               kaos_done_fn done, void *ud)
{
    int rc = check_names(c, ids, id_count, usernames, username_count);
    if (rc) return rc;
    Kaos__V1__FriendsDelete msg = KAOS__V1__FRIENDS_DELETE__INIT;
    SET_NAMES(msg);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_delete = &msg;
    return call(c, REQ_FRIENDS_DELETE, &env, KAOS__FN(done), ud);
}

int kaos_client_friends_block(kaos_client *c, const char *const *ids, size_t id_count,
                              const char *const *usernames, size_t username_count,
                              kaos_done_fn done, void *ud)
{
    int rc = check_names(c, ids, id_count, usernames, username_count);
    if (rc) return rc;
    Kaos__V1__FriendsBlock msg = KAOS__V1__FRIENDS_BLOCK__INIT;
    SET_NAMES(msg);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_block = &msg;
    return call(c, REQ_FRIENDS_BLOCK, &env, KAOS__FN(done), ud);
}

int kaos_client_friends_list(kaos_client *c, int state, uint32_t limit, const char *cursor,
                             kaos_friends_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__FriendsList msg = KAOS__V1__FRIENDS_LIST__INIT;
    if (state >= 0) { /* a negative state sends no filter: every state */
        msg.filter_case = KAOS__V1__FRIENDS_LIST__FILTER_STATE;
        msg.state = state;
    }
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.friends_list = &msg;
    return call(c, REQ_FRIENDS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_notifications_list(kaos_client *c, uint32_t limit, const char *cursor,
                                   kaos_notifications_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__NotificationsList msg = KAOS__V1__NOTIFICATIONS_LIST__INIT;
    msg.limit = limit;
    if (cursor) msg.cacheable_cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.notifications_list = &msg;
    return call(c, REQ_NOTIFICATIONS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_notifications_delete(kaos_client *c, const char *const *ids, size_t count,
                                     kaos_done_fn done, void *ud)
{
    int rc = check_names(c, ids, count, NULL, 0);
    if (rc) return rc;
    Kaos__V1__NotificationsDelete msg = KAOS__V1__NOTIFICATIONS_DELETE__INIT;
    msg.n_ids = count;
    msg.ids = unconst_list(ids);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.notifications_delete = &msg;
    return call(c, REQ_NOTIFICATIONS_DELETE, &env, KAOS__FN(done), ud);
}

/* --- groups ------------------------------------------------------------------------ */

/* Proto text fields are never NULL: "" is "the default" for the server. */
static char *text_or_empty(const char *s)
{
    return unconst_str(s ? s : "");
}

int kaos_client_group_create(kaos_client *c, const kaos_group_spec *spec, kaos_group_fn done,
                             void *ud)
{
    if (!c || !spec || !spec->name) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__GroupCreate msg = KAOS__V1__GROUP_CREATE__INIT;
    msg.name = unconst_str(spec->name);
    msg.description = text_or_empty(spec->description);
    msg.avatar_url = text_or_empty(spec->avatar_url);
    msg.lang_tag = text_or_empty(spec->lang_tag);
    msg.metadata = text_or_empty(spec->metadata);
    msg.open = spec->open > 0;
    msg.max_count = spec->max_count;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.group_create = &msg;
    return call(c, REQ_GROUP_CREATE, &env, KAOS__FN(done), ud);
}

int kaos_client_group_update(kaos_client *c, const char *group_id, const kaos_group_spec *spec,
                             kaos_done_fn done, void *ud)
{
    if (!c || !group_id || !spec) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__GroupUpdate msg = KAOS__V1__GROUP_UPDATE__INIT;
    Kaos__V1__OptionalString f[5];
    const char *v[5] = {spec->name, spec->description, spec->avatar_url, spec->lang_tag,
                        spec->metadata};
    Kaos__V1__OptionalString **slot[5] = {&msg.name, &msg.description, &msg.avatar_url,
                                          &msg.lang_tag, &msg.metadata};
    for (size_t i = 0; i < 5; i++) {
        kaos__v1__optional_string__init(&f[i]);
        f[i].value = unconst_str(v[i]);
        *slot[i] = v[i] ? &f[i] : NULL;
    }
    msg.group_id = unconst_str(group_id);
    if (spec->open >= 0) {
        msg.open_change_case = KAOS__V1__GROUP_UPDATE__OPEN_CHANGE_OPEN;
        msg.open = spec->open > 0;
    }
    msg.max_count = spec->max_count;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.group_update = &msg;
    return call(c, REQ_GROUP_UPDATE, &env, KAOS__FN(done), ud);
}

/* GroupDelete, GroupJoin and GroupLeave are one group id; the generated
 * structs agree, so one builder fills them. */
#define GROUP_ONLY(type, INIT, field, REQ)                                                         \
    do {                                                                                           \
        if (!c || !group_id) return KN_ERR_INVALID_ARGUMENT;                                       \
        type msg = INIT;                                                                           \
        msg.group_id = unconst_str(group_id);                                                      \
        kn_envelope env = KN_ENVELOPE_INIT;                                                        \
        env.field = &msg;                                                                          \
        return call(c, REQ, &env, KAOS__FN(done), ud);                                             \
    } while (0)

int kaos_client_group_delete(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud)
{
    GROUP_ONLY(Kaos__V1__GroupDelete, KAOS__V1__GROUP_DELETE__INIT, group_delete, REQ_GROUP_DELETE);
}

int kaos_client_group_join(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud)
{
    GROUP_ONLY(Kaos__V1__GroupJoin, KAOS__V1__GROUP_JOIN__INIT, group_join, REQ_GROUP_JOIN);
}

int kaos_client_group_leave(kaos_client *c, const char *group_id, kaos_done_fn done, void *ud)
{
    GROUP_ONLY(Kaos__V1__GroupLeave, KAOS__V1__GROUP_LEAVE__INIT, group_leave, REQ_GROUP_LEAVE);
}

/* The user verbs: (group id, user ids), checked here (the server checks the ids). */
#define GROUP_USERS(type, INIT, field, REQ)                                                        \
    do {                                                                                           \
        int rc = check_names(c, user_ids, count, NULL, 0);                                         \
        if (rc) return rc;                                                                         \
        if (!group_id) return KN_ERR_INVALID_ARGUMENT;                                             \
        type msg = INIT;                                                                           \
        msg.group_id = unconst_str(group_id);                                                      \
        msg.n_user_ids = count;                                                                    \
        msg.user_ids = unconst_list(user_ids);                                                     \
        kn_envelope env = KN_ENVELOPE_INIT;                                                        \
        env.field = &msg;                                                                          \
        return call(c, REQ, &env, KAOS__FN(done), ud);                                             \
    } while (0)

int kaos_client_group_users_add(kaos_client *c, const char *group_id, const char *const *user_ids,
                                size_t count, kaos_done_fn done, void *ud)
{
    GROUP_USERS(Kaos__V1__GroupUsersAdd, KAOS__V1__GROUP_USERS_ADD__INIT, group_users_add,
                REQ_GROUP_USERS_ADD);
}

int kaos_client_group_users_kick(kaos_client *c, const char *group_id, const char *const *user_ids,
                                 size_t count, kaos_done_fn done, void *ud)
{
    GROUP_USERS(Kaos__V1__GroupUsersKick, KAOS__V1__GROUP_USERS_KICK__INIT, group_users_kick,
                REQ_GROUP_USERS_KICK);
}

int kaos_client_group_users_ban(kaos_client *c, const char *group_id, const char *const *user_ids,
                                size_t count, kaos_done_fn done, void *ud)
{
    GROUP_USERS(Kaos__V1__GroupUsersBan, KAOS__V1__GROUP_USERS_BAN__INIT, group_users_ban,
                REQ_GROUP_USERS_BAN);
}

int kaos_client_group_users_promote(kaos_client *c, const char *group_id,
                                    const char *const *user_ids, size_t count, kaos_done_fn done,
                                    void *ud)
{
    GROUP_USERS(Kaos__V1__GroupUsersPromote, KAOS__V1__GROUP_USERS_PROMOTE__INIT,
                group_users_promote, REQ_GROUP_USERS_PROMOTE);
}

int kaos_client_group_users_demote(kaos_client *c, const char *group_id,
                                   const char *const *user_ids, size_t count, kaos_done_fn done,
                                   void *ud)
{
    GROUP_USERS(Kaos__V1__GroupUsersDemote, KAOS__V1__GROUP_USERS_DEMOTE__INIT, group_users_demote,
                REQ_GROUP_USERS_DEMOTE);
}

int kaos_client_groups_list(kaos_client *c, const kaos_groups_filter *filter, uint32_t limit,
                            const char *cursor, kaos_groups_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__GroupsList msg = KAOS__V1__GROUPS_LIST__INIT;
    if (filter) {
        msg.name = text_or_empty(filter->name);
        msg.lang_tag = text_or_empty(filter->lang_tag);
        if (filter->open >= 0) {
            msg.open_filter_case = KAOS__V1__GROUPS_LIST__OPEN_FILTER_OPEN;
            msg.open = filter->open > 0;
        }
        msg.members_min = filter->members_min;
        msg.members_max = filter->members_max;
    }
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.groups_list = &msg;
    return call(c, REQ_GROUPS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_group_users_list(kaos_client *c, const char *group_id, int state, uint32_t limit,
                                 const char *cursor, kaos_group_users_fn done, void *ud)
{
    if (!c || !group_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__GroupUsersList msg = KAOS__V1__GROUP_USERS_LIST__INIT;
    msg.group_id = unconst_str(group_id);
    if (state >= 0) { /* a negative state sends no filter: every state */
        msg.filter_case = KAOS__V1__GROUP_USERS_LIST__FILTER_STATE;
        msg.state = state;
    }
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.group_users_list = &msg;
    return call(c, REQ_GROUP_USERS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_user_groups_list(kaos_client *c, const char *user_id, int state, uint32_t limit,
                                 const char *cursor, kaos_user_groups_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UserGroupsList msg = KAOS__V1__USER_GROUPS_LIST__INIT;
    msg.user_id = text_or_empty(user_id);
    if (state >= 0) {
        msg.filter_case = KAOS__V1__USER_GROUPS_LIST__FILTER_STATE;
        msg.state = state;
    }
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.user_groups_list = &msg;
    return call(c, REQ_USER_GROUPS_LIST, &env, KAOS__FN(done), ud);
}

/* --- status ----------------------------------------------------------------------- */

int kaos_client_status_follow(kaos_client *c, const char *const *ids, size_t id_count,
                              const char *const *usernames, size_t username_count,
                              kaos_status_fn done, void *ud)
{
    int rc = check_names(c, ids, id_count, usernames, username_count);
    if (rc) return rc;
    Kaos__V1__StatusFollow msg = KAOS__V1__STATUS_FOLLOW__INIT;
    msg.n_user_ids = id_count;
    msg.user_ids = unconst_list(ids);
    msg.n_usernames = username_count;
    msg.usernames = unconst_list(usernames);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.status_follow = &msg;
    return call(c, REQ_STATUS_FOLLOW, &env, KAOS__FN(done), ud);
}

int kaos_client_status_unfollow(kaos_client *c, const char *const *ids, size_t count,
                                kaos_done_fn done, void *ud)
{
    int rc = check_names(c, ids, count, NULL, 0);
    if (rc) return rc;
    Kaos__V1__StatusUnfollow msg = KAOS__V1__STATUS_UNFOLLOW__INIT;
    msg.n_user_ids = count;
    msg.user_ids = unconst_list(ids);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.status_unfollow = &msg;
    return call(c, REQ_STATUS_UNFOLLOW, &env, KAOS__FN(done), ud);
}

int kaos_client_status_update(kaos_client *c, const char *status, kaos_done_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__StatusUpdate msg = KAOS__V1__STATUS_UPDATE__INIT;
    if (status)
        msg.status = unconst_str(status);
    else
        msg.offline = true;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.status_update = &msg;
    return call(c, REQ_STATUS_UPDATE, &env, KAOS__FN(done), ud);
}

int kaos_client__appear_online(kaos_client *c)
{
    return kaos_client_status_update(c, "", NULL, NULL);
}

int kaos_client_channel_join(kaos_client *c, const char *target, int type, bool persistence,
                             bool hidden, kaos_channel_fn done, void *ud)
{
    if (!c || !target || type < KAOS_CHANNEL_ROOM || type > KAOS_CHANNEL_GROUP)
        return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelJoin msg = KAOS__V1__CHANNEL_JOIN__INIT;
    msg.target = unconst_str(target);
    msg.type = (uint32_t)type;
    msg.persistence = persistence;
    msg.hidden = hidden;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_join = &msg;
    return call(c, REQ_CHANNEL_JOIN, &env, KAOS__FN(done), ud);
}

int kaos_client_channel_leave(kaos_client *c, const char *channel_id, kaos_done_fn done, void *ud)
{
    if (!c || !channel_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelLeave msg = KAOS__V1__CHANNEL_LEAVE__INIT;
    msg.channel_id = unconst_str(channel_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_leave = &msg;
    return call(c, REQ_CHANNEL_LEAVE, &env, KAOS__FN(done), ud);
}

int kaos_client_channel_message_send(kaos_client *c, const char *channel_id, const char *content,
                                     kaos_channel_message_ack_fn done, void *ud)
{
    if (!c || !channel_id || !content) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelMessageSend msg = KAOS__V1__CHANNEL_MESSAGE_SEND__INIT;
    msg.channel_id = unconst_str(channel_id);
    msg.content = unconst_str(content);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_message_send = &msg;
    return call(c, REQ_CHANNEL_MESSAGE_SEND, &env, KAOS__FN(done), ud);
}

int kaos_client_channel_message_update(kaos_client *c, const char *channel_id,
                                       const char *message_id, const char *content,
                                       kaos_channel_message_ack_fn done, void *ud)
{
    if (!c || !channel_id || !message_id || !content) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelMessageUpdate msg = KAOS__V1__CHANNEL_MESSAGE_UPDATE__INIT;
    msg.channel_id = unconst_str(channel_id);
    msg.message_id = unconst_str(message_id);
    msg.content = unconst_str(content);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_message_update = &msg;
    return call(c, REQ_CHANNEL_MESSAGE_UPDATE, &env, KAOS__FN(done), ud);
}

int kaos_client_channel_message_remove(kaos_client *c, const char *channel_id,
                                       const char *message_id, kaos_channel_message_ack_fn done,
                                       void *ud)
{
    if (!c || !channel_id || !message_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelMessageRemove msg = KAOS__V1__CHANNEL_MESSAGE_REMOVE__INIT;
    msg.channel_id = unconst_str(channel_id);
    msg.message_id = unconst_str(message_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_message_remove = &msg;
    return call(c, REQ_CHANNEL_MESSAGE_REMOVE, &env, KAOS__FN(done), ud);
}

int kaos_client_channel_messages_list(kaos_client *c, const char *channel_id, uint32_t limit,
                                      bool forward, const char *cursor,
                                      kaos_channel_messages_fn done, void *ud)
{
    if (!c || !channel_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__ChannelMessagesList msg = KAOS__V1__CHANNEL_MESSAGES_LIST__INIT;
    msg.channel_id = unconst_str(channel_id);
    msg.limit = limit;
    msg.forward = forward;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.channel_messages_list = &msg;
    return call(c, REQ_CHANNEL_MESSAGES_LIST, &env, KAOS__FN(done), ud);
}

/* --- matchmaker ------------------------------------------------------------------- */

/* A MatchmakerAdd of req, sent alone or (party_id) inside a PartyMatchmakerAdd. */
static int matchmaker_add(kaos_client *c, const char *party_id, const kaos_matchmaker_request *req,
                          kaos_ticket_fn done, void *ud)
{
    const kaos_matchmaker_properties *pr = req ? &req->properties : NULL;
    if (!c || !pr || (pr->n_strings && (!pr->string_names || !pr->string_values)) ||
        (pr->n_numerics && (!pr->numeric_names || !pr->numeric_values)) ||
        (req->n_widen && !req->widen))
        return KN_ERR_INVALID_ARGUMENT;
    size_t ns = pr->n_strings, nd = pr->n_numerics, nw = req->n_widen;
    Kaos__V1__MatchmakerAdd__StringPropertiesEntry *se = kn_calloc(ns ? ns : 1, sizeof *se);
    Kaos__V1__MatchmakerAdd__StringPropertiesEntry **sp = kn_calloc(ns ? ns : 1, sizeof *sp);
    Kaos__V1__MatchmakerAdd__NumericPropertiesEntry *de = kn_calloc(nd ? nd : 1, sizeof *de);
    Kaos__V1__MatchmakerAdd__NumericPropertiesEntry **dp = kn_calloc(nd ? nd : 1, sizeof *dp);
    Kaos__V1__MatchmakerWiden *we = kn_calloc(nw ? nw : 1, sizeof *we);
    Kaos__V1__MatchmakerWiden **wp = kn_calloc(nw ? nw : 1, sizeof *wp);
    int rc = se && sp && de && dp && we && wp ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < nw; i++) {
        kaos__v1__matchmaker_widen__init(&we[i]);
        we[i].property = unconst_str(req->widen[i].property ? req->widen[i].property : "");
        we[i].step = req->widen[i].step;
        we[i].max = req->widen[i].max;
        wp[i] = &we[i];
    }
    for (size_t i = 0; rc == KN_OK && i < ns; i++) {
        kaos__v1__matchmaker_add__string_properties_entry__init(&se[i]);
        se[i].key = unconst_str(pr->string_names[i]);
        se[i].value = unconst_str(pr->string_values[i]);
        sp[i] = &se[i];
    }
    for (size_t i = 0; rc == KN_OK && i < nd; i++) {
        kaos__v1__matchmaker_add__numeric_properties_entry__init(&de[i]);
        de[i].key = unconst_str(pr->numeric_names[i]);
        de[i].value = pr->numeric_values[i];
        dp[i] = &de[i];
    }
    if (rc == KN_OK) {
        Kaos__V1__MatchmakerAdd msg = KAOS__V1__MATCHMAKER_ADD__INIT;
        msg.min_count = req->min_count;
        msg.max_count = req->max_count;
        msg.count_multiple = req->count_multiple;
        msg.query = unconst_str(req->query ? req->query : "");
        msg.n_string_properties = ns;
        msg.string_properties = sp;
        msg.n_numeric_properties = nd;
        msg.numeric_properties = dp;
        msg.n_widen = nw;
        msg.widen = wp;
        Kaos__V1__PartyMatchmakerAdd party = KAOS__V1__PARTY_MATCHMAKER_ADD__INIT;
        kn_envelope env = KN_ENVELOPE_INIT;
        if (party_id) {
            party.party_id = unconst_str(party_id);
            party.ticket = &msg;
            env.party_matchmaker_add = &party;
            rc = call(c, REQ_PARTY_MATCHMAKER_ADD, &env, KAOS__FN(done), ud);
        } else {
            env.matchmaker_add = &msg;
            rc = call(c, REQ_MATCHMAKER_ADD, &env, KAOS__FN(done), ud);
        }
    }
    kn_free(se);
    kn_free(sp);
    kn_free(de);
    kn_free(dp);
    kn_free(we);
    kn_free(wp);
    return rc;
}

int kaos_client_matchmaker_add(kaos_client *c, const kaos_matchmaker_request *req,
                               kaos_ticket_fn done, void *ud)
{
    return matchmaker_add(c, NULL, req, done, ud);
}

int kaos_client_party_matchmaker_add(kaos_client *c, const char *party_id,
                                     const kaos_matchmaker_request *req, kaos_ticket_fn done,
                                     void *ud)
{
    if (!party_id) return KN_ERR_INVALID_ARGUMENT;
    return matchmaker_add(c, party_id, req, done, ud);
}

int kaos_client_party_matchmaker_remove(kaos_client *c, const char *party_id, const char *ticket,
                                        kaos_done_fn done, void *ud)
{
    if (!c || !party_id || !ticket) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyMatchmakerRemove msg = KAOS__V1__PARTY_MATCHMAKER_REMOVE__INIT;
    msg.party_id = unconst_str(party_id);
    msg.ticket = unconst_str(ticket);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_matchmaker_remove = &msg;
    return call(c, REQ_PARTY_MATCHMAKER_REMOVE, &env, KAOS__FN(done), ud);
}

int kaos_client_matchmaker_remove(kaos_client *c, const char *ticket, kaos_done_fn done, void *ud)
{
    if (!c || !ticket) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchmakerRemove msg = KAOS__V1__MATCHMAKER_REMOVE__INIT;
    msg.ticket = unconst_str(ticket);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.matchmaker_remove = &msg;
    return call(c, REQ_MATCHMAKER_REMOVE, &env, KAOS__FN(done), ud);
}

/* --- parties ---------------------------------------------------------------------- */

int kaos_client_party_create(kaos_client *c, const kaos_party_config *cfg, kaos_party_fn done,
                             void *ud)
{
    if (!c || !cfg) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyCreate msg = KAOS__V1__PARTY_CREATE__INIT;
    msg.open = cfg->open;
    msg.max_size = cfg->max_size;
    if (cfg->label) msg.label = unconst_str(cfg->label);
    msg.hidden = cfg->hidden;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_create = &msg;
    return call(c, REQ_PARTY_CREATE, &env, KAOS__FN(done), ud);
}

int kaos_client_party_join(kaos_client *c, const char *party_id, kaos_party_fn done, void *ud)
{
    if (!c || !party_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyJoin msg = KAOS__V1__PARTY_JOIN__INIT;
    msg.party_id = unconst_str(party_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_join = &msg;
    return call(c, REQ_PARTY_JOIN, &env, KAOS__FN(done), ud);
}

int kaos_client_party_leave(kaos_client *c, const char *party_id, kaos_done_fn done, void *ud)
{
    if (!c || !party_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyLeave msg = KAOS__V1__PARTY_LEAVE__INIT;
    msg.party_id = unconst_str(party_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_leave = &msg;
    return call(c, REQ_PARTY_LEAVE, &env, KAOS__FN(done), ud);
}

/* The presence a leader's request names. */
static Kaos__V1__UserPresence named_presence(const char *user_id, const char *session_id)
{
    Kaos__V1__UserPresence p = KAOS__V1__USER_PRESENCE__INIT;
    p.user_id = unconst_str(user_id);
    p.session_id = unconst_str(session_id);
    return p;
}

int kaos_client_party_promote(kaos_client *c, const char *party_id, const char *user_id,
                              const char *session_id, kaos_done_fn done, void *ud)
{
    if (!c || !party_id || !user_id || !session_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UserPresence p = named_presence(user_id, session_id);
    Kaos__V1__PartyPromote msg = KAOS__V1__PARTY_PROMOTE__INIT;
    msg.party_id = unconst_str(party_id);
    msg.presence = &p;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_promote = &msg;
    return call(c, REQ_PARTY_PROMOTE, &env, KAOS__FN(done), ud);
}

int kaos_client_party_accept(kaos_client *c, const char *party_id, const char *user_id,
                             const char *session_id, kaos_done_fn done, void *ud)
{
    if (!c || !party_id || !user_id || !session_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UserPresence p = named_presence(user_id, session_id);
    Kaos__V1__PartyAccept msg = KAOS__V1__PARTY_ACCEPT__INIT;
    msg.party_id = unconst_str(party_id);
    msg.presence = &p;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_accept = &msg;
    return call(c, REQ_PARTY_ACCEPT, &env, KAOS__FN(done), ud);
}

int kaos_client_party_remove(kaos_client *c, const char *party_id, const char *user_id,
                             const char *session_id, kaos_done_fn done, void *ud)
{
    if (!c || !party_id || !user_id || !session_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UserPresence p = named_presence(user_id, session_id);
    Kaos__V1__PartyRemove msg = KAOS__V1__PARTY_REMOVE__INIT;
    msg.party_id = unconst_str(party_id);
    msg.presence = &p;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_remove = &msg;
    return call(c, REQ_PARTY_REMOVE, &env, KAOS__FN(done), ud);
}

int kaos_client_party_close(kaos_client *c, const char *party_id, kaos_done_fn done, void *ud)
{
    if (!c || !party_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyClose msg = KAOS__V1__PARTY_CLOSE__INIT;
    msg.party_id = unconst_str(party_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_close = &msg;
    return call(c, REQ_PARTY_CLOSE, &env, KAOS__FN(done), ud);
}

int kaos_client_party_join_requests(kaos_client *c, const char *party_id,
                                    kaos_party_requests_fn done, void *ud)
{
    if (!c || !party_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyJoinRequestList msg = KAOS__V1__PARTY_JOIN_REQUEST_LIST__INIT;
    msg.party_id = unconst_str(party_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_join_request_list = &msg;
    return call(c, REQ_PARTY_JOIN_REQUESTS, &env, KAOS__FN(done), ud);
}

int kaos_client_party_list(kaos_client *c, const char *query, uint32_t limit,
                           kaos_party_list_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__PartyListRequest msg = KAOS__V1__PARTY_LIST_REQUEST__INIT;
    if (query) msg.query = unconst_str(query);
    msg.limit = limit;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.party_list_request = &msg;
    return call(c, REQ_PARTY_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_party_send(kaos_client *c, const char *party_id, int64_t op_code, const void *data,
                           size_t len, bool reliable)
{
    if (!c || !party_id || (len && !data)) return KN_ERR_INVALID_ARGUMENT;
    if (len > KAOS_MAX_MESSAGE_SIZE) return KN_ERR_TOO_LARGE;
    Kaos__V1__PartyDataSend msg = KAOS__V1__PARTY_DATA_SEND__INIT;
    msg.party_id = unconst_str(party_id);
    msg.op_code = op_code;
    msg.data.data = unconst_bytes(data);
    msg.data.len = len;
    msg.reliable = reliable;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PARTY_DATA_SEND;
    env.party_data_send = &msg;
    uint8_t channel = reliable ? KN_CHANNEL_CONTROL : KN_CHANNEL_MATCH_UNRELIABLE;
    return kaos_client__send(c, &env, channel, reliable);
}

int kaos_client_match_join_token(kaos_client *c, const char *token, kaos_match_fn done, void *ud)
{
    if (!c || !token || !*token) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchJoin msg = KAOS__V1__MATCH_JOIN__INIT;
    msg.token = unconst_str(token);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.match_join = &msg;
    return call(c, REQ_MATCH_JOIN_TOKEN, &env, KAOS__FN(done), ud);
}

/* --- leaderboards ------------------------------------------------------------------ */

int kaos_client_leaderboard_record_write(kaos_client *c, const char *leaderboard_id, int64_t score,
                                         int64_t subscore, const char *metadata, int op,
                                         kaos_leaderboard_record_fn done, void *ud)
{
    if (!c || !leaderboard_id || op < KAOS_LEADERBOARD_OP_DEFAULT ||
        op > KAOS_LEADERBOARD_OP_DECREMENT)
        return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LeaderboardRecordWrite msg = KAOS__V1__LEADERBOARD_RECORD_WRITE__INIT;
    msg.leaderboard_id = unconst_str(leaderboard_id);
    msg.score = score;
    msg.subscore = subscore;
    msg.metadata = text_or_empty(metadata);
    msg.operator_ = op;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.leaderboard_record_write = &msg;
    return call(c, REQ_LEADERBOARD_RECORD_WRITE, &env, KAOS__FN(done), ud);
}

int kaos_client_leaderboard_records_list(kaos_client *c, const char *leaderboard_id,
                                         const char *const *owner_ids, size_t owner_count,
                                         uint32_t limit, const char *cursor, int64_t expiry,
                                         kaos_leaderboard_records_fn done, void *ud)
{
    if (!c || !leaderboard_id || (owner_count && !owner_ids)) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LeaderboardRecordsList msg = KAOS__V1__LEADERBOARD_RECORDS_LIST__INIT;
    msg.leaderboard_id = unconst_str(leaderboard_id);
    msg.owner_ids = unconst_list(owner_ids);
    msg.n_owner_ids = owner_count;
    msg.limit = limit;
    msg.cursor = text_or_empty(cursor);
    msg.expiry = expiry;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.leaderboard_records_list = &msg;
    return call(c, REQ_LEADERBOARD_RECORDS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_leaderboard_records_around(kaos_client *c, const char *leaderboard_id,
                                           const char *owner_id, uint32_t limit,
                                           kaos_leaderboard_records_fn done, void *ud)
{
    if (!c || !leaderboard_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LeaderboardRecordsAround msg = KAOS__V1__LEADERBOARD_RECORDS_AROUND__INIT;
    msg.leaderboard_id = unconst_str(leaderboard_id);
    msg.owner_id = text_or_empty(owner_id);
    msg.limit = limit;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.leaderboard_records_around = &msg;
    return call(c, REQ_LEADERBOARD_RECORDS_AROUND, &env, KAOS__FN(done), ud);
}

int kaos_client_leaderboard_record_delete(kaos_client *c, const char *leaderboard_id,
                                          kaos_done_fn done, void *ud)
{
    if (!c || !leaderboard_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LeaderboardRecordDelete msg = KAOS__V1__LEADERBOARD_RECORD_DELETE__INIT;
    msg.leaderboard_id = unconst_str(leaderboard_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.leaderboard_record_delete = &msg;
    return call(c, REQ_LEADERBOARD_RECORD_DELETE, &env, KAOS__FN(done), ud);
}

/* --- tournaments ------------------------------------------------------------------- */

int kaos_client_tournament_join(kaos_client *c, const char *tournament_id, kaos_done_fn done,
                                void *ud)
{
    if (!c || !tournament_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__TournamentJoin msg = KAOS__V1__TOURNAMENT_JOIN__INIT;
    msg.tournament_id = unconst_str(tournament_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.tournament_join = &msg;
    return call(c, REQ_TOURNAMENT_JOIN, &env, KAOS__FN(done), ud);
}

int kaos_client_tournament_list(kaos_client *c, uint32_t category_start, uint32_t category_end,
                                int64_t start_time, int64_t end_time, uint32_t limit,
                                const char *cursor, kaos_tournaments_fn done, void *ud)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__TournamentsList msg = KAOS__V1__TOURNAMENTS_LIST__INIT;
    msg.category_start = category_start;
    msg.category_end = category_end;
    msg.start_time = start_time;
    msg.end_time = end_time;
    msg.limit = limit;
    msg.cursor = text_or_empty(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.tournaments_list = &msg;
    return call(c, REQ_TOURNAMENTS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_tournament_record_write(kaos_client *c, const char *tournament_id, int64_t score,
                                        int64_t subscore, const char *metadata, int op,
                                        kaos_leaderboard_record_fn done, void *ud)
{
    if (!c || !tournament_id || op < KAOS_LEADERBOARD_OP_DEFAULT ||
        op > KAOS_LEADERBOARD_OP_DECREMENT)
        return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__TournamentRecordWrite msg = KAOS__V1__TOURNAMENT_RECORD_WRITE__INIT;
    msg.tournament_id = unconst_str(tournament_id);
    msg.score = score;
    msg.subscore = subscore;
    msg.metadata = text_or_empty(metadata);
    msg.operator_ = op;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.tournament_record_write = &msg;
    return call(c, REQ_TOURNAMENT_RECORD_WRITE, &env, KAOS__FN(done), ud);
}

int kaos_client_tournament_records_list(kaos_client *c, const char *tournament_id,
                                        const char *const *owner_ids, size_t owner_count,
                                        uint32_t limit, const char *cursor, int64_t expiry,
                                        kaos_leaderboard_records_fn done, void *ud)
{
    if (!c || !tournament_id || (owner_count && !owner_ids)) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__TournamentRecordsList msg = KAOS__V1__TOURNAMENT_RECORDS_LIST__INIT;
    msg.tournament_id = unconst_str(tournament_id);
    msg.owner_ids = unconst_list(owner_ids);
    msg.n_owner_ids = owner_count;
    msg.limit = limit;
    msg.cursor = text_or_empty(cursor);
    msg.expiry = expiry;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.tournament_records_list = &msg;
    return call(c, REQ_TOURNAMENT_RECORDS_LIST, &env, KAOS__FN(done), ud);
}

int kaos_client_tournament_records_around(kaos_client *c, const char *tournament_id,
                                          const char *owner_id, uint32_t limit,
                                          kaos_leaderboard_records_fn done, void *ud)
{
    if (!c || !tournament_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__TournamentRecordsAround msg = KAOS__V1__TOURNAMENT_RECORDS_AROUND__INIT;
    msg.tournament_id = unconst_str(tournament_id);
    msg.owner_id = text_or_empty(owner_id);
    msg.limit = limit;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.tournament_records_around = &msg;
    return call(c, REQ_TOURNAMENT_RECORDS_AROUND, &env, KAOS__FN(done), ud);
}
