/* pgtest: a database of its own for a unit test, in the Postgres cluster the
 * PG* environment names (the suite runs inside pg_virtualenv): made fresh
 * and migrated by pgtest_create, dropped by pgtest_drop, so tests that run
 * at the same time never share rows. Single-threaded setup and teardown. */
#ifndef KN_TEST_PGTEST_H
#define KN_TEST_PGTEST_H

typedef struct kn_db kn_db;

typedef struct pgtest {
    kn_db *admin; /* a connection to the cluster's default database */
    char dbname[64];
    char url[96];
} pgtest;

/* Creates "<prefix>_<pid>" (dropping a leftover first), migrates it and
 * opens *db on it. 0, or -1 with the reason on stderr. */
int pgtest_create(pgtest *t, const char *prefix, kn_db **db);
/* Another connection to the test's database (races between two). 0 or -1. */
int pgtest_open(const pgtest *t, kn_db **db);
/* Drops the database (forcing out its connections) and closes admin. 0 or -1. */
int pgtest_drop(pgtest *t);
/* Runs printf-formatted SQL on d; fails the current test if it fails. */
void pgtest_sql(kn_db *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
