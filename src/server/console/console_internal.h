/* console_internal: the console's route registry, shared by its files.
 *
 * A service's console routes live in console_<service>.c as a table
 * `kn_console__<service>_routes[]` ending with an empty row, and the service
 * is named once in KN_CONSOLE_SERVICES; its page is assets/pages/<service>.js
 * (embedded by the build). Nothing else changes to add one.
 *
 * A route is exact: method and path (ids travel as query arguments or in
 * the JSON body). POST routes are writes: the dispatcher checks the CSRF
 * token (cookie sessions) and writes the audit row, with c->target and the
 * result. Handlers run on a listener thread with c->db borrowed for the
 * call; they set c->result (a JSON object, taken) or return an error with
 * the reason in c->msg. */
#ifndef KN_CONSOLE_INTERNAL_H
#define KN_CONSOLE_INTERNAL_H

#include "kn_console.h"
#include "kn_http.h"
#include "kn_json.h"

typedef struct kn_entity kn_entity;

typedef struct kn_console_history kn_console_history;

typedef struct kn_console_call {
    const kn_console_hooks *hooks;
    kn_console_history *history; /* the Status page's samples (console_status.c) */
    const kn_console_config *cfg;
    kn_db *db;
    const kn_console_who *who;
    const kn_http_request *req;
    kn_json *body;   /* the POST body (an object), NULL for GET */
    kn_json *result; /* set by the handler */
    char target[256];
    char msg[256];
} kn_console_call;

typedef int (*kn_console_fn)(kn_console_call *c);

/* The Status page's history: a thread samples the charted metrics every
 * interval_ms into a ring of the last KN_CONSOLE_HISTORY samples, so a page
 * opened now charts the last minutes. NULL hooks->metrics: no thread. */
#define KN_CONSOLE_HISTORY 150
int kn_console_history_start(const kn_console_hooks *hooks, int64_t interval_ms,
                             kn_console_history **out);
void kn_console_history_stop(kn_console_history *h); /* accepts NULL */

typedef struct kn_console_route {
    const char *method; /* "GET" or "POST" (a write) */
    const char *path;   /* after /v2/console/ */
    kn_console_role need;
    kn_console_fn fn;
} kn_console_route;

#define KN_CONSOLE_SERVICES(X)                                                                     \
    X(status)                                                                                      \
    X(accounts)                                                                                    \
    X(storage)                                                                                     \
    X(matches)                                                                                     \
    X(groups)                                                                                      \
    X(chat)                                                                                        \
    X(leaderboards)                                                                                \
    X(tournaments)                                                                                 \
    X(matchmaker)                                                                                  \
    X(parties)                                                                                     \
    X(notifications)                                                                               \
    X(runtime)                                                                                     \
    X(config)                                                                                      \
    X(audit)                                                                                       \
    X(users)

#define KN_CONSOLE__DECLARE(name) extern const kn_console_route kn_console__##name##_routes[];
KN_CONSOLE_SERVICES(KN_CONSOLE__DECLARE)
#undef KN_CONSOLE__DECLARE

/* An argument: the query string's for GET, the body's string member for
 * POST; NULL when absent (or not a string). */
const char *kn_console__arg(const kn_console_call *c, const char *name);
/* An integer argument in [lo, hi]; def when absent. INVALID_ARGUMENT (with
 * c->msg) when present but not such a number. */
int kn_console__int_arg(kn_console_call *c, const char *name, int64_t def, int64_t lo, int64_t hi,
                        int64_t *out);
/* A required argument: INVALID_ARGUMENT "NAME is required" when absent. */
int kn_console__need(kn_console_call *c, const char *name, const char **out);
/* The arguments of a page of something's list: `id_name` (required; NULL
 * for none), `limit` (1-100, default 25) and `cursor` (may be NULL). */
int kn_console__page_args(kn_console_call *c, const char *id_name, const char **id, int64_t *limit,
                          const char **cursor);
/* One page of a console query taking ($1 the search text, $2 the cursor,
 * $3 the limit), from the arguments q, cursor and limit: each row becomes an
 * object whose members are `cols` (text), listed under list_key; a full page's
 * cursor is column cursor_col of its last row. */
typedef struct kn_db_stmt kn_db_stmt;
int kn_console__query_page(kn_console_call *c, const kn_db_stmt *stmt, const char *const *cols,
                           size_t n_cols, size_t cursor_col, const char *list_key);
/* The entity's fields of obj as a new JSON object (JSON fields parsed). */
kn_json *kn_console__entity(const kn_entity *e, const void *obj);
/* o[key] = text (NULL -> null); o[key] = the JSON in text (or the text
 * itself when it does not parse). */
void kn_console__set_text(kn_json *o, const char *key, const char *text);
void kn_console__set_json(kn_json *o, const char *key, const char *text);
/* A new {"key": text} result from bytes a script or match answered (taken:
 * kn_free'd here; "(not UTF-8)" when they are not text). */
kn_json *kn_console__answer(const char *key, char *bytes, size_t len);
/* A page of a board's records (tournament: a tournament's) in rank order,
 * from the arguments id, limit and cursor (console_leaderboards.c). */
int kn_console__records(kn_console_call *c, bool tournament);
/* A new {"key": array} result. */
kn_json *kn_console__list(const char *key, kn_json *array, const char *next_cursor);

#endif
