/* kn_rank: the rank index contract — an ordered set of one leaderboard
 * period's records that answers "what is X's rank", "who is at rank N" and
 * "the next N after this key" without touching Postgres.
 *
 * The leaderboard service talks to a rank set only through kn_rank_vt, so a
 * multi-node implementation (docs/leaderboards.md, "Cluster") can stand
 * behind it: the local one here keeps the set in this process; a clustered
 * one would also publish every applied entry and apply its peers' entries.
 *
 * Order. A set sorts by score (descending, or ascending for KN_RANK_ASC),
 * then subscore in the same direction, then time_us ascending (who got
 * there first), then owner ascending (byte order of the lowercase UUID
 * text, which is also Postgres's uuid order). Every key is distinct, so a
 * rank is a position: 1 for the first entry, no shared ranks.
 *
 * Versions. Every entry carries the version of the Postgres row it came
 * from (it grows by one with every change of the row). apply keeps the
 * entry with the highest version per owner and ignores older ones, so
 * entries may be applied in any order, more than once, by any number of
 * writers: the set converges on the committed rows. A remove forgets the
 * owner entirely (its version too); callers serialize removes against
 * applies of the same board (the service does, with a per-board lock).
 *
 * Threads: every function may be called from any thread; a set serializes
 * its operations with a lock of its own (one per set, so boards do not
 * contend). Entries are copied in and out: nothing returned points into
 * the set. */
#ifndef KN_RANK_H
#define KN_RANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KN_RANK_OWNER_LEN 36 /* a UUID as lowercase text */

typedef struct kn_rank_entry {
    int64_t score;
    int64_t subscore;
    int64_t time_us; /* when (score, subscore) was reached; earlier ranks first */
    int64_t version; /* of the Postgres row; higher replaces lower */
    char owner[KN_RANK_OWNER_LEN + 1];
} kn_rank_entry;

enum { KN_RANK_DESC = 0, KN_RANK_ASC = 1 };

typedef struct kn_rank kn_rank;

typedef struct kn_rank_vt {
    /* Inserts e, or replaces the owner's entry when e->version is higher;
     * *applied says which (false: an older or equal version, ignored).
     * KN_ERR_NOMEM leaves the set unchanged. */
    int (*apply)(kn_rank *r, const kn_rank_entry *e, bool *applied);
    /* Forgets owner; KN_ERR_NOT_FOUND when it is not in the set. */
    int (*remove)(kn_rank *r, const char *owner);
    /* The owner's rank (1-based) and entry; 0 when it is not in the set. */
    int64_t (*rank_of)(kn_rank *r, const char *owner, kn_rank_entry *out);
    /* Up to n entries from rank `first` (1-based) on, into out; returns how
     * many. */
    size_t (*range)(kn_rank *r, int64_t first, size_t n, kn_rank_entry *out);
    /* Up to n entries strictly after `key` in set order (key NULL: from the
     * first), into out; *first_rank gets the rank of out[0]. */
    size_t (*after)(kn_rank *r, const kn_rank_entry *key, size_t n, kn_rank_entry *out,
                    int64_t *first_rank);
    size_t (*count)(kn_rank *r);
    /* Forgets every entry (a period ended). */
    void (*clear)(kn_rank *r);
    /* Replaces the set's entries with the n at es, which it sorts in place
     * (a rebuild from Postgres: one owner once each; a repeated owner keeps
     * its first entry in set order). Faster than n applies: the set is
     * built in order. KN_ERR_NOMEM leaves the set empty. */
    int (*load)(kn_rank *r, kn_rank_entry *es, size_t n);
    /* Bytes held for the set and its entries (benchmarks, /metrics). */
    size_t (*memory)(kn_rank *r);
    void (*destroy)(kn_rank *r);
} kn_rank_vt;

/* Every implementation starts with this. */
struct kn_rank {
    const kn_rank_vt *vt;
    int order; /* KN_RANK_DESC or KN_RANK_ASC */
};

/* Makes the sets of one implementation: the service asks it for one set per
 * board and period. */
typedef struct kn_rank_factory {
    int (*create)(void *ud, int order, kn_rank **out);
    void *ud;
} kn_rank_factory;

/* The local implementation: a skip list with spans (an order-statistics
 * list: O(log n) apply, remove, rank_of and the start of range/after) plus
 * a hash of owners. order: KN_RANK_DESC or KN_RANK_ASC. */
int kn_rank_local_create(int order, kn_rank **out);
/* kn_rank_local_create as a factory (ud unused). */
extern const kn_rank_factory kn_rank_local_factory;

/* <0, 0, >0 as a sorts before, equal to, after b in a set of `order`. */
int kn_rank_compare(int order, const kn_rank_entry *a, const kn_rank_entry *b);

static inline void kn_rank_destroy(kn_rank *r)
{
    if (r) r->vt->destroy(r);
}

#endif
