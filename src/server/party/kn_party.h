/* kn_party: the party service — small groups of players who stay together
 * between matches (docs/parties.md has the rules, the limits and every
 * error).
 *
 * Built on the tracker (kn_stream.h), as in Nakama: a party is a stream of
 * mode KN_STREAM_PARTY, subject the party id (a UUID). Every member's
 * session is a visible presence there, so joins and leaves reach the other
 * members as presence events through the tracker, and party data is one
 * kn_tracker_send. What the tracker does not know lives here: the leader,
 * open or closed, the label, hidden, the members in the order they joined
 * (a leaving leader hands over to the longest-present member) and the
 * pending join requests of a closed party.
 *
 * Members are named by session (user id and session id), as in Nakama's
 * UserPresence. A party lives in memory only; it ends when its last member
 * leaves, its leader closes it, or its last member's session ends
 * (kn_parties_leave_conn, from the session unbind listener).
 *
 * Notes: what the tracker's presence events do not say (a join request to
 * the leader, a new leader, a close, a removal) goes out through
 * kn_party_hooks.notify, called under the service's lock: it must not call
 * back into the service (kn_out_send and the tracker's send are fine).
 *
 * Limits: max_size KN_PARTY_SIZE_MIN..KN_PARTY_SIZE_MAX members (the leader
 * included; the stream's limit), label at most KN_STREAM_LABEL_MAX bytes of
 * UTF-8, KN_PARTY_REQUESTS_MAX pending join requests per party, a session
 * in at most KN_PARTY_PER_SESSION parties (the tracker's per-mode limit:
 * RESOURCE_EXHAUSTED "party limit per session reached (N)").
 *
 * Indexes: a session's end visits only that connection's parties, and a
 * listing only the open, visible parties — only those whose label has the
 * query's first `+field:value` term when it has one (party.c).
 *
 * Threads: any thread; one lock guards the parties, taken before the
 * tracker's.
 *
 * Ownership: arguments are borrowed; a kn_party_view's members and the
 * requests of kn_party_requests are the caller's to kn_free.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg:
 * NOT_FOUND "party not found" (also for a caller who is not a member),
 * PERMISSION_DENIED "only the party leader may <verb>", RESOURCE_EXHAUSTED
 * "party is full", INVALID_ARGUMENT for bad ids, sizes and labels. */
#ifndef KN_PARTY_H
#define KN_PARTY_H

#include "kn_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_PARTY_SIZE_MIN     2
#define KN_PARTY_SIZE_MAX     256
#define KN_PARTY_REQUESTS_MAX 64 /* pending join requests per party */
#define KN_PARTY_PER_SESSION  4  /* parties one session is in */

typedef struct kn_parties kn_parties;

typedef enum kn_party_note_kind {
    KN_PARTY_NOTE_JOIN_REQUEST, /* to the leader; presence: the requester */
    KN_PARTY_NOTE_LEADER,       /* to every member; presence: the new leader */
    KN_PARTY_NOTE_CLOSE,        /* to every member (the party has closed); no presence */
    KN_PARTY_NOTE_REMOVED,      /* to the removed member or rejected requester; presence: it */
    KN_PARTY_NOTE_ACCEPTED,     /* to an accepted requester; presence: the leader, members: all */
} kn_party_note_kind;

typedef struct kn_party_note {
    kn_party_note_kind kind;
    const char *party_id;
    const kn_presence *presence; /* NULL for a close */
    const kn_presence *members;  /* ACCEPTED: every member, the joiner included */
    size_t n_members;
    const kn_conn_id *to;
    size_t n_to;
} kn_party_note;

typedef struct kn_party_hooks {
    void (*notify)(void *ud, const kn_party_note *note);
    /* The party's members changed (a join, an accept, a leave, a removal,
     * a close, its end): its matchmaker tickets must go. Under the lock,
     * like notify; it must not wait (kn_mm_remove_session never does). */
    void (*changed)(void *ud, const char *party_id);
    void *ud;
} kn_party_hooks;

/* What a new party is. */
typedef struct kn_party_config {
    bool open;         /* false: joins are requests the leader accepts */
    uint32_t max_size; /* KN_PARTY_SIZE_MIN..KN_PARTY_SIZE_MAX */
    const char *label; /* NULL = "" */
    bool hidden;       /* not listed */
} kn_party_config;

/* A party now (the Party message). */
typedef struct kn_party_view {
    char party_id[37];
    bool open, hidden;
    uint32_t max_size;
    char label[KN_STREAM_LABEL_MAX + 1];
    kn_presence leader;
    kn_presence *members; /* in join order, the leader among them; kn_free */
    size_t n_members;
    uint64_t version; /* changes whenever the members do */
} kn_party_view;

/* Registers the party mode with the tracker, which must outlive the
 * service. hooks may be NULL (notes dropped). Before serving. */
int kn_parties_create(kn_tracker *t, const kn_party_hooks *hooks, kn_parties **out);
void kn_parties_destroy(kn_parties *ps); /* accepts NULL */

/* A party with who as its leader and only member; *out describes it. */
int kn_party_create(kn_parties *ps, const kn_presence *who, const kn_party_config *cfg,
                    kn_party_view *out, char *msg, size_t cap);
/* who joins party_id. Open: a member now (*pending false, *out filled; a
 * member already: the same). Closed: a join request (*pending true, *out
 * untouched); the leader gets a JOIN_REQUEST note (not again for a request
 * already pending). RESOURCE_EXHAUSTED "party is full" / "too many join
 * requests". */
int kn_party_join(kn_parties *ps, const kn_presence *who, const char *party_id, bool *pending,
                  kn_party_view *out, char *msg, size_t cap);
/* The leader accepts the join request of (user_id, session_id): it joins
 * (an ACCEPTED note to it). NOT_FOUND "join request not found"; a full
 * party keeps the request. */
int kn_party_accept(kn_parties *ps, const kn_presence *who, const char *party_id,
                    const char *user_id, const char *session_id, char *msg, size_t cap);
/* The leader removes a member or rejects a join request: a REMOVED note to
 * it. INVALID_ARGUMENT for the leader itself (it leaves instead). */
int kn_party_remove(kn_parties *ps, const kn_presence *who, const char *party_id,
                    const char *user_id, const char *session_id, char *msg, size_t cap);
/* The leader makes another member the leader: a LEADER note to all. */
int kn_party_promote(kn_parties *ps, const kn_presence *who, const char *party_id,
                     const char *user_id, const char *session_id, char *msg, size_t cap);
/* who leaves. A leaving leader hands over to the longest-present member (a
 * LEADER note to all); the last member's leave ends the party. */
int kn_party_leave(kn_parties *ps, const kn_presence *who, const char *party_id, char *msg,
                   size_t cap);
/* The leader ends the party: a CLOSE note to every member, who all leave
 * without presence events. */
int kn_party_close(kn_parties *ps, const kn_presence *who, const char *party_id, char *msg,
                   size_t cap);
/* The leader's view of the pending join requests (*out kn_free, oldest first). */
int kn_party_requests(kn_parties *ps, const kn_presence *who, const char *party_id,
                      kn_presence **out, size_t *n, char *msg, size_t cap);
/* A member sends data (an envelope the caller packed) to the other
 * members: channel KN_CHANNEL_CONTROL when reliable, else
 * KN_CHANNEL_MATCH_UNRELIABLE. */
int kn_party_send(kn_parties *ps, const kn_presence *who, const char *party_id, const uint8_t *data,
                  size_t len, bool reliable, char *msg, size_t cap);
/* who leads party_id, whose members are still those of `version` (a
 * view's): KN_OK; ABORTED "party changed; retry" when they changed; the
 * leader checks otherwise. For work done outside the lock (a matchmaker
 * ticket for the members of a view). */
int kn_party_check_leader(kn_parties *ps, const kn_presence *who, const char *party_id,
                          uint64_t version, const char *verb, char *msg, size_t cap);
/* Open, visible parties whose label (JSON) passes query ("" or NULL =
 * "*"; the query language of kn_match.h), best score first, then newest:
 * *out (kn_party_views_free) holds *n views, at most limit (1..
 * KN_PARTY_LIST_MAX; 0 = 10). INVALID_ARGUMENT for a bad query or limit. */
#define KN_PARTY_LIST_MAX 100
int kn_party_list(kn_parties *ps, const char *query, uint32_t limit, kn_party_view **out, size_t *n,
                  char *msg, size_t cap);
void kn_party_views_free(kn_party_view *views, size_t n); /* accepts NULL */
/* Every party, closed and hidden ones too, newest first, at most limit
 * (1..KN_PARTY_LIST_MAX) of them: *out (kn_party_views_free) holds *n (the
 * console's view). */
int kn_parties_views(kn_parties *ps, uint32_t limit, kn_party_view **out, size_t *n, char *msg,
                     size_t cap);
/* The party now; NOT_FOUND when it does not exist. */
int kn_party_get(kn_parties *ps, const char *party_id, kn_party_view *out, char *msg, size_t cap);
/* conn's session has ended: it leaves every party it is in (as
 * kn_party_leave) and its join requests go. */
void kn_parties_leave_conn(kn_parties *ps, kn_conn_id conn);
/* How many parties exist now. */
size_t kn_parties_count(kn_parties *ps);

/* The service's size and its indexes' work (the console, tests). */
typedef struct kn_parties_stats {
    size_t parties;
    size_t listable;     /* open and not hidden */
    size_t connections;  /* with a party or a join request */
    size_t last_scanned; /* parties the last listing evaluated its query on */
} kn_parties_stats;
void kn_parties_stats_get(kn_parties *ps, kn_parties_stats *out);

#endif
