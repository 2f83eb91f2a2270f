/* wallet: changesets applied to wallets, with their ledger entries
 * (contract in kn_economy.h, prose in docs/economy.md).
 *
 * Invariants:
 *   - every update of a call is validated before the database is touched;
 *   - the sum is Postgres' (kaos_wallet_apply in the SET of the UPDATE, with
 *     the ledger INSERT in the same statement): one round trip per update,
 *     atomic by itself, and re-evaluated on the newest row when a concurrent
 *     update held the row lock, so no increment is lost;
 *   - several updates are one transaction and lock users rows in id order,
 *     so two batches never deadlock on each other. */
#include "kn_account.h"
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_mem.h"
#include "kn_text.h"
#include "kn_uuid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1 user, $2 changeset, $3 allow negative, $4 ledger metadata, $5 write a
 * ledger entry. No row: the user does not exist. */
static const kn_db_stmt apply_changeset = {
    "wallet_update",
    "WITH u AS (UPDATE users SET wallet = kaos_wallet_apply(wallet, $2::jsonb, $3::bool),"
    " update_time = now() WHERE id = $1 RETURNING wallet),"
    " l AS (INSERT INTO wallet_ledger (user_id, changeset, metadata)"
    " SELECT $1, $2::jsonb, $4::jsonb FROM u WHERE $5::bool RETURNING id)"
    " SELECT u.wallet::text, (SELECT id FROM l) FROM u",
    5};

void kn_wallet_results_free(kn_wallet_result *results, size_t n)
{
    if (!results) return;
    for (size_t i = 0; i < n; i++) {
        kn_free(results[i].previous);
        kn_free(results[i].updated);
    }
    kn_free(results);
}

/* --- validation ------------------------------------------------------------ */

/* A changeset: a JSON object of at most KN_WALLET_CHANGESET_MAX currencies
 * (1-128 bytes of text each) whose deltas are integers of the 64-bit range
 * (jansson refuses bigger ones while parsing). */
static int check_changeset(const char *text, size_t i, char *msg, size_t cap)
{
    if (!text)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "wallet update %zu: changeset is missing", i);
    kn_json_error err;
    kn_json *j = kn_json_parse(text, strlen(text), KN_JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "wallet update %zu: changeset is not valid JSON: %s", i, err.text);
    int rc = KN_OK;
    if (!kn_json_is_object(j)) {
        rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                        "wallet update %zu: changeset must be a JSON object", i);
    } else if (kn_json_object_size(j) > KN_WALLET_CHANGESET_MAX) {
        rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                        "wallet update %zu: at most %d currencies per changeset, not %zu", i,
                        KN_WALLET_CHANGESET_MAX, kn_json_object_size(j));
    }
    for (kn_json_iter *it = kn_json_object_iter(j); !rc && it;
         it = kn_json_object_iter_next(j, it)) {
        const char *k = kn_json_iter_key(it);
        size_t len = strlen(k);
        if (len < 1 || len > KN_WALLET_CURRENCY_MAX || !kn_text_valid(k, true))
            rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                            "wallet update %zu: a currency must be 1-%d bytes of UTF-8 without "
                            "control characters",
                            i, KN_WALLET_CURRENCY_MAX);
        else if (!kn_json_is_integer(kn_json_iter_value(it)))
            rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                            "wallet update %zu: the change of \"%s\" must be an integer", i, k);
    }
    kn_json_decref(j);
    return rc;
}

/* A user id as Postgres prints it (lower case), so ids sort and compare
 * with strcmp. */
static int check_user(const char *in, size_t i, char out[37], char *msg, size_t cap)
{
    if (!in || !kn_uuid_valid(in))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "wallet update %zu: user_id is not a UUID", i);
    for (int c = 0; c < 36; c++)
        out[c] = (char)(in[c] >= 'A' && in[c] <= 'F' ? in[c] + 32 : in[c]);
    out[36] = '\0';
    return KN_OK;
}

static int check_op(const kn_wallet_update_op *op, size_t i, char user[37], char *msg, size_t cap)
{
    int rc = check_user(op->user_id, i, user, msg, cap);
    if (!rc) rc = check_changeset(op->changeset, i, msg, cap);
    if (!rc && op->metadata) {
        char why[200];
        if (kn_account_check_metadata(op->metadata, why, sizeof why))
            rc = kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "wallet update %zu: %s", i, why);
    }
    return rc;
}

/* --- results ----------------------------------------------------------------- */

/* The wallet before: `updated` with the changeset taken back out. A
 * currency the update added shows as 0 (the statement returns only the new
 * row; the difference is exact because the sum fitted). */
static char *previous_of(const char *updated, const char *changeset)
{
    kn_json *w = kn_json_parse(updated, strlen(updated), 0, NULL);
    kn_json *c = kn_json_parse(changeset, strlen(changeset), 0, NULL);
    char *text = NULL, *out = NULL;
    if (w && c) {
        bool ok = true;
        for (kn_json_iter *it = kn_json_object_iter(c); ok && it;
             it = kn_json_object_iter_next(c, it)) {
            const char *k = kn_json_iter_key(it);
            int64_t now = kn_json_integer_value(kn_json_object_get(w, k));
            int64_t was =
                (int64_t)((uint64_t)now - (uint64_t)kn_json_integer_value(kn_json_iter_value(it)));
            ok = kn_json_object_set_new(w, k, kn_json_integer(was)) == 0;
        }
        if (ok) text = kn_json_dump(w, KN_JSON_COMPACT | KN_JSON_SORT_KEYS);
    }
    if (text) out = kn_strdup(text);
    kn_json_free_text(text);
    kn_json_decref(w);
    kn_json_decref(c);
    return out;
}

/* --- updates ------------------------------------------------------------------- */

static int apply_one(kn_db *db, const kn_wallet_update_op *op, const char *user, size_t i,
                     bool ledger, kn_wallet_result *res, char *msg, size_t cap)
{
    const char *p[] = {user, op->changeset, op->allow_negative ? "true" : "false",
                       op->metadata ? op->metadata : "{}", ledger ? "true" : "false"};
    kn_db_rows *rows = NULL;
    int rc = kn_db_query(db, &apply_changeset, p, &rows);
    if (rc == KN_ERR_FAILED_PRECONDITION || rc == KN_ERR_OUT_OF_RANGE)
        return kn_err_msg(rc, msg, cap, "wallet update %zu: %s", i, kn_db_refusal(db));
    if (rc) return kn_db_fail(rc, msg, cap);
    if (kn_db_rows_count(rows) != 1) {
        kn_db_rows_free(rows);
        return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "wallet update %zu: user %s not found", i,
                          user);
    }
    const char *id = kn_db_rows_get(rows, 0, 1);
    snprintf(res->user_id, sizeof res->user_id, "%s", user);
    snprintf(res->ledger_id, sizeof res->ledger_id, "%s", id ? id : "");
    res->updated = kn_strdup(kn_db_rows_get(rows, 0, 0));
    kn_db_rows_free(rows);
    if (res->updated) res->previous = previous_of(res->updated, op->changeset);
    if (!res->updated || !res->previous) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    return KN_OK;
}

typedef struct slot {
    size_t index;
    char user[37];
} slot;

/* By user id, then by the order given (so updates of one user apply in it). */
static int by_user(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int update_batch(kn_db *db, const kn_wallet_update_op *ops, size_t n, bool ledger,
                        bool own_tx, kn_wallet_result **results, char *msg, size_t cap)
{
    *results = NULL;
    if (n > KN_WALLET_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d wallet updates per call, not %zu", KN_WALLET_BATCH_MAX, n);
    if (n == 0) return KN_OK;
    assert(ops);
    slot slots[KN_WALLET_BATCH_MAX];
    int rc;
    for (size_t i = 0; i < n; i++) {
        slots[i].index = i;
        if ((rc = check_op(&ops[i], i, slots[i].user, msg, cap))) return rc;
    }
    qsort(slots, n, sizeof *slots, by_user);
    kn_wallet_result *out = kn_calloc(n, sizeof *out);
    if (!out) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    bool tx = own_tx && n > 1; /* one update is one statement, atomic by itself */
    if (tx && (rc = kn_db_begin(db))) {
        kn_free(out);
        return kn_db_fail(rc, msg, cap);
    }
    rc = KN_OK;
    for (size_t k = 0; k < n && rc == KN_OK; k++) {
        size_t i = slots[k].index;
        rc = apply_one(db, &ops[i], slots[k].user, i, ledger, &out[i], msg, cap);
    }
    if (rc == KN_OK && tx && (rc = kn_db_commit(db))) kn_db_fail(rc, msg, cap);
    if (rc) {
        if (tx) kn_db_rollback(db);
        kn_wallet_results_free(out, n);
        return rc;
    }
    *results = out;
    return KN_OK;
}

int kn_wallets_update(kn_db *db, const kn_wallet_update_op *ops, size_t n, bool update_ledger,
                      kn_wallet_result **results, char *msg, size_t cap)
{
    return update_batch(db, ops, n, update_ledger, true, results, msg, cap);
}

int kn_wallets_update_in(kn_db *db, const kn_wallet_update_op *ops, size_t n, bool update_ledger,
                         kn_wallet_result **results, char *msg, size_t cap)
{
    assert(kn_db_in_transaction(db));
    return update_batch(db, ops, n, update_ledger, false, results, msg, cap);
}
