/* kn_storage_wire: the storage service's routes (docs/storage.md): proto
 * <-> C around kn_storage, with the rights of the session's user. Worker
 * routes; no service context. */
#ifndef KN_STORAGE_WIRE_H
#define KN_STORAGE_WIRE_H

#include "kn_pipeline.h"

int kn_storage_wire_write(kn_req *r, char *msg, size_t cap);
int kn_storage_wire_read(kn_req *r, char *msg, size_t cap);
int kn_storage_wire_delete(kn_req *r, char *msg, size_t cap);
int kn_storage_wire_list(kn_req *r, char *msg, size_t cap);

#endif
