/* lg_util: what every load generator here measures with — the monotonic and
 * process-CPU clocks, absolute sleeps, a process's CPU time from /proc, and
 * the log-linear latency histogram (bench/lg, bench/api). */
#ifndef LG_UTIL_H
#define LG_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#define LG_LAT_BUCKETS 2048 /* log-linear microsecond buckets, see lg_lat_bucket */

int64_t lg_now_ns(void); /* CLOCK_MONOTONIC */
int64_t lg_cpu_ns(void); /* this process's CPU time */
/* Sleeps until t_ns (CLOCK_MONOTONIC, absolute); returns lg_now_ns(). */
int64_t lg_sleep_until(int64_t t_ns);
/* utime + stime of a process (all its threads), in seconds; < 0 if gone. */
double lg_proc_cpu_s(int pid);
/* A PostgreSQL postmaster's CPU seconds with its live children and those it
 * already reaped (so backends that came and went count); < 0 if gone. */
double lg_pg_cpu_s(int postmaster);
/* The descriptor the next socket will get (the SDK does not expose its
 * socket: take this before kaos_client_create, then check it is a UDP
 * socket with lg_is_dgram_socket). */
int lg_lowest_free_fd(void);
bool lg_is_dgram_socket(int fd);

/* Log-linear: 1 us steps below 256 us, then 64 steps per power of two
 * (under 1.6 % error), clamped at the last bucket. */
uint32_t lg_lat_bucket(uint64_t us);
uint64_t lg_lat_bucket_value(uint32_t bucket); /* a representative value, in us */
/* The bucket holding quantile q (0..1) of a histogram with `total` samples
 * (0 when empty), and the value there. */
uint32_t lg_hist_bucket_at(const uint32_t *hist, uint64_t total, double q);
uint64_t lg_hist_quantile(const uint32_t *hist, uint64_t total, double q);

#endif
