-- Test module for tests/e2e/test_leaderboard.c: tournaments created as the
-- module loads, a before hook on the client's TournamentRecordWrite that
-- refuses scores over a thousand, an end callback that leaves its trace on
-- a leaderboard, and the kaos.tournament_* functions through RPCs.
local kaos = require("kaos")

-- id, authoritative, sort, operator, reset, metadata, title, description,
-- category, start, end, duration, max_size, max_num_score, join_required
kaos.tournament_create("e2e_cup", false, "desc", "best", "", { prize = "cup" }, "The Cup",
  "three seats, two tries", 7, 0, 0, 0, 3, 2, true)
kaos.tournament_create("e2e_open", false, "desc", "incr", "", nil, "Open", "", 8)
kaos.leaderboard_create("e2e_tournament_ends", false, "desc", "set")

kaos.register_req_before(function(context, request)
  if tonumber(request.score) > 1000 then
    error({ code = 3, message = "tournament scores over a thousand are not believed" })
  end
  return request
end, "tournament_record_write")

-- Nakama's shape: (context, tournament, end, reset). The trace: the
-- tournament's size as the score of a record named after nobody.
kaos.register_tournament_end(function(context, tournament, end_time, reset)
  if context.execution_mode ~= "tournament_end" or end_time ~= tournament.end_time then return end
  kaos.leaderboard_submit("e2e_tournament_ends", "00000000-0000-4000-8000-00000000e2e0",
    tournament.size, end_time, { id = tournament.id })
end)

local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

-- A tournament that ends in two seconds (the payload names it).
kaos.register_rpc(function(context, payload)
  local now = kaos.time() // 1000
  kaos.tournament_create(payload, false, "asc", "best", "", nil, "quick", "", 9, now, now + 2)
  return "{}"
end, "tournament_quick")

-- The functions for the caller, each step's outcome as JSON.
kaos.register_rpc(function(context, payload)
  local me = context.user_id
  local out = {}
  kaos.tournament_create("e2e_lua", true, "desc", "set", "", nil, "lua", "", 10, 0, 0, 0, 0, 1)
  out.bad_category = outcome(kaos.tournament_create, "bad", false, "desc", "best", "", nil, "",
    "", 500)
  out.needs_nothing = outcome(kaos.tournament_join, "e2e_lua", me)
  local r = kaos.tournament_record_write("e2e_lua", me, context.username, 42, 1, { lua = true })
  out.written = r.score == 42 and r.rank == 1 and r.metadata.lua == true
  out.no_more = outcome(kaos.tournament_record_write, "e2e_lua", me, nil, 43)
  kaos.tournament_add_attempt("e2e_lua", me, 1)
  r = kaos.tournament_record_write("e2e_lua", me, nil, 44)
  out.attempt = r.score == 44 and r.num_score == 2
  local records, owners = kaos.tournament_records_list("e2e_lua", { me }, 10)
  out.listed = #records == 1 and #owners == 1 and owners[1].owner_id == me
  out.around = #kaos.tournament_around("e2e_lua", me, 3) == 1
  local t = kaos.tournament_get("e2e_lua")
  out.got = t.size == 1 and t.max_num_score == 1 and t.operator == "set" and t.can_enter == true
  local list, cursor = kaos.tournament_list(10, 10)
  out.list = #list == 1 and list[1].id == "e2e_lua" and cursor == nil
  out.deleted = outcome(kaos.tournament_delete, "e2e_lua")
  out.gone = outcome(kaos.tournament_join, "e2e_lua", me)
  return kaos.json_encode(out)
end, "tournament_lua")
