-- Test module for tests/e2e/test_chat.c: the kaos.channel_* functions
-- through an RPC whose payload is a room's name (a session of the caller is
-- on it). The server sends (stored by default), sends as the caller, lists
-- two pages of one, updates and removes, and builds a DM id from both
-- sides. Returns what each step gave, as JSON.
local kaos = require("kaos")

local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

kaos.register_rpc(function(context, payload)
  local out = {}
  local room = kaos.channel_id_build(nil, payload, 1)
  local m = kaos.channel_message_send(room, { text = "from the server" })
  out.send = m.persistent and m.sequence == 1 and m.sender_id == "" and
      m.content.text == "from the server" and m.room_name == payload
  local m2 = kaos.channel_message_send(room, '{"text":"as the caller"}', context.user_id,
    context.username, true)
  local u = kaos.channel_message_update(room, m.message_id, { text = "edited" })
  out.update = u.code
  local page1 = kaos.channel_messages_list(room, 1, true)
  local page2 = kaos.channel_messages_list(room, 1, true, page1.next_cursor)
  out.list = #page1.messages + #page2.messages
  out.list_cursor = page1.messages[1].content.text == "edited" and
      page2.messages[1].message_id == m2.message_id and page2.messages[1].sender_id == context.user_id
  local r = kaos.channel_message_remove(room, m.message_id)
  out.remove = r.code
  local other = "00000000-0000-0000-0000-000000000001"
  out.dm = kaos.channel_id_build(context.user_id, other, 2) == kaos.channel_id_build(other, context.user_id, 2)
  out.bad_type = outcome(kaos.channel_id_build, nil, "x", 5)
  return kaos.json_encode(out)
end, "chat_lua")
