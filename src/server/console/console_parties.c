/* console_parties: the parties page — every party on this node, newest
 * first (kn_parties_views), or the open, visible ones whose label passes a
 * query (kn_party_list, as PartyListRequest lists them), with their
 * members, and the service's counters (kn_parties_stats_get). Read only:
 * a party is its members'. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_party.h"

static kn_json *party_json(const kn_party_view *v)
{
    kn_json *o = kn_json_object();
    kn_console__set_text(o, "party_id", v->party_id);
    kn_json_object_set_new(o, "open", kn_json_boolean(v->open));
    kn_json_object_set_new(o, "hidden", kn_json_boolean(v->hidden));
    kn_json_object_set_new(o, "max_size", kn_json_integer(v->max_size));
    kn_json_object_set_new(o, "size", kn_json_integer((int64_t)v->n_members));
    kn_console__set_json(o, "label", v->label);
    kn_json_object_set_new(o, "leader", kn_console__entity(&kn_presence_entity, &v->leader));
    kn_json *members = kn_json_array();
    for (size_t i = 0; i < v->n_members; i++)
        kn_json_array_append_new(members, kn_console__entity(&kn_presence_entity, &v->members[i]));
    kn_json_object_set_new(o, "presences", members);
    return o;
}

static int parties_list(kn_console_call *c)
{
    kn_parties *ps = c->hooks->parties;
    if (!ps) return KN_ERR_UNAVAILABLE;
    int64_t limit;
    int rc = kn_console__int_arg(c, "limit", 50, 1, KN_PARTY_LIST_MAX, &limit);
    if (rc) return rc;
    const char *q = kn_console__arg(c, "q");
    kn_party_view *v = NULL;
    size_t n = 0;
    rc = q && *q ? kn_party_list(ps, q, (uint32_t)limit, &v, &n, c->msg, sizeof c->msg)
                 : kn_parties_views(ps, (uint32_t)limit, &v, &n, c->msg, sizeof c->msg);
    if (rc) return rc;
    kn_json *arr = kn_json_array();
    for (size_t i = 0; i < n; i++)
        kn_json_array_append_new(arr, party_json(&v[i]));
    kn_party_views_free(v, n);
    kn_parties_stats st;
    kn_parties_stats_get(ps, &st);
    c->result = kn_console__list("parties", arr, NULL);
    kn_json *stats = kn_json_object();
    kn_json_object_set_new(stats, "parties", kn_json_integer((int64_t)st.parties));
    kn_json_object_set_new(stats, "listable", kn_json_integer((int64_t)st.listable));
    kn_json_object_set_new(stats, "connections", kn_json_integer((int64_t)st.connections));
    kn_json_object_set_new(c->result, "stats", stats);
    return KN_OK;
}

const kn_console_route kn_console__parties_routes[] = {
    {"GET", "parties", KN_CONSOLE_READ_ONLY, parties_list},
    {0},
};
