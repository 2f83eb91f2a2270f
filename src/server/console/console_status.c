/* console_status: the Status page's data — the /metrics counters as JSON
 * (the same numbers, from the same handler), plus uptime, plus the history
 * of the charted ones. The page turns counters into rates and charts.
 *
 * History: one thread samples CHARTED every interval into a ring of
 * KN_CONSOLE_HISTORY samples under a mutex; a status request copies the
 * ring out. So a page opened now charts the last minutes, not only what it
 * saw itself. The thread formats /metrics once per interval (a few µs). */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The metrics the Status page charts (gauges, and counters it turns into rates). */
static const char *const CHARTED[] = {
    "kaos_sessions",       "kaos_connections_current", "kaos_matches",
    "kaos_api_pending",    "kaos_requests_total",      "kaos_request_errors_total",
    "kaos_bytes_in_total", "kaos_bytes_out_total",
};
#define N_CHARTED   (sizeof CHARTED / sizeof CHARTED[0])
#define METRICS_CAP 65536

typedef struct sample {
    int64_t time_ms;
    double v[N_CHARTED];
} sample;

struct kn_console_history {
    const kn_console_hooks *hooks;
    int64_t interval_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    char *text;                      /* the thread's /metrics buffer */
    sample ring[KN_CONSOLE_HISTORY]; /* oldest at head when full */
    size_t head, n;
};

/* The value of an unlabelled metric in Prometheus text, 0 when absent. */
static double metric_value(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += len) {
        if ((p == text || p[-1] == '\n') && p[len] == ' ') return strtod(p + len + 1, NULL);
    }
    return 0;
}

static void take_sample(kn_console_history *h)
{
    h->text[0] = '\0';
    h->hooks->metrics(h->hooks->ud, h->text, METRICS_CAP);
    sample s = {.time_ms = kn_time_wall_ms()};
    for (size_t i = 0; i < N_CHARTED; i++)
        s.v[i] = metric_value(h->text, CHARTED[i]);
    pthread_mutex_lock(&h->mu);
    h->ring[(h->head + h->n) % KN_CONSOLE_HISTORY] = s;
    if (h->n < KN_CONSOLE_HISTORY)
        h->n++;
    else
        h->head = (h->head + 1) % KN_CONSOLE_HISTORY;
    pthread_mutex_unlock(&h->mu);
}

static void *history_main(void *arg)
{
    kn_console_history *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->mu);
        take_sample(h);
        pthread_mutex_lock(&h->mu);
        struct timespec until;
        kn_time_deadline(CLOCK_REALTIME, h->interval_ms, &until);
        while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int kn_console_history_start(const kn_console_hooks *hooks, int64_t interval_ms,
                             kn_console_history **out)
{
    *out = NULL;
    if (!hooks->metrics) return KN_OK;
    kn_console_history *h = kn_calloc(1, sizeof *h);
    if (!h) return KN_ERR_NOMEM;
    h->hooks = hooks;
    h->interval_ms = interval_ms > 0 ? interval_ms : 2000;
    h->text = kn_malloc(METRICS_CAP);
    if (!h->text) {
        kn_free(h);
        return KN_ERR_NOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, history_main, h)) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        kn_free(h->text);
        kn_free(h);
        return KN_ERR_NOMEM;
    }
    *out = h;
    return KN_OK;
}

void kn_console_history_stop(kn_console_history *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    kn_free(h->text);
    kn_free(h);
}

/* {"interval_ms": N, "samples": [{"time_ms": t, "metrics": {name: value}}, ...]}, oldest first. */
static kn_json *history_json(kn_console_history *h)
{
    kn_json *o = kn_json_object(), *arr = kn_json_array();
    kn_json_object_set_new(o, "interval_ms", kn_json_integer(h->interval_ms));
    pthread_mutex_lock(&h->mu);
    for (size_t k = 0; k < h->n; k++) {
        const sample *s = &h->ring[(h->head + k) % KN_CONSOLE_HISTORY];
        kn_json *e = kn_json_object(), *m = kn_json_object();
        kn_json_object_set_new(e, "time_ms", kn_json_integer(s->time_ms));
        for (size_t i = 0; i < N_CHARTED; i++)
            kn_json_object_set_new(m, CHARTED[i], kn_json_real(s->v[i]));
        kn_json_object_set_new(e, "metrics", m);
        kn_json_array_append_new(arr, e);
    }
    pthread_mutex_unlock(&h->mu);
    kn_json_object_set_new(o, "samples", arr);
    return o;
}

/* Prometheus text "name{labels} value" lines -> {"name{labels}": value}. */
static int status_get(kn_console_call *c)
{
    if (!c->hooks->metrics) {
        snprintf(c->msg, sizeof c->msg, "no metrics in this server");
        return KN_ERR_UNAVAILABLE;
    }
    size_t cap = 65536;
    char *buf = kn_malloc(cap);
    if (!buf) return KN_ERR_NOMEM;
    buf[0] = '\0';
    c->hooks->metrics(c->hooks->ud, buf, cap);
    kn_json *m = kn_json_object();
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *sp = strrchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        kn_json_object_set_new(m, line, kn_json_real(strtod(sp + 1, NULL)));
    }
    kn_free(buf);
    c->result = kn_json_object();
    kn_json_object_set_new(c->result, "metrics", m);
    kn_json_object_set_new(c->result, "uptime_ms",
                           kn_json_integer(kn_time_wall_ms() - c->cfg->started_ms));
    kn_json_object_set_new(c->result, "time_ms", kn_json_integer(kn_time_wall_ms()));
    if (c->history) kn_json_object_set_new(c->result, "history", history_json(c->history));
    return KN_OK;
}

const kn_console_route kn_console__status_routes[] = {
    {"GET", "status", KN_CONSOLE_READ_ONLY, status_get},
    {0},
};
