/* sessionlane: a session registry with bound sessions on one fake network
 * lane (this thread: posts run at once), and a stream tracker whose sink
 * counts what it sends — the fixture of the tests of tracker-based
 * services' Lua bindings (streams, status, parties). Single-threaded. */
#ifndef KN_TEST_SESSIONLANE_H
#define KN_TEST_SESSIONLANE_H

#include "kn_out.h"
#include "kn_session.h"
#include "kn_stream.h"

#include <stdbool.h>
#include <stddef.h>

#define SESSIONLANE_MAX 4

typedef struct sessionlane {
    kn_out *out;
    kn_sessions *ss;
    kn_tracker *tracker;
    kn_conn_id ids[SESSIONLANE_MAX];
    kn_session *sessions[SESSIONLANE_MAX];
    size_t n;
    size_t lane_sends;     /* recipients of sends through kn_out */
    size_t tracker_sends;  /* sends through the tracker's sink */
    size_t tracker_recips; /* their recipients in all */
} sessionlane;

/* Makes out, ss (the directory of out) and tracker; with leave_on_unbind an
 * unbound session leaves its streams, as the server wires it. Fails the
 * current test on error. */
void sessionlane_open(sessionlane *t, bool leave_on_unbind);
/* A new connection bound to (user, username, session); its id. */
kn_conn_id sessionlane_bind(sessionlane *t, const char *user, const char *username,
                            const char *session);
/* Closes the sessions, then destroys tracker, ss and out. */
void sessionlane_close(sessionlane *t);

#endif
