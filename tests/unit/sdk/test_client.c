/* SDK client without a server: local argument and configuration errors
 * (the server key and the insecure modes), and the fail-every-allocation
 * sweep over create + connect + destroy. */
#include "kaos.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static long fail_at = -1, count, live;

/* Any well-formed key will do: nothing here gets as far as the handshake. */
static const char some_key[] = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";

static void *t_alloc(void *ud, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) live++;
    return p;
}

static void *t_realloc(void *ud, void *ptr, size_t size)
{
    if (count++ == fail_at) return NULL;
    void *p = realloc(ptr, size ? size : 1);
    if (p && !ptr) live++;
    return p;
}

static void t_free(void *ud, void *ptr)
{
    if (ptr) live--;
    free(ptr);
}

static void requests_fail_locally_when_not_connected_or_too_large(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1; /* nobody listens */
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_false(kaos_client_is_connected(c));
    assert_null(kaos_client_session(c));
    assert_int_equal(kaos_client_ping(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_session_refresh(c, NULL, NULL),
                     KAOS_ERR_UNAUTHENTICATED); /* no session yet */
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_ERR_FAILED_PRECONDITION);
    static uint8_t big[KAOS_MAX_MESSAGE_SIZE + 1];
    int rc = kaos_client_match_send(c, 1, 1, big, sizeof big, true, NULL, 0);
    assert_true(rc == KAOS_ERR_TOO_LARGE || rc == KAOS_ERR_CLOSED);
    kaos_client_destroy(c);

    kaos_client_config bad;
    kaos_client_config_default(&bad);
    bad.port = 0;
    assert_int_equal(kaos_client_create(&bad, &c), KAOS_ERR_CONFIG);
    assert_string_equal(kaos_err_text(KAOS_ERR_NOT_FOUND), "not found");
}

/* Bad arguments are refused before the connection state is looked at, so
 * these hold connected or not; good ones fail only for want of a connection. */
static void account_requests_check_their_arguments_locally(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1;
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);

    /* NULL client */
    assert_int_equal(kaos_client_account_get(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_account_changes none = {0};
    assert_int_equal(kaos_client_account_update(NULL, &none, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(NULL, NULL, 0, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_delete(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_device(NULL, "device-0123456", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(NULL, "a@example.com", "password", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_custom(NULL, "custom-1", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_device(NULL, "device-0123456", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_email(NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_custom(NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* NULL arguments */
    assert_int_equal(kaos_client_account_update(c, NULL, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", NULL};
    assert_int_equal(kaos_client_users_get(c, NULL, 1, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, NULL, 3, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, ids, 2, NULL, 0, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, ids, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_device(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(c, NULL, "password", NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_email(c, "a@example.com", NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_link_custom(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_account_unlink_device(c, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* Well-formed, but not connected (lists may be NULL with a count of 0). */
    assert_int_equal(kaos_client_account_get(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_update(c, &none, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, ids, 1, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, ids, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_users_get(c, NULL, 0, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_delete(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_device(c, "device-0123456", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_email(c, "a@example.com", "password", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_link_custom(c, "custom-1", NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_device(c, "device-0123456", NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_email(c, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_account_unlink_custom(c, NULL, NULL), KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

/* The same rule for storage: pointers are checked locally (a NULL list with
 * a count, a NULL collection, key or value), everything else by the server. */
static void storage_requests_check_their_arguments_locally(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = 1;
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);

    kaos_storage_write_object w = {.collection = "saves", .key = "slot1", .value = "{}"};
    kaos_storage_id id = {.collection = "saves", .key = "slot1"};

    /* NULL client */
    assert_int_equal(kaos_client_storage_write(NULL, &w, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_read(NULL, &id, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(NULL, &id, 1, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_list(NULL, NULL, "saves", 10, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* NULL lists with a count, NULL required fields */
    assert_int_equal(kaos_client_storage_write(c, NULL, 1, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_read(c, NULL, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(c, NULL, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_storage_write_object bad_w[] = {w, w, w};
    bad_w[1].value = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    bad_w[1] = w;
    bad_w[2].collection = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    bad_w[2] = w;
    bad_w[0].key = NULL;
    assert_int_equal(kaos_client_storage_write(c, bad_w, 3, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    kaos_storage_id bad_id[] = {id, id};
    bad_id[1].key = NULL;
    assert_int_equal(kaos_client_storage_read(c, bad_id, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_delete(c, bad_id, 2, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);
    bad_id[1] = id;
    bad_id[0].collection = NULL;
    assert_int_equal(kaos_client_storage_read(c, bad_id, 2, NULL, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_storage_list(c, NULL, NULL, 10, NULL, NULL, NULL),
                     KAOS_ERR_INVALID_ARGUMENT);

    /* More objects than could ever fit in one message. */
    static kaos_storage_id many[KAOS_MAX_MESSAGE_SIZE + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = id;
    assert_int_equal(kaos_client_storage_read(c, many, sizeof many / sizeof many[0], NULL, NULL),
                     KAOS_ERR_TOO_LARGE);

    /* Well-formed (the server judges values, limits and empty strings), but
     * not connected; an empty list, owner, version and cursor may be NULL. */
    kaos_storage_write_object odd = {.collection = "", .key = "k", .value = "[not json",
                                     .permissions_set = true, .permission_read = 7};
    assert_int_equal(kaos_client_storage_write(c, &odd, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_write(c, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_read(c, &id, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_read(c, NULL, 0, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_delete(c, &id, 1, NULL, NULL), KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_list(c, NULL, "saves", 0, NULL, NULL, NULL),
                     KAOS_ERR_CLOSED);
    assert_int_equal(kaos_client_storage_list(c, "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", "saves",
                                              500, "cursor", NULL, NULL),
                     KAOS_ERR_CLOSED);
    kaos_client_destroy(c);
}

static void connect_without_a_pinned_key_is_refused_unless_insecure_dev_mode(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    assert_null(cfg.server_key);
    assert_false(cfg.insecure_dev_mode);
    assert_false(cfg.plaintext);
    cfg.port = 1;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_ERR_FAILED_PRECONDITION);
    assert_int_equal(kaos_client_disconnect(c), KAOS_ERR_CLOSED); /* nothing was started */
    kaos_client_destroy(c);

    cfg.insecure_dev_mode = true;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    assert_int_equal(kaos_client_disconnect(c), KAOS_OK);
    kaos_client_destroy(c);

    cfg.plaintext = true;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    assert_int_equal(kaos_client_connect(c), KAOS_OK);
    kaos_client_destroy(c);
}

static void malformed_keys_and_plaintext_without_dev_mode_are_config_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "0123",
        /* 63 and 65 digits */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
        /* 64 characters, one not hex */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        " 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    kaos_client_config cfg;
    kaos_client *c = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kaos_client_config_default(&cfg);
        cfg.server_key = bad[i];
        assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
        assert_null(c);
    }
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    cfg.plaintext = true; /* without insecure_dev_mode */
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    cfg.protocol_version = 256; /* one byte on the wire */
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_ERR_CONFIG);
}

static void the_server_key_is_unknown_before_any_handshake(void **state)
{
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.server_key = some_key;
    kaos_client *c;
    assert_int_equal(kaos_client_create(&cfg, &c), KAOS_OK);
    char out[KAOS_SERVER_KEY_HEX_SIZE];
    /* The pinned key is not what the server presented. */
    assert_int_equal(kaos_client_server_key(c, out), KAOS_ERR_NOT_FOUND);
    assert_int_equal(kaos_client_server_key(c, NULL), KAOS_ERR_INVALID_ARGUMENT);
    assert_int_equal(kaos_client_server_key(NULL, out), KAOS_ERR_INVALID_ARGUMENT);
    kaos_client_destroy(c);
}

static void every_disconnect_reason_has_a_text(void **state)
{
    for (uint32_t r = KAOS_DISCONNECT_NONE; r <= KAOS_DISCONNECT_BANNED; r++)
        assert_string_not_equal(kaos_disconnect_reason_text(r), "unknown reason");
    assert_string_equal(kaos_disconnect_reason_text(KAOS_DISCONNECT_BANNED + 1), "unknown reason");
}

static void create_and_connect_survive_allocation_failures(void **state)
{
    kaos_allocator a = {t_alloc, t_realloc, t_free, NULL};
    for (long n = 0;; n++) {
        assert_true(n < 10000);
        fail_at = n;
        count = live = 0;
        kaos_set_allocator(&a);
        kaos_client_config cfg;
        kaos_client_config_default(&cfg);
        cfg.port = 1;
        cfg.server_key = some_key;
        kaos_client *c = NULL;
        int rc = kaos_client_create(&cfg, &c);
        if (rc == KAOS_OK) rc = kaos_client_connect(c);
        kaos_client_destroy(c);
        long used = count, leaked = live;
        kaos_set_allocator(NULL);
        assert_int_equal(leaked, 0);
        if (rc == KAOS_OK && used <= n) break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_fail_locally_when_not_connected_or_too_large),
        cmocka_unit_test(account_requests_check_their_arguments_locally),
        cmocka_unit_test(storage_requests_check_their_arguments_locally),
        cmocka_unit_test(connect_without_a_pinned_key_is_refused_unless_insecure_dev_mode),
        cmocka_unit_test(malformed_keys_and_plaintext_without_dev_mode_are_config_errors),
        cmocka_unit_test(the_server_key_is_unknown_before_any_handshake),
        cmocka_unit_test(every_disconnect_reason_has_a_text),
        cmocka_unit_test(create_and_connect_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
