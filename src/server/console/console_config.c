/* console_config: the configuration page (secrets masked by the root's
 * hook) and the runtime page (modules, RPCs, hooks, match handlers, last
 * reload) with the API explorer, which calls an RPC as a chosen user. */
#include "console_internal.h"
#include "kn_account.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <stdio.h>
#include <string.h>

static int from_hook(kn_console_call *c, char *(*fn)(void *), const char *what)
{
    char *text = fn ? fn(c->hooks->ud) : NULL;
    if (!text) {
        snprintf(c->msg, sizeof c->msg, "%s is not available", what);
        return KN_ERR_UNAVAILABLE;
    }
    c->result = kn_json_parse(text, strlen(text), 0, NULL);
    kn_free(text);
    return c->result ? KN_OK : KN_ERR_INTERNAL;
}

static int config_get(kn_console_call *c)
{
    return from_hook(c, c->hooks->config_json, "the configuration");
}

static int runtime_get(kn_console_call *c)
{
    return from_hook(c, c->hooks->runtime_info, "the runtime's description");
}

static int runtime_rpc(kn_console_call *c)
{
    const char *id, *user = kn_console__arg(c, "user_id"), *payload = kn_console__arg(c, "payload");
    int rc;
    if ((rc = kn_console__need(c, "id", &id))) return rc;
    if (!c->hooks->rpc) return KN_ERR_UNAVAILABLE;
    snprintf(c->target, sizeof c->target, "rpc %.100s as %.40s", id, user ? user : "");
    /* As a user: one that exists, with its username in the context. */
    kn_account a = {0};
    if (user && *user && (rc = kn_account_get(c->db, user, &a, c->msg, sizeof c->msg))) return rc;
    char *out = NULL;
    size_t out_len = 0;
    rc = c->hooks->rpc(c->hooks->ud, id, a.user.id, a.user.username ? a.user.username : "",
                       payload ? payload : "", payload ? strlen(payload) : 0, &out, &out_len,
                       c->msg, sizeof c->msg);
    kn_account_deinit(&a);
    if (rc) return rc;
    c->result = kn_console__answer("payload", out, out_len);
    return KN_OK;
}

const kn_console_route kn_console__config_routes[] = {
    {"GET", "config", KN_CONSOLE_READ_ONLY, config_get},
    {0},
};

const kn_console_route kn_console__runtime_routes[] = {
    {"GET", "runtime", KN_CONSOLE_READ_ONLY, runtime_get},
    {"POST", "runtime/rpc", KN_CONSOLE_DEVELOPER, runtime_rpc},
    {0},
};
