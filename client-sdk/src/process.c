/* process: the SDK's process-wide settings (log sink, log level, allocator).
 *
 * They adapt the public types to src/common's kn_log and kn_mem, which the
 * SDK shares with the server. Not synchronised: set them before clients are
 * used from other threads, as kaos.h says. */
#include "kaos.h"
#include "kn_log.h"
#include "kn_mem.h"

#include <assert.h>

_Static_assert(KAOS_LOG_DEBUG == (int)KN_LOG_DEBUG && KAOS_LOG_INFO == (int)KN_LOG_INFO &&
                   KAOS_LOG_WARN == (int)KN_LOG_WARN && KAOS_LOG_ERROR == (int)KN_LOG_ERROR &&
                   KAOS_LOG_OFF == (int)KN_LOG_OFF,
               "KAOS_LOG_* differ from kn_log_level");

static kaos_log_fn user_sink;
static void *user_sink_ud;

/* The public sink has no use for the source location. */
static void forward(kn_log_level level, const char *file, int line, const char *msg, void *ud)
{
    (void)file;
    (void)line;
    (void)ud;
    kaos_log_fn fn = user_sink;
    if (fn) fn((int)level, msg, user_sink_ud);
}

void kaos_set_log_sink(kaos_log_fn fn, void *ud)
{
    user_sink = fn;
    user_sink_ud = ud;
    kn_log_set_sink(fn ? forward : NULL, NULL);
}

void kaos_set_log_level(int level)
{
    if (level < KAOS_LOG_DEBUG) level = KAOS_LOG_DEBUG;
    if (level > KAOS_LOG_OFF) level = KAOS_LOG_OFF;
    kn_log_set_level((kn_log_level)level);
}

void kaos_set_allocator(const kaos_allocator *a)
{
    if (!a) {
        kn_mem_set_allocator(NULL);
        return;
    }
    assert(a->alloc && a->realloc && a->free && "kaos_allocator needs all three functions");
    kn_allocator k = {.alloc = a->alloc, .realloc = a->realloc, .free = a->free, .ud = a->ud};
    kn_mem_set_allocator(&k);
}
