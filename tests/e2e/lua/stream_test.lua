-- Test module for tests/e2e/test_status.c: the kaos.stream_* functions
-- through RPCs, on a stream of a script mode (8), and a before hook on the
-- client's StatusFollow, to show that hooks reach the status routes through
-- the route table like any other request.
local kaos = require("kaos")

local function room(label)
  return { mode = 8, subject = "e2e-room", label = label }
end

-- Joins the caller's session to the room named by the payload; answers
-- how many are on it after the join.
kaos.register_rpc(function(context, payload)
  kaos.stream_user_join(context.user_id, context.session_id, room(payload), false, false, "here")
  return tostring(kaos.stream_count(room(payload)))
end, "stream_test_join")

-- Sends "<label>:<user>" (the label is the payload) to everyone on the
-- room; answers how many presences it listed.
kaos.register_rpc(function(context, payload)
  kaos.stream_send(room(payload), payload .. ":" .. context.username)
  return tostring(#kaos.stream_user_list(room(payload)))
end, "stream_test_send")

-- The caller's session leaves the room.
kaos.register_rpc(function(context, payload)
  kaos.stream_user_leave(context.user_id, context.session_id, room(payload))
  return tostring(kaos.stream_count(room(payload)))
end, "stream_test_leave")

kaos.register_req_before(function(context, request)
  for _, name in ipairs(request.usernames) do
    if string.sub(name, 1, 10) == "forbidden_" then
      error({ code = 7, message = "following " .. name .. " is not allowed here" }) -- PERMISSION_DENIED
    end
  end
  return request
end, "status_follow")
