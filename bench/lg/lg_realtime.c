/* lg_realtime: the realtime workload. The server runs one authoritative
 * match per room that keeps each player's last input and, every tick, sends
 * every player a snapshot (lg.h: LG_SNAP_*) naming, for each player, the
 * sequence number of the last input it took from that player.
 *
 * What a client measures, per snapshot:
 *  - the interval since its previous snapshot (both inside the window): the
 *    tick as the player feels it, server scheduling, network thread and
 *    client included. A lost snapshot shows as a double interval and is also
 *    counted (snapshots_missing, from the gap in tick numbers);
 *  - input to snapshot latency: when its own entry names a sequence number
 *    newer than any seen before, now minus that input's send time (kept in
 *    a ring of the last SENT_RING sends). Only inputs sent inside the window
 *    count. An input overwritten by a newer one before the tick has no
 *    sample: the server only ever shows the last one;
 *  - misrouted: a snapshot of the wrong shape, or naming a client outside
 *    the room. */
#include "lg.h"

#include <stdlib.h>

#define SENT_RING 64 /* sends remembered per client: about 2 s at 30 Hz */

typedef struct rt_sent {
    int64_t at; /* 0 = empty */
    uint32_t seq;
    bool counted;
} rt_sent;

typedef struct rt_client {
    int64_t last_arrival; /* 0 = no snapshot yet */
    uint64_t last_tick;
    uint32_t acked; /* newest own sequence number echoed, valid when have_ack */
    bool have_ack;
    rt_sent sent[SENT_RING];
} rt_client;

typedef struct rt_state {
    rt_client *clients;
} rt_state;

/* Snapshot intervals: linear 0.1 ms buckets up to 204.8 ms (the last one
 * takes everything above); the exact maximum is kept beside. */
#define SNAP_BUCKET_US 100

uint32_t lg_snap_bucket(uint64_t us)
{
    uint64_t b = us / SNAP_BUCKET_US;
    return b < LG_LAT_BUCKETS ? (uint32_t)b : LG_LAT_BUCKETS - 1;
}

uint64_t lg_snap_bucket_value(uint32_t bucket)
{
    return (uint64_t)bucket * SNAP_BUCKET_US + SNAP_BUCKET_US / 2;
}

static int rt_start(lg_worker *w)
{
    rt_state *st = calloc(1, sizeof *st);
    if (st) st->clients = calloc(w->count, sizeof *st->clients);
    if (!st || !st->clients) {
        free(st);
        lg_worker_fail(w, "out of memory");
        return -1;
    }
    w->workload_state = st;
    return 0;
}

static void rt_sent_input(lg_worker *w, uint32_t i, uint32_t seq, int64_t now, bool counted)
{
    rt_state *st = w->workload_state;
    st->clients[i].sent[seq % SENT_RING] = (rt_sent){.at = now, .seq = seq, .counted = counted};
}

/* Whether a client index (its low 16 bits, as the snapshot carries it) is
 * a member of the room that starts at global index `room_first`. */
static bool in_room(uint16_t id, uint32_t room_first, uint32_t room_size)
{
    return (uint16_t)(id - (uint16_t)room_first) < room_size;
}

/* Own entry: a newer sequence number is a latency sample. */
static void take_ack(lg_worker *w, rt_client *c, uint32_t seq, int64_t now)
{
    if (c->have_ack && (int32_t)(seq - c->acked) <= 0) return;
    c->acked = seq;
    c->have_ack = true;
    const rt_sent *s = &c->sent[seq % SENT_RING];
    if (s->at && s->seq == seq && s->counted)
        lg_record_latency(w->res, now > s->at ? (uint64_t)(now - s->at) / 1000 : 0);
}

static void rt_received(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, int64_t now)
{
    rt_state *st = w->workload_state;
    lg_result *r = w->res;
    if (!st) return;
    uint32_t rs = w->cfg->room_size, self = w->first + i, room_first = self / rs * rs;
    uint32_t n = len >= LG_SNAP_HEADER ? lg_get_u16(data + 8) : 0;
    if (len < LG_SNAP_HEADER || n > rs || len != LG_SNAP_HEADER + (size_t)n * LG_SNAP_ENTRY) {
        r->misrouted++;
        return;
    }
    uint64_t tick = lg_get_u64(data);
    r->snap_hz = lg_get_u16(data + 10);
    rt_client *c = &st->clients[i];
    for (uint32_t k = 0; k < n; k++) {
        const uint8_t *e = data + LG_SNAP_HEADER + (size_t)k * LG_SNAP_ENTRY;
        uint16_t id = lg_get_u16(e + 2);
        if (id == LG_SNAP_NO_INPUT) continue;
        if (!in_room(id, room_first, rs)) {
            r->misrouted++;
            return;
        }
        if (id == (uint16_t)self) take_ack(w, c, lg_get_u32(e + 4), now);
    }
    bool in = lg_in_window(w, now);
    if (in) r->deliveries_window++;
    if (c->last_arrival && tick <= c->last_tick) {
        if (in) r->snapshots_stale++;
        return;
    }
    if (in && c->last_arrival && lg_in_window(w, c->last_arrival)) {
        uint64_t us = (uint64_t)(now - c->last_arrival) / 1000;
        r->snap_intervals++;
        r->snap_hist[lg_snap_bucket(us)]++;
        if (us > r->snap_interval_max_us) r->snap_interval_max_us = us;
        r->snapshots_missing += tick - c->last_tick - 1;
    }
    c->last_arrival = now;
    c->last_tick = tick;
}

static void rt_stop(lg_worker *w)
{
    rt_state *st = w->workload_state;
    if (!st) return;
    free(st->clients);
    free(st);
    w->workload_state = NULL;
}

const lg_workload lg_workload_realtime = {
    .name = "realtime",
    .start = rt_start,
    .sent = rt_sent_input,
    .received = rt_received,
    .stop = rt_stop,
};
