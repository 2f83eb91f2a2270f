/* kn_api: the pool of API workers.
 *
 * Each worker thread owns one Postgres connection (kn_db, with its prepared
 * statements) and runs jobs from one bounded queue, so blocking database work
 * never runs on the net thread. A job is a function and its argument; the job
 * posts its own completion back to the net thread (kn_net_post_fn), and owns
 * its argument while it runs. Submit from any thread. */
#ifndef KN_API_H
#define KN_API_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kn_db kn_db;
typedef struct kn_api kn_api;

/* What a job sees of the worker running it. */
typedef struct kn_api_worker {
    kn_db *db;   /* this worker's connection; never shared */
    int index;   /* 0..workers-1 */
    void *ctx;   /* per-worker state from kn_api_config.worker_ctx (the runtime slot) */
} kn_api_worker;

typedef void (*kn_api_fn)(kn_api_worker *worker, void *arg);

typedef struct kn_api_config {
    int workers;
    size_t queue_size;
    const char *database_url;
    void **worker_ctx; /* NULL or `workers` pointers, one per worker (not owned) */
} kn_api_config;

/* Opens one connection per worker (fails if the database is unreachable)
 * and starts the threads. */
int kn_api_create(const kn_api_config *cfg, kn_api **out);
/* Stops taking jobs, lets the queued ones finish, joins, closes. Accepts NULL. */
void kn_api_destroy(kn_api *api);

/* Queues fn(worker, arg). KN_ERR_RESOURCE_EXHAUSTED when the queue is full,
 * KN_ERR_UNAVAILABLE after kn_api_close_intake. On error the job did not
 * run and arg still belongs to the caller. */
int kn_api_submit(kn_api *api, kn_api_fn fn, void *arg);
/* Refuse new jobs from now on (shutdown). */
void kn_api_close_intake(kn_api *api);
/* Jobs queued or running. */
size_t kn_api_pending(kn_api *api);

#endif
