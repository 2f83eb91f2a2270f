/* ledger: listing a user's wallet ledger and updating an entry's metadata
 * (contract in kn_economy.h; entries are written by wallet.c).
 *
 * Cursor: base64url (no padding) of 41 bytes:
 *   [0] format version (1)  [1..16] the user (UUID bytes)
 *   [17..24] create_time of the last entry returned, microseconds since the
 *            epoch, big-endian (signed)  [25..40] its id (UUID bytes).
 * The user ties a cursor to its listing; the (create_time, id) pair is the
 * keyset position, so a walk is not shifted by entries written meanwhile. */
#include "kn_account.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_economy.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_uuid.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_COLUMNS                                                                              \
    "id, user_id, changeset::text, metadata::text,"                                                \
    " floor(extract(epoch FROM create_time))::bigint,"                                             \
    " floor(extract(epoch FROM update_time))::bigint,"                                             \
    " (extract(epoch FROM create_time) * 1000000)::bigint"

/* $2 NULL: the first page; else strictly older than ($2 µs, $3). */
static const kn_db_stmt list_entries = {
    "wallet_ledger_list",
    "SELECT " ENTRY_COLUMNS " FROM wallet_ledger WHERE user_id = $1"
    " AND ($2::bigint IS NULL OR (create_time, id) <"
    " ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
    " ORDER BY create_time DESC, id DESC LIMIT $4",
    4};
static const kn_db_stmt update_entry = {
    "wallet_ledger_update",
    "UPDATE wallet_ledger SET metadata = $2::jsonb, update_time = clock_timestamp()"
    " WHERE id = $1 RETURNING " ENTRY_COLUMNS,
    2};

#define CURSOR_FORMAT   1
#define CURSOR_BIN      41
#define CURSOR_TEXT_MAX KN_CRYPTO_BASE64_LEN(CURSOR_BIN, KN_CRYPTO_BASE64URL)

void kn_wallet_ledger_free(kn_wallet_ledger_entry *entries, size_t n)
{
    if (!entries) return;
    for (size_t i = 0; i < n; i++) {
        kn_free(entries[i].changeset);
        kn_free(entries[i].metadata);
    }
    kn_free(entries);
}

static bool norm_uuid(const char *in, char out[37])
{
    if (!in || !kn_uuid_valid(in)) return false;
    for (int c = 0; c < 36; c++)
        out[c] = (char)(in[c] >= 'A' && in[c] <= 'F' ? in[c] + 32 : in[c]);
    out[36] = '\0';
    return true;
}

static void uuid_bytes(const char *uuid, unsigned char b[16])
{
    size_t len = 0;
    int rc = kn_crypto_hex_decode(b, 16, uuid, 36, "-", &len);
    assert(rc == 0 && len == 16); /* callers pass validated UUIDs */
    (void)rc;
}

static void uuid_text(const unsigned char b[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static char *cursor_encode(const char *user, int64_t time_us, const char *id)
{
    unsigned char bin[CURSOR_BIN];
    bin[0] = CURSOR_FORMAT;
    uuid_bytes(user, bin + 1);
    uint64_t t = (uint64_t)time_us;
    for (int i = 0; i < 8; i++)
        bin[17 + i] = (unsigned char)(t >> (56 - 8 * i));
    uuid_bytes(id, bin + 25);
    char *text = kn_malloc(CURSOR_TEXT_MAX);
    if (text) kn_crypto_base64_encode(text, CURSOR_TEXT_MAX, bin, sizeof bin, KN_CRYPTO_BASE64URL);
    return text;
}

/* Decodes `cursor` of a listing of `user` into the position to go on after. */
static int cursor_decode(const char *cursor, const char *user, int64_t *time_us, char id[37],
                         char *msg, size_t cap)
{
    unsigned char bin[CURSOR_BIN + 3];
    size_t len = strlen(cursor), bin_len = 0;
    const char *end = NULL;
    if (len >= CURSOR_TEXT_MAX ||
        kn_crypto_base64_decode(bin, sizeof bin, cursor, len, NULL, &bin_len, &end,
                                KN_CRYPTO_BASE64URL) != 0 ||
        end != cursor + len || bin_len != CURSOR_BIN || bin[0] != CURSOR_FORMAT)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    char owner[37];
    uuid_text(bin + 1, owner);
    if (strcmp(owner, user))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "cursor belongs to another user's ledger");
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | bin[17 + i];
    *time_us = (int64_t)t;
    uuid_text(bin + 25, id);
    return KN_OK;
}

int kn_wallet_ledger_cursor_check(const char *user_id, const char *cursor, char *msg, size_t cap)
{
    char user[37], id[37];
    int64_t t;
    if (!norm_uuid(user_id, user))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user_id is not a UUID");
    if (!cursor) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "cursor is malformed");
    return cursor_decode(cursor, user, &t, id, msg, cap);
}

/* Fills entries from the ENTRY_COLUMNS of `count` rows; *last_us gets the
 * microsecond time of the last. */
static int entries_from_rows(const kn_db_rows *rows, size_t count, kn_wallet_ledger_entry **out,
                             int64_t *last_us)
{
    *out = NULL;
    if (count == 0) return KN_OK;
    kn_wallet_ledger_entry *e = kn_calloc(count, sizeof *e);
    if (!e) return KN_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        const char *col[7];
        for (size_t c = 0; c < 7; c++) {
            col[c] = kn_db_rows_get(rows, i, c);
            if (!col[c]) col[c] = "";
        }
        snprintf(e[i].id, sizeof e[i].id, "%s", col[0]);
        snprintf(e[i].user_id, sizeof e[i].user_id, "%s", col[1]);
        e[i].changeset = kn_strdup(col[2]);
        e[i].metadata = kn_strdup(col[3]);
        e[i].create_time = strtoll(col[4], NULL, 10);
        e[i].update_time = strtoll(col[5], NULL, 10);
        *last_us = strtoll(col[6], NULL, 10);
        if (!e[i].changeset || !e[i].metadata) {
            kn_wallet_ledger_free(e, count);
            return KN_ERR_NOMEM;
        }
    }
    *out = e;
    return KN_OK;
}

int kn_wallet_ledger_list(kn_db *db, const char *user_id, int limit, const char *cursor,
                          kn_wallet_ledger_entry **out, size_t *n_out, char **next_cursor,
                          char *msg, size_t cap)
{
    *out = NULL;
    *n_out = 0;
    *next_cursor = NULL;
    char user[37], after_id[37] = "";
    if (!norm_uuid(user_id, user))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "user_id is not a UUID");
    if (limit < 1 || limit > KN_WALLET_LEDGER_MAX)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "limit must be 1-%d, not %d",
                          KN_WALLET_LEDGER_MAX, limit);
    int64_t after_us = 0;
    int rc;
    bool from_cursor = cursor && *cursor;
    if (from_cursor && (rc = cursor_decode(cursor, user, &after_us, after_id, msg, cap))) return rc;
    char us[24], fetch[16];
    snprintf(us, sizeof us, "%" PRId64, after_us);
    snprintf(fetch, sizeof fetch, "%d", limit + 1); /* one more says whether a page follows */
    const char *p[] = {user, from_cursor ? us : NULL, from_cursor ? after_id : NULL, fetch};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &list_entries, p, &rows))) return kn_db_fail(rc, msg, cap);
    size_t count = kn_db_rows_count(rows);
    bool more = count > (size_t)limit;
    if (more) count = (size_t)limit;
    int64_t last_us = 0;
    rc = entries_from_rows(rows, count, out, &last_us);
    kn_db_rows_free(rows);
    if (rc == KN_OK && more && !(*next_cursor = cursor_encode(user, last_us, (*out)[count - 1].id)))
        rc = KN_ERR_NOMEM;
    if (rc) {
        kn_wallet_ledger_free(*out, count);
        *out = NULL;
        return kn_err_msg(rc, msg, cap, "out of memory");
    }
    *n_out = count;
    return KN_OK;
}

int kn_wallet_ledger_update(kn_db *db, const char *id, const char *metadata,
                            kn_wallet_ledger_entry **out, char *msg, size_t cap)
{
    *out = NULL;
    char entry[37];
    if (!norm_uuid(id, entry))
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "ledger entry id is not a UUID");
    if (!metadata) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "metadata is missing");
    int rc = kn_account_check_metadata(metadata, msg, cap);
    if (rc) return rc;
    const char *p[] = {entry, metadata};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(db, &update_entry, p, &rows))) return kn_db_fail(rc, msg, cap);
    size_t count = kn_db_rows_count(rows);
    int64_t last_us = 0;
    if (count == 1) rc = entries_from_rows(rows, 1, out, &last_us);
    kn_db_rows_free(rows);
    if (count != 1) return kn_err_msg(KN_ERR_NOT_FOUND, msg, cap, "ledger entry not found");
    if (rc) return kn_err_msg(rc, msg, cap, "out of memory");
    return KN_OK;
}
