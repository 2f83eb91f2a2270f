/* chat: the chat service (contract in kn_chat.h, prose in docs/chat.md).
 *
 * Invariants:
 *   - a channel id and its stream are one thing written two ways
 *     (channel_of_stream / kn_chat_id_parse), and every id this module
 *     accepts is in canonical form (lowercase UUIDs, a DM's ids ascending),
 *     so one channel never has two ids;
 *   - every input is validated before the database or the tracker is
 *     touched;
 *   - a stored message takes its sequence from its channel's chat_channel
 *     row in the statement that inserts it, so sequences of one channel
 *     commit in order (the migration says why that makes paging safe);
 *   - delivery is kn_tracker_send to the channel's stream, after the
 *     database said yes, and nothing else. */
#include "kn_chat.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_limits.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_text.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

KN_ENTITY_DEFINE(kn_chat_message_entity, kn_chat_message, CHANNEL_MESSAGE);

#define NIL_UUID    "00000000-0000-0000-0000-000000000000"
#define MS(col)     "(extract(epoch FROM " col ") * 1000)::bigint"
#define CURSOR_HEAD "ch1."
#define MESSAGE_COLS                                                                               \
    "id::text, code, coalesce(sender_id::text, ''), username, content::text, " MS(                 \
        "create_time") ", " MS("update_time") ", sequence"

struct kn_chat {
    kn_tracker *tracker;
    kn_out *out;
    kn_chat_config cfg;
    pthread_mutex_t lock; /* guards buckets */
    kn_map buckets;       /* conn -> kn_bucket */
};

/* --- statements ------------------------------------------------------------------ */

/* The channel's next sequence and the message, in one statement: the
 * upsert's row lock is held until the insert commits. */
static const kn_db_stmt insert_message = {
    "chat_insert",
    "WITH s AS (INSERT INTO chat_channel (id, sequence) VALUES ($2, 1)"
    " ON CONFLICT (id) DO UPDATE SET sequence = chat_channel.sequence + 1 RETURNING sequence)"
    " INSERT INTO message (id, channel_id, sequence, code, sender_id, username, content)"
    " SELECT $1::uuid, $2, s.sequence, $3::int, NULLIF($4, '')::uuid, $5, $6::jsonb FROM s"
    " RETURNING " MESSAGE_COLS,
    6};
static const kn_db_stmt update_message = {
    "chat_update",
    "UPDATE message SET content = $4::jsonb, update_time = now()"
    " WHERE id = $1::uuid AND channel_id = $2 AND ($3 = '' OR sender_id = NULLIF($3, '')::uuid)"
    " RETURNING " MESSAGE_COLS,
    4};
static const kn_db_stmt remove_message = {
    "chat_remove",
    "DELETE FROM message WHERE id = $1::uuid AND channel_id = $2"
    " AND ($3 = '' OR sender_id = NULLIF($3, '')::uuid OR $4::bool) RETURNING " MESSAGE_COLS,
    4};
static const kn_db_stmt message_exists = {
    "chat_exists", "SELECT 1 FROM message WHERE id = $1::uuid AND channel_id = $2", 2};
static const kn_db_stmt list_forward = {
    "chat_list_forward",
    "SELECT " MESSAGE_COLS " FROM message WHERE channel_id = $1 AND sequence > $2::bigint"
    " ORDER BY sequence LIMIT $3::int",
    3};
static const kn_db_stmt list_backward = {
    "chat_list_backward",
    "SELECT " MESSAGE_COLS " FROM message WHERE channel_id = $1 AND sequence < $2::bigint"
    " ORDER BY sequence DESC LIMIT $3::int",
    3};
static const kn_db_stmt username_of = {"chat_username",
                                       "SELECT username FROM users WHERE id = $1::uuid", 1};
/* Whether the other user exists, and whether either blocks the other. */
static const kn_db_stmt dm_check = {
    "chat_dm_check",
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $2::uuid AND id <> '" NIL_UUID "'),"
    " EXISTS (SELECT 1 FROM user_edge WHERE state = 3 AND ((source_id = $1::uuid AND"
    " destination_id = $2::uuid) OR (source_id = $2::uuid AND destination_id = $1::uuid)))",
    2};

static int db_fail(int rc, char *msg, size_t cap)
{
    if (rc == KN_ERR_NOMEM) return kn_err_msg(rc, msg, cap, "out of memory");
    return kn_err_msg(rc == KN_ERR_ABORTED ? rc : KN_ERR_DB, msg, cap, "database unavailable");
}

/* --- channel ids --------------------------------------------------------------------- */

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Fills the fields of ch that follow from ch->stream (mode and keys set). */
static void channel_finish(kn_chat_channel *ch)
{
    const kn_stream *s = &ch->stream;
    snprintf(ch->id, sizeof ch->id, "%u.%s.%s.%s", (unsigned)s->mode, s->subject, s->subcontext,
             s->label);
    ch->room_name[0] = ch->group_id[0] = ch->user_id_one[0] = ch->user_id_two[0] = '\0';
    switch (s->mode) {
    case KN_STREAM_CHANNEL:
        ch->type = KN_CHAT_ROOM;
        snprintf(ch->room_name, sizeof ch->room_name, "%s", s->label);
        break;
    case KN_STREAM_GROUP:
        ch->type = KN_CHAT_GROUP;
        snprintf(ch->group_id, sizeof ch->group_id, "%s", s->subject);
        break;
    default:
        ch->type = KN_CHAT_DM;
        snprintf(ch->user_id_one, sizeof ch->user_id_one, "%s", s->subject);
        snprintf(ch->user_id_two, sizeof ch->user_id_two, "%s", s->subcontext);
        break;
    }
}

static bool room_name_valid(const char *name)
{
    size_t len = strlen(name);
    return len >= 1 && len <= KN_CHAT_ROOM_NAME_MAX && kn_text_valid(name, true);
}

static bool canonical_uuid(const char *s)
{
    if (!kn_uuid_valid(s)) return false;
    for (; *s; s++)
        if (isupper((unsigned char)*s)) return false;
    return true;
}

int kn_chat_id_build(const char *user_id, const char *target, int type, kn_chat_channel *out,
                     char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!target) target = "";
    switch (type) {
    case KN_CHAT_ROOM:
        if (!room_name_valid(target))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "room name must be 1-%d bytes of UTF-8 without control characters",
                              KN_CHAT_ROOM_NAME_MAX);
        out->stream.mode = KN_STREAM_CHANNEL;
        snprintf(out->stream.label, sizeof out->stream.label, "%s", target);
        break;
    case KN_CHAT_GROUP:
        if (!kn_uuid_valid(target))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "group id must be a UUID");
        out->stream.mode = KN_STREAM_GROUP;
        snprintf(out->stream.subject, sizeof out->stream.subject, "%s", target);
        lower(out->stream.subject);
        break;
    case KN_CHAT_DM: {
        if (!kn_uuid_valid(target))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user id must be a UUID");
        if (!user_id || !kn_uuid_valid(user_id))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "sender id must be a UUID");
        char a[37], b[37];
        snprintf(a, sizeof a, "%s", user_id);
        snprintf(b, sizeof b, "%s", target);
        lower(a);
        lower(b);
        int order = strcmp(a, b);
        if (order == 0)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "a direct message channel needs another user");
        out->stream.mode = KN_STREAM_DM;
        snprintf(out->stream.subject, sizeof out->stream.subject, "%s", order < 0 ? a : b);
        snprintf(out->stream.subcontext, sizeof out->stream.subcontext, "%s", order < 0 ? b : a);
        break;
    }
    default:
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "channel type must be 1 (room), 2 (direct message) or 3 (group)");
    }
    channel_finish(out);
    return KN_OK;
}

int kn_chat_id_parse(const char *id, kn_chat_channel *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    const char *d1 = id ? strchr(id, '.') : NULL;
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    const char *d3 = d2 ? strchr(d2 + 1, '.') : NULL;
    if (!d3 || strlen(id) > KN_CHAT_ID_MAX || d1 - id != 1 || (size_t)(d2 - d1 - 1) > 36 ||
        (size_t)(d3 - d2 - 1) > 36)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "channel id is not valid");
    kn_stream *s = &out->stream;
    s->mode = (uint8_t)(id[0] - '0');
    memcpy(s->subject, d1 + 1, (size_t)(d2 - d1 - 1));
    memcpy(s->subcontext, d2 + 1, (size_t)(d3 - d2 - 1));
    snprintf(s->label, sizeof s->label, "%s", d3 + 1);
    bool ok = false;
    switch (id[0]) {
    case '0' + KN_STREAM_CHANNEL:
        ok = !*s->subject && !*s->subcontext && strlen(d3 + 1) <= KN_CHAT_ROOM_NAME_MAX &&
             room_name_valid(s->label);
        break;
    case '0' + KN_STREAM_GROUP:
        ok = canonical_uuid(s->subject) && !*s->subcontext && !*s->label;
        break;
    case '0' + KN_STREAM_DM:
        ok = canonical_uuid(s->subject) && canonical_uuid(s->subcontext) &&
             strcmp(s->subject, s->subcontext) < 0 && !*s->label;
        break;
    default:
        break;
    }
    if (!ok) {
        memset(out, 0, sizeof *out);
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "channel id is not valid");
    }
    channel_finish(out);
    return KN_OK;
}

/* --- presence events ---------------------------------------------------------------- */

/* The three modes' events: ChannelPresenceEvent. */
static size_t build_event(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                          size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                          size_t cap)
{
    (void)ud, (void)handle;
    kn_presence_change c;
    if (!kn_presence_change_init(&c, joins, n_joins, leaves, n_leaves)) return 0;
    kn_chat_channel ch = {.stream = *s};
    channel_finish(&ch);
    Kaos__V1__ChannelPresenceEvent ev = KAOS__V1__CHANNEL_PRESENCE_EVENT__INIT;
    ev.channel_id = ch.id;
    ev.room_name = ch.room_name;
    ev.group_id = ch.group_id;
    ev.user_id_one = ch.user_id_one;
    ev.user_id_two = ch.user_id_two;
    ev.n_joins = c.n_joins;
    ev.joins = c.joins;
    ev.n_leaves = c.n_leaves;
    ev.leaves = c.leaves;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_PRESENCE;
    env.channel_presence = &ev;
    return kn_presence_event_pack(&env, buf, cap);
}

/* --- life --------------------------------------------------------------------------- */

void kn_chat_config_default(kn_chat_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rate_per_sec = 10;
    cfg->burst = 20;
}

int kn_chat_create(const kn_chat_config *cfg, kn_tracker *t, kn_out *out, kn_chat **chat)
{
    *chat = NULL;
    kn_chat *c = kn_calloc(1, sizeof *c);
    if (!c) return KN_ERR_NOMEM;
    c->tracker = t;
    c->out = out;
    c->cfg = *cfg;
    kn_map_init(&c->buckets);
    pthread_mutex_init(&c->lock, NULL);
    static const struct {
        uint8_t mode;
        const char *name;
    } modes[] = {{KN_STREAM_CHANNEL, "room"},
                 {KN_STREAM_GROUP, "group channel"},
                 {KN_STREAM_DM, "direct message channel"}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        kn_tracker_mode m = {.name = modes[i].name,
                             .max_per_session = KN_CHAT_CHANNELS_MAX,
                             .build = build_event,
                             .ud = c};
        int rc = kn_tracker_mode_set(t, modes[i].mode, &m);
        if (rc) {
            kn_chat_destroy(c);
            return rc;
        }
    }
    *chat = c;
    return KN_OK;
}

void kn_chat_destroy(kn_chat *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->buckets.cap; i++)
        if (c->buckets.slots[i].key) kn_free(c->buckets.slots[i].value);
    kn_map_deinit(&c->buckets);
    pthread_mutex_destroy(&c->lock);
    kn_free(c);
}

void kn_chat_forget(kn_chat *c, kn_conn_id conn)
{
    pthread_mutex_lock(&c->lock);
    kn_free(kn_map_del(&c->buckets, conn));
    pthread_mutex_unlock(&c->lock);
}

/* Takes one message from conn's bucket: RESOURCE_EXHAUSTED when empty. */
static int take_rate(kn_chat *c, kn_conn_id conn, char *msg, size_t cap)
{
    if (c->cfg.rate_per_sec <= 0) return KN_OK;
    int64_t now = kn_time_mono_ms();
    int rc = KN_OK;
    pthread_mutex_lock(&c->lock);
    kn_bucket *b = kn_map_get(&c->buckets, conn);
    if (!b && (b = kn_malloc(sizeof *b))) {
        kn_bucket_init(b, c->cfg.rate_per_sec, c->cfg.burst, now);
        if (kn_map_put(&c->buckets, conn, b)) {
            kn_free(b);
            b = NULL;
        }
    }
    if (!b)
        rc = kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    else if (!kn_bucket_take(b, 1, now))
        rc = kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                        "too many chat messages: at most %g per second", c->cfg.rate_per_sec);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* --- join and leave ------------------------------------------------------------------ */

static int check_dm(kn_db *db, const char *user_id, const kn_chat_channel *ch, char *msg,
                    size_t cap)
{
    const char *other =
        strcasecmp(ch->user_id_one, user_id) == 0 ? ch->user_id_two : ch->user_id_one;
    const char *p[] = {user_id, other};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &dm_check, p, &rows);
    if (rc) return db_fail(rc, msg, cap);
    bool exists = !strcmp(kn_db_rows_get(rows, 0, 0), "t");
    bool blocked = !strcmp(kn_db_rows_get(rows, 0, 1), "t");
    kn_db_rows_free(rows);
    if (!exists) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "user %s does not exist", other);
    if (blocked)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "direct messages between these users are blocked");
    return KN_OK;
}

/* user_id's standing in the group of ch: PERMISSION_DENIED unless a member. */
static int check_group(kn_chat *c, kn_db *db, const char *user_id, const kn_chat_channel *ch,
                       bool *admin, char *msg, size_t cap)
{
    bool member = false, is_admin = false;
    if (admin) *admin = false;
    if (!c->cfg.groups.membership)
        return kn_err_msg(KN_ERR_UNIMPLEMENTED, msg, cap,
                          "group channels are not available on this server");
    int rc =
        c->cfg.groups.membership(c->cfg.groups.ud, db, ch->group_id, user_id, &member, &is_admin);
    if (rc) return db_fail(rc, msg, cap);
    if (!member) return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "not a member of the group");
    if (admin) *admin = is_admin;
    return KN_OK;
}

/* Tells the other user of a DM that who wants to chat, unless a session of
 * theirs is on the channel. A failure is logged: the join stands. */
static void dm_request(kn_chat *c, kn_db *db, const kn_presence *who, const kn_chat_channel *ch)
{
    const char *other =
        strcasecmp(ch->user_id_one, who->user_id) == 0 ? ch->user_id_two : ch->user_id_one;
    kn_presence *on = NULL;
    size_t n = 0;
    if (kn_tracker_list(c->tracker, &ch->stream, true, true, &on, &n)) return;
    bool there = false;
    for (size_t i = 0; i < n && !there; i++)
        there = strcasecmp(on[i].user_id, other) == 0;
    kn_free(on);
    if (there) return;
    char subject[200], content[400];
    snprintf(subject, sizeof subject, "%s wants to chat", who->username);
    kn_json *o = kn_json_object();
    kn_json_object_set_new(o, "username", kn_json_string(who->username));
    kn_json_object_set_new(o, "channel_id", kn_json_string(ch->id));
    char *text = o ? kn_json_dump(o, KN_JSON_COMPACT) : NULL;
    snprintf(content, sizeof content, "%s", text ? text : "{}");
    kn_json_free_text(text);
    kn_json_decref(o);
    kn_notify_msg note = {.user_id = other,
                          .subject = subject,
                          .content = content,
                          .code = KN_NOTIFY_CODE_DM_REQUEST,
                          .sender_id = who->user_id,
                          .persistent = true};
    char why[128] = "";
    if (kn_notify_send(db, c->out, &note, 1, true, why, sizeof why))
        KN_WARN("chat: no DM request notification to user %.36s: %s", other, why);
}

int kn_chat_join(kn_chat *c, kn_db *db, const kn_presence *who, const char *target, int type,
                 bool persistence, bool hidden, kn_chat_joined *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_chat_channel *ch = &out->channel;
    int rc = kn_chat_id_build(who->user_id, target, type, ch, msg, cap);
    if (rc) return rc;
    if (type == KN_CHAT_DM && (rc = check_dm(db, who->user_id, ch, msg, cap))) return rc;
    if (type == KN_CHAT_GROUP && (rc = check_group(c, db, who->user_id, ch, NULL, msg, cap)))
        return rc;
    kn_presence me = *who;
    me.hidden = hidden;
    me.persistence = persistence;
    me.status = NULL;
    kn_tracker_opts opts = {.list_others = true};
    kn_tracker_joined joined;
    rc = kn_tracker_track(c->tracker, &ch->stream, &me, &opts, &joined, msg, cap);
    if (rc == KN_ERR_ALREADY_EXISTS) {
        /* Joining again takes the new flags: leave, then join. */
        kn_tracker_untrack(c->tracker, &ch->stream, me.conn);
        rc = kn_tracker_track(c->tracker, &ch->stream, &me, &opts, &joined, msg, cap);
    }
    if (rc) return rc;
    out->others = joined.others;
    out->n_others = joined.n_others;
    out->self = me;
    if (type == KN_CHAT_DM) dm_request(c, db, who, ch);
    return KN_OK;
}

void kn_chat_block(kn_chat *c, const char *blocker_id, const char *blocked_id)
{
    kn_chat_channel ch;
    if (kn_chat_id_build(blocker_id, blocked_id, KN_CHAT_DM, &ch, NULL, 0)) return;
    kn_tracker_untrack_user(c->tracker, &ch.stream, ch.user_id_one);
    kn_tracker_untrack_user(c->tracker, &ch.stream, ch.user_id_two);
}

int kn_chat_leave(kn_chat *c, kn_conn_id conn, const char *channel_id, char *msg, size_t cap)
{
    kn_chat_channel ch;
    int rc = kn_chat_id_parse(channel_id, &ch, msg, cap);
    if (rc) return rc;
    if (kn_tracker_untrack(c->tracker, &ch.stream, conn))
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "not on the channel");
    return KN_OK;
}

/* --- messages ------------------------------------------------------------------------ */

static int check_content(const char *content, char *msg, size_t cap)
{
    size_t len = content ? strlen(content) : 0;
    if (len > KN_CHAT_CONTENT_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "content is %zu bytes; the limit is %d", len, KN_CHAT_CONTENT_MAX);
    kn_json_error err;
    kn_json *v = content ? kn_json_parse(content, len, KN_JSON_DECODE_ANY, &err) : NULL;
    bool object = v && kn_json_is_object(v);
    kn_json_decref(v);
    if (!object)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "content must be a JSON object");
    return KN_OK;
}

static void message_channel(kn_chat_message *m, const kn_chat_channel *ch)
{
    snprintf(m->channel_id, sizeof m->channel_id, "%s", ch->id);
    snprintf(m->room_name, sizeof m->room_name, "%s", ch->room_name);
    snprintf(m->group_id, sizeof m->group_id, "%s", ch->group_id);
    snprintf(m->user_id_one, sizeof m->user_id_one, "%s", ch->user_id_one);
    snprintf(m->user_id_two, sizeof m->user_id_two, "%s", ch->user_id_two);
}

/* Row i of a MESSAGE_COLS result into m (channel fields set by the caller). */
static int message_from_row(const kn_db_rows *rows, size_t i, kn_chat_message *m)
{
    snprintf(m->message_id, sizeof m->message_id, "%s", kn_db_rows_get(rows, i, 0));
    m->code = atoi(kn_db_rows_get(rows, i, 1));
    snprintf(m->sender_id, sizeof m->sender_id, "%s", kn_db_rows_get(rows, i, 2));
    snprintf(m->username, sizeof m->username, "%s", kn_db_rows_get(rows, i, 3));
    m->content = kn_strdup(kn_db_rows_get(rows, i, 4));
    m->create_time_ms = strtoll(kn_db_rows_get(rows, i, 5), NULL, 10);
    m->update_time_ms = strtoll(kn_db_rows_get(rows, i, 6), NULL, 10);
    m->sequence = strtoll(kn_db_rows_get(rows, i, 7), NULL, 10);
    m->persistent = true;
    return m->content ? KN_OK : KN_ERR_NOMEM;
}

/* Packs m as a ChannelMessage event and sends it to everyone on ch. Nobody
 * on the channel is fine: the message is in the history (when stored). */
static void deliver(kn_chat *c, const kn_chat_channel *ch, const kn_chat_message *m)
{
    Kaos__V1__ChannelMessage pm;
    kn_entity_to_proto(&kn_chat_message_entity, m, &pm);
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_MESSAGE;
    env.channel_message = &pm;
    size_t len = kn_envelope_packed_size(&env);
    uint8_t stack[1024], *buf = len <= sizeof stack ? stack : kn_malloc(len);
    if (!buf) {
        KN_WARN("chat: message %s not delivered: out of memory", m->message_id);
        return;
    }
    kn_envelope_pack(&env, buf);
    kn_tracker_send(c->tracker, &ch->stream, 0, KN_CHANNEL_CONTROL, buf, len, true);
    if (buf != stack) kn_free(buf);
}

/* What every message operation checks first: the channel, the sender's
 * presence on it (a session) and its rate. *persist becomes the session's
 * join flag. */
static int check_sender(kn_chat *c, const kn_chat_sender *from, const char *channel_id,
                        kn_chat_channel *ch, bool *persist, char *msg, size_t cap)
{
    int rc = kn_chat_id_parse(channel_id, ch, msg, cap);
    if (rc) return rc;
    if (from->user_id && *from->user_id && !kn_uuid_valid(from->user_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "sender id must be a UUID or empty");
    if (!from->conn) return KN_OK;
    kn_presence p;
    if (kn_tracker_get(c->tracker, &ch->stream, from->user_id, from->session_id, &p, NULL, 0) ||
        p.conn != from->conn)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "join the channel before sending");
    if (persist) *persist = p.persistence;
    return take_rate(c, from->conn, msg, cap);
}

int kn_chat_send_code(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                      int code, const char *content, bool persist, kn_chat_message *out, char *msg,
                      size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_chat_channel ch;
    int rc = check_content(content, msg, cap);
    if (rc || (rc = check_sender(c, from, channel_id, &ch, &persist, msg, cap))) return rc;
    message_channel(out, &ch);
    char id[KN_UUID_STR_LEN + 1];
    kn_uuid_v4(id);
    const char *sender = from->user_id ? from->user_id : "";
    const char *username = from->username ? from->username : "";
    if (persist) {
        char code_text[16];
        snprintf(code_text, sizeof code_text, "%d", code);
        const char *p[] = {id, ch.id, code_text, sender, username, content};
        kn_db_rows *rows = NULL;
        rc = kn_db_query(db, &insert_message, p, &rows);
        if (rc == KN_OK) rc = message_from_row(rows, 0, out);
        kn_db_rows_free(rows);
        if (rc) {
            kn_chat_message_clear(out);
            return db_fail(rc, msg, cap);
        }
    } else {
        snprintf(out->message_id, sizeof out->message_id, "%s", id);
        out->code = code;
        snprintf(out->sender_id, sizeof out->sender_id, "%s", sender);
        snprintf(out->username, sizeof out->username, "%s", username);
        out->create_time_ms = out->update_time_ms = kn_time_wall_ms();
        if (!(out->content = kn_strdup(content)))
            return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    deliver(c, &ch, out);
    return KN_OK;
}

int kn_chat_send(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                 const char *content, bool persist, kn_chat_message *out, char *msg, size_t cap)
{
    return kn_chat_send_code(c, db, from, channel_id, KN_CHAT_CODE_CHAT, content, persist, out, msg,
                             cap);
}

int kn_chat_group_event(kn_chat *c, kn_db *db, const char *group_id, const char *actor_id, int code,
                        const char *user_id, char *msg, size_t cap)
{
    kn_chat_channel ch;
    int rc = kn_chat_id_build(NULL, group_id, KN_CHAT_GROUP, &ch, msg, cap);
    if (rc) return rc;
    if (code < KN_CHAT_CODE_GROUP_JOIN || code > KN_CHAT_CODE_GROUP_DEMOTE || !user_id ||
        !kn_uuid_valid(user_id) || (actor_id && !kn_uuid_valid(actor_id)))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "not a group event");
    char username[129] = "";
    kn_db_rows *rows = NULL;
    const char *p[] = {user_id};
    if (kn_db_query(db, &username_of, p, &rows) == KN_OK && kn_db_rows_count(rows))
        snprintf(username, sizeof username, "%s", kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    char content[128];
    snprintf(content, sizeof content, "{\"user_id\": \"%s\", \"actor_id\": \"%s\"}", user_id,
             actor_id ? actor_id : "");
    kn_chat_sender from = {0, user_id, NULL, username};
    kn_chat_message m;
    rc = kn_chat_send_code(c, db, &from, ch.id, code, content, true, &m, msg, cap);
    kn_chat_message_clear(&m);
    /* No longer a member: off the channel, once told. */
    if (code == KN_CHAT_CODE_GROUP_LEAVE || code == KN_CHAT_CODE_GROUP_KICK ||
        code == KN_CHAT_CODE_GROUP_BAN)
        kn_tracker_untrack_user(c->tracker, &ch.stream, user_id);
    return rc;
}

/* After an update or removal changed no row: NOT_FOUND, or PERMISSION_DENIED
 * when the message exists (it is someone else's). */
static int explain_miss(kn_db *db, const char *message_id, const char *channel_id, const char *verb,
                        char *msg, size_t cap)
{
    const char *p[] = {message_id, channel_id};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &message_exists, p, &rows);
    size_t n = rc ? 0 : kn_db_rows_count(rows);
    kn_db_rows_free(rows);
    if (rc) return db_fail(rc, msg, cap);
    if (n)
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap, "only the sender may %s a message",
                          verb);
    return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "message not found");
}

int kn_chat_update(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                   const char *message_id, const char *content, kn_chat_message *out, char *msg,
                   size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_chat_channel ch;
    if (!message_id || !kn_uuid_valid(message_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "message id must be a UUID");
    int rc = check_content(content, msg, cap);
    if (rc || (rc = check_sender(c, from, channel_id, &ch, NULL, msg, cap))) return rc;
    const char *p[] = {message_id, ch.id, from->user_id ? from->user_id : "", content};
    if (!from->conn) p[2] = ""; /* the server updates any message */
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &update_message, p, &rows);
    if (rc) return db_fail(rc, msg, cap);
    if (kn_db_rows_count(rows) == 0) {
        kn_db_rows_free(rows);
        return explain_miss(db, message_id, ch.id, "update", msg, cap);
    }
    message_channel(out, &ch);
    rc = message_from_row(rows, 0, out);
    kn_db_rows_free(rows);
    if (rc) {
        kn_chat_message_clear(out);
        return db_fail(rc, msg, cap);
    }
    out->code = KN_CHAT_CODE_UPDATE;
    deliver(c, &ch, out);
    return KN_OK;
}

int kn_chat_remove(kn_chat *c, kn_db *db, const kn_chat_sender *from, const char *channel_id,
                   const char *message_id, kn_chat_message *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    kn_chat_channel ch;
    if (!message_id || !kn_uuid_valid(message_id))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "message id must be a UUID");
    int rc = check_sender(c, from, channel_id, &ch, NULL, msg, cap);
    if (rc) return rc;
    bool admin = false;
    if (from->conn && ch.type == KN_CHAT_GROUP &&
        (rc = check_group(c, db, from->user_id, &ch, &admin, msg, cap)))
        return rc;
    const char *p[] = {message_id, ch.id, from->conn && from->user_id ? from->user_id : "",
                       admin ? "t" : "f"};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, &remove_message, p, &rows);
    if (rc) return db_fail(rc, msg, cap);
    if (kn_db_rows_count(rows) == 0) {
        kn_db_rows_free(rows);
        return explain_miss(db, message_id, ch.id, "remove", msg, cap);
    }
    message_channel(out, &ch);
    rc = message_from_row(rows, 0, out);
    kn_db_rows_free(rows);
    kn_free(out->content);
    out->content = kn_strdup("{}");
    if (rc || !out->content) {
        kn_chat_message_clear(out);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    out->code = KN_CHAT_CODE_REMOVE;
    out->update_time_ms = kn_time_wall_ms();
    deliver(c, &ch, out);
    return KN_OK;
}

void kn_chat_message_clear(kn_chat_message *m)
{
    if (!m) return;
    kn_free(m->content);
    m->content = NULL;
}

void kn_chat_messages_free(kn_chat_message *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        kn_free(m[i].content);
    kn_free(m);
}

/* --- history ------------------------------------------------------------------------- */

/* A cursor is "ch1.<sequence>": the page continues after that message. */
static int parse_cursor(const char *cursor, int64_t *seq, char *msg, size_t cap)
{
    size_t head = sizeof CURSOR_HEAD - 1, len = strlen(cursor);
    bool ok = len > head && len <= head + 19 && !strncmp(cursor, CURSOR_HEAD, head);
    for (size_t i = head; ok && i < len; i++)
        ok = cursor[i] >= '0' && cursor[i] <= '9';
    if (ok) {
        errno = 0;
        char *end;
        long long v = strtoll(cursor + head, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= 0;
        *seq = v;
    }
    if (!ok) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    return KN_OK;
}

int kn_chat_cursor_check(const char *cursor, char *msg, size_t cap)
{
    int64_t seq;
    if (!cursor) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is not valid");
    return parse_cursor(cursor, &seq, msg, cap);
}

static char *make_cursor(int64_t seq)
{
    char buf[KN_CHAT_CURSOR_MAX];
    snprintf(buf, sizeof buf, CURSOR_HEAD "%" PRId64, seq);
    return kn_strdup(buf);
}

/* Whether user_id may read ch's history. */
static int check_reader(kn_chat *c, kn_db *db, const char *user_id, const kn_chat_channel *ch,
                        char *msg, size_t cap)
{
    if (!user_id || !*user_id) return KN_OK; /* the server */
    if (ch->type == KN_CHAT_DM && strcasecmp(user_id, ch->user_id_one) &&
        strcasecmp(user_id, ch->user_id_two))
        return kn_err_msg(KN_ERR_PERMISSION_DENIED, msg, cap,
                          "only its two users may read a direct message channel");
    if (ch->type == KN_CHAT_GROUP) return check_group(c, db, user_id, ch, NULL, msg, cap);
    return KN_OK;
}

int kn_chat_list(kn_chat *c, kn_db *db, const char *user_id, const char *channel_id, int limit,
                 bool forward, const char *cursor, kn_chat_message **out, size_t *n, char **next,
                 char **prev, char *msg, size_t cap)
{
    *out = NULL;
    *n = 0;
    *next = *prev = NULL;
    kn_chat_channel ch;
    int rc = kn_chat_id_parse(channel_id, &ch, msg, cap);
    if (rc) return rc;
    if (limit == 0) limit = KN_CHAT_LIST_MAX;
    if (limit < 1 || limit > KN_CHAT_LIST_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d",
                          KN_CHAT_LIST_MAX);
    bool from_cursor = cursor && *cursor;
    int64_t after = forward ? 0 : INT64_MAX;
    if (from_cursor && (rc = parse_cursor(cursor, &after, msg, cap))) return rc;
    if ((rc = check_reader(c, db, user_id, &ch, msg, cap))) return rc;
    char after_text[24], limit_text[16];
    snprintf(after_text, sizeof after_text, "%" PRId64, after);
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *p[] = {ch.id, after_text, limit_text};
    kn_db_rows *rows = NULL;
    rc = kn_db_query(db, forward ? &list_forward : &list_backward, p, &rows);
    if (rc) return db_fail(rc, msg, cap);
    size_t count = kn_db_rows_count(rows);
    kn_chat_message *list = count ? kn_calloc(count, sizeof *list) : NULL;
    if (count && !list) rc = KN_ERR_NOMEM;
    for (size_t i = 0; rc == KN_OK && i < count; i++) {
        message_channel(&list[i], &ch);
        rc = message_from_row(rows, i, &list[i]);
    }
    kn_db_rows_free(rows);
    if (rc == KN_OK && count == (size_t)limit && !(*next = make_cursor(list[count - 1].sequence)))
        rc = KN_ERR_NOMEM;
    if (rc == KN_OK && count && from_cursor && !(*prev = make_cursor(list[0].sequence)))
        rc = KN_ERR_NOMEM;
    if (rc) {
        kn_chat_messages_free(list, count);
        kn_free(*next);
        kn_free(*prev);
        *next = *prev = NULL;
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    *out = list;
    *n = count;
    return KN_OK;
}
