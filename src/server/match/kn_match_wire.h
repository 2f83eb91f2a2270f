/* kn_match_wire: the match routes (create, join, leave, data, list) over
 * both kinds of match — relayed (kn_relay, on the network threads) and
 * authoritative (kn_match engine, on the match threads) — and the engine's
 * out sink, which hands its batches to the network threads.
 *
 * Relayed matches span network threads: they are streams of the tracker
 * (kn_relay on kn_stream), which sends through kn_out (any shard). Which
 * authoritative matches a connection is in (at most 8) is per-connection
 * state in a kn_session ext slot, kept on the connection's thread from the
 * engine's JOINED/LEFT notices.
 *
 * Admission control: while a network thread is overloaded, creations and
 * joins are refused with UNAVAILABLE so the players already in keep their
 * ticks. The route's service context is the kn_match_wire. */
#ifndef KN_MATCH_WIRE_H
#define KN_MATCH_WIRE_H

#include "kn_match.h"
#include "kn_out.h"
#include "kn_pipeline.h"
#include "kn_relay.h"
#include "kn_session.h"

typedef struct kn_match_wire kn_match_wire;

typedef struct kn_match_wire_deps {
    const kn_relay_config *relay; /* relayed match limits */
    kn_tracker *tracker;          /* relayed matches are streams on it */
    kn_out *out;
    kn_sessions *sessions; /* for the per-connection slot */
} kn_match_wire_deps;

int kn_match_wire_create(const kn_match_wire_deps *deps, kn_match_wire **out);
void kn_match_wire_destroy(kn_match_wire *mw); /* accepts NULL; after the nets */
/* Where another node is (a cluster, docs/cluster.md): a match id names its
 * node; a join of a match of another node is answered FAILED_PRECONDITION
 * "match <id> is on node <n> at udp <address>: connect there to join it",
 * or UNAVAILABLE when that node is not up. where() fills address (cap
 * bytes) and says whether the node is up; false when it is unknown. Any
 * thread. NULL (one node): such a join is "match not found" as before. */
typedef struct kn_match_locator {
    bool (*where)(void *ud, const char *node, char *address, size_t cap, bool *up);
    void *ud;
} kn_match_locator;
/* Before serving. */
void kn_match_wire_set_locator(kn_match_wire *mw, const kn_match_locator *loc);

/* Authoritative matches (NULL = off). Before serving. */
void kn_match_wire_attach_engine(kn_match_wire *mw, kn_match_engine *matches);
/* The engine's out sink (ud = the kn_match_wire): each batch goes to every
 * network thread with a connection in it; each sends to its own and the
 * last one frees it. Match threads. */
void kn_match_wire_out(void *ud, kn_match_batch *b);
/* Creations and joins refused because a network thread was overloaded. */
uint64_t kn_match_wire_shed_joins(const kn_match_wire *mw);
size_t kn_match_wire_relayed_count(kn_match_wire *mw); /* relayed matches now */
/* The relay (matchmaker tokens name relayed matches). */
kn_relay *kn_match_wire_relay(kn_match_wire *mw);

int kn_match_wire_create_match(kn_req *r, char *msg, size_t cap);
int kn_match_wire_join(kn_req *r, char *msg, size_t cap);
int kn_match_wire_leave(kn_req *r, char *msg, size_t cap);
int kn_match_wire_data(kn_req *r, char *msg, size_t cap);
int kn_match_wire_list(kn_req *r, char *msg, size_t cap);
int kn_match_wire_get(kn_req *r, char *msg, size_t cap);

#endif
