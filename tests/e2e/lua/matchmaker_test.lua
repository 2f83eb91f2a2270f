-- The matchmaker's matched hook for the end-to-end tests: a group whose
-- players carry mode=auth gets an authoritative test_match (its id goes to
-- every player), mode=boom makes the hook fail (the group falls back to a
-- relayed match), anything else returns nil (a relayed match by token).
local kaos = require("kaos")

kaos.register_matchmaker_matched(function(context, matched_users)
  local mode = matched_users[1].properties.mode
  for _, u in ipairs(matched_users) do
    assert(u.presence.user_id ~= "" and u.ticket ~= "", "a matched user lacks its presence or ticket")
  end
  if mode == "auth" then
    return kaos.match_create("test_match", { mode = "matched", players = #matched_users })
  elseif mode == "boom" then
    error("scripted matched hook failure")
  end
  return nil
end)
