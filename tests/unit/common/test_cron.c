/* kn_cron: a table of expressions with known next times, parse errors with
 * their messages, and random expressions cross-checked against a naive
 * minute-by-minute search that reads the calendar from gmtime_r. */
#include "kn_cron.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

/* Unix seconds of a UTC civil time, from libc rather than from kn_cron. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static int64_t next_of(const char *expr, int64_t after)
{
    kn_cron c;
    char msg[128];
    int rc = kn_cron_parse(expr, &c, msg, sizeof msg);
    if (rc) fail_msg("\"%s\" did not parse: %s", expr, msg);
    int64_t next = 0;
    rc = kn_cron_next(&c, after, &next);
    if (rc) fail_msg("\"%s\" after %lld: %s", expr, (long long)after, kn_err_name(rc));
    return next;
}

typedef struct known_case {
    const char *expr;
    int64_t after, want;
} known_case;

static void known_expressions_fire_at_known_times(void **state)
{
    const known_case cases[] = {
        {"0 0 * * *", utc(2024, 3, 10, 15, 30, 0), utc(2024, 3, 11, 0, 0, 0)},
        {"* * * * *", utc(2024, 3, 10, 15, 30, 30), utc(2024, 3, 10, 15, 31, 0)},
        {"*/15 * * * *", utc(2024, 3, 10, 15, 30, 0), utc(2024, 3, 10, 15, 45, 0)},
        {"*/15 * * * *", utc(2024, 3, 10, 15, 44, 59), utc(2024, 3, 10, 15, 45, 0)},
        {"*/15 * * * *", utc(2024, 3, 10, 23, 50, 0), utc(2024, 3, 11, 0, 0, 0)},
        /* 2024-03-08 is a Friday: the weekend is skipped. */
        {"0 9 * * MON-FRI", utc(2024, 3, 8, 10, 0, 0), utc(2024, 3, 11, 9, 0, 0)},
        {"0 9 * * 1-5", utc(2024, 3, 9, 8, 0, 0), utc(2024, 3, 11, 9, 0, 0)},
        {"0 9 * * mon-fri", utc(2024, 3, 11, 8, 59, 59), utc(2024, 3, 11, 9, 0, 0)},
        /* Leap days, including across the non-leap 2100. */
        {"0 0 29 2 *", utc(2023, 3, 1, 0, 0, 0), utc(2024, 2, 29, 0, 0, 0)},
        {"0 0 29 2 *", utc(2024, 2, 29, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0)},
        {"0 0 29 2 *", utc(2097, 1, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0)},
        {"0 0 29 2 *", utc(1999, 3, 1, 0, 0, 0), utc(2000, 2, 29, 0, 0, 0)},
        /* Both day fields restricted: the 1st, the 15th or any Wednesday. */
        {"0 0 1,15 * 3", utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 6, 0, 0, 0)},
        {"0 0 1,15 * 3", utc(2024, 3, 13, 0, 0, 0), utc(2024, 3, 15, 0, 0, 0)},
        {"0 0 1,15 * 3", utc(2024, 3, 27, 0, 0, 0), utc(2024, 4, 1, 0, 0, 0)},
        {"0 0 13 * 5", utc(2024, 9, 1, 0, 0, 0), utc(2024, 9, 6, 0, 0, 0)},
        /* A stepped day of month is a restriction (Nakama, not Vixie). */
        {"0 0 */2 * 1", utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 3, 0, 0, 0)},
        {"0 0 */10 * *", utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 11, 0, 0, 0)},
        /* Sunday is 0 or 7. */
        {"0 0 * * 7", utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 3, 0, 0, 0)},
        {"0 0 * * 5-7", utc(2024, 3, 2, 0, 0, 0), utc(2024, 3, 3, 0, 0, 0)},
        {"0 0 * * SUN", utc(2024, 3, 3, 0, 0, 0), utc(2024, 3, 10, 0, 0, 0)},
        {"@hourly", utc(2024, 3, 10, 10, 0, 0), utc(2024, 3, 10, 11, 0, 0)},
        {"@hourly", utc(2024, 3, 10, 10, 59, 59), utc(2024, 3, 10, 11, 0, 0)},
        {"@daily", utc(2024, 3, 10, 0, 0, 0), utc(2024, 3, 11, 0, 0, 0)},
        {"@midnight", utc(2024, 3, 10, 12, 0, 0), utc(2024, 3, 11, 0, 0, 0)},
        {"@weekly", utc(2024, 3, 1, 0, 0, 0), utc(2024, 3, 3, 0, 0, 0)},
        {"@monthly", utc(2024, 12, 15, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)},
        {"@yearly", utc(2024, 6, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)},
        {"  @ANNUALLY\t", utc(2024, 6, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0)},
        /* Year rollover. */
        {"0 0 1 1 *", utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 0, 0, 0)},
        {"59 23 31 12 *", utc(2024, 6, 1, 0, 0, 0), utc(2024, 12, 31, 23, 59, 0)},
        {"59 23 31 12 *", utc(2024, 12, 31, 23, 59, 0), utc(2025, 12, 31, 23, 59, 0)},
        {"30 4 1 JAN,july *", utc(2024, 2, 1, 0, 0, 0), utc(2024, 7, 1, 4, 30, 0)},
        {"0 12 31 * *", utc(2024, 4, 1, 0, 0, 0), utc(2024, 5, 31, 12, 0, 0)},
        /* "a/n" runs from a to the end of the field. */
        {"5/20 * * * *", utc(2024, 3, 10, 10, 0, 0), utc(2024, 3, 10, 10, 5, 0)},
        {"5/20 * * * *", utc(2024, 3, 10, 10, 45, 0), utc(2024, 3, 10, 11, 5, 0)},
        {"0 22-23/1,3 * * *", utc(2024, 3, 10, 23, 0, 0), utc(2024, 3, 11, 3, 0, 0)},
        /* Before 1970 and at the ends of the accepted range. */
        {"0 0 1 1 *", utc(1969, 6, 1, 0, 0, 0), 0},
        {"* * * * *", -30, 0},
        {"* * * * *", KN_CRON_TIME_MAX, KN_CRON_TIME_MAX + 1},
        {"0 0 1 1 *", KN_CRON_TIME_MIN, utc(1, 1, 1, 0, 0, 0) + 365 * 86400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = next_of(cases[i].expr, cases[i].after);
        if (got != cases[i].want)
            fail_msg("\"%s\" after %lld: got %lld, want %lld", cases[i].expr,
                     (long long)cases[i].after, (long long)got, (long long)cases[i].want);
    }
}

/* Every calendar rule (month lengths, leap years, the 100/400 exceptions)
 * shows up as a skipped or doubled day somewhere in 1800..2401. */
static void daily_expression_visits_every_day_of_four_centuries(void **state)
{
    kn_cron c;
    assert_int_equal(kn_cron_parse("30 12 * * *", &c, NULL, 0), KN_OK);
    int64_t t = utc(1800, 1, 1, 12, 30, 0);
    const int64_t end = utc(2401, 1, 1, 12, 30, 0);
    int leap_days = 0;
    while (t < end) {
        int64_t next;
        assert_int_equal(kn_cron_next(&c, t, &next), KN_OK);
        if (next != t + 86400) fail_msg("after %lld: got %lld", (long long)t, (long long)next);
        time_t tt = (time_t)next;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        leap_days += tm.tm_mon == 1 && tm.tm_mday == 29;
        t = next;
    }
    /* 1800..2400: 151 multiples of 4, less 1800, 1900, 2100, 2200, 2300. */
    assert_int_equal(leap_days, 146);
}

static void impossible_dates_are_not_found(void **state)
{
    const char *never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        kn_cron c;
        assert_int_equal(kn_cron_parse(never[i], &c, NULL, 0), KN_OK);
        int64_t next = 42;
        assert_int_equal(kn_cron_next(&c, utc(2024, 1, 1, 0, 0, 0), &next), KN_ERR_NOT_FOUND);
        assert_int_equal(next, 42);
    }
}

static void times_outside_the_range_are_rejected(void **state)
{
    kn_cron c;
    int64_t next;
    assert_int_equal(kn_cron_parse("* * * * *", &c, NULL, 0), KN_OK);
    assert_int_equal(kn_cron_next(&c, KN_CRON_TIME_MAX + 1, &next), KN_ERR_OUT_OF_RANGE);
    assert_int_equal(kn_cron_next(&c, KN_CRON_TIME_MIN - 1, &next), KN_ERR_OUT_OF_RANGE);
    assert_int_equal(kn_cron_next(&c, INT64_MAX, &next), KN_ERR_OUT_OF_RANGE);
    assert_int_equal(kn_cron_next(&c, INT64_MIN, &next), KN_ERR_OUT_OF_RANGE);
}

static void fields_parse_into_value_sets(void **state)
{
    kn_cron c;
    assert_int_equal(kn_cron_parse("1-10/3 */6 1,31 jan-MAR/2 SUN,7", &c, NULL, 0), KN_OK);
    assert_true(c.minutes == ((1ULL << 1) | (1ULL << 4) | (1ULL << 7) | (1ULL << 10)));
    assert_int_equal(c.hours, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    assert_int_equal(c.days, (1u << 1) | (1u << 31));
    assert_int_equal(c.months, (1u << 1) | (1u << 3));
    assert_int_equal(c.weekdays, 1);
    assert_false(c.dom_star);
    assert_false(c.dow_star);

    assert_int_equal(kn_cron_parse("\t* *  ? *\t* ", &c, NULL, 0), KN_OK);
    assert_true(c.minutes == (1ULL << 60) - 1);
    assert_int_equal(c.hours, (1u << 24) - 1);
    assert_int_equal(c.days, 0xfffffffeu);
    assert_int_equal(c.months, 0x1ffe);
    assert_int_equal(c.weekdays, 0x7f);
    assert_true(c.dom_star);
    assert_true(c.dow_star);

    /* "*" anywhere in the list unrestricts; a stepped "*" does not. */
    assert_int_equal(kn_cron_parse("0 0 5,* 1 */2", &c, NULL, 0), KN_OK);
    assert_true(c.dom_star);
    assert_false(c.dow_star);
    assert_int_equal(c.weekdays, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 6));

    /* Full names, any case; 7 and "*" / 7 on day-of-week are Sunday. */
    assert_int_equal(kn_cron_parse("0 0 1 September-december sunday,Saturday", &c, NULL, 0), KN_OK);
    assert_int_equal(c.months, 0x1e00);
    assert_int_equal(c.weekdays, (1u << 0) | (1u << 6));
    assert_int_equal(kn_cron_parse("0 0 1 1 */7", &c, NULL, 0), KN_OK);
    assert_int_equal(c.weekdays, 1);
    assert_int_equal(kn_cron_parse("0 0 1 1 4/2", &c, NULL, 0), KN_OK);
    assert_int_equal(c.weekdays, (1u << 4) | (1u << 6));
    assert_int_equal(kn_cron_parse("007 00 01 012 07", &c, NULL, 0), KN_OK);
    assert_true(c.minutes == 1ULL << 7);
    assert_int_equal(c.months, 1u << 12);
    assert_int_equal(c.weekdays, 1);
}

typedef struct error_case {
    const char *expr, *msg;
} error_case;

static void bad_expressions_are_rejected_with_a_reason(void **state)
{
    const error_case cases[] = {
        {"", "empty expression"},
        {" \t ", "empty expression"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
        {"* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
        {"hello", "expected 5 fields (minute hour day-of-month month day-of-week), got 1"},
        {"60 * * * *", "minute field: 60 is out of range 0-59"},
        {"* 24 * * *", "hour field: 24 is out of range 0-23"},
        {"* * 0 * *", "day-of-month field: 0 is out of range 1-31"},
        {"* * 32 * *", "day-of-month field: 32 is out of range 1-31"},
        {"* * * 0 *", "month field: 0 is out of range 1-12"},
        {"* * * 13 *", "month field: 13 is out of range 1-12"},
        {"* * * * 8", "day-of-week field: 8 is out of range 0-7"},
        {"99999999999999999999 * * * *", "minute field: 99999999999999999999 is out of range 0-59"},
        {"1-60 * * * *", "minute field: 60 is out of range 0-59"},
        {"*/0 * * * *", "minute field: step 0 must be 1-60"},
        {"0-30/0 * * * *", "minute field: step 0 must be 1-60"},
        {"* */25 * * *", "hour field: step 25 must be 1-24"},
        {"* * * * */8", "day-of-week field: step 8 must be 1-7"},
        {"*/ * * * *", "minute field: step in \"*/\" must be a number"},
        {"*/x * * * *", "minute field: step in \"*/x\" must be a number"},
        {"5-2 * * * *", "minute field: range \"5-2\" runs backwards"},
        {"* * * DEC-JAN *", "month field: range \"DEC-JAN\" runs backwards"},
        {"1- * * * *", "minute field: missing value"},
        {"-1 * * * *", "minute field: unexpected character '-'"},
        {"1-* * * * *", "minute field: unexpected character '*'"},
        {"1,,2 * * * *", "minute field: empty list element"},
        {"1, * * * *", "minute field: empty list element"},
        {"5#3 * * * *", "minute field: unexpected character '#' in \"5#3\""},
        {"* * * * 5L", "day-of-week field: unexpected character 'L' in \"5L\""},
        {"*5 * * * *", "minute field: unexpected character '5' in \"*5\""},
        {"1/2/3 * * * *", "minute field: unexpected character '/' in \"1/2/3\""},
        {"?/5 * * * *", "minute field: \"?\" must stand alone, got \"?/5\""},
        {"a * * * *", "minute field: names are not allowed here, got \"a\""},
        {"* * L * *", "day-of-month field: names are not allowed here, got \"L\""},
        {"* * * FOO *", "month field: unknown name \"FOO\""},
        {"* * * * MONDAYS", "day-of-week field: unknown name \"MONDAYS\""},
        {"* * * * MO", "day-of-week field: unknown name \"MO\""},
        {"* * * * MON/x", "day-of-week field: step in \"MON/x\" must be a number"},
        {"@reboot", "unknown macro \"@reboot\""},
        {"@", "unknown macro \"@\""},
        {"@daily 1", "\"@daily\" must be the whole expression"},
        {"0 0 * * * @daily",
         "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
        {"* * * * @daily", "day-of-week field: unexpected character '@'"},
        {"\x01 * * * *", "minute field: unexpected character 0x01"},
        {"1\xff * * * *", "minute field: unexpected character 0xff in \"1\xff\""},
        /* Quoted input is cut at 40 characters. */
        {"0 0 * * monday-fridayyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
         "day-of-week field: unknown name \"fridayyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kn_cron c;
        char msg[160] = "untouched";
        int rc = kn_cron_parse(cases[i].expr, &c, msg, sizeof msg);
        if (rc != KN_ERR_INVALID_ARGUMENT)
            fail_msg("\"%s\": rc %s, want INVALID_ARGUMENT", cases[i].expr, kn_err_name(rc));
        if (strcmp(msg, cases[i].msg))
            fail_msg("\"%s\": message \"%s\", want \"%s\"", cases[i].expr, msg, cases[i].msg);
    }
}

static void messages_fit_any_buffer(void **state)
{
    kn_cron c;
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(kn_cron_parse("60 * * * *", &c, small, sizeof small), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(small, "minute ");
    assert_int_equal(kn_cron_parse("60 * * * *", &c, NULL, 0), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_cron_parse("60 * * * *", &c, small, 0), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(small[0], 'm');
    /* Success clears a message left from before. */
    assert_int_equal(kn_cron_parse("0 * * * *", &c, small, sizeof small), KN_OK);
    assert_string_equal(small, "");
}

/* --- random expressions against a naive search ----------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

typedef struct ref_field {
    int lo, hi, star_hi, max_step;
    const char *const *names;
    int names_base;
    bool allowed[8 + 60];
    bool star;
} ref_field;

static const char *const ref_months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const ref_dows[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* Appends a value, written as a name (three letters, random case) when the
 * field has names and the dice say so. */
static void put_value(char **w, const ref_field *f, int v)
{
    int idx = v - f->names_base;
    if (f->names && idx >= 0 && idx < (f->names == ref_months ? 12 : 7) && rnd(2)) {
        for (int i = 0; i < 3; i++) {
            char ch = f->names[idx][i];
            *(*w)++ = rnd(2) ? (char)(ch - 'a' + 'A') : ch;
        }
        return;
    }
    *w += sprintf(*w, "%d", v);
}

/* Writes one random field into *w and fills f->allowed / f->star the way the
 * header describes the grammar. A sparse field is one plain value, so that
 * the search has to skip far. */
static void random_field(char **w, ref_field *f, bool sparse)
{
    memset(f->allowed, 0, sizeof f->allowed);
    f->star = false;
    if (sparse) {
        int v = f->lo + (int)rnd((uint32_t)(f->hi - f->lo + 1));
        put_value(w, f, v);
        f->allowed[v] = true;
        if (v == 7 && f->names == ref_dows) f->allowed[0] = true;
        return;
    }
    if (rnd(3) == 0) { /* a lone star is the most common field in practice */
        *(*w)++ = rnd(8) ? '*' : '?';
        f->star = true;
        for (int v = f->lo; v <= f->star_hi; v++)
            f->allowed[v] = true;
        return;
    }
    int n = 1 + (int)rnd(3);
    for (int e = 0; e < n; e++) {
        if (e) *(*w)++ = ',';
        int a = f->lo + (int)rnd((uint32_t)(f->hi - f->lo + 1)), b = a, step = 1;
        switch (rnd(6)) {
        case 0: /* a */
            put_value(w, f, a);
            break;
        case 1: /* a-b */
            b = a + (int)rnd((uint32_t)(f->hi - a + 1));
            put_value(w, f, a);
            *(*w)++ = '-';
            put_value(w, f, b);
            break;
        case 2: /* a-b/n */
            b = a + (int)rnd((uint32_t)(f->hi - a + 1));
            step = 1 + (int)rnd((uint32_t)f->max_step);
            put_value(w, f, a);
            *(*w)++ = '-';
            put_value(w, f, b);
            *w += sprintf(*w, "/%d", step);
            break;
        case 3: /* star with a step */
            a = f->lo, b = f->star_hi;
            step = 1 + (int)rnd((uint32_t)f->max_step);
            *w += sprintf(*w, "*/%d", step);
            break;
        case 4: /* a/n: from a to the end of the field */
            b = f->star_hi > a ? f->star_hi : a;
            step = 1 + (int)rnd((uint32_t)f->max_step);
            put_value(w, f, a);
            *w += sprintf(*w, "/%d", step);
            break;
        default: /* a bare star inside a list */
            a = f->lo, b = f->star_hi;
            *(*w)++ = '*';
            f->star = true;
            break;
        }
        for (int v = a; v <= b; v += step)
            f->allowed[v] = true;
    }
    if (f->allowed[7] && f->names == ref_dows) f->allowed[0] = true; /* 7 is Sunday */
}

enum { MIN, HOUR, DOM, MON, DOW };

static void random_expression(char *buf, ref_field f[5], bool sparse)
{
    const ref_field shape[5] = {
        {0, 59, 59, 60, NULL, 0, {0}, false},  {0, 23, 23, 24, NULL, 0, {0}, false},
        {1, 31, 31, 31, NULL, 0, {0}, false},  {1, 12, 12, 12, ref_months, 1, {0}, false},
        {0, 7, 6, 7, ref_dows, 0, {0}, false},
    };
    char *w = buf;
    for (int i = 0; i < 5; i++) {
        f[i] = shape[i];
        if (i) *w++ = rnd(4) ? ' ' : '\t';
        if (sparse && i == DOW && rnd(2)) {
            /* One day a year, or never (Feb 30): the day of month alone decides. */
            *w++ = '*';
            f[i].star = true;
            for (int v = 0; v <= 6; v++)
                f[i].allowed[v] = true;
            continue;
        }
        random_field(&w, &f[i], sparse && rnd(4));
    }
    *w = '\0';
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

/* Does the expression described by f fire at minute t? The calendar comes
 * from gmtime_r, so this shares nothing with kn_cron's date arithmetic. */
static bool ref_fires_at(const ref_field f[5], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(gmtime_r(&tt, &tm));
    bool dom = f[DOM].allowed[tm.tm_mday], dow = f[DOW].allowed[tm.tm_wday];
    bool day = (f[DOM].star || f[DOW].star) ? dom && dow : dom || dow;
    return tm.tm_sec == 0 && f[MIN].allowed[tm.tm_min] && f[HOUR].allowed[tm.tm_hour] &&
           f[MON].allowed[tm.tm_mon + 1] && day;
}

/* Minute by minute from the first whole minute after `after` up to `limit`.
 * gmtime_r runs once per day; within a day the minute and hour are plain
 * arithmetic. */
static bool naive_next(const ref_field f[5], int64_t after, int64_t limit, int64_t *found)
{
    int64_t t = after - floor_mod(after, 60) + 60;
    int64_t day_start = INT64_MIN;
    bool day = false;
    for (; t <= limit; t += 60) {
        int64_t ds = t - floor_mod(t, 86400);
        if (ds != day_start) {
            time_t tt = (time_t)ds;
            struct tm tm;
            assert_non_null(gmtime_r(&tt, &tm));
            bool dom = f[DOM].allowed[tm.tm_mday], dow = f[DOW].allowed[tm.tm_wday];
            day = f[MON].allowed[tm.tm_mon + 1] &&
                  ((f[DOM].star || f[DOW].star) ? dom && dow : dom || dow);
            day_start = ds;
        }
        int64_t sec = t - ds;
        if (day && f[HOUR].allowed[sec / 3600] && f[MIN].allowed[sec / 60 % 60]) {
            *found = t;
            return true;
        }
    }
    return false;
}

static void random_expressions_agree_with_a_naive_search(void **state)
{
    const int64_t lo = utc(1900, 1, 1, 0, 0, 0), hi = utc(2200, 1, 1, 0, 0, 0);
    const int64_t year = 366 * 86400;
    int agreed = 0, beyond = 0, never = 0;
    for (int i = 0; i < 600; i++) {
        char expr[256];
        ref_field f[5];
        random_expression(expr, f, i % 4 == 0);
        kn_cron c;
        char msg[128];
        if (kn_cron_parse(expr, &c, msg, sizeof msg))
            fail_msg("\"%s\" did not parse: %s", expr, msg);
        int64_t after =
            lo + (int64_t)(((uint64_t)rnd(1u << 31) << 20 ^ rnd(1u << 20)) % (uint64_t)(hi - lo));
        /* Three steps from a random second, each later one from an exact match. */
        for (int k = 0; k < 3; k++) {
            int64_t want, got = 0;
            bool has = naive_next(f, after, after + year, &want);
            int rc = kn_cron_next(&c, after, &got);
            if (has) {
                if (rc != KN_OK || got != want)
                    fail_msg("\"%s\" after %lld: got %lld (%s), naive %lld", expr, (long long)after,
                             (long long)got, kn_err_name(rc), (long long)want);
                agreed++;
                after = got;
                continue;
            }
            /* Nothing within a year: kn_cron must find nothing or a later match. */
            if (rc == KN_ERR_NOT_FOUND) {
                never++;
                break;
            }
            assert_int_equal(rc, KN_OK);
            if (got <= after + year || !ref_fires_at(f, got))
                fail_msg("\"%s\" after %lld: got %lld, naive found nothing within a year", expr,
                         (long long)after, (long long)got);
            beyond++;
            break;
        }
    }
    print_message("%d agreed, %d beyond a year, %d never\n", agreed, beyond, never);
    assert_true(agreed > 800);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_expressions_fire_at_known_times),
        cmocka_unit_test(daily_expression_visits_every_day_of_four_centuries),
        cmocka_unit_test(impossible_dates_are_not_found),
        cmocka_unit_test(times_outside_the_range_are_rejected),
        cmocka_unit_test(fields_parse_into_value_sets),
        cmocka_unit_test(bad_expressions_are_rejected_with_a_reason),
        cmocka_unit_test(messages_fit_any_buffer),
        cmocka_unit_test(random_expressions_agree_with_a_naive_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
