-- bench/social runtime module: the RPC bench/social/run.sh drives. run.sh
-- copies this file into a runtime directory of its own (--runtime-path), so
-- the server loads nothing else.
local kaos = require("kaos")

-- bench_notify: payload "<user id> <send time> <n> <p|l>". Sends n (1-100)
-- notifications to that user from the caller, persistent (p) or live only
-- (l), through kaos.notification_send (n = 1) or kaos.notifications_send
-- (one call, one transaction, one envelope). Each one's content carries the
-- send time, so the receiver can time it, and its index in the batch.
kaos.register_rpc(function(context, payload)
  local to, t, n, mode = string.match(payload, "^(%S+) (%d+) (%d+) ([pl])$")
  if not to then
    error({ code = 3, message = "payload: <user id> <send time> <n> <p|l>" })
  end
  t, n = math.tointeger(tonumber(t)), math.tointeger(tonumber(n))
  local persistent = mode == "p"
  if n == 1 then
    kaos.notification_send(to, "bench", { t = t, i = 0 }, 1, context.user_id, persistent)
    return ""
  end
  local notes = {}
  for i = 1, n do
    notes[i] = {
      user_id = to,
      subject = "bench",
      content = { t = t, i = i - 1 },
      code = 1,
      sender_id = context.user_id,
      persistent = persistent,
    }
  end
  kaos.notifications_send(notes)
  return ""
end, "bench_notify")
