/* console_matches: the live authoritative matches (the engine's registry,
 * as MatchList reads it), one match with its presences (the registry's
 * copy, kn_match_presences) and a signal to one (kn_match_signal, as
 * kaos.match_signal). */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_match.h"
#include "kn_mem.h"

#include <stdio.h>
#include <string.h>

static int matches_list(kn_console_call *c)
{
    if (!c->hooks->matches) return KN_ERR_UNAVAILABLE;
    int64_t limit;
    int rc = kn_console__int_arg(c, "limit", 100, 1, 100, &limit);
    if (rc) return rc;
    const char *q = kn_console__arg(c, "q");
    kn_match_list_query lq = {
        .limit = (uint32_t)limit, .query = q && *q ? q : NULL, .min_size = -1, .max_size = -1};
    kn_match_info *m = NULL;
    size_t n = 0;
    if ((rc = kn_match_list(c->hooks->matches, &lq, &m, &n, c->msg, sizeof c->msg))) return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_json_object();
        kn_console__set_text(o, "match_id", m[i].match_id);
        kn_console__set_text(o, "handler", m[i].handler);
        kn_console__set_json(o, "label", m[i].label);
        kn_json_object_set_new(o, "size", kn_json_integer(m[i].size));
        kn_json_object_set_new(o, "tick_rate", kn_json_integer(m[i].tick_rate));
        kn_json_array_append_new(arr, o);
    }
    kn_match_list_free(m, n);
    c->result = kn_console__list("matches", arr, NULL);
    return KN_OK;
}

static int match_get(kn_console_call *c)
{
    if (!c->hooks->matches) return KN_ERR_UNAVAILABLE;
    const char *id;
    int rc = kn_console__need(c, "match_id", &id);
    if (rc) return rc;
    kn_match_info m;
    kn_match_presence *ps = NULL;
    size_t n = 0;
    if ((rc = kn_match_get(c->hooks->matches, id, &m)) ||
        (rc = kn_match_presences(c->hooks->matches, id, &ps, &n))) {
        if (rc == KN_ERR_NOT_FOUND) snprintf(c->msg, sizeof c->msg, "match not found");
        kn_free(m.label);
        return rc;
    }
    c->result = kn_json_object();
    kn_console__set_text(c->result, "match_id", m.match_id);
    kn_console__set_text(c->result, "handler", m.handler);
    kn_console__set_json(c->result, "label", m.label);
    kn_json_object_set_new(c->result, "size", kn_json_integer(m.size));
    kn_json_object_set_new(c->result, "tick_rate", kn_json_integer(m.tick_rate));
    kn_free(m.label);
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, kn_console__entity(&kn_match_presence_entity, &ps[i]));
    kn_free(ps);
    kn_json_object_set_new(c->result, "presences", arr);
    return KN_OK;
}

static int matches_signal(kn_console_call *c)
{
    if (!c->hooks->matches) return KN_ERR_UNAVAILABLE;
    const char *id, *data = kn_console__arg(c, "data");
    int rc = kn_console__need(c, "match_id", &id);
    if (rc) return rc;
    snprintf(c->target, sizeof c->target, "match %.100s", id);
    char *resp = NULL;
    size_t len = 0;
    if ((rc = kn_match_signal(c->hooks->matches, id, data ? data : "", data ? strlen(data) : 0,
                              5000, &resp, &len, c->msg, sizeof c->msg)))
        return rc;
    c->result = kn_console__answer("response", resp, len);
    return KN_OK;
}

const kn_console_route kn_console__matches_routes[] = {
    {"GET", "matches", KN_CONSOLE_READ_ONLY, matches_list},
    {"GET", "match", KN_CONSOLE_READ_ONLY, match_get},
    {"POST", "matches/signal", KN_CONSOLE_MAINTAINER, matches_signal},
    {0},
};
