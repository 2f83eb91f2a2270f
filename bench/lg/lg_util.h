/* lg_util: what every load generator here measures with — the monotonic and
 * process-CPU clocks, absolute sleeps, a process's CPU time from /proc, the
 * log-linear latency histogram, and finding an SDK client's socket (bench/lg,
 * bench/api, bench/storage, bench/social). */
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
/* The same for a process (a postmaster), its live children and the
 * children it already reaped (its cutime + cstime); < 0 if it is gone. */
double lg_proc_tree_cpu_s(int pid);
/* CPU seconds the whole machine has been busy, all CPUs together (/proc/stat:
 * user, nice, system, irq and softirq; not idle, iowait or steal); < 0 if
 * unreadable. */
double lg_machine_busy_s(void);

/* The SDK does not expose its socket: the lowest free descriptor before
 * kaos_client_create is the one its ENet socket gets (check it with
 * lg_is_dgram_socket afterwards), so clients can be polled when readable. */
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
