/* The sandbox's step-bounded pattern functions against Lua 5.4's own
 * string.find/match/gmatch/gsub on many random patterns and subjects (same
 * results, same success or failure), and a catastrophic backtracking
 * pattern stopped with "pattern too complex" instead of running for hours. */
#include "runtime_internal.h"

#include <lauxlib.h>
#include <lualib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static const char *const differential =
    "local kp = ...\n"
    "math.randomseed(20261124)\n"
    "local atoms = {'a','b','x','1',' ','.','%a','%d','%s','%w','%W','%%','[ab]','[^a]','[a-c]',\n"
    "  '[%d]','(',')','()','%b()','%f[%w]','%1','^','$','*','+','-','?','[','%','%z','[]]','[^]]'}\n"
    "local letters = {'a','b','x','1',' ','(',')','[',']','%'}\n"
    "local function rpat()\n"
    "  local t = {}\n"
    "  for i = 1, math.random(0, 6) do t[#t + 1] = atoms[math.random(#atoms)] end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local function rsub()\n"
    "  local t = {}\n"
    "  for i = 1, math.random(0, 14) do t[#t + 1] = letters[math.random(#letters)] end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local function run(f, ...)\n"
    "  local r = table.pack(pcall(f, ...))\n"
    "  if not r[1] then return false end\n"
    "  return true, r\n"
    "end\n"
    "local function collect(gm, s, p, init)\n"
    "  local out = {}\n"
    "  for a, b, c in gm(s, p, init) do\n"
    "    out[#out + 1] = tostring(a) .. '|' .. tostring(b) .. '|' .. tostring(c)\n"
    "    if #out > 50 then break end\n"
    "  end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "local repls = {'<%0>', '%1%%', {a = 'A', ['1'] = false}, function(c) if c == 'a' then return 'Z' end end}\n"
    "local compared, failures = 0, {}\n"
    "for i = 1, 20000 do\n"
    "  local p, s = rpat(), rsub()\n"
    "  local init = math.random(-3, 6)\n"
    "  local cases = {\n"
    "    {'find', string.find, kp.find, {s, p, init}},\n"
    "    {'find plain', string.find, kp.find, {s, p, init, true}},\n"
    "    {'match', string.match, kp.match, {s, p, init}},\n"
    "    {'gmatch', function(...) return collect(string.gmatch, ...) end,\n"
    "               function(...) return collect(kp.gmatch, ...) end, {s, p, init}},\n"
    "    {'gsub', string.gsub, kp.gsub, {s, p, repls[math.random(#repls)], math.random(0, 3)}},\n"
    "  }\n"
    "  for _, c in ipairs(cases) do\n"
    "    local ok1, r1 = run(c[2], table.unpack(c[4], 1, 4))\n"
    "    local ok2, r2 = run(c[3], table.unpack(c[4], 1, 4))\n"
    "    local same = ok1 == ok2\n"
    "    if same and ok1 then\n"
    "      same = r1.n == r2.n\n"
    "      for k = 2, r1.n do same = same and r1[k] == r2[k] end\n"
    "    end\n"
    "    compared = compared + 1\n"
    "    if not same and #failures < 5 then\n"
    "      failures[#failures + 1] = string.format('%s(%q, %q): lua %s, ours %s', c[1], s, p,\n"
    "        ok1 and tostring(r1[2]) or 'error', ok2 and tostring(r2[2]) or 'error')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return compared, table.concat(failures, '\\n')\n";

static lua_State *state(void)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    lua_newtable(L);
    rt_pattern_open(L, -1);
    lua_setglobal(L, "kp");
    return L;
}

static void results_match_lua_on_random_patterns(void **s)
{
    lua_State *L = state();
    assert_int_equal(luaL_loadstring(L, differential), LUA_OK);
    lua_getglobal(L, "kp");
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
    assert_int_equal(lua_tointeger(L, -2), 100000);
    const char *failures = lua_tostring(L, -1);
    if (*failures) fail_msg("differences:\n%s", failures);
    lua_close(L);
}

static void catastrophic_backtracking_is_stopped(void **s)
{
    lua_State *L = state();
    const char *code =
        "local ok, err = pcall(kp.find, string.rep('a', 20000), '.-.-.-.-x')\n"
        "assert(not ok and err:find('pattern too complex'), tostring(err))\n"
        "-- quadratic work on a long subject is over the budget too (Lua takes ~1 s)\n"
        "ok, err = pcall(kp.gsub, string.rep('a', 20000), 'a*b', '')\n"
        "assert(not ok and err:find('pattern too complex'), tostring(err))\n"
        "ok, err = pcall(kp.match, string.rep('a', 60), ('a?'):rep(60) .. ('a'):rep(60))\n"
        "assert(not ok and err:find('pattern too complex'), tostring(err))\n"
        "-- ordinary work on large strings is well within the budget\n"
        "local big = string.rep('key=value; ', 20000)\n"
        "local n = 0\n"
        "for k, v in kp.gmatch(big, '(%w+)=(%w+)') do n = n + 1 end\n"
        "assert(n == 20000)\n"
        "assert(select(2, kp.gsub(big, '%s+', '')) == 20000)\n";
    if (luaL_dostring(L, code) != LUA_OK) fail_msg("%s", lua_tostring(L, -1));
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(results_match_lua_on_random_patterns),
        cmocka_unit_test(catastrophic_backtracking_is_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
