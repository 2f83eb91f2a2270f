/* kn_time: thin wrappers over clock_gettime. */
#include "kn_time.h"

#include <time.h>

static int64_t read_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t kn_time_mono_ms(void)
{
    return read_us(CLOCK_MONOTONIC) / 1000;
}

int64_t kn_time_mono_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

int64_t kn_time_wall_ms(void)
{
    return read_us(CLOCK_REALTIME) / 1000;
}

void kn_time_deadline(int clock, int64_t after_ms, struct timespec *out)
{
    clock_gettime((clockid_t)clock, out);
    out->tv_sec += after_ms / 1000;
    out->tv_nsec += (long)(after_ms % 1000) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}
