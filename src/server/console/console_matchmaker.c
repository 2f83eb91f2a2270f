/* console_matchmaker: the matchmaker's page — its counters
 * (kn_matchmaker_stats), its last passes (kn_matchmaker_passes) and the
 * tickets waiting, oldest first, as a processor script sees them
 * (kn_matchmaker_pool_json). Read only: a ticket is its session's. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_matchmaker.h"
#include "kn_mem.h"

#include <string.h>

static int matchmaker_get(kn_console_call *c)
{
    kn_matchmaker *mm = c->hooks->matchmaker;
    if (!mm) return KN_ERR_UNAVAILABLE;
    int64_t limit;
    int rc = kn_console__int_arg(c, "limit", 50, 1, 100, &limit);
    if (rc) return rc;
    char *pool = kn_matchmaker_pool_json(mm, (size_t)limit);
    kn_json *tickets = pool ? kn_json_parse(pool, strlen(pool), 0, NULL) : NULL;
    kn_free(pool);
    if (!tickets) return KN_ERR_NOMEM;
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    kn_json *stats = kn_json_object();
    kn_json_object_set_new(stats, "tickets", kn_json_integer((int64_t)st.tickets));
    kn_json_object_set_new(stats, "passes", kn_json_integer((int64_t)st.passes));
    kn_json_object_set_new(stats, "matched", kn_json_integer((int64_t)st.matched));
    kn_json_object_set_new(stats, "fallbacks", kn_json_integer((int64_t)st.fallbacks));
    kn_json_object_set_new(stats, "last_pass_us", kn_json_integer((int64_t)st.last_pass_us));
    kn_json_object_set_new(stats, "pass_us_max", kn_json_integer((int64_t)st.pass_us_max));
    kn_json_object_set_new(stats, "pass_us_mean",
                           kn_json_integer(st.passes ? (int64_t)(st.pass_us / st.passes) : 0));
    kn_mm_pass_record recs[KN_MM_PASS_HISTORY];
    size_t n = kn_matchmaker_passes(mm, recs, KN_MM_PASS_HISTORY);
    kn_json *passes = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_json_object();
        kn_json_object_set_new(o, "ago_ms", kn_json_integer(recs[i].ago_ms));
        kn_json_object_set_new(o, "us", kn_json_integer(recs[i].us));
        kn_json_object_set_new(o, "tickets", kn_json_integer(recs[i].tickets));
        kn_json_object_set_new(o, "groups", kn_json_integer(recs[i].groups));
        kn_json_object_set_new(o, "fallback", kn_json_boolean(recs[i].fallback));
        kn_json_array_append_new(passes, o);
    }
    c->result = kn_json_object();
    kn_json_object_set_new(c->result, "stats", stats);
    kn_json_object_set_new(c->result, "passes", passes);
    kn_json_object_set_new(c->result, "tickets", tickets);
    return KN_OK;
}

const kn_console_route kn_console__matchmaker_routes[] = {
    {"GET", "matchmaker", KN_CONSOLE_READ_ONLY, matchmaker_get},
    {0},
};
