/* sessionlane: the fixture of sessionlane.h. The lane's and the sink's ud
 * is the sessionlane (it must not move while open). */
#include "sessionlane.h"
#include "kn_error.h"
#include "kn_time.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static int l_send(void *ud, const kn_conn_id *to, size_t n, uint8_t ch, const uint8_t *d,
                  size_t len, bool rel)
{
    ((sessionlane *)ud)->lane_sends += n;
    return KN_OK;
}
static void l_close(void *ud, kn_conn_id id, uint32_t reason) {}
static int l_post(void *ud, void (*fn)(void *), void *arg)
{
    fn(arg); /* one thread: run at once */
    return KN_OK;
}
static bool l_here(void *ud)
{
    return true;
}
static void *l_data(void *ud, kn_conn_id id)
{
    sessionlane *t = ud;
    for (size_t i = 0; i < t->n; i++)
        if (t->ids[i] == id) return t->sessions[i];
    return NULL;
}
static void l_auth(void *ud, kn_conn_id id) {}
static bool l_violation(void *ud, kn_conn_id id)
{
    return false;
}
static bool l_overloaded(void *ud)
{
    return false;
}

static int sink(void *ud, const kn_conn_id *to, size_t n, uint8_t channel, const uint8_t *data,
                size_t len, bool reliable)
{
    sessionlane *t = ud;
    t->tracker_sends++;
    t->tracker_recips += n;
    return KN_OK;
}

static void leave_streams(void *ud, kn_session *s)
{
    kn_tracker_untrack_all(ud, s->conn);
}

void sessionlane_open(sessionlane *t, bool leave_on_unbind)
{
    *t = (sessionlane){0};
    assert_int_equal(kn_out_create(1, &t->out), KN_OK);
    kn_out_lane l = {.send_many = l_send,
                     .close = l_close,
                     .post_fn = l_post,
                     .on_thread = l_here,
                     .conn_data = l_data,
                     .set_authenticated = l_auth,
                     .violation = l_violation,
                     .overloaded = l_overloaded,
                     .ud = t};
    kn_out_attach_lane(t->out, 0, &l);
    assert_int_equal(kn_sessions_create(t->out, &t->ss), KN_OK);
    kn_out_directory dir = kn_sessions_directory(t->ss);
    kn_out_set_directory(t->out, &dir);
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    kn_tracker_sink ts = {sink, t};
    assert_int_equal(kn_tracker_create(&cfg, &ts, &t->tracker), KN_OK);
    if (leave_on_unbind)
        assert_int_equal(kn_sessions_on_unbind(t->ss, leave_streams, t->tracker), KN_OK);
}

kn_conn_id sessionlane_bind(sessionlane *t, const char *user, const char *username,
                            const char *session)
{
    assert_true(t->n < SESSIONLANE_MAX);
    kn_conn_id id = ((kn_conn_id)3 << 32) | (t->n + 1);
    kn_session *s = kn_sessions_open(t->ss, id, "127.0.0.1:9", 0x0100007f);
    assert_non_null(s);
    kn_token_claims c = {.expires_at = kn_time_wall_ms() / 1000 + 3600};
    snprintf(c.user_id, sizeof c.user_id, "%s", user);
    snprintf(c.username, sizeof c.username, "%s", username);
    snprintf(c.session_id, sizeof c.session_id, "%s", session);
    char msg[64];
    assert_int_equal(kn_sessions_bind(t->ss, s, &c, false, kn_time_mono_ms(), msg, sizeof msg),
                     KN_OK);
    t->ids[t->n] = id;
    t->sessions[t->n++] = s;
    return id;
}

void sessionlane_close(sessionlane *t)
{
    for (size_t i = 0; i < t->n; i++)
        kn_sessions_close(t->ss, t->sessions[i]);
    kn_tracker_destroy(t->tracker);
    kn_sessions_destroy(t->ss);
    kn_out_destroy(t->out);
}
