/* pgtest: see pgtest.h. */
#include "pgtest.h"
#include "kn_db.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

void pgtest_sql(kn_db *d, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_int_equal(kn_db_exec(d, buf), KN_OK);
}

static int exec_admin(pgtest *t, const char *fmt, const char *name)
{
    char buf[160];
    snprintf(buf, sizeof buf, fmt, name);
    return kn_db_exec(t->admin, buf) == KN_OK ? 0 : -1;
}

int pgtest_create(pgtest *t, const char *prefix, kn_db **db)
{
    *db = NULL;
    if (kn_db_open("", &t->admin) != KN_OK) {
        fprintf(stderr, "cannot reach the test Postgres (run inside pg_virtualenv)\n");
        return -1;
    }
    snprintf(t->dbname, sizeof t->dbname, "%s_%d", prefix, (int)getpid());
    snprintf(t->url, sizeof t->url, "dbname=%s", t->dbname);
    int applied;
    if (exec_admin(t, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->dbname) ||
        exec_admin(t, "CREATE DATABASE %s", t->dbname) || kn_db_open(t->url, db) ||
        kn_db_migrate_up(*db, &applied)) {
        fprintf(stderr, "cannot make the test database %s\n", t->dbname);
        return -1;
    }
    return 0;
}

int pgtest_open(const pgtest *t, kn_db **db)
{
    return kn_db_open(t->url, db) == KN_OK ? 0 : -1;
}

int pgtest_drop(pgtest *t)
{
    int rc = exec_admin(t, "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->dbname);
    kn_db_close(t->admin);
    t->admin = NULL;
    return rc;
}
