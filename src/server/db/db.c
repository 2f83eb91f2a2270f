/* db: connections, prepared statements and results over libpq. */
#include "kn_db.h"
#include "kn_error.h"
#include "kn_log.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PREPARED 128

struct kn_db {
    PGconn *conn;
    char *url;
    bool in_tx;
    size_t nprepared;
    const kn_db_stmt *prepared[MAX_PREPARED];
    char constraint[64];
    char refusal[256]; /* the message of the last SQLSTATE KNnnn refusal */
};

struct kn_db_rows {
    PGresult *res;
};

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    KN_DEBUG("postgres: %s", message);
}

/* The outcome of the last connection attempt or query of any connection:
 * what /healthz reports (kn_db_reachable). */
static atomic_bool reachable = true;

/* While Postgres is away every request's connection fails the same way:
 * one line a second of each kind says so, with the count of those left out. */
typedef struct log_throttle {
    atomic_llong logged_ms;
    atomic_ulong unlogged;
} log_throttle;

static log_throttle connect_failed_log = {-1000000, 0}, lost_log = {-1000000, 0};

static bool log_due(log_throttle *t, unsigned long *left_out)
{
    int64_t now = kn_time_mono_ms();
    long long last = atomic_load_explicit(&t->logged_ms, memory_order_relaxed);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&t->logged_ms, &last, now)) {
        atomic_fetch_add_explicit(&t->unlogged, 1, memory_order_relaxed);
        return false;
    }
    *left_out = atomic_exchange_explicit(&t->unlogged, 0, memory_order_relaxed);
    return true;
}

/* Defaults the url's own settings win over: a connection attempt gives up
 * after 5 s, and TCP keepalives notice a Postgres host that vanished
 * (powered off, cut off) within about 25 s instead of the kernel's hours. */
static PGconn *connect_url(const char *url)
{
    const char *const keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
                                "keepalives_count", "dbname",          NULL};
    const char *const vals[] = {"5", "10", "5", "3", url, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

static int connect_db(kn_db *db)
{
    db->conn = connect_url(db->url);
    if (!db->conn) return KN_ERR_NOMEM;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        atomic_store_explicit(&reachable, false, memory_order_relaxed);
        /* PQerrorMessage ends with a newline; trim it for one-line logs. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(db->conn));
        msg[strcspn(msg, "\n")] = '\0';
        unsigned long left_out;
        if (log_due(&connect_failed_log, &left_out))
            KN_ERROR("cannot connect to postgres: %s (%lu such lines left out in the last second)",
                     msg, left_out);
        PQfinish(db->conn);
        db->conn = NULL;
        return KN_ERR_DB;
    }
    PQsetNoticeProcessor(db->conn, quiet_notices, NULL);
    atomic_store_explicit(&reachable, true, memory_order_relaxed);
    return KN_OK;
}

bool kn_db_reachable(void)
{
    return atomic_load_explicit(&reachable, memory_order_relaxed);
}

bool kn_db_ping(const char *url)
{
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {"2", url ? url : "", NULL};
    bool ok = PQpingParams(keys, vals, 1) == PQPING_OK;
    if (ok) atomic_store_explicit(&reachable, true, memory_order_relaxed);
    return ok;
}

int kn_db_open(const char *url, kn_db **out)
{
    *out = NULL;
    kn_db *db = kn_calloc(1, sizeof *db);
    if (!db) return KN_ERR_NOMEM;
    db->url = kn_strdup(url ? url : "");
    if (!db->url) {
        kn_free(db);
        return KN_ERR_NOMEM;
    }
    int rc = connect_db(db);
    if (rc) {
        kn_db_close(db);
        return rc;
    }
    *out = db;
    return KN_OK;
}

void kn_db_close(kn_db *db)
{
    if (!db) return;
    if (db->conn) PQfinish(db->conn);
    kn_free(db->url);
    kn_free(db);
}

const char *kn_db_constraint(const kn_db *db)
{
    return db->constraint;
}

const char *kn_db_refusal(const kn_db *db)
{
    return db->refusal;
}

/* SQLSTATE KNnnn: a refusal raised by our own SQL (a function of a
 * migration), nnn the wire code; 0 when state is not one. */
static int sql_refusal(const char *state)
{
    if (!state || state[0] != 'K' || state[1] != 'N') return 0;
    int code = 0;
    for (int i = 2; i < 5; i++) {
        if (state[i] < '0' || state[i] > '9') return 0;
        code = code * 10 + (state[i] - '0');
    }
    /* The wire codes 1-16 are kn_err values -1..-16 (kn_error.h). */
    return code >= 1 && code <= 16 ? -code : 0;
}

/* Maps a failed result to kn_err, logging what is not a client's fault. */
static int result_error(kn_db *db, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    db->constraint[0] = '\0';
    if (state && !strcmp(state, "23505")) {
        const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        snprintf(db->constraint, sizeof db->constraint, "%s", c ? c : "");
        return KN_ERR_ALREADY_EXISTS;
    }
    /* Foreign-key violation: the row a new row refers to is missing (every
     * foreign key here cascades on delete, so it is never the other way). */
    if (state && !strcmp(state, "23503")) {
        const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        snprintf(db->constraint, sizeof db->constraint, "%s", c ? c : "");
        return KN_ERR_NOT_FOUND;
    }
    if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01"))) return KN_ERR_ABORTED;
    int refused = sql_refusal(state);
    if (refused) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(db->refusal, sizeof db->refusal, "%s", m ? m : "");
        return refused;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    msg[strcspn(msg, "\n")] = '\0';
    KN_ERROR("postgres %s failed (%s): %s", what, state ? state : "no state", msg);
    return KN_ERR_DB;
}

static bool connection_lost(kn_db *db)
{
    return !db->conn || PQstatus(db->conn) == CONNECTION_BAD;
}

/* After a reset every prepared statement is gone. */
static int reconnect(kn_db *db)
{
    unsigned long left_out;
    if (log_due(&lost_log, &left_out))
        KN_WARN("postgres connection lost; reconnecting (%lu such lines left out in the last "
                "second)",
                left_out);
    if (db->conn) PQfinish(db->conn);
    db->conn = NULL;
    db->nprepared = 0;
    db->in_tx = false;
    return connect_db(db);
}

static int ensure_prepared(kn_db *db, const kn_db_stmt *stmt)
{
    for (size_t i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt) return KN_OK;
    if (db->nprepared == MAX_PREPARED) return KN_ERR_RESOURCE_EXHAUSTED;
    PGresult *res = PQprepare(db->conn, stmt->name, stmt->sql, stmt->nparams, NULL);
    int rc = KN_OK;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) rc = result_error(db, res, stmt->name);
    PQclear(res);
    if (rc == KN_OK) db->prepared[db->nprepared++] = stmt;
    return rc;
}

static int run_query(kn_db *db, const kn_db_stmt *stmt, const char *const *params, PGresult **out)
{
    *out = NULL;
    int rc = ensure_prepared(db, stmt);
    if (rc) return rc;
    PGresult *res = PQexecPrepared(db->conn, stmt->name, stmt->nparams, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = result_error(db, res, stmt->name);
        PQclear(res);
        return rc;
    }
    *out = res;
    return KN_OK;
}

int kn_db_query(kn_db *db, const kn_db_stmt *stmt, const char *const *params, kn_db_rows **rows)
{
    if (rows) *rows = NULL;
    if (connection_lost(db) && (db->in_tx || reconnect(db))) return KN_ERR_DB;
    PGresult *res;
    int rc = run_query(db, stmt, params, &res);
    /* Retry once on a dropped connection, unless a transaction was open:
     * its earlier statements are gone and the caller must start over. */
    if (rc == KN_ERR_DB && connection_lost(db) && !db->in_tx && reconnect(db) == KN_OK)
        rc = run_query(db, stmt, params, &res);
    if (rc) {
        if (connection_lost(db)) atomic_store_explicit(&reachable, false, memory_order_relaxed);
        return rc;
    }
    if (!rows) {
        PQclear(res);
        return KN_OK;
    }
    kn_db_rows *r = kn_malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        return KN_ERR_NOMEM;
    }
    r->res = res;
    *rows = r;
    return KN_OK;
}

int kn_db_query_each(kn_db *db, const kn_db_stmt *stmt, const char *const *params,
                     int (*fn)(void *ud, const kn_db_rows *row), void *ud)
{
    if (connection_lost(db) && (db->in_tx || reconnect(db))) return KN_ERR_DB;
    int rc = ensure_prepared(db, stmt);
    if (rc) return rc;
    if (!PQsendQueryPrepared(db->conn, stmt->name, stmt->nparams, params, NULL, NULL, 0))
        return result_error(db, NULL, stmt->name);
    PQsetSingleRowMode(db->conn);
    int stop = 0;
    PGresult *res;
    /* Every result is read, also after fn stopped or an error, so the
     * connection is ready for the next statement. */
    while ((res = PQgetResult(db->conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !stop && rc == KN_OK) {
            kn_db_rows row = {res};
            stop = fn(ud, &row);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == KN_OK) {
            rc = result_error(db, res, stmt->name);
        }
        PQclear(res);
    }
    return rc ? rc : stop;
}

int kn_db_exec(kn_db *db, const char *sql)
{
    if (connection_lost(db) && (db->in_tx || reconnect(db))) return KN_ERR_DB;
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = KN_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) rc = result_error(db, res, "exec");
    PQclear(res);
    return rc;
}

int kn_db_begin(kn_db *db)
{
    int rc = kn_db_exec(db, "BEGIN");
    if (rc == KN_OK) db->in_tx = true;
    return rc;
}

int kn_db_commit(kn_db *db)
{
    int rc = kn_db_exec(db, "COMMIT");
    db->in_tx = false;
    return rc;
}

bool kn_db_in_transaction(const kn_db *db)
{
    return db->in_tx;
}

void kn_db_rollback(kn_db *db)
{
    if (!db->in_tx) return;
    db->in_tx = false;
    if (!connection_lost(db)) {
        PGresult *res = PQexec(db->conn, "ROLLBACK");
        PQclear(res);
    }
}

size_t kn_db_rows_count(const kn_db_rows *rows)
{
    return rows ? (size_t)PQntuples(rows->res) : 0;
}

const char *kn_db_rows_get(const kn_db_rows *rows, size_t row, size_t col)
{
    if (!rows || row >= (size_t)PQntuples(rows->res) || col >= (size_t)PQnfields(rows->res))
        return NULL;
    if (PQgetisnull(rows->res, (int)row, (int)col)) return NULL;
    return PQgetvalue(rows->res, (int)row, (int)col);
}

size_t kn_db_rows_affected(const kn_db_rows *rows)
{
    const char *n = rows ? PQcmdTuples(rows->res) : "";
    return *n ? (size_t)strtoul(n, NULL, 10) : 0;
}

void kn_db_rows_free(kn_db_rows *rows)
{
    if (!rows) return;
    PQclear(rows->res);
    kn_free(rows);
}

char *kn_db_text_array(const char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(items[i]) + 3;
    char *s = kn_malloc(len), *w = s;
    if (!s) return NULL;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *w++ = ',';
        *w++ = '"';
        for (const char *c = items[i]; *c; c++) {
            if (*c == '"' || *c == '\\') *w++ = '\\';
            *w++ = *c;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return s;
}

int kn_db_fail(int rc, char *msg, size_t cap)
{
    if (rc == KN_ERR_ABORTED)
        return kn_err_msg(rc, msg, cap, "the request collided with a concurrent one; retry");
    if (rc == KN_ERR_NOMEM) return kn_err_msg(rc, msg, cap, "out of memory");
    return kn_err_msg(rc, msg, cap, "database unavailable");
}
