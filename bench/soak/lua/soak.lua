-- soak: the server side of bench/soak (run.sh copies this file into a
-- runtime directory of its own, so the server loads nothing else).
--
-- Match handler "soak_match", 30 Hz, one room of players:
--   op 1 input (unreliable, 16 bytes: send time u64, client index u32,
--        sequence u32, little endian): the newest per player is kept;
--   op 2 snapshot (unreliable, to every player, every tick): tick u64,
--        players u16, inputs this tick u16, then per player its slot u16 and
--        the sequence number of its newest input u32;
--   op 3 event (reliable, 8 bytes: client index u32, event number u32): each
--        is echoed in op 4 to every player, the sender included;
--   op 4 echo (reliable, once per tick with events): the tick's events, in
--        the order they arrived, 8 bytes each.
-- The load generator checks that every player gets every event of every
-- other player exactly once and in order. The match ends once it has been
-- empty for a second.
--
-- RPC "soak_echo": the payload back.
local kaos = require("kaos")

local OP_INPUT, OP_SNAPSHOT, OP_EVENT, OP_ECHO = 1, 2, 3, 4
local RATE = 30

local spack, sunpack, concat = string.pack, string.unpack, table.concat

local M = {}

function M.match_init(context, params)
  -- seq: slot -> sequence number of its newest input; n: players
  return { seq = {}, n = 0, empty_ticks = 0 }, RATE, nil
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  return state, state.n < 64
end

function M.match_join(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    state.seq[p.slot], state.n = 0, state.n + 1
  end
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    if state.seq[p.slot] then state.seq[p.slot], state.n = nil, state.n - 1 end
  end
  return state
end

function M.match_loop(context, dispatcher, tick, state, messages)
  local seq = state.seq
  local events, inputs = {}, 0
  for i = 1, #messages do
    local m, slot = messages[i], messages[i].sender.slot
    if m.op_code == OP_INPUT and #m.data == 16 and seq[slot] then
      local s = sunpack("<I4", m.data, 13)
      if ((s - seq[slot]) & 0xffffffff) < 0x80000000 then seq[slot] = s end
      inputs = inputs + 1
    elseif m.op_code == OP_EVENT and #m.data == 8 then
      events[#events + 1] = m.data
    end
  end
  if state.n == 0 then
    state.empty_ticks = state.empty_ticks + 1
    if state.empty_ticks > RATE then return nil end
    return state
  end
  state.empty_ticks = 0
  local parts = { spack("<I8I2I2", tick, state.n, inputs) }
  for slot, s in pairs(seq) do
    parts[#parts + 1] = spack("<I2I4", slot, s)
  end
  dispatcher.broadcast_message(OP_SNAPSHOT, concat(parts), nil, nil, false)
  if #events > 0 then dispatcher.broadcast_message(OP_ECHO, concat(events), nil, nil, true) end
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  return state, tostring(state.n)
end

kaos.register_match("soak_match", M)

kaos.register_rpc(function(context, payload)
  return payload
end, "soak_echo")
