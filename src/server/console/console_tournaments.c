/* console_tournaments: the tournaments (kn_tournament_list, every
 * category, by category and start time) and a tournament's records in rank
 * order (kn_tournament_records_list), as the wire lists them. Deleting a
 * tournament's board or a record goes through the leaderboards' routes. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_tournament.h"

static int tournaments_list(kn_console_call *c)
{
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    const char *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, NULL, NULL, &limit, &cur);
    if (rc) return rc;
    kn_tournament_query q = {
        .category_end = KN_TOURNAMENT_CATEGORY_MAX, .limit = (int)limit, .cursor = cur};
    kn_tournament *t = NULL;
    size_t n = 0;
    char *next = NULL;
    if ((rc = kn_tournament_list(c->hooks->leaderboards, c->db, &q, &t, &n, &next, c->msg,
                                 sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_tournament_entity, &t[i]));
    c->result = kn_console__list("tournaments", arr, next);
    kn_tournaments_free(t, n);
    kn_free(next);
    return KN_OK;
}

static int tournament_records(kn_console_call *c)
{
    return kn_console__records(c, true);
}

const kn_console_route kn_console__tournaments_routes[] = {
    {"GET", "tournaments", KN_CONSOLE_READ_ONLY, tournaments_list},
    {"GET", "tournament/records", KN_CONSOLE_READ_ONLY, tournament_records},
    {0},
};
