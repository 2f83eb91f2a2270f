/* libFuzzer target: cron expressions (they come from Lua scripts).
 * Properties: a rejected expression leaves a message; a parsed one has
 * non-empty value sets inside their ranges, and kn_cron_next from a time
 * taken from the input returns a whole minute strictly later at which the
 * expression fires by gmtime_r's calendar, or NOT_FOUND. */
#include "kn_cron.h"
#include "kn_error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fires_at(const kn_cron *c, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) abort();
    bool dom = (c->days >> tm.tm_mday) & 1, dow = (c->weekdays >> tm.tm_wday) & 1;
    bool day = (c->dom_star || c->dow_star) ? dom && dow : dom || dow;
    return tm.tm_sec == 0 && ((c->minutes >> tm.tm_min) & 1) && ((c->hours >> tm.tm_hour) & 1) &&
           ((c->months >> (tm.tm_mon + 1)) & 1) && day;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first 8 bytes, when there are more, pick the start time. */
    int64_t after = 1700000000;
    if (size > 8) {
        uint64_t r;
        memcpy(&r, data, 8);
        after =
            KN_CRON_TIME_MIN + (int64_t)(r % (uint64_t)(KN_CRON_TIME_MAX - KN_CRON_TIME_MIN + 1));
        data += 8;
        size -= 8;
    }
    char *expr = malloc(size + 1);
    memcpy(expr, data, size);
    expr[size] = '\0';

    kn_cron c;
    char msg[96];
    int rc = kn_cron_parse(expr, &c, msg, sizeof msg);
    free(expr);
    if (rc != KN_OK) {
        if (rc != KN_ERR_INVALID_ARGUMENT || !msg[0] || !memchr(msg, '\0', sizeof msg)) abort();
        return 0;
    }
    if (!c.minutes || c.minutes >> 60 || !c.hours || c.hours >> 24 || !c.days || (c.days & 1) ||
        !c.months || (c.months & 1) || c.months >> 13 || !c.weekdays || c.weekdays >> 7)
        abort();

    for (int i = 0; i < 3; i++) {
        int64_t next;
        rc = kn_cron_next(&c, after, &next);
        if (rc == KN_ERR_NOT_FOUND || (rc == KN_ERR_OUT_OF_RANGE && after > KN_CRON_TIME_MAX))
            return 0;
        if (rc != KN_OK || next <= after || next - after > 401LL * 366 * 86400 || next % 60 ||
            !fires_at(&c, next))
            abort();
        after = next;
    }
    return 0;
}
