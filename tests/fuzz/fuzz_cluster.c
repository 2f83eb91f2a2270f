/* libFuzzer target: the cluster bus's decoder (kn_cluster_receive). Bus
 * messages come from other nodes, not clients, but a node must survive a
 * broken or hostile peer: every input is decoded, dropped or handed to the
 * local hooks, which check what they are given (ids a UUID's text, a
 * session id short enough, a peer's name fit for logs, a stream key and its
 * presences within the tracker's limits, the sender's slot on them). A tick after some
 * inputs runs the sweep and the answers over the peer table they built. */
#include "kn_cluster.h"
#include "kn_error.h"
#include "kn_uuid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int publish(void *ud, const char *subject, const uint8_t *d, size_t len)
{
    (void)ud;
    (void)subject;
    (void)d;
    (void)len;
    return KN_OK;
}
static int subscribe(void *ud, const char *subject, void **sub)
{
    (void)ud;
    (void)subject;
    *sub = (void *)1;
    return KN_OK;
}
static void unsubscribe(void *ud, void *sub)
{
    (void)ud;
    (void)sub;
}
static bool connected(void *ud)
{
    (void)ud;
    return true;
}

static void check_ids(const char *user_id, const char *session_id)
{
    if (!kn_uuid_valid(user_id)) abort();
    if (session_id && strlen(session_id) > 4096) abort();
}

static void deliver_user(void *ud, const char *user_id, const char *session_id, uint8_t channel,
                         const uint8_t *d, size_t len, bool reliable)
{
    (void)ud;
    (void)channel;
    (void)reliable;
    check_ids(user_id, session_id);
    if (len && !d) abort();
}
static void end_sessions(void *ud, const char *user_id, const char *session_id, int why,
                         int64_t revoke_expires)
{
    (void)ud;
    (void)why;
    (void)revoke_expires;
    check_ids(user_id, session_id);
}
static void check_presence(const kn_presence *p, uint16_t node)
{
    if (p->node != node || !node || !p->conn) abort();
    if (strlen(p->user_id) > 36 || strlen(p->session_id) > 36 || strlen(p->username) > 128) abort();
    if (p->status && strlen(p->status) > KN_STREAM_STATUS_MAX) abort();
}

static void check_stream(const kn_stream *s)
{
    if (kn_stream_check(s, NULL, 0) != KN_OK) abort();
}

static void stream_changed(void *ud, uint16_t node, const kn_stream *s, const kn_presence *join,
                           bool has_leave, kn_conn_id leave)
{
    (void)ud;
    (void)has_leave;
    (void)leave;
    check_stream(s);
    if (join) check_presence(join, node);
}

static void stream_state(void *ud, uint16_t node, const kn_stream *s, const kn_presence *ps,
                         size_t n, bool ask)
{
    (void)ud;
    (void)ask;
    check_stream(s);
    for (size_t i = 0; i < n; i++)
        check_presence(&ps[i], node);
}

static void stream_data(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *d, size_t len,
                        bool reliable)
{
    (void)ud;
    (void)channel;
    (void)reliable;
    check_stream(s);
    if (len && !d) abort();
}

static void leaderboard(void *ud, const char *board, int64_t expiry, const char *owner,
                        int64_t score, int64_t subscore, int64_t time_us, int64_t version,
                        bool removed)
{
    (void)ud;
    (void)expiry;
    (void)score;
    (void)subscore;
    (void)time_us;
    (void)version;
    (void)removed;
    if (!*board || strlen(board) > 128 || !kn_uuid_valid(owner)) abort();
    for (const char *c = owner; *c; c++)
        if (*c >= 'A' && *c <= 'F') abort(); /* handed on in lower case */
}

static void replace_sessions(void *ud, const char *user_id, const char *session_id,
                             int64_t bound_ms, bool wins_tie)
{
    (void)ud;
    (void)bound_ms;
    (void)wins_tie;
    check_ids(user_id, session_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kn_cluster *c;
    static int64_t now = 1000;
    static unsigned runs;
    if (!c) {
        kn_cluster_config cfg = {
            .node = "fuzz", .address = "127.0.0.1:7350", .heartbeat_ms = 500, .dead_ms = 3000};
        kn_cluster_bus bus = {publish, subscribe, unsubscribe, connected, NULL};
        kn_cluster_local local = {.deliver_user = deliver_user,
                                  .end_sessions = end_sessions,
                                  .replace_sessions = replace_sessions,
                                  .stream_changed = stream_changed,
                                  .stream_state = stream_state,
                                  .stream_data = stream_data,
                                  .leaderboard = leaderboard};
        if (kn_cluster_create(&cfg, &bus, &local, &c)) abort();
    }
    kn_cluster_receive(c, data, size, now);
    if (++runs % 64 == 0) {
        now += 700; /* peers age and die; the table is swept */
        kn_cluster_tick(c, now);
        char buf[4096];
        kn_cluster_health(c, now, buf, 0, sizeof buf);
        kn_cluster_nodes_json(c, buf, sizeof buf);
    }
    return 0;
}
