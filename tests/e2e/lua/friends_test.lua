-- Test module for tests/e2e/test_friends.c: a before hook on the client's
-- FriendsAdd that refuses requests naming a username starting with
-- "hooked_", to show that hooks reach the friends routes through the route
-- table like any other request.
local kaos = require("kaos")

kaos.register_req_before(function(context, request)
  for _, name in ipairs(request.usernames) do
    if string.sub(name, 1, 7) == "hooked_" then
      error({ code = 7, message = "friend requests to " .. name .. " are closed" }) -- PERMISSION_DENIED
    end
  end
  return request
end, "friends_add")

-- The new friends requests reach hooks too: a friends of friends listing
-- asking for exactly 13 is refused before the service runs.
kaos.register_req_before(function(context, request)
  if request.limit == 13 then
    error({ code = 7, message = "unlucky page size" }) -- PERMISSION_DENIED
  end
  return request
end, "friends_of_friends_list")

-- The kaos.friends_* functions, acting for the caller: the payload is the
-- other user's id; the caller invites them, lists its invites sent (two
-- pages of one), blocks them, lists its blocks, deletes the block and
-- tries to add itself. Returns what each step gave, as JSON.
local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

kaos.register_rpc(function(context, payload)
  local me, other = context.user_id, payload
  local out = {}
  out.add = outcome(kaos.friends_add, me, { other }, nil)
  local list, cursor = kaos.friends_list(me, 10, 1, nil)
  out.invited = #list == 1 and list[1].user.id == other and list[1].state == 1
  out.cursor = cursor == nil
  out.block = outcome(kaos.friends_block, me, nil, { list[1].user.username })
  list = kaos.friends_list(me, nil, 3)
  out.blocked = #list == 1 and list[1].state == 3 and list[1].update_time > 0
  out.delete = outcome(kaos.friends_delete, me, { other })
  list = kaos.friends_list(me)
  out.empty = #list == 0
  out.self = outcome(kaos.friends_add, me, { me })
  out.bad_cursor = outcome(kaos.friends_list, me, 10, -1, "nope")
  return kaos.json_encode(out)
end, "friends_lua")

-- Metadata and friends of friends, acting for the caller: the payload is
-- "B C" where B and C are friends. The caller adds B with metadata (B
-- accepts, through kaos too), reads it back, updates it, tries a stranger
-- (C) and a non-table, then lists its friends of friends (C through B).
kaos.register_rpc(function(context, payload)
  local me = context.user_id
  local b, c = string.match(payload, "(%S+) (%S+)")
  local out = {}
  out.add = outcome(kaos.friends_add, me, { b }, nil, { tag = "met" })
  kaos.friends_add(b, { me })
  local list = kaos.friends_list(me, 10, 0)
  out.listed_metadata = list[1] and list[1].metadata.tag
  out.update = outcome(kaos.friend_metadata_update, me, b, { tag = "again" })
  list = kaos.friends_list(me, 10, 0)
  out.updated_metadata = list[1] and list[1].metadata.tag
  out.stranger = outcome(kaos.friend_metadata_update, me, c, {})
  out.bad_metadata = outcome(kaos.friend_metadata_update, me, b, "text")
  local fof, cursor = kaos.friends_of_friends_list(me, 10)
  local lines = {}
  for _, f in ipairs(fof) do lines[#lines + 1] = f.referrer .. ">" .. f.user.id end
  out.fof = table.concat(lines, ",")
  out.fof_cursor = cursor == nil
  out.fof_bad_cursor = outcome(kaos.friends_of_friends_list, me, 10, "nope")
  return kaos.json_encode(out)
end, "friends_lua_more")
