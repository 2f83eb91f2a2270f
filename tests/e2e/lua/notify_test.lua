-- Test module for tests/e2e/test_notify.c: the kaos.notification* functions
-- against Postgres. The payload is another user's id; the caller's RPC
-- sends that user a persistent notification (code 7) and a live-only one
-- (code 8), lists the stored ones, tries a reserved code, deletes the
-- stored one and lists again. Returns what each step gave, as JSON.
local kaos = require("kaos")

local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

kaos.register_rpc(function(context, payload)
  local me, other = context.user_id, payload
  local out = {}
  out.send = outcome(kaos.notification_send, other, "hi", { n = 1 }, 7, me, true)
  out.send_many = outcome(kaos.notifications_send,
    { { user_id = other, subject = "live", content = {}, code = 8, persistent = false } })
  local list, cursor = kaos.notifications_list(other, 10, nil)
  out.listed = #list
  out.first = list[1] and (list[1].subject .. " " .. list[1].code .. " " .. list[1].sender_id
    .. " " .. tostring(list[1].content.n) .. " " .. tostring(list[1].persistent)) or "none"
  local again = kaos.notifications_list(other, 10, cursor)
  out.after_cursor = #again
  out.reserved = outcome(kaos.notification_send, other, "x", {}, -1)
  out.delete = outcome(kaos.notifications_delete, other, { list[1] and list[1].id })
  out.after_delete = #kaos.notifications_list(other, 10, nil)
  return kaos.json_encode(out)
end, "notify_lua")

-- kaos.notification_send_all: the payload is "persistent" or "live"; the
-- subject says which, the code is 9, the content empty.
kaos.register_rpc(function(context, payload)
  return outcome(kaos.notification_send_all, "to everyone " .. payload, {}, 9,
    payload == "persistent")
end, "notify_all")
