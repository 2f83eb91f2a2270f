-- A matchmaker override (docs/matchmaker.md): the built-in matcher proposes
-- candidate groups every pass; this one drops groups whose skill spread is
-- too wide for how long their players have waited — 200 at first, 100 more
-- per pass the oldest of them waited — so a fresh ticket gets a close game
-- and a patient one a game at all. Groups without a numeric skill pass
-- through. Returning nil keeps the built-in choice; an error falls back to it.
local kaos = require("kaos")

kaos.register_matchmaker_override(function(context, candidates)
  local keep, dropped = {}, false
  for _, group in ipairs(candidates) do
    local lo, hi, waited, ids = math.huge, -math.huge, 0, {}
    for _, t in ipairs(group) do
      local skill = t.properties.skill
      if type(skill) == "number" then
        lo, hi = math.min(lo, skill), math.max(hi, skill)
      end
      waited = math.max(waited, t.intervals)
      ids[#ids + 1] = t.ticket
    end
    if hi - lo <= 200 + 100 * waited or lo > hi then
      keep[#keep + 1] = ids
    else
      dropped = true
    end
  end
  if not dropped then return nil end
  return keep
end)
