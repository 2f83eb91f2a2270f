/* lg: the relay load generator's internal contract (bench/relay only).
 *
 * loadgen.c forks worker processes; each runs one lg_worker that drives a
 * contiguous range of clients (whole rooms only) through a driver: lg_kaos.c
 * (KaosNet SDK clients) or lg_enet.c (raw ENet hosts against bare_server).
 * A driver owns its clients and their sockets; the worker owns the clock, the
 * 30 Hz schedule, the epoll set and the measurements.
 *
 * Payload (16 bytes, little endian): send time in CLOCK_MONOTONIC ns (u64),
 * sender's global client index (u32), sender's sequence number (u32). Both
 * ends run on one machine, so receive time minus send time is the one-way
 * latency.
 *
 * Threads: none. Every worker is a single-threaded process; the workers and
 * the parent share only lg_shared (a MAP_SHARED mapping), written as noted on
 * each field. */
#ifndef LG_H
#define LG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_PAYLOAD_LEN  16
#define LG_MAX_PROCS    16
#define LG_LAT_BUCKETS  2048 /* log-linear microsecond buckets, see lg_lat_bucket */
#define LG_LATE_DIVISOR 2    /* a send later than period/2 counts as behind schedule */

typedef enum lg_mode { LG_MODE_KAOS, LG_MODE_ENET } lg_mode;

/* What one run asks of every worker (copied into each before fork). */
typedef struct lg_config {
    lg_mode mode;
    const char *host;
    uint16_t port;
    const char *server_key; /* KaosNet: the key to pin (hex), NULL = insecure dev mode */
    uint32_t ccu;       /* all workers together */
    uint32_t room_size; /* 8 */
    uint32_t hz;        /* 30 */
    uint32_t procs;     /* worker processes */
    double warmup_s;    /* sending before the window opens */
    double window_s;    /* steady window that is measured */
    double drain_s;     /* after the window: still sending, waiting for late deliveries */
    double setup_timeout_s;
} lg_config;

/* One worker's measurements. Written by that worker only, read by the
 * parent after the worker exited. Counts marked "window" cover the steady
 * window: sends by their send time, deliveries by the send time carried in
 * the payload (so late deliveries of window sends still count). */
typedef struct lg_result {
    int32_t status; /* 0 ok, else negative: setup or run failed */
    char error[160];
    uint32_t clients;
    double setup_s; /* connect, authenticate, join: until every room was full */
    uint64_t sends_window;
    uint64_t sends_total;
    uint64_t send_errors;
    uint64_t deliveries_window;
    uint64_t deliveries_total;
    uint64_t misrouted;         /* not 16 bytes, from itself or from outside its room */
    uint64_t lost_inputs;       /* window sends that reached none of the room: lost on the way in */
    uint64_t lost_fanout;       /* single deliveries missing while others of that send arrived */
    uint64_t disconnects;       /* unexpected, after setup */
    uint64_t server_errors;     /* error answers after setup */
    uint64_t app_bytes_window;  /* bytes handed to / received from the library, both ways */
    uint64_t wire_bytes_window; /* ENet's totals both ways; only when wire_known */
    bool wire_known;
    uint32_t env_send_bytes; /* size of one sent message as the library frames it */
    uint32_t env_recv_bytes; /* size of one received message, idem */
    uint64_t late_sends;     /* window sends more than period/LG_LATE_DIVISOR late */
    uint64_t lag_max_us;     /* worst send lag in the window */
    uint64_t cpu_ns_window;  /* this process's CPU time in the window */
    uint64_t lat_max_us;
    uint64_t lat_sum_us;
    uint32_t lat_hist[LG_LAT_BUCKETS];
    uint32_t lag_hist[LG_LAT_BUCKETS];
} lg_result;

/* The parent/worker rendezvous. */
typedef struct lg_shared {
    atomic_int ready;        /* workers whose rooms are all full (incremented by each) */
    atomic_int failed;       /* workers that gave up during setup */
    atomic_int connect_turn; /* raw ENet: the worker whose turn it is to connect */
    /* Written by the parent before it stores `go` (release); read after
     * loading `go` (acquire). Absolute CLOCK_MONOTONIC ns. */
    int64_t t_start, t_begin, t_end, t_stop;
    atomic_int go; /* 1: schedule published; -1: abort */
    lg_result results[LG_MAX_PROCS];
} lg_shared;

typedef struct lg_worker lg_worker;

/* A client library behind the worker. Every function runs on the worker. */
typedef struct lg_driver {
    const char *name;
    /* Creates the worker's clients, connects them and fills their rooms.
     * Returns 0 once every room is full, or a negative value after writing
     * the reason with lg_worker_fail. May call lg_worker_wait_turn. */
    int (*setup)(lg_worker *w);
    /* The socket to watch for client i (a local index). */
    int (*fd)(lg_worker *w, uint32_t i);
    /* Sends one payload for client i, unreliable on channel 2, and flushes it
     * to the socket. Returns the framed size, or negative on failure. */
    int (*send)(lg_worker *w, uint32_t i, const uint8_t *payload, size_t len);
    /* Client i's socket is readable: receive and dispatch what is there,
     * reporting payloads through lg_worker_on_payload. */
    void (*service)(lg_worker *w, uint32_t i);
    /* Wire bytes (sent + received) of all clients so far; false if the
     * library does not expose them. */
    bool (*wire_bytes)(lg_worker *w, uint64_t *out);
    /* Disconnects and frees everything; the worker exits next. */
    void (*teardown)(lg_worker *w);
} lg_driver;

extern const lg_driver lg_driver_kaos;
extern const lg_driver lg_driver_enet;

/* The worker (lg_worker.c). */
struct lg_worker {
    const lg_config *cfg;
    lg_shared *shared;
    uint32_t index; /* worker number, 0..procs-1 */
    uint32_t first; /* global index of its first client */
    uint32_t count; /* its clients (a multiple of room_size) */
    lg_result *res; /* &shared->results[index] */
    void *driver_state;
    struct lg_track *track; /* per-send delivery counts, see lg_worker.c */
    bool measuring;         /* inside the steady window */
    bool running;           /* past setup: disconnects and errors are counted, not fatal */
};

/* Runs setup, the schedule and teardown; returns the process exit status. */
int lg_worker_run(lg_worker *w, const lg_driver *d);

/* Drivers report each received payload of client i (local index) here;
 * `framed` is its size as the library framed it. */
void lg_worker_on_payload(lg_worker *w, uint32_t i, const uint8_t *data, size_t len, size_t framed);
/* Records why setup or the run failed (first reason wins). */
void lg_worker_fail(lg_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raw ENet only: blocks until it is this worker's turn to connect (so the
 * server sees connects in global index order); lg_worker_pass_turn ends it. */
int lg_worker_wait_turn(lg_worker *w);
void lg_worker_pass_turn(lg_worker *w);

/* Clock and histograms, shared by the parent and the workers. */
int64_t lg_now_ns(void);
uint32_t lg_lat_bucket(uint64_t us);
uint64_t lg_lat_bucket_value(uint32_t bucket); /* a representative value, in us */
/* The value at quantile q (0..1) of a histogram with `total` samples. */
uint64_t lg_hist_quantile(const uint32_t *hist, uint64_t total, double q);

#endif
