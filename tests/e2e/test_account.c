/* End to end: the account service over the wire and from Lua — get and
 * update (every field, taken usernames, bad metadata, a before hook), public
 * users, link/unlink rules, email login, deletion, bans through the HTTP
 * admin RPC (the live connection closed with DISCONNECT_BANNED, login and
 * resume refused, unban), the after hook that sets metadata, resume checked
 * against Postgres across a restart, and the kaos.* account functions.
 *
 * The runtime path is a directory of links to the .lua files of lua-examples/ and
 * of tests/e2e/lua/, so the examples and the test module load together. */
#include "harness.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char rt_dir[64];
static const char http_key[] = "account-test-key";

/* --- server ------------------------------------------------------------------ */

static void start_server(void)
{
    const char *extra[] = {"--runtime-path", rt_dir, "--http-key", http_key, NULL};
    e2e_server_start(&e2e_group_server, extra);
}

static int setup(void **state)
{
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

/* --- clients ------------------------------------------------------------------ */

static e2e_client *connected(void)
{
    return e2e_client_new(e2e_group_server.port, 0, 0);
}

/* A new connection logged in with a fresh device (written to dev). */
static e2e_client *player(char dev[40])
{
    e2e_device_id(dev);
    e2e_client *c = connected();
    e2e_auth(c, dev);
    return c;
}

/* Waits for the answer to the request `cid` sent by c (an ack, or an error):
 * 0 for the ack, else the error code. Counters only move inside
 * kaos_client_poll, so reading them after sending is fine. */
static int ack_of(e2e_client *c, int acks, int errors, int cid)
{
    assert_true(cid > 0);
    E2E_WAIT(c->acks > acks || c->errors > errors, 15000);
    if (c->acks > acks) return 0;
    assert_int_equal(c->error_cid, (uint32_t)cid);
    return c->error_code;
}
#define ACKED(c, call) ack_of((c), (c)->acks, (c)->errors, (call))

static void get_account(e2e_client *c)
{
    int accounts = c->accounts, errors = c->errors;
    assert_true(kaos_client_account_get(c->c, e2e_on_account, c) > 0);
    E2E_WAIT(c->accounts > accounts || c->errors > errors, 5000);
    if (c->accounts == accounts) fail_msg("account get: %d %s", c->error_code, c->error_message);
}

/* users_get; returns the number of users, or -code on error. */
static int users_get(e2e_client *c, const char *const *ids, size_t n_ids, const char *const *names,
                     size_t n_names)
{
    int answers = c->users_answers, errors = c->errors;
    assert_true(kaos_client_users_get(c->c, ids, n_ids, names, n_names, e2e_on_users, c) > 0);
    E2E_WAIT(c->users_answers > answers || c->errors > errors, 5000);
    return c->users_answers > answers ? (int)c->users_count : -c->error_code;
}

static int update(e2e_client *c, const kaos_account_changes *ch)
{
    return ACKED(c, kaos_client_account_update(c->c, ch, e2e_on_done, c));
}

/* The error code of a login on a new connection (0 = a session). */
static int login_code(const char *dev, bool create, e2e_client **out)
{
    e2e_client *c = connected();
    int cid = kaos_client_auth_device(c->c, dev, NULL, create, NULL, e2e_on_session, c);
    assert_true(cid > 0);
    E2E_WAIT(c->sessions || c->errors, 10000);
    int code = c->sessions ? 0 : c->error_code;
    if (out)
        *out = c;
    else
        e2e_client_free(c);
    return code;
}

/* The error code of a resume of `token` on a new connection (0 = a session);
 * the message in msg. */
static int resume_code(const char *token, char *msg, size_t cap)
{
    e2e_client *c = connected();
    assert_true(kaos_client_session_resume(c->c, token, e2e_on_session, c) > 0);
    E2E_WAIT(c->sessions || c->errors, 10000);
    int code = c->sessions ? 0 : c->error_code;
    snprintf(msg, cap, "%s", c->error_message);
    e2e_client_free(c);
    return code;
}

static int http_post(const char *rpc, const char *body, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "/v2/rpc/%s?http_key=%s", rpc, http_key);
    return e2e_http(e2e_group_server.http_port, "POST", path, NULL, body, out, cap);
}

/* --- tests -------------------------------------------------------------------------- */

static void account_requests_need_a_session(void **state)
{
    e2e_client *c = connected();
    int cid = kaos_client_account_get(c->c, e2e_on_account, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_cid, (uint32_t)cid);
    assert_int_equal(c->error_code, 16);
    assert_string_equal(c->error_message, "authenticate first");
    const char *ids[] = {"8f4d52c7-bf28-4fcf-8af2-1d4fcf685592"};
    kaos_client_users_get(c->c, ids, 1, NULL, 0, e2e_on_users, c);
    E2E_WAIT(c->errors == 2, 5000);
    assert_int_equal(c->error_code, 16);
    e2e_client_free(c);
}

static void account_get_returns_the_account_and_the_after_hook_sets_its_metadata(void **state)
{
    char dev[40];
    e2e_client *c = player(dev);
    assert_true(c->created);
    /* The after hook runs once the client has its session: wait for it. */
    for (int i = 0; i < 100; i++) {
        get_account(c);
        if (strstr(c->account.metadata, dev)) break;
        e2e_pump_for(50);
    }
    const e2e_account *a = &c->account;
    assert_non_null(strstr(a->metadata, "\"first_device\""));
    assert_non_null(strstr(a->metadata, dev));
    assert_string_equal(a->id, c->user_id);
    assert_string_equal(a->username, c->username);
    assert_string_equal(a->lang_tag, "en");
    assert_string_equal(a->display_name, "");
    assert_string_equal(a->email, "");
    assert_string_equal(a->custom_id, "");
    assert_int_equal(a->device_count, 1);
    assert_string_equal(a->device_ids[0], dev);
    assert_int_equal(a->disable_time, 0);
    assert_true(a->create_time > 0 && a->update_time >= a->create_time);

    /* A second login with the device creates nothing, so the hook leaves
     * the metadata alone. */
    kaos_account_changes ch = {.metadata = "{\"kept\": true}"};
    assert_int_equal(update(c, &ch), 0);
    e2e_auth(c, dev);
    assert_false(c->created);
    e2e_pump_for(200);
    get_account(c);
    assert_string_equal(c->account.metadata, "{\"kept\": true}");
    e2e_client_free(c);
}

static void account_update_changes_each_field(void **state)
{
    char dev[40], name[64];
    e2e_client *c = player(dev);
    snprintf(name, sizeof name, "upd_%s", dev + 4);
    /* one field per update: each must be applied on its own */
    const kaos_account_changes steps[] = {
        {.username = name},
        {.display_name = "Display Name"},
        {.avatar_url = "https://example.com/a.png"},
        {.lang_tag = "pt-BR"},
        {.location = "Lisbon"},
        {.timezone = "Europe/Lisbon"},
        {.metadata = "{\"level\": 7}"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        assert_int_equal(update(c, &steps[i]), 0);
    get_account(c);
    const e2e_account *a = &c->account;
    assert_string_equal(a->username, name);
    assert_string_equal(a->display_name, "Display Name");
    assert_string_equal(a->avatar_url, "https://example.com/a.png");
    assert_string_equal(a->lang_tag, "pt-BR");
    assert_string_equal(a->location, "Lisbon");
    assert_string_equal(a->timezone, "Europe/Lisbon");
    assert_string_equal(a->metadata, "{\"level\": 7}");

    /* "" clears the optional ones; absent fields stay. */
    kaos_account_changes clear = {.display_name = "", .location = ""};
    assert_int_equal(update(c, &clear), 0);
    get_account(c);
    assert_string_equal(a->display_name, "");
    assert_string_equal(a->location, "");
    assert_string_equal(a->timezone, "Europe/Lisbon");
    assert_string_equal(a->username, name);

    /* Hooks run for account operations like any other (tests/e2e/lua). */
    kaos_account_changes forbidden = {.display_name = "forbidden"};
    assert_int_equal(update(c, &forbidden), 3);
    assert_string_equal(c->error_message, "that display name is not allowed here");
    e2e_client_free(c);
}

static void account_update_refuses_a_taken_username_and_bad_input(void **state)
{
    char dev_a[40], dev_b[40];
    e2e_client *a = player(dev_a), *b = player(dev_b);
    kaos_account_changes taken = {.username = b->username, .display_name = "never set"};
    assert_int_equal(update(a, &taken), 6);
    assert_string_equal(a->error_message, "username is taken");
    kaos_account_changes array = {.metadata = "[1, 2]"};
    assert_int_equal(update(a, &array), 3);
    kaos_account_changes broken = {.metadata = "{\"unterminated\": "};
    assert_int_equal(update(a, &broken), 3);
    kaos_account_changes spaced = {.username = "has a space"};
    assert_int_equal(update(a, &spaced), 3);
    kaos_account_changes empty_lang = {.lang_tag = ""};
    assert_int_equal(update(a, &empty_lang), 3);
    /* A refused update changed nothing. */
    get_account(a);
    assert_string_equal(a->account.username, a->username);
    assert_string_equal(a->account.display_name, "");
    assert_string_equal(a->account.lang_tag, "en");
    e2e_client_free(a);
    e2e_client_free(b);
}

static void users_get_finds_users_by_ids_and_usernames(void **state)
{
    char dev_a[40], dev_b[40];
    e2e_client *a = player(dev_a), *b = player(dev_b);
    const char *b_id[] = {b->user_id};
    assert_int_equal(users_get(a, b_id, 1, NULL, 0), 1);
    assert_string_equal(a->users_names[0], b->username);
    const char *names[] = {a->username, b->username};
    assert_int_equal(users_get(a, NULL, 0, names, 2), 2);
    const char *a_id[] = {a->user_id};
    const char *a_name[] = {a->username};
    assert_int_equal(users_get(a, a_id, 1, a_name, 1), 1); /* named twice, listed once */
    assert_string_equal(a->users_ids[0], a->user_id);
    const char *unknown[] = {"00000000-0000-0000-0000-000000000000"};
    assert_int_equal(users_get(a, unknown, 1, NULL, 0), 0);
    const char *bad[] = {"not-a-uuid"};
    assert_int_equal(users_get(a, bad, 1, NULL, 0), -3);
    e2e_client_free(a);
    e2e_client_free(b);
}

static void link_and_unlink_follow_the_rules_over_the_wire(void **state)
{
    char dev[40], dev2[40], other_dev[40], custom[64], email[80];
    e2e_client *a = player(dev), *other = player(other_dev);
    e2e_device_id(dev2);
    snprintf(custom, sizeof custom, "custom-%s", dev + 4);
    snprintf(email, sizeof email, "Link.%s@Example.com", dev + 4);

    assert_int_equal(ACKED(a, kaos_client_account_link_device(a->c, dev2, e2e_on_done, a)), 0);
    assert_int_equal(ACKED(a, kaos_client_account_link_device(a->c, dev2, e2e_on_done, a)),
                     0); /* already ours: fine */
    e2e_client *second;
    assert_int_equal(login_code(dev2, false, &second), 0);
    assert_string_equal(second->user_id, a->user_id);
    e2e_client_free(second);

    assert_int_equal(ACKED(a, kaos_client_account_link_device(a->c, other_dev, e2e_on_done, a)), 6);
    assert_string_equal(a->error_message, "device id is linked to another account");
    assert_int_equal(ACKED(a, kaos_client_account_link_device(a->c, "short", e2e_on_done, a)), 3);
    assert_int_equal(ACKED(a, kaos_client_account_link_custom(a->c, custom, e2e_on_done, a)), 0);
    assert_int_equal(
        ACKED(a, kaos_client_account_link_email(a->c, email, "a good password", e2e_on_done, a)),
        0);
    get_account(a);
    assert_string_equal(a->account.custom_id, custom);
    for (char *p = email; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    assert_string_equal(a->account.email, email);
    assert_int_equal(a->account.device_count, 2);

    assert_int_equal(ACKED(a, kaos_client_account_unlink_device(a->c, other_dev, e2e_on_done, a)),
                     5);
    assert_int_equal(ACKED(a, kaos_client_account_unlink_device(a->c, dev, e2e_on_done, a)), 0);
    assert_int_equal(ACKED(a, kaos_client_account_unlink_device(a->c, dev2, e2e_on_done, a)), 0);
    assert_int_equal(ACKED(a, kaos_client_account_unlink_email(a->c, e2e_on_done, a)), 0);
    assert_int_equal(ACKED(a, kaos_client_account_unlink_email(a->c, e2e_on_done, a)), 5);
    assert_int_equal(ACKED(a, kaos_client_account_unlink_custom(a->c, e2e_on_done, a)), 9);
    assert_string_equal(a->error_message, "cannot unlink the last login method");
    get_account(a);
    assert_string_equal(a->account.custom_id, custom);
    assert_string_equal(a->account.email, "");
    assert_int_equal(a->account.device_count, 0);
    /* the unlinked device no longer logs in as this user */
    assert_int_equal(login_code(dev, false, NULL), 5);
    e2e_client_free(a);
    e2e_client_free(other);
}

static void email_login_with_a_wrong_password_is_refused(void **state)
{
    char dev[40], email[80];
    e2e_client *a = player(dev);
    snprintf(email, sizeof email, "pw.%s@example.com", dev + 4);
    assert_int_equal(
        ACKED(a, kaos_client_account_link_email(a->c, email, "right password", e2e_on_done, a)), 0);
    e2e_client *c = connected();
    kaos_client_auth_email(c->c, email, "wrong password", NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 1 || c->sessions, 10000);
    assert_int_equal(c->error_code, 16);
    assert_string_equal(c->error_message, "invalid credentials");
    kaos_client_auth_email(c->c, email, "right password", NULL, false, NULL, e2e_on_session, c);
    E2E_WAIT(c->errors == 2 || c->sessions, 10000);
    assert_int_equal(c->sessions, 1);
    assert_string_equal(c->user_id, a->user_id);
    e2e_client_free(a);
    e2e_client_free(c);
}

static void
account_delete_unbinds_this_connection_closes_the_others_and_frees_the_device(void **state)
{
    char dev[40], token[4096], user[40], msg[256];
    e2e_client *a = player(dev);
    strcpy(token, a->token);
    strcpy(user, a->user_id);
    e2e_client *resumed = connected(), *other = NULL;
    kaos_client_session_resume(resumed->c, token, e2e_on_session, resumed);
    E2E_WAIT(resumed->sessions == 1 || resumed->errors, 5000);
    assert_int_equal(resumed->sessions, 1);
    assert_int_equal(login_code(dev, false, &other), 0); /* another session of the user */

    assert_int_equal(ACKED(a, kaos_client_account_delete(a->c, e2e_on_done, a)), 0);
    assert_null(kaos_client_session(a->c));
    E2E_WAIT(resumed->disconnected && other->disconnected, 5000);
    assert_int_equal(resumed->disconnect_reason, KAOS_DISCONNECT_BANNED);
    assert_int_equal(other->disconnect_reason, KAOS_DISCONNECT_BANNED);
    /* this connection stays, unauthenticated */
    assert_true(a->connected);
    kaos_client_account_get(a->c, e2e_on_account, a);
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_code, 16);
    assert_string_equal(a->error_message, "authenticate first");

    assert_int_equal(resume_code(token, msg, sizeof msg), 16);
    assert_string_equal(msg, "session token revoked (account deleted)");
    /* the device is free: logging in with it makes a new user */
    e2e_auth(a, dev);
    assert_true(a->created);
    assert_string_not_equal(a->user_id, user);
    e2e_client_free(a);
    e2e_client_free(resumed);
    e2e_client_free(other);
}

static void
ban_over_http_closes_the_connection_and_refuses_login_and_resume_until_unban(void **state)
{
    char dev[40], token[4096], user[40], body[128], out[512], msg[256];
    e2e_client *a = player(dev);
    strcpy(token, a->token);
    strcpy(user, a->user_id);
    snprintf(body, sizeof body, "{\"user_ids\": [\"%s\"]}", user);

    /* clients cannot call the admin RPC */
    kaos_client_rpc_call(a->c, "admin_ban", body, e2e_on_rpc, a);
    E2E_WAIT(a->errors == 1 || a->rpcs, 5000);
    assert_int_equal(a->error_code, 7);
    assert_string_equal(a->error_message, "server-to-server only");

    assert_int_equal(http_post("admin_ban", body, out, sizeof out), 200);
    E2E_WAIT(a->disconnected, 5000);
    assert_int_equal(a->disconnect_reason, KAOS_DISCONNECT_BANNED);
    e2e_client *c;
    assert_int_equal(login_code(dev, true, &c), 7);
    assert_string_equal(c->error_message, "account is banned");
    e2e_client_free(c);
    assert_int_equal(resume_code(token, msg, sizeof msg), 16);
    assert_string_equal(msg, "session token revoked (account banned)");

    assert_int_equal(http_post("admin_ban",
                               "{\"user_ids\": [\"00000000-0000-0000-0000-000000000000\"]}", out,
                               sizeof out),
                     404);
    assert_int_equal(http_post("admin_ban", "{}", out, sizeof out), 400);

    assert_int_equal(http_post("admin_unban", body, out, sizeof out), 200);
    assert_int_equal(login_code(dev, false, &c), 0);
    assert_string_equal(c->user_id, user);
    e2e_client_free(c);
    /* the ban ended the old session for good */
    assert_int_equal(resume_code(token, msg, sizeof msg), 16);
    e2e_client_free(a);
}

static void the_lua_account_api_calls_the_same_services(void **state)
{
    char dev[40], other_dev[40], unknown_dev[40], payload[512];
    e2e_client *a = player(dev), *other = player(other_dev);
    e2e_device_id(unknown_dev);
    snprintf(
        payload, sizeof payload,
        "{\"custom_id\": \"lua-%s\", \"device_id\": \"%s\", \"email\": \"lua.%s@example.com\", "
        "\"other_device\": \"%s\"}",
        dev + 4, unknown_dev, dev + 4, other_dev);
    kaos_client_rpc_call(a->c, "account_api", payload, e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 1 || a->errors, 20000);
    if (a->errors) fail_msg("account_api: %d %s", a->error_code, a->error_message);
    const char *want[] = {
        "\"own_username\":true",
        "\"own_device_count\":1",
        "\"own_lang_tag\":\"en\"",
        "\"display_name\":\"Lua Name\"",
        "\"metadata_level\":3",
        "\"bad_lang_tag\":\"3 ",
        "\"unknown_field\":\"3 unknown account field \\\"nickname\\\"\"",
        "\"by_name\":true",
        "\"by_id_count\":1",
        "\"bad_id\":\"3 ",
        "\"custom_created\":true",
        "\"unknown_device\":\"5 device not found\"",
        "\"email_created\":true",
        "\"email_wrong_password\":\"16 invalid credentials\"",
        "\"link_custom\":\"ok\"",
        "\"custom_id\":true",
        "\"unlink_custom\":\"ok\"",
        "\"unlink_custom_again\":\"5 ",
        "\"link_taken_device\":\"6 device id is linked to another account\"",
        "\"unlink_last\":\"9 cannot unlink the last login method\"",
        "\"ban\":\"ok\"",
        "\"banned_login\":\"7 account is banned\"",
        "\"unban\":\"ok\"",
        "\"ban_unknown\":\"5 ",
        "\"delete\":\"ok\"",
        "\"deleted_get\":\"5 user not found\"",
        "\"logout_all\":\"ok\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(a->rpc_payload, want[i])) fail_msg("%s not in %s", want[i], a->rpc_payload);
    /* what Lua changed, the wire sees */
    get_account(a);
    assert_string_equal(a->account.display_name, "Lua Name");
    assert_string_equal(a->account.metadata, "{\"level\": 3}");
    e2e_client_free(a);
    e2e_client_free(other);
}

static void lua_logout_unbinds_the_connection_and_lua_delete_closes_it(void **state)
{
    char dev[40], token[4096], msg[256];
    e2e_client *a = player(dev);
    strcpy(token, a->token);
    kaos_client_rpc_call(a->c, "logout_me", "", e2e_on_rpc, a);
    E2E_WAIT(a->rpcs == 1 || a->errors, 5000);
    assert_int_equal(a->rpcs, 1);
    kaos_client_account_get(a->c, e2e_on_account, a);
    E2E_WAIT(a->errors == 1, 5000);
    assert_int_equal(a->error_code, 16);
    assert_true(a->connected);
    assert_int_equal(resume_code(token, msg, sizeof msg), 16);
    assert_string_equal(msg, "session token revoked (logged out)");

    e2e_client *b = player(dev);
    kaos_client_rpc_call(b->c, "delete_me", "", e2e_on_rpc, b);
    E2E_WAIT(b->disconnected, 5000);
    assert_int_equal(b->disconnect_reason, KAOS_DISCONNECT_BANNED);
    assert_int_equal(login_code(dev, false, NULL), 5); /* the user and its device are gone */
    e2e_client_free(a);
    e2e_client_free(b);
}

/* Resume asks Postgres: a session superseded by a refresh or logged out
 * stays dead after a restart (when the revocation set is gone), and a live
 * one resumes. Runs last: it restarts the group's server. */
static void resume_checks_postgres_so_logout_and_refresh_hold_across_a_restart(void **state)
{
    char dev[40], dev2[40], refreshed[4096], logged_out[4096], live[4096], msg[256];
    e2e_client *a = player(dev), *b = player(dev2);
    strcpy(refreshed, a->token);
    assert_true(kaos_client_session_refresh(a->c, e2e_on_session, a) > 0);
    E2E_WAIT(a->sessions == 2 || a->errors, 5000);
    assert_int_equal(a->sessions, 2);
    assert_int_equal(resume_code(refreshed, msg, sizeof msg), 16);
    assert_string_equal(msg, "session has ended");
    strcpy(logged_out, a->token);
    assert_int_equal(ACKED(a, kaos_client_session_logout(a->c, e2e_on_done, a)), 0);
    strcpy(live, b->token);
    e2e_client_free(a);
    e2e_client_free(b);

    assert_int_equal(e2e_server_stop(&e2e_group_server), 0);
    start_server();
    assert_int_equal(resume_code(refreshed, msg, sizeof msg), 16);
    assert_string_equal(msg, "session has ended");
    assert_int_equal(resume_code(logged_out, msg, sizeof msg), 16);
    assert_string_equal(msg, "session has ended");
    assert_int_equal(resume_code(live, msg, sizeof msg), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(account_requests_need_a_session),
        cmocka_unit_test(account_get_returns_the_account_and_the_after_hook_sets_its_metadata),
        cmocka_unit_test(account_update_changes_each_field),
        cmocka_unit_test(account_update_refuses_a_taken_username_and_bad_input),
        cmocka_unit_test(users_get_finds_users_by_ids_and_usernames),
        cmocka_unit_test(link_and_unlink_follow_the_rules_over_the_wire),
        cmocka_unit_test(email_login_with_a_wrong_password_is_refused),
        cmocka_unit_test(
            account_delete_unbinds_this_connection_closes_the_others_and_frees_the_device),
        cmocka_unit_test(
            ban_over_http_closes_the_connection_and_refuses_login_and_resume_until_unban),
        cmocka_unit_test(the_lua_account_api_calls_the_same_services),
        cmocka_unit_test(lua_logout_unbinds_the_connection_and_lua_delete_closes_it),
        cmocka_unit_test(resume_checks_postgres_so_logout_and_refresh_hold_across_a_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
