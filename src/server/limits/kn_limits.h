/* kn_limits: the abuse limits, as plain data structures with injected time.
 *
 * kn_bucket: a token bucket (rate per second, burst). Used per connection
 * for messages/s and bytes/s on the control and the match channels; owned by
 * the net thread, no locks.
 *
 * kn_lockout: failed-login lockout by key (an account and, separately, a
 * source address). After `max_failures` failures within `window_ms` the key
 * is locked for `lock_ms`; a success clears it. Shared by the API workers
 * and the net thread, so it takes a mutex; entries expire, and the table has
 * a hard cap (the oldest entries are evicted first) so a flood of distinct
 * keys cannot grow it without bound. */
#ifndef KN_LIMITS_H
#define KN_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- token bucket ------------------------------------------------------------ */

typedef struct kn_bucket {
    double tokens;
    double rate;  /* tokens per second; 0 = unlimited */
    double burst; /* capacity */
    int64_t last_ms;
} kn_bucket;

void kn_bucket_init(kn_bucket *b, double rate, double burst, int64_t now_ms);
/* Takes `cost` tokens if available; false (nothing taken) when not. */
bool kn_bucket_take(kn_bucket *b, double cost, int64_t now_ms);

/* --- lockout ------------------------------------------------------------------- */

typedef struct kn_lockout kn_lockout;

typedef struct kn_lockout_config {
    uint32_t max_failures; /* 0 = lockout disabled */
    int64_t window_ms;     /* failures older than this are forgotten */
    int64_t lock_ms;       /* how long a key stays locked */
    size_t max_entries;    /* hard cap on tracked keys */
} kn_lockout_config;

int kn_lockout_create(const kn_lockout_config *cfg, kn_lockout **out);
void kn_lockout_destroy(kn_lockout *l); /* accepts NULL */
/* 0 when not locked, else the milliseconds until it unlocks. */
int64_t kn_lockout_check(kn_lockout *l, const char *key, int64_t now_ms);
/* Records a failure; returns the lock time remaining if this failure (or an
 * earlier one) locked the key, else 0. */
int64_t kn_lockout_fail(kn_lockout *l, const char *key, int64_t now_ms);
void kn_lockout_success(kn_lockout *l, const char *key);
size_t kn_lockout_size(kn_lockout *l);

#endif
