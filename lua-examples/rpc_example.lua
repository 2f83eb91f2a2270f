-- RPC examples. A client calls them with kaos_client_rpc(client, "echo", "hi")
-- and gets the returned string in its on_rpc callback.
local kaos = require("kaos")

-- echo: the payload back, with who asked.
kaos.register_rpc(function(context, payload)
  kaos.logger_debug("echo from %s", context.user_id)
  return kaos.json_encode({ user_id = context.user_id, username = context.username, vars = context.vars,
    payload = payload })
end, "echo")

-- add: {"a": 1, "b": 2} -> {"sum": 3}. Bad input is refused with a code the
-- client sees (3 = INVALID_ARGUMENT) and a message.
kaos.register_rpc(function(context, payload)
  local ok, args = pcall(kaos.json_decode, payload)
  if not ok or type(args) ~= "table" or type(args.a) ~= "number" or type(args.b) ~= "number" then
    error({ code = 3, message = 'add expects {"a": number, "b": number}' })
  end
  return kaos.json_encode({ sum = args.a + args.b })
end, "add")
