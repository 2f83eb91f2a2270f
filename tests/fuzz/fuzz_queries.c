/* libFuzzer target: text from clients that the server parses besides the
 * envelope — match listing label queries (MatchListRequest.query, evaluated
 * against a label that also comes from the input) and the same parser's
 * matchmaker queries (MatchmakerAdd.query, evaluated against properties
 * taken from the label text, and the bounds its index reads), storage list cursors
 * (StorageList.cursor), friends list cursors (FriendsList.cursor), friends
 * of friends cursors (FriendsOfFriendsList.cursor),
 * notifications cacheable cursors (NotificationsList.cacheable_cursor),
 * the groups cursors (GroupsList, GroupUsersList, UserGroupsList .cursor;
 * the listing and its state picked from the input's length, the groups
 * filter's name prefix from the collection), wallet ledger cursors
 * (kaos.wallet_ledger_list; the owner picked from the input's length) and
 * chat history cursors (ChannelMessagesList.cursor), leaderboard record
 * list cursors (LeaderboardRecordsList.cursor) and tournament list cursors
 * (TournamentsList.cursor); the query widened on the field named by the
 * collection part (MatchmakerWiden), and a party whose label is the label
 * part listed by the query (PartyCreate.label in the listing's label
 * index). The input is split on NUL bytes into query, label, cursor and
 * collection. Properties: nothing crashes or leaks; every refusal is
 * INVALID_ARGUMENT with a message; widening by 0 restores the query; a
 * listed party is one whose label passes the query. */
#include "kn_chat.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_groups.h"
#include "kn_leaderboard.h"
#include "kn_mem.h"
#include "kn_notify.h"
#include "kn_party.h"
#include "kn_storage.h"
#include "kn_tournament.h"
#include "match_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Properties from text: a name present in it is a string property (the
 * text) when its length is even, else a number (the length). */
static bool props_lookup(void *ud, const char *name, kn_match_query_value *out)
{
    const char *text = ud;
    if (!strstr(text, name)) return false;
    size_t n = strlen(name);
    *out = (kn_match_query_value){.str = n % 2 ? NULL : text, .num = (double)n, .is_num = n % 2};
    return true;
}

static int no_send(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                   const uint8_t *data, size_t len, bool reliable)
{
    (void)ud, (void)conns, (void)n, (void)channel, (void)data, (void)len, (void)reliable;
    return KN_OK;
}

/* A party labelled `label` (when it is a valid label), listed by query:
 * each listed party's label passes the query. */
static void list_party(const char *query, const char *label)
{
    static kn_tracker *t;
    static kn_parties *ps;
    if (!ps) {
        kn_tracker_config cfg;
        kn_tracker_config_default(&cfg);
        kn_tracker_sink sink = {no_send, NULL};
        if (kn_tracker_create(&cfg, &sink, &t) || kn_parties_create(t, NULL, &ps)) abort();
    }
    kn_presence who = kn_presence_of(1, "fuzz-user", "fuzz-session", "fuzz");
    kn_party_config cfg = {.open = true, .max_size = 2, .label = label};
    kn_party_view v;
    char msg[256];
    if (kn_party_create(ps, &who, &cfg, &v, msg, sizeof msg)) return;
    kn_free(v.members);
    kn_party_view *l = NULL;
    size_t n = 0;
    if (kn_party_list(ps, query, 0, &l, &n, msg, sizeof msg) == KN_OK) {
        kn_match_query *q = NULL;
        if (n > 1 || kn_match_query_parse(*query ? query : "*", &q, msg, sizeof msg)) abort();
        int score;
        for (size_t i = 0; i < n; i++)
            if (!kn_match_query_eval(q, *l[i].label ? l[i].label : NULL, &score)) abort();
        kn_match_query_free(q);
        kn_party_views_free(l, n);
    }
    if (kn_party_close(ps, &who, v.party_id, msg, sizeof msg)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    const char *part[4] = {"", "", "", ""};
    size_t k = 0;
    for (size_t i = 0; i <= n && k < 4;) {
        part[k++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    char msg[256] = "";
    kn_match_query *q = NULL;
    int rc = kn_match_query_parse(part[0], &q, msg, sizeof msg);
    if (rc) {
        if (rc != KN_ERR_INVALID_ARGUMENT || !*msg) abort();
    } else {
        int score = 0;
        kn_match_query_eval(q, *part[1] ? part[1] : NULL, &score);
        if (score < 0) abort();
        if (kn_match_query_eval_with(q, props_lookup, (void *)part[1], &score) && score < 0)
            abort();
        kn_match_query_bounds b;
        if (kn_match_query_bounds_of(q, &b) && !b.eq_name && !b.range_name) abort();
        int before = 0, after = 0;
        bool ok = kn_match_query_eval_with(q, props_lookup, (void *)part[1], &before);
        if (kn_match_query_widen(q, part[3], (double)(n % 97) - 40)) {
            kn_match_query_eval_with(q, props_lookup, (void *)part[1], &after);
            kn_match_query_widen(q, part[3], 0);
            if (kn_match_query_eval_with(q, props_lookup, (void *)part[1], &after) != ok ||
                after != before)
                abort();
        }
        kn_match_query_free(q);
        list_party(part[0], part[1]);
    }
    msg[0] = '\0';
    static const char *const owners[] = {"", "2f3c9a1e-0b7d-4c5e-9a8b-1c2d3e4f5a6b"};
    rc = kn_storage_cursor_check(owners[n & 1], *part[3] ? part[3] : "saves", part[2], msg,
                                 sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_friends_cursor_check(part[2], (int)(n % 5) - 1, msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_notify_cursor_check(part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_friends_of_friends_cursor_check(part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    kn_groups_filter f = {part[3], NULL, -1, 0, 0};
    rc = kn_groups_cursor_check("gmu"[(n / 6) % 3], &f, (int)(n % 6) - 1, part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    static const char *const ledger_owners[] = {"2f3c9a1e-0b7d-4c5e-9a8b-1c2d3e4f5a6b",
                                                "00000000-0000-4000-8000-000000000001"};
    rc = kn_wallet_ledger_cursor_check(ledger_owners[n & 1], part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_chat_cursor_check(part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_leaderboard_cursor_check(part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    msg[0] = '\0';
    rc = kn_tournament_cursor_check(part[2], msg, sizeof msg);
    if (rc && (rc != KN_ERR_INVALID_ARGUMENT || !*msg)) abort();
    return 0;
}
