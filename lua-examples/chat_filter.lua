-- A chat profanity filter: before hooks on the messages clients send and
-- edit (docs/chat.md). The hook gets the request as a table ({channel_id,
-- content} for a send, plus message_id for an update), content being the
-- JSON object as text. Words of `banned` in the message's "text" field are
-- replaced by asterisks (a rewrite: the channel, the history and the
-- sender's acknowledgement all get the filtered text); a message carrying a
-- link is refused with INVALID_ARGUMENT, so it never reaches the channel.
local kaos = require("kaos")

local banned = { "darn", "heck", "frak" }

-- "darn" -> "[dD][aA][rR][nN]": Lua patterns have no case-insensitive flag.
local function any_case(word)
  return (word:gsub("%a", function(ch)
    return "[" .. ch:lower() .. ch:upper() .. "]"
  end))
end

local patterns = {}
for i, word in ipairs(banned) do
  patterns[i] = { any_case(word), string.rep("*", #word) }
end

local function filter(context, request)
  local ok, content = pcall(kaos.json_decode, request.content)
  -- Not a JSON object: let the chat service refuse it with its own error.
  if not ok or type(content) ~= "table" or type(content.text) ~= "string" then
    return request
  end
  if content.text:find("https?://") then
    error({ code = 3, message = "links are not allowed in chat" }) -- 3 = INVALID_ARGUMENT
  end
  for _, p in ipairs(patterns) do
    content.text = content.text:gsub(p[1], p[2])
  end
  request.content = kaos.json_encode(content)
  return request
end

kaos.register_req_before(filter, "channel_message_send")
kaos.register_req_before(filter, "channel_message_update")
