-- Server-to-server administration: RPCs for tools and back ends, called over
-- HTTP (POST /v2/rpc/{id} with the http key). Clients must not reach them: an
-- RPC from a client carries its user id, one over HTTP an empty user id.
local kaos = require("kaos")

local function server_only(context)
  if context.user_id ~= "" then
    error({ code = 7, message = "server-to-server only" }) -- 7 = PERMISSION_DENIED
  end
end

local function user_ids(payload)
  local ok, args = pcall(kaos.json_decode, payload)
  if not ok or type(args) ~= "table" or type(args.user_ids) ~= "table" then
    error({ code = 3, message = 'expects {"user_ids": ["<user id>", ...]}' })
  end
  return args.user_ids
end

-- admin_ban {"user_ids": [...]}: the users can no longer log in, refresh or
-- resume, and every live connection of theirs is closed (DISCONNECT_BANNED).
-- An unknown user fails the call with NOT_FOUND (HTTP 404).
kaos.register_rpc(function(context, payload)
  server_only(context)
  local ids = user_ids(payload)
  kaos.users_ban_id(ids)
  kaos.logger_info("banned %d user(s)", #ids)
end, "admin_ban")

-- admin_unban {"user_ids": [...]}: they may log in again.
kaos.register_rpc(function(context, payload)
  server_only(context)
  kaos.users_unban_id(user_ids(payload))
end, "admin_unban")
