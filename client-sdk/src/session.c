/* session: the client's copy of its current session.
 *
 * The strings of a received Session die with its envelope, but the session
 * must outlive it (kaos_client_session, kaos_client_session_refresh), so it
 * is copied. A new session replaces the old one only once every copy
 * succeeded: a failed copy never leaves a half-written session behind. */
#include "client_internal.h"
#include "kn_error.h"
#include "kn_mem.h"

static void free_strings(kaos_stored_session *s)
{
    kn_free(s->token);
    kn_free(s->refresh_token);
    kn_free(s->user_id);
    kn_free(s->username);
    kn_free(s->session_id);
    *s = (kaos_stored_session){0};
}

/* protobuf-c gives absent proto3 strings as "", but be safe with NULL. */
static char *copy(const char *s)
{
    return kn_strdup(s ? s : "");
}

int kaos_client__session_store(kaos_client *c, const Kaos__V1__Session *s)
{
    kaos_stored_session next = {
        .token = copy(s->token),
        .refresh_token = copy(s->refresh_token),
        .user_id = copy(s->user_id),
        .username = copy(s->username),
        .session_id = copy(s->session_id),
    };
    if (!next.token || !next.refresh_token || !next.user_id || !next.username || !next.session_id) {
        free_strings(&next);
        return KN_ERR_NOMEM;
    }
    next.view = (kaos_session){
        .token = next.token,
        .refresh_token = next.refresh_token,
        .user_id = next.user_id,
        .username = next.username,
        .session_id = next.session_id,
        .created = s->created,
    };
    kaos_client__session_clear(c);
    c->session = next;
    c->has_session = true;
    return KN_OK;
}

void kaos_client__session_clear(kaos_client *c)
{
    free_strings(&c->session);
    c->has_session = false;
}
