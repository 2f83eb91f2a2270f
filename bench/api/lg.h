/* lg: the API load generator's internal contract (bench/api only).
 *
 * loadgen.c (the parent) forks worker processes; each runs lg_worker_run
 * (lg_worker.c), which drives a contiguous range of KaosNet SDK clients.
 * Every client keeps `inflight` requests of one workload outstanding: as soon
 * as an answer arrives (from inside kaos_client_poll) the next request is
 * issued, so the load is closed-loop and the request rate is whatever the
 * server sustains with clients x inflight requests outstanding.
 *
 * Latency is measured by the client: from the kaos_client_* request call to
 * the callback carrying the answer (on_rpc, on_pong, on_session, on_error),
 * so it includes the load generator's own scheduling delay.
 *
 * Threads: none. Every worker is a single-threaded process; the workers and
 * the parent share only lg_shared (a MAP_SHARED mapping), written as noted on
 * each field. */
#ifndef LG_H
#define LG_H

#include "../lg/lg_util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_MAX_PROCS    16
#define LG_MAX_INFLIGHT 64

/* What each request is. */
typedef enum lg_workload {
    LG_PING,           /* Ping -> Pong: answered on the server's network thread */
    LG_NOOP,           /* RPC kaos.noop: built in, in C, no Lua (API worker hop) */
    LG_ECHO,           /* RPC bench_echo: Lua, returns the payload */
    LG_JSON,           /* RPC bench_json: Lua, decode, add fields, encode */
    LG_LOGIN_NEW,      /* AuthenticateDevice create=true with a new device id each time */
    LG_LOGIN_EXISTING, /* AuthenticateDevice create=false over a pool made during setup */
    LG_WORKLOAD_COUNT
} lg_workload;

extern const char *const lg_workload_names[LG_WORKLOAD_COUNT];

/* What one run asks of every worker (copied into each before fork). */
typedef struct lg_config {
    lg_workload workload;
    const char *host;
    uint16_t port;
    const char *server_key; /* the key to pin (hex); NULL = insecure dev mode */
    uint32_t clients;       /* all workers together */
    uint32_t inflight;      /* requests outstanding per client */
    uint32_t procs;         /* worker processes */
    uint32_t pool;          /* login_existing: devices per client, created during setup */
    double warmup_s;        /* requests before the window opens */
    double window_s;        /* the measured window */
    double drain_s;         /* after the window: at most this long for answers in flight */
    double setup_timeout_s;
    char prefix[40]; /* device ids start with it: unique per run */
} lg_config;

/* One worker's measurements. Written by that worker only, read by the
 * parent after the worker exited. "window" counts are answers that arrived
 * inside the window (by arrival time). */
typedef struct lg_result {
    int32_t status; /* 0 ok, else negative: setup or run failed */
    char error[160];
    uint32_t clients;
    double setup_s;
    uint64_t ok_window;     /* successful answers in the window */
    uint64_t errors_window; /* error answers in the window */
    uint64_t ok_total;      /* from the start of the load to the end */
    uint64_t errors_total;  /* error answers, whole run */
    uint64_t local_errors;  /* requests the SDK refused to send */
    uint64_t disconnects;   /* unexpected, after setup */
    uint64_t unexpected;    /* answers with a cid we did not send, or of the wrong kind */
    uint64_t not_created;   /* login_new: answers with created=false */
    uint64_t created_setup; /* users created during setup */
    uint64_t cpu_ns_window; /* this process's CPU time in the window */
    char first_error[128];  /* the first error answer's text, for the log */
    uint64_t lat_max_us;
    uint64_t lat_sum_us;
    uint32_t lat_hist[LG_LAT_BUCKETS];
} lg_result;

/* The parent/worker rendezvous. */
typedef struct lg_shared {
    atomic_int ready;  /* workers whose clients are all set up (incremented by each) */
    atomic_int failed; /* workers that gave up during setup */
    /* Written by the parent before it stores `go` (release); read after
     * loading `go` (acquire). Absolute CLOCK_MONOTONIC ns. */
    int64_t t_start, t_begin, t_end, t_stop;
    atomic_int go; /* 1: schedule published; -1: abort */
    lg_result results[LG_MAX_PROCS];
} lg_shared;

/* One worker process. */
typedef struct lg_worker {
    const lg_config *cfg;
    lg_shared *shared;
    uint32_t index; /* worker number, 0..procs-1 */
    uint32_t first; /* global index of its first client */
    uint32_t count; /* its clients */
    lg_result *res; /* &shared->results[index] */
} lg_worker;

/* Sets the clients up, waits for the parent's schedule, runs the load and
 * tears down; returns the process exit status. */
int lg_worker_run(lg_worker *w);

/* Records why setup or the run failed (first reason wins). */
void lg_worker_fail(lg_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clocks, /proc CPU time and latency histograms: lg_util.h. */

#endif
