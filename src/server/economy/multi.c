/* multi: account updates, storage writes and deletes and wallet updates in
 * one Postgres transaction (kn_multi_update, contract in kn_economy.h).
 *
 * Each part runs through its service's own function for a caller's
 * transaction (kn_storage_write_in, kn_storage_delete_in, kn_account_update,
 * kn_wallets_update_in), so rules, statements and messages stay the
 * services'. Invariants:
 *   - one transaction: the first refusal rolls back everything;
 *   - the users rows the account and wallet parts change are locked first,
 *     in id order (one statement), and storage rows are touched in
 *     primary-key order by the storage service, so concurrent multi-updates
 *     take their locks in one order. The users lock is FOR NO KEY UPDATE,
 *     the one the wallet and profile UPDATEs take, which does not conflict
 *     with the KEY SHARE lock another batch's storage foreign-key check
 *     takes on the owner. A deadlock Postgres still breaks (a username
 *     change, a key column, against such a check) is retried here a few
 *     times before it is ABORTED. */
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define ATTEMPTS 3

static const kn_db_stmt lock_users = {
    "multi_lock_users",
    "SELECT 1 FROM users WHERE id = ANY ($1::uuid[]) ORDER BY id FOR NO KEY UPDATE", 1};

static int check_counts(const kn_multi_ops *ops, char *msg, size_t cap)
{
    if (ops->n_accounts > KN_MULTI_ACCOUNT_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d account updates per multi-update, not %zu",
                          KN_MULTI_ACCOUNT_MAX, ops->n_accounts);
    if (ops->n_writes > KN_STORAGE_BATCH_MAX || ops->n_deletes > KN_STORAGE_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d storage writes and %d deletes per multi-update",
                          KN_STORAGE_BATCH_MAX, KN_STORAGE_BATCH_MAX);
    if (ops->n_wallets > KN_WALLET_BATCH_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "at most %d wallet updates per multi-update, not %zu",
                          KN_WALLET_BATCH_MAX, ops->n_wallets);
    return KN_OK;
}

/* Locks the users rows that account and wallet updates will change. Ids
 * that are not UUIDs are left for their service to refuse by name. */
static int lock_rows(kn_db *db, const kn_multi_ops *ops)
{
    size_t n = ops->n_accounts + ops->n_wallets;
    if (n < 2) return KN_OK; /* one row locks itself */
    const char **ids = kn_calloc(n, sizeof *ids);
    if (!ids) return KN_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < ops->n_accounts; i++)
        if (ops->accounts[i].user_id && kn_uuid_valid(ops->accounts[i].user_id))
            ids[k++] = ops->accounts[i].user_id;
    for (size_t i = 0; i < ops->n_wallets; i++)
        if (ops->wallets[i].user_id && kn_uuid_valid(ops->wallets[i].user_id))
            ids[k++] = ops->wallets[i].user_id;
    char *arr = kn_db_text_array(ids, k);
    kn_free(ids);
    if (!arr) return KN_ERR_NOMEM;
    const char *p[] = {arr};
    int rc = kn_db_query(db, &lock_users, p, NULL);
    kn_free(arr);
    return rc;
}

/* Prefixes msg (a service's reason) with the part that refused. */
static int name_part(int rc, const char *part, char *msg, size_t cap)
{
    if (!msg || cap == 0) return rc;
    char why[256];
    snprintf(why, sizeof why, "%s", msg);
    return kn_err_msg(rc, msg, cap, "%s: %s", part, why);
}

static int run_accounts(kn_db *db, const kn_multi_ops *ops, char *msg, size_t cap)
{
    for (size_t i = 0; i < ops->n_accounts; i++) {
        const kn_multi_account_op *a = &ops->accounts[i];
        int rc = kn_account_update(db, a->user_id, &a->changes, msg, cap);
        if (rc) {
            char part[40];
            snprintf(part, sizeof part, "account update %zu", i);
            return name_part(rc, part, msg, cap);
        }
    }
    return KN_OK;
}

/* One attempt: begin, every part, commit; rolled back on any failure. */
static int attempt(kn_db *db, const kn_multi_ops *ops, kn_storage_ack **acks,
                   kn_wallet_result **results, char *msg, size_t cap)
{
    int rc = kn_db_begin(db);
    if (rc) return kn_db_fail(rc, msg, cap);
    if ((rc = lock_rows(db, ops))) kn_db_fail(rc, msg, cap);
    if (!rc && ops->n_writes &&
        (rc = kn_storage_write_in(db, NULL, ops->writes, ops->n_writes, acks, msg, cap)))
        name_part(rc, "storage write", msg, cap);
    if (!rc && ops->n_deletes &&
        (rc = kn_storage_delete_in(db, NULL, ops->deletes, ops->n_deletes, msg, cap)))
        name_part(rc, "storage delete", msg, cap);
    if (!rc) rc = run_accounts(db, ops, msg, cap);
    if (!rc && ops->n_wallets)
        rc = kn_wallets_update_in(db, ops->wallets, ops->n_wallets, ops->update_ledger, results,
                                  msg, cap);
    if (!rc && (rc = kn_db_commit(db))) kn_db_fail(rc, msg, cap);
    if (rc) {
        kn_db_rollback(db);
        kn_free(*acks);
        *acks = NULL;
        kn_wallet_results_free(*results, ops->n_wallets);
        *results = NULL;
    }
    return rc;
}

int kn_multi_update(kn_db *db, const kn_multi_ops *ops, kn_storage_ack **acks,
                    kn_wallet_result **results, char *msg, size_t cap)
{
    assert(ops);
    *acks = NULL;
    *results = NULL;
    int rc = check_counts(ops, msg, cap);
    if (rc) return rc;
    if (!ops->n_accounts && !ops->n_writes && !ops->n_deletes && !ops->n_wallets) return KN_OK;
    for (int i = 0; i < ATTEMPTS; i++)
        if ((rc = attempt(db, ops, acks, results, msg, cap)) != KN_ERR_ABORTED) break;
    return rc;
}
