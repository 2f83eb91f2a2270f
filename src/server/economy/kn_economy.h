/* kn_economy: wallets with a ledger, and multi-updates that change
 * accounts, storage and wallets in one transaction — for server code only
 * (docs/economy.md has the model, guarantees, limits and errors).
 *
 * Wallet. Every user has one: a JSON object of currency -> balance, each
 * balance an integer of the signed 64-bit range, kept on the user's row
 * (users.wallet, migration 0012) and read with the account (kn_account.wallet).
 * A wallet changes only through a changeset: a JSON object of currency ->
 * delta (an integer), added atomically. A currency the wallet lacks starts at
 * 0, and stays in the wallet afterwards (also at 0). A result below zero
 * refuses the whole changeset (FAILED_PRECONDITION naming the currency)
 * unless the update allows negative balances; a result outside the 64-bit
 * range always refuses it (OUT_OF_RANGE). The sum is computed by Postgres in
 * the UPDATE that writes the row, so concurrent updates of one wallet are
 * serialized by its row lock and none is lost.
 *
 * Ledger. An update may write a ledger entry (update_ledger): the changeset,
 * a metadata JSON object and the time. Entries are listed per user, newest
 * first, with a limit and a keyset cursor; their metadata may be replaced
 * later. Entries go with their user.
 *
 * Batches. kn_wallets_update applies updates of several users (or several of
 * one user) in one transaction: all or nothing. kn_multi_update does account
 * updates, storage writes and deletes and wallet updates in one transaction
 * with the account and storage services' own functions (kn_account_update,
 * kn_storage_write_in, kn_storage_delete_in): any refusal rolls back
 * everything. Locks are taken in a fixed order (the users rows of the account
 * and wallet updates first, in id order, then storage rows in primary-key
 * order), so two batches do not deadlock on each other.
 *
 * Clients never change a wallet: there is no wire message that writes one.
 * The functions are for the runtime (kaos.wallet_* and kaos.multi_update)
 * and the console.
 *
 * Threads: every function blocks on Postgres and runs on the thread that
 * owns `db` (an API worker or a CLI command); there is no state of its own.
 *
 * Ownership: arguments are borrowed. Results are kn_malloc'd and released
 * with the matching _free function, which accepts NULL; on failure they are
 * NULL.
 *
 * Errors: KN_OK or a negative kn_err with a one-line reason in msg:
 *   INVALID_ARGUMENT     malformed input (a user id that is not a UUID, a
 *                        changeset that is not an object of integers, bad
 *                        metadata, limit or cursor), naming the update's index
 *   NOT_FOUND            an unknown user or ledger entry
 *   FAILED_PRECONDITION  a balance would go below zero (naming the currency),
 *                        or (multi-update) a storage version check failed
 *   OUT_OF_RANGE         a balance would leave the signed 64-bit range
 *   ALREADY_EXISTS, PERMISSION_DENIED  (multi-update) as the account and
 *                        storage services say
 *   ABORTED              a deadlock or serialization failure: retry
 *   DB, NOMEM            logged where they happen */
#ifndef KN_ECONOMY_H
#define KN_ECONOMY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_account.h"
#include "kn_storage.h"

typedef struct kn_db kn_db;

#define KN_WALLET_CURRENCY_MAX  128   /* bytes in a currency name (at least 1) */
#define KN_WALLET_CHANGESET_MAX 64    /* currencies in one changeset */
#define KN_WALLET_METADATA_MAX  16384 /* bytes of a ledger entry's metadata (JSON object) */
#define KN_WALLET_BATCH_MAX     100   /* wallet updates per call */
#define KN_WALLET_LEDGER_MAX    100   /* entries per ledger page */
#define KN_MULTI_ACCOUNT_MAX    100   /* account updates per multi-update */

/* One wallet update. */
typedef struct kn_wallet_update_op {
    const char *user_id;   /* a UUID */
    const char *changeset; /* {"currency": delta, ...}: 0..KN_WALLET_CHANGESET_MAX integers */
    const char *metadata;  /* the ledger entry's JSON object; NULL = {} */
    bool allow_negative;   /* balances may go below zero */
} kn_wallet_update_op;

/* What an update did: the wallet before and after (JSON objects as Postgres
 * prints jsonb) and the ledger entry's id ("" when none was written). */
typedef struct kn_wallet_result {
    char user_id[37];
    char ledger_id[37];
    char *previous;
    char *updated;
} kn_wallet_result;

void kn_wallet_results_free(kn_wallet_result *results, size_t n); /* accepts NULL */

/* A ledger entry. Times are Unix seconds. */
typedef struct kn_wallet_ledger_entry {
    char id[37];
    char user_id[37];
    char *changeset; /* JSON object */
    char *metadata;  /* JSON object */
    int64_t create_time;
    int64_t update_time;
} kn_wallet_ledger_entry;

void kn_wallet_ledger_free(kn_wallet_ledger_entry *entries, size_t n); /* accepts NULL */

/* Applies `n` updates (n <= KN_WALLET_BATCH_MAX) atomically, with a ledger
 * entry each when update_ledger. Every update is validated before the
 * database is touched. *results gets n results in the order of `ops`. One
 * update is one statement; more are one transaction, touching the users in
 * id order (updates of one user apply in the order given). */
int kn_wallets_update(kn_db *db, const kn_wallet_update_op *ops, size_t n, bool update_ledger,
                      kn_wallet_result **results, char *msg, size_t msg_cap);

/* kn_wallets_update inside a transaction the caller opened (asserted); on
 * failure the caller rolls back. Used by kn_multi_update. */
int kn_wallets_update_in(kn_db *db, const kn_wallet_update_op *ops, size_t n, bool update_ledger,
                         kn_wallet_result **results, char *msg, size_t msg_cap);

/* One page of a user's ledger, newest first: at most `limit`
 * (1..KN_WALLET_LEDGER_MAX) entries after `cursor` (NULL or "" = the
 * newest). *next_cursor is NULL on the last page. A cursor names the last
 * entry returned, so entries written during a walk never shift it. A cursor
 * that is garbled or belongs to another user is INVALID_ARGUMENT. */
int kn_wallet_ledger_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                          kn_wallet_ledger_entry **out, size_t *n_out, char **next_cursor,
                          char *msg, size_t msg_cap);

/* Replaces the metadata of ledger entry `id` (a JSON object) and returns
 * the entry in *out (release with kn_wallet_ledger_free(out, 1)). Unknown
 * entry: NOT_FOUND. */
int kn_wallet_ledger_update(kn_db *db, const char *id, const char *metadata,
                            kn_wallet_ledger_entry **out, char *msg, size_t msg_cap);

/* Checks a ledger cursor for user_id without the database; any thread.
 * KN_OK or INVALID_ARGUMENT with the reason. (The fuzz target's door.) */
int kn_wallet_ledger_cursor_check(const char *user_id, const char *cursor, char *msg,
                                  size_t msg_cap);

/* One account update of a multi-update. */
typedef struct kn_multi_account_op {
    const char *user_id;
    kn_account_changes changes;
} kn_multi_account_op;

/* Everything a multi-update does, each list with its count (0 = none). */
typedef struct kn_multi_ops {
    const kn_multi_account_op *accounts;
    size_t n_accounts; /* <= KN_MULTI_ACCOUNT_MAX */
    const kn_storage_write_op *writes;
    size_t n_writes; /* <= KN_STORAGE_BATCH_MAX */
    const kn_storage_delete_op *deletes;
    size_t n_deletes; /* <= KN_STORAGE_BATCH_MAX */
    const kn_wallet_update_op *wallets;
    size_t n_wallets; /* <= KN_WALLET_BATCH_MAX */
    bool update_ledger;
} kn_multi_ops;

/* Runs the whole of `ops` in one transaction, as server code (storage with
 * full rights): storage writes, then storage deletes, then account and
 * wallet updates by user id. The first refusal rolls back everything and is
 * returned with its part named ("storage write: ...", "account update 1: ...",
 * "wallet update 0: ..."). On success *acks holds n_writes acks (NULL when
 * none; kn_free) and *results n_wallets results (kn_wallet_results_free). */
int kn_multi_update(kn_db *db, const kn_multi_ops *ops, kn_storage_ack **acks,
                    kn_wallet_result **results, char *msg, size_t msg_cap);

#endif
