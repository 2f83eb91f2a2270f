/* console_leaderboards: the boards this node knows, a board's records in
 * rank order (kn_leaderboard_records_list, as the wire lists them), and the
 * removal of one owner's record or of a whole board, as the server. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_tournament.h"

#include <stdio.h>

static int leaderboards_list(kn_console_call *c)
{
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    kn_leaderboard *b = NULL;
    size_t n = 0;
    int rc = kn_leaderboards_list(c->hooks->leaderboards, &b, &n, c->msg, sizeof c->msg);
    if (rc) return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_leaderboard_entity, &b[i]));
    kn_leaderboards_free(b, n);
    c->result = kn_console__list("leaderboards", arr, NULL);
    return KN_OK;
}

int kn_console__records(kn_console_call *c, bool tournament)
{
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    const char *id, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, "id", &id, &limit, &cur);
    if (rc) return rc;
    kn_leaderboard_query q = {.id = id, .limit = (int)limit, .cursor = cur};
    kn_leaderboard_page page = {0};
    if ((rc = (tournament ? kn_tournament_records_list : kn_leaderboard_records_list)(
             c->hooks->leaderboards, c->db, &q, &page, c->msg, sizeof c->msg)))
        return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < page.n_records; i++)
        kn_json_array_append_new(
            arr, kn_console__entity(&kn_leaderboard_record_entity, &page.records[i]));
    c->result = kn_console__list("records", arr, page.next_cursor);
    kn_leaderboard_page_free(&page);
    return KN_OK;
}

static int leaderboard_records(kn_console_call *c)
{
    return kn_console__records(c, false);
}

static int leaderboard_record_delete(kn_console_call *c)
{
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    const char *id, *owner;
    int rc;
    if ((rc = kn_console__need(c, "id", &id)) || (rc = kn_console__need(c, "owner_id", &owner)))
        return rc;
    snprintf(c->target, sizeof c->target, "leaderboard %.100s owner %.36s", id, owner);
    return kn_leaderboard_record_delete(c->hooks->leaderboards, c->db, id, owner, false, c->msg,
                                        sizeof c->msg);
}

static int leaderboard_delete(kn_console_call *c)
{
    if (!c->hooks->leaderboards) return KN_ERR_UNAVAILABLE;
    const char *id;
    int rc = kn_console__need(c, "id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "leaderboard %.100s", id);
    return kn_leaderboard_delete(c->hooks->leaderboards, c->db, id, c->msg, sizeof c->msg);
}

const kn_console_route kn_console__leaderboards_routes[] = {
    {"GET", "leaderboards", KN_CONSOLE_READ_ONLY, leaderboards_list},
    {"GET", "leaderboard/records", KN_CONSOLE_READ_ONLY, leaderboard_records},
    {"POST", "leaderboard/record/delete", KN_CONSOLE_MAINTAINER, leaderboard_record_delete},
    {"POST", "leaderboard/delete", KN_CONSOLE_DEVELOPER, leaderboard_delete},
    {0},
};
