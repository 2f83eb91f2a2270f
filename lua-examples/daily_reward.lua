-- A daily reward: once per UTC day a player may claim coins
-- (docs/economy.md). The claim is a storage object the player can read but
-- not change ("rewards"/"daily": the last day claimed and the streak) and a
-- wallet update with a ledger entry, written together by one
-- kaos.multi_update: either both land or neither does.
--
-- The storage write expects the version read (or "*" when there was no
-- object yet), so two claims racing on the same day cannot both pay: the
-- second one's version check fails and the whole multi-update is rolled back.
local kaos = require("kaos")

local REWARD = 100 -- coins; a streak of consecutive days adds 10 each, up to +100
local DAY_MS = 86400 * 1000

local function utc_day(ms)
  return os.date("!%Y-%m-%d", ms // 1000)
end

-- daily_reward() -> {claimed = true, coins = N, streak = N, wallet = {...}} or
-- {claimed = false, next_ms = Unix ms of the next UTC midnight}
kaos.register_rpc(function(context, payload)
  local user = context.user_id
  if not user or user == "" then
    error({ code = 16, message = "daily_reward needs a session" })
  end
  local now = kaos.time()
  local today, yesterday = utc_day(now), utc_day(now - DAY_MS)
  local o = kaos.storage_read(user, "rewards", "daily")
  local last = o and o.value or {}
  if last.day == today then
    return kaos.json_encode({ claimed = false, next_ms = (now // DAY_MS + 1) * DAY_MS })
  end
  local streak = last.day == yesterday and (last.streak or 0) + 1 or 1
  local coins = REWARD + math.min(streak - 1, 10) * 10
  local ok, result, wallets = pcall(kaos.multi_update,
    nil,
    { { collection = "rewards", key = "daily", user_id = user,
        value = { day = today, streak = streak },
        version = o and o.version or "*", permission_read = 1, permission_write = 0 } },
    nil,
    { { user_id = user, changeset = { coins = coins },
        metadata = { reason = "daily_reward", day = today, streak = streak } } },
    true)
  if not ok then
    if type(result) == "table" and result.code == 9 then -- another claim won the race
      return kaos.json_encode({ claimed = false, next_ms = (now // DAY_MS + 1) * DAY_MS })
    end
    error(result)
  end
  return kaos.json_encode({ claimed = true, coins = coins, streak = streak,
    wallet = wallets[1].updated })
end, "daily_reward")
