-- bench/leaderboards: the board the submissions go to ("set": every write
-- changes the record and moves it in the rank index, the costly case).
local kaos = require("kaos")
kaos.leaderboard_create("bench", false, "desc", "set")
