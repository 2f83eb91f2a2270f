/* script_json: what the matchmaker's scripts see and return
 * (matchmaker_internal.h, kn_mm_matched_json). Ticket objects carry the
 * player's presence, the party id, the ticket id and the properties; the
 * pool's also the query, the counts and how many passes it waited. */
#include "matchmaker_internal.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_map.h"
#include "kn_mem.h"

#include <stdio.h>
#include <string.h>

static int set_new(kn_json *o, const char *key, kn_json *v)
{
    if (!v) return KN_ERR_NOMEM;
    return kn_json_object_set_new(o, key, v);
}

static kn_json *presence_json(const kn_mm_player *pl)
{
    kn_json *p = kn_json_object();
    if (p && (set_new(p, "user_id", kn_json_string(pl->user_id)) ||
              set_new(p, "session_id", kn_json_string(pl->session_id)) ||
              set_new(p, "username", kn_json_string(pl->username)))) {
        kn_json_decref(p);
        return NULL;
    }
    return p;
}

/* The ticket's widening rules, each with how far it has widened now. */
static kn_json *widen_json(const kn_mm_ticket *t)
{
    kn_json *a = kn_json_array();
    for (size_t i = 0; a && i < t->n_widen; i++) {
        const kn_mm_widen *w = &t->widen[i];
        kn_json *o = kn_json_object();
        if (!o || set_new(o, "property", kn_json_string(w->property)) ||
            set_new(o, "step", kn_json_real(w->step)) || set_new(o, "max", kn_json_real(w->max)) ||
            set_new(o, "by", kn_json_real(kn_mm_widened(t, w)))) {
            kn_json_decref(o);
            o = NULL;
        }
        if (kn_json_array_append_new(a, o)) { /* takes o, NULL included */
            kn_json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* One ticket as seen through player `who`; full adds the pool fields. */
static kn_json *ticket_json(const kn_mm_ticket *t, size_t who, bool full)
{
    kn_json *o = kn_json_object(), *props = kn_json_object();
    int rc = o && props ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < t->n_props; i++) {
        const kn_mm_prop *p = &t->props[i];
        rc = set_new(props, p->name, p->is_num ? kn_json_real(p->num) : kn_json_string(p->str));
    }
    if (!rc) rc = set_new(o, "ticket", kn_json_string(t->id));
    if (!rc) rc = set_new(o, "party_id", kn_json_string(t->party_id));
    if (!rc) rc = set_new(o, "presence", presence_json(&t->players[who]));
    if (!rc) rc = set_new(o, "properties", props), props = NULL;
    if (!rc && full) {
        kn_json *players = kn_json_array();
        rc = players ? KN_OK : KN_ERR_NOMEM;
        for (size_t i = 0; !rc && i < t->n_players; i++) {
            kn_json *p = presence_json(&t->players[i]);
            rc = p ? kn_json_array_append_new(players, p) : KN_ERR_NOMEM;
        }
        if (!rc)
            rc = set_new(o, "players", players);
        else
            kn_json_decref(players);
        if (!rc) rc = set_new(o, "query", kn_json_string(t->query_text));
        if (!rc) rc = set_new(o, "min_count", kn_json_integer(t->min_count));
        if (!rc) rc = set_new(o, "max_count", kn_json_integer(t->max_count));
        if (!rc) rc = set_new(o, "count_multiple", kn_json_integer(t->count_multiple));
        if (!rc) rc = set_new(o, "intervals", kn_json_integer(t->intervals));
        if (!rc) rc = set_new(o, "widen", widen_json(t));
    }
    kn_json_decref(props);
    if (rc) {
        kn_json_decref(o);
        return NULL;
    }
    return o;
}

/* The text of v (kn_malloc'd), v released. */
static char *dump(kn_json *v)
{
    char *txt = v ? kn_json_dump(v, KN_JSON_COMPACT) : NULL;
    kn_json_decref(v);
    char *out = txt ? kn_strndup(txt, strlen(txt)) : NULL;
    kn_json_free_text(txt);
    return out;
}

char *kn_mm_matched_json(kn_mm_ticket *const *tickets, size_t n)
{
    kn_json *arr = kn_json_array();
    int rc = arr ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t j = 0; !rc && j < tickets[i]->n_players; j++) {
            kn_json *u = ticket_json(tickets[i], j, false);
            rc = u ? kn_json_array_append_new(arr, u) : KN_ERR_NOMEM;
        }
    if (rc) kn_json_decref(arr), arr = NULL;
    return dump(arr);
}

char *kn_mm__pool_json(kn_mm_ticket *const *tickets, size_t n)
{
    kn_json *arr = kn_json_array();
    int rc = arr ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        kn_json *t = ticket_json(tickets[i], 0, true);
        rc = t ? kn_json_array_append_new(arr, t) : KN_ERR_NOMEM;
    }
    if (rc) kn_json_decref(arr), arr = NULL;
    return dump(arr);
}

char *kn_mm__groups_json(kn_mm_ticket *const *tickets, const kn_mm_group *g, size_t n)
{
    kn_json *arr = kn_json_array();
    int rc = arr ? KN_OK : KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        kn_json *grp = kn_json_array();
        rc = grp ? KN_OK : KN_ERR_NOMEM;
        for (size_t k = 0; !rc && k < g[i].n; k++) {
            kn_json *t = ticket_json(tickets[g[i].tickets[k]], 0, true);
            rc = t ? kn_json_array_append_new(grp, t) : KN_ERR_NOMEM;
        }
        if (!rc)
            rc = kn_json_array_append_new(arr, grp);
        else
            kn_json_decref(grp);
    }
    if (rc) kn_json_decref(arr), arr = NULL;
    return dump(arr);
}

int kn_mm__groups_parse(const char *json, size_t len, kn_mm_ticket *const *tickets, size_t n,
                        kn_mm_group **out, size_t *n_out, char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    kn_json *root = kn_json_parse(json, len, 0, NULL);
    /* An empty Lua table encodes as {}: no groups. */
    if (root && kn_json_is_object(root) && !kn_json_object_iter(root)) {
        kn_json_decref(root);
        root = kn_json_array();
        if (!root) return KN_ERR_NOMEM;
    }
    if (!root || !kn_json_is_array(root)) {
        kn_json_decref(root);
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "a matchmaker script returns groups: [[ticket id, ...], ...]");
    }
    kn_map ids; /* hashed ticket id -> index + 1 */
    kn_map_init(&ids);
    int rc = KN_OK;
    for (size_t i = 0; !rc && i < n; i++)
        rc = kn_map_put(&ids, kn_map_key_str(tickets[i]->id), (void *)(uintptr_t)(i + 1));
    size_t ng = kn_json_array_size(root);
    kn_mm_group *g = rc ? NULL : kn_calloc(ng ? ng : 1, sizeof *g);
    if (!rc && !g) rc = KN_ERR_NOMEM;
    for (size_t i = 0; !rc && i < ng; i++) {
        kn_json *grp = kn_json_array_get(root, i);
        size_t m = kn_json_is_array(grp) ? kn_json_array_size(grp) : 0;
        if (!m || m > KN_MM_COUNT_MAX) {
            rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                            "group %zu is not a list of 1-%d ticket ids", i + 1, KN_MM_COUNT_MAX);
            break;
        }
        g[i].tickets = kn_calloc(m, sizeof *g[i].tickets);
        if (!g[i].tickets) {
            rc = KN_ERR_NOMEM;
            break;
        }
        g[i].n = m;
        for (size_t k = 0; !rc && k < m; k++) {
            kn_json *id = kn_json_array_get(grp, k);
            const char *s = kn_json_is_string(id) ? kn_json_string_value(id) : "";
            uintptr_t at = (uintptr_t)kn_map_get(&ids, kn_map_key_str(s));
            if (!at || strcmp(tickets[at - 1]->id, s))
                rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                                "group %zu names no waiting ticket (\"%.40s\")", i + 1, s);
            else
                g[i].tickets[k] = at - 1;
        }
    }
    kn_map_deinit(&ids);
    kn_json_decref(root);
    if (rc) {
        kn_mm_groups_free(g, ng);
        return rc;
    }
    *out = g;
    *n_out = ng;
    return KN_OK;
}
