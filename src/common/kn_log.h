/* kn_log: levelled logging through one installable sink.
 *
 * The macros test the level before evaluating their arguments, so a debug
 * line on a hot path costs one load and a branch when debug is off. With no
 * sink installed nothing is written: the client SDK stays silent unless the
 * game installs a sink. The server installs a text or JSON sink on stderr.
 * Install the sink and level before threads start; writing is thread-safe if
 * the sink is (the stderr sinks write each line with one fwrite). */
#ifndef KN_LOG_H
#define KN_LOG_H

typedef enum kn_log_level {
    KN_LOG_DEBUG = 0,
    KN_LOG_INFO = 1,
    KN_LOG_WARN = 2,
    KN_LOG_ERROR = 3,
    KN_LOG_OFF = 4,
} kn_log_level;

/* Receives one formatted message (no trailing newline). */
typedef void (*kn_log_sink)(kn_log_level level, const char *file, int line, const char *msg,
                            void *ud);

extern kn_log_level kn_log_threshold;

void kn_log_set_sink(kn_log_sink sink, void *ud); /* NULL = discard everything */
void kn_log_set_level(kn_log_level level);
/* "debug" | "info" | "warn" | "error" | "off" -> 0 and *out; KN_ERR_CONFIG otherwise. */
int kn_log_level_parse(const char *s, kn_log_level *out);
const char *kn_log_level_name(kn_log_level level);

/* Ready-made sinks writing one line per message to stderr. */
void kn_log_sink_text(kn_log_level level, const char *file, int line, const char *msg, void *ud);
void kn_log_sink_json(kn_log_level level, const char *file, int line, const char *msg, void *ud);

void kn_log_write(kn_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define KN_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= kn_log_threshold) kn_log_write((level), __FILE__, __LINE__, __VA_ARGS__);   \
    } while (0)
#define KN_DEBUG(...) KN_LOG(KN_LOG_DEBUG, __VA_ARGS__)
#define KN_INFO(...)  KN_LOG(KN_LOG_INFO, __VA_ARGS__)
#define KN_WARN(...)  KN_LOG(KN_LOG_WARN, __VA_ARGS__)
#define KN_ERROR(...) KN_LOG(KN_LOG_ERROR, __VA_ARGS__)

#endif
