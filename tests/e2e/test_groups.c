/* End to end: the groups service over real UDP with SDK clients — a join
 * request to a closed group reaches its admin live as a -5 notification,
 * the admin accepts and the requester gets -4 live; a kick and a ban (-8
 * live, then the banned join refused); lists with their cursors; refusals
 * by rank with their codes and messages; a before hook on GroupCreate; and
 * the kaos.group* functions through an RPC (tests/e2e/lua/groups_test.lua);
 * an admin offline at a join request lists the -5 after logging in; eight
 * clients joining a group with room for three at once.
 * Nothing assumes one network thread: CI runs this file again with
 * KAOS_NET_THREADS=2, where the requester's and the admin's connections
 * may sit on different ones. */
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

static int setup(void **state)
{
    (void)state;
    const char *dirs[] = {KAOS_SOURCE_DIR "/tests/e2e/lua", NULL};
    e2e_runtime_dir(rt_dir, sizeof rt_dir, dirs);
    e2e_server_init(&e2e_group_server);
    const char *extra[] = {"--runtime-path", rt_dir, NULL};
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

static int teardown(void **state)
{
    int rc = e2e_group_teardown(state);
    e2e_runtime_dir_remove(rt_dir);
    return rc;
}

/* A player and what it saw of groups: answers, the last page, pushes. */
typedef struct member {
    e2e_client *e;
    int answers;
    char group_id[40];
    int edge_count;
    size_t count;
    char ids[8][40];
    int states[8];
    char cursor[256];
    int mark_answers, mark_acks, mark_errors;
    int pushes;
    int push_codes[8];
    char push_senders[8][40], push_contents[8][96];
} member;

static void on_push(kaos_client *k, const kaos_notification *n, size_t count, void *ud)
{
    (void)k;
    member *m = ud;
    for (size_t i = 0; i < count; i++, m->pushes++) {
        if (m->pushes >= 8) continue;
        m->push_codes[m->pushes] = n[i].code;
        snprintf(m->push_senders[m->pushes], sizeof m->push_senders[0], "%s", n[i].sender_id);
        snprintf(m->push_contents[m->pushes], sizeof m->push_contents[0], "%s", n[i].content);
    }
}

static member *join_server(void)
{
    member *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->e = e2e_player(e2e_group_server.port, 0);
    kaos_client_on_notifications(m->e->c, on_push, m);
    return m;
}

static void leave_server(member *m)
{
    e2e_client_free(m->e);
    free(m);
}

/* Completions: an error goes to the e2e_client, an answer into the member. */
static bool failed(member *m, const kaos_result *r)
{
    m->answers++;
    if (!r->code) return false;
    e2e_on_done(m->e->c, r, m->e); /* records the error */
    return true;
}

static void on_group(kaos_client *k, const kaos_result *r, const kaos_group *g, void *ud)
{
    (void)k;
    member *m = ud;
    if (failed(m, r)) return;
    snprintf(m->group_id, sizeof m->group_id, "%s", g->id);
    m->edge_count = g->edge_count;
}

static void on_group_users(kaos_client *k, const kaos_result *r, const kaos_group_user *u, size_t n,
                           const char *cursor, void *ud)
{
    (void)k;
    member *m = ud;
    if (failed(m, r)) return;
    m->count = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(m->ids[i], sizeof m->ids[0], "%s", u[i].user.id);
        m->states[i] = u[i].state;
    }
    snprintf(m->cursor, sizeof m->cursor, "%s", cursor);
}

static void on_groups(kaos_client *k, const kaos_result *r, const kaos_group *g, size_t n,
                      const char *cursor, void *ud)
{
    (void)k;
    member *m = ud;
    if (failed(m, r)) return;
    m->count = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(m->ids[i], sizeof m->ids[0], "%s", g[i].id);
    snprintf(m->cursor, sizeof m->cursor, "%s", cursor);
}

static void on_user_groups(kaos_client *k, const kaos_result *r, const kaos_user_group *g, size_t n,
                           const char *cursor, void *ud)
{
    (void)k;
    member *m = ud;
    if (failed(m, r)) return;
    m->count = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(m->ids[i], sizeof m->ids[0], "%s", g[i].group.id);
        m->states[i] = g[i].state;
    }
    snprintf(m->cursor, sizeof m->cursor, "%s", cursor);
}

/* The counters before a request, so its answer can be told from earlier ones. */
static void mark(member *m)
{
    m->mark_answers = m->answers;
    m->mark_acks = m->e->acks;
    m->mark_errors = m->e->errors;
}

/* Waits for the answer to `cid` (an Ack, or a reply into the member):
 * 0, or the error's wire code (positive: -KAOS_ERR_x). */
static int answered(member *m, int cid)
{
    assert_true(cid > 0);
    E2E_WAIT(m->answers > m->mark_answers || m->e->acks > m->mark_acks ||
                 m->e->errors > m->mark_errors,
             15000);
    return m->e->errors > m->mark_errors ? m->e->error_code : 0;
}
#define ANSWER(m, call) (mark(m), answered((m), (call)))

static void create(member *m, const char *name, bool open, int max)
{
    kaos_group_spec s = {name, "a test group", NULL, NULL, NULL, open, max};
    assert_int_equal(ANSWER(m, kaos_client_group_create(m->e->c, &s, on_group, m)), 0);
    assert_int_equal(m->edge_count, 1);
}

static int users(member *m, const char *gid, int state)
{
    return ANSWER(m, kaos_client_group_users_list(m->e->c, gid, state, 0, NULL, on_group_users, m));
}

static void a_join_request_reaches_the_admin_live_and_the_accept_reaches_the_requester(void **state)
{
    (void)state;
    member *admin = join_server(), *asker = join_server();
    char name[80];
    snprintf(name, sizeof name, "closed %s", admin->e->user_id);
    create(admin, name, false, 10);
    char gid[40];
    snprintf(gid, sizeof gid, "%s", admin->group_id);
    assert_int_equal(ANSWER(asker, kaos_client_group_join(asker->e->c, gid, e2e_on_done, asker->e)),
                     0);
    E2E_WAIT(admin->pushes == 1, 15000);
    assert_int_equal(admin->push_codes[0], -5);
    assert_string_equal(admin->push_senders[0], asker->e->user_id);
    assert_non_null(strstr(admin->push_contents[0], gid));
    assert_int_equal(users(admin, gid, KAOS_GROUP_JOIN_REQUEST), 0);
    assert_int_equal(admin->count, 1);
    assert_string_equal(admin->ids[0], asker->e->user_id);
    /* The admin accepts: the asker is told live and is a member. */
    const char *who = asker->e->user_id;
    assert_int_equal(ANSWER(admin, kaos_client_group_users_add(admin->e->c, gid, &who, 1,
                                                               e2e_on_done, admin->e)),
                     0);
    E2E_WAIT(asker->pushes == 1, 15000);
    assert_int_equal(asker->push_codes[0], -4);
    assert_string_equal(asker->push_senders[0], admin->e->user_id);
    assert_int_equal(users(asker, gid, KAOS_GROUP_ANY), 0);
    assert_int_equal(asker->count, 2);
    assert_int_equal(asker->states[0], KAOS_GROUP_SUPERADMIN);
    assert_int_equal(asker->states[1], KAOS_GROUP_MEMBER);
    e2e_pump_for(200);
    assert_int_equal(admin->pushes, 1); /* the admin is not told of its own accept */
    leave_server(admin);
    leave_server(asker);
}

/* What a notifications list returned: the codes and senders. */
typedef struct listed {
    int lists;
    size_t n;
    int codes[8];
    char senders[8][40];
} listed;

static void on_notes(kaos_client *k, const kaos_result *r, const kaos_notification *n, size_t count,
                     const char *cursor, void *ud)
{
    (void)k;
    (void)cursor;
    listed *l = ud;
    l->n = r->code ? 0 : count;
    for (size_t i = 0; i < l->n && i < 8; i++) {
        l->codes[i] = n[i].code;
        snprintf(l->senders[i], sizeof l->senders[0], "%s", n[i].sender_id);
    }
    l->lists++;
}

static void an_admin_offline_at_the_request_lists_it_after_logging_in(void **state)
{
    (void)state;
    char device[40], admin_id[40], gid[40], name[80];
    e2e_device_id(device);
    member *admin = calloc(1, sizeof *admin);
    assert_non_null(admin);
    admin->e = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(admin->e, device);
    snprintf(admin_id, sizeof admin_id, "%s", admin->e->user_id);
    snprintf(name, sizeof name, "offline %s", admin_id);
    create(admin, name, false, 0);
    snprintf(gid, sizeof gid, "%s", admin->group_id);
    leave_server(admin);

    member *asker = join_server();
    assert_int_equal(ANSWER(asker, kaos_client_group_join(asker->e->c, gid, e2e_on_done, asker->e)),
                     0);
    e2e_client *back = e2e_client_new(e2e_group_server.port, 0, 0);
    e2e_auth(back, device);
    assert_string_equal(back->user_id, admin_id);
    listed l = {0};
    assert_true(kaos_client_notifications_list(back->c, 0, NULL, on_notes, &l) > 0);
    E2E_WAIT(l.lists == 1, 15000);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.codes[0], -5);
    assert_string_equal(l.senders[0], asker->e->user_id);
    e2e_client_free(back);
    leave_server(asker);
}

static void a_kick_lets_back_in_and_a_ban_keeps_out(void **state)
{
    (void)state;
    member *admin = join_server(), *m = join_server();
    char name[80];
    snprintf(name, sizeof name, "open %s", admin->e->user_id);
    create(admin, name, true, 10);
    char gid[40];
    snprintf(gid, sizeof gid, "%s", admin->group_id);
    const char *who = m->e->user_id, *boss = admin->e->user_id;
    assert_int_equal(ANSWER(m, kaos_client_group_join(m->e->c, gid, e2e_on_done, m->e)), 0);
    /* A member may not kick; the message names the rule. */
    assert_int_equal(
        ANSWER(m, kaos_client_group_users_kick(m->e->c, gid, &boss, 1, e2e_on_done, m->e)),
        -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(m->e->error_message, "only admins and superadmins may kick users");
    assert_int_equal(ANSWER(admin, kaos_client_group_users_kick(admin->e->c, gid, &who, 1,
                                                                e2e_on_done, admin->e)),
                     0);
    assert_int_equal(users(admin, gid, KAOS_GROUP_ANY), 0);
    assert_int_equal(admin->count, 1);
    assert_int_equal(ANSWER(m, kaos_client_group_join(m->e->c, gid, e2e_on_done, m->e)), 0);
    assert_int_equal(ANSWER(admin, kaos_client_group_users_ban(admin->e->c, gid, &who, 1,
                                                               e2e_on_done, admin->e)),
                     0);
    E2E_WAIT(m->pushes == 1, 15000);
    assert_int_equal(m->push_codes[0], -8);
    assert_int_equal(ANSWER(m, kaos_client_group_join(m->e->c, gid, e2e_on_done, m->e)),
                     -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(m->e->error_message, "you are banned from this group and cannot join it");
    /* The last superadmin cannot leave. */
    assert_int_equal(
        ANSWER(admin, kaos_client_group_leave(admin->e->c, gid, e2e_on_done, admin->e)),
        -KAOS_ERR_PERMISSION_DENIED);
    assert_non_null(strstr(admin->e->error_message, "the last superadmin cannot leave"));
    leave_server(admin);
    leave_server(m);
}

/* Many clients join one open group at once (each request sent before any
 * answer is read): the member count stops at max_count. */
enum { JOINERS = 8, ROOM = 4 };

static bool all_answered(member *const *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ms[i]->e->acks == ms[i]->mark_acks && ms[i]->e->errors == ms[i]->mark_errors)
            return false;
    return true;
}

static void clients_joining_at_once_stop_at_max_count(void **state)
{
    (void)state;
    member *owner = join_server(), *joiners[JOINERS];
    char name[80], gid[40];
    snprintf(name, sizeof name, "crowded %s", owner->e->user_id);
    create(owner, name, true, ROOM);
    snprintf(gid, sizeof gid, "%s", owner->group_id);
    for (int i = 0; i < JOINERS; i++)
        joiners[i] = join_server();
    for (int i = 0; i < JOINERS; i++) {
        mark(joiners[i]);
        assert_true(kaos_client_group_join(joiners[i]->e->c, gid, e2e_on_done, joiners[i]->e) > 0);
    }
    E2E_WAIT(all_answered(joiners, JOINERS), 15000);
    int joined = 0, full = 0;
    for (int i = 0; i < JOINERS; i++) {
        joined += joiners[i]->e->acks > joiners[i]->mark_acks;
        full += joiners[i]->e->errors > joiners[i]->mark_errors &&
                joiners[i]->e->error_code == -KAOS_ERR_RESOURCE_EXHAUSTED;
    }
    assert_int_equal(joined, ROOM - 1);
    assert_int_equal(full, JOINERS - (ROOM - 1));
    assert_int_equal(users(owner, gid, KAOS_GROUP_ANY), 0);
    assert_int_equal(owner->count, ROOM);
    for (int i = 0; i < JOINERS; i++)
        leave_server(joiners[i]);
    leave_server(owner);
}

static void lists_page_with_their_cursors(void **state)
{
    (void)state;
    member *a = join_server();
    char prefix[64], name[80];
    snprintf(prefix, sizeof prefix, "paged %.8s", a->e->user_id);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s %d", prefix, i);
        create(a, name, i != 1, 0);
    }
    kaos_groups_filter f = {prefix, NULL, -1, 0, 0};
    assert_int_equal(ANSWER(a, kaos_client_groups_list(a->e->c, &f, 2, NULL, on_groups, a)), 0);
    assert_int_equal(a->count, 2);
    assert_string_not_equal(a->cursor, "");
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%s", a->cursor);
    assert_int_equal(ANSWER(a, kaos_client_groups_list(a->e->c, &f, 2, cursor, on_groups, a)), 0);
    assert_int_equal(a->count, 1);
    assert_string_equal(a->cursor, "");
    f.open = 1;
    assert_int_equal(ANSWER(a, kaos_client_groups_list(a->e->c, &f, 2, cursor, on_groups, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(ANSWER(a, kaos_client_groups_list(a->e->c, &f, 0, NULL, on_groups, a)), 0);
    assert_int_equal(a->count, 2);
    assert_int_equal(ANSWER(a, kaos_client_groups_list(a->e->c, &f, 101, NULL, on_groups, a)),
                     -KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(ANSWER(a, kaos_client_user_groups_list(a->e->c, NULL, KAOS_GROUP_SUPERADMIN, 2,
                                                            NULL, on_user_groups, a)),
                     0);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->states[0], KAOS_GROUP_SUPERADMIN);
    snprintf(cursor, sizeof cursor, "%s", a->cursor);
    assert_int_equal(
        ANSWER(a, kaos_client_user_groups_list(a->e->c, a->e->user_id, KAOS_GROUP_SUPERADMIN, 2,
                                               cursor, on_user_groups, a)),
        0);
    assert_int_equal(a->count, 1);
    leave_server(a);
}

static void updates_and_deletes_follow_rank(void **state)
{
    (void)state;
    member *a = join_server(), *b = join_server();
    char name[80];
    snprintf(name, sizeof name, "ranked %s", a->e->user_id);
    create(a, name, true, 5);
    char gid[40];
    snprintf(gid, sizeof gid, "%s", a->group_id);
    assert_int_equal(ANSWER(b, kaos_client_group_join(b->e->c, gid, e2e_on_done, b->e)), 0);
    kaos_group_spec up = {NULL, "new words", NULL, NULL, NULL, -1, 0};
    assert_int_equal(ANSWER(b, kaos_client_group_update(b->e->c, gid, &up, e2e_on_done, b->e)),
                     -KAOS_ERR_PERMISSION_DENIED);
    const char *who = b->e->user_id;
    assert_int_equal(
        ANSWER(a, kaos_client_group_users_promote(a->e->c, gid, &who, 1, e2e_on_done, a->e)), 0);
    assert_int_equal(ANSWER(b, kaos_client_group_update(b->e->c, gid, &up, e2e_on_done, b->e)), 0);
    assert_int_equal(ANSWER(b, kaos_client_group_delete(b->e->c, gid, e2e_on_done, b->e)),
                     -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(b->e->error_message, "only a superadmin may delete a group");
    assert_int_equal(
        ANSWER(a, kaos_client_group_users_demote(a->e->c, gid, &who, 1, e2e_on_done, a->e)), 0);
    assert_int_equal(users(a, gid, KAOS_GROUP_MEMBER), 0);
    assert_int_equal(a->count, 1);
    assert_int_equal(ANSWER(a, kaos_client_group_delete(a->e->c, gid, e2e_on_done, a->e)), 0);
    assert_int_equal(users(a, gid, KAOS_GROUP_ANY), -KAOS_ERR_NOT_FOUND);
    /* Local checks refuse before sending. */
    assert_int_equal(kaos_client_group_create(a->e->c, NULL, on_group, a),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_group_users_add(a->e->c, gid, NULL, 1, e2e_on_done, a->e),
                     KAOS_ERR_INVALID_ARGUMENT);
    leave_server(a);
    leave_server(b);
}

static void a_before_hook_can_refuse_a_create(void **state)
{
    (void)state;
    member *a = join_server();
    kaos_group_spec s = {"hooked_group", NULL, NULL, NULL, NULL, 1, 0};
    assert_int_equal(ANSWER(a, kaos_client_group_create(a->e->c, &s, on_group, a)),
                     -KAOS_ERR_PERMISSION_DENIED);
    assert_string_equal(a->e->error_message, "groups named hooked_group are closed");
    leave_server(a);
}

static void lua_functions_act_for_the_users_they_name(void **state)
{
    (void)state;
    e2e_client *a = e2e_player(e2e_group_server.port, 0), *b = e2e_player(e2e_group_server.port, 0);
    int before = a->rpcs;
    assert_true(kaos_client_rpc_call(a->c, "groups_lua", b->user_id, e2e_on_rpc, a) > 0);
    E2E_WAIT(a->rpcs > before || a->errors > 0, 15000);
    assert_int_equal(a->errors, 0);
    const char *expect[] = {
        "\"created\":true",
        "\"join\":\"ok\"",
        "\"requested\":true",
        "\"add\":\"ok\"",
        "\"promote\":\"ok\"",
        "\"demote\":\"ok\"",
        "\"member\":true",
        "\"member_kick\":\"7 only admins and superadmins may kick users\"",
        "\"system_demote\":\"7 the group's last superadmin cannot be kicked, banned or demoted",
        "\"update\":\"ok\"",
        "\"listed\":true",
        "\"ban\":\"ok\"",
        "\"banned_join\":\"7 you are banned from this group and cannot join it\"",
        "\"leave\":\"7 the last superadmin cannot leave",
        "\"delete\":\"ok\"",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(a->rpc_payload, expect[i])) fail_msg("%s not in %s", expect[i], a->rpc_payload);
    e2e_client_free(a);
    e2e_client_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            a_join_request_reaches_the_admin_live_and_the_accept_reaches_the_requester),
        cmocka_unit_test(an_admin_offline_at_the_request_lists_it_after_logging_in),
        cmocka_unit_test(a_kick_lets_back_in_and_a_ban_keeps_out),
        cmocka_unit_test(clients_joining_at_once_stop_at_max_count),
        cmocka_unit_test(lists_page_with_their_cursors),
        cmocka_unit_test(updates_and_deletes_follow_rank),
        cmocka_unit_test(a_before_hook_can_refuse_a_create),
        cmocka_unit_test(lua_functions_act_for_the_users_they_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
