/* Relayed matches on a tracker with a recording sink: membership, presence
 * events, fan-out to all or to targets, limits, and the match vanishing
 * when empty. */
#include "failalloc.h"
#include "kn_codec.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_relay.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define MAX_SENT 64

typedef struct sent {
    kn_relay_conn to;
    uint8_t channel;
    bool reliable;
    kn_envelope *env;
} sent;

typedef struct recorder {
    sent items[MAX_SENT];
    size_t n;
    bool count_only; /* allocation-failure runs: decoding would allocate too */
} recorder;

static int record(void *ud, const kn_relay_conn *conns, size_t n, uint8_t channel,
                  const uint8_t *data, size_t len, bool reliable)
{
    recorder *r = ud;
    for (size_t i = 0; i < n; i++) {
        assert_true(r->n < MAX_SENT);
        sent *s = &r->items[r->n++];
        s->to = conns[i];
        s->channel = channel;
        s->reliable = reliable;
        s->env = NULL;
        if (!r->count_only) assert_int_equal(kn_envelope_decode(data, len, &s->env), KN_OK);
    }
    return KN_OK;
}

static void reset(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        kn_envelope_free(r->items[i].env);
    r->n = 0;
}

static kn_relay_config config(void)
{
    return (kn_relay_config){.node = "n1",
                             .default_size = 4,
                             .max_size = 8,
                             .max_matches_per_conn = 2,
                             .max_message_size = 1024};
}

static kn_relay_member player(kn_relay_conn conn, const char *name)
{
    kn_relay_member m;
    memset(&m, 0, sizeof m);
    m.conn = conn;
    snprintf(m.user_id, sizeof m.user_id, "user-%s", name);
    snprintf(m.session_id, sizeof m.session_id, "sess-%s", name);
    snprintf(m.username, sizeof m.username, "%s", name);
    return m;
}

typedef struct fixture {
    recorder rec;
    kn_tracker *tracker;
    kn_relay *relay;
} fixture;

/* A tracker with the recording sink and a relay on it. */
static int open_relay(recorder *rec, kn_tracker **t, kn_relay **r)
{
    kn_relay_config c = config();
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {record, rec};
    int rc = kn_tracker_create(&tc, &sink, t);
    if (rc) return rc;
    rc = kn_relay_create(&c, *t, r);
    if (rc) {
        kn_tracker_destroy(*t);
        *t = NULL;
    }
    return rc;
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(open_relay(&f.rec, &f.tracker, &f.relay), KN_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    reset(&f->rec);
    kn_relay_destroy(f->relay);
    kn_tracker_destroy(f->tracker);
    return 0;
}

static void create_then_join_sends_presence_to_the_others(void **state)
{
    fixture *f = *state;
    kn_relay_member a = player(1, "a"), b = player(2, "b");
    kn_relay_joined j;
    char msg[128];
    assert_int_equal(kn_relay_match_create(f->relay, &a, 0, &j, msg, sizeof msg), KN_OK);
    assert_int_equal(j.size, 1);
    assert_int_equal(j.max_size, 4);
    assert_int_equal(j.other_count, 0);
    assert_non_null(strstr(j.match_id, ".n1"));
    char id[128];
    strcpy(id, j.match_id);
    uint32_t handle = j.handle, a_slot = j.self.slot;

    assert_int_equal(kn_relay_match_join(f->relay, id, &b, &j, msg, sizeof msg), KN_OK);
    assert_int_equal(j.handle, handle);
    assert_int_equal(j.size, 2);
    assert_int_equal(j.other_count, 1);
    assert_int_equal(j.others[0].slot, a_slot);
    assert_string_equal(j.others[0].username, "a");
    assert_int_not_equal(j.self.slot, a_slot);
    kn_relay_joined_deinit(&j);

    assert_int_equal(f->rec.n, 1); /* a learns that b joined */
    sent *s = &f->rec.items[0];
    assert_int_equal(s->to, 1);
    assert_true(s->reliable);
    assert_int_equal(s->channel, KN_CHANNEL_CONTROL);
    assert_int_equal(s->env->message_case, KAOS__V1__ENVELOPE__MESSAGE_MATCH_PRESENCE);
    assert_int_equal(s->env->match_presence->n_joins, 1);
    assert_string_equal(s->env->match_presence->joins[0]->user_id, "user-b");
}

static void data_reaches_others_or_only_targets_on_senders_channel(void **state)
{
    fixture *f = *state;
    kn_relay_member a = player(1, "a"), b = player(2, "b"), c = player(3, "c");
    kn_relay_joined j;
    char msg[128];
    assert_int_equal(kn_relay_match_create(f->relay, &a, 0, &j, msg, sizeof msg), KN_OK);
    char id[128];
    strcpy(id, j.match_id);
    uint32_t h = j.handle, a_slot = j.self.slot;
    assert_int_equal(kn_relay_match_join(f->relay, id, &b, &j, msg, sizeof msg), KN_OK);
    kn_relay_joined_deinit(&j);
    assert_int_equal(kn_relay_match_join(f->relay, id, &c, &j, msg, sizeof msg), KN_OK);
    kn_relay_joined_deinit(&j);
    uint32_t c_slot = j.self.slot;
    reset(&f->rec);

    const uint8_t payload[] = "pew";
    assert_int_equal(
        kn_relay_data(f->relay, h, 1, 5, payload, 3, NULL, 0, KN_CHANNEL_MATCH_UNRELIABLE, false),
        KN_OK);
    assert_int_equal(f->rec.n, 2);
    for (size_t i = 0; i < 2; i++) {
        sent *s = &f->rec.items[i];
        assert_true(s->to == 2 || s->to == 3);
        assert_false(s->reliable);
        assert_int_equal(s->channel, KN_CHANNEL_MATCH_UNRELIABLE);
        assert_int_equal(s->env->match_data->sender, a_slot);
        assert_int_equal(s->env->match_data->op_code, 5);
        assert_memory_equal(s->env->match_data->data.data, "pew", 3);
    }
    reset(&f->rec);

    uint32_t targets[] = {c_slot};
    assert_int_equal(
        kn_relay_data(f->relay, h, 1, 6, payload, 3, targets, 1, KN_CHANNEL_MATCH_RELIABLE, true),
        KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.items[0].to, 3);
    assert_true(f->rec.items[0].reliable);
}

static void non_member_cannot_send_or_leave(void **state)
{
    fixture *f = *state;
    kn_relay_member a = player(1, "a");
    kn_relay_joined j;
    char msg[128];
    assert_int_equal(kn_relay_match_create(f->relay, &a, 2, &j, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_relay_data(f->relay, j.handle, 9, 1, NULL, 0, NULL, 0, 1, true),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_relay_match_leave(f->relay, j.handle, 9), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_relay_data(f->relay, 12345, 1, 1, NULL, 0, NULL, 0, 1, true),
                     KN_ERR_NOT_FOUND);
}

static void full_match_and_bad_sizes_are_refused(void **state)
{
    fixture *f = *state;
    kn_relay_member a = player(1, "a"), b = player(2, "b"), c = player(3, "c");
    kn_relay_joined j;
    char msg[128];
    assert_int_equal(kn_relay_match_create(f->relay, &a, 9, &j, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_relay_match_create(f->relay, &a, 1, &j, msg, sizeof msg),
                     KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_relay_match_create(f->relay, &a, 2, &j, msg, sizeof msg), KN_OK);
    char id[128];
    strcpy(id, j.match_id);
    assert_int_equal(kn_relay_match_join(f->relay, id, &a, &j, msg, sizeof msg),
                     KN_ERR_ALREADY_EXISTS);
    assert_int_equal(kn_relay_match_join(f->relay, id, &b, &j, msg, sizeof msg), KN_OK);
    kn_relay_joined_deinit(&j);
    assert_int_equal(kn_relay_match_join(f->relay, id, &c, &j, msg, sizeof msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
    assert_int_equal(kn_relay_match_join(f->relay, "nope.n1", &c, &j, msg, sizeof msg),
                     KN_ERR_NOT_FOUND);
    /* per-connection cap (2) */
    assert_int_equal(kn_relay_match_create(f->relay, &a, 0, &j, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_relay_match_create(f->relay, &a, 0, &j, msg, sizeof msg),
                     KN_ERR_RESOURCE_EXHAUSTED);
}

static void leaving_tells_the_rest_and_empty_match_disappears(void **state)
{
    fixture *f = *state;
    kn_relay_member a = player(1, "a"), b = player(2, "b");
    kn_relay_joined j;
    char msg[128];
    assert_int_equal(kn_relay_match_create(f->relay, &a, 0, &j, msg, sizeof msg), KN_OK);
    char id[128];
    strcpy(id, j.match_id);
    uint32_t h = j.handle;
    assert_int_equal(kn_relay_match_join(f->relay, id, &b, &j, msg, sizeof msg), KN_OK);
    kn_relay_joined_deinit(&j);
    uint32_t b_slot = j.self.slot;
    reset(&f->rec);
    assert_int_equal(kn_relay_match_leave(f->relay, h, 2), KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.items[0].to, 1);
    assert_int_equal(f->rec.items[0].env->match_presence->n_leaves, 1);
    assert_int_equal(f->rec.items[0].env->match_presence->leaves[0]->slot, b_slot);
    assert_int_equal(kn_relay_match_count(f->relay), 1);
    kn_tracker_untrack_all(f->tracker, 1); /* a's session ended */
    assert_int_equal(kn_relay_match_count(f->relay), 0);
    assert_int_equal(kn_relay_match_join(f->relay, id, &b, &j, msg, sizeof msg), KN_ERR_NOT_FOUND);
}

static int relay_lifecycle(void *arg)
{
    static recorder rec;
    memset(&rec, 0, sizeof rec);
    rec.count_only = true;
    kn_tracker *t;
    kn_relay *r;
    int rc = open_relay(&rec, &t, &r);
    if (rc) return rc;
    kn_relay_member a = player(1, "a"), b = player(2, "b");
    kn_relay_joined j;
    char msg[128];
    char id[128] = "";
    rc = kn_relay_match_create(r, &a, 0, &j, msg, sizeof msg);
    if (rc == KN_OK) {
        strcpy(id, j.match_id);
        kn_relay_joined_deinit(&j);
        rc = kn_relay_match_join(r, id, &b, &j, msg, sizeof msg);
        kn_relay_joined_deinit(&j);
    }
    kn_tracker_untrack_all(t, 1);
    kn_tracker_untrack_all(t, 2);
    kn_relay_destroy(r);
    kn_tracker_destroy(t);
    reset(&rec);
    return rc;
}

static void create_and_join_survive_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(relay_lifecycle, NULL) > 4);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_then_join_sends_presence_to_the_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(data_reaches_others_or_only_targets_on_senders_channel,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(non_member_cannot_send_or_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(full_match_and_bad_sizes_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(leaving_tells_the_rest_and_empty_match_disappears, setup,
                                        teardown),
        cmocka_unit_test(create_and_join_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
