-- bench_realtime: the authoritative match of bench/realtime. Rooms tick at
-- 30 Hz; each tick keeps every player's last input (op 1, 16 bytes: send time
-- u64, client index u32, sequence number u32, little endian) and sends every
-- player one snapshot (op 2, unreliable) of the whole room, the bytes
-- bench/lg/lg.h describes:
--   header  tick u64, players u16, tick rate u16, inputs taken this tick u32
--   entry   slot u16, low 16 bits of the client index u16 (0xffff before any
--           input), sequence number of that input u32
-- 16 + 8 x 8 = 80 bytes for a room of 8. The match ends once it has been
-- empty for a second (the benchmark's rooms leave when a step ends).
local kaos = require("kaos")

local OP_INPUT, OP_SNAPSHOT = 1, 2
local RATE = 30
local NO_INPUT = 0xffff

local spack, sunpack = string.pack, string.unpack

-- string.pack formats for 0..64 players, built once.
local formats = {}
for n = 0, 64 do
  formats[n] = "<I8I2I2I4" .. string.rep("I2I2I4", n)
end

local M = {}

function M.match_init(context, params)
  -- players: slot -> {id, seq}; order: slots in join order (the snapshot's order)
  return { players = {}, order = {}, empty_ticks = 0 }, RATE, nil
end

function M.match_join_attempt(context, dispatcher, tick, state, presence, metadata)
  return state, #state.order < 64
end

function M.match_join(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    state.players[p.slot] = { id = NO_INPUT, seq = 0 }
    state.order[#state.order + 1] = p.slot
  end
  return state
end

function M.match_leave(context, dispatcher, tick, state, presences)
  for _, p in ipairs(presences) do
    state.players[p.slot] = nil
    for i, slot in ipairs(state.order) do
      if slot == p.slot then
        table.remove(state.order, i)
        break
      end
    end
  end
  return state
end

-- A newer sequence number wins (inputs are unreliable: they may arrive out
-- of order within a tick).
local function take_input(players, m)
  local pl = players[m.sender.slot]
  if not pl or m.op_code ~= OP_INPUT or #m.data ~= 16 then return end
  local id, seq = sunpack("<I4I4", m.data, 9)
  if pl.id == NO_INPUT or ((seq - pl.seq) & 0xffffffff) < 0x80000000 then
    pl.id, pl.seq = id & 0xffff, seq
  end
end

local values = {} -- reused: the arguments of string.pack

function M.match_loop(context, dispatcher, tick, state, messages)
  local players, order = state.players, state.order
  for i = 1, #messages do
    take_input(players, messages[i])
  end
  local n = #order
  if n == 0 then
    state.empty_ticks = state.empty_ticks + 1
    if state.empty_ticks > RATE then return nil end
    return state
  end
  state.empty_ticks = 0
  values[1], values[2], values[3], values[4] = tick, n, RATE, #messages
  local k = 4
  for i = 1, n do
    local slot = order[i]
    local pl = players[slot]
    values[k + 1], values[k + 2], values[k + 3] = slot, pl.id, pl.seq
    k = k + 3
  end
  dispatcher.broadcast_message(OP_SNAPSHOT, spack(formats[n], table.unpack(values, 1, k)), nil,
    nil, false)
  return state
end

function M.match_terminate(context, dispatcher, tick, state, grace_seconds)
  return state
end

function M.match_signal(context, dispatcher, tick, state, data)
  return state, tostring(#state.order)
end

kaos.register_match("bench_realtime", M)
