/* kn_cron: see header.
 *
 * Parsing builds one 64-bit set per field (bit v = value v allowed), then
 * narrows it into kn_cron. kn_cron_next walks the calendar from the first
 * whole minute after `after`: a month not in the set jumps to the next allowed
 * month, a day that does not match moves on a day (or straight to the next
 * allowed day of month when the weekday does not matter), an hour not in the
 * set jumps to the next allowed hour, and the minute is a bit scan. Civil
 * dates come from Howard Hinnant's days-from-civil algorithms, so nothing
 * depends on the process time zone or on time_t's width. */
#include "kn_cron.h"
#include "kn_error.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* --- parsing --------------------------------------------------------------- */

typedef struct field_desc {
    const char *name;
    int lo, hi;               /* values a number may take */
    int star_hi;              /* last value "*" covers (day-of-week: 6, not 7) */
    int max_step;             /* number of distinct values */
    const char *const *names; /* 12 or 7 names for values names_base.., or NULL */
    int names_base;
} field_desc;

static const char *const month_names[] = {"january",   "february", "march",    "april",
                                          "may",       "june",     "july",     "august",
                                          "september", "october",  "november", "december"};
static const char *const dow_names[] = {"sunday",   "monday", "tuesday", "wednesday",
                                        "thursday", "friday", "saturday"};

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const field_desc fields[F_COUNT] = {
    {"minute", 0, 59, 59, 60, NULL, 0},        {"hour", 0, 23, 23, 24, NULL, 0},
    {"day-of-month", 1, 31, 31, 31, NULL, 0},  {"month", 1, 12, 12, 12, month_names, 1},
    {"day-of-week", 0, 7, 6, 7, dow_names, 0},
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Quoted input in messages is cut short: the text may be arbitrary Lua data. */
static int shown(size_t len)
{
    return len > 40 ? 40 : (int)len;
}

/* A character for a message: itself if printable, else its byte value. */
static const char *show_char(char ch, char buf[8])
{
    unsigned char u = (unsigned char)ch;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, 8, "'%c'", ch);
    else
        snprintf(buf, 8, "0x%02x", u);
    return buf;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool is_alpha(char ch)
{
    return lower(ch) >= 'a' && lower(ch) <= 'z';
}

/* Case-insensitive: s[0..len) equals all of `word`. */
static bool word_eq(const char *s, size_t len, const char *word)
{
    size_t i = 0;
    for (; i < len && word[i]; i++)
        if (lower(s[i]) != word[i]) return false;
    return i == len && word[i] == '\0';
}

/* A name is written in full or as its first three letters, in any case. */
static bool name_matches(const char *s, size_t len, const char *name)
{
    if (len != 3) return word_eq(s, len, name);
    return lower(s[0]) == name[0] && lower(s[1]) == name[1] && lower(s[2]) == name[2];
}

/* Reads digits at *p into *v (capped so it cannot overflow). Returns the
 * number of digits read. */
static size_t read_number(const char **p, const char *end, int *v)
{
    const char *s = *p;
    int n = 0;
    while (s < end && is_digit(*s)) {
        if (n < 100000) n = n * 10 + (*s - '0');
        s++;
    }
    size_t len = (size_t)(s - *p);
    *p = s;
    *v = n;
    return len;
}

/* One value: a number in lo..hi or, where the field has names, a three-letter
 * or full name. */
static int read_value(const field_desc *f, const char **p, const char *end, int *v, char *msg,
                      size_t cap)
{
    const char *start = *p;
    if (start < end && is_digit(*start)) {
        read_number(p, end, v);
        if (*v < f->lo || *v > f->hi)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "%s field: %.*s is out of range %d-%d", f->name,
                              shown((size_t)(*p - start)), start, f->lo, f->hi);
        return KN_OK;
    }
    if (start < end && is_alpha(*start)) {
        const char *s = start;
        while (s < end && is_alpha(*s))
            s++;
        size_t len = (size_t)(s - start);
        *p = s;
        size_t count = f->names == month_names ? 12 : 7;
        for (size_t i = 0; f->names && i < count; i++) {
            if (name_matches(start, len, f->names[i])) {
                *v = f->names_base + (int)i;
                return KN_OK;
            }
        }
        if (!f->names)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "%s field: names are not allowed here, got \"%.*s\"", f->name,
                              shown(len), start);
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s field: unknown name \"%.*s\"",
                          f->name, shown(len), start);
    }
    if (start == end)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s field: missing value", f->name);
    char cb[8];
    return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s field: unexpected character %s",
                      f->name, show_char(*start, cb));
}

/* One list element, [p, end) without commas: sets its values in *bits and
 * reports whether it was a bare "*" or "?". */
static int parse_element(const field_desc *f, const char *p, const char *end, uint64_t *bits,
                         bool *star, char *msg, size_t cap)
{
    const char *elem = p;
    int elen = shown((size_t)(end - p));
    if (p == end)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s field: empty list element",
                          f->name);
    int a, b, step = 1;
    if (*p == '?') {
        if (end - p != 1)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "%s field: \"?\" must stand alone, got \"%.*s\"", f->name, elen,
                              elem);
        *star = true;
        a = f->lo, b = f->star_hi;
        p++;
    } else if (*p == '*') {
        p++;
        if (p == end) *star = true;
        a = f->lo, b = f->star_hi;
    } else {
        int rc = read_value(f, &p, end, &a, msg, cap);
        if (rc) return rc;
        b = a;
        if (p < end && *p == '-') {
            p++;
            rc = read_value(f, &p, end, &b, msg, cap);
            if (rc) return rc;
            if (b < a)
                return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                                  "%s field: range \"%.*s\" runs backwards", f->name, elen, elem);
        } else if (p < end && *p == '/') {
            /* "a/n": from a to the last value (a lone 7 on day-of-week stays 7). */
            b = f->star_hi > a ? f->star_hi : a;
        }
    }
    if (p < end && *p == '/') {
        p++;
        const char *s = p;
        if (!read_number(&p, end, &step))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                              "%s field: step in \"%.*s\" must be a number", f->name, elen, elem);
        if (step < 1 || step > f->max_step)
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap, "%s field: step %.*s must be 1-%d",
                              f->name, shown((size_t)(p - s)), s, f->max_step);
    }
    char cb[8];
    if (p < end)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "%s field: unexpected character %s in \"%.*s\"", f->name,
                          show_char(*p, cb), elen, elem);
    for (int v = a; v <= b; v += step)
        *bits |= 1ULL << v;
    return KN_OK;
}

static int parse_field(const field_desc *f, const char *p, const char *end, uint64_t *bits,
                       bool *star, char *msg, size_t cap)
{
    *bits = 0;
    *star = false;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *elem_end = comma ? comma : end;
        int rc = parse_element(f, p, elem_end, bits, star, msg, cap);
        if (rc) return rc;
        if (!comma) return KN_OK;
        p = comma + 1;
    }
}

static int parse_fields(const char *expr, kn_cron *out, char *msg, size_t cap)
{
    const char *start[F_COUNT], *stop[F_COUNT];
    size_t n = 0;
    const char *p = expr;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p) break;
        const char *s = p;
        while (*p && !is_space(*p))
            p++;
        if (n < F_COUNT) start[n] = s, stop[n] = p;
        n++;
    }
    if (n != F_COUNT)
        return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, cap,
                          "expected 5 fields (minute hour day-of-month month day-of-week), got %zu",
                          n);

    uint64_t bits[F_COUNT];
    bool star[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        int rc = parse_field(&fields[i], start[i], stop[i], &bits[i], &star[i], msg, cap);
        if (rc) return rc;
    }
    /* Day-of-week 7 is Sunday. */
    if (bits[F_DOW] & (1ULL << 7)) bits[F_DOW] = (bits[F_DOW] | 1) & 0x7f;

    out->minutes = bits[F_MINUTE];
    out->hours = (uint32_t)bits[F_HOUR];
    out->days = (uint32_t)bits[F_DOM];
    out->months = (uint16_t)bits[F_MONTH];
    out->weekdays = (uint8_t)bits[F_DOW];
    out->dom_star = star[F_DOM];
    out->dow_star = star[F_DOW];
    return KN_OK;
}

int kn_cron_parse(const char *expr, kn_cron *out, char *msg, size_t msg_cap)
{
    assert(expr && out);
    if (msg && msg_cap) msg[0] = '\0';
    const char *p = expr;
    while (is_space(*p))
        p++;
    if (!*p) return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, msg_cap, "empty expression");
    if (*p != '@') return parse_fields(p, out, msg, msg_cap);

    const char *end = p;
    while (*end && !is_space(*end))
        end++;
    size_t len = (size_t)(end - p);
    for (const char *q = end; *q; q++)
        if (!is_space(*q))
            return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, msg_cap,
                              "\"%.*s\" must be the whole expression", shown(len), p);
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
        if (word_eq(p, len, macros[i].name)) return parse_fields(macros[i].expr, out, msg, msg_cap);
    return kn_err_msg(KN_ERR_INVALID_ARGUMENT, msg, msg_cap, "unknown macro \"%.*s\"", shown(len),
                      p);
}

/* --- next ------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m != 2) return dim[m];
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return leap ? 29 : 28;
}

/* Lowest set bit of `set` at or above `from`, or -1. */
static int next_bit(uint64_t set, int from)
{
    if (from > 63) return -1;
    uint64_t rest = set >> from << from;
    return rest ? __builtin_ctzll(rest) : -1;
}

static bool day_matches(const kn_cron *c, int64_t y, int m, int d)
{
    int64_t days = days_from_civil(y, m, d);
    int wd = (int)(days + 4 - floor_div(days + 4, 7) * 7); /* 1970-01-01 was a Thursday */
    bool dom = (c->days >> d) & 1;
    bool dow = (c->weekdays >> wd) & 1;
    if (c->dom_star || c->dow_star) return dom && dow;
    return dom || dow;
}

int kn_cron_next(const kn_cron *c, int64_t after_unix_sec, int64_t *next_unix_sec)
{
    assert(c && next_unix_sec);
    assert(c->minutes && c->hours && c->days && c->months && c->weekdays);
    if (after_unix_sec < KN_CRON_TIME_MIN || after_unix_sec > KN_CRON_TIME_MAX)
        return KN_ERR_OUT_OF_RANGE;

    int64_t t = (floor_div(after_unix_sec, 60) + 1) * 60; /* first whole minute after */
    int64_t day = floor_div(t, 86400);
    int sec = (int)(t - day * 86400);
    int h = sec / 3600, mi = sec % 3600 / 60;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    /* The calendar, weekdays included, repeats every 400 years: whatever fires
     * at all fires within this window. */
    const int64_t last_year = y + 400;

    while (y <= last_year) {
        if (!((c->months >> m) & 1)) {
            int nm = next_bit(c->months, m + 1);
            if (nm < 0) y++, nm = next_bit(c->months, 1);
            m = nm, d = 1, h = 0, mi = 0;
            continue;
        }
        int dim = days_in_month(y, m);
        if (c->dow_star) {
            /* Only the day of month matters: jump to the next allowed one. */
            int nd = next_bit(c->days, d);
            if (nd != d) d = nd < 0 ? dim + 1 : nd, h = 0, mi = 0;
        } else if (d <= dim && !day_matches(c, y, m, d)) {
            d++, h = 0, mi = 0;
            continue;
        }
        if (d > dim) {
            if (++m > 12) y++, m = 1;
            d = 1, h = 0, mi = 0;
            continue;
        }
        int nh = next_bit(c->hours, h);
        if (nh < 0) {
            d++, h = 0, mi = 0;
            continue;
        }
        if (nh != h) h = nh, mi = 0;
        int nmi = next_bit(c->minutes, mi);
        if (nmi < 0) {
            h++, mi = 0; /* h == 24 finds no hour and moves on a day */
            continue;
        }
        *next_unix_sec = days_from_civil(y, m, d) * 86400 + h * 3600 + nmi * 60;
        return KN_OK;
    }
    return KN_ERR_NOT_FOUND;
}
