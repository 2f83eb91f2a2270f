-- Test module for tests/e2e/test_friends.c: a before hook on the client's
-- FriendsAdd that refuses requests naming a username starting with
-- "hooked_", to show that hooks reach the friends routes through the route
-- table like any other request.
local kaos = require("kaos")

kaos.register_req_before(function(context, request)
  for _, name in ipairs(request.usernames) do
    if string.sub(name, 1, 7) == "hooked_" then
      error({ code = 7, message = "friend requests to " .. name .. " are closed" }) -- PERMISSION_DENIED
    end
  end
  return request
end, "friends_add")
