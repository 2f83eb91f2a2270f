/* kn_chat_wire: the chat service's routes (docs/chat.md): proto <-> C
 * around kn_chat, acting as the caller's session (its connection joins,
 * sends and leaves). The route's service context is the kn_chat. Leave runs
 * on the network thread; join, the message operations and the history on
 * a worker (they read Postgres). */
#ifndef KN_CHAT_WIRE_H
#define KN_CHAT_WIRE_H

#include "kn_pipeline.h"

int kn_chat_wire_join(kn_req *r, char *msg, size_t cap);
int kn_chat_wire_leave(kn_req *r, char *msg, size_t cap);
int kn_chat_wire_send(kn_req *r, char *msg, size_t cap);
int kn_chat_wire_update(kn_req *r, char *msg, size_t cap);
int kn_chat_wire_remove(kn_req *r, char *msg, size_t cap);
int kn_chat_wire_list(kn_req *r, char *msg, size_t cap);

#endif
