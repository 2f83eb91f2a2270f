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
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_leaderboard_query q = {.id = id, .limit = (int)limit, .cursor = cur};
    kn_leaderboard_page page = {0};
    if ((rc = kn_tournament_records_list(c->hooks->leaderboards, c->db, &q, &page, c->msg,
                                         sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < page.n_records; i++)
        kn_json_array_append_new(
            arr, kn_console__entity(&kn_leaderboard_record_entity, &page.records[i]));
    c->result = kn_console__list("records", arr, page.next_cursor);
    kn_leaderboard_page_free(&page);
    return KN_OK;
}

const kn_console_route kn_console__tournaments_routes[] = {
    {"GET", "tournaments", KN_CONSOLE_READ_ONLY, tournaments_list},
    {"GET", "tournament/records", KN_CONSOLE_READ_ONLY, tournament_records},
    {0},
};
