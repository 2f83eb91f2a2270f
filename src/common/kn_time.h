/* kn_time: clocks. Modules that schedule work take `now_ms` as a parameter
 * instead of calling these, so tests can step time; only loops and the
 * composition root read the clock. All values are int64_t milliseconds. */
#ifndef KN_TIME_H
#define KN_TIME_H

#include <stdint.h>

int64_t kn_time_mono_ms(void); /* CLOCK_MONOTONIC */
int64_t kn_time_mono_us(void);
int64_t kn_time_wall_ms(void); /* Unix epoch */

/* `clock` now plus `after_ms`, as the absolute time pthread_cond_timedwait
 * takes (CLOCK_REALTIME unless the condition variable was set to another). */
struct timespec;
void kn_time_deadline(int clock, int64_t after_ms, struct timespec *out);

#endif
