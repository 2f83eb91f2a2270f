/* kn_lua_push_entity: an entity pushed for scripts is a table with exactly
 * the keys of its description (kn_entities.h), the wire's field names, with
 * the value types docs/lua-api.md promises: text as strings (NULL as ""),
 * JSON as tables, numbers as integers. A fake binding pushes one of each
 * entity; a Lua RPC lists "key:type" sorted. */
#include "luatest.h"
#include "kn_account.h"
#include "kn_error.h"
#include "kn_match.h"
#include "kn_mem.h"
#include "kn_storage.h"

#include <setjmp.h>
#include "kn_crypto.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static int push_user(lua_State *L)
{
    kn_user u = {.id = "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
                 .username = "alice",
                 .lang_tag = "en",
                 .metadata = "{\"level\":3}",
                 .create_time = 17,
                 .update_time = 18}; /* display_name and the rest NULL */
    kn_lua_push_entity(L, &kn_user_entity, &u);
    return 1;
}

static int push_object(lua_State *L)
{
    kn_storage_object o = {.collection = "saves",
                           .key = "k",
                           .user_id = "u",
                           .version = "v",
                           .value = "{\"hp\":10}",
                           .value_len = 9,
                           .permission_read = 2,
                           .permission_write = 1,
                           .create_time_ms = 5,
                           .update_time_ms = 6};
    kn_lua_push_entity(L, &kn_storage_object_entity, &o);
    return 1;
}

static int push_ack(lua_State *L)
{
    kn_storage_ack a = {"saves", "k", "u", "v"};
    kn_lua_push_entity(L, &kn_storage_ack_entity, &a);
    return 1;
}

static int push_presence(lua_State *L)
{
    kn_match_presence p = {
        .slot = 3, .conn = 9, .user_id = "u", .session_id = "s", .username = "bob"};
    kn_lua_push_entity(L, &kn_match_presence_entity, &p);
    return 1;
}

static void a_pushed_entity_has_exactly_the_keys_of_its_description(void **state)
{
    static const luaL_Reg funcs[] = {{"t_user", push_user},
                                     {"t_object", push_object},
                                     {"t_ack", push_ack},
                                     {"t_presence", push_presence},
                                     {NULL, NULL}};
    const kn_lua_binding binding = {"entities", funcs, NULL};
    luatest_write(
        "entities.lua",
        "local kaos = require('kaos')\n"
        "local function keys(t)\n"
        "  local out = {}\n"
        "  for k, v in pairs(t) do\n"
        "    local ty = math.type(v) or type(v)\n"
        "    out[#out + 1] = k .. ':' .. ty\n"
        "  end\n"
        "  table.sort(out)\n"
        "  return table.concat(out, ',')\n"
        "end\n"
        "kaos.register_rpc(function(ctx, p)\n"
        "  local t = kaos['t_' .. p]()\n"
        "  local extra = ''\n"
        "  if p == 'user' then extra = '|' .. t.metadata.level .. t.display_name .. '|' end\n"
        "  if p == 'object' then extra = '|' .. t.value.hp .. '|' end\n"
        "  return keys(t) .. extra\n"
        "end, 'keys')\n");
    kn_runtime *rt;
    kn_runtime_vm *vm = luatest_load(&rt, &binding, 1);
    static const struct {
        const char *entity, *want;
    } cases[] = {
        {"user", "avatar_url:string,create_time:integer,display_name:string,id:string,"
                 "lang_tag:string,location:string,metadata:table,timezone:string,"
                 "update_time:integer,username:string|3|"},
        {"object", "collection:string,create_time_ms:integer,key:string,permission_read:integer,"
                   "permission_write:integer,update_time_ms:integer,user_id:string,value:table,"
                   "version:string|10|"},
        {"ack", "collection:string,key:string,user_id:string,version:string"},
        {"presence", "session_id:string,slot:integer,user_id:string,username:string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char msg[256];
        char *out = luatest_call(vm, "keys", cases[i].entity, &rc, msg);
        if (rc) fail_msg("%s: %s", cases[i].entity, msg);
        assert_string_equal(out, cases[i].want);
        kn_free(out);
    }
    kn_runtime_vm_destroy(vm);
    kn_runtime_destroy(rt);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_pushed_entity_has_exactly_the_keys_of_its_description,
                                        luatest_setup, luatest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
