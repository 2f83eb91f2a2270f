/* net_alloc: ENet's allocator in the server — kn_recycle's per-thread
 * cache, so the packets, commands and fragments ENet allocates for every
 * datagram come from blocks the network thread freed a moment earlier.
 *
 * ENet's callbacks are process-wide, and the client SDK installs its own
 * (kn_malloc/kn_free) when it lives in the same process (tests): blocks of
 * either side are plain C-library blocks, so each may free the other's.
 * Out of memory calls ENet's default (abort), as ENet's own malloc would. */
#include "net_internal.h"
#include "kn_recycle.h"

#include <enet/enet.h>

bool kn_net_alloc_pooled(void)
{
    return kn_recycle_enabled();
}

int kn_net_alloc_init(void)
{
    ENetCallbacks cb = {.malloc = kn_recycle_alloc, .free = kn_recycle_free, .no_memory = NULL};
    return enet_initialize_with_callbacks(ENET_VERSION, &cb);
}
