/* kn_console: the admin console — a web UI and its JSON API (/v2/console/...)
 * on a port of its own, served by kn_http, with console users, sessions,
 * CSRF tokens, roles and an audit log in Postgres (migration 0014).
 *
 * The API calls the services' own C functions (kn_account_*, kn_storage_*,
 * ...), the same ones the wire and Lua call; what only the running server
 * knows (its counters, live sessions, the runtime) comes through the hooks
 * the composition root hands in. Routes live in one file per service
 * (console_<service>.c) named once in KN_CONSOLE_SERVICES
 * (console_internal.h); pages in assets/pages/<service>.js.
 *
 * Access: a session token, from POST /v2/console/login (as the HttpOnly,
 * SameSite=Strict cookie `kaos_console`) or POST /v2/console/token (in the
 * body, for scripts, sent back as "Authorization: Bearer <token>"). A write
 * made with the cookie must carry the session's CSRF token in the header
 * X-Kaos-Csrf; a bearer token needs none (no browser sends it by itself).
 * Every route names the least role that may call it; every write, refused
 * or done, is a row of the audit log.
 *
 * Threads: kn_console_start's listener calls into the console on
 * libmicrohttpd's threads; each request borrows a Postgres connection of the
 * console's own small pool. The user functions below take the caller's
 * connection (the CLI's). Errors: KN_OK or a negative kn_err with a reason
 * in msg. */
#ifndef KN_CONSOLE_H
#define KN_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_console kn_console;
typedef struct kn_out kn_out;
typedef struct kn_match_engine kn_match_engine;
typedef struct kn_chat kn_chat;
typedef struct kn_leaderboards kn_leaderboards;
typedef struct kn_matchmaker kn_matchmaker;
typedef struct kn_parties kn_parties;

/* Roles, least to most: each may do what the ones below it may. */
typedef enum kn_console_role {
    KN_CONSOLE_READ_ONLY = 0,  /* read every page; no write */
    KN_CONSOLE_MAINTAINER = 1, /* + ban/unban, end sessions, send notifications, signal matches */
    KN_CONSOLE_DEVELOPER = 2,  /* + edit profiles, storage, unlink, delete, call RPCs */
    KN_CONSOLE_ADMIN = 3,      /* + console users */
} kn_console_role;

#define KN_CONSOLE_TOKEN_LEN    43 /* base64url of 32 random bytes */
#define KN_CONSOLE_CSRF_LEN     43
#define KN_CONSOLE_USERNAME_MAX 64
#define KN_CONSOLE_PASSWORD_MIN 8

/* "admin", "developer", "maintainer", "read-only" <-> the enum.
 * kn_console_role_parse: INVALID_ARGUMENT for any other text. */
int kn_console_role_parse(const char *text, kn_console_role *out);
const char *kn_console_role_name(kn_console_role role);

/* The value of cookie `name` in a Cookie header ("a=1; b=2") into out
 * (cap bytes, NUL included). NOT_FOUND when absent, INVALID_ARGUMENT when
 * the value does not fit or holds characters a token never has. No
 * allocation; any thread (fuzzed: tests/fuzz/fuzz_console.c). */
int kn_console_cookie_get(const char *header, const char *name, char *out, size_t cap);

/* The bearer token of an Authorization header ("Bearer <token>") into out,
 * with the cookie's rules (NOT_FOUND, INVALID_ARGUMENT). */
int kn_console_bearer_get(const char *authorization, char *out, size_t cap);
/* A decimal integer argument (query string) in [lo, hi]: the whole text,
 * optional sign, no spaces. INVALID_ARGUMENT otherwise. */
int kn_console_int_parse(const char *text, int64_t lo, int64_t hi, int64_t *out);
/* A POST body: empty, or a JSON object without duplicate keys. KN_OK or
 * INVALID_ARGUMENT. *out (may be NULL) gets the parsed object as an opaque
 * kn_json reference the caller releases with kn_json_decref. */
typedef struct kn_json kn_json;
int kn_console_body_parse(const char *body, size_t len, kn_json **out);

/* --- console users (the CLI and the first start) ----------------------------------------- */

int kn_console_user_add(kn_db *db, const char *username, const char *password, kn_console_role role,
                        char *msg, size_t msg_cap);
/* New password; the user's sessions end. NOT_FOUND for an unknown user. */
int kn_console_user_passwd(kn_db *db, const char *username, const char *password, char *msg,
                           size_t msg_cap);
int kn_console_user_remove(kn_db *db, const char *username, char *msg, size_t msg_cap);
/* When there is no console user: creates `admin` with `password`, or with a
 * generated one written into generated (cap >= 33) when password is "".
 * *created tells whether it did. */
int kn_console_bootstrap(kn_db *db, const char *password, char *generated, size_t cap,
                         bool *created, char *msg, size_t msg_cap);

/* --- sessions ------------------------------------------------------------------------------ */

/* Who a session belongs to. */
typedef struct kn_console_who {
    int64_t user_id;
    char username[KN_CONSOLE_USERNAME_MAX + 1];
    kn_console_role role;
    char csrf[KN_CONSOLE_CSRF_LEN + 1];
} kn_console_who;

/* Checks the password and opens a session of ttl_sec seconds: its token
 * into token. A wrong username or password: UNAUTHENTICATED "wrong username
 * or password" (the same text for both). */
int kn_console_login(kn_db *db, const char *username, const char *password, int64_t ttl_sec,
                     char token[KN_CONSOLE_TOKEN_LEN + 1], kn_console_who *who, char *msg,
                     size_t msg_cap);
/* The session of token: UNAUTHENTICATED when unknown or expired. */
int kn_console_session_get(kn_db *db, const char *token, kn_console_who *who);
int kn_console_logout(kn_db *db, const char *token);
/* KN_OK when `role` may use a route needing `need`, else PERMISSION_DENIED. */
int kn_console_role_check(kn_console_role role, kn_console_role need);
/* True when the header's CSRF token is the session's (constant time). */
bool kn_console_csrf_ok(const kn_console_who *who, const char *header);

/* One row of the audit log. result: 0 or the refusal's kn_err. */
int kn_console_audit(kn_db *db, const kn_console_who *who, const char *action, const char *target,
                     const char *detail, int result, const char *address);

/* --- the listener ------------------------------------------------------------------------ */

/* What only the running server knows, from the composition root. Each may
 * be NULL (the console then says the feature is unavailable). Any thread. */
typedef struct kn_console_hooks {
    /* The /metrics text (the same counters). */
    void (*metrics)(void *ud, char *buf, size_t cap);
    /* Ends the user's sessions on this node (a ban or deletion closes them). */
    int (*end_sessions)(void *ud, const char *user_id, bool ban);
    /* Live connections of the user on this node. */
    size_t (*user_conns)(void *ud, const char *user_id);
    /* The runtime's modules, RPCs, hooks, match handlers, last reload, as a
     * kn_malloc'd JSON object. */
    char *(*runtime_info)(void *ud);
    /* Calls RPC id as user_id and username ("" = none); *out kn_malloc'd. */
    int (*rpc)(void *ud, const char *id, const char *user_id, const char *username,
               const char *payload, size_t len, char **out, size_t *out_len, char *msg, size_t cap);
    /* The configuration, secrets masked, as a kn_malloc'd JSON object. */
    char *(*config_json)(void *ud);
    void *ud;
    kn_out *out;                   /* notifications to online users */
    kn_match_engine *matches;      /* live matches, signals */
    kn_chat *chat;                 /* channel history, message removal */
    kn_leaderboards *leaderboards; /* boards and records */
    kn_matchmaker *matchmaker;     /* tickets waiting, recent passes */
    kn_parties *parties;           /* parties and their members */
} kn_console_hooks;

typedef struct kn_console_config {
    const char *bind;
    uint16_t port; /* 0 = any free port */
    const char *database_url;
    int64_t session_ttl_sec;
    uint32_t lockout_failures; /* failed logins per username and per address (0 = none) */
    int64_t lockout_ms;
    size_t max_body;
    int64_t started_ms; /* the server's start, for uptime */
    bool secure_cookie; /* mark the session cookie Secure (the console is served behind TLS) */
    int64_t history_interval_ms; /* Status page history: one sample this often (0 = 2000) */
} kn_console_config;

int kn_console_start(const kn_console_config *cfg, const kn_console_hooks *hooks, kn_console **out);
uint16_t kn_console_port(const kn_console *c);
void kn_console_stop(kn_console *c); /* accepts NULL; waits for requests to end */

#endif
