/* Error table: names, texts and the mapping to stable wire codes. */
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void grpc_codes_map_to_themselves(void **state)
{
    for (int wire = 0; wire <= 16; wire++) {
        int err = kn_err_from_wire(wire);
        assert_int_equal(err, -wire);
        assert_int_equal(kn_err_to_wire(err), wire);
    }
}

static void internal_codes_map_to_public_ones(void **state)
{
    assert_int_equal(kn_err_to_wire(KN_ERR_NOMEM), 13);     /* INTERNAL */
    assert_int_equal(kn_err_to_wire(KN_ERR_DB), 14);        /* UNAVAILABLE */
    assert_int_equal(kn_err_to_wire(KN_ERR_MALFORMED), 3);  /* INVALID_ARGUMENT */
    assert_int_equal(kn_err_to_wire(KN_ERR_TOO_LARGE), 8);  /* RESOURCE_EXHAUSTED */
    assert_int_equal(kn_err_to_wire(KN_ERR_TOKEN_EXPIRED), 16);
    assert_int_equal(kn_err_to_wire(KN_ERR_TOKEN_INVALID), 16);
    assert_int_equal(kn_err_to_wire(KN_ERR_VERSION), 9);
}

static void names_and_texts_are_stable(void **state)
{
    assert_string_equal(kn_err_name(KN_ERR_NOT_FOUND), "NOT_FOUND");
    assert_string_equal(kn_err_text(KN_ERR_UNAUTHENTICATED), "unauthenticated");
    assert_string_equal(kn_err_name(KN_OK), "OK");
    assert_string_equal(kn_err_name(-9999), "UNKNOWN_ERROR_CODE");
    assert_int_equal(kn_err_to_wire(-9999), 2);
    assert_int_equal(kn_err_from_wire(99), KN_ERR_UNKNOWN);
    assert_int_equal(kn_err_from_wire(-1), KN_ERR_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grpc_codes_map_to_themselves),
        cmocka_unit_test(internal_codes_map_to_public_ones),
        cmocka_unit_test(names_and_texts_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
