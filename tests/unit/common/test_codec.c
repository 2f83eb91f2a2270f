/* Envelope codec: round trips for every message a client or server sends,
 * malformed bytes, unknown message types, and allocation failures. */
#include "failalloc.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static kn_envelope *roundtrip(const kn_envelope *env)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(kn_envelope_encode(env, &buf, &len), KN_OK);
    kn_envelope *out;
    assert_int_equal(kn_envelope_decode(buf, len, &out), KN_OK);
    kn_free(buf);
    return out;
}

static void auth_device_round_trips_with_vars(void **state)
{
    Kaos__V1__AuthenticateDevice__VarsEntry e = KAOS__V1__AUTHENTICATE_DEVICE__VARS_ENTRY__INIT;
    e.key = "region";
    e.value = "eu";
    Kaos__V1__AuthenticateDevice__VarsEntry *ev[] = {&e};
    Kaos__V1__AuthenticateDevice a = KAOS__V1__AUTHENTICATE_DEVICE__INIT;
    a.device_id = "device-0123456789";
    a.username = "alice";
    a.create = true;
    a.n_vars = 1;
    a.vars = ev;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 42;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE;
    env.authenticate_device = &a;
    kn_envelope *out = roundtrip(&env);
    assert_int_equal(out->cid, 42);
    assert_int_equal(out->message_case, KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE);
    assert_string_equal(out->authenticate_device->device_id, "device-0123456789");
    assert_string_equal(out->authenticate_device->username, "alice");
    assert_true(out->authenticate_device->create);
    assert_int_equal(out->authenticate_device->n_vars, 1);
    assert_string_equal(out->authenticate_device->vars[0]->key, "region");
    assert_string_equal(out->authenticate_device->vars[0]->value, "eu");
    kn_envelope_free(out);
}

static void match_data_round_trips_and_stays_small(void **state)
{
    uint8_t payload[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint32_t targets[] = {2, 3};
    Kaos__V1__MatchDataSend d = KAOS__V1__MATCH_DATA_SEND__INIT;
    d.match = 7;
    d.op_code = 3;
    d.data.data = payload;
    d.data.len = sizeof payload;
    d.n_targets = 2;
    d.targets = targets;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND;
    env.match_data_send = &d;
    kn_envelope *out = roundtrip(&env);
    assert_int_equal(out->match_data_send->match, 7);
    assert_int_equal(out->match_data_send->op_code, 3);
    assert_memory_equal(out->match_data_send->data.data, payload, sizeof payload);
    assert_int_equal(out->match_data_send->n_targets, 2);
    assert_int_equal(out->match_data_send->targets[1], 3);
    kn_envelope_free(out);

    /* The relayed copy: overhead on top of the payload is a few bytes. */
    Kaos__V1__MatchData md = KAOS__V1__MATCH_DATA__INIT;
    md.match = 7;
    md.sender = 2;
    md.op_code = 3;
    md.data.data = payload;
    md.data.len = sizeof payload;
    kn_envelope env2 = KN_ENVELOPE_INIT;
    env2.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA;
    env2.match_data = &md;
    assert_true(kn_envelope_packed_size(&env2) - sizeof payload <= 12);
}

static void error_and_session_round_trip(void **state)
{
    Kaos__V1__Error e = KAOS__V1__ERROR__INIT;
    e.code = KAOS__V1__ERROR_CODE__NOT_FOUND;
    e.message = "device not found";
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 9;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ERROR;
    env.error = &e;
    kn_envelope *out = roundtrip(&env);
    assert_int_equal(out->error->code, 5);
    assert_string_equal(out->error->message, "device not found");
    kn_envelope_free(out);

    Kaos__V1__Session s = KAOS__V1__SESSION__INIT;
    s.token = "t.o.k";
    s.refresh_token = "r.e.f";
    s.user_id = "u";
    s.created = true;
    kn_envelope env2 = KN_ENVELOPE_INIT;
    env2.cid = 10;
    env2.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION;
    env2.session = &s;
    out = roundtrip(&env2);
    assert_string_equal(out->session->token, "t.o.k");
    assert_string_equal(out->session->refresh_token, "r.e.f");
    assert_true(out->session->created);
    kn_envelope_free(out);
}

static void garbage_is_malformed(void **state)
{
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    kn_envelope *out = (kn_envelope *)1;
    assert_int_equal(kn_envelope_decode(junk, sizeof junk, &out), KN_ERR_MALFORMED);
    assert_null(out);
}

static void truncated_envelope_is_malformed(void **state)
{
    Kaos__V1__MatchJoin j = KAOS__V1__MATCH_JOIN__INIT;
    j.match_id = "0123456789abcdef0123456789abcdef.node";
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 3;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_JOIN;
    env.match_join = &j;
    uint8_t *buf;
    size_t len;
    assert_int_equal(kn_envelope_encode(&env, &buf, &len), KN_OK);
    kn_envelope *out;
    for (size_t cut = 1; cut < len; cut++) {
        int rc = kn_envelope_decode(buf, cut, &out);
        /* Cutting at a field boundary is a valid shorter envelope; anything
         * else must be rejected, never read past the end. */
        if (rc == KN_OK) kn_envelope_free(out);
        else assert_int_equal(rc, KN_ERR_MALFORMED);
    }
    assert_int_equal(kn_envelope_decode(buf, len - 1, &out), KN_ERR_MALFORMED);
    kn_free(buf);
}

static void unknown_message_type_decodes_as_not_set(void **state)
{
    /* field 99, length-delimited, empty: a message type from a newer client */
    const uint8_t bytes[] = {0x08, 0x05, 0x9a, 0x06, 0x00};
    kn_envelope *out;
    assert_int_equal(kn_envelope_decode(bytes, sizeof bytes, &out), KN_OK);
    assert_int_equal(out->cid, 5);
    assert_int_equal(out->message_case, KAOS__V1__ENVELOPE__MESSAGE__NOT_SET);
    assert_string_equal(kn_envelope_type_name(out->message_case), "unknown");
    kn_envelope_free(out);
    assert_string_equal(kn_envelope_type_name(KAOS__V1__ENVELOPE__MESSAGE_PING), "ping");
}

/* Found by fuzz_envelope: an unknown field numbered 0 used to survive
 * decoding and re-encode into bytes that no longer decoded. */
static void unknown_fields_are_dropped_so_reencoding_is_canonical(void **state)
{
    const uint8_t bytes[] = {0xc2, 0x05, 0x00, 0x81, 0x00, 0x10, 0x22, 0x02,
                             0x08, 0x01, 0x22, 0x62, 0x02, 0x08, 0x01};
    kn_envelope *env;
    assert_int_equal(kn_envelope_decode(bytes, sizeof bytes, &env), KN_OK);
    assert_int_equal(env->base.n_unknown_fields, 0);
    kn_envelope *again = roundtrip(env);
    assert_int_equal(again->cid, env->cid);
    kn_envelope_free(again);
    kn_envelope_free(env);
}

static int decode_once(void *arg)
{
    const uint8_t bytes[] = {0x08, 0x05, 0x1a, 0x02, 0x08, 0x07};
    kn_envelope *out;
    int rc = kn_envelope_decode(bytes, sizeof bytes, &out);
    kn_envelope_free(out);
    return rc;
}

static void decode_survives_every_allocation_failure(void **state)
{
    assert_true(failalloc_sweep(decode_once, NULL) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth_device_round_trips_with_vars),
        cmocka_unit_test(match_data_round_trips_and_stays_small),
        cmocka_unit_test(error_and_session_round_trip),
        cmocka_unit_test(garbage_is_malformed),
        cmocka_unit_test(truncated_envelope_is_malformed),
        cmocka_unit_test(unknown_message_type_decodes_as_not_set),
        cmocka_unit_test(unknown_fields_are_dropped_so_reencoding_is_canonical),
        cmocka_unit_test(decode_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
