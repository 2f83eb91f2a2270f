-- Test module for tests/e2e/test_storage.c (loaded next to lua-examples/):
-- the storage functions of `kaos` against the real service, an after hook
-- on storage_write that records the acks it saw, and an RPC that writes
-- system objects for the permission matrix.
local kaos = require("kaos")

local SYSTEM = "00000000-0000-0000-0000-000000000000"

-- pcall(f, ...) -> "ok" or "<code> <message>" of the raised error table.
local function outcome(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return "ok" end
  if type(e) == "table" then return e.code .. " " .. e.message end
  return "lua error: " .. tostring(e)
end

local function keys_of(objects)
  local out = {}
  for i, o in ipairs(objects) do out[i] = o.key end
  return table.concat(out, ",")
end

-- After hook: the acks the client got, kept as a system object nobody but
-- the server reads ("audit"/<user id>), for storage_audit below.
kaos.register_req_after(function(context, response, request)
  kaos.storage_write(SYSTEM, "audit", context.user_id,
    { acks = response.acks, objects = #request.objects }, nil, 0, 0)
end, "storage_write")

-- storage_audit: what the after hook last recorded for the caller, or "".
kaos.register_rpc(function(context, payload)
  local o = kaos.storage_read(SYSTEM, "audit", context.user_id)
  return o and kaos.json_encode(o.value) or ""
end, "storage_audit")

-- storage_system_write {"collection", "key", "read", "write", "value"}: a
-- system object (the game's), as only server code can make.
kaos.register_rpc(function(context, payload)
  local a = kaos.json_decode(payload)
  return kaos.storage_write(nil, a.collection, a.key, a.value, nil, a.read, a.write)
end, "storage_system_write")

-- storage_api {"other": "<another user's id>", "tag": "<unique text>"}:
-- exercises every function for the caller, the other user and the system,
-- and reports what it saw.
kaos.register_rpc(function(context, payload)
  local args = kaos.json_decode(payload)
  local me, other = context.user_id, args.other
  local col = "lua-" .. args.tag
  local seen = {}

  -- single objects: write, read back, same value same version
  local v1 = kaos.storage_write(me, col, "a", { level = 3, name = "x", tags = { "p", "q" }, ok = true })
  seen.version_len = #v1
  local a = kaos.storage_read(me, col, "a")
  seen.read_value = a.value.level == 3 and a.value.name == "x" and a.value.tags[2] == "q"
    and a.value.ok == true
  seen.read_fields = a.collection == col and a.key == "a" and a.user_id == me and a.version == v1
    and a.permission_read == 1 and a.permission_write == 1 and a.create_time_ms > 0
    and a.update_time_ms >= a.create_time_ms
  seen.same_version = kaos.storage_write(me, col, "a", '{"ok": true, "tags": ["p", "q"], "name": "x", "level": 3}') == v1
  seen.missing = kaos.storage_read(me, col, "nope") == nil

  -- versions
  seen.wrong_version = outcome(kaos.storage_write, me, col, "a", { level = 4 }, "0123")
  seen.absent_only = outcome(kaos.storage_write, me, col, "a", { level = 4 }, "*")
  local v2 = kaos.storage_write(me, col, "a", { level = 4 }, v1)
  seen.conditional = v2 ~= v1 and kaos.storage_read(me, col, "a").value.level == 4
  seen.unknown_owner = outcome(kaos.storage_write, "8f4d52c7-bf28-4fcf-8af2-1d4fcf685592", col, "a", {})
  seen.not_object = outcome(kaos.storage_write, me, col, "a", { 1, 2, 3 })

  -- full rights: another user's private and read-only objects, the system's
  kaos.storage_write(other, col, "secret", { for_server = true }, nil, 0, 0)
  local s = kaos.storage_read(other, col, "secret")
  seen.other_secret = s ~= nil and s.value.for_server == true and s.permission_read == 0
  kaos.storage_write(other, col, "secret", { changed = true }, nil, 0, 0)
  seen.other_overwrite = kaos.storage_read(other, col, "secret").value.changed == true
  kaos.storage_write(nil, col, "sys", { game = "config" }, nil, 2, 0)
  seen.system_owner = kaos.storage_read(SYSTEM, col, "sys").user_id == SYSTEM
  seen.system_nil = kaos.storage_read(nil, col, "sys").value.game == "config"

  -- batches: acks in order, all or nothing
  local acks = kaos.storage_write_batch({
    { collection = col, key = "b2", user_id = me, value = { n = 2 } },
    { collection = col, key = "b1", user_id = me, value = '{"n": 1}', permission_read = 2 },
    { collection = col, key = "b3", user_id = other, value = {}, permission_write = 0 },
  })
  seen.batch_acks = #acks == 3 and acks[1].key == "b2" and acks[2].key == "b1"
    and acks[3].user_id == other and #acks[3].version == 32
  seen.batch_conflict = outcome(kaos.storage_write_batch, {
    { collection = col, key = "c1", user_id = me, value = {} },
    { collection = col, key = "b1", user_id = me, value = {}, version = "*" },
  })
  seen.batch_nothing = kaos.storage_read(me, col, "c1") == nil
  local got = kaos.storage_read_batch({
    { collection = col, key = "b3", user_id = other },
    { collection = col, key = "nope", user_id = me },
    { collection = col, key = "b1", user_id = me },
    { collection = col, key = "b2", user_id = me },
  })
  seen.read_batch = keys_of(got)
  seen.read_batch_perm = got[2].permission_read == 2 and got[1].permission_write == 0

  -- lists: pages of 2 over a, b1, b2 (mine), then every owner's
  local page1, c1 = kaos.storage_list(me, col, 2)
  local page2, c2 = kaos.storage_list(me, col, 2, c1)
  seen.pages = keys_of(page1) .. "|" .. keys_of(page2) .. "|" .. tostring(c2)
  local all, c3 = kaos.storage_list(nil, col, 100)
  seen.every_owner = #all .. " " .. tostring(c3)
  seen.bad_cursor = outcome(kaos.storage_list, other, col, 2, c1)

  -- deletes
  seen.delete_wrong_version = outcome(kaos.storage_delete, me, col, "a", v1)
  kaos.storage_delete(me, col, "a", v2)
  seen.deleted = kaos.storage_read(me, col, "a") == nil
  seen.delete_missing = outcome(kaos.storage_delete, me, col, "a")
  seen.delete_missing_version = outcome(kaos.storage_delete, me, col, "a", v2)
  kaos.storage_delete_batch({
    { collection = col, key = "b1", user_id = me },
    { collection = col, key = "b3", user_id = other },
    { collection = col, key = "sys" },
  })
  seen.after_batch_delete = keys_of(kaos.storage_list(nil, col, 100))
  return kaos.json_encode(seen)
end, "storage_api")

-- storage_fill {"collection", "count", "bytes"}: `count` public system
-- objects of about `bytes` bytes each (bigger than a client could send).
kaos.register_rpc(function(context, payload)
  local a = kaos.json_decode(payload)
  local batch = {}
  for i = 1, a.count do
    batch[i] = { collection = a.collection, key = string.format("big%03d", i),
                 value = { fill = string.rep("x", a.bytes) }, permission_read = 2 }
  end
  kaos.storage_write_batch(batch)
  return ""
end, "storage_fill")
