/* kn_chat against the Postgres named by the PG* environment (the suite runs
 * inside pg_virtualenv) and a real tracker whose sink decodes what it is
 * asked to send. The group setup creates a database of its own, migrates it
 * and adds users with plain INSERTs; each test uses users and channels of
 * its own. Group membership comes from a fake (the groups service is the
 * composition root's to hand in).
 * Covered: channel ids (canonical, the same from both sides of a DM, bad
 * ones refused), join and leave events, hidden sessions, storage per join
 * flag, sequences, history paging both ways with cursors, update and
 * remove rules, blocks and the DM request notification, group channels for
 * members only and admins' removals, the per-session channel limit, the
 * rate limit, content limits, cursor checks, allocation failures of
 * create. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_chat.h"
#include "kn_codec.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db;
static kn_tracker *tracker;
static kn_chat *chat;
static char msg[512];

/* --- the fake network: what each connection was sent ------------------------------- */

#define MAX_CONN 64

static int messages[MAX_CONN];  /* ChannelMessage envelopes per connection */
static int presences[MAX_CONN]; /* ChannelPresenceEvent envelopes per connection */
static char last_content[MAX_CONN][256];
static char last_channel[MAX_CONN][160];

static int send_many(void *ud, const kn_conn_id *ids, size_t n, uint8_t channel,
                     const uint8_t *data, size_t len, bool reliable)
{
    (void)ud;
    assert_int_equal(channel, KN_CHANNEL_CONTROL);
    assert_true(reliable);
    kn_envelope *env = NULL;
    if (kn_envelope_decode(data, len, &env) != KN_OK) return KN_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] < MAX_CONN);
        if (env->message_case == KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_MESSAGE) {
            messages[ids[i]]++;
            snprintf(last_content[ids[i]], sizeof last_content[0], "%s",
                     env->channel_message->content);
            snprintf(last_channel[ids[i]], sizeof last_channel[0], "%s",
                     env->channel_message->channel_id);
        } else {
            assert_int_equal(env->message_case, KAOS__V1__ENVELOPE__MESSAGE_CHANNEL_PRESENCE);
            presences[ids[i]]++;
            snprintf(last_channel[ids[i]], sizeof last_channel[0], "%s",
                     env->channel_presence->channel_id);
        }
    }
    kn_envelope_free(env);
    return KN_OK;
}

/* --- fake groups: members are listed here, admins too ---------------------------------- */

static char members[8][37], admins[8][37];

static int membership(void *ud, kn_db *d, const char *group_id, const char *user_id, bool *member,
                      bool *admin)
{
    (void)ud, (void)d, (void)group_id;
    *member = *admin = false;
    for (int i = 0; i < 8; i++) {
        if (!strcmp(members[i], user_id)) *member = true;
        if (!strcmp(admins[i], user_id)) *member = *admin = true;
    }
    return KN_OK;
}

/* --- fixture ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    if (pgtest_create(&pg, "kaos_chat", &db)) return -1;
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {send_many, NULL};
    if (kn_tracker_create(&tc, &sink, &tracker)) return -1;
    kn_chat_config cc;
    kn_chat_config_default(&cc);
    cc.rate_per_sec = 1;
    cc.burst = 1000;
    cc.groups = (kn_chat_groups){membership, NULL};
    if (kn_chat_create(&cc, tracker, NULL, &chat)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kn_chat_destroy(chat);
    kn_tracker_destroy(tracker);
    kn_db_close(db);
    pgtest_drop(&pg);
    return 0;
}

static void user(const char *name, char id[37])
{
    static unsigned serial;
    snprintf(id, 37, "c0000000-0000-4000-8000-%012x", ++serial);
    pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', '%s')", id, name);
}

/* A session of user_id on connection conn. */
static kn_presence session(kn_conn_id conn, const char *user_id, const char *name)
{
    kn_presence p = {.conn = conn};
    snprintf(p.user_id, sizeof p.user_id, "%s", user_id);
    snprintf(p.session_id, sizeof p.session_id, "d0000000-0000-4000-8000-%012llx",
             (unsigned long long)conn);
    snprintf(p.username, sizeof p.username, "%s", name);
    return p;
}

static kn_chat_sender as(const kn_presence *p)
{
    return (kn_chat_sender){p->conn, p->user_id, p->session_id, p->username};
}

static int join(const kn_presence *p, const char *target, int type, bool persist, bool hidden,
                char id[160])
{
    kn_chat_joined j;
    int rc = kn_chat_join(chat, db, p, target, type, persist, hidden, &j, msg, sizeof msg);
    if (rc == KN_OK && id) snprintf(id, 160, "%s", j.channel.id);
    kn_free(j.others);
    return rc;
}

static int say(const kn_presence *p, const char *channel, const char *content, kn_chat_message *m)
{
    kn_chat_sender from = as(p);
    kn_chat_message tmp;
    int rc = kn_chat_send(chat, db, &from, channel, content, false, m ? m : &tmp, msg, sizeof msg);
    if (!m) kn_chat_message_clear(&tmp);
    return rc;
}

/* --- tests ------------------------------------------------------------------------------ */

static void channel_ids_are_canonical_and_a_dm_has_one_id(void **state)
{
    (void)state;
    const char *a = "0A1B2C3D-0000-4000-8000-000000000002";
    const char *b = "0a1b2c3d-0000-4000-8000-000000000001";
    kn_chat_channel x, y, z;
    assert_int_equal(kn_chat_id_build(a, b, KN_CHAT_DM, &x, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_chat_id_build(b, a, KN_CHAT_DM, &y, msg, sizeof msg), KN_OK);
    assert_string_equal(x.id, y.id);
    assert_string_equal(x.id, "4.0a1b2c3d-0000-4000-8000-000000000001."
                              "0a1b2c3d-0000-4000-8000-000000000002.");
    assert_int_equal(kn_chat_id_parse(x.id, &z, msg, sizeof msg), KN_OK);
    assert_int_equal(z.type, KN_CHAT_DM);
    assert_string_equal(z.user_id_one, "0a1b2c3d-0000-4000-8000-000000000001");
    assert_int_equal(z.stream.mode, KN_STREAM_DM);
    /* rooms: the name is everything after the third dot */
    assert_int_equal(kn_chat_id_build(NULL, "a.b c", KN_CHAT_ROOM, &x, msg, sizeof msg), KN_OK);
    assert_string_equal(x.id, "2...a.b c");
    assert_int_equal(kn_chat_id_parse("2...a.b c", &z, msg, sizeof msg), KN_OK);
    assert_string_equal(z.room_name, "a.b c");
    assert_string_equal(z.stream.label, "a.b c");
    assert_int_equal(kn_chat_id_build(NULL, b, KN_CHAT_GROUP, &x, msg, sizeof msg), KN_OK);
    assert_string_equal(x.id, "3.0a1b2c3d-0000-4000-8000-000000000001..");
    char long_name[80];
    memset(long_name, 'n', 65);
    long_name[65] = '\0';
    assert_int_equal(kn_chat_id_build(NULL, long_name, KN_CHAT_ROOM, &x, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_chat_id_build(NULL, "tab\there", KN_CHAT_ROOM, &x, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_chat_id_build(b, b, KN_CHAT_DM, &x, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "a direct message channel needs another user");
    assert_int_equal(kn_chat_id_build(b, "x", 4, &x, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    /* ids not in canonical form name no channel */
    const char *bad[] = {
        "",
        "2..",
        "2...",
        "5...room",
        "2.x..room",
        "3.0A1B2C3D-0000-4000-8000-000000000001..",
        "3.0a1b2c3d-0000-4000-8000-000000000001..x",
        "4.0a1b2c3d-0000-4000-8000-000000000002.0a1b2c3d-0000-4000-8000-000000000001.",
        "4.0a1b2c3d-0000-4000-8000-000000000001.0a1b2c3d-0000-4000-8000-000000000001.",
        "22...room",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kn_chat_id_parse(bad[i], &z, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
        assert_string_equal(msg, "channel id is not valid");
    }
}

static void joins_and_leaves_tell_the_others_but_hidden_sessions_tell_nobody(void **state)
{
    (void)state;
    char u1[37], u2[37], u3[37], id[160];
    user("ev-1", u1);
    user("ev-2", u2);
    user("ev-3", u3);
    kn_presence p1 = session(1, u1, "ev-1"), p2 = session(2, u2, "ev-2"),
                p3 = session(3, u3, "ev-3");
    memset(presences, 0, sizeof presences);
    kn_chat_joined j;
    assert_int_equal(
        kn_chat_join(chat, db, &p1, "events", KN_CHAT_ROOM, false, false, &j, msg, sizeof msg),
        KN_OK);
    assert_int_equal(j.n_others, 0);
    assert_true(j.self.conn == 1 && !j.self.hidden);
    kn_free(j.others);
    assert_int_equal(join(&p2, "events", KN_CHAT_ROOM, false, false, id), KN_OK);
    assert_int_equal(presences[1], 1);
    assert_string_equal(last_channel[1], "2...events");
    assert_int_equal(join(&p3, "events", KN_CHAT_ROOM, false, true, NULL), KN_OK);
    assert_int_equal(presences[1], 1); /* hidden: nothing */
    assert_int_equal(presences[2], 0);
    /* the hidden one is not listed to a later joiner either */
    kn_presence p4 = session(4, u3, "ev-3");
    assert_int_equal(
        kn_chat_join(chat, db, &p4, "events", KN_CHAT_ROOM, false, false, &j, msg, sizeof msg),
        KN_OK);
    assert_int_equal(j.n_others, 2);
    kn_free(j.others);
    assert_int_equal(kn_chat_leave(chat, 2, id, msg, sizeof msg), KN_OK);
    assert_int_equal(presences[1], 3); /* p4's join, p2's leave */
    assert_int_equal(kn_chat_leave(chat, 2, id, msg, sizeof msg), KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "not on the channel");
    /* a message reaches the hidden session too, and not the one that left */
    memset(messages, 0, sizeof messages);
    assert_int_equal(say(&p1, id, "{\"hi\":1}", NULL), KN_OK);
    assert_true(messages[1] == 1 && messages[3] == 1 && messages[4] == 1 && messages[2] == 0);
    assert_int_equal(say(&p2, id, "{}", NULL), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "join the channel before sending");
    for (kn_conn_id c = 1; c <= 4; c++)
        kn_tracker_untrack_all(tracker, c);
}

static void messages_are_stored_per_the_join_and_sequenced(void **state)
{
    (void)state;
    char u1[37], u2[37], id[160];
    user("st-1", u1);
    user("st-2", u2);
    kn_presence p1 = session(5, u1, "st-1"), p2 = session(6, u2, "st-2");
    assert_int_equal(join(&p1, "stored", KN_CHAT_ROOM, true, false, id), KN_OK);
    assert_int_equal(join(&p2, "stored", KN_CHAT_ROOM, false, false, NULL), KN_OK);
    kn_chat_message m;
    assert_int_equal(say(&p1, id, "{\"n\": 1}", &m), KN_OK);
    assert_true(m.persistent);
    assert_int_equal(m.sequence, 1);
    assert_string_equal(m.sender_id, u1);
    assert_string_equal(m.username, "st-1");
    assert_string_equal(m.room_name, "stored");
    assert_true(m.create_time_ms > 1600000000000LL && m.update_time_ms == m.create_time_ms);
    assert_string_equal(last_content[6], "{\"n\": 1}");
    kn_chat_message_clear(&m);
    assert_int_equal(say(&p2, id, "{\"n\": 2}", &m), KN_OK);
    assert_false(m.persistent);
    assert_int_equal(m.sequence, 0);
    kn_chat_message_clear(&m);
    assert_int_equal(say(&p1, id, "{\"n\": 3}", &m), KN_OK);
    assert_int_equal(m.sequence, 2);
    kn_chat_message_clear(&m);
    /* joining again takes the new flag */
    assert_int_equal(join(&p2, "stored", KN_CHAT_ROOM, true, false, NULL), KN_OK);
    assert_int_equal(say(&p2, id, "{\"n\": 4}", &m), KN_OK);
    assert_int_equal(m.sequence, 3);
    kn_chat_message_clear(&m);
    /* the server sends anywhere, as itself */
    kn_chat_sender server = {0};
    assert_int_equal(
        kn_chat_send(chat, db, &server, "2...nobody here", "{}", true, &m, msg, sizeof msg), KN_OK);
    assert_string_equal(m.sender_id, "");
    assert_int_equal(m.sequence, 1);
    kn_chat_message_clear(&m);
    kn_tracker_untrack_all(tracker, 5);
    kn_tracker_untrack_all(tracker, 6);
}

static void history_pages_forward_and_backward(void **state)
{
    (void)state;
    kn_chat_sender server = {0};
    const char *id = "2...paged";
    kn_chat_message m;
    for (int i = 1; i <= 5; i++) {
        char content[32];
        snprintf(content, sizeof content, "{\"n\": %d}", i);
        assert_int_equal(kn_chat_send(chat, db, &server, id, content, true, &m, msg, sizeof msg),
                         KN_OK);
        kn_chat_message_clear(&m);
    }
    kn_chat_message *list;
    size_t n;
    char *next, *prev;
    assert_int_equal(
        kn_chat_list(chat, db, NULL, id, 2, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].sequence, 1);
    assert_int_equal(list[1].sequence, 2);
    assert_string_equal(list[0].content, "{\"n\": 1}");
    assert_true(list[0].persistent);
    assert_string_equal(next, "ch1.2");
    assert_null(prev);
    kn_chat_messages_free(list, n);
    char cursor[32];
    snprintf(cursor, sizeof cursor, "%s", next);
    kn_free(next);
    assert_int_equal(kn_chat_list(chat, db, NULL, id, 10, true, cursor, &list, &n, &next, &prev,
                                  msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].sequence, 3);
    assert_null(next); /* not full */
    assert_string_equal(prev, "ch1.3");
    kn_chat_messages_free(list, n);
    snprintf(cursor, sizeof cursor, "%s", prev);
    kn_free(prev);
    assert_int_equal(kn_chat_list(chat, db, NULL, id, 10, false, cursor, &list, &n, &next, &prev,
                                  msg, sizeof msg),
                     KN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].sequence, 2);
    assert_int_equal(list[1].sequence, 1);
    kn_chat_messages_free(list, n);
    kn_free(prev);
    /* backward from the newest */
    assert_int_equal(
        kn_chat_list(chat, db, NULL, id, 1, false, "", &list, &n, &next, &prev, msg, sizeof msg),
        KN_OK);
    assert_int_equal(list[0].sequence, 5);
    assert_string_equal(next, "ch1.5");
    kn_chat_messages_free(list, n);
    kn_free(next);
    assert_int_equal(
        kn_chat_list(chat, db, NULL, id, 101, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "limit must be 1-100");
    assert_int_equal(kn_chat_list(chat, db, NULL, id, 1, true, "ch1.x", &list, &n, &next, &prev,
                                  msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cursor is not valid");
}

static void update_and_remove_are_the_senders_of_stored_messages(void **state)
{
    (void)state;
    char u1[37], u2[37], id[160];
    user("ed-1", u1);
    user("ed-2", u2);
    kn_presence p1 = session(7, u1, "ed-1"), p2 = session(8, u2, "ed-2");
    assert_int_equal(join(&p1, "edits", KN_CHAT_ROOM, true, false, id), KN_OK);
    assert_int_equal(join(&p2, "edits", KN_CHAT_ROOM, true, false, NULL), KN_OK);
    kn_chat_message m, u;
    assert_int_equal(say(&p1, id, "{\"v\": 1}", &m), KN_OK);
    kn_chat_sender s1 = as(&p1), s2 = as(&p2), server = {0};
    assert_int_equal(kn_chat_update(chat, db, &s2, id, m.message_id, "{}", &u, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "only the sender may update a message");
    assert_int_equal(
        kn_chat_update(chat, db, &s1, id, m.message_id, "{\"v\": 2}", &u, msg, sizeof msg), KN_OK);
    assert_int_equal(u.code, KN_CHAT_CODE_UPDATE);
    assert_int_equal(u.sequence, m.sequence);
    assert_string_equal(last_content[8], "{\"v\": 2}");
    kn_chat_message_clear(&u);
    assert_int_equal(
        kn_chat_update(chat, db, &server, id, m.message_id, "{\"v\": 3}", &u, msg, sizeof msg),
        KN_OK);
    kn_chat_message_clear(&u);
    assert_int_equal(kn_chat_remove(chat, db, &s2, id, m.message_id, &u, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_chat_remove(chat, db, &s1, id, m.message_id, &u, msg, sizeof msg), KN_OK);
    assert_int_equal(u.code, KN_CHAT_CODE_REMOVE);
    assert_string_equal(u.content, "{}");
    kn_chat_message_clear(&u);
    assert_int_equal(kn_chat_remove(chat, db, &s1, id, m.message_id, &u, msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    assert_string_equal(msg, "message not found");
    /* a message of another channel is not found through this one */
    kn_chat_message other;
    assert_int_equal(
        kn_chat_send(chat, db, &server, "2...elsewhere", "{}", true, &other, msg, sizeof msg),
        KN_OK);
    assert_int_equal(
        kn_chat_update(chat, db, &server, id, other.message_id, "{}", &u, msg, sizeof msg),
        KN_ERR_NOT_FOUND);
    assert_int_equal(kn_chat_update(chat, db, &s1, id, "nope", "{}", &u, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "message id must be a UUID");
    kn_chat_message_clear(&other);
    kn_chat_message_clear(&m);
    kn_tracker_untrack_all(tracker, 7);
    kn_tracker_untrack_all(tracker, 8);
}

static void a_block_either_way_refuses_the_dm_and_the_other_is_asked_to_chat(void **state)
{
    (void)state;
    char u1[37], u2[37], u3[37], id[160];
    user("dm-1", u1);
    user("dm-2", u2);
    user("dm-3", u3);
    kn_presence p1 = session(9, u1, "dm-1"), p2 = session(10, u2, "dm-2"),
                p3 = session(11, u3, "dm-3");
    assert_int_equal(join(&p1, u2, KN_CHAT_DM, true, false, id), KN_OK);
    /* u2 was not on it: a stored DM request (-1) */
    kn_notification *notes;
    size_t n;
    char *cursor;
    assert_int_equal(kn_notify_list(db, u2, 0, NULL, &notes, &n, &cursor, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(notes[0].code, KN_NOTIFY_CODE_DM_REQUEST);
    assert_string_equal(notes[0].subject, "dm-1 wants to chat");
    assert_string_equal(notes[0].sender_id, u1);
    assert_non_null(strstr(notes[0].content, id));
    kn_notify_free(notes, n);
    kn_free(cursor);
    /* u2 joins: u1 is there, so no request */
    assert_int_equal(join(&p2, u1, KN_CHAT_DM, true, false, NULL), KN_OK);
    assert_int_equal(kn_notify_list(db, u1, 0, NULL, &notes, &n, &cursor, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 0);
    kn_free(cursor);
    /* only the two read its history */
    kn_chat_message *list;
    char *next, *prev;
    assert_int_equal(
        kn_chat_list(chat, db, u3, id, 0, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_ERR_PERMISSION_DENIED);
    assert_int_equal(
        kn_chat_list(chat, db, u2, id, 0, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_OK);
    kn_chat_messages_free(list, n);
    /* u3 blocks u1: refused both ways */
    pgtest_sql(db,
               "INSERT INTO user_edge (source_id, destination_id, state, position)"
               " VALUES ('%s', '%s', 3, 1)",
               u3, u1);
    assert_int_equal(join(&p1, u3, KN_CHAT_DM, false, false, NULL), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "direct messages between these users are blocked");
    assert_int_equal(join(&p3, u1, KN_CHAT_DM, false, false, NULL), KN_ERR_PERMISSION_DENIED);
    assert_int_equal(
        join(&p3, "c0000000-0000-4000-8000-ffffffffffff", KN_CHAT_DM, false, false, NULL),
        KN_ERR_NOT_FOUND);
    /* a block made while both are on their channel takes both off */
    kn_chat_channel dm;
    assert_int_equal(kn_chat_id_parse(id, &dm, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_tracker_count(tracker, &dm.stream), 2);
    kn_chat_block(chat, u2, u1);
    assert_int_equal(kn_tracker_count(tracker, &dm.stream), 0);
    kn_chat_block(chat, u2, "not a uuid"); /* nothing to do */
}

static void group_channels_are_for_members_and_admins_remove_any_message(void **state)
{
    (void)state;
    char u1[37], u2[37], u3[37], id[160];
    user("gr-1", u1);
    user("gr-2", u2);
    user("gr-3", u3);
    const char *group = "e0000000-0000-4000-8000-000000000001";
    snprintf(members[0], sizeof members[0], "%s", u1);
    snprintf(admins[0], sizeof admins[0], "%s", u2);
    kn_presence p1 = session(12, u1, "gr-1"), p2 = session(13, u2, "gr-2"),
                p3 = session(14, u3, "gr-3");
    assert_int_equal(join(&p3, group, KN_CHAT_GROUP, true, false, NULL), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "not a member of the group");
    assert_int_equal(join(&p1, group, KN_CHAT_GROUP, true, false, id), KN_OK);
    assert_string_equal(id, "3.e0000000-0000-4000-8000-000000000001..");
    assert_int_equal(join(&p2, group, KN_CHAT_GROUP, true, false, NULL), KN_OK);
    kn_chat_message m, r;
    assert_int_equal(say(&p1, id, "{\"g\": 1}", &m), KN_OK);
    assert_string_equal(m.group_id, group);
    kn_chat_message *list;
    size_t n;
    char *next, *prev;
    assert_int_equal(
        kn_chat_list(chat, db, u3, id, 0, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_ERR_PERMISSION_DENIED);
    kn_chat_sender s2 = as(&p2);
    assert_int_equal(kn_chat_remove(chat, db, &s2, id, m.message_id, &r, msg, sizeof msg), KN_OK);
    kn_chat_message_clear(&r);
    kn_chat_message_clear(&m);
    memset(members, 0, sizeof members);
    memset(admins, 0, sizeof admins);
    kn_tracker_untrack_all(tracker, 12);
    kn_tracker_untrack_all(tracker, 13);
}

static void group_events_are_stored_messages_and_a_kick_leaves_the_channel(void **state)
{
    (void)state;
    char u1[37], u2[37], id[160];
    user("ge-1", u1);
    user("ge-2", u2);
    const char *group = "e0000000-0000-4000-8000-000000000002";
    snprintf(members[0], sizeof members[0], "%s", u1);
    snprintf(members[1], sizeof members[1], "%s", u2);
    kn_presence p1 = session(17, u1, "ge-1"), p2 = session(18, u2, "ge-2");
    assert_int_equal(join(&p1, group, KN_CHAT_GROUP, false, false, id), KN_OK);
    assert_int_equal(join(&p2, group, KN_CHAT_GROUP, false, false, NULL), KN_OK);
    memset(messages, 0, sizeof messages);
    assert_int_equal(
        kn_chat_group_event(chat, db, group, u1, KN_CHAT_CODE_GROUP_PROMOTE, u2, msg, sizeof msg),
        KN_OK);
    assert_int_equal(messages[17], 1);
    assert_int_equal(
        kn_chat_group_event(chat, db, group, u1, KN_CHAT_CODE_GROUP_KICK, u2, msg, sizeof msg),
        KN_OK);
    assert_int_equal(messages[18], 2); /* told, then taken off */
    assert_int_equal(
        kn_tracker_count(tracker, &(kn_stream){.mode = KN_STREAM_GROUP,
                                               .subject = "e0000000-0000-4000-8000-000000000002"}),
        1);
    kn_chat_message *list;
    size_t n;
    char *next, *prev;
    assert_int_equal(
        kn_chat_list(chat, db, u1, id, 0, true, NULL, &list, &n, &next, &prev, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].code, KN_CHAT_CODE_GROUP_PROMOTE);
    assert_int_equal(list[1].code, KN_CHAT_CODE_GROUP_KICK);
    assert_string_equal(list[1].sender_id, u2);
    assert_string_equal(list[1].username, "ge-2");
    assert_non_null(strstr(list[1].content, u1));
    kn_chat_messages_free(list, n);
    assert_int_equal(
        kn_chat_group_event(chat, db, group, NULL, KN_CHAT_CODE_CHAT, u2, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    memset(members, 0, sizeof members);
    kn_tracker_untrack_all(tracker, 17);
}

static void a_session_is_on_at_most_fifty_rooms(void **state)
{
    (void)state;
    char u1[37];
    user("many", u1);
    kn_presence p = session(15, u1, "many");
    for (int i = 0; i < KN_CHAT_CHANNELS_MAX; i++) {
        char room[16];
        snprintf(room, sizeof room, "many-%d", i);
        assert_int_equal(join(&p, room, KN_CHAT_ROOM, false, false, NULL), KN_OK);
    }
    assert_int_equal(join(&p, "one-too-many", KN_CHAT_ROOM, false, false, NULL),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "room limit per session reached (50)");
    kn_tracker_untrack_all(tracker, 15);
}

static void the_rate_limit_refuses_past_the_burst_until_forgotten(void **state)
{
    (void)state;
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {send_many, NULL};
    kn_tracker *t;
    kn_chat *c;
    assert_int_equal(kn_tracker_create(&tc, &sink, &t), KN_OK);
    kn_chat_config cc;
    kn_chat_config_default(&cc);
    cc.rate_per_sec = 0.001;
    cc.burst = 3;
    assert_int_equal(kn_chat_create(&cc, t, NULL, &c), KN_OK);
    char u1[37];
    user("fast", u1);
    kn_presence p = session(16, u1, "fast");
    kn_chat_joined j;
    assert_int_equal(
        kn_chat_join(c, db, &p, "fast", KN_CHAT_ROOM, false, false, &j, msg, sizeof msg), KN_OK);
    kn_free(j.others);
    kn_chat_sender from = as(&p);
    kn_chat_message m;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kn_chat_send(c, db, &from, j.channel.id, "{}", false, &m, msg, sizeof msg),
                         KN_OK);
        kn_chat_message_clear(&m);
    }
    assert_int_equal(kn_chat_send(c, db, &from, j.channel.id, "{}", false, &m, msg, sizeof msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "too many chat messages: at most 0.001 per second");
    kn_chat_forget(c, 16);
    assert_int_equal(kn_chat_send(c, db, &from, j.channel.id, "{}", false, &m, msg, sizeof msg),
                     KN_OK);
    kn_chat_message_clear(&m);
    kn_chat_destroy(c); /* a bucket still held is freed with the service */
    kn_tracker_destroy(t);
}

static void content_must_be_a_json_object_within_the_limit(void **state)
{
    (void)state;
    kn_chat_sender server = {0};
    kn_chat_message m;
    const char *bad[] = {"[]", "\"x\"", "1", "{", "", "{\"a\":1}x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            kn_chat_send(chat, db, &server, "2...c", bad[i], false, &m, msg, sizeof msg),
            KN_ERR_INVALID_ARGUMENT);
        assert_string_equal(msg, "content must be a JSON object");
    }
    assert_int_equal(kn_chat_send(chat, db, &server, "2...c", NULL, false, &m, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    static char big[KN_CHAT_CONTENT_MAX + 2];
    memset(big, ' ', sizeof big - 1);
    big[0] = '{';
    big[sizeof big - 2] = '}';
    assert_int_equal(kn_chat_send(chat, db, &server, "2...c", big, false, &m, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "content is 4097 bytes; the limit is 4096");
    big[sizeof big - 3] = '}';
    big[sizeof big - 2] = '\0';
    assert_int_equal(kn_chat_send(chat, db, &server, "2...c", big, false, &m, msg, sizeof msg),
                     KN_OK);
    kn_chat_message_clear(&m);
}

static void cursors_are_checked_without_a_database(void **state)
{
    (void)state;
    const char *good[] = {"ch1.0", "ch1.42", "ch1.9223372036854775807"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(kn_chat_cursor_check(good[i], msg, sizeof msg), KN_OK);
    const char *bad[] = {"",
                         "ch1.",
                         "ch1.-1",
                         "ch1.+1",
                         "ch2.1",
                         "ch1.1 ",
                         "ch1.0x10",
                         "ch1.9223372036854775808",
                         "ch1.99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kn_chat_cursor_check(bad[i], msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_chat_cursor_check(NULL, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
}

static int create_once(void *arg)
{
    (void)arg;
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {send_many, NULL};
    kn_tracker *t;
    kn_chat *c;
    int rc = kn_tracker_create(&tc, &sink, &t);
    if (rc) return rc;
    kn_chat_config cc;
    kn_chat_config_default(&cc);
    rc = kn_chat_create(&cc, t, NULL, &c);
    if (rc == KN_OK) {
        kn_chat_forget(c, 1);
        kn_chat_destroy(c);
    }
    kn_tracker_destroy(t);
    return rc;
}

static void create_survives_every_allocation_failure(void **state)
{
    (void)state;
    assert_true(failalloc_sweep(create_once, NULL) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(channel_ids_are_canonical_and_a_dm_has_one_id),
        cmocka_unit_test(joins_and_leaves_tell_the_others_but_hidden_sessions_tell_nobody),
        cmocka_unit_test(messages_are_stored_per_the_join_and_sequenced),
        cmocka_unit_test(history_pages_forward_and_backward),
        cmocka_unit_test(update_and_remove_are_the_senders_of_stored_messages),
        cmocka_unit_test(a_block_either_way_refuses_the_dm_and_the_other_is_asked_to_chat),
        cmocka_unit_test(group_channels_are_for_members_and_admins_remove_any_message),
        cmocka_unit_test(group_events_are_stored_messages_and_a_kick_leaves_the_channel),
        cmocka_unit_test(a_session_is_on_at_most_fifty_rooms),
        cmocka_unit_test(the_rate_limit_refuses_past_the_burst_until_forgotten),
        cmocka_unit_test(content_must_be_a_json_object_within_the_limit),
        cmocka_unit_test(cursors_are_checked_without_a_database),
        cmocka_unit_test(create_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
