/* End to end: chat over real UDP with SDK clients against Postgres — room
 * join and leave with presence events (hidden sessions make none), fan-out
 * of a message to everyone on the room, direct messages (the same id on
 * both sides, refused after a block, a DM request notification), update and
 * remove rules, group channels (members only, the group's events as
 * messages, an admin removing, a kicked member taken off), history paging
 * both ways while others post, the profanity
 * filter of lua-examples/chat_filter.lua rewriting and refusing, the rate
 * limit (an error, not a disconnect), refusals with their codes, the
 * kaos.channel_* functions through an RPC (tests/e2e/lua/chat_test.lua), and
 * stored messages surviving a server restart (last: it restarts the
 * group's server).
 *
 * The runtime path is a directory of links to the .lua files of
 * lua-examples/ and tests/e2e/lua/. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char rt_dir[64];

static void start_server(void)
{
    const char *extra[] = {"--runtime-path", rt_dir, NULL};
    e2e_server_start(&e2e_group_server, extra);
}

static int setup(void **state)
{
    (void)state;
    const char *dirs[] = {KAOS_SOURCE_DIR "/lua-examples", KAOS_SOURCE_DIR "/tests/e2e/lua", NULL};
    e2e_runtime_dir(rt_dir, sizeof rt_dir, dirs);
    e2e_server_init(&e2e_group_server);
    start_server();
    return 0;
}

static int teardown(void **state)
{
    int rc = e2e_group_teardown(state);
    e2e_runtime_dir_remove(rt_dir);
    return rc;
}

/* --- a chat client: an e2e client and what its chat answers and events were --------- */

#define MAX_SEEN 128

typedef struct seen_msg {
    char channel_id[160], message_id[40], sender_id[40], content[512];
    int code;
    int64_t sequence;
    bool persistent;
} seen_msg;

typedef struct chatter {
    e2e_client *e;
    int answers, errors, error_code;
    char error_message[256];
    /* last join */
    char channel_id[160];
    size_t others;
    char self_user[40];
    /* last ack */
    seen_msg ack;
    /* last history page */
    size_t listed;
    seen_msg page[100];
    char next[64], prev[64];
    /* events */
    size_t n_got;
    seen_msg got[MAX_SEEN];
    int joins, leaves;
    char last_join[40], last_leave[40];
    int notes, dm_requests;
} chatter;

static void copy_msg(seen_msg *s, const kaos_channel_message *m)
{
    snprintf(s->channel_id, sizeof s->channel_id, "%s", m->channel_id);
    snprintf(s->message_id, sizeof s->message_id, "%s", m->message_id);
    snprintf(s->sender_id, sizeof s->sender_id, "%s", m->sender_id);
    snprintf(s->content, sizeof s->content, "%s", m->content);
    s->code = m->code;
    s->sequence = m->sequence;
    s->persistent = m->persistent;
}

static bool failed(chatter *ch, const kaos_result *r)
{
    if (r->code == KAOS_OK) return false;
    ch->error_code = r->code;
    snprintf(ch->error_message, sizeof ch->error_message, "%s", r->message);
    ch->errors++;
    return true;
}

static void on_channel(kaos_client *k, const kaos_result *r, const kaos_channel *c, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (failed(ch, r)) return;
    snprintf(ch->channel_id, sizeof ch->channel_id, "%s", c->id);
    snprintf(ch->self_user, sizeof ch->self_user, "%s", c->self.user_id);
    ch->others = c->presence_count;
    ch->answers++;
}

static void on_ack(kaos_client *k, const kaos_result *r, const kaos_channel_message *m, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (failed(ch, r)) return;
    copy_msg(&ch->ack, m);
    ch->answers++;
}

static void on_done(kaos_client *k, const kaos_result *r, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (!failed(ch, r)) ch->answers++;
}

static void on_page(kaos_client *k, const kaos_result *r, const kaos_channel_message *m, size_t n,
                    const char *next, const char *prev, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (failed(ch, r)) return;
    ch->listed = n;
    for (size_t i = 0; i < n && i < 100; i++)
        copy_msg(&ch->page[i], &m[i]);
    snprintf(ch->next, sizeof ch->next, "%s", next);
    snprintf(ch->prev, sizeof ch->prev, "%s", prev);
    ch->answers++;
}

static void on_message(kaos_client *k, const kaos_channel_message *m, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (ch->n_got < MAX_SEEN) copy_msg(&ch->got[ch->n_got++], m);
}

static void on_presence(kaos_client *k, const char *channel_id, const kaos_user_presence *joins,
                        size_t n_joins, const kaos_user_presence *leaves, size_t n_leaves, void *ud)
{
    (void)k, (void)channel_id;
    chatter *ch = ud;
    for (size_t i = 0; i < n_joins; i++) {
        ch->joins++;
        snprintf(ch->last_join, sizeof ch->last_join, "%s", joins[i].user_id);
    }
    for (size_t i = 0; i < n_leaves; i++) {
        ch->leaves++;
        snprintf(ch->last_leave, sizeof ch->last_leave, "%s", leaves[i].user_id);
    }
}

static void on_notes(kaos_client *k, const kaos_notification *notes, size_t n, void *ud)
{
    (void)k;
    chatter *ch = ud;
    for (size_t i = 0; i < n; i++) {
        ch->notes++;
        if (notes[i].code == -1) ch->dm_requests++;
    }
}

static chatter *chatter_new(void)
{
    chatter *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    ch->e = e2e_player(e2e_group_server.port, 0);
    kaos_client_on_channel_message(ch->e->c, on_message, ch);
    kaos_client_on_channel_presence(ch->e->c, on_presence, ch);
    kaos_client_on_notifications(ch->e->c, on_notes, ch);
    return ch;
}

static void chatter_free(chatter *ch)
{
    e2e_client_free(ch->e);
    free(ch);
}

/* Waits for the answer to `cid` (counters taken before the call): 0, or
 * the KAOS_ERR_* it failed with (a local refusal too). */
static int answer_after(chatter *ch, int answers, int errors, int cid)
{
    if (cid < 0) return cid;
    E2E_WAIT(ch->answers > answers || ch->errors > errors, 15000);
    return ch->answers > answers ? 0 : ch->error_code;
}

static int join(chatter *ch, const char *target, int type, bool persist, bool hidden)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(
        ch, a, e,
        kaos_client_channel_join(ch->e->c, target, type, persist, hidden, on_channel, ch));
}

static int leave(chatter *ch, const char *channel_id)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(ch, a, e, kaos_client_channel_leave(ch->e->c, channel_id, on_done, ch));
}

static int say(chatter *ch, const char *channel_id, const char *content)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(
        ch, a, e, kaos_client_channel_message_send(ch->e->c, channel_id, content, on_ack, ch));
}

static int edit(chatter *ch, const char *channel_id, const char *id, const char *content)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(
        ch, a, e,
        kaos_client_channel_message_update(ch->e->c, channel_id, id, content, on_ack, ch));
}

static int unsay(chatter *ch, const char *channel_id, const char *id)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(ch, a, e,
                        kaos_client_channel_message_remove(ch->e->c, channel_id, id, on_ack, ch));
}

static int history(chatter *ch, const char *channel_id, uint32_t limit, bool forward,
                   const char *cursor)
{
    int a = ch->answers, e = ch->errors;
    return answer_after(ch, a, e,
                        kaos_client_channel_messages_list(ch->e->c, channel_id, limit, forward,
                                                          cursor, on_page, ch));
}

/* Whether ch received a message whose content contains `text`. */
static bool got(const chatter *ch, const char *text)
{
    for (size_t i = 0; i < ch->n_got; i++)
        if (strstr(ch->got[i].content, text)) return true;
    return false;
}

static void room_name(char out[40], const char *prefix)
{
    char dev[40];
    e2e_device_id(dev);
    snprintf(out, 40, "%s-%.16s", prefix, dev + 4);
}

/* --- tests --------------------------------------------------------------------------- */

static void room_join_and_leave_tell_the_others_and_a_message_reaches_everyone(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "lobby");
    chatter *a = chatter_new(), *b = chatter_new(), *c = chatter_new(), *h = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, false, false), 0);
    char expect[64];
    snprintf(expect, sizeof expect, "2...%s", room);
    assert_string_equal(a->channel_id, expect);
    assert_int_equal(a->others, 0);
    assert_string_equal(a->self_user, a->e->user_id);
    assert_int_equal(join(b, room, KAOS_CHANNEL_ROOM, false, false), 0);
    assert_int_equal(b->others, 1);
    E2E_WAIT(a->joins == 1, 5000);
    assert_string_equal(a->last_join, b->e->user_id);
    assert_int_equal(join(c, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(c->others, 2);
    E2E_WAIT(a->joins == 2 && b->joins == 1, 5000);
    /* a hidden session is told nothing of and tells nothing */
    assert_int_equal(join(h, room, KAOS_CHANNEL_ROOM, false, true), 0);
    assert_int_equal(h->others, 3);
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"hello all\"}"), 0);
    assert_false(a->ack.persistent);
    assert_int_equal(a->ack.sequence, 0);
    assert_string_equal(a->ack.sender_id, a->e->user_id);
    /* everyone on the room gets it, the sender and the hidden session too */
    E2E_WAIT(got(a, "hello all") && got(b, "hello all") && got(c, "hello all") &&
                 got(h, "hello all"),
             5000);
    assert_int_equal(a->joins, 2);
    /* c leaves: a and b see it */
    assert_int_equal(leave(c, c->channel_id), 0);
    E2E_WAIT(a->leaves == 1 && b->leaves == 1, 5000);
    assert_string_equal(a->last_leave, c->e->user_id);
    assert_int_equal(leave(c, c->channel_id), KAOS_ERR_NOT_FOUND);
    assert_string_equal(c->error_message, "not on the channel");
    /* a disconnect is a leave too */
    chatter_free(b);
    E2E_WAIT(a->leaves == 2, 5000);
    assert_int_equal(say(c, a->channel_id, "{}"), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(c->error_message, "join the channel before sending");
    chatter_free(a);
    chatter_free(c);
    chatter_free(h);
}

static void direct_messages_share_one_id_and_are_refused_after_a_block(void **state)
{
    (void)state;
    chatter *a = chatter_new(), *b = chatter_new();
    assert_int_equal(join(a, b->e->user_id, KAOS_CHANNEL_DM, true, false), 0);
    /* b was not on it: b gets the DM request notification (-1) */
    E2E_WAIT(b->dm_requests == 1, 5000);
    assert_int_equal(join(b, a->e->user_id, KAOS_CHANNEL_DM, true, false), 0);
    assert_string_equal(a->channel_id, b->channel_id);
    assert_int_equal(b->others, 1);
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"psst\"}"), 0);
    assert_true(a->ack.persistent);
    assert_true(a->ack.sequence > 0);
    E2E_WAIT(got(b, "psst"), 5000);
    /* only the two may read it */
    chatter *c = chatter_new();
    assert_int_equal(history(c, a->channel_id, 10, true, NULL), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(c->error_message, "only its two users may read a direct message channel");
    assert_int_equal(history(b, a->channel_id, 10, true, NULL), 0);
    assert_int_equal(b->listed, 1);
    /* b blocks a: both are taken off the channel and may not come back */
    const char *a_id[] = {a->e->user_id};
    int acks = b->e->acks;
    assert_true(kaos_client_friends_block(b->e->c, a_id, 1, NULL, 0, e2e_on_done, b->e) > 0);
    E2E_WAIT(b->e->acks > acks, 5000);
    assert_int_equal(say(a, a->channel_id, "{}"), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(a->error_message, "join the channel before sending");
    assert_int_equal(say(b, a->channel_id, "{}"), KAOS_ERR_PERMISSION_DENIED);
    assert_int_equal(join(a, b->e->user_id, KAOS_CHANNEL_DM, true, false),
                     KAOS_ERR_PERMISSION_DENIED);
    /* a DM with yourself, or with nobody */
    assert_int_equal(join(c, c->e->user_id, KAOS_CHANNEL_DM, false, false),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(c->error_message, "a direct message channel needs another user");
    assert_int_equal(join(c, "00000000-0000-0000-0000-00000000abcd", KAOS_CHANNEL_DM, false, false),
                     KAOS_ERR_NOT_FOUND);
    /* c blocks a: neither may open a DM with the other */
    const char *ids[] = {a->e->user_id};
    assert_true(kaos_client_friends_block(c->e->c, ids, 1, NULL, 0, e2e_on_done, c->e) > 0);
    E2E_WAIT(c->e->acks == 1, 5000);
    assert_int_equal(join(c, a->e->user_id, KAOS_CHANNEL_DM, false, false),
                     KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(c->error_message, "direct messages between these users are blocked");
    assert_int_equal(join(a, c->e->user_id, KAOS_CHANNEL_DM, false, false),
                     KAOS_ERR_PERMISSION_DENIED);
    chatter_free(a);
    chatter_free(b);
    chatter_free(c);
}

static void only_the_sender_updates_or_removes_a_stored_message(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "edits");
    chatter *a = chatter_new(), *b = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(join(b, room, KAOS_CHANNEL_ROOM, false, false), 0);
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"first\"}"), 0);
    char id[40];
    snprintf(id, sizeof id, "%s", a->ack.message_id);
    int64_t seq = a->ack.sequence;
    assert_int_equal(edit(b, a->channel_id, id, "{\"text\":\"hijack\"}"),
                     KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->error_message, "only the sender may update a message");
    assert_int_equal(edit(a, a->channel_id, id, "{\"text\":\"second\"}"), 0);
    assert_int_equal(a->ack.code, KAOS_CHANNEL_MESSAGE_UPDATE);
    assert_int_equal(a->ack.sequence, seq);
    E2E_WAIT(got(b, "second"), 5000);
    assert_int_equal(unsay(b, a->channel_id, id), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->error_message, "only the sender may remove a message");
    /* b's messages are not stored: nothing to update */
    assert_int_equal(say(b, b->channel_id, "{\"text\":\"ephemeral\"}"), 0);
    assert_false(b->ack.persistent);
    assert_int_equal(edit(b, b->channel_id, b->ack.message_id, "{}"), KAOS_ERR_NOT_FOUND);
    assert_string_equal(b->error_message, "message not found");
    assert_int_equal(unsay(a, a->channel_id, id), 0);
    assert_int_equal(a->ack.code, KAOS_CHANNEL_MESSAGE_REMOVE);
    assert_string_equal(a->ack.content, "{}");
    E2E_WAIT(b->n_got >= 3 && b->got[b->n_got - 1].code == KAOS_CHANNEL_MESSAGE_REMOVE, 5000);
    assert_int_equal(history(b, a->channel_id, 10, true, NULL), 0);
    assert_int_equal(b->listed, 0);
    assert_int_equal(unsay(a, a->channel_id, id), KAOS_ERR_NOT_FOUND);
    chatter_free(a);
    chatter_free(b);
}

static void history_pages_both_ways_while_others_post(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "history");
    chatter *a = chatter_new(), *b = chatter_new(), *r = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(join(b, room, KAOS_CHANNEL_ROOM, true, false), 0);
    char text[64];
    for (int i = 1; i <= 7; i++) {
        snprintf(text, sizeof text, "{\"n\":%d}", i);
        assert_int_equal(say(i % 2 ? a : b, a->channel_id, text), 0);
    }
    /* backward from the newest, 3 a page, while b keeps posting */
    int64_t seen[32];
    size_t n_seen = 0;
    char cursor[64] = "";
    for (int page = 0; page < 4; page++) {
        assert_int_equal(history(r, a->channel_id, 3, false, *cursor ? cursor : NULL), 0);
        for (size_t i = 0; i < r->listed; i++)
            seen[n_seen++] = r->page[i].sequence;
        snprintf(text, sizeof text, "{\"late\":%d}", page);
        assert_int_equal(say(b, a->channel_id, text), 0);
        snprintf(cursor, sizeof cursor, "%s", r->next);
        if (!*cursor) break;
    }
    /* exactly the seven that were there, newest first, none twice */
    assert_int_equal(n_seen, 7);
    for (size_t i = 0; i < n_seen; i++)
        assert_int_equal(seen[i], (int64_t)(7 - i));
    /* forward from the oldest: everything, in order, the late ones included */
    n_seen = 0;
    *cursor = '\0';
    for (int page = 0; page < 10; page++) {
        assert_int_equal(history(r, a->channel_id, 4, true, *cursor ? cursor : NULL), 0);
        for (size_t i = 0; i < r->listed; i++)
            seen[n_seen++] = r->page[i].sequence;
        if (page == 0) {
            assert_int_equal(say(a, a->channel_id, "{\"later\":true}"), 0);
            assert_string_equal(r->prev, "");
        }
        snprintf(cursor, sizeof cursor, "%s", r->next);
        if (!*cursor) break;
    }
    assert_int_equal(n_seen, 11);
    for (size_t i = 0; i < n_seen; i++)
        assert_int_equal(seen[i], (int64_t)(i + 1));
    /* prev goes back the other way from a page's first message */
    assert_int_equal(history(r, a->channel_id, 2, true, "ch1.4"), 0);
    assert_int_equal(r->page[0].sequence, 5);
    snprintf(cursor, sizeof cursor, "%s", r->prev);
    assert_int_equal(history(r, a->channel_id, 10, false, cursor), 0);
    assert_int_equal(r->listed, 4);
    assert_int_equal(r->page[0].sequence, 4);
    /* bad input */
    assert_int_equal(history(r, a->channel_id, 101, true, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(r->error_message, "limit must be 1-100");
    assert_int_equal(history(r, a->channel_id, 10, true, "nope"), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(r->error_message, "cursor is not valid");
    chatter_free(a);
    chatter_free(b);
    chatter_free(r);
}

static void the_profanity_filter_rewrites_and_refuses(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "filter");
    chatter *a = chatter_new(), *b = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(join(b, room, KAOS_CHANNEL_ROOM, false, false), 0);
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"oh Darn it\"}"), 0);
    assert_non_null(strstr(a->ack.content, "oh **** it"));
    E2E_WAIT(got(b, "oh **** it"), 5000);
    assert_false(got(b, "Darn"));
    assert_int_equal(history(b, a->channel_id, 10, false, NULL), 0);
    assert_non_null(strstr(b->page[0].content, "oh **** it"));
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"see http://spam.example\"}"),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "links are not allowed in chat");
    e2e_pump_for(200);
    assert_false(got(b, "spam"));
    /* updates go through it too */
    assert_int_equal(history(a, a->channel_id, 1, false, NULL), 0);
    assert_int_equal(edit(a, a->channel_id, a->page[0].message_id, "{\"text\":\"what the heck\"}"),
                     0);
    assert_non_null(strstr(a->ack.content, "what the ****"));
    chatter_free(a);
    chatter_free(b);
}

static void a_fast_sender_is_refused_not_disconnected(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "flood");
    chatter *a = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, false, false), 0);
    int sent = 0, answers = a->answers, errors = a->errors;
    for (int i = 0; i < 40; i++)
        if (kaos_client_channel_message_send(a->e->c, a->channel_id, "{}", on_ack, a) > 0) sent++;
    assert_int_equal(sent, 40);
    E2E_WAIT(a->answers + a->errors == answers + errors + 40, 15000);
    assert_true(a->errors > errors);
    assert_int_equal(a->error_code, KAOS_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(a->error_message, "too many chat messages: at most 10 per second");
    assert_true(a->answers - answers >= 20);
    /* still connected: after a pause, messages go through again */
    e2e_pump_for(1200);
    assert_true(kaos_client_is_connected(a->e->c));
    assert_int_equal(say(a, a->channel_id, "{\"again\":1}"), 0);
    chatter_free(a);
}

static void refusals_carry_their_codes(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "errors");
    chatter *a = chatter_new();
    assert_int_equal(join(a, "", KAOS_CHANNEL_ROOM, false, false), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message,
                        "room name must be 1-64 bytes of UTF-8 without control characters");
    assert_int_equal(join(a, "not-a-uuid", KAOS_CHANNEL_DM, false, false),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "user id must be a UUID");
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, false, false), 0);
    assert_int_equal(say(a, a->channel_id, "[1,2]"), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "content must be a JSON object");
    assert_int_equal(say(a, a->channel_id, "{\"a\":"), KAOS_ERR_INVALID_ARGUMENT);
    static char big[4200];
    memset(big, 'x', sizeof big - 1);
    memcpy(big, "{\"t\":\"", 6);
    memcpy(big + sizeof big - 3, "\"}", 2);
    assert_int_equal(say(a, a->channel_id, big), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "content is 4199 bytes; the limit is 4096");
    assert_int_equal(say(a, "9.x.y.z", "{}"), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "channel id is not valid");
    assert_int_equal(edit(a, a->channel_id, "nope", "{}"), KAOS_ERR_INVALID_ARGUMENT);
    assert_string_equal(a->error_message, "message id must be a UUID");
    assert_int_equal(kaos_client_channel_join(a->e->c, room, 7, false, false, on_channel, a),
                     KAOS_ERR_INVALID_ARGUMENT);
    chatter_free(a);
}

static void lua_functions_send_list_update_and_remove(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "lua");
    chatter *a = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, false, false), 0);
    e2e_client *e = a->e;
    int before = e->rpcs;
    assert_true(kaos_client_rpc_call(e->c, "chat_lua", room, e2e_on_rpc, e) > 0);
    E2E_WAIT(e->rpcs > before || e->errors, 10000);
    assert_int_equal(e->errors, 0);
    const char *expect[] = {"\"dm\":true",
                            "\"list\":2",
                            "\"list_cursor\":true",
                            "\"remove\":2",
                            "\"send\":true",
                            "\"update\":1",
                            "\"bad_type\":\"3 channel type must be 1 (room), 2 (direct message) "
                            "or 3 (group)\""};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(e->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], e->rpc_payload);
    /* the server's message reached the session on the room */
    E2E_WAIT(got(a, "from the server"), 5000);
    chatter_free(a);
}

static char made_group[40];

static void on_group(kaos_client *k, const kaos_result *r, const kaos_group *g, void *ud)
{
    (void)k;
    chatter *ch = ud;
    if (failed(ch, r)) return;
    snprintf(made_group, sizeof made_group, "%s", g->id);
    ch->answers++;
}

/* The last message ch received has this code (and ch got it). */
static bool got_code(const chatter *ch, int code)
{
    return ch->n_got && ch->got[ch->n_got - 1].code == code;
}

static void group_channels_are_for_members_and_carry_the_groups_events(void **state)
{
    (void)state;
    chatter *a = chatter_new(), *b = chatter_new();
    char name[40];
    room_name(name, "clan");
    kaos_group_spec spec = {.name = name, .open = 1};
    int n0 = a->answers, e0 = a->errors;
    assert_int_equal(answer_after(a, n0, e0, kaos_client_group_create(a->e->c, &spec, on_group, a)),
                     0);
    char gid[40];
    snprintf(gid, sizeof gid, "%s", made_group);
    assert_int_equal(join(b, gid, KAOS_CHANNEL_GROUP, true, false), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->error_message, "not a member of the group");
    assert_int_equal(join(a, gid, KAOS_CHANNEL_GROUP, true, false), 0);
    char channel[160];
    snprintf(channel, sizeof channel, "3.%s..", gid);
    assert_string_equal(a->channel_id, channel);
    /* b joins the group: a sees it in the channel */
    n0 = b->answers, e0 = b->errors;
    assert_int_equal(answer_after(b, n0, e0, kaos_client_group_join(b->e->c, gid, on_done, b)), 0);
    E2E_WAIT(got_code(a, 3), 5000);
    assert_string_equal(a->got[a->n_got - 1].sender_id, b->e->user_id);
    assert_true(a->got[a->n_got - 1].persistent);
    assert_int_equal(join(b, gid, KAOS_CHANNEL_GROUP, true, false), 0);
    assert_int_equal(say(b, channel, "{\"text\":\"hi from b\"}"), 0);
    E2E_WAIT(got(a, "hi from b"), 5000);
    /* promoted, b removes a's message as an admin; demoted, b may not */
    const char *ids[] = {b->e->user_id};
    n0 = a->answers, e0 = a->errors;
    assert_int_equal(
        answer_after(a, n0, e0, kaos_client_group_users_promote(a->e->c, gid, ids, 1, on_done, a)),
        0);
    E2E_WAIT(got_code(b, 7), 5000);
    assert_int_equal(say(a, channel, "{\"text\":\"first from a\"}"), 0);
    assert_int_equal(unsay(b, channel, a->ack.message_id), 0);
    n0 = a->answers, e0 = a->errors;
    assert_int_equal(
        answer_after(a, n0, e0, kaos_client_group_users_demote(a->e->c, gid, ids, 1, on_done, a)),
        0);
    E2E_WAIT(got_code(b, 9), 5000);
    assert_int_equal(say(a, channel, "{\"text\":\"second from a\"}"), 0);
    assert_int_equal(unsay(b, channel, a->ack.message_id), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->error_message, "only the sender may remove a message");
    /* kicked: b is told, then off the channel */
    n0 = a->answers, e0 = a->errors;
    assert_int_equal(
        answer_after(a, n0, e0, kaos_client_group_users_kick(a->e->c, gid, ids, 1, on_done, a)), 0);
    E2E_WAIT(got_code(b, 6), 5000);
    E2E_WAIT(a->leaves >= 1, 5000);
    assert_int_equal(say(b, channel, "{}"), KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->error_message, "join the channel before sending");
    assert_int_equal(history(b, channel, 10, true, NULL), KAOS_ERR_PERMISSION_DENIED);
    /* the history holds the events between the messages */
    assert_int_equal(history(a, channel, 10, true, NULL), 0);
    int codes[] = {3, 0, 7, 9, 0, 6};
    assert_int_equal(a->listed, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(a->page[i].code, codes[i]);
    chatter_free(a);
    chatter_free(b);
}

/* A join's answer lists at most 64 others, so a big room's still fits one
 * message (a server of its own: 66 connections from one address). */
static void a_join_to_a_big_room_lists_64_others_and_fits(void **state)
{
    (void)state;
    e2e_server big;
    e2e_server_init(&big);
    const char *extra[] = {"--max-connections-per-address", "0", NULL};
    e2e_server_start(&big, extra);
    enum { MEMBERS = 66 };
    chatter *m[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        m[i] = calloc(1, sizeof *m[i]);
        assert_non_null(m[i]);
        m[i]->e = e2e_client_new(big.port, 0, 0);
        /* long usernames: the answer's worst case */
        char name[129], dev[40];
        memset(name, 'n', 120);
        snprintf(name + 120, 9, "%08d", i);
        e2e_device_id(dev);
        e2e_client *e = m[i]->e;
        assert_true(kaos_client_auth_device(e->c, dev, name, true, NULL, e2e_on_session, e) > 0);
        E2E_WAIT(e->sessions == 1 || e->errors, 10000);
        assert_int_equal(e->errors, 0);
        assert_int_equal(join(m[i], "crowd", KAOS_CHANNEL_ROOM, false, false), 0);
    }
    assert_int_equal(m[MEMBERS - 1]->others, 64);
    assert_int_equal(m[10]->others, 10);
    for (int i = 0; i < MEMBERS; i++)
        chatter_free(m[i]);
    assert_int_equal(e2e_server_stop(&big), 0);
    e2e_server_cleanup(&big);
}

/* Runs last: it restarts the group's server. */
static void stored_messages_survive_a_restart(void **state)
{
    (void)state;
    char room[40];
    room_name(room, "restart");
    chatter *a = chatter_new();
    assert_int_equal(join(a, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(say(a, a->channel_id, "{\"text\":\"before\"}"), 0);
    char channel[160];
    snprintf(channel, sizeof channel, "%s", a->channel_id);
    chatter_free(a);
    assert_int_equal(e2e_server_stop(&e2e_group_server), 0);
    start_server();
    chatter *b = chatter_new();
    assert_int_equal(history(b, channel, 10, true, NULL), 0);
    assert_int_equal(b->listed, 1);
    assert_non_null(strstr(b->page[0].content, "before"));
    assert_int_equal(b->page[0].sequence, 1);
    /* the sequence continues where it was */
    assert_int_equal(join(b, room, KAOS_CHANNEL_ROOM, true, false), 0);
    assert_int_equal(say(b, channel, "{\"text\":\"after\"}"), 0);
    assert_int_equal(b->ack.sequence, 2);
    chatter_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(room_join_and_leave_tell_the_others_and_a_message_reaches_everyone),
        cmocka_unit_test(direct_messages_share_one_id_and_are_refused_after_a_block),
        cmocka_unit_test(only_the_sender_updates_or_removes_a_stored_message),
        cmocka_unit_test(history_pages_both_ways_while_others_post),
        cmocka_unit_test(the_profanity_filter_rewrites_and_refuses),
        cmocka_unit_test(a_fast_sender_is_refused_not_disconnected),
        cmocka_unit_test(refusals_carry_their_codes),
        cmocka_unit_test(lua_functions_send_list_update_and_remove),
        cmocka_unit_test(group_channels_are_for_members_and_carry_the_groups_events),
        cmocka_unit_test(a_join_to_a_big_room_lists_64_others_and_fits),
        cmocka_unit_test(stored_messages_survive_a_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
