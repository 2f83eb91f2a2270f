/* api: worker threads over one bounded ring of jobs (mutex + condvar). */
#include "kn_api.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct job {
    kn_api_fn fn;
    void *arg;
} job;

typedef struct worker {
    kn_api *api;
    kn_api_worker pub;
    pthread_t thread;
    bool started;
} worker;

struct kn_api {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *ring;
    size_t cap, head, count;
    int sleeping; /* workers waiting on cond (under lock) */
    bool closed, quit;
    atomic_size_t pending; /* queued + running */
    worker *workers;
    int nworkers;
};

static void *worker_main(void *p)
{
    worker *w = p;
    kn_api *api = w->api;
    for (;;) {
        pthread_mutex_lock(&api->lock);
        while (api->count == 0 && !api->quit) {
            api->sleeping++;
            pthread_cond_wait(&api->cond, &api->lock);
            api->sleeping--;
        }
        if (api->count == 0) { /* quit, and the queue is drained */
            pthread_mutex_unlock(&api->lock);
            return NULL;
        }
        job j = api->ring[api->head];
        api->head = (api->head + 1) % api->cap;
        api->count--;
        pthread_mutex_unlock(&api->lock);
        j.fn(&w->pub, j.arg);
        atomic_fetch_sub(&api->pending, 1);
    }
}

int kn_api_create(const kn_api_config *cfg, kn_api **out)
{
    *out = NULL;
    if (cfg->workers < 1 || cfg->queue_size < 1) return KN_ERR_INVALID_ARGUMENT;
    kn_api *api = kn_calloc(1, sizeof *api);
    if (!api) return KN_ERR_NOMEM;
    pthread_mutex_init(&api->lock, NULL);
    pthread_cond_init(&api->cond, NULL);
    int rc = KN_ERR_NOMEM;
    api->cap = cfg->queue_size;
    api->ring = kn_calloc(api->cap, sizeof *api->ring);
    api->workers = kn_calloc((size_t)cfg->workers, sizeof *api->workers);
    if (!api->ring || !api->workers) goto fail;
    api->nworkers = cfg->workers;
    for (int i = 0; i < cfg->workers; i++) {
        worker *w = &api->workers[i];
        w->api = api;
        w->pub.index = i;
        w->pub.ctx = cfg->worker_ctx ? cfg->worker_ctx[i] : NULL;
        if ((rc = kn_db_open(cfg->database_url, &w->pub.db))) goto fail;
    }
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&api->workers[i].thread, NULL, worker_main, &api->workers[i])) {
            rc = KN_ERR_INTERNAL;
            goto fail;
        }
        api->workers[i].started = true;
    }
    *out = api;
    return KN_OK;
fail:
    kn_api_destroy(api);
    return rc;
}

void kn_api_destroy(kn_api *api)
{
    if (!api) return;
    pthread_mutex_lock(&api->lock);
    api->closed = api->quit = true;
    pthread_cond_broadcast(&api->cond);
    pthread_mutex_unlock(&api->lock);
    for (int i = 0; api->workers && i < api->nworkers; i++) {
        if (api->workers[i].started) pthread_join(api->workers[i].thread, NULL);
        kn_db_close(api->workers[i].pub.db);
    }
    pthread_cond_destroy(&api->cond);
    pthread_mutex_destroy(&api->lock);
    kn_free(api->workers);
    kn_free(api->ring);
    kn_free(api);
}

/* A worker is woken only if one sleeps (busy ones take the job when they
 * finish theirs), and after the lock is released, so it does not wake
 * straight into the submitter's mutex. */
int kn_api_submit(kn_api *api, kn_api_fn fn, void *arg)
{
    int rc = KN_OK;
    bool wake = false;
    pthread_mutex_lock(&api->lock);
    if (api->closed) {
        rc = KN_ERR_UNAVAILABLE;
    } else if (api->count == api->cap) {
        rc = KN_ERR_RESOURCE_EXHAUSTED;
    } else {
        api->ring[(api->head + api->count) % api->cap] = (job){fn, arg};
        api->count++;
        atomic_fetch_add(&api->pending, 1);
        wake = api->sleeping > 0;
    }
    pthread_mutex_unlock(&api->lock);
    if (wake) pthread_cond_signal(&api->cond);
    return rc;
}

void kn_api_close_intake(kn_api *api)
{
    pthread_mutex_lock(&api->lock);
    api->closed = true;
    pthread_mutex_unlock(&api->lock);
}

size_t kn_api_pending(kn_api *api)
{
    return atomic_load(&api->pending);
}
