-- Test module for tests/e2e/test_leaderboard.c: boards created as the
-- module loads (the usual place), a before hook on the client's
-- LeaderboardRecordWrite that refuses scores over a million, and the
-- kaos.leaderboard_* functions through an RPC.
local kaos = require("kaos")

kaos.leaderboard_create("e2e_desc", false, "desc", "best")
kaos.leaderboard_create("e2e_incr", false, "asc", "incr")
kaos.leaderboard_create("e2e_server_only", true, "desc", "set", "", { season = 1 })

kaos.register_req_before(function(context, request)
  if tonumber(request.score) > 1000000 then
    error({ code = 3, message = "scores over a million are not believed" }) -- INVALID_ARGUMENT
  end
  return request
end, "leaderboard_record_write")

local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

-- Writes for the caller on the authoritative board (which clients cannot),
-- reads it back every way, and answers what each step gave as JSON.
kaos.register_rpc(function(context, payload)
  local me = context.user_id
  local out = {}
  local r = kaos.leaderboard_submit("e2e_server_only", me, -7, 2, { lua = true }, context.username)
  out.submitted = r.score == -7 and r.subscore == 2 and r.rank >= 1 and r.metadata.lua == true
  r = kaos.leaderboard_submit("e2e_server_only", me, 3, 0, nil, nil, "incr")
  out.override = r.score == -4 and r.num_score == 2
  local records, owners, next_cursor = kaos.leaderboard_records_list("e2e_server_only", { me }, 10)
  out.listed = #records >= 1 and #owners == 1 and owners[1].owner_id == me and next_cursor == nil
  local around = kaos.leaderboard_around("e2e_server_only", me, 3)
  out.around = #around >= 1
  local b = kaos.leaderboard_get("e2e_server_only")
  out.board = b.authoritative == true and b.operator == "set" and b.metadata.season == 1
  out.bad_sort = outcome(kaos.leaderboard_create, "x", false, "sideways")
  out.missing = outcome(kaos.leaderboard_submit, "no such board", me, 1)
  out.deleted = outcome(kaos.leaderboard_record_delete, "e2e_server_only", me)
  out.again = outcome(kaos.leaderboard_record_delete, "e2e_server_only", me)
  return kaos.json_encode(out)
end, "leaderboard_lua")
