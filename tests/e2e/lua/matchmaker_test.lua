-- The matchmaker's matched hook for the end-to-end tests: a group whose
-- players carry mode=auth gets an authoritative test_match (its id goes to
-- every player), mode=boom makes the hook fail (the group falls back to a
-- relayed match), anything else returns nil (a relayed match by token).
local kaos = require("kaos")

kaos.register_matchmaker_matched(function(context, matched_users)
  local mode = matched_users[1].properties.mode
  for _, u in ipairs(matched_users) do
    assert(u.presence.user_id ~= "" and u.ticket ~= "", "a matched user lacks its presence or ticket")
  end
  if mode == "auth" then
    return kaos.match_create("test_match", { mode = "matched", players = #matched_users })
  elseif mode == "boom" then
    error("scripted matched hook failure")
  end
  return nil
end)

-- Processor: when tickets of mode=proc wait, it alone forms the groups:
-- none until four wait (the test adds them one by one), then the oldest
-- with the newest, inwards (the built-in matcher would pair the two
-- oldest). Otherwise nil: the built-in matcher runs.
kaos.register_matchmaker_processor(function(context, tickets)
  local proc = {}
  for _, t in ipairs(tickets) do
    if t.properties.mode == "proc" then proc[#proc + 1] = t.ticket end
  end
  if #proc == 0 then return nil end
  if #proc < 4 then return {} end
  local groups = {}
  for i = 1, #proc // 2 do groups[#groups + 1] = { proc[i], proc[#proc + 1 - i] } end
  return groups
end)

-- Override: candidate groups with a mode=veto ticket are dropped; mode=
-- overboom fails the hook (the built-in groups form anyway); otherwise nil.
kaos.register_matchmaker_override(function(context, candidates)
  local keep, changed = {}, false
  for _, group in ipairs(candidates) do
    local ids, veto = {}, false
    for _, t in ipairs(group) do
      if t.properties.mode == "overboom" then error("scripted override failure") end
      veto = veto or t.properties.mode == "veto"
      ids[#ids + 1] = t.ticket
    end
    if veto then changed = true else keep[#keep + 1] = ids end
  end
  if not changed then return nil end
  return keep
end)

-- A before hook on matchmaker_add: the request's hooks come with its route.
kaos.register_req_before(function(context, request)
  if request.query == "+refuse:me" then return nil end
  return request
end, "matchmaker_add")

-- A ticket added by a script for the calling session (kaos.matchmaker_add,
-- the same C functions as MatchmakerAdd): payload "<skill>" for a duel of
-- mode=scripted whose window widens; "bad" asks for a widening rule on a
-- property its query does not compare (refused with the service's code).
kaos.register_rpc(function(context, payload)
  local widen_on = payload == "bad" and "rank" or "skill"
  local skill = tonumber(payload) or 0
  return kaos.matchmaker_add(context.user_id, context.session_id, {
    min_count = 2, max_count = 2,
    query = "+mode:scripted +skill:>=" .. (skill - 10) .. " +skill:<=" .. (skill + 10),
    properties = { mode = "scripted", skill = skill },
    widen = { { property = widen_on, step = 20, max = 100 } },
  })
end, "mm_script_add")
