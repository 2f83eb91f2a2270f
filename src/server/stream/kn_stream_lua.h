/* kn_stream_lua: the stream functions of `kaos` — put sessions on streams,
 * list them, send to them (stream_lua.c; the script API is in
 * docs/lua-api.md, the model in docs/streams.md).
 *
 * The composition root registers them as one binding whose ud is a
 * kn_stream_lua it fills before serving:
 *
 *     kn_lua_binding b = {"streams", kn_stream_lua_funcs, &stream_lua};
 *
 * They act on sessions connected to this node, found through the session
 * registry; a session that is not connected here is NOT_FOUND "session not
 * found". Streams of mode 5 (relayed matches) belong to the match service:
 * scripts may list, count and send to them but not change them. They need
 * no database and run in every mode (RPCs, hooks, match handlers). */
#ifndef KN_STREAM_LUA_H
#define KN_STREAM_LUA_H

#include "kn_lua_bind.h"

typedef struct kn_tracker kn_tracker;
typedef struct kn_sessions kn_sessions;
typedef struct kn_out kn_out;

typedef struct kn_stream_lua {
    kn_tracker *tracker; /* NULL until set: the functions refuse */
    kn_sessions *sessions;
    kn_out *out;
} kn_stream_lua;

/* stream_user_join, _update, _leave, _kick, _list, _get, stream_count,
 * stream_send, stream_close. */
extern const luaL_Reg kn_stream_lua_funcs[];

#endif
