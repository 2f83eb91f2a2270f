/* Envelope bodies as JSON for hooks: every field present, maps as objects,
 * bytes as base64, a round trip rebuilds the same message, bad JSON names
 * the field, op names resolve in their spellings, nothing leaks on OOM. */
#include "failalloc.h"
#include "kn_codec.h"
#include "kn_codec_json.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

/* A decoded AuthenticateDevice with two vars. */
static kn_envelope *device_request(void)
{
    Kaos__V1__AuthenticateDevice a = KAOS__V1__AUTHENTICATE_DEVICE__INIT;
    Kaos__V1__AuthenticateDevice__VarsEntry e1 = KAOS__V1__AUTHENTICATE_DEVICE__VARS_ENTRY__INIT,
                                            e2 = KAOS__V1__AUTHENTICATE_DEVICE__VARS_ENTRY__INIT;
    e1.key = "platform";
    e1.value = "linux";
    e2.key = "build";
    e2.value = "42";
    Kaos__V1__AuthenticateDevice__VarsEntry *vars[] = {&e1, &e2};
    a.device_id = "device-0123456789";
    a.create = 1;
    a.n_vars = 2;
    a.vars = vars;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 7;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE;
    env.authenticate_device = &a;
    uint8_t *buf;
    size_t n;
    assert_int_equal(kn_envelope_encode(&env, &buf, &n), KN_OK);
    kn_envelope *out;
    assert_int_equal(kn_envelope_decode(buf, n, &out), KN_OK);
    kn_free(buf);
    return out;
}

static void op_names_resolve_in_every_spelling(void **state)
{
    assert_int_equal(kn_envelope_case_by_name("authenticate_device"),
                     KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE);
    assert_int_equal(kn_envelope_case_by_name("AuthenticateDevice"),
                     KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE);
    assert_int_equal(kn_envelope_case_by_name("RPC"), KAOS__V1__ENVELOPE__MESSAGE_RPC);
    assert_int_equal(kn_envelope_case_by_name("nope"), 0);
    assert_int_equal(kn_envelope_case_by_name(""), 0);
    assert_int_equal(kn_envelope_case_by_name("cid"), 0); /* a field, not a message */
}

static void a_body_becomes_json_with_every_field(void **state)
{
    kn_envelope *env = device_request();
    char *json;
    size_t n;
    assert_int_equal(kn_envelope_body_to_json(env, &json, &n), KN_OK);
    assert_int_equal(strlen(json), n);
    assert_string_equal(json, "{\"device_id\":\"device-0123456789\",\"username\":\"\",\"create\":true,"
                              "\"vars\":{\"platform\":\"linux\",\"build\":\"42\"}}");
    kn_free(json);
    kn_envelope_free(env);

    /* bytes as base64, repeated numbers as arrays */
    Kaos__V1__MatchDataSend d = KAOS__V1__MATCH_DATA_SEND__INIT;
    uint32_t targets[] = {1, 3};
    d.match = 5;
    d.op_code = -2;
    d.data.data = (uint8_t *)"\x01\x02\xff";
    d.data.len = 3;
    d.targets = targets;
    d.n_targets = 2;
    kn_envelope e2 = KN_ENVELOPE_INIT;
    e2.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND;
    e2.match_data_send = &d;
    assert_int_equal(kn_envelope_body_to_json(&e2, &json, &n), KN_OK);
    assert_non_null(strstr(json, "\"data\":\"AQL/\""));
    assert_non_null(strstr(json, "\"targets\":[1,3]"));
    assert_non_null(strstr(json, "\"op_code\":-2"));
    kn_free(json);
}

static void json_rebuilds_the_body_and_the_envelope_encodes(void **state)
{
    kn_envelope *env = device_request();
    char msg[200];
    const char *in = "{\"device_id\":\"other-device-99\",\"create\":false,"
                     "\"vars\":{\"a\":\"1\"},\"username\":null}";
    assert_int_equal(kn_envelope_body_from_json(env, in, strlen(in), msg, sizeof msg), KN_OK);
    assert_string_equal(env->authenticate_device->device_id, "other-device-99");
    assert_false(env->authenticate_device->create);
    assert_int_equal(env->authenticate_device->n_vars, 1);
    assert_string_equal(env->authenticate_device->vars[0]->value, "1");
    assert_string_equal(env->authenticate_device->username, ""); /* left out: default */
    uint8_t *buf;
    size_t n;
    assert_int_equal(kn_envelope_encode(env, &buf, &n), KN_OK);
    kn_envelope *back;
    assert_int_equal(kn_envelope_decode(buf, n, &back), KN_OK);
    assert_string_equal(back->authenticate_device->device_id, "other-device-99");
    kn_free(buf);
    kn_envelope_free(back);
    /* An empty Lua table arrives as {} or [] for a map: both mean empty. */
    in = "{\"vars\":[]}";
    assert_int_equal(kn_envelope_body_from_json(env, in, strlen(in), msg, sizeof msg), KN_OK);
    assert_int_equal(env->authenticate_device->n_vars, 0);
    kn_envelope_free(env);
}

static void bad_json_names_the_field_and_changes_nothing(void **state)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{\"device_idd\":\"x\"}", "device_idd: unknown field"},
        {"{\"create\":1}", "create: expected a boolean"},
        {"{\"device_id\":5}", "device_id: expected a string"},
        {"{\"vars\":{\"a\":5}}", "vars: expected a string"},
        {"{\"vars\":[1]}", "vars: expected an object"},
        {"[1,2]", "expected an object for AuthenticateDevice"},
        {"{", "invalid JSON"},
    };
    kn_envelope *env = device_request();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[200] = "";
        assert_int_equal(kn_envelope_body_from_json(env, cases[i].json, strlen(cases[i].json), msg,
                                                    sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
        if (!strstr(msg, cases[i].msg)) fail_msg("%s: got \"%s\"", cases[i].json, msg);
        assert_string_equal(env->authenticate_device->device_id, "device-0123456789");
    }
    kn_envelope_free(env);

    Kaos__V1__MatchDataSend d = KAOS__V1__MATCH_DATA_SEND__INIT;
    kn_envelope e2 = KN_ENVELOPE_INIT;
    e2.message_case = KAOS__V1__ENVELOPE__MESSAGE_MATCH_DATA_SEND;
    e2.match_data_send = &d;
    char msg[200];
    const char *bad[] = {"{\"match\":-1}", "{\"match\":4294967296}", "{\"targets\":[1,\"x\"]}",
                         "{\"data\":\"***\"}"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(kn_envelope_body_from_json(&e2, bad[i], strlen(bad[i]), msg, sizeof msg),
                         KN_ERR_INVALID_ARGUMENT);
    assert_ptr_equal(e2.match_data_send, &d); /* untouched */
}

typedef struct packed {
    uint8_t *buf;
    size_t len;
} packed;

static int convert_both_ways(void *arg)
{
    packed *p = arg;
    kn_envelope *env;
    int rc = kn_envelope_decode(p->buf, p->len, &env);
    if (rc) return rc;
    char *json = NULL, msg[100];
    size_t n;
    rc = kn_envelope_body_to_json(env, &json, &n);
    if (!rc) rc = kn_envelope_body_from_json(env, json, n, msg, sizeof msg);
    kn_free(json);
    kn_envelope_free(env);
    return rc;
}

static void conversions_clean_up_after_every_allocation_failure(void **state)
{
    kn_envelope *env = device_request();
    packed p;
    assert_int_equal(kn_envelope_encode(env, &p.buf, &p.len), KN_OK);
    kn_envelope_free(env);
    assert_true(failalloc_sweep(convert_both_ways, &p) > 10);
    kn_free(p.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(op_names_resolve_in_every_spelling),
        cmocka_unit_test(a_body_becomes_json_with_every_field),
        cmocka_unit_test(json_rebuilds_the_body_and_the_envelope_encodes),
        cmocka_unit_test(bad_json_names_the_field_and_changes_nothing),
        cmocka_unit_test(conversions_clean_up_after_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
