/* lg_util: clocks, /proc CPU time, latency histograms and socket finding
 * (lg_util.h). */
#include "lg_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t lg_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t lg_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

int64_t lg_sleep_until(int64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    return lg_now_ns();
}

/* utime, stime, cutime, cstime (clock ticks) of pid; its parent into *ppid. */
static bool proc_ticks(int pid, unsigned long long t[4], int *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces): state ppid pgrp
     * session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     * cutime cstime. */
    const char *p = strrchr(buf, ')');
    int pp = 0;
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &pp,
                     &t[0], &t[1], &t[2], &t[3]) != 5)
        return false;
    if (ppid) *ppid = pp;
    return true;
}

double lg_proc_cpu_s(int pid)
{
    unsigned long long t[4];
    if (!proc_ticks(pid, t, NULL)) return -1;
    return (double)(t[0] + t[1]) / (double)sysconf(_SC_CLK_TCK);
}

double lg_proc_tree_cpu_s(int pid)
{
    unsigned long long t[4];
    if (pid <= 0 || !proc_ticks(pid, t, NULL)) return -1;
    unsigned long long ticks = t[0] + t[1] + t[2] + t[3];
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int child = atoi(e->d_name), ppid = 0;
        unsigned long long c[4];
        if (child > 0 && proc_ticks(child, c, &ppid) && ppid == pid) ticks += c[0] + c[1];
    }
    if (d) closedir(d);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

double lg_machine_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[7];
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]);
    fclose(f);
    if (n != 7) return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / (double)sysconf(_SC_CLK_TCK);
}

int lg_lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return fd;
}

bool lg_is_dgram_socket(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

uint32_t lg_lat_bucket(uint64_t us)
{
    if (us < 256) return (uint32_t)us;
    uint32_t e = 63 - (uint32_t)__builtin_clzll(us); /* >= 8 */
    uint32_t sub = (uint32_t)(us >> (e - 6)) & 63;
    uint64_t b = 256 + (uint64_t)(e - 8) * 64 + sub;
    return b < LG_LAT_BUCKETS ? (uint32_t)b : LG_LAT_BUCKETS - 1;
}

uint64_t lg_lat_bucket_value(uint32_t bucket)
{
    if (bucket < 256) return bucket;
    uint32_t e = 8 + (bucket - 256) / 64, sub = (bucket - 256) % 64;
    uint64_t width = 1ull << (e - 6);
    return (1ull << e) + sub * width + width / 2;
}

uint32_t lg_hist_bucket_at(const uint32_t *hist, uint64_t total, double q)
{
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)(total - 1)) + 1, seen = 0;
    for (uint32_t b = 0; b < LG_LAT_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank) return b;
    }
    return LG_LAT_BUCKETS - 1;
}

uint64_t lg_hist_quantile(const uint32_t *hist, uint64_t total, double q)
{
    return total ? lg_lat_bucket_value(lg_hist_bucket_at(hist, total, q)) : 0;
}
