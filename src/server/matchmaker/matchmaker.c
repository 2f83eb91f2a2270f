/* matchmaker: the service (kn_matchmaker.h) and its in-process ticket store.
 *
 * Invariants: every store call happens under mm->lock, and a pass holds it
 * from the snapshot to the release, so a ticket is never removed while a
 * processor reads it; `matched` runs after the lock is dropped, on tickets
 * that already left the store (a session ending then finds nothing). */
#include "matchmaker_internal.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_map.h"
#include "kn_mem.h"
#include "kn_time.h"
#include "kn_uuid.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* --- the in-process store ------------------------------------------------------ */

typedef struct mem_store {
    kn_mm_ticket **v; /* arrival order */
    size_t n, cap;
    /* Tickets per owner (a party's ticket: the party; else the first
     * player's session), keyed by the hash of its id: two owners whose ids
     * share a 64-bit hash share a count. */
    kn_map per_session;
} mem_store;

static uint64_t owner_key(const kn_mm_ticket *t)
{
    return kn_map_key_str(*t->party_id ? t->party_id : t->players[0].session_id);
}

/* Adds delta to t's owner's count; KN_ERR_NOMEM only when growing. */
static int owner_count(mem_store *s, const kn_mm_ticket *t, int delta)
{
    uint64_t k = owner_key(t);
    uintptr_t n = (uintptr_t)kn_map_get(&s->per_session, k) + (uintptr_t)(intptr_t)delta;
    if (!n) {
        kn_map_del(&s->per_session, k);
        return KN_OK;
    }
    return kn_map_put(&s->per_session, k, (void *)n);
}

void kn_mm_ticket_free(kn_mm_ticket *t)
{
    if (!t) return;
    kn_free(t->players);
    kn_free(t->props);
    kn_free(t->query_text);
    kn_match_query_free(t->query);
    kn_free(t);
}

static int mem_add(void *ud, kn_mm_ticket *t, char *msg, size_t cap)
{
    mem_store *s = ud;
    if (s->n == s->cap) {
        size_t c = s->cap ? 2 * s->cap : 64;
        kn_mm_ticket **v = kn_realloc(s->v, c * sizeof *v);
        if (!v) {
            kn_mm_ticket_free(t);
            return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
        }
        s->v = v;
        s->cap = c;
    }
    if (owner_count(s, t, 1)) {
        kn_mm_ticket_free(t);
        return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    }
    s->v[s->n++] = t;
    return KN_OK;
}

/* A ticket belongs to each of its players' sessions and, for a party's,
 * to its party: kn_mm_remove_session with the party id removes them. */
static bool owned_by(const kn_mm_ticket *t, const char *session_id)
{
    if (*t->party_id && !strcmp(t->party_id, session_id)) return true;
    for (size_t i = 0; i < t->n_players; i++)
        if (!strcmp(t->players[i].session_id, session_id)) return true;
    return false;
}

/* Removes v[i], keeping arrival order. */
static void mem_drop(mem_store *s, size_t i)
{
    owner_count(s, s->v[i], -1); /* shrinking never allocates */
    kn_mm_ticket_free(s->v[i]);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

static int mem_remove(void *ud, const char *id, const char *session_id)
{
    mem_store *s = ud;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i]->id, id) && owned_by(s->v[i], session_id)) {
            mem_drop(s, i);
            return KN_OK;
        }
    return KN_ERR_NOT_FOUND;
}

static size_t mem_remove_session(void *ud, const char *session_id)
{
    mem_store *s = ud;
    size_t gone = 0;
    for (size_t i = s->n; i-- > 0;)
        if (owned_by(s->v[i], session_id)) mem_drop(s, i), gone++;
    return gone;
}

static size_t mem_count_session(void *ud, const char *session_id)
{
    mem_store *s = ud;
    return (size_t)(uintptr_t)kn_map_get(&s->per_session, kn_map_key_str(session_id));
}

static int mem_snapshot(void *ud, kn_mm_ticket ***out, size_t *n)
{
    mem_store *s = ud;
    *out = s->v;
    *n = s->n;
    return KN_OK;
}

/* Matched tickets go (one compaction), the rest waited one interval more. */
static void mem_release(void *ud, kn_mm_ticket *const *snap, size_t n, const size_t *matched,
                        size_t n_matched, kn_mm_ticket **taken)
{
    mem_store *s = ud;
    (void)snap;
    (void)n;
    for (size_t k = 0; k < n_matched; k++) {
        owner_count(s, s->v[matched[k]], -1);
        taken[k] = s->v[matched[k]];
        s->v[matched[k]] = NULL;
    }
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i]) {
            s->v[i]->intervals++;
            s->v[w++] = s->v[i];
        }
    s->n = w;
}

static size_t mem_count(void *ud)
{
    return ((mem_store *)ud)->n;
}

static void mem_destroy(void *ud)
{
    mem_store *s = ud;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        kn_mm_ticket_free(s->v[i]);
    kn_free(s->v);
    kn_map_deinit(&s->per_session);
    kn_free(s);
}

int kn_mm_store_memory(kn_mm_store *out)
{
    mem_store *s = kn_calloc(1, sizeof *s);
    if (!s) return KN_ERR_NOMEM;
    kn_map_init(&s->per_session);
    *out = (kn_mm_store){mem_add,           mem_remove,   mem_remove_session,
                         mem_count_session, mem_snapshot, mem_release,
                         mem_count,         mem_destroy,  s};
    return KN_OK;
}

/* --- the service ------------------------------------------------------------------ */

struct kn_matchmaker {
    kn_matchmaker_config cfg;
    pthread_mutex_t lock;
    kn_mm_processor processor; /* under lock */
    uint64_t seq;
    kn_matchmaker_stats stats;
    pthread_t thread;
    bool running;
    pthread_cond_t wake;
    bool stop;
    /* Sessions that ended while the lock was busy (a pass), so their
     * tickets go when the lock holder next looks (apply_ended): the
     * network thread that tells the end never waits for a pass. */
    pthread_mutex_t ended_lock;
    char (*ended)[37];
    size_t n_ended, cap_ended;
    /* The last passes (under lock): a ring, history[next_pass - 1] newest. */
    kn_mm_pass_record history[KN_MM_PASS_HISTORY];
    uint64_t next_pass;
};

static void *mm_main(void *arg);

/* The sessions that ended while the lock was busy (the caller's to free
 * with remove_ended); how many. */
static size_t take_ended(kn_matchmaker *mm, char (**out)[37])
{
    pthread_mutex_lock(&mm->ended_lock);
    size_t n = mm->n_ended;
    *out = mm->ended;
    mm->ended = NULL;
    mm->n_ended = mm->cap_ended = 0;
    pthread_mutex_unlock(&mm->ended_lock);
    return n;
}

/* A group holding a ticket of an ended session is dropped; its other
 * tickets stay in the pool. */
static void drop_ended_groups(const kn_mm_pass *pass, kn_mm_group *groups, size_t *n_groups,
                              char (*ended)[37], size_t n)
{
    for (size_t g = 0; n && g < *n_groups;) {
        bool dead = false;
        for (size_t k = 0; !dead && k < groups[g].n; k++)
            for (size_t e = 0; !dead && e < n; e++)
                dead = owned_by(pass->tickets[groups[g].tickets[k]], ended[e]);
        if (!dead) {
            g++;
            continue;
        }
        kn_free(groups[g].tickets);
        groups[g] = groups[--*n_groups];
    }
}

/* Under the lock: the ended sessions' tickets leave the store. */
static void remove_ended(kn_matchmaker *mm, char (*ended)[37], size_t n)
{
    for (size_t e = 0; e < n; e++)
        mm->cfg.store.remove_session(mm->cfg.store.ud, ended[e]);
    kn_free(ended);
}

/* Under the lock, outside a pass: apply what ended meanwhile. */
static void apply_ended(kn_matchmaker *mm)
{
    char(*ended)[37];
    size_t n = take_ended(mm, &ended);
    remove_ended(mm, ended, n);
}

int kn_matchmaker_create(const kn_matchmaker_config *cfg, kn_matchmaker **out)
{
    *out = NULL;
    kn_matchmaker *mm = kn_calloc(1, sizeof *mm);
    if (!mm) return KN_ERR_NOMEM;
    mm->cfg = *cfg;
    if (!mm->cfg.max_intervals) mm->cfg.max_intervals = 2;
    if (!mm->cfg.max_tickets) mm->cfg.max_tickets = 3;
    if (!mm->cfg.now_ms) mm->cfg.now_ms = kn_time_mono_ms;
    if (!mm->cfg.store.add && kn_mm_store_memory(&mm->cfg.store)) {
        kn_free(mm);
        return KN_ERR_NOMEM;
    }
    mm->processor = cfg->processor;
    pthread_mutex_init(&mm->lock, NULL);
    pthread_mutex_init(&mm->ended_lock, NULL);
    pthread_cond_init(&mm->wake, NULL);
    if (mm->cfg.interval_ms > 0) {
        if (pthread_create(&mm->thread, NULL, mm_main, mm)) {
            kn_matchmaker_destroy(mm);
            return KN_ERR_INTERNAL;
        }
        mm->running = true;
    }
    *out = mm;
    return KN_OK;
}

void kn_matchmaker_destroy(kn_matchmaker *mm)
{
    if (!mm) return;
    if (mm->running) {
        pthread_mutex_lock(&mm->lock);
        mm->stop = true;
        pthread_cond_signal(&mm->wake);
        pthread_mutex_unlock(&mm->lock);
        pthread_join(mm->thread, NULL);
    }
    if (mm->cfg.store.destroy) mm->cfg.store.destroy(mm->cfg.store.ud);
    pthread_cond_destroy(&mm->wake);
    pthread_mutex_destroy(&mm->lock);
    pthread_mutex_destroy(&mm->ended_lock);
    kn_free(mm->ended);
    kn_free(mm);
}

void kn_matchmaker_set_processor(kn_matchmaker *mm, const kn_mm_processor *p)
{
    pthread_mutex_lock(&mm->lock);
    mm->processor = p ? *p : (kn_mm_processor){0};
    pthread_mutex_unlock(&mm->lock);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > KN_MM_PROP_NAME_MAX) return false;
    for (; *s; s++)
        if (*s == ':' || *s == ' ' || (unsigned char)*s < 0x20) return false;
    return true;
}

/* Checks the widening rules against the parsed query q. */
static int widen_check(const kn_mm_request *req, kn_match_query *q, char *msg, size_t cap)
{
    if (req->n_widen > KN_MM_WIDEN_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "widen: at most %d rules",
                          KN_MM_WIDEN_MAX);
    for (size_t i = 0; i < req->n_widen; i++) {
        const kn_mm_widen *w = &req->widen[i];
        if (!valid_name(w->property))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "widen %zu: a property name is 1-%d bytes without ':' or spaces", i,
                              KN_MM_PROP_NAME_MAX);
        if (!isfinite(w->step) || w->step <= 0)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "widen \"%s\": step must be a finite number above 0", w->property);
        if (!isfinite(w->max) || w->max < w->step)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "widen \"%s\": max must be a finite number at least step",
                              w->property);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(req->widen[j].property, w->property))
                return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "widen \"%s\": given twice",
                                  w->property);
        if (!kn_match_query_widen(q, w->property, 0))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "widen \"%s\": the query has no + or optional comparison "
                              "(>=, >, <=, <) on it",
                              w->property);
    }
    return KN_OK;
}

double kn_mm_widened(const kn_mm_ticket *t, const kn_mm_widen *w)
{
    double by = w->step * (double)t->intervals;
    return by < w->max ? by : w->max;
}

/* Under the lock: each ticket's query widened for the intervals it has
 * waited (idempotent: from the bounds as parsed). */
static void widen_pool(kn_mm_ticket *const *tickets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < tickets[i]->n_widen; k++)
            kn_match_query_widen(tickets[i]->query, tickets[i]->widen[k].property,
                                 kn_mm_widened(tickets[i], &tickets[i]->widen[k]));
}

/* Checks a request and copies it into a new ticket (query parsed). */
static int ticket_make(const kn_mm_request *req, kn_mm_ticket **out, char *msg, size_t cap)
{
    *out = NULL;
    int cm = req->count_multiple ? req->count_multiple : 1;
    if (req->min_count < 2 || req->max_count < req->min_count || req->max_count > KN_MM_COUNT_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "counts: need 2 <= min_count <= max_count <= %d", KN_MM_COUNT_MAX);
    if (cm < 1 || cm > req->max_count || req->max_count / cm * cm < req->min_count)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "count_multiple %d leaves no size between min_count and max_count", cm);
    if (req->n_players < 1 || req->n_players > (size_t)req->max_count)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "a ticket holds 1 to max_count players");
    if (req->n_props > KN_MM_PROPS_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "more than %d properties",
                          KN_MM_PROPS_MAX);
    for (size_t i = 0; i < req->n_props; i++) {
        const kn_mm_prop *p = &req->props[i];
        if (!valid_name(p->name))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "property %zu: a name is 1-%d bytes without ':' or spaces", i,
                              KN_MM_PROP_NAME_MAX);
        if (p->is_num && !isfinite(p->num))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "property \"%s\" is not a finite number", p->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(req->props[j].name, p->name))
                return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "property \"%s\" given twice",
                                  p->name);
    }
    const char *qt = req->query && *req->query ? req->query : "*";
    kn_mm_ticket *t = kn_calloc(1, sizeof *t);
    if (!t) return KN_ERR_NOMEM;
    int rc = kn_match_query_parse(qt, &t->query, msg, cap);
    if (rc == KN_OK) rc = widen_check(req, t->query, msg, cap);
    if (rc) {
        kn_mm_ticket_free(t);
        return rc;
    }
    t->players = kn_malloc(req->n_players * sizeof *t->players);
    t->props = kn_malloc((req->n_props ? req->n_props : 1) * sizeof *t->props);
    t->query_text = kn_strndup(qt, strlen(qt));
    if (!t->players || !t->props || !t->query_text) {
        kn_mm_ticket_free(t);
        return KN_ERR_NOMEM;
    }
    memcpy(t->players, req->players, req->n_players * sizeof *t->players);
    t->n_players = req->n_players;
    if (req->n_props) memcpy(t->props, req->props, req->n_props * sizeof *t->props);
    t->n_props = req->n_props;
    if (req->n_widen) memcpy(t->widen, req->widen, req->n_widen * sizeof *t->widen);
    t->n_widen = req->n_widen;
    snprintf(t->party_id, sizeof t->party_id, "%s", req->party_id ? req->party_id : "");
    t->min_count = req->min_count;
    t->max_count = req->max_count;
    t->count_multiple = cm;
    kn_uuid_v4(t->id);
    *out = t;
    return KN_OK;
}

int kn_mm_add(kn_matchmaker *mm, const kn_mm_request *req, char ticket_id[37], char *msg,
              size_t cap)
{
    kn_mm_ticket *t;
    int rc = ticket_make(req, &t, msg, cap);
    if (rc || !t) return rc ? rc : KN_ERR_INTERNAL;
    snprintf(ticket_id, 37, "%s", t->id);
    pthread_mutex_lock(&mm->lock);
    apply_ended(mm);
    const kn_mm_store *s = &mm->cfg.store;
    bool party = *t->party_id;
    if (s->count_session(s->ud, party ? t->party_id : req->players[0].session_id) >=
        mm->cfg.max_tickets) {
        pthread_mutex_unlock(&mm->lock);
        kn_mm_ticket_free(t);
        return kn_err_msg(KN_ERR_RESOURCE_EXHAUSTED, msg, cap,
                          "matchmaker ticket limit per %s reached (%u)",
                          party ? "party" : "session", mm->cfg.max_tickets);
    }
    t->created_ms = mm->cfg.now_ms();
    t->seq = ++mm->seq;
    rc = s->add(s->ud, t, msg, cap);
    pthread_mutex_unlock(&mm->lock);
    return rc;
}

int kn_mm_remove(kn_matchmaker *mm, const char *ticket_id, const char *session_id, char *msg,
                 size_t cap)
{
    pthread_mutex_lock(&mm->lock);
    apply_ended(mm);
    int rc = mm->cfg.store.remove(mm->cfg.store.ud, ticket_id, session_id);
    pthread_mutex_unlock(&mm->lock);
    return rc ? kn_err_msg(rc, msg, cap, "ticket not found") : KN_OK;
}

/* Never waits for a pass: while one runs, the end is noted and the pass
 * (or the next call that takes the lock) applies it. */
size_t kn_mm_remove_session(kn_matchmaker *mm, const char *session_id)
{
    if (pthread_mutex_trylock(&mm->lock) == 0) {
        apply_ended(mm);
        size_t n = mm->cfg.store.remove_session(mm->cfg.store.ud, session_id);
        pthread_mutex_unlock(&mm->lock);
        return n;
    }
    pthread_mutex_lock(&mm->ended_lock);
    bool noted = false;
    if (mm->n_ended == mm->cap_ended) {
        size_t cap = mm->cap_ended ? 2 * mm->cap_ended : 16;
        char(*v)[37] = kn_realloc(mm->ended, cap * sizeof *v);
        if (v) mm->ended = v, mm->cap_ended = cap;
    }
    if (mm->n_ended < mm->cap_ended) {
        snprintf(mm->ended[mm->n_ended++], 37, "%s", session_id);
        noted = true;
    }
    pthread_mutex_unlock(&mm->ended_lock);
    if (noted) return 0;
    /* Out of memory for the note: wait for the lock after all. */
    pthread_mutex_lock(&mm->lock);
    size_t n = mm->cfg.store.remove_session(mm->cfg.store.ud, session_id);
    pthread_mutex_unlock(&mm->lock);
    return n;
}

/* Groups of the processor, checked: no ticket twice, each valid. */
static bool groups_sound(const kn_mm_pass *pass, const kn_mm_group *g, size_t n)
{
    bool *seen = kn_calloc(pass->n ? pass->n : 1, 1);
    bool ok = seen != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = kn_mm_group_valid(pass, &g[i]);
        for (size_t k = 0; ok && k < g[i].n; k++) {
            ok = !seen[g[i].tickets[k]];
            seen[g[i].tickets[k]] = true;
        }
    }
    kn_free(seen);
    return ok;
}

static bool has_script(kn_matchmaker *mm, const char *which)
{
    return mm->cfg.script &&
           (!mm->cfg.script_exists || mm->cfg.script_exists(mm->cfg.script_ud, which));
}

/* Calls script `which` with json (freed) and no lock held; *out is its
 * answer, NULL when it has none (not registered: quietly; failed: logged,
 * and *failed set). */
static void run_script(kn_matchmaker *mm, const char *which, char *json, char **out,
                       size_t *out_len, bool *failed)
{
    *out = NULL;
    *out_len = 0;
    char msg[256] = "";
    int rc = json ? mm->cfg.script(mm->cfg.script_ud, which, json, strlen(json), out, out_len, msg,
                                   sizeof msg)
                  : KN_ERR_NOMEM;
    kn_free(json);
    if (rc == KN_OK && !*out_len) rc = KN_ERR_NOT_FOUND; /* nil: no opinion this pass */
    if (rc && rc != KN_ERR_NOT_FOUND) {
        KN_WARN("matchmaker: %s failed (%s); the built-in matcher runs", which,
                *msg ? msg : kn_err_text(rc));
        *failed = true;
    }
    if (rc) {
        kn_free(*out);
        *out = NULL;
    }
}

/* A script's answer as groups of the current pass; false (logged) when it
 * names unknown tickets or forms invalid groups. */
static bool script_groups(const char *which, const char *answer, size_t len, const kn_mm_pass *pass,
                          kn_mm_group **groups, size_t *n_groups)
{
    char msg[256] = "";
    int rc =
        kn_mm__groups_parse(answer, len, pass->tickets, pass->n, groups, n_groups, msg, sizeof msg);
    if (rc == KN_OK && !groups_sound(pass, *groups, *n_groups)) {
        snprintf(msg, sizeof msg, "a group is invalid or a ticket is in two groups");
        rc = KN_ERR_INVALID_ARGUMENT;
    }
    if (rc == KN_OK) return true;
    KN_WARN("matchmaker: %s answered badly (%s); the built-in matcher runs", which, msg);
    kn_mm_groups_free(*groups, *n_groups);
    *groups = NULL;
    *n_groups = 0;
    return false;
}

/* Under the lock: the pass's groups from the C processor (checked, with
 * fallback) or the built-in matcher. */
static void c_groups(kn_matchmaker *mm, const kn_mm_pass *pass, kn_mm_group **groups,
                     size_t *n_groups)
{
    char msg[256] = "";
    int rc = KN_ERR_NOT_FOUND;
    if (mm->processor.process) {
        rc = mm->processor.process(mm->processor.ud, pass, groups, n_groups, msg, sizeof msg);
        if (rc == KN_OK && !groups_sound(pass, *groups, *n_groups)) {
            snprintf(msg, sizeof msg, "a group is invalid or a ticket is in two groups");
            rc = KN_ERR_INVALID_ARGUMENT;
        }
        if (rc) {
            KN_WARN("matchmaker: the custom processor failed (%s); the built-in matcher runs", msg);
            kn_mm_groups_free(*groups, *n_groups);
            *groups = NULL;
            *n_groups = 0;
            mm->stats.fallbacks++;
        }
    }
    if (rc) kn_mm_process_builtin(NULL, pass, groups, n_groups, msg, sizeof msg);
}

/* Under the lock: the current pool as a pass. */
static bool take_snapshot(kn_matchmaker *mm, kn_mm_pass *pass)
{
    kn_mm_ticket **snap = NULL;
    size_t n = 0;
    if (mm->cfg.store.snapshot(mm->cfg.store.ud, &snap, &n)) return false;
    widen_pool(snap, n);
    *pass = (kn_mm_pass){snap, n, mm->cfg.now_ms(), mm->cfg.max_intervals};
    return true;
}

/* Under the lock: the groups' tickets leave the store into *held (in group
 * order); returns how many groups formed. */
static size_t release(kn_matchmaker *mm, const kn_mm_pass *pass, const kn_mm_group *groups,
                      size_t n_groups, kn_mm_ticket ***held, size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < n_groups; i++)
        *total += groups[i].n;
    size_t *idx = kn_malloc((*total ? *total : 1) * sizeof *idx);
    *held = kn_malloc((*total ? *total : 1) * sizeof **held);
    size_t formed = n_groups;
    if (!idx || !*held) formed = *total = 0; /* nothing forms this pass */
    size_t k = 0;
    for (size_t i = 0; i < formed; i++)
        for (size_t j = 0; j < groups[i].n; j++)
            idx[k++] = groups[i].tickets[j];
    const kn_mm_store *s = &mm->cfg.store;
    s->release(s->ud, pass->tickets, pass->n, idx, *total, *held);
    kn_free(idx);
    mm->stats.passes++;
    mm->stats.matched += formed;
    mm->stats.tickets = s->count(s->ud);
    return formed;
}

/* One pass: (1) a processor script, given the pool, may form the groups;
 * else the C processor or the built-in matcher does, and (2) an override
 * script, given those candidate groups, may pick the ones to form. Scripts
 * run with the lock dropped, so their answers are read against a fresh
 * snapshot (a ticket removed meanwhile makes the answer invalid: the
 * built-in matcher runs on the fresh pool). (3) The groups leave the
 * store and (4) go to `matched`, lock dropped. */
void kn_mm_process(kn_matchmaker *mm)
{
    int64_t t0 = kn_time_mono_us(), at_ms = mm->cfg.now_ms();
    char *answer = NULL;
    size_t answer_len = 0;
    bool failed = false;
    const char *which = KN_MM_SCRIPT_PROCESSOR;
    kn_mm_pass pass;
    if (has_script(mm, which)) {
        pthread_mutex_lock(&mm->lock);
        char *json = take_snapshot(mm, &pass) ? kn_mm__pool_json(pass.tickets, pass.n) : NULL;
        pthread_mutex_unlock(&mm->lock);
        if (json) run_script(mm, which, json, &answer, &answer_len, &failed);
    }
    pthread_mutex_lock(&mm->lock);
    if (!take_snapshot(mm, &pass)) {
        pthread_mutex_unlock(&mm->lock);
        kn_free(answer);
        return;
    }
    kn_mm_group *groups = NULL;
    size_t n_groups = 0;
    bool scripted = answer && script_groups(which, answer, answer_len, &pass, &groups, &n_groups);
    failed |= answer && !scripted;
    kn_free(answer);
    answer = NULL;
    if (!scripted) c_groups(mm, &pass, &groups, &n_groups);
    if (!scripted && !failed && n_groups && has_script(mm, KN_MM_SCRIPT_OVERRIDE)) {
        which = KN_MM_SCRIPT_OVERRIDE;
        char *json = kn_mm__groups_json(pass.tickets, groups, n_groups);
        pthread_mutex_unlock(&mm->lock);
        run_script(mm, which, json, &answer, &answer_len, &failed);
        pthread_mutex_lock(&mm->lock);
        if (answer || failed) { /* the pool may have changed meanwhile */
            kn_mm_groups_free(groups, n_groups);
            groups = NULL;
            n_groups = 0;
            bool ok = take_snapshot(mm, &pass) && answer &&
                      script_groups(which, answer, answer_len, &pass, &groups, &n_groups);
            failed |= !ok;
            char m[64];
            if (!ok) kn_mm_process_builtin(NULL, &pass, &groups, &n_groups, m, sizeof m);
        }
        kn_free(answer);
    }
    if (failed) mm->stats.fallbacks++;
    char(*ended)[37];
    size_t n_ended = take_ended(mm, &ended);
    drop_ended_groups(&pass, groups, &n_groups, ended, n_ended);
    kn_mm_ticket **held = NULL;
    size_t total = 0;
    size_t formed = release(mm, &pass, groups, n_groups, &held, &total);
    remove_ended(mm, ended, n_ended); /* after release: it compacts the pool */
    mm->stats.last_pass_us = (uint64_t)(kn_time_mono_us() - t0);
    mm->stats.pass_us += mm->stats.last_pass_us;
    mm->history[mm->next_pass++ % KN_MM_PASS_HISTORY] =
        (kn_mm_pass_record){.at_ms = at_ms,
                            .us = (uint32_t)mm->stats.last_pass_us,
                            .tickets = (uint32_t)pass.n,
                            .groups = (uint32_t)formed,
                            .fallback = failed};
    if (mm->stats.last_pass_us > mm->stats.pass_us_max)
        mm->stats.pass_us_max = mm->stats.last_pass_us;
    pthread_mutex_unlock(&mm->lock);
    size_t k = 0;
    for (size_t i = 0; i < formed; i++) {
        if (mm->cfg.matched) mm->cfg.matched(mm->cfg.matched_ud, &held[k], groups[i].n);
        k += groups[i].n;
    }
    for (size_t i = 0; i < total; i++)
        kn_mm_ticket_free(held[i]);
    kn_free(held);
    kn_mm_groups_free(groups, n_groups);
}

void kn_matchmaker_stats_get(kn_matchmaker *mm, kn_matchmaker_stats *out)
{
    pthread_mutex_lock(&mm->lock);
    *out = mm->stats;
    out->tickets = mm->cfg.store.count(mm->cfg.store.ud);
    pthread_mutex_unlock(&mm->lock);
}

size_t kn_matchmaker_passes(kn_matchmaker *mm, kn_mm_pass_record *out, size_t max)
{
    pthread_mutex_lock(&mm->lock);
    size_t n = 0;
    int64_t now = mm->cfg.now_ms();
    for (uint64_t k = mm->next_pass; k > 0 && n < max && n < KN_MM_PASS_HISTORY; k--) {
        out[n] = mm->history[(k - 1) % KN_MM_PASS_HISTORY];
        out[n].ago_ms = now - out[n].at_ms;
        n++;
    }
    pthread_mutex_unlock(&mm->lock);
    return n;
}

char *kn_matchmaker_pool_json(kn_matchmaker *mm, size_t limit)
{
    pthread_mutex_lock(&mm->lock);
    apply_ended(mm);
    kn_mm_pass pass;
    char *json = NULL;
    if (take_snapshot(mm, &pass))
        json = kn_mm__pool_json(pass.tickets, pass.n < limit ? pass.n : limit);
    pthread_mutex_unlock(&mm->lock);
    return json;
}

static void *mm_main(void *arg)
{
    kn_matchmaker *mm = arg;
    pthread_mutex_lock(&mm->lock);
    while (!mm->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (mm->cfg.interval_ms % 1000) * 1000000;
        ts.tv_sec += mm->cfg.interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&mm->wake, &mm->lock, &ts);
        if (mm->stop) break;
        pthread_mutex_unlock(&mm->lock);
        kn_mm_process(mm);
        pthread_mutex_lock(&mm->lock);
    }
    pthread_mutex_unlock(&mm->lock);
    return NULL;
}
