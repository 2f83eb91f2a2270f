/* Lua runtime: module loading order and errors with file:line, the sandbox,
 * RPC registration and calls, structured errors, JSON, the memory cap, and
 * the input checks of the account and storage functions. */
#include "failalloc.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_runtime.h"
#include "kn_codec.h"

#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64];

static void write_module(const char *name, const char *src)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/kaos-rt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static kn_runtime_vm *load_vm(kn_runtime **rt)
{
    kn_runtime_config cfg = {.path = dir};
    char err[256] = "";
    int rc = kn_runtime_load(&cfg, rt, err, sizeof err);
    if (rc) fail_msg("load failed: %s", err);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(*rt, &vm), KN_OK);
    return vm;
}

static const kn_token_var ctx_vars[] = {{"platform", "linux"}};
static const kn_runtime_context ctx = {"user-1", "alice", "sess-1", "127.0.0.1", "rpc", ctx_vars, 1, NULL};

static char *call(kn_runtime_vm *vm, const char *id, const char *payload, int *rc, char *msg)
{
    char *out = NULL;
    size_t n;
    *rc = kn_runtime_rpc(vm, &ctx, id, payload, strlen(payload), &out, &n, msg, 256);
    return out;
}

static void modules_load_in_name_order_and_rpcs_answer(void **state)
{
    write_module("b_second.lua", "local kaos = require('kaos')\n"
                                 "local a = require('a_first')\n"
                                 "kaos.register_rpc(function(ctx, p) return a.tag .. ':' .. p .. ':' "
                                 ".. ctx.username end, 'echo')\n");
    write_module("a_first.lua", "order = (order or '') .. 'a'\nreturn { tag = 'A' }\n");
    write_module("notes.txt", "not lua");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    assert_int_equal(kn_runtime_module_count(rt), 2);
    assert_true(kn_runtime_has_rpc(vm, "echo"));
    int rc;
    char msg[256];
    char *out = call(vm, "echo", "hi", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "A:hi:alice");
    kn_free(out);
    out = call(vm, "nope", "", &rc, msg);
    assert_int_equal(rc, KN_ERR_NOT_FOUND);
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_syntax_error_is_reported_with_file_and_line(void **state)
{
    write_module("good.lua", "x = 1\n");
    write_module("broken.lua", "local a = 1\nlocal b = = 2\n");
    kn_runtime_config cfg = {.path = dir};
    kn_runtime *rt = (kn_runtime *)1;
    char err[256] = "";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_null(rt);
    if (!strstr(err, "broken.lua:2:")) fail_msg("got \"%s\"", err);
    char path[128];
    snprintf(path, sizeof path, "%s/broken.lua", dir);
    unlink(path);
    write_module("raises.lua", "\n\nerror('boom at load')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    if (!strstr(err, "raises.lua:3: boom at load")) fail_msg("got \"%s\"", err);
}

static void the_sandbox_has_no_io_os_execute_debug_or_bytecode(void **state)
{
    write_module("probe.lua",
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
    kn_runtime_vm *vm = load_vm(&rt);
    struct {
        const char *what, *want;
    } cases[] = {{"io", "nil"},      {"exec", "nil"},        {"debug", "nil"},
                 {"dofile", "nil"},  {"time", "number"},     {"text", "42"},
                 {"require", "false"}};
    int rc;
    char msg[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = call(vm, "probe", cases[i].what, &rc, msg);
        assert_int_equal(rc, KN_OK);
        if (strcmp(out, cases[i].want)) fail_msg("%s: got %s", cases[i].what, out);
        kn_free(out);
    }
    char *out = call(vm, "probe", "bytecode", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "nil attempt to load a binary chunk"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void script_errors_keep_their_code_and_others_become_internal(void **state)
{
    write_module("errs.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.register_rpc(function() error({code = 3, message = 'bad input'}) end, 'coded')\n"
                 "kaos.register_rpc(function() error('oops') end, 'plain')\n"
                 "kaos.register_rpc(function() return {} end, 'table')\n"
                 "kaos.register_rpc(function() local t = {} while true do t[#t+1] = "
                 "string.rep('x', 65536) end end, 'hog')\n"
                 "kaos.register_rpc(function() return 'still fine' end, 'after')\n");
    kn_runtime *rt;
    kn_runtime_config cfg = {.path = dir, .memory_limit = 8 << 20};
    char err[256];
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(rt, &vm), KN_OK);
    int rc;
    char msg[256];
    assert_null(call(vm, "coded", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "bad input");
    assert_null(call(vm, "plain", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_string_equal(msg, "rpc plain failed");
    assert_null(call(vm, "table", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_null(call(vm, "hog", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_RESOURCE_EXHAUSTED);
    char *out = call(vm, "after", "", &rc, msg); /* the VM survives the cap */
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
    kn_runtime_config cfg = {.path = dir};
    kn_runtime *rt;
    char err[256];
    if (kn_runtime_load(&cfg, &rt, err, sizeof err)) return -1;
    kn_runtime_vm *vm;
    int rc = kn_runtime_vm_create(rt, &vm);
    if (rc == KN_OK) {
        char msg[256];
        char *out = call(vm, "count", "", &rc, msg);
        if (rc == KN_OK && strcmp(out, "300")) fail_msg("got %s", out);
        kn_free(out);
        kn_runtime_vm_destroy(vm);
    }
    kn_runtime_destroy(rt);
    return rc;
}

static void running_out_of_memory_anywhere_in_load_create_or_a_call_cleans_up(void **state)
{
    write_module("count.lua", "local kaos = require('kaos')\n"
                              "kaos.register_rpc(function()\n"
                              "  local t = {}\n"
                              "  for i = 1, 300 do t[i] = {id = 'p' .. i} end\n"
                              "  return tostring(#t)\n"
                              "end, 'count')\n");
    assert_true(failalloc_sweep(load_create_call, NULL) > 10);
}

static void json_round_trips_through_lua(void **state)
{
    write_module("js.lua",
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
    kn_runtime_vm *vm = load_vm(&rt);
    int rc;
    char msg[256];
    char *out = call(vm, "js", "{\"a\":2,\"b\":40,\"list\":[\"x\"]}", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "\"sum\":42"));
    assert_non_null(strstr(out, "\"list\":[\"x\",36]"));
    kn_free(out);
    assert_null(call(vm, "bad", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    assert_null(call(vm, "dec", "{not json", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void hashing_and_base64_match_known_vectors(void **state)
{
    write_module("h.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.register_rpc(function(ctx, p)\n"
                 "  return table.concat({kaos.sha256_hash('abc'),\n"
                 "    kaos.hmac_sha256_hash('what do ya want for nothing?', 'Jefe'),\n"
                 "    kaos.base64_encode('hello\\0world'), kaos.base64_decode('aGk=')}, ' ')\n"
                 "end, 'h')\n"
                 "kaos.register_rpc(function() return kaos.base64_decode('!!!') end, 'bad')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    int rc;
    char msg[256];
    char *out = call(vm, "h", "", &rc, msg);
    assert_int_equal(rc, KN_OK);
    /* FIPS 180-2 "abc"; RFC 4231 test case 2 */
    assert_string_equal(out,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "
                        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843 "
                        "aGVsbG8Ad29ybGQ= hi");
    kn_free(out);
    assert_null(call(vm, "bad", "", &rc, msg));
    assert_int_equal(rc, KN_ERR_INTERNAL);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_slot_follows_the_host_and_old_code_lives_until_its_vm_goes(void **state)
{
    write_module("v.lua", "require('kaos').register_rpc(function() return 'one' end, 'v')\n");
    kn_runtime_config cfg = {.path = dir};
    char err[256];
    kn_runtime *rt1, *rt2;
    assert_int_equal(kn_runtime_load(&cfg, &rt1, err, sizeof err), KN_OK);
    kn_runtime_host *host;
    assert_int_equal(kn_runtime_host_create(rt1, &host), KN_OK);
    kn_runtime_slot *a, *b;
    assert_int_equal(kn_runtime_slot_create(host, &a), KN_OK);
    assert_int_equal(kn_runtime_slot_create(host, &b), KN_OK);
    int rc;
    char msg[256];
    char *out = call(kn_runtime_slot_vm(a), "v", "", &rc, msg);
    assert_string_equal(out, "one");
    kn_free(out);
    kn_runtime_vm *old_b = kn_runtime_slot_vm(b); /* b now holds a VM of rt1 too */

    write_module("v.lua", "require('kaos').register_rpc(function() return 'two' end, 'v')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt2, err, sizeof err), KN_OK);
    kn_runtime_host_swap(host, rt2); /* rt1 stays alive: a's and b's VMs use it */
    out = call(kn_runtime_slot_vm(a), "v", "", &rc, msg);
    assert_string_equal(out, "two");
    kn_free(out);
    out = call(old_b, "v", "", &rc, msg); /* a call that started on the old code finishes on it */
    assert_string_equal(out, "one");
    kn_free(out);
    out = call(kn_runtime_slot_vm(b), "v", "", &rc, msg);
    assert_string_equal(out, "two");
    kn_free(out);
    kn_runtime_slot_destroy(a);
    kn_runtime_slot_destroy(b);
    kn_runtime_host_destroy(host); /* ASan: every runtime and VM freed by now */
}

static void run_once_runs_at_start_only_and_env_reaches_the_context(void **state)
{
    write_module("once.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.run_once(function(ctx)\n"
                 "  if ctx.execution_mode ~= 'run_once' or ctx.env.region ~= 'eu' then\n"
                 "    error('unexpected context')\n"
                 "  end\n"
                 "end)\n"
                 "kaos.register_rpc(function(ctx) return ctx.env.mode end, 'mode')\n");
    kn_runtime_config cfg = {.path = dir, .env = "region=eu,mode=test", .run_once = true};
    char err[512] = "";
    kn_runtime *rt;
    int rc = kn_runtime_load(&cfg, &rt, err, sizeof err);
    if (rc) fail_msg("load: %s", err);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(rt, &vm), KN_OK); /* run_once does not run again here */
    char msg[256];
    char *out = call(vm, "mode", "", &rc, msg);
    assert_string_equal(out, "test");
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    write_module("boom.lua", "require('kaos').run_once(function() error('boom') end)\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "run_once: boom.lua:1: boom"));
    cfg.run_once = false; /* a reload: run_once functions are not run again */
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_OK);
    kn_runtime_destroy(rt);
    cfg.env = "novalue";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "expected key=value"));
}

/* The account functions need the services of a worker call: without them
 * they say where they were called; with them, a service refusal is raised
 * as a {code, message} table a script can pcall. Only input the services
 * refuse before any query is used here (the database handle is never
 * touched); tests/e2e/test_account.c covers the real thing. */
static void account_functions_raise_service_errors_and_need_a_database(void **state)
{
    write_module("acct.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.register_rpc(function(ctx, p)\n"
                 "  local ok, e = pcall(kaos.account_get_id, p)\n"
                 "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
                 "  return tostring(e)\n"
                 "end, 'get')\n"
                 "kaos.register_rpc(function(ctx, p)\n"
                 "  local ok, e = pcall(kaos.account_update_id, '8f4d52c7-bf28-4fcf-8af2-1d4fcf685592',\n"
                 "                      { nickname = 'x' })\n"
                 "  return e.code .. ' ' .. e.message\n"
                 "end, 'update')\n"
                 "kaos.register_rpc(function(ctx, p)\n"
                 "  kaos.session_logout('me')\n"
                 "end, 'logout')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    char msg[256];
    int rc;
    char *out = call(vm, "get", "not-a-uuid", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.account_get_id is not available in rpc"));
    kn_free(out);

    int dummy = 0;
    kn_runtime_services svc = {(const kn_auth *)&dummy, (kn_db *)&dummy, NULL, NULL};
    kn_runtime_context with = ctx;
    with.services = &svc;
    rc = kn_runtime_rpc(vm, &with, "get", "not-a-uuid", 10, &out, &(size_t){0}, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "3 user id must be a UUID");
    kn_free(out);
    rc = kn_runtime_rpc(vm, &with, "update", "", 0, &out, &(size_t){0}, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_string_equal(out, "3 unknown account field \"nickname\"");
    kn_free(out);
    /* Uncaught, the table's code and message reach the caller. */
    rc = kn_runtime_rpc(vm, &with, "logout", "", 0, &out, &(size_t){0}, msg, sizeof msg);
    assert_int_equal(rc, KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "user id must be a UUID");
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* run_once and module loading have no database. */
    write_module("zz_once.lua", "require('kaos').run_once(function() require('kaos').users_ban_id({}) end)\n");
    kn_runtime_config cfg = {.path = dir, .run_once = true};
    char err[512] = "";
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "kaos.users_ban_id is not available in run_once"));
    write_module("zz_once.lua", "require('kaos').account_delete_id('x')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "zz_once.lua:1: kaos.account_delete_id is not available in module loading"));
}

/* The storage functions act with full rights (caller NULL) but take the
 * same input as the wire: what they or the service refuse before any query
 * is raised as a {code, message} table. The database handle is never
 * touched here; tests/e2e/test_storage.c covers the real thing. */
static void storage_functions_raise_input_errors_as_code_and_message(void **state)
{
    write_module("store.lua",
                 "local kaos = require('kaos')\n"
                 "local function outcome(f, ...)\n"
                 "  local ok, e = pcall(f, ...)\n"
                 "  if ok then return 'ok' end\n"
                 "  if type(e) == 'table' then return e.code .. ' ' .. e.message end\n"
                 "  return 'lua: ' .. tostring(e)\n"
                 "end\n"
                 "local cases = {\n"
                 "  array = function() return outcome(kaos.storage_write, nil, 'c', 'k', {1, 2}) end,\n"
                 "  text_array = function() return outcome(kaos.storage_write, nil, 'c', 'k', '[1]') end,\n"
                 "  fn = function() return outcome(kaos.storage_write, nil, 'c', 'k', print) end,\n"
                 "  keys = function() return outcome(kaos.storage_write, nil, 'c', 'k', {[true] = 1}) end,\n"
                 "  missing = function() return outcome(kaos.storage_write, nil, 'c', 'k', nil) end,\n"
                 "  read3 = function() return outcome(kaos.storage_write, nil, 'c', 'k', {}, nil, 3) end,\n"
                 "  bad_user = function() return outcome(kaos.storage_read, 'nope', 'c', 'k') end,\n"
                 "  star = function() return outcome(kaos.storage_delete, nil, 'c', 'k', '*') end,\n"
                 "  limit = function() return outcome(kaos.storage_list, nil, 'c', 0) end,\n"
                 "  cursor = function() return outcome(kaos.storage_list, nil, 'c', 5, '!!') end,\n"
                 "  many = function()\n"
                 "    local b = {}\n"
                 "    for i = 1, 101 do b[i] = { collection = 'c', key = 'k' .. i, value = {} } end\n"
                 "    return outcome(kaos.storage_write_batch, b)\n"
                 "  end,\n"
                 "  not_table = function() return outcome(kaos.storage_read_batch, { {}, 7 }) end,\n"
                 "  field = function() return outcome(kaos.storage_delete_batch, { { collection = 5 } }) end,\n"
                 "  perm = function()\n"
                 "    return outcome(kaos.storage_write_batch, { { collection = 'c', key = 'k', value = {},\n"
                 "                                                permission_write = 1.5 } })\n"
                 "  end,\n"
                 "  repeated = function()\n"
                 "    return outcome(kaos.storage_write_batch, { { collection = 'c', key = 'k', value = {} },\n"
                 "                                             { collection = 'c', key = 'k', value = '{}' } })\n"
                 "  end,\n"
                 "  no_collection = function()\n"
                 "    return outcome(kaos.storage_write_batch, { { key = 'k', value = {} } })\n"
                 "  end,\n"
                 "  arg_type = function() return outcome(kaos.storage_read, nil, {}, 'k') end,\n"
                 "  nul_key = function() return outcome(kaos.storage_delete, nil, 'c', 'k\\0x') end,\n"
                 "  nul_value = function() return outcome(kaos.storage_write, nil, 'c', 'k', '{}\\0x') end,\n"
                 "  nul_field = function()\n"
                 "    return outcome(kaos.storage_read_batch, { { collection = 'c', key = 'a\\0b' } })\n"
                 "  end,\n"
                 "}\n"
                 "kaos.register_rpc(function(ctx, p) return cases[p]() end, 'case')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    char msg[256];
    int rc;
    char *out = call(vm, "case", "array", &rc, msg); /* ctx has no services */
    assert_non_null(strstr(out, "kaos.storage_write is not available in rpc"));
    kn_free(out);

    int dummy = 0;
    kn_runtime_services svc = {(const kn_auth *)&dummy, (kn_db *)&dummy, NULL, NULL};
    kn_runtime_context with = ctx;
    with.services = &svc;
    static const struct {
        const char *name, *want;
    } cases[] = {
        {"array", "3 object 0: value must be a JSON object, not an array"},
        {"text_array", "3 object 0: value must be a JSON object, not an array"},
        {"fn", "3 object 0: value must be a table or JSON text, not a function"},
        {"keys", "3 object 0: value: object keys must be strings (or use a sequence)"},
        {"missing", "3 object 0: value is missing"},
        {"read3", "3 object 0: read permission must be 0 (none), 1 (owner) or 2 (public), not 3"},
        {"bad_user", "3 object 0: user_id is not a UUID"},
        {"star", "3 object 0: version \"*\" means \"absent\"; there is nothing to delete"},
        {"limit", "3 limit must be 1-100, not 0"},
        {"cursor", "3 cursor is malformed"},
        {"many", "3 at most 100 objects per write, not 101"},
        {"not_table", "3 object 1 must be a table, not a number"},
        {"field", "3 object 0: collection must be a string, not a number"},
        {"perm", "3 object 0: permission_write must be an integer"},
        {"repeated", "3 object 1: repeats object 0"},
        {"no_collection", "3 object 0: collection is missing"},
        {"nul_key", "3 object 0: key contains a NUL byte"},
        {"nul_value", "3 object 0: value contains a NUL byte"},
        {"nul_field", "3 object 0: key contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = kn_runtime_rpc(vm, &with, "case", cases[i].name, strlen(cases[i].name), &out,
                            &(size_t){0}, msg, sizeof msg);
        assert_int_equal(rc, KN_OK);
        if (strcmp(out, cases[i].want)) fail_msg("%s: got \"%s\"", cases[i].name, out);
        kn_free(out);
    }
    /* A wrong type of a plain argument is a script bug, not a service refusal. */
    rc = kn_runtime_rpc(vm, &with, "case", "arg_type", 8, &out, &(size_t){0}, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "lua: "));
    assert_non_null(strstr(out, "string expected, got table"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void cron_next_follows_the_expression_in_utc(void **state)
{
    write_module("cron.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.register_rpc(function(ctx, p)\n"
                 "  local ok, err = pcall(kaos.cron_next, 'bad', 0)\n"
                 "  return tostring(kaos.cron_next(p, 1700000000)) .. '|' .. tostring(kaos.cron_next('0 0 30 2 *', 0))\n"
                 "    .. '|' .. tostring(ok) .. '|' .. tostring(err)\n"
                 "end, 'cron')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    int rc;
    char msg[256];
    /* 1700000000 = 2023-11-14 22:13:20 UTC; the next midnight is 1700006400. */
    char *out = call(vm, "cron", "0 0 * * *", &rc, msg);
    assert_int_equal(rc, KN_OK);
    assert_non_null(strstr(out, "1700006400|nil|false|"));
    assert_non_null(strstr(out, "cron_next: expected 5 fields"));
    kn_free(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

static void a_call_past_its_budget_is_stopped_and_the_vm_keeps_serving(void **state)
{
    write_module("spin.lua",
                 "local kaos = require('kaos')\n"
                 "kaos.register_rpc(function() while true do end end, 'spin')\n"
                 "kaos.register_rpc(function()\n"
                 "  while true do pcall(function() while true do end end) end\n"
                 "end, 'stubborn')\n"
                 "kaos.register_rpc(function(ctx, p) return 'ok:' .. p end, 'quick')\n");
    kn_runtime_config cfg = {.path = dir, .call_budget_ms = 50};
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
        char *out = call(vm, ids[i], "", &rc, msg);
        assert_int_equal(rc, KN_ERR_DEADLINE_EXCEEDED);
        assert_null(out);
        assert_non_null(strstr(msg, "ran past its time budget"));
        out = call(vm, "quick", "x", &rc, msg); /* the same VM, no hook left behind */
        assert_int_equal(rc, KN_OK);
        assert_string_equal(out, "ok:x");
        kn_free(out);
    }
    kn_runtime_slot_destroy(slot);
    kn_runtime_host_destroy(h);
}

static void hooks_register_by_op_name_and_see_rewrite_refuse_and_reply(void **state)
{
    write_module("hooks.lua",
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
                 "kaos.register_rpc(function() return seen end, 'seen')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = load_vm(&rt);
    assert_true(kn_runtime_has_hook(rt, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_RPC));
    assert_true(kn_runtime_has_hook(rt, KN_HOOK_AFTER, KAOS__V1__ENVELOPE__MESSAGE_RPC));
    assert_false(kn_runtime_has_hook(rt, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_PING));
    kn_runtime_context bctx = ctx;
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
    rc = kn_runtime_hook(vm, &ctx, KN_HOOK_AFTER, KAOS__V1__ENVELOPE__MESSAGE_RPC, req,
                         strlen(req), res, strlen(res), &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_null(out);
    out = call(vm, "seen", "", &rc, msg);
    assert_string_equal(out, "out<in");
    kn_free(out);
    /* No hook for an operation: nothing runs, nothing is returned. */
    rc = kn_runtime_hook(vm, &ctx, KN_HOOK_BEFORE, KAOS__V1__ENVELOPE__MESSAGE_PING, "{}", 2, NULL,
                         0, &out, &n, msg, sizeof msg);
    assert_int_equal(rc, KN_OK);
    assert_null(out);
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);

    /* Unknown operations and the realtime path are refused at load. */
    char err[512];
    kn_runtime_config cfg = {.path = dir};
    write_module("hooks.lua", "require('kaos').register_req_before(function(c, r) return r end, 'frobnicate')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "hooks.lua:1: unknown operation \"frobnicate\""));
    write_module("hooks.lua", "require('kaos').register_req_after(function() end, 'match_data_send')\n");
    assert_int_equal(kn_runtime_load(&cfg, &rt, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "match_data_send takes no hooks"));
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(modules_load_in_name_order_and_rpcs_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(a_syntax_error_is_reported_with_file_and_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_sandbox_has_no_io_os_execute_debug_or_bytecode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(script_errors_keep_their_code_and_others_become_internal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            running_out_of_memory_anywhere_in_load_create_or_a_call_cleans_up, setup, teardown),
        cmocka_unit_test_setup_teardown(json_round_trips_through_lua, setup, teardown),
        cmocka_unit_test_setup_teardown(hashing_and_base64_match_known_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(a_slot_follows_the_host_and_old_code_lives_until_its_vm_goes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(cron_next_follows_the_expression_in_utc, setup, teardown),
        cmocka_unit_test_setup_teardown(account_functions_raise_service_errors_and_need_a_database,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(storage_functions_raise_input_errors_as_code_and_message,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_call_past_its_budget_is_stopped_and_the_vm_keeps_serving,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(hooks_register_by_op_name_and_see_rewrite_refuse_and_reply,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(run_once_runs_at_start_only_and_env_reaches_the_context,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
