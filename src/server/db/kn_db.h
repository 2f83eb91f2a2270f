/* kn_db: the Postgres layer; the only module that includes libpq.
 *
 * A kn_db is one connection owned by one thread (an API worker or a CLI
 * command). Services keep their SQL next to their logic as static kn_db_stmt
 * descriptors; kn_db_query prepares each statement once per connection and
 * executes it with text parameters. A lost connection is reset and the query
 * retried once, outside a transaction; a connection attempt gives up after
 * 5 s (unless the url sets connect_timeout), so with Postgres down a query
 * fails with KN_ERR_DB promptly rather than waiting; TCP keepalives notice
 * a vanished Postgres host in about 25 s. A Postgres that is alive but
 * stalled (stopped process, full disk) still holds a query as long as it
 * stalls: nothing here times a statement out. Errors map to kn_err: a unique
 * violation is KN_ERR_ALREADY_EXISTS and a foreign-key violation (the row
 * referred to is missing) KN_ERR_NOT_FOUND (kn_db_constraint names the
 * constraint of either), a serialization failure or deadlock KN_ERR_ABORTED,
 * a refusal our own SQL raises with SQLSTATE KNnnn (nnn a wire code 1-16,
 * e.g. KN009 in a migration's function) that code's kn_err with its message
 * in kn_db_refusal, anything else KN_ERR_DB (logged once here with the
 * server's message). */
#ifndef KN_DB_H
#define KN_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct kn_db kn_db;
typedef struct kn_db_rows kn_db_rows;

typedef struct kn_db_stmt {
    const char *name; /* unique prepared-statement name */
    const char *sql;
    int nparams;
} kn_db_stmt;

/* Connect. url "" uses libpq's environment (PGHOST, PGPORT, ...). */
int kn_db_open(const char *url, kn_db **out);
void kn_db_close(kn_db *db); /* accepts NULL */

/* Execute `stmt` with `params` (NULL entries are SQL NULL). When rows is
 * non-NULL it receives the result (free with kn_db_rows_free), else the
 * result is discarded. */
int kn_db_query(kn_db *db, const kn_db_stmt *stmt, const char *const *params, kn_db_rows **rows);
/* Execute `stmt` and hand each row to fn as it arrives (libpq's single-row
 * mode: the whole result is never in memory at once; for reading a large
 * table, e.g. a leaderboard's records at start). fn gets a one-row result
 * (row 0), valid during the call; a non-zero return stops the calls (the
 * rest of the result is still read and dropped) and is returned. No retry
 * on a lost connection: the caller starts over. */
int kn_db_query_each(kn_db *db, const kn_db_stmt *stmt, const char *const *params,
                     int (*fn)(void *ud, const kn_db_rows *row), void *ud);
/* Run literal SQL (no parameters, may hold several statements). */
int kn_db_exec(kn_db *db, const char *sql);

int kn_db_begin(kn_db *db);
int kn_db_commit(kn_db *db);
void kn_db_rollback(kn_db *db); /* safe to call when no transaction is open */
/* Whether kn_db_begin opened a transaction that is still open: for
 * functions that run inside their caller's transaction (asserted there). */
bool kn_db_in_transaction(const kn_db *db);

/* Writes the client's message for rc, a failure of this layer, into msg and
 * returns rc: ABORTED "the request collided with a concurrent one; retry",
 * NOMEM "out of memory", anything else "database unavailable" (the cause is
 * in the log already). For services whose SQL failed where no rule of
 * theirs applies. */
int kn_db_fail(int rc, char *msg, size_t msg_cap);

/* Process-wide, any thread: false once a connection attempt failed or a
 * connection was lost and could not be made again, true again after a
 * connection or a query succeeds. What /healthz reports. */
bool kn_db_reachable(void);
/* Any thread: whether Postgres at url accepts connections (PQping, at most
 * 2 s); true also marks the database reachable again. */
bool kn_db_ping(const char *url);

/* Constraint name of the last KN_ERR_ALREADY_EXISTS or KN_ERR_NOT_FOUND, or "". */
const char *kn_db_constraint(const kn_db *db);
/* The message of the last SQLSTATE KNnnn refusal (not logged: it is the
 * client's), for the service to pass on; "" before any. */
const char *kn_db_refusal(const kn_db *db);

size_t kn_db_rows_count(const kn_db_rows *rows);
/* Value as text, NULL for SQL NULL or out of range. Valid until rows_free. */
const char *kn_db_rows_get(const kn_db_rows *rows, size_t row, size_t col);
size_t kn_db_rows_affected(const kn_db_rows *rows);

/* A Postgres array literal {"a","b"} of n strings for a text[] parameter:
 * every element quoted, '"' and '\' escaped, so no input can end an element
 * early. kn_malloc'd; NULL when out of memory. */
char *kn_db_text_array(const char *const *items, size_t n);
void kn_db_rows_free(kn_db_rows *rows); /* accepts NULL */

/* Migrations compiled into the binary (src/server/db/migrations/NNNN_name.sql).
 * Applies the pending ones in order, each in its own transaction, under an
 * advisory lock so two servers never migrate at once. */
int kn_db_migrate_up(kn_db *db, int *applied);
/* Prints each migration with "applied <time>" or "pending". *pending counts. */
int kn_db_migrate_status(kn_db *db, FILE *out, int *pending);
/* Number of migrations in the binary and the newest version applied. */
int kn_db_migrate_check(kn_db *db, int *pending);

#endif
