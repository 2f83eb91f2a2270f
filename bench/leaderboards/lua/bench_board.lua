-- bench/leaderboards: the boards the submissions go to ("set": every write
-- changes the record and moves it in the rank index, the costly case).
local kaos = require("kaos")
kaos.leaderboard_create("bench", false, "desc", "set")
-- The same board as a tournament (no join needed, no limits): the cost of
-- the tournament's rules (window, membership and tries in the upsert).
kaos.tournament_create("bench_tn", false, "desc", "set", "", nil, "bench", "", 0)
