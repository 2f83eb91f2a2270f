/* rpc: client, server-to-server and queued RPCs (kn_rpc.h); all three run
 * through call_rpc on a worker.
 *
 * Threads: kn_rpc_wire_call runs on a worker; kn_rpc_call_blocking on the
 * HTTP thread, sharing a sync_rpc with the worker that runs it (the last of
 * the two to let go frees it, so a timed-out wait leaves nothing behind);
 * kn_rpc_call_async on any thread, handing its async_rpc to the worker,
 * which frees it. */
#include "kn_rpc.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct kn_rpc {
    kn_api *api;
    kn_runtime_services services;
    /* kn_rpc_call_async submits under it and kn_rpc_async_close sets
     * async_closed under it, so no submit runs once close returned. */
    pthread_mutex_t async_lock;
    bool async_closed;
    atomic_uint_fast64_t async_queued, async_refused, async_done, async_failed;
};

int kn_rpc_create(kn_api *api, const kn_runtime_services *script_services, kn_rpc **out)
{
    kn_rpc *rpc = kn_calloc(1, sizeof *rpc);
    *out = rpc;
    if (!rpc) return KN_ERR_NOMEM;
    rpc->api = api;
    rpc->services = *script_services;
    pthread_mutex_init(&rpc->async_lock, NULL);
    return KN_OK;
}

void kn_rpc_destroy(kn_rpc *rpc)
{
    if (!rpc) return;
    pthread_mutex_destroy(&rpc->async_lock);
    kn_free(rpc);
}

/* Worker thread: an RPC by id — a built-in one in C ("kaos." ids), else the
 * runtime's. */
static int call_rpc(kn_api_worker *w, const kn_runtime_context *ctx, bool internal, const char *id,
                    const char *payload, size_t len, char **out, size_t *out_len, char *msg,
                    size_t cap)
{
    if (!strcmp(id, "kaos.noop")) { /* the C ceiling of the RPC path (bench/api) */
        *out = kn_strndup("", 0);
        *out_len = 0;
        return *out ? KN_OK : KN_ERR_NOMEM;
    }
    /* Other "kaos." ids are the server's own calls into scripts (the
     * matchmaker's hook): kn_rpc_call_script only. */
    if (!internal && !strncmp(id, "kaos.", 5)) {
        snprintf(msg, cap, "rpc \"%s\" not found", id);
        return KN_ERR_NOT_FOUND;
    }
    kn_runtime_vm *vm = w->ctx ? kn_runtime_slot_vm(w->ctx) : NULL;
    if (vm) return kn_runtime_rpc(vm, ctx, id, payload, len, out, out_len, msg, cap);
    snprintf(msg, cap, "rpc \"%s\" not found", id);
    return KN_ERR_NOT_FOUND;
}

int kn_rpc_wire_call(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__Rpc *req = kn_req_msg(r)->rpc;
    kn_runtime_services svc;
    kn_runtime_context ctx = kn_req_script_context(r, "rpc", &svc);
    char *out = NULL;
    size_t out_len = 0;
    int rc = call_rpc(kn_req_worker(r), &ctx, false, req->id, req->payload, strlen(req->payload),
                      &out, &out_len, msg, cap);
    if (rc == KN_OK) {
        Kaos__V1__Rpc res = KAOS__V1__RPC__INIT;
        res.id = req->id;
        res.payload = out;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_RPC;
        env.rpc = &res;
        rc = kn_req_reply(r, &env);
    }
    kn_free(out);
    return rc;
}

/* --- server-to-server RPC ------------------------------------------------------- */
/* Shared by the waiting HTTP thread and the worker; the last one out frees it. */
typedef struct sync_rpc {
    kn_rpc *rpc;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    bool done;
    bool internal; /* the server's own call (kn_rpc_call_script) */
    char id[129];
    char *payload;
    size_t len;
    char address[80];
    int rc;
    char *out;
    size_t out_len;
    char msg[256];
} sync_rpc;

static void sync_release(sync_rpc *r)
{
    pthread_mutex_lock(&r->lock);
    int left = --r->refs;
    pthread_mutex_unlock(&r->lock);
    if (left) return;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    kn_free(r->payload);
    kn_free(r->out);
    kn_free(r);
}

static void run_sync_rpc(kn_api_worker *w, void *arg)
{
    sync_rpc *r = arg;
    kn_runtime_services svc = r->rpc->services;
    svc.db = w->db;
    kn_runtime_context ctx = {"", "", "", r->address, "rpc", NULL, 0, &svc};
    r->rc = call_rpc(w, &ctx, r->internal, r->id, r->payload, r->len, &r->out, &r->out_len, r->msg,
                     sizeof r->msg);
    pthread_mutex_lock(&r->lock);
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    sync_release(r);
}

static int call_blocking(kn_rpc *rpc, bool internal, const char *id, const char *payload,
                         size_t len, const char *client_address, int64_t timeout_ms, char **out,
                         size_t *out_len, char *msg, size_t cap);

int kn_rpc_call_blocking(kn_rpc *rpc, const char *id, const char *payload, size_t len,
                         const char *client_address, int64_t timeout_ms, char **out,
                         size_t *out_len, char *msg, size_t cap)
{
    return call_blocking(rpc, false, id, payload, len, client_address, timeout_ms, out, out_len,
                         msg, cap);
}

int kn_rpc_call_script(kn_rpc *rpc, const char *id, const char *payload, size_t len,
                       int64_t timeout_ms, char **out, size_t *out_len, char *msg, size_t cap)
{
    return call_blocking(rpc, true, id, payload, len, "", timeout_ms, out, out_len, msg, cap);
}

static int call_blocking(kn_rpc *rpc, bool internal, const char *id, const char *payload,
                         size_t len, const char *client_address, int64_t timeout_ms, char **out,
                         size_t *out_len, char *msg, size_t cap)
{
    *out = NULL;
    *out_len = 0;
    if (!*id || strlen(id) > 128) {
        snprintf(msg, cap, "rpc id must be 1-128 bytes");
        return KN_ERR_INVALID_ARGUMENT;
    }
    sync_rpc *r = kn_calloc(1, sizeof *r);
    if (!r) return KN_ERR_NOMEM;
    r->payload = kn_malloc(len + 1);
    if (!r->payload) {
        kn_free(r);
        return KN_ERR_NOMEM;
    }
    memcpy(r->payload, payload, len);
    r->payload[len] = '\0';
    r->len = len;
    r->rpc = rpc;
    r->internal = internal;
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->address, sizeof r->address, "%s", client_address ? client_address : "");
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->refs = 2;
    int rc = kn_api_submit(rpc->api, run_sync_rpc, r);
    if (rc) {
        r->refs = 1;
        sync_release(r);
        snprintf(msg, cap, "%s",
                 rc == KN_ERR_UNAVAILABLE ? "server is shutting down" : "server busy; retry");
        return rc;
    }
    struct timespec until;
    kn_time_deadline(CLOCK_REALTIME, timeout_ms, &until);
    pthread_mutex_lock(&r->lock);
    int wait = 0;
    while (!r->done && wait != ETIMEDOUT)
        wait = pthread_cond_timedwait(&r->cond, &r->lock, &until);
    bool done = r->done;
    pthread_mutex_unlock(&r->lock);
    if (!done) {
        snprintf(msg, cap, "rpc timed out");
        sync_release(r); /* the worker frees it when it finishes */
        return KN_ERR_DEADLINE_EXCEEDED;
    }
    rc = r->rc;
    snprintf(msg, cap, "%s", r->msg);
    if (rc == KN_OK) {
        *out = r->out;
        *out_len = r->out_len;
        r->out = NULL;
    }
    sync_release(r);
    return rc;
}

/* --- queued RPC (fire and forget) ------------------------------------------------ */
/* Owned by the queue, then by the worker that runs it. */
typedef struct async_rpc {
    kn_rpc *rpc;
    char id[129];
    size_t len;
    char payload[]; /* len bytes and a NUL */
} async_rpc;

static void run_async_rpc(kn_api_worker *w, void *arg)
{
    async_rpc *a = arg;
    kn_runtime_services svc = a->rpc->services;
    svc.db = w->db;
    kn_runtime_context ctx = {"", "", "", "", "async", NULL, 0, &svc};
    char *out = NULL, msg[256] = "";
    size_t out_len = 0;
    int rc = call_rpc(w, &ctx, false, a->id, a->payload, a->len, &out, &out_len, msg, sizeof msg);
    if (rc == KN_OK) {
        atomic_fetch_add(&a->rpc->async_done, 1);
        KN_DEBUG("async rpc \"%s\": %.*s", a->id, out_len > 200 ? 200 : (int)out_len, out);
    } else {
        atomic_fetch_add(&a->rpc->async_failed, 1);
        KN_WARN("async rpc \"%s\" failed: %s: %s", a->id, kn_err_text(rc), msg);
    }
    kn_free(out);
    kn_free(a);
}

int kn_rpc_call_async(kn_rpc *rpc, const char *id, const char *payload, size_t len, char *msg,
                      size_t cap)
{
    size_t id_len = strlen(id);
    if (id_len == 0 || id_len > 128) {
        snprintf(msg, cap, "rpc id must be 1-128 bytes");
        return KN_ERR_INVALID_ARGUMENT;
    }
    if (len > KN_RPC_ASYNC_MAX_PAYLOAD) {
        snprintf(msg, cap, "payload of %zu bytes is over the limit of %d", len,
                 KN_RPC_ASYNC_MAX_PAYLOAD);
        return KN_ERR_INVALID_ARGUMENT;
    }
    async_rpc *a = kn_malloc(sizeof *a + len + 1);
    if (!a) {
        snprintf(msg, cap, "out of memory");
        return KN_ERR_NOMEM;
    }
    a->rpc = rpc;
    memcpy(a->id, id, id_len + 1);
    memcpy(a->payload, payload, len);
    a->payload[len] = '\0';
    a->len = len;
    pthread_mutex_lock(&rpc->async_lock);
    int rc = rpc->async_closed ? KN_ERR_UNAVAILABLE : kn_api_submit(rpc->api, run_async_rpc, a);
    pthread_mutex_unlock(&rpc->async_lock);
    if (rc) {
        kn_free(a);
        atomic_fetch_add(&rpc->async_refused, 1);
        snprintf(msg, cap, "%s",
                 rc == KN_ERR_UNAVAILABLE ? "server is shutting down"
                                          : "the API queue is full; try again later");
        return rc;
    }
    atomic_fetch_add(&rpc->async_queued, 1);
    return KN_OK;
}

void kn_rpc_async_close(kn_rpc *rpc)
{
    if (!rpc) return;
    pthread_mutex_lock(&rpc->async_lock);
    rpc->async_closed = true;
    pthread_mutex_unlock(&rpc->async_lock);
}

void kn_rpc_stats_get(kn_rpc *rpc, kn_rpc_stats *out)
{
    out->async_queued = atomic_load(&rpc->async_queued);
    out->async_refused = atomic_load(&rpc->async_refused);
    out->async_done = atomic_load(&rpc->async_done);
    out->async_failed = atomic_load(&rpc->async_failed);
}
