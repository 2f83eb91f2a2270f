-- Test module for tests/e2e/test_account.c (loaded next to lua-examples/):
-- the account functions of `kaos` against the real services, a before hook
-- on an account operation, and RPCs that end the caller's own session.
local kaos = require("kaos")

-- pcall(f, ...) -> "ok" or "<code> <message>" of the raised error table.
local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

-- account_api {"custom_id", "device_id", "email", "other_device"}: exercises
-- the API for the caller and for users it makes, and reports what it saw.
kaos.register_rpc(function(context, payload)
  local args = kaos.json_decode(payload)
  local me = context.user_id
  local seen = {}

  local account = kaos.account_get_id(me)
  seen.own_username = account.user.username == context.username
  seen.own_device_count = #account.device_ids
  seen.own_lang_tag = account.user.lang_tag

  kaos.account_update_id(me, { display_name = "Lua Name", metadata = { level = 3 } })
  account = kaos.account_get_id(me)
  seen.display_name = account.user.display_name
  seen.metadata_level = account.user.metadata.level
  seen.bad_lang_tag = outcome(kaos.account_update_id, me, { lang_tag = "no spaces allowed" })
  seen.unknown_field = outcome(kaos.account_update_id, me, { nickname = "x" })

  local by_name = kaos.users_get_username({ context.username })
  seen.by_name = #by_name == 1 and by_name[1].id == me
  local by_id = kaos.users_get_id({ me, "00000000-0000-0000-0000-000000000000" })
  seen.by_id_count = #by_id
  seen.bad_id = outcome(kaos.users_get_id, { "not-a-uuid" })

  -- logins from server code: user id, username, created
  local uid, uname, created = kaos.authenticate_custom(args.custom_id, nil, true)
  local uid2, _, created2 = kaos.authenticate_custom(args.custom_id)
  seen.custom_created = created and not created2 and uid == uid2 and #uname == 10
  seen.unknown_device = outcome(kaos.authenticate_device, args.device_id, nil, false)
  local eid, _, ecreated = kaos.authenticate_email(args.email, "lua password", "lua_" .. args.custom_id)
  seen.email_created = ecreated
  seen.email_wrong_password = outcome(kaos.authenticate_email, args.email, "not the password", nil, false)

  -- link and unlink on the caller
  seen.link_custom = outcome(kaos.link_custom, me, "lua-link-" .. args.custom_id)
  seen.custom_id = kaos.account_get_id(me).custom_id == "lua-link-" .. args.custom_id
  seen.unlink_custom = outcome(kaos.unlink_custom, me)
  seen.unlink_custom_again = outcome(kaos.unlink_custom, me)
  seen.link_taken_device = outcome(kaos.link_device, me, args.other_device)
  seen.unlink_last = outcome(kaos.unlink_device, me, account.device_ids[1])

  -- delete the email user made above; ban and unban the custom one
  seen.ban = outcome(kaos.users_ban_id, { uid })
  seen.banned_login = outcome(kaos.authenticate_custom, args.custom_id, nil, false)
  seen.unban = outcome(kaos.users_unban_id, { uid })
  seen.ban_unknown = outcome(kaos.users_ban_id, { "00000000-0000-0000-0000-000000000000" })
  seen.delete = outcome(kaos.account_delete_id, eid)
  seen.deleted_get = outcome(kaos.account_get_id, eid)
  seen.logout_all = outcome(kaos.session_logout, uid)
  return kaos.json_encode(seen)
end, "account_api")

-- logout_me: ends the caller's session from server code; the connection
-- stays open, unauthenticated.
kaos.register_rpc(function(context, payload)
  kaos.session_logout(context.user_id, context.session_id)
end, "logout_me")

-- delete_me: deletes the caller's account from server code; its connections
-- are closed (DISCONNECT_BANNED), this one included.
kaos.register_rpc(function(context, payload)
  kaos.account_delete_id(context.user_id)
end, "delete_me")

-- Hooks run for the account operations like for any other.
kaos.register_req_before(function(context, request)
  if request.display_name and request.display_name.value == "forbidden" then
    error({ code = 3, message = "that display name is not allowed here" })
  end
  return request
end, "account_update")
