/* kn_groups against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv). The group setup creates a database of its
 * own and migrates it; each test makes users and groups of its own.
 * Covered: create and unique names, the permission matrix (every operation
 * by every role, with nothing changed on a refusal), join of open and
 * closed groups with the admins' notification, the last superadmin, the
 * member count against max_count under parallel joins from many
 * connections, account deletion (promotion, empty groups), the three
 * listings with filters and cursors, input limits. */
#include "failalloc.h"
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_groups.h"
#include "kn_mem.h"
#include "kn_notify.h"

#include <pthread.h>
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
static char msg[512];

static int setup(void **state)
{
    (void)state;
    return pgtest_create(&pg, "kaos_groups", &db) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    kn_db_close(db);
    pgtest_drop(&pg);
    return 0;
}

/* --- helpers ---------------------------------------------------------------------------------- */

typedef char uid[37];

static void user(uid id)
{
    static unsigned serial;
    ++serial;
    snprintf(id, 37, "a0000000-0000-4000-8000-%012x", serial);
    pgtest_sql(db, "INSERT INTO users (id, username) VALUES ('%s', 'gu%u')", id, serial);
}

/* A group of `owner`; name made unique unless given. */
static void group(const char *owner, bool open, int max, const char *name, uid gid)
{
    static unsigned serial;
    char n[64];
    snprintf(n, sizeof n, "group %u", ++serial);
    kn_group_spec s = {name ? name : n, NULL, NULL, NULL, NULL, open, max};
    kn_group g;
    assert_int_equal(kn_groups_create(db, owner, &s, &g, msg, sizeof msg), KN_OK);
    snprintf(gid, 37, "%s", g.id);
    kn_group_deinit(&g);
}

/* `who`'s state in the group, -1 for none (read from the table). */
static int state_of(const char *gid, const char *who)
{
    static const kn_db_stmt q = {
        "test_groups_state", "SELECT state FROM group_edge WHERE group_id = $1 AND user_id = $2",
        2};
    kn_db_rows *rows = NULL;
    const char *p[] = {gid, who};
    assert_int_equal(kn_db_query(db, &q, p, &rows), KN_OK);
    const char *v = kn_db_rows_get(rows, 0, 0);
    int st = v ? atoi(v) : -1;
    kn_db_rows_free(rows);
    return st;
}

/* Everything of a group a call could change, as one string ("gone" when deleted). */
static char *snapshot(const char *gid)
{
    static const kn_db_stmt q = {
        "test_groups_snapshot",
        "SELECT concat_ws('|', name, description, avatar_url, lang_tag, metadata::text, open,"
        " edge_count, max_count, (SELECT string_agg(user_id::text || ':' || state, ','"
        " ORDER BY user_id) FROM group_edge WHERE group_id = g.id)) FROM groups g WHERE id = $1",
        1};
    kn_db_rows *rows = NULL;
    const char *p[] = {gid};
    assert_int_equal(kn_db_query(db, &q, p, &rows), KN_OK);
    const char *v = kn_db_rows_get(rows, 0, 0);
    char *s = kn_strdup(v ? v : "gone");
    kn_db_rows_free(rows);
    return s;
}

static int count_of(const char *gid)
{
    kn_group g;
    assert_int_equal(kn_groups_get(db, gid, &g, msg, sizeof msg), KN_OK);
    int n = g.edge_count;
    kn_group_deinit(&g);
    return n;
}

/* The codes of the notifications user_id has, as "c1,c2," (oldest first). */
static void codes_of(const char *user_id, char *out, size_t cap)
{
    kn_notification *notes = NULL;
    size_t n = 0;
    char *cursor = NULL;
    assert_int_equal(kn_notify_list(db, user_id, 0, NULL, &notes, &n, &cursor, msg, sizeof msg),
                     KN_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%d,", notes[i].code);
    kn_notify_free(notes, n);
    kn_free(cursor);
}

static int one(int (*fn)(kn_db *, const char *, const char *, const char *const *, size_t, char *,
                         size_t),
               const char *me, const char *gid, const char *who)
{
    return fn(db, me, gid, &who, 1, msg, sizeof msg);
}

static int add(const char *me, const char *gid, const char *who)
{
    return kn_groups_users_add(db, NULL, me, gid, &who, 1, msg, sizeof msg);
}

static int ban(const char *me, const char *gid, const char *who)
{
    return kn_groups_users_ban(db, NULL, me, gid, &who, 1, msg, sizeof msg);
}

static int promote(const char *me, const char *gid, const char *who)
{
    return kn_groups_users_promote(db, NULL, me, gid, &who, 1, msg, sizeof msg);
}

/* --- create ----------------------------------------------------------------------------------- */

static void create_makes_the_creator_superadmin_and_names_are_unique_ignoring_case(void **state)
{
    (void)state;
    uid a, b, gid;
    user(a);
    user(b);
    group(a, true, 0, "Dragons", gid);
    assert_int_equal(state_of(gid, a), KN_GROUP_SUPERADMIN);
    kn_group g;
    assert_int_equal(kn_groups_get(db, gid, &g, msg, sizeof msg), KN_OK);
    assert_int_equal(g.edge_count, 1);
    assert_int_equal(g.max_count, KN_GROUPS_MAX_COUNT_DEF);
    assert_string_equal(g.creator_id, a);
    assert_string_equal(g.lang_tag, "en");
    assert_string_equal(g.metadata, "{}");
    assert_true(g.open);
    kn_group_deinit(&g);
    kn_group_spec s = {"dRaGoNs", NULL, NULL, NULL, NULL, 1, 0};
    assert_int_equal(kn_groups_create(db, b, &s, NULL, msg, sizeof msg), KN_ERR_ALREADY_EXISTS);
    assert_string_equal(msg, "a group named \"dRaGoNs\" already exists");
    s.name = "x";
    assert_int_equal(
        kn_groups_create(db, "c0000000-0000-4000-8000-000000000000", &s, NULL, msg, sizeof msg),
        KN_ERR_NOT_FOUND);
}

static void bad_input_is_refused_with_the_limit_named(void **state)
{
    (void)state;
    uid a, gid;
    user(a);
    group(a, true, 0, NULL, gid);
    char big[KN_GROUPS_NAME_MAX + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct {
        kn_group_spec s;
        const char *msg;
    } cases[] = {
        {{NULL, NULL, NULL, NULL, NULL, 0, 0}, "a group needs a name"},
        {{"", NULL, NULL, NULL, NULL, 0, 0}, "name must be 1-128 bytes"},
        {{big, NULL, NULL, NULL, NULL, 0, 0},
         "name must be at most 128 bytes of UTF-8 without control characters"},
        {{"\xff", NULL, NULL, NULL, NULL, 0, 0},
         "name must be at most 128 bytes of UTF-8 without control characters"},
        {{"n", NULL, NULL, NULL, "[1]", 0, 0}, "metadata must be a JSON object"},
        {{"n", NULL, NULL, "a b", NULL, 0, 0}, "lang_tag must be 1-18 letters, digits, '-' or '_'"},
        {{"n", NULL, NULL, NULL, NULL, 0, 10001},
         "max_count must be 1-10000 (0: the default), not 10001"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(kn_groups_create(db, a, &cases[i].s, NULL, msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
        assert_string_equal(msg, cases[i].msg);
    }
    const char *ids[KN_GROUPS_BATCH_MAX + 1];
    for (size_t i = 0; i <= KN_GROUPS_BATCH_MAX; i++)
        ids[i] = a;
    assert_int_equal(kn_groups_users_kick(db, a, gid, ids, 0, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(
        kn_groups_users_kick(db, a, gid, ids, KN_GROUPS_BATCH_MAX + 1, msg, sizeof msg),
        KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "name 1-100 user ids to kick");
    assert_int_equal(one(kn_groups_users_kick, a, gid, a), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "you cannot kick yourself (use join or leave)");
    assert_int_equal(one(kn_groups_users_kick, a, gid, "nope"), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_groups_join(db, NULL, a, "nope", msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "group id must be a UUID");
    assert_int_equal(
        kn_groups_join(db, NULL, a, "c0000000-0000-4000-8000-000000000000", msg, sizeof msg),
        KN_ERR_NOT_FOUND);
    kn_group_spec up = {NULL, NULL, NULL, NULL, NULL, -1, 0};
    char desc[KN_GROUPS_DESCRIPTION_MAX + 2];
    memset(desc, 'd', sizeof desc - 1);
    desc[sizeof desc - 1] = '\0';
    up.description = desc;
    assert_int_equal(kn_groups_update(db, a, gid, &up, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
}

/* --- the permission matrix ----------------------------------------------------------------------
 */

enum { R_SUPER, R_ADMIN, R_MEMBER, R_REQUEST, R_BANNED, R_OUTSIDER, N_ROLES };
static const char *const role_names[N_ROLES] = {"superadmin",   "admin",  "member",
                                                "join request", "banned", "outsider"};

/* A closed group with one user in each role, and targets: a second
 * superadmin, admin and member, and an outsider. */
typedef struct cast {
    uid gid;
    uid role[N_ROLES];
    uid t_super, t_admin, t_member, t_outsider;
} cast;

static void make_cast(cast *c)
{
    for (int r = 0; r < N_ROLES; r++)
        user(c->role[r]);
    user(c->t_super);
    user(c->t_admin);
    user(c->t_member);
    user(c->t_outsider);
    const char *s = c->role[R_SUPER];
    group(s, false, 50, NULL, c->gid);
    const char *in[] = {c->role[R_ADMIN], c->role[R_MEMBER], c->t_super, c->t_admin, c->t_member};
    assert_int_equal(kn_groups_users_add(db, NULL, s, c->gid, in, 5, msg, sizeof msg), KN_OK);
    const char *up[] = {c->role[R_ADMIN], c->t_super, c->t_admin};
    assert_int_equal(kn_groups_users_promote(db, NULL, s, c->gid, up, 3, msg, sizeof msg), KN_OK);
    assert_int_equal(promote(s, c->gid, c->t_super), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, c->role[R_REQUEST], c->gid, msg, sizeof msg), KN_OK);
    assert_int_equal(ban(s, c->gid, c->role[R_BANNED]), KN_OK);
    for (int r = 0; r < R_OUTSIDER; r++)
        assert_int_equal(state_of(c->gid, c->role[r]), r);
    assert_int_equal(state_of(c->gid, c->t_super), KN_GROUP_SUPERADMIN);
}

typedef enum op {
    OP_UPDATE,
    OP_DELETE,
    OP_ADD,
    OP_KICK_MEMBER,
    OP_BAN_MEMBER,
    OP_PROMOTE_MEMBER,
    OP_DEMOTE_ADMIN,
    OP_KICK_ADMIN,
    OP_KICK_SUPER,
    OP_BAN_SUPER,
    OP_PROMOTE_ADMIN,
    OP_DEMOTE_SUPER,
    OP_JOIN,
    OP_LEAVE,
    N_OPS
} op;

static int run_op(op o, const cast *c, const char *me)
{
    kn_group_spec spec = {"renamed", "d", NULL, NULL, NULL, 1, 0};
    char name[64];
    snprintf(name, sizeof name, "renamed %s", c->gid);
    spec.name = name;
    switch (o) {
    case OP_UPDATE:
        return kn_groups_update(db, me, c->gid, &spec, msg, sizeof msg);
    case OP_DELETE:
        return kn_groups_delete(db, me, c->gid, msg, sizeof msg);
    case OP_ADD:
        return add(me, c->gid, c->t_outsider);
    case OP_KICK_MEMBER:
        return one(kn_groups_users_kick, me, c->gid, c->t_member);
    case OP_BAN_MEMBER:
        return ban(me, c->gid, c->t_member);
    case OP_PROMOTE_MEMBER:
        return promote(me, c->gid, c->t_member);
    case OP_DEMOTE_ADMIN:
        return one(kn_groups_users_demote, me, c->gid, c->t_admin);
    case OP_KICK_ADMIN:
        return one(kn_groups_users_kick, me, c->gid, c->t_admin);
    case OP_KICK_SUPER:
        return one(kn_groups_users_kick, me, c->gid, c->t_super);
    case OP_BAN_SUPER:
        return ban(me, c->gid, c->t_super);
    case OP_PROMOTE_ADMIN:
        return promote(me, c->gid, c->t_admin);
    case OP_DEMOTE_SUPER:
        return one(kn_groups_users_demote, me, c->gid, c->t_super);
    case OP_JOIN:
        return kn_groups_join(db, NULL, me, c->gid, msg, sizeof msg);
    case OP_LEAVE:
        return kn_groups_leave(db, me, c->gid, msg, sizeof msg);
    default:
        return KN_ERR_INTERNAL;
    }
}

#define OK_  KN_OK
#define DENY KN_ERR_PERMISSION_DENIED

/* The expected outcome of every operation for every role, and the message
 * of each refusal (NULL: the generic "only admins..." of that operation). */
static const struct {
    const char *name;
    int want[N_ROLES];
    const char *admin_msg; /* the refusal an admin gets, when it differs */
} matrix[N_OPS] = {
    [OP_UPDATE] = {"update", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_DELETE] = {"delete",
                   {OK_, DENY, DENY, DENY, DENY, DENY},
                   "only a superadmin may delete a group"},
    [OP_ADD] = {"add", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_KICK_MEMBER] = {"kick a member", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_BAN_MEMBER] = {"ban a member", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_PROMOTE_MEMBER] = {"promote a member", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_DEMOTE_ADMIN] = {"demote an admin", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_KICK_ADMIN] = {"kick an admin", {OK_, OK_, DENY, DENY, DENY, DENY}, NULL},
    [OP_KICK_SUPER] = {"kick a superadmin",
                       {OK_, DENY, DENY, DENY, DENY, DENY},
                       "admins cannot kick a superadmin"},
    [OP_BAN_SUPER] = {"ban a superadmin",
                      {OK_, DENY, DENY, DENY, DENY, DENY},
                      "admins cannot ban a superadmin"},
    [OP_PROMOTE_ADMIN] = {"promote an admin",
                          {OK_, DENY, DENY, DENY, DENY, DENY},
                          "only a superadmin may promote an admin to superadmin"},
    [OP_DEMOTE_SUPER] = {"demote a superadmin",
                         {OK_, DENY, DENY, DENY, DENY, DENY},
                         "admins cannot demote a superadmin"},
    [OP_JOIN] = {"join", {OK_, OK_, OK_, OK_, DENY, OK_}, NULL},
    [OP_LEAVE] = {"leave", {OK_, OK_, OK_, OK_, DENY, OK_}, NULL},
};

static void every_operation_by_every_role_is_allowed_or_refused_without_a_trace(void **state)
{
    (void)state;
    for (int o = 0; o < N_OPS; o++)
        for (int r = 0; r < N_ROLES; r++) {
            cast c;
            make_cast(&c);
            char *before = snapshot(c.gid);
            msg[0] = '\0';
            int rc = run_op((op)o, &c, c.role[r]);
            char *after = snapshot(c.gid);
            if (rc != matrix[o].want[r])
                fail_msg("%s by a %s: got %s (%s), want %s", matrix[o].name, role_names[r],
                         kn_err_name(rc), msg, kn_err_name(matrix[o].want[r]));
            if (rc) {
                if (strcmp(before, after))
                    fail_msg("%s by a %s was refused but changed %s into %s", matrix[o].name,
                             role_names[r], before, after);
                if (r == R_ADMIN && matrix[o].admin_msg)
                    assert_string_equal(msg, matrix[o].admin_msg);
                if (r >= R_MEMBER && o != OP_JOIN && o != OP_LEAVE && o != OP_DELETE &&
                    !strstr(msg, "only admins and superadmins may"))
                    fail_msg("%s by a %s: message \"%s\" names no rule", matrix[o].name,
                             role_names[r], msg);
            }
            kn_free(before);
            kn_free(after);
        }
}

/* What the allowed operations did, for the cases the matrix cannot see. */
static void allowed_operations_move_users_to_the_right_state(void **state)
{
    (void)state;
    cast c;
    make_cast(&c);
    const char *s = c.role[R_SUPER], *a = c.role[R_ADMIN];
    int n = count_of(c.gid); /* S, A, M, t_super, t_admin, t_member */
    assert_int_equal(n, 6);
    assert_int_equal(promote(a, c.gid, c.t_member), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_member), KN_GROUP_ADMIN);
    assert_int_equal(one(kn_groups_users_demote, a, c.gid, c.t_member), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_member), KN_GROUP_MEMBER);
    /* Demoting a member changes nothing. */
    assert_int_equal(one(kn_groups_users_demote, a, c.gid, c.t_member), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_member), KN_GROUP_MEMBER);
    /* Promote accepts a join request; add accepts too. */
    assert_int_equal(promote(a, c.gid, c.role[R_REQUEST]), KN_OK);
    assert_int_equal(state_of(c.gid, c.role[R_REQUEST]), KN_GROUP_MEMBER);
    assert_int_equal(count_of(c.gid), 7);
    /* Ban drops a member from the count; kick of the banned lifts the ban. */
    assert_int_equal(ban(a, c.gid, c.t_member), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_member), KN_GROUP_BANNED);
    assert_int_equal(count_of(c.gid), 6);
    assert_int_equal(kn_groups_join(db, NULL, c.t_member, c.gid, msg, sizeof msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "you are banned from this group and cannot join it");
    assert_int_equal(one(kn_groups_users_kick, a, c.gid, c.t_member), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_member), -1);
    /* A superadmin demotes another, then that one is an admin. */
    assert_int_equal(one(kn_groups_users_demote, s, c.gid, c.t_super), KN_OK);
    assert_int_equal(state_of(c.gid, c.t_super), KN_GROUP_ADMIN);
    /* Add lifts a ban (an admin's decision). */
    assert_int_equal(add(a, c.gid, c.role[R_BANNED]), KN_OK);
    assert_int_equal(state_of(c.gid, c.role[R_BANNED]), KN_GROUP_MEMBER);
    char codes[256];
    codes_of(c.role[R_BANNED], codes, sizeof codes);
    assert_string_equal(codes, "-8,-4,");
    codes_of(c.role[R_REQUEST], codes, sizeof codes);
    assert_string_equal(codes, "-4,");
}

/* Server code acting as the system (user_id NULL): a superadmin's rights,
 * but never a group without a superadmin, and notifications without a sender. */
static void the_system_acts_as_a_superadmin_but_keeps_one(void **state)
{
    (void)state;
    uid s, m, x, gid;
    user(s);
    user(m);
    user(x);
    group(s, true, 0, NULL, gid);
    assert_int_equal(kn_groups_join(db, NULL, m, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(promote(NULL, gid, m), KN_OK);
    assert_int_equal(promote(NULL, gid, m), KN_OK);
    assert_int_equal(state_of(gid, m), KN_GROUP_SUPERADMIN);
    assert_int_equal(one(kn_groups_users_demote, NULL, gid, s), KN_OK);
    assert_int_equal(state_of(gid, s), KN_GROUP_ADMIN);
    char *before = snapshot(gid);
    assert_int_equal(one(kn_groups_users_kick, NULL, gid, m), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "the group's last superadmin cannot be kicked, banned or demoted; "
                             "promote someone to superadmin first");
    assert_int_equal(ban(NULL, gid, m), KN_ERR_PERMISSION_DENIED);
    assert_int_equal(one(kn_groups_users_demote, NULL, gid, m), KN_ERR_PERMISSION_DENIED);
    char *after = snapshot(gid);
    assert_string_equal(before, after);
    kn_free(before);
    kn_free(after);
    assert_int_equal(add(NULL, gid, x), KN_OK);
    kn_notification *notes = NULL;
    size_t n = 0;
    char *cursor = NULL;
    assert_int_equal(kn_notify_list(db, x, 0, NULL, &notes, &n, &cursor, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1);
    assert_int_equal(notes[0].code, KN_NOTIFY_CODE_GROUP_ADD);
    assert_string_equal(notes[0].sender_id, "");
    kn_notify_free(notes, n);
    kn_free(cursor);
    kn_group_spec up = {"renamed by the system", NULL, NULL, NULL, NULL, 0, 0};
    assert_int_equal(kn_groups_update(db, NULL, gid, &up, msg, sizeof msg), KN_OK);
    /* Joining, leaving and creating need a user. */
    assert_int_equal(kn_groups_join(db, NULL, NULL, gid, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "user id must be a UUID");
    assert_int_equal(kn_groups_leave(db, NULL, gid, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_groups_create(db, NULL, &up, NULL, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_groups_delete(db, NULL, gid, msg, sizeof msg), KN_OK);
    kn_group g;
    assert_int_equal(kn_groups_get(db, gid, &g, msg, sizeof msg), KN_ERR_NOT_FOUND);
}

/* --- join and leave --------------------------------------------------------------------------- */

static void a_closed_group_turns_a_join_into_a_request_the_admins_are_told_of(void **state)
{
    (void)state;
    uid s, a, m, r, gid;
    user(s);
    user(a);
    user(m);
    user(r);
    group(s, false, 0, NULL, gid);
    assert_int_equal(add(s, gid, a), KN_OK);
    assert_int_equal(promote(s, gid, a), KN_OK);
    assert_int_equal(add(s, gid, m), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, r, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(state_of(gid, r), KN_GROUP_JOIN_REQUEST);
    assert_int_equal(count_of(gid), 3); /* requests do not count */
    /* Asking twice changes nothing and tells nobody again. */
    assert_int_equal(kn_groups_join(db, NULL, r, gid, msg, sizeof msg), KN_OK);
    char codes[256];
    codes_of(s, codes, sizeof codes);
    assert_string_equal(codes, "-5,");
    codes_of(a, codes, sizeof codes);
    assert_string_equal(codes, "-4,-5,");
    codes_of(m, codes, sizeof codes);
    assert_string_equal(codes, "-4,"); /* members are not told */
    assert_int_equal(add(a, gid, r), KN_OK);
    assert_int_equal(state_of(gid, r), KN_GROUP_MEMBER);
    codes_of(r, codes, sizeof codes);
    assert_string_equal(codes, "-4,");
    /* Leaving a request withdraws it. */
    uid q;
    user(q);
    assert_int_equal(kn_groups_join(db, NULL, q, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_leave(db, q, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(state_of(gid, q), -1);
}

/* The listener hears each membership change once, after it committed. */
static char heard[512];

static void hear(void *ud, kn_db *d, const char *group_id, const char *actor_id, int change,
                 const char *user_id)
{
    (void)ud, (void)group_id;
    assert_ptr_equal(d, db);
    /* committed: a fresh statement sees it */
    int st = state_of(group_id, user_id);
    snprintf(heard + strlen(heard), sizeof heard - strlen(heard), "%d:%c%c%s,", change,
             actor_id ? actor_id[35] : '-', user_id[35],
             st < 0    ? ""
             : st == 4 ? "b"
                       : "m");
}

static void the_listener_hears_every_membership_change_and_state_reads_it(void **state)
{
    (void)state;
    uid a, b, gid;
    user(a);
    user(b);
    group(a, true, 10, NULL, gid);
    heard[0] = '\0';
    kn_groups_listen(&(kn_groups_listener){hear, NULL});
    int st;
    assert_int_equal(kn_groups_state(db, gid, b, &st, msg, sizeof msg), KN_OK);
    assert_int_equal(st, KN_GROUP_ANY);
    assert_int_equal(kn_groups_join(db, NULL, b, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, b, gid, msg, sizeof msg), KN_OK); /* no change */
    assert_int_equal(kn_groups_state(db, gid, b, &st, msg, sizeof msg), KN_OK);
    assert_int_equal(st, KN_GROUP_MEMBER);
    assert_int_equal(promote(a, gid, b), KN_OK);
    assert_int_equal(one(kn_groups_users_demote, a, gid, b), KN_OK);
    assert_int_equal(one(kn_groups_users_kick, a, gid, b), KN_OK);
    assert_int_equal(add(a, gid, b), KN_OK);
    assert_int_equal(ban(NULL, gid, b), KN_OK);
    assert_int_equal(add(a, gid, b), KN_OK); /* lifts the ban */
    assert_int_equal(kn_groups_leave(db, b, gid, msg, sizeof msg), KN_OK);
    kn_groups_listen(NULL);
    assert_int_equal(kn_groups_join(db, NULL, b, gid, msg, sizeof msg), KN_OK); /* unheard */
    char want[256];
    char ca = a[35], cb = b[35];
    snprintf(want, sizeof want, "3:%c%cm,7:%c%cm,9:%c%cm,6:%c%c,4:%c%cm,8:-%cb,4:%c%cm,5:%c%c,", cb,
             cb, ca, cb, ca, cb, ca, cb, ca, cb, cb, ca, cb, cb, cb);
    assert_string_equal(heard, want);
    assert_int_equal(kn_groups_state(db, gid, "nope", &st, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
}

static void the_last_superadmin_cannot_leave_until_someone_is_promoted(void **state)
{
    (void)state;
    uid s, m, gid;
    user(s);
    user(m);
    group(s, true, 0, NULL, gid);
    assert_int_equal(kn_groups_join(db, NULL, m, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(state_of(gid, m), KN_GROUP_MEMBER);
    assert_int_equal(kn_groups_leave(db, s, gid, msg, sizeof msg), KN_ERR_PERMISSION_DENIED);
    assert_non_null(strstr(msg, "the last superadmin cannot leave"));
    assert_int_equal(promote(s, gid, m), KN_OK);
    assert_int_equal(promote(s, gid, m), KN_OK);
    assert_int_equal(state_of(gid, m), KN_GROUP_SUPERADMIN);
    assert_int_equal(kn_groups_leave(db, s, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(count_of(gid), 1);
}

static void joins_and_adds_stop_at_max_count(void **state)
{
    (void)state;
    uid s, a, b, c, gid;
    user(s);
    user(a);
    user(b);
    user(c);
    group(s, true, 2, NULL, gid);
    assert_int_equal(kn_groups_join(db, NULL, a, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, b, gid, msg, sizeof msg), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(msg, "the group is full (2 of 2 members)");
    const char *two[] = {b, c};
    assert_int_equal(kn_groups_leave(db, a, gid, msg, sizeof msg), KN_OK);
    char *before = snapshot(gid);
    assert_int_equal(kn_groups_users_add(db, NULL, s, gid, two, 2, msg, sizeof msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
    char *after = snapshot(gid);
    assert_string_equal(before, after); /* the first add of the batch is undone too */
    kn_free(before);
    kn_free(after);
    kn_group_spec up = {NULL, NULL, NULL, NULL, NULL, -1, 1};
    assert_int_equal(add(s, gid, b), KN_OK);
    assert_int_equal(kn_groups_update(db, s, gid, &up, msg, sizeof msg),
                     KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "max_count 1 is below the group's 2 members");
}

/* Many connections join one open group at the same instant. */
enum { RACERS = 12, RACE_MAX = 5 };

typedef struct racer {
    pthread_barrier_t *start;
    const char *gid;
    uid me;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    kn_db *conn = NULL;
    char m[256];
    r->rc = pgtest_open(&pg, &conn) ? KN_ERR_DB : KN_OK;
    pthread_barrier_wait(r->start);
    if (r->rc == KN_OK) r->rc = kn_groups_join(conn, NULL, r->me, r->gid, m, sizeof m);
    kn_db_close(conn);
    return NULL;
}

static void parallel_joins_never_pass_max_count(void **state)
{
    (void)state;
    uid s, gid;
    user(s);
    group(s, true, RACE_MAX, NULL, gid);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    racer rs[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){.start = &start, .gid = gid};
        user(rs[i].me);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_create(&th[i], NULL, race, &rs[i]);
    int ok = 0, full = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ok += rs[i].rc == KN_OK;
        full += rs[i].rc == KN_ERR_RESOURCE_EXHAUSTED;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(ok, RACE_MAX - 1);
    assert_int_equal(full, RACERS - (RACE_MAX - 1));
    assert_int_equal(count_of(gid), RACE_MAX);
    kn_group_user *users = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(
        kn_groups_users_list(db, gid, KN_GROUP_MEMBER, 0, NULL, &users, &n, &next, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, RACE_MAX - 1);
    kn_group_users_free(users, n);
    kn_free(next);
}

/* Two superadmins turning on each other at the same instant, from two
 * connections: the group lock serializes them, so exactly one wins and the
 * group keeps one superadmin — whether they demote each other or both leave. */
typedef struct duel {
    pthread_barrier_t *start;
    const char *me, *other, *gid;
    bool leave;
    int rc;
} duel;

static void *fight(void *arg)
{
    duel *d = arg;
    kn_db *conn = NULL;
    char m[256];
    d->rc = pgtest_open(&pg, &conn) ? KN_ERR_DB : KN_OK;
    pthread_barrier_wait(d->start);
    if (d->rc == KN_OK)
        d->rc = d->leave ? kn_groups_leave(conn, d->me, d->gid, m, sizeof m)
                         : kn_groups_users_demote(conn, d->me, d->gid, &d->other, 1, m, sizeof m);
    kn_db_close(conn);
    return NULL;
}

static void superadmins_turning_on_each_other_at_once_leave_exactly_one(void **state)
{
    (void)state;
    for (int round = 0; round < 10; round++) {
        uid a, b, gid;
        user(a);
        user(b);
        group(a, true, 0, NULL, gid);
        assert_int_equal(add(a, gid, b), KN_OK);
        assert_int_equal(promote(a, gid, b), KN_OK);
        assert_int_equal(promote(a, gid, b), KN_OK);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        bool leave = round % 2;
        duel d[2] = {{&start, a, b, gid, leave, -1}, {&start, b, a, gid, leave, -1}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, fight, &d[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        assert_int_equal((d[0].rc == KN_OK) + (d[1].rc == KN_OK), 1);
        assert_int_equal(
            (d[0].rc == KN_ERR_PERMISSION_DENIED) + (d[1].rc == KN_ERR_PERMISSION_DENIED), 1);
        int supers =
            (state_of(gid, a) == KN_GROUP_SUPERADMIN) + (state_of(gid, b) == KN_GROUP_SUPERADMIN);
        assert_int_equal(supers, 1);
        assert_int_equal(count_of(gid), leave ? 1 : 2);
    }
}

/* One user joining twice at the same instant (two sessions): counted once. */
static void one_user_joining_twice_at_once_counts_once(void **state)
{
    (void)state;
    for (int round = 0; round < 10; round++) {
        uid s, gid;
        user(s);
        group(s, true, 0, NULL, gid);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        racer rs[2] = {{.start = &start, .gid = gid}, {.start = &start, .gid = gid}};
        user(rs[0].me);
        memcpy(rs[1].me, rs[0].me, sizeof rs[1].me);
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race, &rs[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        assert_int_equal(rs[0].rc, KN_OK);
        assert_int_equal(rs[1].rc, KN_OK);
        assert_int_equal(count_of(gid), 2);
    }
}

/* --- account deletion ------------------------------------------------------------------------- */

static void deleting_the_last_superadmin_promotes_the_oldest_admin_else_member(void **state)
{
    (void)state;
    uid s, a1, a2, m, gid, g2, g3, lone;
    user(s);
    user(a1);
    user(a2);
    user(m);
    user(lone);
    group(s, true, 0, NULL, gid);
    group(s, true, 0, NULL, g2);
    group(lone, true, 0, NULL, g3);
    assert_int_equal(kn_groups_join(db, NULL, m, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, a1, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, a2, gid, msg, sizeof msg), KN_OK);
    assert_int_equal(promote(s, gid, a1), KN_OK);
    assert_int_equal(promote(s, gid, a2), KN_OK);
    assert_int_equal(kn_groups_join(db, NULL, m, g2, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_account_delete(db, s, msg, sizeof msg), KN_OK);
    assert_int_equal(state_of(gid, a1), KN_GROUP_SUPERADMIN); /* the oldest admin */
    assert_int_equal(state_of(gid, a2), KN_GROUP_ADMIN);
    assert_int_equal(count_of(gid), 3);
    assert_int_equal(state_of(g2, m), KN_GROUP_SUPERADMIN); /* no admin: the oldest member */
    kn_group g;
    assert_int_equal(kn_groups_get(db, g2, &g, msg, sizeof msg), KN_OK);
    assert_string_equal(g.creator_id, "");
    kn_group_deinit(&g);
    assert_int_equal(kn_account_delete(db, lone, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_groups_get(db, g3, &g, msg, sizeof msg), KN_ERR_NOT_FOUND);
}

/* An admin adding a user while that user's account is deleted: both lock
 * the users row before the group row, so neither deadlocks (ABORTED) and
 * the member count stays the number of members. */
typedef struct deleter {
    pthread_barrier_t *start;
    const char *victim;
    int rc;
} deleter;

static void *delete_account(void *arg)
{
    deleter *d = arg;
    kn_db *conn = NULL;
    char m[256];
    d->rc = pgtest_open(&pg, &conn) ? KN_ERR_DB : KN_OK;
    pthread_barrier_wait(d->start);
    if (d->rc == KN_OK) d->rc = kn_account_delete(conn, d->victim, m, sizeof m);
    kn_db_close(conn);
    return NULL;
}

static void adds_racing_account_deletions_neither_deadlock_nor_miscount(void **state)
{
    (void)state;
    kn_db *conn = NULL;
    assert_int_equal(pgtest_open(&pg, &conn), 0);
    for (int round = 0; round < 20; round++) {
        uid s, victim, gid;
        user(s);
        user(victim);
        group(s, false, 0, NULL, gid);
        assert_int_equal(kn_groups_join(db, NULL, victim, gid, msg, sizeof msg), KN_OK);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        deleter d = {&start, victim, -1};
        pthread_t th;
        pthread_create(&th, NULL, delete_account, &d);
        pthread_barrier_wait(&start);
        const char *who = victim;
        int rc = kn_groups_users_add(conn, NULL, s, gid, &who, 1, msg, sizeof msg);
        pthread_join(th, NULL);
        pthread_barrier_destroy(&start);
        assert_int_equal(rc, KN_OK);
        assert_int_equal(d.rc, KN_OK);
        assert_int_equal(count_of(gid), 1);
        assert_int_equal(state_of(gid, victim), -1);
    }
    kn_db_close(conn);
}

/* --- lists ------------------------------------------------------------------------------------ */

static void lists_filter_and_walk_every_row_once(void **state)
{
    (void)state;
    uid s, m;
    user(s);
    user(m);
    uid g[5];
    const char *names[] = {"Zeta_one", "zeta%two", "zetaX", "Other", "zeta four"};
    for (int i = 0; i < 5; i++) {
        group(s, i % 2 == 0, 10, names[i], g[i]);
        if (i != 3) assert_int_equal(add(s, g[i], m), KN_OK);
    }
    kn_groups_filter f = {"ZETA", NULL, -1, 0, 0};
    kn_group *groups = NULL;
    size_t n = 0, seen = 0;
    char *next = NULL, *cur = NULL;
    do {
        assert_int_equal(kn_groups_list(db, &f, 1, cur, &groups, &n, &next, msg, sizeof msg),
                         KN_OK);
        seen += n;
        kn_groups_free(groups, n);
        kn_free(cur);
        cur = next;
    } while (cur);
    assert_int_equal(seen, 4);
    f.name_prefix = "zeta_";
    assert_int_equal(kn_groups_list(db, &f, 0, NULL, &groups, &n, &next, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 1); /* '_' is literal */
    assert_string_equal(groups[0].name, "Zeta_one");
    kn_groups_free(groups, n);
    f = (kn_groups_filter){"zeta", NULL, 1, 2, 2};
    assert_int_equal(kn_groups_list(db, &f, 0, NULL, &groups, &n, &next, msg, sizeof msg), KN_OK);
    assert_int_equal(n, 3); /* open ones: 0, 2, 4 */
    kn_groups_free(groups, n);
    /* A cursor of another filter is refused. */
    f = (kn_groups_filter){"zeta", NULL, -1, 0, 0};
    assert_int_equal(kn_groups_list(db, &f, 1, NULL, &groups, &n, &next, msg, sizeof msg), KN_OK);
    kn_groups_free(groups, n);
    f.open = 1;
    assert_int_equal(kn_groups_list(db, &f, 1, next, &groups, &n, &cur, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "cursor belongs to a listing with another filter");
    kn_free(next);
    /* A user's groups by state, in pages. */
    kn_user_group *ug = NULL;
    seen = 0;
    cur = NULL;
    do {
        assert_int_equal(
            kn_groups_user_list(db, m, KN_GROUP_MEMBER, 3, cur, &ug, &n, &next, msg, sizeof msg),
            KN_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ug[i].state, KN_GROUP_MEMBER);
        seen += n;
        kn_user_groups_free(ug, n);
        kn_free(cur);
        cur = next;
    } while (cur);
    assert_int_equal(seen, 4);
    assert_int_equal(
        kn_groups_user_list(db, s, KN_GROUP_SUPERADMIN, 0, NULL, &ug, &n, &next, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, 5);
    kn_user_groups_free(ug, n);
    /* A group's users with profiles; limits and bad cursors. */
    kn_group_user *gu = NULL;
    assert_int_equal(
        kn_groups_users_list(db, g[0], KN_GROUP_ANY, 0, NULL, &gu, &n, &next, msg, sizeof msg),
        KN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(gu[0].user.id, s);
    assert_int_equal(gu[0].state, KN_GROUP_SUPERADMIN);
    assert_int_equal(gu[1].state, KN_GROUP_MEMBER);
    assert_non_null(gu[1].user.username);
    kn_group_users_free(gu, n);
    assert_int_equal(kn_groups_users_list(db, g[0], 5, 0, NULL, &gu, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_groups_users_list(db, g[0], -1, 101, NULL, &gu, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "limit must be 1-100, not 101");
    assert_int_equal(kn_groups_users_list(db, g[0], -1, 0,
                                          "u-1:0:1:"
                                          "a0000000-0000-4000-8000-000000000001",
                                          &gu, &n, &next, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_groups_users_list(db, "c0000000-0000-4000-8000-000000000000", -1, 0, NULL,
                                          &gu, &n, &next, msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
}

/* --- allocation failures ---------------------------------------------------------------------- */

static uid oom_owner, oom_other, oom_group;

/* Every listing, two pages each; 0 only when every call worked. */
static int list_everything(void *arg)
{
    (void)arg;
    char m[256];
    int rc = KN_OK;
    const char *cursor = NULL;
    char *next = NULL;
    kn_groups_filter f = {"oom", NULL, -1, 0, 0};
    for (int page = 0; page < 2 && rc == KN_OK; page++) {
        kn_group *g = NULL;
        size_t n = 0;
        rc = kn_groups_list(db, &f, 1, cursor, &g, &n, &next, m, sizeof m);
        kn_groups_free(g, n);
        kn_free((char *)cursor);
        cursor = next;
        next = NULL;
    }
    kn_free((char *)cursor);
    cursor = NULL;
    for (int page = 0; page < 2 && rc == KN_OK; page++) {
        kn_group_user *u = NULL;
        size_t n = 0;
        rc = kn_groups_users_list(db, oom_group, -1, 1, cursor, &u, &n, &next, m, sizeof m);
        if (rc == KN_OK && n != 1) rc = KN_ERR_INTERNAL;
        kn_group_users_free(u, n);
        kn_free((char *)cursor);
        cursor = next;
        next = NULL;
    }
    kn_free((char *)cursor);
    kn_user_group *ug = NULL;
    size_t n = 0;
    if (rc == KN_OK)
        rc = kn_groups_user_list(db, oom_owner, -1, 1, NULL, &ug, &n, &next, m, sizeof m);
    kn_user_groups_free(ug, n);
    kn_free(next);
    return rc;
}

/* A batch verb, a join and a leave, with their notifications. */
static int change_members(void *arg)
{
    (void)arg;
    char m[256];
    const char *who = oom_other;
    int rc = kn_groups_users_ban(db, NULL, oom_owner, oom_group, &who, 1, m, sizeof m);
    if (rc == KN_OK) rc = kn_groups_users_add(db, NULL, oom_owner, oom_group, &who, 1, m, sizeof m);
    if (rc == KN_OK) rc = kn_groups_leave(db, oom_other, oom_group, m, sizeof m);
    if (rc == KN_OK) rc = kn_groups_join(db, NULL, oom_other, oom_group, m, sizeof m);
    return rc;
}

static void groups_calls_survive_allocation_failures(void **state)
{
    (void)state;
    uid second;
    user(oom_owner);
    user(oom_other);
    group(oom_owner, true, 0, "oom one", oom_group);
    group(oom_owner, true, 0, "oom two", second);
    assert_int_equal(kn_groups_join(db, NULL, oom_other, oom_group, msg, sizeof msg), KN_OK);
    assert_true(failalloc_sweep(list_everything, NULL) >= 6);
    assert_true(failalloc_sweep(change_members, NULL) >= 4);
    assert_int_equal(state_of(oom_group, oom_other), KN_GROUP_MEMBER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_makes_the_creator_superadmin_and_names_are_unique_ignoring_case),
        cmocka_unit_test(bad_input_is_refused_with_the_limit_named),
        cmocka_unit_test(every_operation_by_every_role_is_allowed_or_refused_without_a_trace),
        cmocka_unit_test(allowed_operations_move_users_to_the_right_state),
        cmocka_unit_test(the_system_acts_as_a_superadmin_but_keeps_one),
        cmocka_unit_test(a_closed_group_turns_a_join_into_a_request_the_admins_are_told_of),
        cmocka_unit_test(the_listener_hears_every_membership_change_and_state_reads_it),
        cmocka_unit_test(the_last_superadmin_cannot_leave_until_someone_is_promoted),
        cmocka_unit_test(joins_and_adds_stop_at_max_count),
        cmocka_unit_test(parallel_joins_never_pass_max_count),
        cmocka_unit_test(one_user_joining_twice_at_once_counts_once),
        cmocka_unit_test(superadmins_turning_on_each_other_at_once_leave_exactly_one),
        cmocka_unit_test(deleting_the_last_superadmin_promotes_the_oldest_admin_else_member),
        cmocka_unit_test(adds_racing_account_deletions_neither_deadlock_nor_miscount),
        cmocka_unit_test(lists_filter_and_walk_every_row_once),
        cmocka_unit_test(groups_calls_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
