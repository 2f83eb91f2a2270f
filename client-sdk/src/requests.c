/* requests: builds the envelopes a client sends and sends them.
 *
 * Every envelope is packed into the client's send buffer, so nothing larger
 * than KAOS_MAX_MESSAGE_SIZE can leave; secure.c seals it on the way out.
 * Requests go reliably on the control channel with a fresh cid; match data
 * goes on channel 1 or 2 with cid 0, since nothing answers it. Arguments
 * are checked before the connection state, so a bad call fails the same way
 * connected or not. */
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

int kaos_client__request(kaos_client *c, kn_envelope *env)
{
    if (c->state != KAOS_CLIENT_CONNECTED) return KN_ERR_CLOSED;
    env->cid = take_cid(c);
    int rc = kaos_client__send(c, env, KN_CHANNEL_CONTROL, true);
    return rc < 0 ? rc : (int)env->cid;
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
    static int name(const char *const *vars, size_t n, T **entries, T ***pointers)              \
    {                                                                                          \
        *entries = NULL;                                                                       \
        *pointers = NULL;                                                                      \
        if (!n) return KN_OK;                                                                  \
        *entries = kn_calloc(n, sizeof **entries);                                             \
        *pointers = kn_calloc(n, sizeof **pointers);                                           \
        if (!*entries || !*pointers) {                                                         \
            kn_free(*entries);                                                                 \
            kn_free(*pointers);                                                                \
            return KN_ERR_NOMEM;                                                               \
        }                                                                                      \
        for (size_t i = 0; i < n; i++) {                                                       \
            INIT(&(*entries)[i]);                                                              \
            (*entries)[i].key = unconst_str(vars[2 * i]);                                      \
            (*entries)[i].value = unconst_str(vars[2 * i + 1]);                                \
            (*pointers)[i] = &(*entries)[i];                                                   \
        }                                                                                      \
        return KN_OK;                                                                          \
    }

DEFINE_VARS_BUILDER(device_vars, Kaos__V1__AuthenticateDevice__VarsEntry,
                    kaos__v1__authenticate_device__vars_entry__init)
DEFINE_VARS_BUILDER(email_vars, Kaos__V1__AuthenticateEmail__VarsEntry,
                    kaos__v1__authenticate_email__vars_entry__init)
DEFINE_VARS_BUILDER(custom_vars, Kaos__V1__AuthenticateCustom__VarsEntry,
                    kaos__v1__authenticate_custom__vars_entry__init)
DEFINE_VARS_BUILDER(join_metadata, Kaos__V1__MatchJoin__MetadataEntry,
                    kaos__v1__match_join__metadata_entry__init)

int kaos_client_authenticate_device(kaos_client *c, const char *device_id, const char *username,
                                    bool create, const char *const *vars)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE;
    env.authenticate_device = &msg;
    int rc = kaos_client__request(c, &env);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_authenticate_email(kaos_client *c, const char *email, const char *password,
                                   const char *username, bool create, const char *const *vars)
{
    size_t n_vars;
    if (!c || !email || !password || count_pairs(vars, &n_vars) < 0)
        return KN_ERR_INVALID_ARGUMENT;
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_EMAIL;
    env.authenticate_email = &msg;
    int rc = kaos_client__request(c, &env);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_authenticate_custom(kaos_client *c, const char *custom_id, const char *username,
                                    bool create, const char *const *vars)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_CUSTOM;
    env.authenticate_custom = &msg;
    int rc = kaos_client__request(c, &env);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_session_refresh(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    if (!c->has_session || !c->session.refresh_token[0]) return KN_ERR_UNAUTHENTICATED;
    Kaos__V1__SessionRefresh msg = KAOS__V1__SESSION_REFRESH__INIT;
    msg.refresh_token = c->session.refresh_token;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION_REFRESH;
    env.session_refresh = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_session_resume(kaos_client *c, const char *token)
{
    if (!c || !token) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__SessionResume msg = KAOS__V1__SESSION_RESUME__INIT;
    msg.token = unconst_str(token);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION_RESUME;
    env.session_resume = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_ping(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__Ping msg = KAOS__V1__PING__INIT;
    /* Echoed in the Pong; only this client reads it, so its own clock is fine. */
    msg.client_time_ms = (uint64_t)kn_time_mono_ms();
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_PING;
    env.ping = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_session_logout(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__SessionLogout msg = KAOS__V1__SESSION_LOGOUT__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION_LOGOUT;
    env.session_logout = &msg;
    int cid = kaos_client__request(c, &env);
    if (cid > 0) kaos_client__session_clear(c); /* its tokens are dead once the server answers */
    return cid;
}

int kaos_client_rpc(kaos_client *c, const char *id, const char *payload)
{
    if (!c || !id || !*id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__Rpc msg = KAOS__V1__RPC__INIT;
    msg.id = (char *)id;
    msg.payload = (char *)(payload ? payload : "");
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
    env.rpc = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_match_create(kaos_client *c, uint32_t max_size)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchCreate msg = KAOS__V1__MATCH_CREATE__INIT;
    msg.max_size = max_size;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE;
    env.match_create = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_match_join(kaos_client *c, const char *match_id)
{
    return kaos_client_match_join_with(c, match_id, NULL);
}

int kaos_client_match_join_with(kaos_client *c, const char *match_id, const char *const *metadata)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_JOIN;
    env.match_join = &msg;
    int rc = kaos_client__request(c, &env);
    kn_free(entries);
    kn_free(pointers);
    return rc;
}

int kaos_client_match_create_authoritative(kaos_client *c, const char *handler,
                                           const char *params_json)
{
    if (!c || !handler || !*handler) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchCreate msg = KAOS__V1__MATCH_CREATE__INIT;
    msg.handler = unconst_str(handler);
    if (params_json) msg.params = unconst_str(params_json);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_CREATE;
    env.match_create = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_match_list(kaos_client *c, uint32_t limit, const char *label, const char *query,
                           int32_t min_size, int32_t max_size)
{
    if (!c || limit > 100) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchListRequest msg = KAOS__V1__MATCH_LIST_REQUEST__INIT;
    msg.limit = limit;
    if (label) msg.label = unconst_str(label);
    if (query) msg.query = unconst_str(query);
    msg.min_size = min_size;
    msg.max_size = max_size;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_LIST_REQUEST;
    env.match_list_request = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_match_leave(kaos_client *c, uint32_t match)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__MatchLeave msg = KAOS__V1__MATCH_LEAVE__INIT;
    msg.match = match;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_LEAVE;
    env.match_leave = &msg;
    return kaos_client__request(c, &env);
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

int kaos_client_account_get(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__AccountGet msg = KAOS__V1__ACCOUNT_GET__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_GET;
    env.account_get = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_account_update(kaos_client *c, const kaos_account_changes *changes)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_UPDATE;
    env.account_update = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_users_get(kaos_client *c, const char *const *ids, size_t id_count,
                          const char *const *usernames, size_t username_count)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_USERS_GET;
    env.users_get = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_account_delete(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__AccountDelete msg = KAOS__V1__ACCOUNT_DELETE__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT_DELETE;
    env.account_delete = &msg;
    int cid = kaos_client__request(c, &env);
    if (cid > 0) kaos_client__session_clear(c); /* as on logout: its tokens die with the account */
    return cid;
}

int kaos_client_link_device(kaos_client *c, const char *device_id)
{
    if (!c || !device_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkDevice msg = KAOS__V1__LINK_DEVICE__INIT;
    msg.id = unconst_str(device_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_LINK_DEVICE;
    env.link_device = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_link_email(kaos_client *c, const char *email, const char *password)
{
    if (!c || !email || !password) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkEmail msg = KAOS__V1__LINK_EMAIL__INIT;
    msg.email = unconst_str(email);
    msg.password = unconst_str(password);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_LINK_EMAIL;
    env.link_email = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_link_custom(kaos_client *c, const char *custom_id)
{
    if (!c || !custom_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__LinkCustom msg = KAOS__V1__LINK_CUSTOM__INIT;
    msg.id = unconst_str(custom_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_LINK_CUSTOM;
    env.link_custom = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_unlink_device(kaos_client *c, const char *device_id)
{
    if (!c || !device_id) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkDevice msg = KAOS__V1__UNLINK_DEVICE__INIT;
    msg.id = unconst_str(device_id);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_UNLINK_DEVICE;
    env.unlink_device = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_unlink_email(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkEmail msg = KAOS__V1__UNLINK_EMAIL__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_UNLINK_EMAIL;
    env.unlink_email = &msg;
    return kaos_client__request(c, &env);
}

int kaos_client_unlink_custom(kaos_client *c)
{
    if (!c) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__UnlinkCustom msg = KAOS__V1__UNLINK_CUSTOM__INIT;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_UNLINK_CUSTOM;
    env.unlink_custom = &msg;
    return kaos_client__request(c, &env);
}

/* --- storage ---------------------------------------------------------------------- */

/* A request may hold at most this many objects before packing is even tried:
 * each takes at least a few bytes, so more could never fit in one message. */
#define MAX_LISTED KAOS_MAX_MESSAGE_SIZE

int kaos_client_storage_write(kaos_client *c, const kaos_storage_write_object *objects,
                              size_t count)
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
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_WRITE;
    env.storage_write = &msg;
    rc = kaos_client__request(c, &env);
done:
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

/* The ids as StorageObjectId messages, sent as a StorageDelete (with their
 * versions) or a StorageRead. */
static int send_ids(kaos_client *c, const kaos_storage_id *ids, size_t count, bool del)
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
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_DELETE;
        env.storage_delete = &remove;
    } else {
        read.n_object_ids = count;
        read.object_ids = ptrs;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_READ;
        env.storage_read = &read;
    }
    rc = kaos_client__request(c, &env);
done:
    kn_free(msgs);
    kn_free(ptrs);
    return rc;
}

int kaos_client_storage_read(kaos_client *c, const kaos_storage_id *ids, size_t count)
{
    return send_ids(c, ids, count, false);
}

int kaos_client_storage_delete(kaos_client *c, const kaos_storage_id *ids, size_t count)
{
    return send_ids(c, ids, count, true);
}

int kaos_client_storage_list(kaos_client *c, const char *user_id, const char *collection,
                             uint32_t limit, const char *cursor)
{
    if (!c || !collection) return KN_ERR_INVALID_ARGUMENT;
    Kaos__V1__StorageList msg = KAOS__V1__STORAGE_LIST__INIT;
    if (user_id) msg.user_id = unconst_str(user_id);
    msg.collection = unconst_str(collection);
    msg.limit = limit;
    if (cursor) msg.cursor = unconst_str(cursor);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_LIST;
    env.storage_list = &msg;
    return kaos_client__request(c, &env);
}
