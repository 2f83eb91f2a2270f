/* kn_config: option table, parsing and validation. */
#include "kn_config.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STR, OPT_INT, OPT_BOOL } opt_type;

typedef struct option {
    const char *name;
    opt_type type;
    size_t offset;
    const char *def;
    int64_t min, max; /* for OPT_INT */
    const char *help;
} option;

#define STR(field, def, help)                                                                      \
    {                                                                                              \
#field, OPT_STR, offsetof(kn_config, field), def, 0, 0, help                               \
    }
#define INT(field, def, lo, hi, help)                                                              \
    {                                                                                              \
#field, OPT_INT, offsetof(kn_config, field), def, lo, hi, help                             \
    }
#define BOOL(field, def, help)                                                                     \
    {                                                                                              \
#field, OPT_BOOL, offsetof(kn_config, field), def, 0, 1, help                              \
    }

static const option options[] = {
    {"config", OPT_STR, offsetof(kn_config, config_file), "", 0, 0,
     "config file of `name = value` lines"},
    STR(database_url, "", "PostgreSQL URL or conninfo; empty = libpq environment (PGHOST...)"),
    STR(bind, "0.0.0.0", "UDP address the game protocol binds"),
    INT(port, "7350", 0, 65535, "UDP port of the game protocol (0 = any free port)"),
    STR(node, "kaos1", "node name; part of every match id"),
    STR(data_dir, "data", "directory of the server key file (server.key)"),
    STR(runtime_path, "lua-examples", "directory of Lua modules, loaded at start (missing = none)"),
    BOOL(migrate, "false", "serve: apply pending migrations before starting"),
    STR(log_level, "info", "debug | info | warn | error"),
    STR(log_format, "text", "text | json"),
    INT(max_connections, "1024", 1, 262080, "maximum concurrent connections (ENet peers)"),
    INT(net_overload_pct, "90", 0, 100,
        "a network thread busy this % of a second sheds new connections and joins (0 = never)"),
    INT(net_threads, "0", 0, 64,
        "network threads, one ENet host each, sharing the UDP port (0 = as max_connections needs)"),
    INT(api_workers, "2", 1, 64, "API worker threads, each with its own Postgres connection"),
    INT(auth_timeout_ms, "10000", 100, 600000, "drop a connection not authenticated by then"),
    INT(idle_timeout_ms, "60000", 1000, 86400000, "drop a connection silent for this long"),
    INT(session_expiry_sec, "3600", 1, 31536000, "session token lifetime"),
    INT(refresh_expiry_sec, "604800", 60, 31536000, "refresh token lifetime"),
    STR(session_key, "", "session token HMAC key; empty = from the key file"),
    STR(refresh_key, "", "refresh token HMAC key; empty = from the key file"),
    INT(max_message_size, "16384", 256, 1048576, "largest packet accepted, bytes"),
    INT(max_waiting_data, "262144", 4096, 33554432,
        "bytes a peer may have buffered in partial reliable packets"),
    INT(max_violations, "8", 1, 1000,
        "malformed or forbidden messages in a burst before disconnect"),
    INT(match_default_size, "16", 2, 1024, "relayed match size when the client asks for 0"),
    INT(match_max_size, "256", 2, 1024, "largest relayed match a client may ask for"),
    INT(shutdown_grace_ms, "5000", 0, 600000, "time to drain before closing on shutdown"),
    INT(api_queue_size, "4096", 16, 1048576, "pending API requests before RESOURCE_EXHAUSTED"),
    STR(security, "required", "transport security: required | off (plaintext, debugging only)"),
    INT(max_handshakes, "256", 1, 65536, "connections still in the handshake at once"),
    INT(handshake_timeout_ms, "5000", 100, 600000, "drop a connection without a hello by then"),
    INT(max_connections_per_address, "32", 0, 4095, "connections from one IP address (0 = any)"),
    INT(rate_control_msgs, "30", 0, 1000000,
        "control messages per second per connection (0 = off)"),
    INT(rate_control_bytes, "32768", 0, 1073741824, "control bytes per second per connection"),
    INT(rate_match_msgs, "120", 0, 1000000, "match packets per second per connection (0 = off)"),
    INT(rate_match_bytes, "131072", 0, 1073741824, "match bytes per second per connection"),
    INT(rate_max_drops, "100", 1, 1000000, "rate-limited packets within 10 s before disconnect"),
    INT(max_send_queue, "1024", 16, 1048576,
        "outgoing packets queued per connection before SEND_QUEUE_FULL"),
    INT(lockout_account_failures, "5", 0, 1000, "failed logins that lock an account (0 = off)"),
    INT(lockout_account_ms, "60000", 1000, 86400000, "how long an account stays locked"),
    INT(lockout_address_failures, "10", 0, 1000, "failed logins that lock an address (0 = off)"),
    INT(lockout_address_ms, "600000", 1000, 86400000, "how long an address stays locked"),
    INT(socket_buffer_bytes, "4194304", 0, 268435456,
        "UDP socket receive/send buffer (0 = ENet's 256 KiB; the kernel may cap it)"),
    INT(net_ping_interval_ms, "500", 100, 60000,
        "ENet pings a connection silent this long (a datagram both ways; idle lobbies: seconds)"),
    BOOL(net_batch_syscalls, "true",
         "send each network round's datagrams with one sendmmsg and read with recvmmsg"),
    STR(http_bind, "127.0.0.1", "HTTP listener address (server-to-server RPC, /healthz, /metrics)"),
    INT(http_port, "7351", 0, 65535, "HTTP listener port (0 = any free port)"),
    STR(http_key, "", "key server-to-server RPC callers must send; empty = HTTP RPC refused"),
    BOOL(console, "true", "serve the admin console (web UI and /v2/console API) on console_port"),
    STR(console_bind, "127.0.0.1", "admin console listener address"),
    INT(console_port, "7352", 0, 65535, "admin console port (0 = any free port)"),
    INT(console_session_sec, "3600", 60, 604800, "admin console session lifetime"),
    BOOL(console_secure_cookie, "false",
         "mark the console's session cookie Secure (set it when a TLS proxy serves the console)"),
    STR(console_admin_password, "",
        "password of the console user `admin` created at first start; empty = generated, printed "
        "once"),
    STR(runtime_env, "", "key=value,key=value pairs Lua sees as context.env"),
    BOOL(runtime_allow_errors, "false",
         "start even when a Lua module fails to load (with no modules until a reload works)"),
    BOOL(runtime_watch, "false", "reload Lua modules when a .lua file in the runtime path changes"),
    INT(runtime_call_budget_ms, "2000", 10, 600000,
        "time one RPC or hook may run before it is stopped (DEADLINE_EXCEEDED)"),
    INT(runtime_memory_mb, "64", 1, 65536, "memory cap of each Lua VM, MiB"),
    INT(match_threads, "0", 0, 64, "authoritative match threads (0 = one per usable CPU)"),
    INT(match_callback_budget_ms, "200", 5, 60000,
        "time one match handler call may run before the match is stopped"),
    INT(match_call_share_pct, "50", 0, 100,
        "CPU one match handler call may use, % of the tick interval of the fastest other match "
        "on its thread (0 = off)"),
    INT(match_memory_mb, "32", 1, 65536, "memory cap of each authoritative match's Lua VM, MiB"),
    INT(matchmaker_interval_ms, "15000", 10, 3600000,
        "time between matchmaker passes (Nakama's 15 s; tests use a few ms)"),
    INT(matchmaker_max_intervals, "2", 1, 1000,
        "passes a ticket holds out for its max count before taking fewer"),
    INT(matchmaker_max_tickets, "3", 1, 100, "matchmaker tickets one session may hold"),
    INT(max_matches, "10000", 1, 1000000, "authoritative matches at once"),
    INT(max_friends, "1000", 1, 100000,
        "friends and invites (not blocks) a user may have; an invite past it is refused"),
    BOOL(single_session, "false",
         "a login, refresh or resume ends the user's other connections (told -7, then closed)"),
    STR(cluster_nats, "",
        "NATS URL of the cluster bus (nats://host:4222, comma-separated for several); empty = "
        "one node, no bus"),
    STR(cluster_node, "", "this node's name in the cluster; when set it replaces node"),
    STR(cluster_advertise, "",
        "UDP host:port peers and clients are told for this node; empty = bind:port (the "
        "host name when bind is 0.0.0.0)"),
    INT(cluster_heartbeat_ms, "500", 50, 10000, "cluster heartbeat interval"),
    INT(cluster_dead_ms, "3000", 200, 60000,
        "a peer with no heartbeat for this long is dead (at least twice the interval)"),
};

#define N_OPTIONS (sizeof options / sizeof options[0])

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t cap, const char *fmt,
                                                          ...)
{
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Accepts "database_url", "database-url" (case-insensitive). */
static const option *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *o = options[i].name;
        if (strlen(o) != len) continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = (char)tolower((unsigned char)name[j]);
            if (c == '-') c = '_';
            if (c != o[j]) break;
        }
        if (j == len) return &options[i];
    }
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = true;
        return KN_OK;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = false;
        return KN_OK;
    }
    return KN_ERR_CONFIG;
}

static int apply(kn_config *cfg, const option *o, const char *value, char *err, size_t cap)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STR: {
        char *copy = kn_strdup(value);
        if (!copy) return KN_ERR_NOMEM;
        kn_free(*(char **)field);
        *(char **)field = copy;
        return KN_OK;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            set_err(err, cap, "%s: expected an integer in %" PRId64 "..%" PRId64 ", got \"%s\"",
                    o->name, o->min, o->max, value);
            return KN_ERR_CONFIG;
        }
        *(int64_t *)field = v;
        return KN_OK;
    }
    case OPT_BOOL:
        if (parse_bool(value, (bool *)field)) {
            set_err(err, cap, "%s: expected true or false, got \"%s\"", o->name, value);
            return KN_ERR_CONFIG;
        }
        return KN_OK;
    }
    return KN_ERR_CONFIG;
}

int kn_config_set(kn_config *cfg, const char *name, const char *value, char *err, size_t cap)
{
    const option *o = find_option(name, strlen(name));
    if (!o) {
        set_err(err, cap, "unknown option \"%s\"", name);
        return KN_ERR_CONFIG;
    }
    return apply(cfg, o, value, err, cap);
}

int kn_config_init(kn_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        int rc = apply(cfg, &options[i], options[i].def, NULL, 0);
        if (rc) {
            kn_config_deinit(cfg);
            return rc;
        }
    }
    return KN_OK;
}

void kn_config_deinit(kn_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OPT_STR) {
            char **f = (char **)((char *)cfg + options[i].offset);
            kn_free(*f);
            *f = NULL;
        }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_file(kn_config *cfg, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, cap, "cannot open config file %s: %s", path, strerror(errno));
        return KN_ERR_CONFIG;
    }
    char line[4096];
    int lineno = 0, rc = KN_OK;
    while (rc == KN_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            set_err(err, cap, "%s:%d: expected `name = value`", path, lineno);
            rc = KN_ERR_CONFIG;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        char sub[512];
        rc = kn_config_set(cfg, name, value, sub, sizeof sub);
        if (rc) set_err(err, cap, "%s:%d: %s", path, lineno, sub);
    }
    fclose(f);
    return rc;
}

static const char *env_lookup(char **env, const char *name)
{
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (!strncmp(*env, name, n) && (*env)[n] == '=') return *env + n + 1;
    return NULL;
}

static int load_env(kn_config *cfg, char **env, char *err, size_t cap)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char name[64] = "KAOS_";
        size_t j = 5;
        for (const char *p = options[i].name; *p && j < sizeof name - 1; p++)
            name[j++] = (char)toupper((unsigned char)*p);
        name[j] = '\0';
        const char *v = env_lookup(env, name);
        if (!v || options[i].offset == offsetof(kn_config, config_file))
            continue; /* KAOS_CONFIG was read before the file */
        char sub[512];
        int rc = apply(cfg, &options[i], v, sub, sizeof sub);
        if (rc) {
            set_err(err, cap, "%s: %s", name, sub);
            return rc;
        }
    }
    return KN_OK;
}

/* Finds --config in argv (flags win over KAOS_CONFIG). */
static const char *argv_config(int argc, char **argv)
{
    const char *found = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            found = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            found = argv[i] + 9;
    }
    return found;
}

static int load_argv(kn_config *cfg, int argc, char **argv, char *err, size_t cap)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            set_err(err, cap, "unexpected argument \"%s\"", a);
            return KN_ERR_CONFIG;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const option *o = find_option(a, nlen);
        if (!o) {
            set_err(err, cap, "unknown option \"--%.*s\" (see --help)", (int)nlen, a);
            return KN_ERR_CONFIG;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
            value = "true"; /* bare boolean flag */
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            set_err(err, cap, "option --%s needs a value", o->name);
            return KN_ERR_CONFIG;
        }
        char sub[512];
        int rc = apply(cfg, o, value, sub, sizeof sub);
        if (rc) {
            set_err(err, cap, "--%s", sub);
            return rc;
        }
    }
    return KN_OK;
}

int kn_config_load(kn_config *cfg, int argc, char **argv, char **env, char *err, size_t cap)
{
    const char *file = argv_config(argc, argv);
    if (!file) file = env_lookup(env, "KAOS_CONFIG");
    int rc;
    if (file && *file) {
        if ((rc = kn_config_set(cfg, "config", file, err, cap))) return rc;
        if ((rc = load_file(cfg, file, err, cap))) return rc;
    }
    if ((rc = load_env(cfg, env, err, cap))) return rc;
    if ((rc = load_argv(cfg, argc, argv, err, cap))) return rc;
    /* One name: a cluster node's name is the node name every match id carries. */
    if (*cfg->cluster_node && (rc = kn_config_set(cfg, "node", cfg->cluster_node, err, cap)))
        return rc;
    return kn_config_validate(cfg, err, cap);
}

int kn_config_validate(const kn_config *cfg, char *err, size_t cap)
{
    if (strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json")) {
        set_err(err, cap, "log_format: expected text or json, got \"%s\"", cfg->log_format);
        return KN_ERR_CONFIG;
    }
    if (strcmp(cfg->security, "required") && strcmp(cfg->security, "off")) {
        set_err(err, cap, "security: expected required or off, got \"%s\"", cfg->security);
        return KN_ERR_CONFIG;
    }
    static const char *const levels[] = {"debug", "info", "warn", "warning", "error", "off"};
    bool level_ok = false;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(cfg->log_level, levels[i])) level_ok = true;
    if (!level_ok) {
        set_err(err, cap, "log_level: expected debug, info, warn or error, got \"%s\"",
                cfg->log_level);
        return KN_ERR_CONFIG;
    }
    if (cfg->net_threads && cfg->max_connections > cfg->net_threads * 4095) {
        set_err(err, cap,
                "max_connections (%" PRId64 ") needs net_threads of at least %" PRId64
                " (one ENet host holds 4095 peers)",
                cfg->max_connections, (cfg->max_connections + 4094) / 4095);
        return KN_ERR_CONFIG;
    }
    if (cfg->match_default_size > cfg->match_max_size) {
        set_err(err, cap, "match_default_size (%" PRId64 ") exceeds match_max_size (%" PRId64 ")",
                cfg->match_default_size, cfg->match_max_size);
        return KN_ERR_CONFIG;
    }
    if (!*cfg->node || strlen(cfg->node) > 64 || strchr(cfg->node, '.')) {
        set_err(err, cap, "node: 1-64 characters without '.'");
        return KN_ERR_CONFIG;
    }
    if (*cfg->cluster_nats) {
        for (const char *c = cfg->node; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_') {
                set_err(err, cap, "node: a cluster node's name is letters, digits, '-' and '_'");
                return KN_ERR_CONFIG;
            }
        if (cfg->cluster_dead_ms < 2 * cfg->cluster_heartbeat_ms) {
            set_err(err, cap,
                    "cluster_dead_ms (%" PRId64
                    ") must be at least twice cluster_heartbeat_ms (%" PRId64 ")",
                    cfg->cluster_dead_ms, cfg->cluster_heartbeat_ms);
            return KN_ERR_CONFIG;
        }
    }
    return KN_OK;
}

void kn_config_print_help(FILE *out)
{
    fprintf(out, "Options (flag / environment / default):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[64], env[64] = "KAOS_";
        size_t j = 0;
        for (const char *p = options[i].name; *p && j < sizeof flag - 1; p++)
            flag[j++] = *p == '_' ? '-' : *p;
        flag[j] = '\0';
        j = 5;
        for (const char *p = options[i].name; *p && j < sizeof env - 1; p++)
            env[j++] = (char)toupper((unsigned char)*p);
        env[j] = '\0';
        fprintf(out, "  --%-22s %-26s default: %s\n      %s\n", flag, env,
                *options[i].def ? options[i].def : "\"\"", options[i].help);
    }
}

/* Secrets: keys, passwords and the database URL (it may hold a password). */
static bool option_secret(const char *name)
{
    return strstr(name, "key") || strstr(name, "password") || !strcmp(name, "database_url");
}

void kn_config_each(const kn_config *cfg, kn_config_visit visit, void *ud)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option *o = &options[i];
        const char *base = (const char *)cfg + o->offset;
        char num[32];
        const char *text = num;
        switch (o->type) {
        case OPT_STR:
            text = *(char *const *)(const void *)base;
            break;
        case OPT_INT:
            snprintf(num, sizeof num, "%" PRId64, *(const int64_t *)(const void *)base);
            break;
        case OPT_BOOL:
            text = *(const bool *)(const void *)base ? "true" : "false";
            break;
        }
        bool secret = option_secret(o->name);
        visit(ud, o->name, secret && text && *text ? "********" : (text ? text : ""), secret,
              o->help);
    }
}
