/* kn_config: the server's configuration, from one option table.
 *
 * Sources, lowest precedence first: built-in defaults, the config file
 * (`--config FILE` or KAOS_CONFIG; lines of `name = value`, `#` comments),
 * KAOS_<NAME> environment variables, then command-line flags `--name value`
 * or `--name=value` (dashes or underscores). The same table produces
 * `--help` and is what docs/configuration.md documents. Not thread-safe:
 * load once in main, then treat as read-only. */
#ifndef KN_CONFIG_H
#define KN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct kn_config {
    char *config_file;
    char *database_url;  /* "" = libpq defaults (PGHOST, PGPORT, ...) */
    char *bind;          /* UDP address to bind */
    int64_t port;        /* UDP port of the game protocol */
    char *node;          /* node name, part of every match id */
    char *data_dir;      /* server key file lives here */
    char *runtime_path;  /* Lua modules */
    bool migrate;        /* serve: apply migrations before starting */
    char *log_level;     /* debug | info | warn | error */
    char *log_format;    /* text | json */
    int64_t max_connections;
    int64_t net_threads;
    int64_t net_overload_pct;
    int64_t api_workers;
    int64_t auth_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t session_expiry_sec;
    int64_t refresh_expiry_sec;
    char *session_key;   /* "" = from the key file */
    char *refresh_key;   /* "" = from the key file */
    int64_t max_message_size;
    int64_t max_waiting_data;
    int64_t max_violations;
    int64_t match_default_size;
    int64_t match_max_size;
    int64_t shutdown_grace_ms;
    int64_t api_queue_size;
    char *security;                /* required | off */
    int64_t max_handshakes;
    int64_t handshake_timeout_ms;
    int64_t max_connections_per_address;
    int64_t rate_control_msgs;     /* per second; burst is twice */
    int64_t rate_control_bytes;
    int64_t rate_match_msgs;
    int64_t rate_match_bytes;
    int64_t rate_max_drops;
    int64_t max_send_queue;
    int64_t lockout_account_failures;
    int64_t lockout_account_ms;
    int64_t lockout_address_failures;
    int64_t lockout_address_ms;
    int64_t socket_buffer_bytes;
    bool net_batch_syscalls; /* sendmmsg/recvmmsg under ENet */
    int64_t net_ping_interval_ms;
    char *http_bind;
    int64_t http_port;
    char *http_key;
    bool console; /* serve the admin console */
    char *console_bind;
    int64_t console_port;
    int64_t console_session_sec;
    bool console_secure_cookie; /* Secure on the session cookie (behind a TLS proxy) */
    char *console_admin_password; /* first start only; "" = generated and printed once */
    char *runtime_env;
    bool runtime_watch;
    bool runtime_allow_errors;
    int64_t runtime_call_budget_ms;
    int64_t runtime_memory_mb;
    int64_t match_threads;
    int64_t match_callback_budget_ms;
    int64_t match_call_share_pct;
    int64_t match_memory_mb;
    int64_t matchmaker_interval_ms;
    int64_t matchmaker_max_intervals;
    int64_t matchmaker_max_tickets;
    int64_t max_matches;
    int64_t max_friends; /* friends and invites per user */
    bool single_session; /* a login ends the user's other sessions */
    char *cluster_nats;      /* NATS URL of the cluster bus; "" = one node, no bus */
    char *cluster_node;      /* "" = `node`; when set it becomes `node` (docs/cluster.md) */
    char *cluster_advertise; /* UDP "host:port" peers are told; "" = derived */
    int64_t cluster_heartbeat_ms;
    int64_t cluster_dead_ms; /* a peer silent this long is dead */
} kn_config;

/* Fill with defaults (allocates the strings). */
int kn_config_init(kn_config *cfg);
void kn_config_deinit(kn_config *cfg); /* accepts a zeroed struct */

/* Apply file, environment and argv (argv[0..argc) are options only, no
 * subcommand). `env` is an environ-style array (NULL = none). On a bad option
 * returns KN_ERR_CONFIG and writes a one-line reason into err. */
int kn_config_load(kn_config *cfg, int argc, char **argv, char **env, char *err, size_t err_cap);

/* Set one option by name ("database_url" or "database-url"). */
int kn_config_set(kn_config *cfg, const char *name, const char *value, char *err, size_t err_cap);

/* Check cross-field rules (ranges, enums). */
int kn_config_validate(const kn_config *cfg, char *err, size_t err_cap);

/* Calls visit once per option in table order with its value as text;
 * secrets (keys, passwords, the database URL) come as "********" when set. */
typedef void (*kn_config_visit)(void *ud, const char *name, const char *value, bool secret,
                                const char *help);
void kn_config_each(const kn_config *cfg, kn_config_visit visit, void *ud);

/* One line per option: flag, env name, default, description. */
void kn_config_print_help(FILE *out);

#endif
