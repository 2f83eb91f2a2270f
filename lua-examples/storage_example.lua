-- Storage from server code, and a guard on what clients store.
--
-- Clients read and write their own storage objects directly (StorageWrite,
-- kaos_client_storage_write); the kaos.storage_* functions act with full
-- rights, for every user and for the game's own (system) objects, so an RPC
-- that uses them decides itself what the caller may do. docs/storage.md has
-- the model, docs/lua-api.md the functions.
local kaos = require("kaos")

local SETTINGS_MAX = 4096 -- bytes of JSON a player's settings object may hold

-- save_settings: stores the caller's settings (a JSON object) as their
-- object "settings"/"player", readable and writable by them only. Answers
-- {"version": "..."}, the version to send with the next conditional write.
kaos.register_rpc(function(context, payload)
  if context.user_id == "" then
    error({ code = 16, message = "save_settings needs a player session" }) -- UNAUTHENTICATED
  end
  if #payload > SETTINGS_MAX then
    error({ code = 3, message = string.format("settings are at most %d bytes", SETTINGS_MAX) })
  end
  local ok, settings = pcall(kaos.json_decode, payload)
  if not ok or type(settings) ~= "table" or #settings > 0 then
    error({ code = 3, message = "save_settings expects a JSON object" })
  end
  local version = kaos.storage_write(context.user_id, "settings", "player", settings)
  return kaos.json_encode({ version = version })
end, "save_settings")

-- load_settings: the caller's settings, or {} when they saved none.
kaos.register_rpc(function(context, payload)
  local object = kaos.storage_read(context.user_id, "settings", "player")
  if object == nil or next(object.value) == nil then
    return "{}"
  end
  return kaos.json_encode(object.value)
end, "load_settings")

-- A before hook on the client's StorageWrite: collections whose names start
-- with "server_" belong to server code (a client could otherwise create its
-- own objects there), and settings objects stay small. The request is the
-- wire message as a table; each object's value is JSON text. Raising refuses
-- the whole write with that code and message; nothing of it is stored.
kaos.register_req_before(function(context, request)
  for i, object in ipairs(request.objects) do
    if string.sub(object.collection, 1, 7) == "server_" then
      error({ code = 7, message = string.format( -- PERMISSION_DENIED
        'collection "%s" is written by the server only', object.collection) })
    end
    if object.collection == "settings" and #object.value > SETTINGS_MAX then
      error({ code = 3, message = string.format( -- INVALID_ARGUMENT
        "object %d: settings are at most %d bytes, not %d", i - 1, SETTINGS_MAX, #object.value) })
    end
  end
  return request
end, "storage_write")
