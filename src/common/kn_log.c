/* kn_log: formatting and the two stderr sinks. */
#include "kn_log.h"
#include "kn_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* OFF until a sink is installed, so the macros cost nothing in the SDK. */
kn_log_level kn_log_threshold = KN_LOG_OFF;
static kn_log_level wanted = KN_LOG_INFO;
static kn_log_sink current_sink;
static void *current_ud;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void kn_log_set_sink(kn_log_sink sink, void *ud)
{
    current_sink = sink;
    current_ud = ud;
    kn_log_threshold = sink ? wanted : KN_LOG_OFF;
}

void kn_log_set_level(kn_log_level level)
{
    wanted = level;
    if (current_sink) kn_log_threshold = level;
}

int kn_log_level_parse(const char *s, kn_log_level *out)
{
    for (int i = 0; i <= KN_LOG_OFF; i++) {
        if (s && strcmp(s, names[i]) == 0) {
            *out = (kn_log_level)i;
            return KN_OK;
        }
    }
    if (s && strcmp(s, "warning") == 0) {
        *out = KN_LOG_WARN;
        return KN_OK;
    }
    return KN_ERR_CONFIG;
}

const char *kn_log_level_name(kn_log_level level)
{
    return (level >= KN_LOG_DEBUG && level <= KN_LOG_OFF) ? names[level] : "?";
}

void kn_log_write(kn_log_level level, const char *file, int line, const char *fmt, ...)
{
    kn_log_sink sink = current_sink;
    if (!sink) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sink(level, file, line, msg, current_ud);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void format_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void kn_log_sink_text(kn_log_level level, const char *file, int line, const char *msg, void *ud)
{
    (void)ud;
    char ts[40], buf[1400];
    format_time(ts, sizeof ts);
    int n = snprintf(buf, sizeof buf, "%s %-5s %s (%s:%d)\n", ts, kn_log_level_name(level), msg,
                     base_name(file), line);
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    fwrite(buf, 1, (size_t)n, stderr);
}

/* Appends `s` JSON-escaped; stops before overflowing. Returns new length. */
static size_t json_escape(char *out, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    return len;
}

void kn_log_sink_json(kn_log_level level, const char *file, int line, const char *msg, void *ud)
{
    (void)ud;
    char ts[40], buf[2400];
    format_time(ts, sizeof ts);
    size_t n = (size_t)snprintf(buf, sizeof buf, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                                kn_log_level_name(level));
    n = json_escape(buf, n, sizeof buf - 64, msg);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\",\"src\":\"%s:%d\"}\n", base_name(file),
                          line);
    if (n > sizeof buf - 1) n = sizeof buf - 1;
    fwrite(buf, 1, n, stderr);
}
