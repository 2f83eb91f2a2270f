/* kn_json, through its header only: parse errors carry jansson's message and
 * position, every flag the server relies on does what it says (duplicates,
 * non-container documents, compact and sorted dumps), text round-trips byte
 * for byte, and the constructors, accessors and containers keep jansson's
 * ownership rules (run under ASan, a leak or double free fails). */
#include "kn_json.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static kn_json *parse(const char *text, unsigned flags, kn_json_error *err)
{
    return kn_json_parse(text, strlen(text), flags, err);
}

/* Dumps v with flags and checks the text, then frees it. */
static void assert_dump(const kn_json *v, unsigned flags, const char *want)
{
    char *txt = kn_json_dump(v, flags);
    assert_non_null(txt);
    assert_string_equal(txt, want);
    kn_json_free_text(txt);
}

static void parse_errors_carry_a_message_and_a_position(void **state)
{
    (void)state;
    kn_json_error err;
    memset(&err, 0, sizeof err);
    assert_null(parse("{\"a\": }", 0, &err));
    assert_true(strlen(err.text) > 0);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.position, 7);

    memset(&err, 0, sizeof err);
    assert_null(parse("{\"a\":1,\n\"b\":", 0, &err));
    assert_true(strlen(err.text) > 0);
    assert_int_equal(err.line, 2);

    /* err may be NULL when the caller only needs yes or no. */
    assert_null(parse("nope", 0, NULL));
}

static void duplicate_keys_are_refused_only_when_asked(void **state)
{
    (void)state;
    kn_json *v = parse("{\"a\":1,\"a\":2}", 0, NULL);
    assert_non_null(v);
    assert_int_equal(kn_json_integer_value(kn_json_object_get(v, "a")), 2); /* the last wins */
    kn_json_decref(v);

    kn_json_error err;
    assert_null(parse("{\"a\":1,\"a\":2}", KN_JSON_REJECT_DUPLICATES, &err));
    assert_non_null(strstr(err.text, "duplicate"));
}

static void bare_values_need_decode_any_and_encode_any(void **state)
{
    (void)state;
    assert_null(parse("42", 0, NULL));
    kn_json *v = parse("42", KN_JSON_DECODE_ANY, NULL);
    assert_true(kn_json_is_integer(v));
    assert_null(kn_json_dump(v, KN_JSON_COMPACT));
    assert_dump(v, KN_JSON_COMPACT | KN_JSON_ENCODE_ANY, "42");
    kn_json_decref(v);

    /* NUL inside a string is never accepted (jsonb cannot store it). */
    assert_null(parse("{\"a\":\"x\\u0000y\"}", 0, NULL));
}

static void text_round_trips_byte_for_byte_and_sorted_keys_sort(void **state)
{
    (void)state;
    const char *text = "{\"b\":1,\"a\":[true,false,null,1.5,\"x\\\"y\",-7],\"c\":{\"z\":\"é\"}}";
    kn_json *v = parse(text, KN_JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(v);
    assert_dump(v, KN_JSON_COMPACT, text); /* insertion order, UTF-8 as it came */
    assert_dump(v, KN_JSON_COMPACT | KN_JSON_SORT_KEYS,
                "{\"a\":[true,false,null,1.5,\"x\\\"y\",-7],\"b\":1,\"c\":{\"z\":\"é\"}}");
    kn_json_decref(v);
}

typedef struct collect {
    char buf[256];
    size_t len;
    int calls;
    int fail_at; /* refuse the n-th piece (1-based); 0 = never */
} collect;

static int sink(const char *piece, size_t len, void *ud)
{
    collect *c = ud;
    if (++c->calls == c->fail_at) return -1;
    assert_true(c->len + len < sizeof c->buf);
    memcpy(c->buf + c->len, piece, len);
    c->len += len;
    return 0;
}

static void streamed_dump_equals_the_dump_and_stops_when_the_sink_refuses(void **state)
{
    (void)state;
    kn_json *v = parse("{\"b\":[1,2],\"a\":{\"k\":\"v\"}}", 0, NULL);
    collect c = {.fail_at = 0};
    assert_int_equal(kn_json_dump_to(v, KN_JSON_COMPACT | KN_JSON_SORT_KEYS, sink, &c), 0);
    assert_true(c.calls > 1); /* really in pieces */
    c.buf[c.len] = '\0';
    assert_string_equal(c.buf, "{\"a\":{\"k\":\"v\"},\"b\":[1,2]}");

    /* Refusing any piece fails the dump, and no piece comes after it. */
    for (int at = 1; at <= c.calls; at++) {
        collect refuse = {.fail_at = at};
        assert_int_equal(kn_json_dump_to(v, KN_JSON_COMPACT, sink, &refuse), -1);
        assert_int_equal(refuse.calls, at);
    }
    kn_json_decref(v);
}

static void built_values_dump_as_expected_and_setters_take_ownership(void **state)
{
    (void)state;
    kn_json *o = kn_json_object();
    assert_int_equal(kn_json_object_set_new(o, "s", kn_json_string("hi")), 0);
    assert_int_equal(kn_json_object_set_new(o, "i", kn_json_integer(INT64_MIN)), 0);
    assert_int_equal(kn_json_object_set_new(o, "r", kn_json_real(0.25)), 0);
    assert_int_equal(kn_json_object_set_new(o, "t", kn_json_boolean(true)), 0);
    assert_int_equal(kn_json_object_set_new(o, "n", kn_json_null()), 0);
    kn_json *a = kn_json_array();
    assert_int_equal(kn_json_array_append_new(a, kn_json_stringn("a\0b", 3)), 0);
    assert_int_equal(kn_json_array_append_new(a, kn_json_boolean(false)), 0);
    assert_int_equal(kn_json_object_set_new(o, "a", a), 0);
    assert_dump(o, KN_JSON_COMPACT,
                "{\"s\":\"hi\",\"i\":-9223372036854775808,\"r\":0.25,\"t\":true,\"n\":null,"
                "\"a\":[\"a\\u0000b\",false]}");

    /* Failing setters still take (and release) the value. */
    assert_int_equal(kn_json_object_set_new(o, "x", NULL), -1);
    assert_int_equal(kn_json_object_set_new(o, "\xff", kn_json_integer(1)), -1);
    assert_int_equal(kn_json_array_append_new(o, kn_json_integer(1)), -1);
    assert_int_equal(kn_json_object_size(o), 6);

    /* Constructors refuse what JSON cannot hold. */
    assert_null(kn_json_string("\xc3("));
    assert_null(kn_json_string(NULL));
    assert_null(kn_json_real(NAN));
    assert_null(kn_json_real(INFINITY));
    kn_json_decref(o);
}

static void accessors_and_predicates_follow_the_type(void **state)
{
    (void)state;
    kn_json *v = parse("{\"s\":\"a\\u00e9\",\"i\":3,\"r\":2.5,\"t\":true,\"f\":false,\"n\":null,"
                       "\"a\":[10,20]}",
                       0, NULL);
    kn_json *s = kn_json_object_get(v, "s"), *i = kn_json_object_get(v, "i");
    kn_json *r = kn_json_object_get(v, "r"), *a = kn_json_object_get(v, "a");
    assert_int_equal(kn_json_typeof(s), KN_JSON_STRING);
    assert_string_equal(kn_json_string_value(s), "a\xc3\xa9");
    assert_int_equal(kn_json_string_length(s), 3);
    assert_int_equal(kn_json_integer_value(i), 3);
    assert_true(kn_json_number_value(i) == 3.0);
    assert_true(kn_json_real_value(r) == 2.5 && kn_json_number_value(r) == 2.5);
    assert_true(kn_json_is_number(i) && kn_json_is_number(r) && !kn_json_is_integer(r));
    assert_true(kn_json_is_true(kn_json_object_get(v, "t")));
    assert_true(kn_json_is_false(kn_json_object_get(v, "f")));
    assert_true(kn_json_is_boolean(kn_json_object_get(v, "f")));
    assert_true(kn_json_is_null(kn_json_object_get(v, "n")));
    assert_true(kn_json_is_array(a) && kn_json_array_size(a) == 2);
    assert_int_equal(kn_json_integer_value(kn_json_array_get(a, 1)), 20);
    assert_null(kn_json_array_get(a, 2));

    /* A missing member is no type, and accessors of the wrong type give 0. */
    kn_json *missing = kn_json_object_get(v, "nope");
    assert_null(missing);
    assert_false(kn_json_is_object(missing) || kn_json_is_string(missing) ||
                 kn_json_is_null(missing));
    assert_null(kn_json_string_value(i));
    assert_int_equal(kn_json_integer_value(s), 0);
    assert_int_equal(kn_json_object_size(a), 0);
    assert_null(kn_json_object_get(a, "x"));
    kn_json_decref(v);
}

static void iteration_follows_insertion_order(void **state)
{
    (void)state;
    kn_json *v = parse("{\"z\":1,\"a\":2,\"m\":3}", 0, NULL);
    const char *want[] = {"z", "a", "m"};
    const char *key;
    kn_json *val;
    int n = 0;
    kn_json_object_foreach(v, key, val)
    {
        assert_string_equal(key, want[n]);
        assert_int_equal(kn_json_integer_value(val), n + 1);
        n++;
    }
    assert_int_equal(n, 3);

    kn_json *empty = kn_json_object();
    kn_json_object_foreach(empty, key, val) fail();
    kn_json_decref(empty);
    kn_json_decref(v);
}

static void references_count_and_equality_ignores_key_order(void **state)
{
    (void)state;
    kn_json *a = parse("{\"x\":[1,{\"y\":null}],\"z\":\"w\"}", 0, NULL);
    kn_json *b = parse("{\"z\":\"w\",\"x\":[1,{\"y\":null}]}", 0, NULL);
    kn_json *c = parse("{\"z\":\"w\",\"x\":[1,{\"y\":false}]}", 0, NULL);
    assert_true(kn_json_equal(a, b));
    assert_false(kn_json_equal(a, c));
    assert_false(kn_json_equal(a, NULL));

    /* One more reference: the value outlives the first release. */
    assert_ptr_equal(kn_json_incref(a), a);
    kn_json_decref(a);
    assert_true(kn_json_equal(a, b));
    kn_json_decref(a);
    kn_json_decref(b);
    kn_json_decref(c);
    kn_json_decref(NULL);
    assert_null(kn_json_incref(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_errors_carry_a_message_and_a_position),
        cmocka_unit_test(duplicate_keys_are_refused_only_when_asked),
        cmocka_unit_test(bare_values_need_decode_any_and_encode_any),
        cmocka_unit_test(text_round_trips_byte_for_byte_and_sorted_keys_sort),
        cmocka_unit_test(streamed_dump_equals_the_dump_and_stops_when_the_sink_refuses),
        cmocka_unit_test(built_values_dump_as_expected_and_setters_take_ownership),
        cmocka_unit_test(accessors_and_predicates_follow_the_type),
        cmocka_unit_test(iteration_follows_insertion_order),
        cmocka_unit_test(references_count_and_equality_ignores_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
