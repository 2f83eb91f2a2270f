/* auth_wire: the auth routes (kn_auth_wire.h).
 *
 * Failed logins count against the account and the source address (unknown
 * accounts, wrong passwords, bad or expired tokens; invalid input does
 * not); a locked account or address is refused before the service runs. */
#include "kn_auth_wire.h"
#include "kn_auth.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <stdio.h>
#include <string.h>

/* A request's vars map viewed as session vars (no copies): each map entry
 * type is its own struct, with key and value alike. */
typedef struct vars_view {
    kn_token_var v[KN_TOKEN_MAX_VARS];
    size_t n;
    bool too_many;
} vars_view;

#define VIEW_VARS(view, msg_)                                                                      \
    do {                                                                                           \
        (view).too_many = (msg_)->n_vars > KN_TOKEN_MAX_VARS;                                      \
        (view).n = (view).too_many ? 0 : (msg_)->n_vars;                                           \
        for (size_t i_ = 0; i_ < (view).n; i_++)                                                   \
            (view).v[i_] = (kn_token_var){(msg_)->vars[i_]->key, (msg_)->vars[i_]->value};         \
    } while (0)

static int too_many_vars(char *msg, size_t cap)
{
    snprintf(msg, cap, "at most %d session vars", KN_TOKEN_MAX_VARS);
    return KN_ERR_INVALID_ARGUMENT;
}

/* The Session reply, bound to the caller's connection by the pipeline. */
static int reply_session(kn_req *r, kn_session_grant *s, bool resume)
{
    Kaos__V1__Session sess = KAOS__V1__SESSION__INIT;
    sess.token = s->token;
    sess.refresh_token = s->refresh_token ? s->refresh_token : ""; /* resume */
    sess.created = s->created;
    sess.user_id = s->claims.user_id;
    sess.username = s->claims.username;
    sess.session_id = s->claims.session_id;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_SESSION;
    env.session = &sess;
    int rc = kn_req_reply(r, &env);
    if (rc == KN_OK) rc = kn_req_effect_bind(r, &s->claims, resume);
    return rc;
}

/* The three logins share one shape: an account key for the lockout, the
 * session vars, and a service call. */
typedef int (*login_fn)(kn_req *r, const kn_token_var *vars, size_t n_vars, kn_session_grant *out,
                        char *msg, size_t cap);

static int login(kn_req *r, const char *account, const vars_view *vars, login_fn call, char *msg,
                 size_t cap)
{
    int rc = kn_req_login_locked(r, account, msg, cap);
    if (rc) return rc;
    if (vars->too_many) return too_many_vars(msg, cap);
    kn_session_grant s = {0};
    rc = call(r, vars->v, vars->n, &s, msg, cap);
    if (rc == KN_ERR_NOT_FOUND || rc == KN_ERR_UNAUTHENTICATED)
        kn_req_login_failed(r, account);
    else if (rc == KN_OK)
        kn_req_login_succeeded(r, account);
    if (rc == KN_OK) rc = reply_session(r, &s, false);
    kn_session_grant_deinit(&s);
    return rc;
}

static int64_t now_sec(void)
{
    return kn_time_wall_ms() / 1000;
}

static int call_device(kn_req *r, const kn_token_var *vars, size_t n, kn_session_grant *out,
                       char *msg, size_t cap)
{
    Kaos__V1__AuthenticateDevice *a = kn_req_msg(r)->authenticate_device;
    return kn_auth_device(kn_req_service(r), kn_req_worker(r)->db, a->device_id, a->username,
                          a->create, vars, n, now_sec(), out, msg, cap);
}

int kn_auth_wire_device(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__AuthenticateDevice *a = kn_req_msg(r)->authenticate_device;
    char account[300];
    snprintf(account, sizeof account, "device:%.128s", a->device_id);
    vars_view v;
    VIEW_VARS(v, a);
    return login(r, account, &v, call_device, msg, cap);
}

static int call_email(kn_req *r, const kn_token_var *vars, size_t n, kn_session_grant *out,
                      char *msg, size_t cap)
{
    Kaos__V1__AuthenticateEmail *a = kn_req_msg(r)->authenticate_email;
    return kn_auth_email(kn_req_service(r), kn_req_worker(r)->db, a->email, a->password,
                         a->username, a->create, vars, n, now_sec(), out, msg, cap);
}

int kn_auth_wire_email(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__AuthenticateEmail *a = kn_req_msg(r)->authenticate_email;
    char account[300];
    snprintf(account, sizeof account, "email:%.255s", a->email);
    for (char *p = account; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a'); /* emails compare folded */
    vars_view v;
    VIEW_VARS(v, a);
    return login(r, account, &v, call_email, msg, cap);
}

static int call_custom(kn_req *r, const kn_token_var *vars, size_t n, kn_session_grant *out,
                       char *msg, size_t cap)
{
    Kaos__V1__AuthenticateCustom *a = kn_req_msg(r)->authenticate_custom;
    return kn_auth_custom(kn_req_service(r), kn_req_worker(r)->db, a->id, a->username, a->create,
                          vars, n, now_sec(), out, msg, cap);
}

int kn_auth_wire_custom(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__AuthenticateCustom *a = kn_req_msg(r)->authenticate_custom;
    char account[300];
    snprintf(account, sizeof account, "custom:%.128s", a->id);
    vars_view v;
    VIEW_VARS(v, a);
    return login(r, account, &v, call_custom, msg, cap);
}

int kn_auth_wire_refresh(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__SessionRefresh *q = kn_req_msg(r)->session_refresh;
    vars_view v;
    VIEW_VARS(v, q);
    if (v.too_many) return too_many_vars(msg, cap);
    kn_session_grant s = {0};
    int rc = kn_session_refresh(kn_auth_sessions(kn_req_service(r)), kn_req_worker(r)->db,
                                q->refresh_token, v.v, v.n, now_sec(), &s, msg, cap);
    if (rc == KN_ERR_TOKEN_INVALID || rc == KN_ERR_TOKEN_EXPIRED || rc == KN_ERR_UNAUTHENTICATED)
        kn_req_login_failed(r, NULL);
    if (rc == KN_OK) rc = reply_session(r, &s, false);
    kn_session_grant_deinit(&s);
    return rc;
}

/* SessionResume: the token must verify and its session still be live in
 * Postgres (not logged out, superseded by a refresh, banned or deleted, also
 * across restarts), and not be in the revocation set. */
int kn_auth_wire_resume(kn_req *r, char *msg, size_t cap)
{
    const char *token = kn_req_msg(r)->session_resume->token;
    kn_session_grant s = {0};
    int rc = kn_session_verify(kn_auth_sessions(kn_req_service(r)), token, now_sec(), &s.claims);
    if (rc) {
        kn_req_login_failed(r, NULL);
        snprintf(msg, cap, "%s",
                 rc == KN_ERR_TOKEN_EXPIRED ? "session token expired" : "session token invalid");
        return rc;
    }
    rc = kn_session_live(kn_req_worker(r)->db, s.claims.session_id, s.claims.user_id, msg, cap);
    if (rc == KN_ERR_UNAUTHENTICATED) kn_req_login_failed(r, NULL);
    /* A session the server ended (logout, ban, deletion) is refused with
     * why, whatever Postgres said; the bind checks again for an end that
     * lands while this runs. */
    if (kn_sessions_revoked(kn_req_sessions(r), s.claims.session_id, msg, cap)) {
        if (rc == KN_OK) kn_req_login_failed(r, NULL);
        rc = KN_ERR_UNAUTHENTICATED;
    }
    if (rc == KN_OK) rc = (s.token = kn_strndup(token, strlen(token))) ? KN_OK : KN_ERR_NOMEM;
    if (rc == KN_OK) rc = reply_session(r, &s, true);
    kn_session_grant_deinit(&s);
    return rc;
}

/* The token stays verifiable until it expires: the effect remembers it is
 * dead (also when this connection has gone) and unbinds every connection
 * that resumed the same session. */
int kn_auth_wire_logout(kn_req *r, char *msg, size_t cap)
{
    const kn_caller *c = kn_req_caller(r);
    int rc = kn_session_logout(kn_req_worker(r)->db, c->session_id, c->user_id);
    if (rc == KN_OK) rc = kn_req_ack(r);
    if (rc == KN_OK)
        rc = kn_req_effect_end_sessions(r, c->user_id, c->session_id, KN_SESSION_END_LOGOUT, false,
                                        c->expires_at);
    return rc;
}
