/* Lua runtime: module loading order and errors with file:line, the sandbox,
 * RPC registration and calls, structured errors, JSON, the memory cap, and
 * the registration of bindings (a service's kaos.* functions, their ud and
 * the call's database). The services' own functions are tested next to
 * them (tests/unit/account/test_account_lua.c, storage/test_storage_lua.c). */
#include "failalloc.h"
#include "luatest.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_lua_bind.h"
#include "kn_runtime.h"
#include "kn_codec.h"
#include "kn_match.h"

#include <setjmp.h>
#include <time.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static void modules_load_in_name_order_and_rpcs_answer(void **state)
{
    luatest_write("b_second.lua",
                  "local kaos = require('kaos')\n"
                  "local a = require('a_first')\n"
                  "kaos.register_rpc(function(ctx, p) return a.tag .. ':' .. p .. ':' "
                  ".. ctx.username end, 'echo')\n");
    luatest_write("a_first.lua", "order = (order or '') .. 'a'\nreturn { tag = 'A' }\n");
    luatest_write("notes.txt", "not lua");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    assert_int_equal(kn_runtime_module_count(rt), 2);
    assert_true(kn_runtime_has_rpc(vm, "echo"));
    int rc;
    char msg[256];
    char *out = luatest_call(vm, "echo", "hi", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "A:hi:alice");
    kn_free(out);
    out = luatest_call(vm, "nope", "", &rc, msg);
    assert_int_equal(rc, KN_ERR_NOT_FOUND);
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_syntax_error_is_reported_with_file_and_line(void **state)
{
    luatest_write("good.lua", "x = 1\n");
    luatest_write("broken.lua", "local a = 1\nlocal b = = 2\n");
    kn_runtime_config cfg = {.path = luatest_dir()};
    kn_runtime *rt = (kn_runtime *)1;
    char err[256] = "";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_null(rt);
    if (!strstr(err, "broken.lua:2:")) fail_msg("got \"%s\"", err);
    char path[128];
    snprintf(path, sizeof path, "%s/broken.lua", luatest_dir());
    unlink(path);
    luatest_write("raises.lua", "\n\nerror('boom at load')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "raises.lua:3: boom at load")) fail_msg("got \"%s\"", err);
}

static void the_sandbox_has_no_io_os_execute_debug_or_bytecode(void **state)
{
    luatest_write("probe.lua",
                  "local kaos = require('kaos')\n"
                  "kaos.register_rpc(function(ctx, what)\n"
                  "  if what == 'io' then return tostring(io) end\n"
                  "  if what == 'exec' then return tostring(os.execute) end\n"
                  "  if what == 'debug' then return tostring(debug) end\n"
                  "  if what == 'dofile' then return tostring(dofile) end\n"
                  "  if what == 'time' then return tostring(type(os.time())) end\n"
                  "  if what == 'bytecode' then\n"
                  "    local f, err = load(string.dump(function() return 1 end))\n"
                  "    return tostring(f) .. ' ' .. tostring(err)\n"
                  "  end\n"
                  "  if what == 'text' then return tostring(load('return 40 + 2')()) end\n"
                  "  if what == 'require' then return tostring(pcall(require, 'os')) end\n"
                  "end, 'probe')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    struct {
        const char *what, *want;
    } cases[] = {{"io", "nil"},      {"exec", "nil"}, {"debug", "nil"},    {"dofile", "nil"},
                 {"time", "number"}, {"text", "42"},  {"require", "false"}};
    int rc;
    char msg[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = luatest_call(vm, "probe", cases[i].what, &rc, msg);
        assert_int_equal(rc, KN_OK);
        if (strcmp(out, cases[i].want)) fail_msg("%s: got %s", cases[i].what, out);
        kn_free(out);
    }
    char *out = luatest_call(vm, "probe", "bytecode", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "nil attempt to load a binary chunk"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void script_errors_keep_their_code_and_others_become_internal(void **state)
{
    luatest_write(
        "errs.lua",
        "local kaos = require('kaos')\n"
        "kaos.register_rpc(function() error({code = 3, message = 'bad input'}) end, 'coded')\n"
        "kaos.register_rpc(function() error('oops') end, 'plain')\n"
        "kaos.register_rpc(function() return {} end, 'table')\n"
        "kaos.register_rpc(function() local t = {} while true do t[#t+1] = "
        "string.rep('x', 65536) end end, 'hog')\n"
        "kaos.register_rpc(function() return 'still fine' end, 'after')\n");
    kn_runtime *rt;
    kn_runtime_config cfg = {.path = luatest_dir(), .memory_limit = 8 << 20};
    char err[256];
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(rt, &vm), KN_OK);
    int rc;
    char msg[256];
    assert_null(luatest_call(vm, "coded", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "bad input");
    assert_null(luatest_call(vm, "plain", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_string_equal(msg, "rpc plain failed");
    assert_null(luatest_call(vm, "table", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_null(luatest_call(vm, "hog", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_RESOURCE_EXHAUSTED);
    char *out = luatest_call(vm, "after", "", &rc, msg); /* the VM survives the cap */
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "still fine");
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

/* Load, a VM (its heap's pages included), one call and teardown; 0 when
 * all of it worked. */
static int load_create_call(void *arg)
{
    kn_runtime_config cfg = {.path = luatest_dir()};
    kn_runtime *rt;
    char err[256];
    if (kn_runtime_load(&cfg, &rt, err, sizeof err)) return -1;
    kn_runtime_vm *vm;
    int rc = kn_runtime_vm_create(rt, &vm);
    if (rc == KN_OK) {
        char msg[256];
        char *out = luatest_call(vm, "count", "", &rc, msg);
        if (rc == KN_OK && strcmp(out, "300")) fail_msg("got %s", out);
        kn_free(out);
        kn_runtime_vm_destroy(vm);
    }
    kn_runtime_destroy(rt);
    return rc;
}

static void running_out_of_memory_anywhere_in_load_create_or_a_call_cleans_up(void **state)
{
    luatest_write("count.lua", "local kaos = require('kaos')\n"
                               "kaos.register_rpc(function()\n"
                               "  local t = {}\n"
                               "  for i = 1, 300 do t[i] = {id = 'p' .. i} end\n"
                               "  return tostring(#t)\n"
                               "end, 'count')\n");
    assert_true(failalloc_sweep(load_create_call, NULL) > 10);
}

static void json_round_trips_through_lua(void **state)
{
    luatest_write(
        "js.lua",
        "local kaos = require('kaos')\n"
        "kaos.register_rpc(function(ctx, p)\n"
        "  local v = kaos.json_decode(p)\n"
        "  v.sum = v.a + v.b\n"
        "  v.list[#v.list + 1] = kaos.uuid_v4():len()\n"
        "  return kaos.json_encode(v)\n"
        "end, 'js')\n"
        "kaos.register_rpc(function(ctx, p) return kaos.json_encode({f = print}) end, 'bad')\n"
        "kaos.register_rpc(function(ctx, p) return kaos.json_decode(p) end, 'dec')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    int rc;
    char msg[256];
    char *out = luatest_call(vm, "js", "{\"a\":2,\"b\":40,\"list\":[\"x\"]}", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "\"sum\":42"));
    assert_non_null(strstr(out, "\"list\":[\"x\",36]"));
    kn_free(out);
    assert_null(luatest_call(vm, "bad", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_null(luatest_call(vm, "dec", "{not json", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void hashing_and_base64_match_known_vectors(void **state)
{
    luatest_write("h.lua",
                  "local kaos = require('kaos')\n"
                  "kaos.register_rpc(function(ctx, p)\n"
                  "  return table.concat({kaos.sha256_hash('abc'),\n"
                  "    kaos.hmac_sha256_hash('what do ya want for nothing?', 'Jefe'),\n"
                  "    kaos.base64_encode('hello\\0world'), kaos.base64_decode('aGk=')}, ' ')\n"
                  "end, 'h')\n"
                  "kaos.register_rpc(function() return kaos.base64_decode('!!!') end, 'bad')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    int rc;
    char msg[256];
    char *out = luatest_call(vm, "h", "", &rc, msg);
    assert_int_equal(rc, KN_OK);
    /* FIPS 180-2 "abc"; RFC 4231 test case 2 */
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
                             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843 "
                             "aGVsbG8Ad29ybGQ= hi");
    kn_free(out);
    assert_null(luatest_call(vm, "bad", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_slot_follows_the_host_and_old_code_lives_until_its_vm_goes(void **state)
{
    luatest_write("v.lua", "require('kaos').register_rpc(function() return 'one' end, 'v')\n");
    kn_runtime_config cfg = {.path = luatest_dir()};
    char err[256];
    kn_runtime *rt1, *rt2;
    assert_int_equal(kn_runtime_load(&cfg, &rt1, err, sizeof err), KN_OK);
    kn_runtime_host *host;
    assert_int_equal(kn_runtime_host_create(rt1, &host), KN_OK);
    assert_false(kn_runtime_host_has_script(host, KN_RUNTIME_MATCHED_ID));
    kn_runtime_slot *a, *b;
    assert_int_equal(kn_runtime_slot_create(host, &a), KN_OK);
    assert_int_equal(kn_runtime_slot_create(host, &b), KN_OK);
    int rc;
    char msg[256];
    char *out = luatest_call(kn_runtime_slot_vm(a), "v", "", &rc, msg);
    assert_string_equal(out, "one");
    kn_free(out);
    kn_runtime_vm *old_b = kn_runtime_slot_vm(b); /* b now holds a VM of rt1 too */

    luatest_write("v.lua", "require('kaos').register_rpc(function() return 'two' end, 'v')\n"
                           "require('kaos').register_matchmaker_override(function() end)\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt2, err, sizeof err), KN_OK);
    kn_runtime_host_swap(host, rt2); /* rt1 stays alive: a's and b's VMs use it */
    /* The matchmaker's script hooks follow the swap. */
    assert_true(kn_runtime_host_has_script(host, KN_RUNTIME_OVERRIDE_ID));
    assert_false(kn_runtime_host_has_script(host, KN_RUNTIME_PROCESSOR_ID));
    assert_false(kn_runtime_host_has_script(host, "v"));
    out = luatest_call(kn_runtime_slot_vm(a), "v", "", &rc, msg);
    assert_string_equal(out, "two");
    kn_free(out);
    out = luatest_call(old_b, "v", "", &rc,
                       msg); /* a call that started on the old code finishes on it */
    assert_string_equal(out, "one");
    kn_free(out);
    out = luatest_call(kn_runtime_slot_vm(b), "v", "", &rc, msg);
    assert_string_equal(out, "two");
    kn_free(out);
    kn_runtime_slot_destroy(a);
    kn_runtime_slot_destroy(b);
    kn_runtime_host_destroy(host); /* ASan: every runtime and VM freed by now */
}

/* What kn_runtime_host_describe hands the admin console. */
typedef struct described {
    char text[1024];
} described;

static void describe_into(void *ud, const char *kind, const char *name)
{
    described *d = ud;
    size_t n = strlen(d->text);
    snprintf(d->text + n, sizeof d->text - n, "%s:%s;", kind, name);
}

static void the_host_describes_modules_rpcs_hooks_and_match_handlers(void **state)
{
    luatest_write("game.lua",
                  "local kaos = require('kaos')\n"
                  "local noop = function() end\n"
                  "kaos.register_rpc(function() return '' end, 'ping')\n"
                  "kaos.register_req_before(function(ctx, req) return req end, 'rpc')\n"
                  "kaos.register_match('arena', {match_init = noop, match_join_attempt = noop,\n"
                  "  match_join = noop, match_leave = noop, match_loop = noop,\n"
                  "  match_terminate = noop, match_signal = noop})\n");
    kn_runtime_config cfg = {.path = luatest_dir()};
    char err[256];
    kn_runtime *rt;
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_host *host;
    assert_int_equal(kn_runtime_host_create(rt, &host), KN_OK);
    described d = {""};
    kn_runtime_host_describe(host, describe_into, &d);
    assert_string_equal(d.text, "module:game;rpc:ping;match:arena;before:rpc;");
    /* After a swap it describes the new code. */
    luatest_write("game.lua", "require('kaos').register_rpc(function() return '' end, 'pong')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_host_swap(host, rt);
    d.text[0] = '\0';
    kn_runtime_host_describe(host, describe_into, &d);
    assert_string_equal(d.text, "module:game;rpc:pong;");
    kn_runtime_host_destroy(host);
}

static void run_once_runs_at_start_only_and_env_reaches_the_context(void **state)
{
    luatest_write("once.lua",
                  "local kaos = require('kaos')\n"
                  "kaos.run_once(function(ctx)\n"
                  "  if ctx.execution_mode ~= 'run_once' or ctx.env.region ~= 'eu' then\n"
                  "    error('unexpected context')\n"
                  "  end\n"
                  "end)\n"
                  "kaos.register_rpc(function(ctx) return ctx.env.mode end, 'mode')\n");
    kn_runtime_config cfg = {.path = luatest_dir(), .env = "region=eu,mode=test", .run_once = true};
    char err[512] = "";
    kn_runtime *rt;
    int rc = kn_runtime_load(&cfg, &rt, err, sizeof err);
    if (rc) fail_msg("load: %s", err);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(rt, &vm), KN_OK); /* run_once does not run again here */
    char msg[256];
    char *out = luatest_call(vm, "mode", "", &rc, msg);
    assert_string_equal(out, "test");
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    luatest_write("boom.lua", "require('kaos').run_once(function() error('boom') end)\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "run_once: boom.lua:1: boom"));
    cfg.run_once = false; /* a reload: run_once functions are not run again */
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_destroy(rt);
    cfg.env = "novalue";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "expected key=value"));
}

/* A fake service: bump(n) adds n to the counter its binding's ud points
 * to (a long-lived dependency); db_is_mine() compares the call's database
 * connection with its own binding's ud (per-call state). */
static int fake_bump(lua_State *L)
{
    int *counter = kn_lua_binding_ud(L);
    *counter += (int)luaL_checkinteger(L, 1);
    lua_pushinteger(L, *counter);
    return 1;
}

static int fake_db_is_mine(lua_State *L)
{
    kn_db *db = kn_lua_db(L, "db_is_mine");
    lua_pushboolean(L, db == kn_lua_binding_ud(L));
    return 1;
}

static void a_binding_reaches_every_vm_with_its_ud_and_the_call_s_database(void **state)
{
    static const luaL_Reg bump_funcs[] = {{"bump", fake_bump}, {NULL, NULL}};
    static const luaL_Reg db_funcs[] = {{"db_is_mine", fake_db_is_mine}, {NULL, NULL}};
    int counter = 0, db_mark = 0;
    const kn_lua_binding bindings[] = {
        {"counter", bump_funcs, &counter},
        {"db", db_funcs, &db_mark},
    };
    luatest_write(
        "fake.lua",
        "local kaos = require('kaos')\n"
        "kaos.bump(1)\n" /* module load: once per VM */
        "kaos.run_once(function() kaos.bump(10) end)\n"
        "kaos.register_rpc(function(ctx, p) return tostring(kaos.bump(tonumber(p))) end, 'bump')\n"
        "kaos.register_rpc(function()\n"
        "  local ok, e = pcall(kaos.db_is_mine)\n"
        "  return tostring(ok) .. ' ' .. tostring(e)\n"
        "end, 'db')\n");
    kn_runtime_config cfg = {
        .path = luatest_dir(), .run_once = true, .bindings = bindings, .n_bindings = 2};
    char err[512] = "", msg[256];
    kn_runtime *rt;
    if (kn_runtime_load(&cfg, &rt, err, sizeof err)) fail_msg("load: %s", err);
    assert_int_equal(counter, 11); /* the check VM loaded the module and ran run_once */
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(rt, &vm), KN_OK);
    assert_int_equal(counter, 12);
    int rc;
    char *out = luatest_call(vm, "bump", "5", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "17");
    kn_free(out);
    assert_int_equal(counter, 17);

    out = luatest_call(vm, "db", "", &rc, msg); /* no services: no database */
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "false "));
    assert_non_null(
        strstr(out, "kaos.db_is_mine is not available in rpc (no database connection)"));
    kn_free(out);
    out = luatest_call_db(vm, (kn_db *)&db_mark, "db", "", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "true true");
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* Where no call brings a database: run_once and module loading. */
    luatest_write("fake.lua", "local kaos = require('kaos')\n"
                              "kaos.run_once(function() kaos.db_is_mine() end)\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "kaos.db_is_mine is not available in run_once (no database connection)"))
        fail_msg("got \"%s\"", err);
    luatest_write("fake.lua", "require('kaos').db_is_mine()\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "fake.lua:1: kaos.db_is_mine is not available in module loading"))
        fail_msg("got \"%s\"", err);
    /* Without the binding the function does not exist. */
    cfg.n_bindings = 1;
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "attempt to call a nil value (field 'db_is_mine')"))
        fail_msg("got \"%s\"", err);
}

static void cron_next_follows_the_expression_in_utc(void **state)
{
    luatest_write("cron.lua", "local kaos = require('kaos')\n"
                              "kaos.register_rpc(function(ctx, p)\n"
                              "  local ok, err = pcall(kaos.cron_next, 'bad', 0)\n"
                              "  return tostring(kaos.cron_next(p, 1700000000)) .. '|' .. "
                              "tostring(kaos.cron_next('0 0 30 2 *', 0))\n"
                              "    .. '|' .. tostring(ok) .. '|' .. tostring(err)\n"
                              "end, 'cron')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    int rc;
    char msg[256];
    /* 1700000000 = 2023-11-14 22:13:20 UTC; the next midnight is 1700006400. */
    char *out = luatest_call(vm, "cron", "0 0 * * *", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "1700006400|nil|false|"));
    assert_non_null(strstr(out, "cron_next: expected 5 fields"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_call_past_its_budget_is_stopped_and_the_vm_keeps_serving(void **state)
{
    luatest_write("spin.lua",
                  "local kaos = require('kaos')\n"
                  "kaos.register_rpc(function() while true do end end, 'spin')\n"
                  "kaos.register_rpc(function()\n"
                  "  while true do pcall(function() while true do end end) end\n"
                  "end, 'stubborn')\n"
                  "kaos.register_rpc(function(ctx, p) return 'ok:' .. p end, 'quick')\n");
    kn_runtime_config cfg = {.path = luatest_dir(), .call_budget_ms = 50};
    char err[256] = "";
    kn_runtime *rt;
    if (kn_runtime_load(&cfg, &rt, err, sizeof err)) fail_msg("load: %s", err);
    kn_runtime_host *h;
    assert_int_equal(kn_runtime_host_create(rt, &h), KN_OK);
    kn_runtime_slot *slot;
    assert_int_equal(kn_runtime_slot_create(h, &slot), KN_OK);
    kn_runtime_vm *vm = kn_runtime_slot_vm(slot);
    assert_non_null(vm);
    int rc;
    char msg[256];
    const char *ids[] = {"spin", "stubborn"};
    for (int i = 0; i < 2; i++) {
        char *out = luatest_call(vm, ids[i], "", &rc, msg);
        assert_int_equal(rc, KN_ERR_DEADLINE_EXCEEDED);
        assert_null(out);
        assert_non_null(strstr(msg, "ran past its time budget"));
        out = luatest_call(vm, "quick", "x", &rc, msg); /* the same VM, no hook left behind */
        assert_int_equal(rc, KN_OK);
        assert_string_equal(out, "ok:x");
        kn_free(out);
    }
    kn_runtime_slot_destroy(slot);
    kn_runtime_host_destroy(h);
}

/* kaos.test_sleep_ms(n): the calling thread sleeps, using no CPU — what a
 * call sees when the machine gives its thread no CPU for that long. */
static int test_sleep_ms(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static const luaL_Reg sleep_funcs[] = {{"test_sleep_ms", test_sleep_ms}, {NULL, NULL}};

/* A match callback past its wall-clock budget that used little CPU was
 * starved, not running away: it gets the rest of its budget, up to five
 * budgets of wall time; a callback that spins is still stopped at its
 * budget; an RPC's budget stays plain wall time. */
static void a_starved_match_call_is_not_taken_for_a_runaway(void **state)
{
    luatest_write(
        "starved.lua",
        "local kaos = require('kaos')\n"
        "local function noop(c, d, t, s) return s end\n"
        "kaos.register_match('nap', {\n"
        "  match_init = function() return {}, 10, nil end,\n"
        "  match_join_attempt = function(c, d, t, s) return s, true end,\n"
        "  match_join = noop, match_leave = noop, match_terminate = noop,\n"
        "  match_loop = function(c, d, t, s) kaos.test_sleep_ms(s.nap or 0)\n"
        "    local n = 0\n"
        "    for i = 1, 1000 do n = n + i end\n"
        "    return s end,\n"
        "  match_signal = function(c, d, t, s, data)\n"
        "    if data == 'spin' then while true do end end\n"
        "    s.nap = tonumber(data); return s, 'ok' end,\n"
        "})\n"
        "kaos.register_rpc(function(ctx, p) kaos.test_sleep_ms(tonumber(p)) return 'x' end,"
        " 'nap')\n");
    kn_lua_binding b = {.name = "test", .funcs = sleep_funcs};
    kn_runtime_config cfg = {.path = luatest_dir(),
                             .call_budget_ms = 50,
                             .match_budget_ms = 50,
                             .bindings = &b,
                             .n_bindings = 1};
    char err[256] = "";
    kn_runtime *rt;
    if (kn_runtime_load(&cfg, &rt, err, sizeof err)) fail_msg("load: %s", err);
    kn_runtime_host *h;
    assert_int_equal(kn_runtime_host_create(rt, &h), KN_OK);
    char msg[256];
    kn_match_handler *m;
    assert_int_equal(kn_runtime_match_factory(h, "nap", "m.1", "n1", &m, msg, sizeof msg), KN_OK);
    kn_match_call c = {.match_id = "m.1", .node = "n1"};
    int rate = 0;
    char *label = NULL;
    assert_int_equal(m->vt->init(m, &c, "", 0, &rate, &label, msg, sizeof msg), KN_OK);
    kn_free(label);
    char *resp = NULL;
    size_t resp_len = 0;
    bool end = false;
    /* 120 ms without CPU against a 50 ms budget: the tick completes. */
    assert_int_equal(m->vt->signal(m, &c, "120", 3, &resp, &resp_len, msg, sizeof msg), KN_OK);
    kn_free(resp);
    assert_int_equal(m->vt->loop(m, &c, NULL, 0, &end, msg, sizeof msg), KN_OK);
    /* Past five budgets of wall time (250 ms): stopped, however little CPU. */
    assert_int_equal(m->vt->signal(m, &c, "400", 3, &resp, &resp_len, msg, sizeof msg), KN_OK);
    kn_free(resp);
    assert_int_equal(m->vt->loop(m, &c, NULL, 0, &end, msg, sizeof msg), KN_ERR_DEADLINE_EXCEEDED);
    /* Spinning uses its CPU: stopped at its budget as before. */
    resp = NULL;
    assert_int_equal(m->vt->signal(m, &c, "spin", 4, &resp, &resp_len, msg, sizeof msg),
                     KN_ERR_DEADLINE_EXCEEDED);
    kn_free(resp);
    m->vt->destroy(m);
    /* An RPC waiting 120 ms (on Postgres, say) is past its 50 ms wall-time budget. */
    kn_runtime_slot *slot;
    assert_int_equal(kn_runtime_slot_create(h, &slot), KN_OK);
    int rc;
    char *out = luatest_call(kn_runtime_slot_vm(slot), "nap", "120", &rc, msg);
    assert_int_equal(rc, KN_ERR_DEADLINE_EXCEEDED);
    assert_null(out);
    kn_runtime_slot_destroy(slot);
    kn_runtime_host_destroy(h);
}

static void hooks_register_by_op_name_and_see_rewrite_refuse_and_reply(void **state)
{
    luatest_write(
        "hooks.lua",
        "local kaos = require('kaos')\n"
        "kaos.register_req_before(function(ctx, req)\n"
        "  if req.payload == 'deny' then return nil end\n"
        "  if req.payload == 'code' then error({code = 9, message = 'not now'}) end\n"
        "  req.payload = req.payload .. '+' .. ctx.vars.platform .. '+' .. ctx.execution_mode\n"
        "  return req\n"
        "end, 'rpc')\n"
        "kaos.register_req_after(function(ctx, res, req)\n"
        "  seen = res.payload .. '<' .. req.payload\n"
        "end, 'Rpc')\n"
        "kaos.register_req_before(function(ctx, req) return req end, 'matchmaker_add')\n"
        "kaos.register_rpc(function() return seen end, 'seen')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, NULL, 0);
    assert_true(kn_runtime_has_hook(rt, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_RPC));
    assert_true(kn_runtime_has_hook(rt, KN_HOOK_AFTER, KAOS__V1__ENVELOPE__MESSAGE_RPC));
    assert_false(kn_runtime_has_hook(rt, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_PING));
    /* Message cases past 255 (the matchmaker's 310-349) have hooks too. */
    assert_true(
        kn_runtime_has_hook(rt, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_MATCHMAKER_ADD));
    kn_runtime_context bctx = luatest_ctx;
    bctx.execution_mode = "before";
    char *out = NULL, msg[256];
    size_t n;
    const char *req = "{\"id\":\"x\",\"payload\":\"hi\"}";
    int rc = kn_runtime_hook(vm, &bctx, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_RPC, req,
                             strlen(req), NULL, 0, &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "\"payload\":\"hi+linux+before\""));
    kn_free(out);
    req = "{\"id\":\"x\",\"payload\":\"deny\"}";
    rc = kn_runtime_hook(vm, &bctx, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_RPC, req,
                         strlen(req), NULL, 0, &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "rpc rejected by a before hook");
    req = "{\"id\":\"x\",\"payload\":\"code\"}";
    rc = kn_runtime_hook(vm, &bctx, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_RPC, req,
                         strlen(req), NULL, 0, &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_ERR_FAILED_PRECONDITION);
    assert_string_equal(msg, "not now");
    const char *res = "{\"id\":\"x\",\"payload\":\"out\"}";
    req = "{\"id\":\"x\",\"payload\":\"in\"}";
    rc = kn_runtime_hook(vm, &luatest_ctx, KN_HOOK_AFTER, KAOS__V1__ENVELOPE__MESSAGE_RPC, req,
                         strlen(req), res, strlen(res), &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_null(out);
    out = luatest_call(vm, "seen", "", &rc, msg);
    assert_string_equal(out, "out<in");
    kn_free(out);
    /* No hook for an operation: nothing runs, nothing is returned. */
    rc = kn_runtime_hook(vm, &luatest_ctx, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_PING, "{}",
                         2, NULL, 0, &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* Unknown operations and the realtime path are refused at load. */
    char err[512];
    kn_runtime_config cfg = {.path = luatest_dir()};
    luatest_write(
        "hooks.lua",
        "require('kaos').register_req_before(function(c, r) return r end, 'frobnicate')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "hooks.lua:1: unknown operation \"frobnicate\""));
    luatest_write("hooks.lua",
                  "require('kaos').register_req_after(function() end, 'match_data_send')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "match_data_send takes no hooks"));
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(modules_load_in_name_order_and_rpcs_answer, luatest_setup,
                                        luatest_teardown),
        cmocka_unit_test_setup_teardown(a_syntax_error_is_reported_with_file_and_line,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(the_sandbox_has_no_io_os_execute_debug_or_bytecode,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(script_errors_keep_their_code_and_others_become_internal,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(
            running_out_of_memory_anywhere_in_load_create_or_a_call_cleans_up, luatest_setup,
            luatest_teardown),
        cmocka_unit_test_setup_teardown(json_round_trips_through_lua, luatest_setup,
                                        luatest_teardown),
        cmocka_unit_test_setup_teardown(hashing_and_base64_match_known_vectors, luatest_setup,
                                        luatest_teardown),
        cmocka_unit_test_setup_teardown(
            a_slot_follows_the_host_and_old_code_lives_until_its_vm_goes, luatest_setup,
            luatest_teardown),
        cmocka_unit_test_setup_teardown(
            a_binding_reaches_every_vm_with_its_ud_and_the_call_s_database, luatest_setup,
            luatest_teardown),
        cmocka_unit_test_setup_teardown(cron_next_follows_the_expression_in_utc, luatest_setup,
                                        luatest_teardown),
        cmocka_unit_test_setup_teardown(a_starved_match_call_is_not_taken_for_a_runaway,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(a_call_past_its_budget_is_stopped_and_the_vm_keeps_serving,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(hooks_register_by_op_name_and_see_rewrite_refuse_and_reply,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(run_once_runs_at_start_only_and_env_reaches_the_context,
                                        luatest_setup, luatest_teardown),
        cmocka_unit_test_setup_teardown(the_host_describes_modules_rpcs_hooks_and_match_handlers,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
