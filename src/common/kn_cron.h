/* kn_cron: five-field cron expressions and "when does it fire next".
 *
 * Grammar (Vixie cron, with the extensions Nakama's cron_next accepts):
 *
 *   minute hour day-of-month month day-of-week     separated by spaces or tabs
 *   field   = element { "," element }
 *   element = "*" | "?" | value | value "-" value | ("*" | value | value "-" value) "/" step
 *
 *   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN..DEC,
 *   day-of-week 0-7 or SUN..SAT (0 and 7 are both Sunday). Names are
 *   case-insensitive and may be three letters or the full English word.
 *   "a-b/n" is a, a+n, ... up to b; "*" / n starts at the field's first value;
 *   "a/n" means "a-<last value>/n". A step is 1 up to the number of values in
 *   the field (60, 24, 31, 12, 7). A range must not run backwards ("5-2").
 *   "?" is a synonym of "*" (Quartz habit, accepted by Nakama).
 *   Macros, the whole expression, case-insensitive: @yearly = @annually =
 *   "0 0 1 1 *", @monthly = "0 0 1 * *", @weekly = "0 0 * * 0",
 *   @daily = @midnight = "0 0 * * *", @hourly = "0 * * * *". No @reboot.
 *
 * Day rule: a day matches when day-of-month and day-of-week both match, except
 * that when both fields are restricted it matches when EITHER does
 * ("0 0 1,15 * 3" fires on the 1st, the 15th and every Wednesday). A field is
 * unrestricted when one of its elements is a bare "*" (or "?"). Vixie cron
 * also counts a field that merely starts with "*" ("*" / 2) as unrestricted;
 * we follow Nakama (gorhill/cronexpr) and POSIX, where a step restricts.
 *
 * Times are Unix seconds evaluated in UTC, never in the process time zone.
 * Everything here is pure computation on caller memory: any thread. */
#ifndef KN_CRON_H
#define KN_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* kn_cron_next accepts `after` from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
#define KN_CRON_TIME_MIN (-62135596800LL)
#define KN_CRON_TIME_MAX 253402300799LL

/* A parsed expression: one bit per allowed value. Every set is non-empty. */
typedef struct kn_cron {
    uint64_t minutes; /* bit m, m in 0..59 */
    uint32_t hours;   /* bit h, h in 0..23 */
    uint32_t days;    /* bit d, d in 1..31 (day of month) */
    uint16_t months;  /* bit m, m in 1..12 */
    uint8_t weekdays; /* bit w, w in 0..6, 0 = Sunday (7 is folded into 0) */
    bool dom_star;    /* day-of-month unrestricted (see the day rule above) */
    bool dow_star;    /* day-of-week unrestricted */
} kn_cron;

/* Parses `expr` (NUL-terminated) into *out. On KN_ERR_INVALID_ARGUMENT *out is
 * unspecified and, when msg_cap > 0, msg holds a NUL-terminated reason naming
 * the field and the offending text, e.g.
 * "hour field: 24 is out of range 0-23". msg may be NULL. */
int kn_cron_parse(const char *expr, kn_cron *out, char *msg, size_t msg_cap);

/* The first time at which `c` fires strictly after `after_unix_sec`, in whole
 * minutes (seconds are always 0), into *next_unix_sec.
 * KN_ERR_NOT_FOUND: the expression can never fire (e.g. "0 0 30 2 *"). The
 *   search spans a full 400-year Gregorian cycle, so any expression that fires
 *   at all is found ("0 0 29 2 *" from 2097 is 2104-02-29).
 * KN_ERR_OUT_OF_RANGE: after_unix_sec is outside KN_CRON_TIME_MIN..MAX.
 * Cost: steps by month, day and hour with bit scans, never by minute: a
 * handful of steps for a typical expression, under 10k (microseconds) to
 * prove that one can never fire. */
int kn_cron_next(const kn_cron *c, int64_t after_unix_sec, int64_t *next_unix_sec);

#endif
