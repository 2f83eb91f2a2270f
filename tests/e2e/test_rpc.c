/* End to end: Lua RPCs over the wire, from lua-examples/rpc_example.lua, and
 * a broken module stopping the server with its file and line. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <cmocka.h>

static e2e_client *player(void)
{
    return e2e_player(e2e_group_server.port, 0);
}

static void an_rpc_answers_with_what_the_function_returned(void **state)
{
    e2e_client *c = player();
    int cid = kaos_client_rpc_call(c->c, "echo", "hello", e2e_on_rpc, c);
    assert_true(cid > 0);
    E2E_WAIT(c->rpcs == 1 || c->errors, 5000);
    assert_int_equal(c->rpcs, 1);
    assert_non_null(strstr(c->rpc_payload, "\"payload\":\"hello\""));
    char want[80];
    snprintf(want, sizeof want, "\"user_id\":\"%s\"", c->user_id);
    assert_non_null(strstr(c->rpc_payload, want));

    kaos_client_rpc_call(c->c, "add", "{\"a\": 40, \"b\": 2}", e2e_on_rpc, c);
    E2E_WAIT(c->rpcs == 2, 5000);
    assert_string_equal(c->rpc_payload, "{\"sum\":42}");
    /* The built-in C RPC answers without Lua. */
    kaos_client_rpc_call(c->c, "kaos.noop", "ignored", e2e_on_rpc, c);
    E2E_WAIT(c->rpcs == 3 || c->errors, 5000);
    assert_int_equal(c->rpcs, 3);
    assert_string_equal(c->rpc_payload, "");
    e2e_client_free(c);
}

static void script_errors_and_unknown_ids_reach_the_client_with_codes(void **state)
{
    e2e_client *c = player();
    int cid = kaos_client_rpc_call(c->c, "add", "{\"a\": \"x\"}", e2e_on_rpc, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_cid, (uint32_t)cid);
    assert_int_equal(c->error_code, 3);
    assert_string_equal(c->error_message, "add expects {\"a\": number, \"b\": number}");
    kaos_client_rpc_call(c->c, "no_such_rpc", "", e2e_on_rpc, c);
    E2E_WAIT(c->errors == 2, 5000);
    assert_int_equal(c->error_code, 5);
    assert_string_equal(c->error_message, "rpc \"no_such_rpc\" not found");
    e2e_client_free(c);
}

static void rpcs_need_a_session(void **state)
{
    e2e_client *c = e2e_client_new(e2e_group_server.port, 0, 0);
    kaos_client_rpc_call(c->c, "echo", "x", e2e_on_rpc, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_code, 16);
    assert_int_equal(c->rpcs, 0);
    e2e_client_free(c);
}

static void server_to_server_rpc_over_http_needs_the_key(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/lua-examples", "--http-key",
                           "s3cret-key", NULL};
    e2e_server_start(&s, extra);
    char out[4096];
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/add?http_key=s3cret-key", NULL,
                              "{\"a\":1,\"b\":2}", out, sizeof out),
                     200);
    assert_string_equal(out, "{\"sum\":3}");
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/echo", "X-Kaos-Http-Key: s3cret-key\r\n",
                              "hi", out, sizeof out),
                     200);
    assert_non_null(strstr(out, "\"user_id\":\"\"")); /* no user: server to server */
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/add?http_key=wrong", NULL, "{}", out,
                              sizeof out),
                     401);
    assert_non_null(strstr(out, "\"code\":16"));
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/add", NULL, "{}", out, sizeof out), 401);
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/add?http_key=s3cret-key", NULL,
                              "{\"a\":\"x\"}", out, sizeof out),
                     400);
    assert_non_null(strstr(out, "\"code\":3"));
    assert_int_equal(e2e_http(s.http_port, "POST", "/v2/rpc/nope?http_key=s3cret-key", NULL, "",
                              out, sizeof out),
                     404);
    assert_int_equal(e2e_http(s.http_port, "GET", "/healthz", NULL, NULL, out, sizeof out), 200);
    assert_int_equal(e2e_http(s.http_port, "GET", "/metrics", NULL, NULL, out, sizeof out), 200);
    assert_non_null(strstr(out, "kaos_connections_current "));
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sighup_reloads_modules_while_clients_stay_connected(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    char dir[200], file[260];
    mkdir(s.data_dir, 0700);
    snprintf(dir, sizeof dir, "%s/lua", s.data_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/version.lua", dir);
    write_file(file, "require('kaos').register_rpc(function() return 'v1' end, 'version')\n");
    const char *extra[] = {"--runtime-path", dir, NULL};
    e2e_server_start(&s, extra);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(s.port, 0, 2000);
    e2e_auth(c, dev);
    kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
    E2E_WAIT(c->rpcs == 1, 5000);
    assert_string_equal(c->rpc_payload, "v1");

    write_file(file, "require('kaos').register_rpc(function() return 'v2' end, 'version')\n");
    kill(s.pid, SIGHUP);
    int64_t deadline = e2e_now_ms() + 10000;
    while (strcmp(c->rpc_payload, "v2") && e2e_now_ms() < deadline) {
        int before = c->rpcs;
        kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
        E2E_WAIT(c->rpcs > before, 5000);
        e2e_pump_for(50);
    }
    assert_string_equal(c->rpc_payload, "v2");
    assert_true(c->connected); /* the same connection, never dropped */

    /* A reload that fails keeps the running code. */
    write_file(file, "require('kaos').register_rpc(function() return 'v3' end, 'version'\n");
    kill(s.pid, SIGHUP);
    e2e_pump_for(1000);
    int before = c->rpcs;
    kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
    E2E_WAIT(c->rpcs > before, 5000);
    assert_string_equal(c->rpc_payload, "v2");
    assert_true(c->connected);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

static void with_runtime_watch_a_saved_file_reloads_by_itself(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    char dir[200], file[260];
    mkdir(s.data_dir, 0700);
    snprintf(dir, sizeof dir, "%s/lua", s.data_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/version.lua", dir);
    write_file(file, "require('kaos').register_rpc(function() return 'w1' end, 'version')\n");
    const char *extra[] = {"--runtime-path", dir, "--runtime-watch", "true", NULL};
    e2e_server_start(&s, extra);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(s.port, 0, 2000);
    e2e_auth(c, dev);
    write_file(file, "require('kaos').register_rpc(function() return 'w2' end, 'version')\n");
    int64_t deadline = e2e_now_ms() + 10000;
    do {
        int before = c->rpcs;
        kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
        E2E_WAIT(c->rpcs > before, 5000);
        if (!strcmp(c->rpc_payload, "w2")) break;
        e2e_pump_for(100);
    } while (e2e_now_ms() < deadline);
    assert_string_equal(c->rpc_payload, "w2");
    assert_true(c->connected);
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

static void a_broken_module_stops_the_server_with_file_and_line(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    char dir[200], file[260], url[128], out[8192];
    snprintf(dir, sizeof dir, "%s/lua", s.data_dir);
    mkdir(s.data_dir, 0700);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/broken.lua", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("local kaos = require('kaos')\nkaos.register_rpc(function() end, 'x'\n", f);
    fclose(f);
    snprintf(url, sizeof url, "dbname=%s", s.dbname);
    const char *args[] = {"serve", "--database-url", url, "--data-dir", s.data_dir,
                          "--runtime-path", dir, "--port", "0", "--migrate", NULL};
    assert_int_equal(e2e_run_cli(args, out, sizeof out), 1);
    if (!strstr(out, "broken.lua:3:")) fail_msg("no file:line in:\n%s", out);
    e2e_server_cleanup(&s);
}

static void with_allow_errors_a_broken_module_starts_empty_until_fixed(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    char dir[200], file[260];
    mkdir(s.data_dir, 0700);
    snprintf(dir, sizeof dir, "%s/lua", s.data_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/version.lua", dir);
    write_file(file, "require('kaos').register_rpc(function() return 'ok' end, 'version'\n");
    const char *extra[] = {"--runtime-path", dir, "--runtime-allow-errors", "true", NULL};
    e2e_server_start(&s, extra); /* starts despite the syntax error */
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(s.port, 0, 2000);
    e2e_auth(c, dev);
    kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
    E2E_WAIT(c->errors == 1, 5000);
    assert_int_equal(c->error_code, 5); /* no modules */
    write_file(file, "require('kaos').register_rpc(function() return 'ok' end, 'version')\n");
    kill(s.pid, SIGHUP);
    int64_t deadline = e2e_now_ms() + 10000;
    while (c->rpcs == 0 && e2e_now_ms() < deadline) {
        int errors = c->errors;
        kaos_client_rpc_call(c->c, "version", "", e2e_on_rpc, c);
        E2E_WAIT(c->rpcs == 1 || c->errors > errors, 5000);
        e2e_pump_for(50);
    }
    assert_string_equal(c->rpc_payload, "ok");
    e2e_client_free(c);
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_rpc_answers_with_what_the_function_returned),
        cmocka_unit_test(script_errors_and_unknown_ids_reach_the_client_with_codes),
        cmocka_unit_test(rpcs_need_a_session),
        cmocka_unit_test(server_to_server_rpc_over_http_needs_the_key),
        cmocka_unit_test(sighup_reloads_modules_while_clients_stay_connected),
        cmocka_unit_test(with_runtime_watch_a_saved_file_reloads_by_itself),
        cmocka_unit_test(a_broken_module_stops_the_server_with_file_and_line),
        cmocka_unit_test(with_allow_errors_a_broken_module_starts_empty_until_fixed),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_examples, e2e_group_teardown);
}
