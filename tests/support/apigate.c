/* apigate: see apigate.h. */
#include "apigate.h"

#include <sched.h>

void apigate_job(kn_api_worker *worker, void *arg)
{
    (void)worker;
    apigate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

void apigate_wait_entered(apigate *g, int n)
{
    while (atomic_load(&g->entered) < n)
        sched_yield();
}

void apigate_open(apigate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}
