/* migrate: applies the migrations compiled into the binary. */
#include "db_internal.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_log.h"

#include <stdio.h>
#include <stdlib.h>

/* Any constant works; it only has to be the same in every KaosNet. */
#define MIGRATION_LOCK "SELECT pg_advisory_lock(7350001)"
#define MIGRATION_UNLOCK "SELECT pg_advisory_unlock(7350001)"

static const kn_db_stmt create_table = {
    "migrate_create",
    "CREATE TABLE IF NOT EXISTS kaos_schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    0};
static const kn_db_stmt list_applied = {
    "migrate_list",
    "SELECT version, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS') FROM kaos_schema_migrations"
    " ORDER BY version",
    0};
static const kn_db_stmt record = {
    "migrate_record", "INSERT INTO kaos_schema_migrations (version, name) VALUES ($1, $2)", 2};

/* Looks up when `version` was applied; NULL when pending. */
static const char *applied_at(const kn_db_rows *rows, int version)
{
    for (size_t i = 0; i < kn_db_rows_count(rows); i++)
        if (atoi(kn_db_rows_get(rows, i, 0)) == version) return kn_db_rows_get(rows, i, 1);
    return NULL;
}

static int read_applied(kn_db *db, kn_db_rows **rows)
{
    int rc = kn_db_query(db, &create_table, NULL, NULL);
    return rc ? rc : kn_db_query(db, &list_applied, NULL, rows);
}

int kn_db_migrate_up(kn_db *db, int *applied)
{
    *applied = 0;
    int rc = kn_db_exec(db, MIGRATION_LOCK);
    if (rc) return rc;
    kn_db_rows *rows = NULL;
    rc = read_applied(db, &rows);
    for (int i = 0; rc == KN_OK && i < kn_db__migration_count; i++) {
        const kn_db__migration *m = &kn_db__migrations[i];
        if (applied_at(rows, m->version)) continue;
        char version[16];
        snprintf(version, sizeof version, "%d", m->version);
        const char *params[] = {version, m->name};
        if ((rc = kn_db_begin(db)) == KN_OK && (rc = kn_db_exec(db, m->sql)) == KN_OK &&
            (rc = kn_db_query(db, &record, params, NULL)) == KN_OK &&
            (rc = kn_db_commit(db)) == KN_OK) {
            KN_INFO("migration %04d_%s applied", m->version, m->name);
            (*applied)++;
        } else {
            kn_db_rollback(db);
            KN_ERROR("migration %04d_%s failed; nothing of it was applied", m->version, m->name);
        }
    }
    kn_db_rows_free(rows);
    kn_db_exec(db, MIGRATION_UNLOCK);
    return rc;
}

int kn_db_migrate_status(kn_db *db, FILE *out, int *pending)
{
    *pending = 0;
    kn_db_rows *rows = NULL;
    int rc = read_applied(db, &rows);
    if (rc) return rc;
    for (int i = 0; i < kn_db__migration_count; i++) {
        const kn_db__migration *m = &kn_db__migrations[i];
        const char *at = applied_at(rows, m->version);
        if (!at) (*pending)++;
        if (out)
            fprintf(out, "%04d_%-30s %s%s\n", m->version, m->name, at ? "applied " : "pending",
                    at ? at : "");
    }
    kn_db_rows_free(rows);
    return KN_OK;
}

int kn_db_migrate_check(kn_db *db, int *pending)
{
    return kn_db_migrate_status(db, NULL, pending);
}
