/* apigate: a job for the API worker pool (kn_api.h) that holds its worker
 * until the test opens the gate — how tests make workers busy and fill the
 * bounded queue on purpose (tests/unit/api, tests/unit/rpc). */
#ifndef KN_TEST_APIGATE_H
#define KN_TEST_APIGATE_H

#include "kn_api.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct apigate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    atomic_int entered; /* jobs that started */
} apigate;

#define APIGATE_INIT                                                                               \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0                              \
    }

/* The job (kn_api_fn): arg is the apigate; returns once it is open. */
void apigate_job(kn_api_worker *worker, void *arg);
/* Returns once at least n jobs of g started (their workers are busy). */
void apigate_wait_entered(apigate *g, int n);
/* Lets every job of g, running or still queued, finish. */
void apigate_open(apigate *g);

#endif
