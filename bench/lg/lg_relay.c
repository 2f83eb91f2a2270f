/* lg_relay: the relay workload. Every input is relayed by the server to the
 * other members of the sender's room, unchanged, so each received message is
 * another client's 16-byte input: its send time gives the one-way latency.
 *
 * Loss attribution: a room lives in one worker, so the worker counts, for
 * each of its recent sends, how many room members received it. When the
 * slot is reused TRACK_RING sends later (about 2 s at 30 Hz) or at the end,
 * a window send that nobody received was lost on the way in (client ->
 * server, or dropped by the server before fan-out); one that some received
 * lost the rest on the way out (server -> client). */
#include "lg.h"

#include <stdlib.h>

#define TRACK_RING 64 /* sends remembered per client */

typedef struct track_slot {
    uint32_t seq;
    uint8_t got;
    bool used, in_window;
} track_slot;

typedef struct relay_state {
    track_slot *slots; /* TRACK_RING per local client */
} relay_state;

static void track_finish(lg_worker *w, track_slot *t)
{
    uint32_t fanout = w->cfg->room_size - 1;
    if (t->used && t->in_window) {
        if (t->got == 0)
            w->res->lost_inputs++;
        else if (t->got < fanout)
            w->res->lost_fanout += fanout - t->got;
    }
    t->used = false;
}

static int relay_start(lg_worker *w)
{
    relay_state *st = calloc(1, sizeof *st);
    if (st) st->slots = calloc((size_t)w->count * TRACK_RING, sizeof *st->slots);
    if (!st || !st->slots) {
        free(st);
        lg_worker_fail(w, "out of memory");
        return -1;
    }
    w->workload_state = st;
    return 0;
}

static void relay_sent(lg_worker *w, uint32_t i, uint32_t seq, int64_t now, bool counted)
{
    relay_state *st = w->workload_state;
    track_slot *t = &st->slots[(size_t)i * TRACK_RING + seq % TRACK_RING];
    track_finish(w, t);
    *t = (track_slot){.seq = seq, .used = true, .in_window = counted};
}

static void relay_received(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, int64_t now)
{
    relay_state *st = w->workload_state;
    lg_result *r = w->res;
    if (!st) return;
    if (len != LG_PAYLOAD_LEN) {
        r->misrouted++;
        return;
    }
    int64_t sent = (int64_t)lg_get_u64(data);
    uint32_t from = lg_get_u32(data + 8), self = w->first + i, seq = lg_get_u32(data + 12);
    if (from == self || from / w->cfg->room_size != self / w->cfg->room_size) {
        r->misrouted++;
        return;
    }
    if (from >= w->first && from - w->first < w->count) {
        track_slot *t = &st->slots[(size_t)(from - w->first) * TRACK_RING + seq % TRACK_RING];
        if (t->used && t->seq == seq && t->got < UINT8_MAX) t->got++;
    }
    if (!lg_in_window(w, sent)) return;
    r->deliveries_window++;
    lg_record_latency(r, now > sent ? (uint64_t)(now - sent) / 1000 : 0);
}

static void relay_stop(lg_worker *w)
{
    relay_state *st = w->workload_state;
    if (!st) return;
    for (size_t k = 0; k < (size_t)w->count * TRACK_RING; k++)
        track_finish(w, &st->slots[k]);
    free(st->slots);
    free(st);
    w->workload_state = NULL;
}

const lg_workload lg_workload_relay = {
    .name = "relay",
    .start = relay_start,
    .sent = relay_sent,
    .received = relay_received,
    .stop = relay_stop,
};
