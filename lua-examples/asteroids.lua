-- Asteroids: an authoritative match (docs/asteroids.md has every op code and
-- payload byte by byte).
--
-- The server owns the world: players send only their held buttons (thrust,
-- turn, fire) on the unreliable channel, the match simulates ships, bullets
-- and asteroids at a fixed tick rate and sends every player one snapshot per
-- tick, also unreliable (a lost snapshot is replaced by the next one).
-- Events that must not be lost (joins, leaves, deaths, score changes, waves)
-- go on the reliable channel. When the match ends, the kill bounty is paid
-- by an RPC the match queues to the API workers (pay_bounty, below).
--
-- Invariants: entities live in pools made once in match_init (ships by
-- player id 1..max_players, asteroids and bullets in fixed arrays with an
-- `alive` flag), so a tick allocates nothing but the snapshot string, its
-- format string and the rare event payloads. Every count on the wire fits a
-- byte: at most 16 players, MAX_ASTEROIDS asteroids, MAX_BULLETS bullets.
-- Positions are kept in [0, W) x [0, H) (the world wraps around).
--
-- High scores: each player's score goes to the asteroids_highscores board
-- (authoritative, best score kept) when they leave the match or the match
-- ends (docs/leaderboards.md). A match handler must not wait on Postgres,
-- so kaos.leaderboard_submit there queues the write (done within ~100 ms).
local kaos = require("kaos")

local HIGHSCORES = "asteroids_highscores"
kaos.leaderboard_create(HIGHSCORES, true, "desc", "best")

local spack, sunpack, srep = string.pack, string.unpack, string.rep
local floor, sqrt, cos, sin, random, min = math.floor, math.sqrt, math.cos, math.sin, math.random,
    math.min
local tunpack = table.unpack

-- World and wire.
local PROTOCOL = 1
local W, H = 1024, 768
local HW, HH = W / 2, H / 2
local SCALE = 16 -- wire position = floor(world position * SCALE), uint16
local TAU = 2 * math.pi
local ANGLE_Q = 256 / TAU -- wire angle = radians * ANGLE_Q, uint8

-- Op codes (docs/asteroids.md).
local OP_INPUT = 1     -- client -> server, unreliable
local OP_SNAPSHOT = 10 -- server -> clients, unreliable, every tick
local OP_WELCOME = 20  -- reliable from here on
local OP_JOINED = 21
local OP_LEFT = 22
local OP_DEATH = 23
local OP_ASTEROID = 24
local OP_SCORE = 25
local OP_WAVE = 26
local OP_RESPAWN = 27
local OP_SHUTDOWN = 28

local BTN_THRUST, BTN_LEFT, BTN_RIGHT, BTN_FIRE = 1, 2, 4, 8
local FLAG_ALIVE, FLAG_INVULNERABLE, FLAG_THRUST = 1, 2, 4
local CAUSE_ASTEROID, CAUSE_BULLET = 1, 2

-- Tuning (world units, seconds).
local SHIP_RADIUS = 12
local TURN_SPEED = 4.5 -- rad/s
local THRUST = 320     -- units/s^2
local MAX_SPEED = 420
local DRAG = 0.6       -- fraction of the speed kept after one second without thrust
local BULLET_SPEED = 520
local BULLET_LIFE = 1.1
local FIRE_COOLDOWN = 0.22
local BULLETS_PER_SHIP = 6
local MAX_BULLETS = 48
local MAX_ASTEROIDS = 40
local RESPAWN_DELAY = 2.0
local INVULNERABLE = 2.5
local WAVE_DELAY = 2.0
local SAFE_DISTANCE = 150 -- new asteroids and respawns keep this far from ships / asteroids
local RADIUS = { 12, 22, 40 } -- by size: 1 small, 2 medium, 3 large
local SPEED_MIN = { 80, 50, 25 }
local SPEED_MAX = { 130, 90, 55 }
local POINTS = { 100, 50, 20 }
local KILL_POINTS = 200
local BOUNTY = 25 -- coins per ship shot down, paid at match end by asteroids_bounty (below)
local MAX_SCORE = 65535

-- Snapshot formats, built once: header, then one repeated piece per entity.
local SNAP_HEADER = "<I4HBBB"
local SHIP_FMT, AST_FMT, BUL_FMT = {}, {}, {}
for k = 0, 16 do SHIP_FMT[k] = srep("BBHHBHB", k) end
for k = 0, MAX_ASTEROIDS do AST_FMT[k] = srep("HHB", k) end
for k = 0, MAX_BULLETS do BUL_FMT[k] = srep("HHB", k) end

-- A whole number in lo..hi from an untrusted param; default when absent or not a number.
local function clamp_int(v, lo, hi, default)
  if type(v) ~= "number" or v ~= v then return default end
  if v < lo then return lo elseif v > hi then return hi end
  return floor(v)
end

-- Squared distance on the torus.
local function dist2(ax, ay, bx, by)
  local dx, dy = ax - bx, ay - by
  if dx > HW then dx = dx - W elseif dx < -HW then dx = dx + W end
  if dy > HH then dy = dy - H elseif dy < -HH then dy = dy + H end
  return dx * dx + dy * dy
end

local function qx(x) return floor(x * SCALE) end

local function label_of(s)
  return kaos.json_encode({ game = "asteroids", players = s.n_players, max = s.max_players,
    open = s.n_players < s.max_players })
end

local function event(d, op, payload, to)
  d.broadcast_message(op, payload, to, nil, true)
end

-- --- entities --------------------------------------------------------------------------------

local function spawn_asteroid(s, size, x, y)
  if s.n_asteroids >= MAX_ASTEROIDS then return end
  local pool = s.asteroids
  for i = 1, MAX_ASTEROIDS do
    local a = pool[i]
    if not a.alive then
      local dir = random() * TAU
      local speed = SPEED_MIN[size] + random() * (SPEED_MAX[size] - SPEED_MIN[size])
      a.alive, a.size, a.x, a.y = true, size, x % W, y % H
      a.vx, a.vy = cos(dir) * speed, sin(dir) * speed
      s.n_asteroids = s.n_asteroids + 1
      return
    end
  end
end

-- Destroys asteroid a; larger ones split in two. shooter: player id, 0 = a crash.
local function break_asteroid(s, d, a, shooter)
  local size, x, y = a.size, a.x, a.y -- a's slot may be reused by a child below
  a.alive = false
  s.n_asteroids = s.n_asteroids - 1
  event(d, OP_ASTEROID, spack("<BBHH", shooter, size, qx(x), qx(y)))
  if size > 1 then
    spawn_asteroid(s, size - 1, x, y)
    spawn_asteroid(s, size - 1, x, y)
  end
end

local function add_score(s, d, ship, points)
  ship.score = min(ship.score + points, MAX_SCORE)
  event(d, OP_SCORE, spack("<BH", ship.id, ship.score))
end

-- The player's score to the high scores (queued: see the top of the file).
local function submit_score(p)
  if p.user_id ~= "" and p.score > 0 then
    kaos.leaderboard_submit(HIGHSCORES, p.user_id, p.score, 0, nil, p.name)
  end
end

local function far_from_ships(s, x, y)
  local r2 = SAFE_DISTANCE * SAFE_DISTANCE
  for id = 1, s.max_players do
    local p = s.ships[id]
    if p.present and p.alive and dist2(x, y, p.x, p.y) < r2 then return false end
  end
  return true
end

local function far_from_asteroids(s, x, y)
  local r2 = SAFE_DISTANCE * SAFE_DISTANCE
  local pool = s.asteroids
  for i = 1, MAX_ASTEROIDS do
    local a = pool[i]
    if a.alive and dist2(x, y, a.x, a.y) < r2 then return false end
  end
  return true
end

local function start_wave(s, d)
  s.wave = s.wave + 1
  local count = min(3 + s.wave, 8)
  for _ = 1, count do
    local x, y
    for _ = 1, 10 do -- on an edge, away from every ship
      if random() < 0.5 then x, y = random() * W, 0 else x, y = 0, random() * H end
      if far_from_ships(s, x, y) then break end
    end
    spawn_asteroid(s, 3, x, y)
  end
  event(d, OP_WAVE, spack("<HB", s.wave & 0xffff, count))
end

local function respawn(s, d, p)
  local x, y
  for _ = 1, 8 do
    x, y = random() * W, random() * H
    if far_from_asteroids(s, x, y) then break end
  end
  p.alive, p.x, p.y, p.vx, p.vy = true, x, y, 0, 0
  p.angle = random() * TAU
  p.invulnerable = s.invulnerable_ticks
  p.cooldown = 0
  event(d, OP_RESPAWN, spack("<BHH", p.id, qx(x), qx(y)))
end

local function kill_ship(s, d, p, killer, cause)
  p.alive = false
  p.respawn = s.respawn_ticks
  event(d, OP_DEATH, spack("<BBB", p.id, killer, cause))
end

local function fire(s, p)
  local pool = s.bullets
  for i = 1, MAX_BULLETS do
    local b = pool[i]
    if not b.alive then
      local c, sn = cos(p.angle), sin(p.angle)
      b.alive, b.owner, b.ttl = true, p.id, s.bullet_ticks
      b.x, b.y = (p.x + c * SHIP_RADIUS) % W, (p.y + sn * SHIP_RADIUS) % H
      b.vx, b.vy = p.vx + c * BULLET_SPEED, p.vy + sn * BULLET_SPEED
      s.n_bullets = s.n_bullets + 1
      p.bullets = p.bullets + 1
      p.cooldown = s.cooldown_ticks
      return
    end
  end
end

local function remove_bullet(s, b)
  b.alive = false
  s.n_bullets = s.n_bullets - 1
  local owner = s.ships[b.owner]
  if owner.bullets > 0 then owner.bullets = owner.bullets - 1 end
end

-- --- one tick --------------------------------------------------------------------------------

local function step_ships(s, d)
  local dt = s.dt
  local turn, thrust, drag, max2 = TURN_SPEED * dt, THRUST * dt, s.drag, MAX_SPEED * MAX_SPEED
  for id = 1, s.max_players do
    local p = s.ships[id]
    if p.present then
      if not p.alive then
        p.respawn = p.respawn - 1
        if p.respawn <= 0 then respawn(s, d, p) end
      else
        local btn = p.buttons
        if btn & BTN_LEFT ~= 0 then p.angle = p.angle - turn end
        if btn & BTN_RIGHT ~= 0 then p.angle = p.angle + turn end
        p.angle = p.angle % TAU
        local vx, vy = p.vx, p.vy
        if btn & BTN_THRUST ~= 0 then
          vx, vy = vx + cos(p.angle) * thrust, vy + sin(p.angle) * thrust
        else
          vx, vy = vx * drag, vy * drag
        end
        local sp2 = vx * vx + vy * vy
        if sp2 > max2 then
          local k = MAX_SPEED / sqrt(sp2)
          vx, vy = vx * k, vy * k
        end
        p.vx, p.vy = vx, vy
        p.x, p.y = (p.x + vx * dt) % W, (p.y + vy * dt) % H
        if p.invulnerable > 0 then p.invulnerable = p.invulnerable - 1 end
        if p.cooldown > 0 then p.cooldown = p.cooldown - 1 end
        if btn & BTN_FIRE ~= 0 and p.cooldown == 0 and p.bullets < BULLETS_PER_SHIP
            and s.n_bullets < MAX_BULLETS then
          fire(s, p)
        end
      end
    end
  end
end

local function step_bullets(s)
  local dt, pool = s.dt, s.bullets
  for i = 1, MAX_BULLETS do
    local b = pool[i]
    if b.alive then
      b.ttl = b.ttl - 1
      if b.ttl <= 0 then
        remove_bullet(s, b)
      else
        b.x, b.y = (b.x + b.vx * dt) % W, (b.y + b.vy * dt) % H
      end
    end
  end
end

local function step_asteroids(s)
  local dt, pool = s.dt, s.asteroids
  for i = 1, MAX_ASTEROIDS do
    local a = pool[i]
    if a.alive then a.x, a.y = (a.x + a.vx * dt) % W, (a.y + a.vy * dt) % H end
  end
end

-- Bullets against asteroids and ships, then ships against asteroids.
local function collide(s, d)
  local bullets, asteroids, ships = s.bullets, s.asteroids, s.ships
  local ship_r2 = SHIP_RADIUS * SHIP_RADIUS
  for i = 1, MAX_BULLETS do
    local b = bullets[i]
    if b.alive then
      for j = 1, MAX_ASTEROIDS do
        local a = asteroids[j]
        if a.alive then
          local r = RADIUS[a.size]
          if dist2(b.x, b.y, a.x, a.y) < r * r then
            local shooter = ships[b.owner]
            remove_bullet(s, b)
            break_asteroid(s, d, a, b.owner)
            if shooter.present then add_score(s, d, shooter, POINTS[a.size]) end
            break
          end
        end
      end
    end
    if b.alive then
      for id = 1, s.max_players do
        local p = ships[id]
        if p.present and p.alive and p.invulnerable == 0 and id ~= b.owner
            and dist2(b.x, b.y, p.x, p.y) < ship_r2 then
          local shooter = ships[b.owner]
          remove_bullet(s, b)
          kill_ship(s, d, p, shooter.present and b.owner or 0, CAUSE_BULLET)
          if shooter.present then
            add_score(s, d, shooter, KILL_POINTS)
            s.kills[shooter.user_id] = (s.kills[shooter.user_id] or 0) + 1
          end
          break
        end
      end
    end
  end
  for id = 1, s.max_players do
    local p = ships[id]
    if p.present and p.alive and p.invulnerable == 0 then
      for j = 1, MAX_ASTEROIDS do
        local a = asteroids[j]
        if a.alive then
          local r = RADIUS[a.size] + SHIP_RADIUS * 0.8
          if dist2(p.x, p.y, a.x, a.y) < r * r then
            break_asteroid(s, d, a, 0)
            kill_ship(s, d, p, 0, CAUSE_ASTEROID)
            break
          end
        end
      end
    end
  end
end

local function step_waves(s, d)
  if s.n_asteroids > 0 then return end
  if s.wave_timer < 0 then
    s.wave_timer = s.wave_delay_ticks
  else
    s.wave_timer = s.wave_timer - 1
    if s.wave_timer <= 0 then
      s.wave_timer = -1
      start_wave(s, d)
    end
  end
end

-- One snapshot to everyone: the values go into a reused array, then one pack.
local function send_snapshot(s, d, tick)
  local args, n = s.snap, 6
  local ns, na, nb = 0, 0, 0
  for id = 1, s.max_players do
    local p = s.ships[id]
    if p.present then
      local flags = 0
      if p.alive then
        flags = FLAG_ALIVE
        if p.invulnerable > 0 then flags = flags | FLAG_INVULNERABLE end
        if p.buttons & BTN_THRUST ~= 0 then flags = flags | FLAG_THRUST end
      end
      args[n], args[n + 1], args[n + 2], args[n + 3] = id, flags, qx(p.x), qx(p.y)
      args[n + 4], args[n + 5], args[n + 6] = floor(p.angle * ANGLE_Q + 0.5) & 255, p.score, p.seq
      n, ns = n + 7, ns + 1
    end
  end
  local pool = s.asteroids
  for i = 1, MAX_ASTEROIDS do
    local a = pool[i]
    if a.alive then
      args[n], args[n + 1], args[n + 2] = qx(a.x), qx(a.y), a.size
      n, na = n + 3, na + 1
    end
  end
  pool = s.bullets
  for i = 1, MAX_BULLETS do
    local b = pool[i]
    if b.alive then
      args[n], args[n + 1], args[n + 2] = qx(b.x), qx(b.y), b.owner
      n, nb = n + 3, nb + 1
    end
  end
  args[1], args[2], args[3], args[4], args[5] = tick & 0xffffffff, s.wave & 0xffff, ns, na, nb
  local fmt = SNAP_HEADER .. SHIP_FMT[ns] .. AST_FMT[na] .. BUL_FMT[nb]
  d.broadcast_message(OP_SNAPSHOT, spack(fmt, tunpack(args, 1, n - 1)), nil, nil, false)
end

-- --- the handler -----------------------------------------------------------------------------

local M = {}

-- Hands every player's kills to the RPC asteroids_bounty, once per match:
-- match handlers have no database connection, so the match queues the
-- payment to an API worker (kaos.rpc_call_async) and goes on. Called where
-- the match ends: match_loop's natural end (empty for empty_seconds) and
-- match_terminate (shutdown). The RPC itself is idempotent per match, so a
-- second queueing would pay nothing; the flag only saves the work. A refusal
-- (the API queue is full, the server is stopping) is logged and the kills
-- are not paid: the match cannot wait.
local function pay_bounty(s, context)
  if s.bounty_queued then return end
  s.bounty_queued = true
  local kills = {}
  for user_id, n in pairs(s.kills) do
    if n > 0 then kills[#kills + 1] = { user_id = user_id, kills = n } end
  end
  if #kills == 0 then return end
  local ok, err = pcall(kaos.rpc_call_async, "asteroids_bounty",
    { match_id = context.match_id, kills = kills })
  if not ok then
    kaos.logger_warn("asteroids %s: the kill bounty was not paid: %s", context.match_id,
      type(err) == "table" and err.message or tostring(err))
  end
end

-- params (all optional): tick_rate 10-60 (30), max_players 1-16 (8),
-- empty_seconds 1-3600 (30): the match ends after this long without players.
function M.match_init(context, params)
  local rate = clamp_int(params.tick_rate, 10, 60, 30)
  local s = {
    rate = rate,
    dt = 1 / rate,
    drag = DRAG ^ (1 / rate),
    max_players = clamp_int(params.max_players, 1, 16, 8),
    empty_limit = clamp_int(params.empty_seconds, 1, 3600, 30) * rate,
    empty_ticks = 0,
    bullet_ticks = math.ceil(BULLET_LIFE * rate),
    cooldown_ticks = math.ceil(FIRE_COOLDOWN * rate),
    respawn_ticks = math.ceil(RESPAWN_DELAY * rate),
    invulnerable_ticks = math.ceil(INVULNERABLE * rate),
    wave_delay_ticks = math.ceil(WAVE_DELAY * rate),
    wave_timer = -1,
    wave = 0,
    n_players = 0,
    ships = {},
    by_slot = {},
    asteroids = {},
    n_asteroids = 0,
    bullets = {},
    n_bullets = 0,
    snap = {},
    kills = {}, -- user id -> ships shot down, paid at match end (pay_bounty)
    bounty_queued = false,
  }
  for id = 1, s.max_players do
    s.ships[id] = { id = id, present = false, alive = false, slot = 0, name = "", user_id = "", x = 0, y = 0,
      vx = 0, vy = 0, angle = 0, buttons = 0, seq = 0, score = 0, bullets = 0, cooldown = 0,
      respawn = 0, invulnerable = 0 }
  end
  for i = 1, MAX_ASTEROIDS do
    s.asteroids[i] = { alive = false, size = 1, x = 0, y = 0, vx = 0, vy = 0 }
  end
  for i = 1, MAX_BULLETS do
    s.bullets[i] = { alive = false, owner = 1, ttl = 0, x = 0, y = 0, vx = 0, vy = 0 }
  end
  local first = SNAP_HEADER .. SHIP_FMT[s.max_players] .. AST_FMT[MAX_ASTEROIDS] .. BUL_FMT[MAX_BULLETS]
  for i = 1, 5 + 7 * s.max_players + 3 * (MAX_ASTEROIDS + MAX_BULLETS) do s.snap[i] = 0 end
  assert(string.packsize(first) < 1200, "a snapshot must fit one unfragmented packet")
  s.waves_started = false
  return s, rate, label_of(s)
end

function M.match_join_attempt(context, dispatcher, tick, s, presence, metadata)
  if s.n_players >= s.max_players then
    return s, false, "match is full"
  end
  return s, true
end

function M.match_join(context, d, tick, s, presences)
  for _, pr in ipairs(presences) do
    local p
    for id = 1, s.max_players do
      if not s.ships[id].present then p = s.ships[id]; break end
    end
    if p then -- join_attempt keeps the count below max; this is only defensive
      p.present, p.alive, p.slot, p.name = true, false, pr.slot, pr.username
      p.user_id = pr.user_id
      p.score, p.buttons, p.seq, p.bullets = 0, 0, 0, 0
      p.respawn = 1 -- appears (invulnerable) on the next tick
      s.by_slot[pr.slot] = p
      s.n_players = s.n_players + 1
      local me = { pr }
      event(d, OP_WELCOME, spack("<BBHHBBB", PROTOCOL, p.id, W, H, s.rate, s.max_players, SCALE), me)
      event(d, OP_JOINED, spack("<BI4Hs1", p.id, pr.slot, 0, pr.username:sub(1, 64)))
      for id = 1, s.max_players do -- the roster, to the newcomer
        local o = s.ships[id]
        if o.present and o ~= p then
          event(d, OP_JOINED, spack("<BI4Hs1", o.id, o.slot, o.score, o.name:sub(1, 64)), me)
        end
      end
    end
  end
  if not s.waves_started then
    s.waves_started = true
    start_wave(s, d)
  end
  d.match_label_update(label_of(s))
  return s
end

function M.match_leave(context, d, tick, s, presences)
  for _, pr in ipairs(presences) do
    local p = s.by_slot[pr.slot]
    if p then
      submit_score(p)
      s.by_slot[pr.slot] = nil
      p.present, p.alive = false, false
      s.n_players = s.n_players - 1
      for i = 1, MAX_BULLETS do -- its bullets go too: the id may be reused
        local b = s.bullets[i]
        if b.alive and b.owner == p.id then remove_bullet(s, b) end
      end
      event(d, OP_LEFT, spack("<B", p.id))
    end
  end
  d.match_label_update(label_of(s))
  return s
end

function M.match_loop(context, d, tick, s, messages)
  for i = 1, #messages do
    local m = messages[i]
    -- Anything but a well-formed input is ignored: a client cannot end the match.
    if m.op_code == OP_INPUT and #m.data >= 2 then
      local p = s.by_slot[m.sender.slot]
      if p then p.buttons, p.seq = sunpack("<BB", m.data) end
    end
  end
  if s.n_players == 0 then
    s.empty_ticks = s.empty_ticks + 1
    if s.empty_ticks >= s.empty_limit then
      pay_bounty(s, context)
      return nil
    end
    return s
  end
  s.empty_ticks = 0
  step_ships(s, d)
  step_bullets(s)
  step_asteroids(s)
  collide(s, d)
  step_waves(s, d)
  send_snapshot(s, d, tick)
  return s
end

function M.match_terminate(context, d, tick, s, grace_seconds)
  for id = 1, s.max_players do
    if s.ships[id].present then submit_score(s.ships[id]) end
  end
  pay_bounty(s, context)
  event(d, OP_SHUTDOWN, spack("<H", min(grace_seconds, 65535)))
  return s
end

-- A JSON summary of the match, for tools and tests.
function M.match_signal(context, d, tick, s, data)
  local players = {}
  for id = 1, s.max_players do
    local p = s.ships[id]
    if p.present then
      players[#players + 1] = { id = id, slot = p.slot, name = p.name, score = p.score, alive = p.alive }
    end
  end
  return s, kaos.json_encode({ tick = tick, wave = s.wave, asteroids = s.n_asteroids,
    bullets = s.n_bullets, players = players })
end

kaos.register_match("asteroids", M)

-- asteroids_find_or_create(payload) -> match id. Joins players into the
-- fullest open asteroids match (so matches fill before new ones open); when
-- none has room, creates one with the payload (a JSON object of match_init
-- params, or empty) as its params. Two callers racing for the last seat both
-- get the same id: the second join is refused ("match is full") and its
-- client calls again. While the server sheds load, match_create (and the
-- join that follows) are refused with UNAVAILABLE "server overloaded; try
-- again later": the error passes through to the client, which tries again
-- after a pause (client-sdk/examples/asteroids_common does, with backoff).
kaos.register_rpc(function(context, payload)
  local params = nil
  if payload ~= "" then
    local ok, p = pcall(kaos.json_decode, payload)
    if not ok or type(p) ~= "table" then
      error({ code = 3, message = "asteroids_find_or_create expects a JSON object of match params or nothing" })
    end
    params = p
  end
  local best, best_players = nil, -1
  for _, m in ipairs(kaos.match_list(100, true, nil, nil, nil, "+game:asteroids +open:true")) do
    local ok, label = pcall(kaos.json_decode, m.label)
    if ok and type(label) == "table" and type(label.players) == "number"
        and type(label.max) == "number" and label.players < label.max and label.players > best_players then
      best, best_players = m.match_id, label.players
    end
  end
  return best or kaos.match_create("asteroids", params)
end, "asteroids_find_or_create")

-- asteroids_bounty(payload = {"match_id": ..., "kills": [{"user_id": ..., "kills": N}, ...]})
--   -> {"paid": true, "coins": total} or {"paid": false} (this match was paid already)
--
-- The kill bounty, queued by the match when it ends (pay_bounty above) and
-- run on an API worker as the system: BOUNTY coins per kill to every player,
-- each with a ledger entry naming the match. Idempotent per match: a system
-- storage object ("asteroids_bounty", match id) is written with version "*"
-- (only if absent) in the same kaos.multi_update as the wallets, so a second
-- call for the same match fails its version check and pays nothing. Only the
-- system may call it: a client could otherwise mint coins.
kaos.register_rpc(function(context, payload)
  if context.user_id ~= "" then
    error({ code = 7, message = "asteroids_bounty is paid by the match, not called by clients" })
  end
  local ok, p = pcall(kaos.json_decode, payload)
  if not ok or type(p) ~= "table" or type(p.match_id) ~= "string" or p.match_id == ""
      or type(p.kills) ~= "table" then
    error({ code = 3, message = "asteroids_bounty expects {match_id, kills = [{user_id, kills}]}" })
  end
  local wallets, total, tally = {}, 0, {}
  for _, k in ipairs(p.kills) do
    if type(k) ~= "table" or type(k.user_id) ~= "string" or math.type(k.kills) ~= "integer"
        or k.kills < 1 then
      error({ code = 3, message = "asteroids_bounty: each kill entry is {user_id, kills >= 1}" })
    end
    local coins = k.kills * BOUNTY
    total = total + coins
    tally[k.user_id] = k.kills
    wallets[#wallets + 1] = { user_id = k.user_id, changeset = { coins = coins },
      metadata = { reason = "asteroids_bounty", match_id = p.match_id, kills = k.kills } }
  end
  local marker = { collection = "asteroids_bounty", key = p.match_id, user_id = nil,
    value = { kills = tally, coins = total }, version = "*", permission_read = 0, permission_write = 0 }
  local done, err = pcall(kaos.multi_update, nil, { marker }, nil, wallets, true)
  if not done then
    if type(err) == "table" and err.code == 9 then -- the marker exists: paid already
      return kaos.json_encode({ paid = false })
    end
    error(err)
  end
  return kaos.json_encode({ paid = true, coins = total })
end, "asteroids_bounty")

-- The matchmaker's groups of asteroids players (tickets with
-- properties.game = "asteroids": kaos-asteroids-bots -M REGION,
-- kaos-asteroids-term -M REGION) get a fresh asteroids match sized for them;
-- any other group gets nil, so its players meet in a relayed match by token.
kaos.register_matchmaker_matched(function(context, matched_users)
  for _, u in ipairs(matched_users) do
    if u.properties.game ~= "asteroids" then return nil end
  end
  return kaos.match_create("asteroids", { max_players = math.max(4, #matched_users) })
end)
