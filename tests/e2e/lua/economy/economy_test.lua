-- Test module for tests/e2e/test_economy.c only (loaded next to lua-examples/;
-- in a folder of its own, so the other e2e servers, which load every module
-- of tests/e2e/lua, do not get its account_get hooks):
-- RPCs over the economy functions, the id of the VM that served each call
-- (one VM per API worker, so the test can see both workers took part), and
-- hooks on the account read that carries the wallet.
local kaos = require("kaos")

-- Made when this VM loads the module: different in every VM.
local VM = kaos.uuid_v4()

local function args(payload)
  local ok, a = pcall(kaos.json_decode, payload)
  if not ok or type(a) ~= "table" then error({ code = 3, message = "expects a JSON object" }) end
  return a
end

-- eco_add {user_id, amount, ledger} -> {vm, coins}
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  local updated = kaos.wallet_update(a.user_id, { coins = a.amount }, { by = context.user_id },
    a.ledger == true)
  return kaos.json_encode({ vm = VM, coins = updated.coins })
end, "eco_add")

-- eco_spend {user_id, amount} -> "ok" or "refused <code>"
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  local ok, e = pcall(kaos.wallet_update, a.user_id, { coins = -a.amount }, nil, true)
  if ok then return "ok" end
  if type(e) == "table" and e.code == 9 then return "refused" end
  error(e)
end, "eco_spend")

-- eco_state {user_id} -> {wallet, ledger = number of entries}
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  local n, cursor = 0, nil
  repeat
    local entries
    entries, cursor = kaos.wallet_ledger_list(a.user_id, 100, cursor)
    n = n + #entries
  until cursor == nil
  return kaos.json_encode({ wallet = kaos.account_get_id(a.user_id).wallet, ledger = n })
end, "eco_state")

-- eco_multi {user_id, fail = "version" | "negative" | "account" | nil} -> "ok" or "<code> <message>"
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  local u = a.user_id
  local accounts = { { user_id = u, display_name = "multi" } }
  local writes = { { collection = "eco", key = "multi", user_id = u, value = { n = 1 }, version = "*" } }
  local wallets = { { user_id = u, changeset = { coins = 5 }, metadata = { why = "multi" } } }
  if a.fail == "version" then writes[1].version = "0123456789abcdef0123456789abcdef" end
  if a.fail == "negative" then wallets[1].changeset = { coins = -1000000 } end
  if a.fail == "account" then accounts[1].lang_tag = "no spaces allowed" end
  local ok, e = pcall(kaos.multi_update, accounts, writes, nil, wallets, true)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  error(e)
end, "eco_multi")

-- The account read carries the wallet: the after hook sees it in the
-- response and keeps it (system object "eco_seen"/<user id>), and the
-- before hook refuses reads of accounts whose display name is "hidden".
kaos.register_req_after(function(context, response, request)
  kaos.storage_write(nil, "eco_seen", context.user_id, { wallet = response.wallet }, nil, 0, 0)
end, "account_get")

kaos.register_req_before(function(context, request)
  local acc = kaos.account_get_id(context.user_id)
  if acc.user.display_name == "hidden" then
    error({ code = 7, message = "this account is hidden" })
  end
  return request
end, "account_get")

-- eco_seen -> the wallet text the after hook last saw for the caller, or ""
kaos.register_rpc(function(context, payload)
  local o = kaos.storage_read(nil, "eco_seen", context.user_id)
  return o and o.value.wallet or ""
end, "eco_seen")

-- eco_counter {key} -> the counter after this call's increment, through
-- storage_write_retry on a system object (racing calls retry, none is lost)
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  local _, value = kaos.storage_write_retry(nil, "eco_counters", a.key, function(v)
    v = v or { n = 0 }
    v.n = v.n + 1
    return v
  end, 20)
  return tostring(value.n)
end, "eco_counter")

-- eco_counter_get {key} -> the counter's value
kaos.register_rpc(function(context, payload)
  local o = kaos.storage_read(nil, "eco_counters", args(payload).key)
  return tostring(o and o.value.n or 0)
end, "eco_counter_get")

-- A small match that pays the asteroids kill bounty (lua-examples/asteroids.lua's
-- RPC asteroids_bounty) the way the asteroids match does, from its handlers
-- through kaos.rpc_call_async, with kills the test makes deterministic:
-- signal {"kill": user_id} counts one, {"end": true} ends the match at its
-- next tick. The natural end queues the payment twice (the second must pay
-- nothing); match_terminate (shutdown) queues it once.
local function queue_bounty(s, context)
  local kills = {}
  for user_id, n in pairs(s.kills) do kills[#kills + 1] = { user_id = user_id, kills = n } end
  kaos.rpc_call_async("asteroids_bounty", { match_id = context.match_id, kills = kills })
end

kaos.register_match("eco_bounty", {
  match_init = function(context, params) return { kills = {} }, 10, "eco_bounty" end,
  match_join_attempt = function(context, d, tick, s, presence, metadata) return s, true end,
  match_join = function(context, d, tick, s, presences) return s end,
  match_leave = function(context, d, tick, s, presences) return s end,
  match_loop = function(context, d, tick, s, messages)
    if not s.ending then return s end
    queue_bounty(s, context)
    queue_bounty(s, context)
    return nil
  end,
  match_terminate = function(context, d, tick, s, grace_seconds)
    queue_bounty(s, context)
    return s
  end,
  match_signal = function(context, d, tick, s, data)
    local q = kaos.json_decode(data)
    if q.kill then s.kills[q.kill] = (s.kills[q.kill] or 0) + 1 end
    if q["end"] then s.ending = true end
    return s, "ok"
  end,
})

-- eco_bounty_match -> a new eco_bounty match's id
kaos.register_rpc(function(context, payload)
  return kaos.match_create("eco_bounty")
end, "eco_bounty_match")

-- eco_bounty_kill {match_id}: the caller shot a ship down in that match
kaos.register_rpc(function(context, payload)
  return kaos.match_signal(args(payload).match_id, kaos.json_encode({ kill = context.user_id }))
end, "eco_bounty_kill")

-- eco_bounty_end {match_id}: the match ends at its next tick
kaos.register_rpc(function(context, payload)
  return kaos.match_signal(args(payload).match_id, '{"end":true}')
end, "eco_bounty_end")

-- eco_async {id, payload}: queues the RPC id (kaos.rpc_call_async) -> "queued"
kaos.register_rpc(function(context, payload)
  local a = args(payload)
  kaos.rpc_call_async(a.id, a.payload)
  return "queued"
end, "eco_async")

-- eco_ledger {user_id} -> the newest ledger entry's metadata
kaos.register_rpc(function(context, payload)
  local entries = kaos.wallet_ledger_list(args(payload).user_id, 1)
  return kaos.json_encode(entries[1] and entries[1].metadata or {})
end, "eco_ledger")
