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
 * (TournamentsList.cursor). The input is split on NUL
 * bytes into query, label, cursor and collection. Properties: nothing crashes or leaks; every
 * refusal is INVALID_ARGUMENT with a message. */
#include "kn_chat.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_groups.h"
#include "kn_leaderboard.h"
#include "kn_notify.h"
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
        kn_match_query_free(q);
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
