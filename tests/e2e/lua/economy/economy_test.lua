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
