-- A match handler for the end-to-end tests: every op code exercises one
-- engine feature (echo, broadcast, kick, label update, runaway loop, memory
-- hog, clean end, script error, fast memory hog).
local kaos = require("kaos")

local M = {}

function M.match_init(context, params)
  local state = { presences = {}, ticks = 0 }
  return state, params.rate or 10, kaos.json_encode({ mode = params.mode or "normal", open = true })
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  if metadata.password ~= "secret" then
    return state, false, "wrong password"
  end
  return state, true
end

function M.match_join(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do state.presences[p.session_id] = p end
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do state.presences[p.session_id] = nil end
  return state
end

function M.match_loop(context, dispatcher, tick, state, messages)
  for _, m in ipairs(messages) do
    if m.op_code == 1 then     -- echo to the sender, on the channel it came on
      dispatcher.broadcast_message(101, m.data, { m.sender }, nil, m.reliable)
    elseif m.op_code == 2 then -- to everyone, unreliable, naming the sender
      dispatcher.broadcast_message(102, m.data, nil, m.sender, false)
    elseif m.op_code == 3 then
      dispatcher.match_kick({ m.sender })
    elseif m.op_code == 4 then
      dispatcher.match_label_update(kaos.json_encode({ mode = m.data, open = true }))
    elseif m.op_code == 5 then
      while true do end
    elseif m.op_code == 6 then
      local t = {}
      while true do t[#t + 1] = string.rep("x", 1 << 20) .. #t end
    elseif m.op_code == 7 then
      return nil
    elseif m.op_code == 8 then
      error("scripted failure")
    elseif m.op_code == 9 then -- a hog in 4 MiB strings: at an 8 MiB cap in two or three allocations
      local t = {}
      while true do t[#t + 1] = string.rep("x", 4 << 20) end -- long strings are not shared
    end
  end
  state.ticks = state.ticks + 1
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  dispatcher.broadcast_message(109, tostring(grace_seconds), nil, nil, true)
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  return state, "ticks>0:" .. tostring(state.ticks > 0) .. " data=" .. data
end

kaos.register_match("test_match", M)

kaos.register_rpc(function(context, payload)
  return kaos.match_create("test_match", kaos.json_decode(payload))
end, "create_test_match")

kaos.register_rpc(function(context, payload)
  local args = kaos.json_decode(payload)
  return kaos.match_signal(args.id, args.data)
end, "signal_test_match")

kaos.register_rpc(function(context, payload)
  return kaos.json_encode(kaos.match_list(10, true, nil, nil, nil, payload))
end, "list_matches")

kaos.register_rpc(function(context, payload)
  local m = kaos.match_get(payload)
  return m and kaos.json_encode(m) or "none"
end, "get_match")
