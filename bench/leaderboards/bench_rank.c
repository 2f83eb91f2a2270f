/* bench_leaderboard_rank: the rank index against SQL on the same rows.
 *
 *   bench_leaderboard_rank --database-url URL [--sizes 10000,100000,1000000] [--lookups N]
 *
 * For each size N: a board "rank_N" of N records (random scores 0..10N,
 * subscore 0, distinct times) inserted with one INSERT ... SELECT, then
 * VACUUM ANALYZE and an index on the full sort key (so SQL gets its best
 * plan). Then:
 *   rebuild:   kn_leaderboards_load of the board (what a start does), its
 *              time, the index's accounted bytes and the process's RSS growth
 *              per record;
 *   rank:      N lookups of random owners' ranks: kn_leaderboard_rank (the
 *              index) against a count(*)-based rank in SQL (the owner's row,
 *              then the rows ahead of it), p50/p99 of each;
 *   around:    kn_leaderboard_records_around (11 records: index + one
 *              statement by primary key) against SQL (that count, then
 *              ORDER BY the sort key OFFSET rank-6 LIMIT 11), p50/p99.
 * Every index rank is checked against the SQL one (a mismatch aborts).
 * Prints `result` lines (key=value) and a table. */
#include "kn_db.h"
#include "kn_error.h"
#include "kn_leaderboard.h"
#include "kn_mem.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_leaderboard_rank: %s: %s\n", what, msg);
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void owner(long i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8000-%012ld", i);
}

#define SQL_ME                                                                                     \
    "WITH me AS (SELECT score, subscore, score_time, owner_id FROM leaderboard_record"             \
    " WHERE leaderboard_id = $1 AND expiry_time = 0 AND owner_id = $2::uuid)"
#define SQL_AHEAD                                                                                  \
    "(SELECT count(*) FROM leaderboard_record r, me WHERE r.leaderboard_id = $1 AND"               \
    " r.expiry_time = 0 AND (r.score > me.score OR (r.score = me.score AND"                        \
    " (r.subscore > me.subscore OR (r.subscore = me.subscore AND"                                  \
    " (r.score_time, r.owner_id) < (me.score_time, me.owner_id))))))"
static const kn_db_stmt sql_rank = {"bench_sql_rank", SQL_ME " SELECT 1 + " SQL_AHEAD, 2};
static const kn_db_stmt sql_around = {
    "bench_sql_around",
    SQL_ME ", rk AS (SELECT 1 + " SQL_AHEAD " AS n)"
           " SELECT owner_id::text, username, score, subscore, num_score, metadata::text"
           " FROM leaderboard_record WHERE leaderboard_id = $1 AND expiry_time = 0"
           " ORDER BY score DESC, subscore DESC, score_time, owner_id"
           " OFFSET greatest((SELECT n FROM rk) - 6, 0) LIMIT 11",
    2};

static void stats(int64_t *v, size_t n, double *p50, double *p99)
{
    qsort(v, n, sizeof *v, cmp_i64);
    *p50 = (double)v[n / 2] / 1000.0;
    *p99 = (double)v[n * 99 / 100] / 1000.0;
}

static void run_size(const char *url, long n, int lookups)
{
    kn_db *db = NULL;
    if (kn_db_open(url, &db)) die("connect", url);
    char id[32], sql[1024], msg[256];
    snprintf(id, sizeof id, "rank_%ld", n);
    snprintf(
        sql, sizeof sql,
        "DELETE FROM leaderboard WHERE id = '%s';"
        "INSERT INTO leaderboard (id, sort_order, operator) VALUES ('%s', 0, 1);"
        "INSERT INTO leaderboard_record (leaderboard_id, owner_id, score, subscore, score_time)"
        " SELECT '%s', ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,"
        " (random() * %ld)::bigint, 0, g FROM generate_series(1, %ld) g;"
        "CREATE INDEX IF NOT EXISTS bench_lb_sort_idx ON leaderboard_record"
        " (leaderboard_id, expiry_time, score DESC, subscore DESC, score_time, owner_id);",
        id, id, id, n * 10, n);
    int64_t t0 = now_ns();
    if (kn_db_exec(db, sql)) die("load", id);
    if (kn_db_exec(db, "VACUUM ANALYZE leaderboard_record")) die("vacuum", id);
    double load_s = (double)(now_ns() - t0) / 1e9;

    long rss0 = rss_kb();
    kn_leaderboards *lbs = NULL;
    if (kn_leaderboards_create(NULL, &lbs)) die("create", "out of memory");
    size_t loaded = 0;
    t0 = now_ns();
    if (kn_leaderboards_load(lbs, db, &loaded, msg, sizeof msg)) die("rebuild", msg);
    double rebuild_s = (double)(now_ns() - t0) / 1e9;
    long rss1 = rss_kb();
    size_t bytes = kn_leaderboards_index_memory(lbs);

    int64_t *idx = malloc((size_t)lookups * sizeof *idx),
            *sq = malloc((size_t)lookups * sizeof *sq);
    int64_t *aidx = malloc((size_t)lookups * sizeof *aidx),
            *asq = malloc((size_t)lookups * sizeof *asq);
    if (!idx || !sq || !aidx || !asq) die("malloc", "out of memory");
    srand(7);
    for (int i = 0; i < lookups; i++) {
        char o[37];
        owner(1 + rand() % n, o);
        int64_t a = now_ns();
        int64_t r = kn_leaderboard_rank(lbs, id, o);
        idx[i] = now_ns() - a;
        const char *p[] = {id, o};
        kn_db_rows *rows = NULL;
        a = now_ns();
        if (kn_db_query(db, &sql_rank, p, &rows)) die("sql rank", o);
        sq[i] = now_ns() - a;
        int64_t want = atoll(kn_db_rows_get(rows, 0, 0));
        kn_db_rows_free(rows);
        if (r != want) {
            fprintf(stderr, "rank of %s: index %" PRId64 ", sql %" PRId64 "\n", o, r, want);
            exit(1);
        }
        kn_leaderboard_page pg;
        a = now_ns();
        if (kn_leaderboard_records_around(lbs, db, id, o, 11, 0, &pg, msg, sizeof msg))
            die("around", msg);
        aidx[i] = now_ns() - a;
        if (pg.n_records != 11) die("around", "not 11 records");
        kn_leaderboard_page_free(&pg);
        a = now_ns();
        if (kn_db_query(db, &sql_around, p, &rows)) die("sql around", o);
        asq[i] = now_ns() - a;
        kn_db_rows_free(rows);
    }
    double i50, i99, s50, s99, ai50, ai99, as50, as99;
    stats(idx, (size_t)lookups, &i50, &i99);
    stats(sq, (size_t)lookups, &s50, &s99);
    stats(aidx, (size_t)lookups, &ai50, &ai99);
    stats(asq, (size_t)lookups, &as50, &as99);
    printf("result records=%ld loaded=%zu load_s=%.2f rebuild_s=%.3f index_bytes_per_record=%.1f "
           "rss_bytes_per_record=%.1f rank_index_p50_us=%.2f rank_index_p99_us=%.2f "
           "rank_sql_p50_us=%.1f rank_sql_p99_us=%.1f around_index_p50_us=%.1f "
           "around_index_p99_us=%.1f around_sql_p50_us=%.1f around_sql_p99_us=%.1f lookups=%d\n",
           n, loaded, load_s, rebuild_s, (double)bytes / (double)n,
           (double)(rss1 - rss0) * 1024.0 / (double)n, i50, i99, s50, s99, ai50, ai99, as50, as99,
           lookups);
    fflush(stdout);
    free(idx);
    free(sq);
    free(aidx);
    free(asq);
    kn_leaderboards_destroy(lbs);
    snprintf(sql, sizeof sql, "DELETE FROM leaderboard WHERE id = '%s'", id);
    kn_db_exec(db, sql);
    kn_db_close(db);
}

int main(int argc, char **argv)
{
    const char *url = "", *sizes = "10000,100000,1000000";
    int lookups = 1000;
    static const struct option longs[] = {{"database-url", required_argument, 0, 'd'},
                                          {"sizes", required_argument, 0, 's'},
                                          {"lookups", required_argument, 0, 'l'},
                                          {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (o) {
        case 'd':
            url = optarg;
            break;
        case 's':
            sizes = optarg;
            break;
        case 'l':
            lookups = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: bench_leaderboard_rank --database-url URL [--sizes N,N] "
                            "[--lookups N]\n");
            return 2;
        }
    }
    if (lookups < 10) lookups = 10;
    char *list = strdup(sizes);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        run_size(url, atol(tok), lookups);
    free(list);
    return 0;
}
