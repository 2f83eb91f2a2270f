-- Test module for tests/e2e/test_groups.c: a before hook on the client's
-- GroupCreate that refuses names starting with "hooked_", to show that
-- hooks reach the groups routes through the route table like any other
-- request; and the kaos.group* functions through an RPC.
local kaos = require("kaos")

kaos.register_req_before(function(context, request)
  if string.sub(request.name, 1, 7) == "hooked_" then
    error({ code = 7, message = "groups named " .. request.name .. " are closed" }) -- PERMISSION_DENIED
  end
  return request
end, "group_create")

local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

-- The kaos.group* functions, acting for the caller and the user whose id
-- is the payload: the caller creates a closed group, the other asks to
-- join, the caller accepts, promotes, demotes and bans them; the lists see
-- each step. Returns what each step gave, as JSON.
kaos.register_rpc(function(context, payload)
  local me, other = context.user_id, payload
  local out = {}
  local g = kaos.group_create(me, { name = "lua group " .. me, open = false, max_count = 3,
                                    metadata = { a = 1 } })
  out.created = g.name == "lua group " .. me and g.edge_count == 1 and g.open == false
                and g.metadata.a == 1
  out.join = outcome(kaos.group_join, other, g.id)
  local users = kaos.group_users_list(g.id, 3)
  out.requested = #users == 1 and users[1].user.id == other and users[1].state == 3
  out.add = outcome(kaos.group_users_add, me, g.id, { other })
  out.promote = outcome(kaos.group_users_promote, me, g.id, { other })
  out.demote = outcome(kaos.group_users_demote, me, g.id, { other })
  local mine = kaos.user_groups_list(other, 2)
  out.member = #mine == 1 and mine[1].group.id == g.id and mine[1].state == 2
  out.member_kick = outcome(kaos.group_users_kick, other, g.id, { me })
  out.system_demote = outcome(kaos.group_users_demote, nil, g.id, { me })
  out.update = outcome(kaos.group_update, me, g.id, { description = "changed", metadata = '{"b":2}' })
  local found, cursor = kaos.groups_list({ name = "LUA GROUP " .. me }, 10)
  out.listed = #found == 1 and found[1].description == "changed" and found[1].metadata.b == 2
               and cursor == nil
  out.ban = outcome(kaos.group_users_ban, me, g.id, { other })
  out.banned_join = outcome(kaos.group_join, other, g.id)
  out.leave = outcome(kaos.group_leave, me, g.id)
  out.delete = outcome(kaos.group_delete, me, g.id)
  return kaos.json_encode(out)
end, "groups_lua")
