-- bench/api runtime module: the Lua RPCs bench/api/run.sh measures. run.sh
-- copies this file into a runtime directory of its own (--runtime-path), so
-- the server loads nothing else.
local kaos = require("kaos")

-- bench_echo: the least a Lua RPC can do, the payload back.
kaos.register_rpc(function(context, payload)
  return payload
end, "bench_echo")

-- bench_json: what a small real RPC does: decode the request, add to it,
-- encode the answer.
kaos.register_rpc(function(context, payload)
  local req = kaos.json_decode(payload)
  req.user_id = context.user_id
  req.score = req.score + 1
  return kaos.json_encode(req)
end, "bench_json")
