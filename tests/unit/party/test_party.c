/* The party service on a real tracker with a recording sink and recorded
 * notes: the lifecycle (create, join, leave, the last leave ending the
 * party), permissions (only the leader accepts, removes, promotes, closes
 * and lists requests), the size limit, closed parties' join requests, the
 * leader's leave promoting the longest-present member, party data, a
 * session's end, and the create's allocation failures. */
#include "failalloc.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_party.h"
#include "kn_stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define MAX_REC 32

/* One call of the sink: one recipient list. */
typedef struct delivery {
    kn_conn_id to[8];
    size_t n;
    uint8_t channel;
    bool reliable;
    int message_case; /* of the decoded envelope; -1 for raw bytes */
    uint8_t data[16];
    size_t len;
} delivery;

/* One note of the service. */
typedef struct note {
    kn_party_note_kind kind;
    char party_id[37];
    char user[37]; /* of its presence, "" without one */
    kn_conn_id to[8];
    size_t n_to;
} note;

typedef struct fixture {
    delivery d[MAX_REC];
    size_t n_d;
    note notes[MAX_REC];
    size_t n_notes;
    int changes; /* the changed hook's calls: the party's tickets would go */
    kn_tracker *t;
    kn_parties *ps;
    char msg[128];
} fixture;

static int record(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel, const uint8_t *data,
                  size_t len, bool reliable)
{
    fixture *f = ud;
    assert_true(f->n_d < MAX_REC && n <= 8);
    delivery *d = &f->d[f->n_d++];
    memset(d, 0, sizeof *d);
    memcpy(d->to, conns, n * sizeof *conns);
    d->n = n;
    d->channel = channel;
    d->reliable = reliable;
    d->len = len;
    memcpy(d->data, data, len < sizeof d->data ? len : sizeof d->data);
    kn_envelope *env = NULL;
    d->message_case = kn_envelope_decode(data, len, &env) == KN_OK ? (int)env->message_case : -1;
    kn_envelope_free(env);
    return KN_OK;
}

static void on_note(void *ud, const kn_party_note *n)
{
    fixture *f = ud;
    assert_true(f->n_notes < MAX_REC && n->n_to <= 8);
    note *r = &f->notes[f->n_notes++];
    memset(r, 0, sizeof *r);
    r->kind = n->kind;
    snprintf(r->party_id, sizeof r->party_id, "%s", n->party_id);
    if (n->presence) snprintf(r->user, sizeof r->user, "%s", n->presence->user_id);
    memcpy(r->to, n->to, n->n_to * sizeof *n->to);
    r->n_to = n->n_to;
}

static void on_changed(void *ud, const char *party_id)
{
    fixture *f = ud;
    (void)party_id;
    f->changes++;
}

static void forget(fixture *f)
{
    f->n_d = 0;
    f->n_notes = 0;
}

static bool to_has(const kn_conn_id *to, size_t n, kn_conn_id conn)
{
    for (size_t i = 0; i < n; i++)
        if (to[i] == conn) return true;
    return false;
}

static kn_presence who(kn_conn_id conn, const char *name)
{
    kn_presence p;
    memset(&p, 0, sizeof p);
    p.conn = conn;
    snprintf(p.user_id, sizeof p.user_id, "user-%s", name);
    snprintf(p.session_id, sizeof p.session_id, "sess-%s", name);
    snprintf(p.username, sizeof p.username, "%s", name);
    return p;
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    kn_tracker_sink sink = {record, &f};
    assert_int_equal(kn_tracker_create(&cfg, &sink, &f.t), KN_OK);
    kn_party_hooks hooks = {on_note, on_changed, &f};
    assert_int_equal(kn_parties_create(f.t, &hooks, &f.ps), KN_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kn_parties_destroy(f->ps);
    kn_tracker_destroy(f->t);
    return 0;
}

/* A party led by lead; its id in id (37 bytes). */
static void create(fixture *f, const kn_presence *lead, bool open, uint32_t max, char *id)
{
    kn_party_config cfg = {.open = open, .max_size = max, .label = "casual"};
    kn_party_view v;
    int rc = kn_party_create(f->ps, lead, &cfg, &v, f->msg, sizeof f->msg);
    if (rc) fail_msg("create: %s (%s)", kn_err_name(rc), f->msg);
    snprintf(id, 37, "%s", v.party_id);
    kn_free(v.members);
}

static int join(fixture *f, const kn_presence *p, const char *id, bool *pending)
{
    kn_party_view v;
    memset(&v, 0, sizeof v);
    bool ignored;
    f->msg[0] = 0;
    int rc = kn_party_join(f->ps, p, id, pending ? pending : &ignored, &v, f->msg, sizeof f->msg);
    kn_free(v.members);
    return rc;
}

static kn_party_view view(fixture *f, const char *id)
{
    kn_party_view v;
    assert_int_equal(kn_party_get(f->ps, id, &v, f->msg, sizeof f->msg), KN_OK);
    return v;
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void a_new_party_has_its_creator_as_leader_and_only_member(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a");
    kn_party_config cfg = {.open = true, .max_size = 4, .label = "ranked", .hidden = true};
    kn_party_view v;
    assert_int_equal(kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg), KN_OK);
    assert_true(v.open && v.hidden);
    assert_int_equal(v.max_size, 4);
    assert_string_equal(v.label, "ranked");
    assert_string_equal(v.leader.user_id, "user-a");
    assert_int_equal(v.n_members, 1);
    assert_int_equal(kn_parties_count(f->ps), 1);
    kn_stream s = {.mode = KN_STREAM_PARTY};
    snprintf(s.subject, sizeof s.subject, "%s", v.party_id);
    assert_int_equal(kn_tracker_count(f->t, &s), 1);
    kn_free(v.members);
}

static void a_bad_size_or_label_is_an_invalid_argument(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a");
    kn_party_view v;
    kn_party_config cfg = {.open = true, .max_size = 1};
    assert_int_equal(kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(f->msg, "max size must be 2-256");
    cfg.max_size = 257;
    assert_int_equal(kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg),
                     KN_ERR_INVALID_ARGUMENT);
    cfg.max_size = 2;
    cfg.label = "tab\there";
    assert_int_equal(kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_parties_count(f->ps), 0);
}

static void joining_an_open_party_tells_the_members_and_the_last_leave_ends_it(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b");
    char id[37];
    create(f, &a, true, 4, id);
    forget(f);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(f->n_d, 1); /* a presence event to a */
    assert_int_equal(f->d[0].n, 1);
    assert_int_equal(f->d[0].to[0], 1);
    assert_int_equal(f->d[0].message_case, KAOS__V1__ENVELOPE__MESSAGE_PARTY_PRESENCE);
    assert_int_equal(join(f, &b, id, NULL), KN_OK); /* a member already: the same */
    kn_party_view v = view(f, id);
    assert_int_equal(v.n_members, 2);
    kn_free(v.members);

    int changes = f->changes;
    forget(f);
    assert_int_equal(kn_party_leave(f->ps, &b, id, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(f->changes, changes + 1); /* its tickets would go */
    assert_int_equal(f->n_d, 1);               /* the leave, to a */
    assert_int_equal(f->n_notes, 0);
    assert_int_equal(kn_party_leave(f->ps, &b, id, f->msg, sizeof f->msg), KN_ERR_NOT_FOUND);
    assert_string_equal(f->msg, "party not found");
    assert_int_equal(kn_party_leave(f->ps, &a, id, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(kn_parties_count(f->ps), 0);
    assert_int_equal(join(f, &b, id, NULL), KN_ERR_NOT_FOUND);
}

static void a_full_party_refuses_a_join(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c");
    char id[37];
    create(f, &a, true, 2, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(join(f, &c, id, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "party is full");
}

static void a_session_is_in_a_limited_number_of_parties(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a");
    char id[37];
    for (int i = 0; i < KN_PARTY_PER_SESSION; i++)
        create(f, &a, true, 2, id);
    kn_party_config cfg = {.open = true, .max_size = 2};
    kn_party_view v;
    assert_int_equal(kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "party limit per session reached (4)");
    assert_int_equal(kn_parties_count(f->ps), KN_PARTY_PER_SESSION);
}

/* --- closed parties: join requests ---------------------------------------------------- */

static void a_closed_party_turns_a_join_into_a_request_the_leader_accepts(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b");
    char id[37];
    create(f, &a, false, 4, id);
    forget(f);
    bool pending = false;
    assert_int_equal(join(f, &b, id, &pending), KN_OK);
    assert_true(pending);
    assert_int_equal(f->n_d, 0); /* not a member yet */
    assert_int_equal(f->n_notes, 1);
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_JOIN_REQUEST);
    assert_string_equal(f->notes[0].party_id, id);
    assert_string_equal(f->notes[0].user, "user-b");
    assert_int_equal(f->notes[0].n_to, 1);
    assert_int_equal(f->notes[0].to[0], 1);
    assert_int_equal(join(f, &b, id, &pending), KN_OK); /* asked again: no second note */
    assert_int_equal(f->n_notes, 1);

    kn_presence *reqs = NULL;
    size_t n = 0;
    assert_int_equal(kn_party_requests(f->ps, &b, id, &reqs, &n, f->msg, sizeof f->msg),
                     KN_ERR_NOT_FOUND); /* not a member */
    assert_int_equal(kn_party_requests(f->ps, &a, id, &reqs, &n, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(reqs[0].user_id, "user-b");
    kn_free(reqs);

    assert_int_equal(kn_party_accept(f->ps, &a, id, "user-c", "sess-c", f->msg, sizeof f->msg),
                     KN_ERR_NOT_FOUND);
    assert_string_equal(f->msg, "join request not found");
    forget(f);
    assert_int_equal(kn_party_accept(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(f->n_notes, 1); /* b learns it is in */
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_ACCEPTED);
    assert_string_equal(f->notes[0].user, "user-a"); /* the leader */
    assert_int_equal(f->notes[0].to[0], 2);
    assert_int_equal(f->n_d, 1); /* a hears of b's join */
    assert_int_equal(f->d[0].to[0], 1);
    kn_party_view v = view(f, id);
    assert_int_equal(v.n_members, 2);
    assert_string_equal(v.members[1].user_id, "user-b");
    kn_free(v.members);
    assert_int_equal(kn_party_requests(f->ps, &a, id, &reqs, &n, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(n, 0);
}

static void the_leader_rejects_a_request_by_removing_it(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b");
    char id[37];
    create(f, &a, false, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    forget(f);
    assert_int_equal(kn_party_remove(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(f->n_notes, 1);
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_REMOVED);
    assert_int_equal(f->notes[0].to[0], 2);
    assert_int_equal(kn_party_accept(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_ERR_NOT_FOUND);
}

/* --- the leader ----------------------------------------------------------------------- */

static void only_the_leader_accepts_removes_promotes_closes_and_lists(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c");
    char id[37];
    create(f, &a, false, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(kn_party_accept(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(join(f, &c, id, NULL), KN_OK);
    char *m = f->msg;
    size_t cap = sizeof f->msg;
    assert_int_equal(kn_party_accept(f->ps, &b, id, "user-c", "sess-c", m, cap),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(m, "only the party leader may accept join requests");
    assert_int_equal(kn_party_remove(f->ps, &b, id, "user-a", "sess-a", m, cap),
                     KN_ERR_PERMISSION_DENIED);
    assert_string_equal(m, "only the party leader may remove members");
    assert_int_equal(kn_party_promote(f->ps, &b, id, "user-b", "sess-b", m, cap),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_party_close(f->ps, &b, id, m, cap), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(m, "only the party leader may close the party");
    kn_presence *reqs = NULL;
    size_t n = 0;
    assert_int_equal(kn_party_requests(f->ps, &b, id, &reqs, &n, m, cap), KN_ERR_PERMISSION_DENIED);
    /* Outsiders learn nothing: not found. */
    assert_int_equal(kn_party_close(f->ps, &c, id, m, cap), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_party_remove(f->ps, &a, id, "user-a", "sess-a", m, cap),
                     KN_ERR_INVALID_ARGUMENT);
    kn_party_view v = view(f, id);
    assert_int_equal(v.n_members, 2);
    assert_string_equal(v.leader.user_id, "user-a");
    kn_free(v.members);
}

static void a_promotion_tells_every_member_and_moves_the_rights(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b");
    char id[37];
    create(f, &a, true, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    forget(f);
    assert_int_equal(kn_party_promote(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(f->n_notes, 1);
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_LEADER);
    assert_string_equal(f->notes[0].user, "user-b");
    assert_int_equal(f->notes[0].n_to, 2);
    assert_true(to_has(f->notes[0].to, 2, 1) && to_has(f->notes[0].to, 2, 2));
    assert_int_equal(kn_party_promote(f->ps, &a, id, "user-a", "sess-a", f->msg, sizeof f->msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_party_remove(f->ps, &b, id, "user-a", "sess-a", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(f->notes[1].kind, KN_PARTY_NOTE_REMOVED);
    assert_int_equal(f->notes[1].to[0], 1);
    kn_party_view v = view(f, id);
    assert_int_equal(v.n_members, 1);
    assert_string_equal(v.leader.user_id, "user-b");
    kn_free(v.members);
}

static void a_leaving_leader_hands_over_to_the_longest_present_member(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c");
    char id[37];
    create(f, &a, true, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(join(f, &c, id, NULL), KN_OK);
    forget(f);
    assert_int_equal(kn_party_leave(f->ps, &a, id, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(f->n_notes, 1);
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_LEADER);
    assert_string_equal(f->notes[0].user, "user-b");
    assert_int_equal(f->notes[0].n_to, 2);
    kn_party_view v = view(f, id);
    assert_string_equal(v.leader.user_id, "user-b");
    kn_free(v.members);
    /* A non-leader leaving before the leader keeps the leader. */
    assert_int_equal(join(f, &a, id, NULL), KN_OK);
    assert_int_equal(kn_party_leave(f->ps, &c, id, f->msg, sizeof f->msg), KN_OK);
    v = view(f, id);
    assert_string_equal(v.leader.user_id, "user-b");
    assert_int_equal(v.n_members, 2);
    kn_free(v.members);
}

static void closing_tells_everyone_and_ends_the_party_without_presence_events(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c");
    char id[37];
    create(f, &a, false, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(kn_party_accept(f->ps, &a, id, "user-b", "sess-b", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(join(f, &c, id, NULL), KN_OK); /* pending, dropped with the party */
    forget(f);
    assert_int_equal(kn_party_close(f->ps, &a, id, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(f->n_d, 0);
    assert_int_equal(f->n_notes, 1);
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_CLOSE);
    assert_int_equal(f->notes[0].n_to, 2);
    assert_int_equal(kn_parties_count(f->ps), 0);
    kn_party_view v;
    assert_int_equal(kn_party_get(f->ps, id, &v, f->msg, sizeof f->msg), KN_ERR_NOT_FOUND);
}

static void a_change_of_members_moves_the_version_the_leader_checks(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b");
    char id[37];
    create(f, &a, true, 4, id);
    kn_party_view v = view(f, id);
    kn_free(v.members);
    assert_int_equal(kn_party_check_leader(f->ps, &a, id, v.version, "x", f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(kn_party_check_leader(f->ps, &b, id, v.version, "x", f->msg, sizeof f->msg),
                     KN_ERR_NOT_FOUND);
    int changes = f->changes;
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(f->changes, changes + 1);
    assert_int_equal(kn_party_check_leader(f->ps, &b, id, v.version, "x", f->msg, sizeof f->msg),
                     KN_ERR_PERMISSION_DENIED);
    assert_int_equal(kn_party_check_leader(f->ps, &a, id, v.version, "x", f->msg, sizeof f->msg),
                     KN_ERR_ABORTED);
    assert_string_equal(f->msg, "party changed; retry");
}

static void listing_finds_open_visible_parties_by_label_best_first(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c"), d = who(4, "d");
    kn_party_view v;
    kn_party_config eu = {.open = true, .max_size = 4, .label = "{\"region\":\"eu\",\"skill\":5}"};
    kn_party_config us = {.open = true, .max_size = 4, .label = "{\"region\":\"us\"}"};
    kn_party_config closed = {.open = false, .max_size = 4, .label = eu.label};
    kn_party_config hidden = {.open = true, .max_size = 4, .label = eu.label, .hidden = true};
    assert_int_equal(kn_party_create(f->ps, &a, &eu, &v, f->msg, sizeof f->msg), KN_OK);
    char eu_id[37];
    snprintf(eu_id, sizeof eu_id, "%s", v.party_id);
    kn_free(v.members);
    assert_int_equal(kn_party_create(f->ps, &b, &us, &v, f->msg, sizeof f->msg), KN_OK);
    kn_free(v.members);
    assert_int_equal(kn_party_create(f->ps, &c, &closed, &v, f->msg, sizeof f->msg), KN_OK);
    kn_free(v.members);
    assert_int_equal(kn_party_create(f->ps, &d, &hidden, &v, f->msg, sizeof f->msg), KN_OK);
    kn_free(v.members);

    kn_party_view *list = NULL;
    size_t n = 0;
    assert_int_equal(kn_party_list(f->ps, "+region:eu", 0, &list, &n, f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(n, 1); /* not the closed one, not the hidden one */
    assert_string_equal(list[0].party_id, eu_id);
    assert_string_equal(list[0].leader.user_id, "user-a");
    kn_party_views_free(list, n);
    assert_int_equal(kn_party_list(f->ps, "region:eu^5", 10, &list, &n, f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(n, 2); /* both open, visible ones; the eu one first */
    assert_string_equal(list[0].party_id, eu_id);
    kn_party_views_free(list, n);
    assert_int_equal(kn_party_list(f->ps, NULL, 1, &list, &n, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(n, 1);
    kn_party_views_free(list, n);
    assert_int_equal(kn_party_list(f->ps, "+region", 0, &list, &n, f->msg, sizeof f->msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_party_list(f->ps, "*", 101, &list, &n, f->msg, sizeof f->msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(f->msg, "limit must be 1-100 (0 = 10)");
}

/* --- data and sessions ---------------------------------------------------------------- */

static void party_data_reaches_the_other_members_on_the_asked_channel(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c"), x = who(9, "x");
    char id[37];
    create(f, &a, true, 4, id);
    assert_int_equal(join(f, &b, id, NULL), KN_OK);
    assert_int_equal(join(f, &c, id, NULL), KN_OK);
    forget(f);
    const uint8_t bytes[] = {1, 2, 3};
    assert_int_equal(kn_party_send(f->ps, &b, id, bytes, 3, true, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(f->n_d, 1);
    assert_int_equal(f->d[0].n, 2);
    assert_true(to_has(f->d[0].to, 2, 1) && to_has(f->d[0].to, 2, 3));
    assert_int_equal(f->d[0].channel, KN_CHANNEL_CONTROL);
    assert_true(f->d[0].reliable);
    assert_memory_equal(f->d[0].data, bytes, 3);
    assert_int_equal(kn_party_send(f->ps, &b, id, bytes, 3, false, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(f->d[1].channel, KN_CHANNEL_MATCH_UNRELIABLE);
    assert_false(f->d[1].reliable);
    assert_int_equal(kn_party_send(f->ps, &x, id, bytes, 3, true, f->msg, sizeof f->msg),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(f->n_d, 2);
}

static void a_sessions_end_leaves_its_parties_and_drops_its_requests(void **state)
{
    fixture *f = *state;
    kn_presence a = who(1, "a"), b = who(2, "b"), c = who(3, "c");
    char open_id[37], closed_id[37], solo_id[37];
    create(f, &a, true, 4, open_id);
    create(f, &a, true, 4, solo_id);
    create(f, &c, false, 4, closed_id);
    assert_int_equal(join(f, &b, open_id, NULL), KN_OK);
    assert_int_equal(join(f, &a, closed_id, NULL), KN_OK); /* a request */
    forget(f);
    kn_parties_leave_conn(f->ps, 1);
    assert_int_equal(kn_parties_count(f->ps), 2); /* solo ended with a */
    kn_party_view v = view(f, open_id);
    assert_int_equal(v.n_members, 1);
    assert_string_equal(v.leader.user_id, "user-b");
    kn_free(v.members);
    kn_presence *reqs = NULL;
    size_t n = 9;
    assert_int_equal(kn_party_requests(f->ps, &c, closed_id, &reqs, &n, f->msg, sizeof f->msg),
                     KN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->n_notes, 1); /* b leads now */
    assert_int_equal(f->notes[0].kind, KN_PARTY_NOTE_LEADER);
}

/* --- the indexes ---------------------------------------------------------------------- */

/* A party led by a fresh session (conn) with this label; its id in id. */
static void labelled(fixture *f, kn_conn_id conn, bool open, bool hidden, const char *label,
                     char *id)
{
    char name[16];
    snprintf(name, sizeof name, "p%llu", (unsigned long long)conn);
    kn_presence lead = who(conn, name);
    kn_party_config cfg = {.open = open, .max_size = 4, .label = label, .hidden = hidden};
    kn_party_view v;
    assert_int_equal(kn_party_create(f->ps, &lead, &cfg, &v, f->msg, sizeof f->msg), KN_OK);
    if (id) snprintf(id, 37, "%s", v.party_id);
    kn_free(v.members);
}

static size_t listed(fixture *f, const char *query, kn_party_view **out)
{
    size_t n = 0;
    *out = NULL;
    assert_int_equal(kn_party_list(f->ps, query, 100, out, &n, f->msg, sizeof f->msg), KN_OK);
    return n;
}

static void a_listing_with_a_must_term_reads_only_that_labels_parties(void **state)
{
    fixture *f = *state;
    const char *ranked = "{\"mode\":\"ranked\",\"region\":\"eu\",\"voice\":true}";
    char first[37], last[37];
    kn_conn_id conn = 100;
    for (int i = 0; i < 200; i++)
        labelled(f, conn++, true, false, "{\"mode\":\"casual\"}", NULL);
    for (int i = 0; i < 20; i++) {
        labelled(f, conn++, true, true, ranked, NULL);   /* hidden */
        labelled(f, conn++, false, false, ranked, NULL); /* closed */
    }
    labelled(f, conn++, true, false, ranked, first);
    labelled(f, conn++, true, false, "{\"mode\":\"ranked\",\"region\":\"us\"}", NULL);
    labelled(f, conn++, true, false, ranked, last);
    labelled(f, conn++, true, false, "not json", NULL);
    kn_parties_stats st;
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.parties, 244);
    assert_int_equal(st.listable, 204);
    kn_party_view *l;
    /* The bucket of mode=ranked: three parties evaluated, newest first. */
    assert_int_equal(listed(f, "+label.mode:ranked", &l), 3);
    assert_string_equal(l[0].party_id, last);
    kn_party_views_free(l, 3);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.last_scanned, 3);
    assert_int_equal(listed(f, "+region:eu +mode:ranked region:us^9", &l), 2);
    kn_party_views_free(l, 2);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.last_scanned, 2); /* the bucket of region=eu */
    assert_int_equal(listed(f, "+voice:true", &l), 2);
    kn_party_views_free(l, 2);
    /* No must term: every listable party is evaluated, the boost ranks. */
    assert_int_equal(listed(f, "mode:ranked^5 region:us^9", &l), 100);
    assert_string_equal(l[1].party_id, last);
    assert_string_equal(l[2].party_id, first);
    kn_party_views_free(l, 100);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.last_scanned, 204);
    assert_int_equal(listed(f, "+mode:none", &l), 0);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.last_scanned, 0);
    /* A party that ends leaves its buckets. */
    kn_party_view v = view(f, first);
    assert_int_equal(kn_party_leave(f->ps, &v.leader, first, f->msg, sizeof f->msg), KN_OK);
    kn_free(v.members);
    assert_int_equal(listed(f, "+label.mode:ranked", &l), 2);
    kn_party_views_free(l, 2);
    assert_int_equal(listed(f, "+region:eu", &l), 1);
    assert_string_equal(l[0].party_id, last);
    kn_party_views_free(l, 1);
}

static void a_sessions_end_visits_only_its_own_parties(void **state)
{
    fixture *f = *state;
    for (kn_conn_id c = 100; c < 600; c++)
        labelled(f, c, true, false, NULL, NULL);
    kn_presence a = who(1, "a"), b = who(2, "b");
    char own[37], joined[37], asked[37];
    create(f, &a, true, 4, own);
    create(f, &b, true, 4, joined);
    create(f, &b, false, 4, asked);
    assert_int_equal(join(f, &a, joined, NULL), KN_OK);
    assert_int_equal(join(f, &a, asked, NULL), KN_OK); /* a request */
    kn_parties_stats st;
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.connections, 502);
    f->changes = 0;
    kn_parties_leave_conn(f->ps, 1);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.parties, 502); /* a's own party ended */
    assert_int_equal(st.connections, 501);
    assert_int_equal(f->changes, 2); /* own ended, joined lost a member; asked had no change */
    kn_party_view v = view(f, joined);
    assert_int_equal(v.n_members, 1);
    kn_free(v.members);
    /* b's end takes its two parties and nothing else. */
    kn_parties_leave_conn(f->ps, 2);
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.parties, 500);
    assert_int_equal(st.connections, 500);
    kn_parties_leave_conn(f->ps, 77); /* in nothing */
    kn_parties_stats_get(f->ps, &st);
    assert_int_equal(st.parties, 500);
}

/* --- allocation failures -------------------------------------------------------------- */

static int create_and_close(void *arg)
{
    fixture *f = arg;
    kn_presence a = who(1, "a");
    kn_party_config cfg = {.open = true, .max_size = 3, .label = "{\"mode\":\"x\"}"};
    kn_party_view v;
    int rc = kn_party_create(f->ps, &a, &cfg, &v, f->msg, sizeof f->msg);
    if (rc) {
        assert_int_equal(rc, KN_ERR_NOMEM);
        assert_int_equal(kn_parties_count(f->ps), 0);
        return -1;
    }
    kn_free(v.members);
    char id[37];
    snprintf(id, sizeof id, "%s", v.party_id);
    kn_presence b = who(2, "b");
    bool pending;
    rc = kn_party_join(f->ps, &b, id, &pending, &v, f->msg, sizeof f->msg);
    if (rc == KN_OK)
        kn_free(v.members);
    else
        assert_int_equal(rc, KN_ERR_NOMEM);
    assert_int_equal(kn_party_close(f->ps, &a, id, f->msg, sizeof f->msg), KN_OK);
    return rc ? -1 : 0;
}

static void create_and_join_survive_every_allocation_failure(void **state)
{
    fixture *f = *state;
    /* Once first, so the maps of the service and the tracker have grown
     * (a map's growth outlives the party, which is not a leak). */
    assert_int_equal(create_and_close(f), 0);
    assert_true(failalloc_sweep(create_and_close, f) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(listing_finds_open_visible_parties_by_label_best_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_change_of_members_moves_the_version_the_leader_checks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_party_has_its_creator_as_leader_and_only_member,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_bad_size_or_label_is_an_invalid_argument, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            joining_an_open_party_tells_the_members_and_the_last_leave_ends_it, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_party_refuses_a_join, setup, teardown),
        cmocka_unit_test_setup_teardown(a_session_is_in_a_limited_number_of_parties, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_closed_party_turns_a_join_into_a_request_the_leader_accepts, setup, teardown),
        cmocka_unit_test_setup_teardown(the_leader_rejects_a_request_by_removing_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(only_the_leader_accepts_removes_promotes_closes_and_lists,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_promotion_tells_every_member_and_moves_the_rights, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_leaving_leader_hands_over_to_the_longest_present_member,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            closing_tells_everyone_and_ends_the_party_without_presence_events, setup, teardown),
        cmocka_unit_test_setup_teardown(party_data_reaches_the_other_members_on_the_asked_channel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_sessions_end_leaves_its_parties_and_drops_its_requests,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_listing_with_a_must_term_reads_only_that_labels_parties,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_sessions_end_visits_only_its_own_parties, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(create_and_join_survive_every_allocation_failure, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
