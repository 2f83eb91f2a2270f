-- Before and after hooks. Every client operation can have one of each,
-- registered under its name in docs/lua-api.md ("authenticate_device", "rpc",
-- "match_create", ...). A before hook gets the request as a table and returns
-- it (changed or not) to let it through, nil to refuse it, or raises an error
-- whose code and message the client gets. An after hook gets the response and
-- the request once the client has its answer; what it returns is ignored.
local kaos = require("kaos")

-- Refuse: custom ids from a blocked range never reach the accounts service.
kaos.register_req_before(function(context, request)
  if string.sub(request.id, 1, 8) == "blocked-" then
    error({ code = 7, message = "this custom id is blocked" }) -- 7 = PERMISSION_DENIED
  end
  return request
end, "authenticate_custom")

-- Rewrite: usernames chosen at sign-up are stored in lower case.
kaos.register_req_before(function(context, request)
  request.username = string.lower(request.username)
  return request
end, "authenticate_device")

-- Rewrite a realtime-control request: relayed matches made by clients hold at
-- most 4 players on this server, whatever size the client asked for.
kaos.register_req_before(function(context, request)
  if request.max_size == 0 or request.max_size > 4 then
    request.max_size = 4
  end
  return request
end, "match_create")

-- React: log every new match (the response carries its id and size).
kaos.register_req_after(function(context, response, request)
  kaos.logger_info("match %s created by %s for %d players", response.match_id, context.user_id,
    response.max_size)
end, "match_create")

-- React through the account API: a new account remembers the device it was
-- made on. The hook runs on an API worker once the client has its session;
-- kaos.account_update_id calls the same account service as the wire, with
-- that worker's database connection.
kaos.register_req_after(function(context, response, request)
  if response.created then
    kaos.account_update_id(response.user_id, { metadata = { first_device = request.device_id } })
  end
end, "authenticate_device")
