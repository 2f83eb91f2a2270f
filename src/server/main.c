/* main: the kaosnet command line. Parses the subcommand and options, sets up
 * logging, and hands over to the server, the migrator or the key tool. */
#include "kn_config.h"
#include "kn_console.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_keys.h"
#include "kn_log.h"
#include "kn_codec.h"
#include "kn_secure.h"
#include "kn_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static void usage(FILE *out)
{
    fprintf(
        out,
        "kaosnet %s — realtime game server over ENet\n\n"
        "Usage:\n"
        "  kaosnet serve [options]          run the server\n"
        "  kaosnet migrate up [options]     apply pending database migrations\n"
        "  kaosnet migrate status [options] list migrations and whether they are applied\n"
        "  kaosnet keygen [--force] [options]  create the server key file\n"
        "  kaosnet healthcheck [options]    ping the server on this host; exit 0 if it answers\n"
        "  kaosnet console-user add|passwd|remove NAME [--role ROLE] [options]\n"
        "                                   admin console users; the password is read from stdin\n"
        "  kaosnet --help | --version\n\n",
        KAOS_VERSION);
    kn_config_print_help(out);
}

static int setup_logging(const kn_config *cfg)
{
    kn_log_level level;
    if (kn_log_level_parse(cfg->log_level, &level)) return KN_ERR_CONFIG;
    kn_log_set_level(level);
    kn_log_set_sink(strcmp(cfg->log_format, "json") ? kn_log_sink_text : kn_log_sink_json, NULL);
    return KN_OK;
}

static int cmd_migrate(const kn_config *cfg, const char *what)
{
    kn_db *db;
    if (kn_db_open(cfg->database_url, &db)) return 1;
    int rc, n = 0;
    if (!strcmp(what, "up")) {
        rc = kn_db_migrate_up(db, &n);
        if (rc == KN_OK) printf("migrations applied: %d\n", n);
    } else {
        rc = kn_db_migrate_status(db, stdout, &n);
        if (rc == KN_OK) printf("%d pending\n", n);
    }
    kn_db_close(db);
    return rc ? 1 : 0;
}

static int cmd_keygen(const kn_config *cfg, bool force)
{
    kn_keys keys;
    int rc =
        force ? kn_keys_generate(cfg->data_dir, true, &keys) : kn_keys_load(cfg->data_dir, &keys);
    bool existed = !force && rc == KN_OK;
    if (!force && rc == KN_ERR_NOT_FOUND) rc = kn_keys_generate(cfg->data_dir, false, &keys);
    if (rc) {
        fprintf(stderr, "keygen: %s\n", kn_err_text(rc));
        return 1;
    }
    char pub[2 * KN_KEY_BYTES + 1];
    kn_keys_public_hex(&keys, pub);
    printf("%s %s/server.key\npublic key %s\n", existed ? "kept existing" : "created",
           cfg->data_dir, pub);
    kn_keys_wipe(&keys);
    return 0;
}

/* --- healthcheck: the network thread answers a cookie request ------------- */

/* The first step of every connect (docs/protocol.md): a raw UDP cookie
 * request, answered by the network thread's receive hook before ENet or any
 * session is involved. An answer proves a network thread is running its
 * loop; BUSY (overloaded, shedding new connections) is still alive, so it
 * counts as healthy: restarting a busy server would only make it worse.
 * Needs no client library and no key. Resent every 250 ms for 2 s. */
static int cmd_healthcheck(const kn_config *cfg)
{
    const char *host = strcmp(cfg->bind, "0.0.0.0") ? cfg->bind : "127.0.0.1";
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || inet_pton(AF_INET, host, &to.sin_addr) != 1) {
        fprintf(stderr, "healthcheck: cannot reach %s\n", host);
        if (fd >= 0) close(fd);
        return 1;
    }
    uint8_t req[KN_COOKIE_REQUEST_SIZE], buf[64];
    kn_cookie_request_build(req, KN_PROTOCOL_VERSION);
    uint8_t version = 0, status = KN_COOKIE_BAD_VERSION;
    uint32_t cookie;
    bool answered = false;
    for (int i = 0; i < 8 && !answered; i++) {
        if (sendto(fd, req, sizeof req, 0, (struct sockaddr *)&to, sizeof to) < 0) break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (!answered && poll(&pfd, 1, 250) > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            answered =
                n > 0 && kn_cookie_reply_parse(buf, (size_t)n, &version, &status, &cookie) == KN_OK;
        }
    }
    close(fd);
    bool ok = answered && status != KN_COOKIE_BAD_VERSION;
    printf("%s\n", !answered                   ? "no answer"
                   : status == KN_COOKIE_BUSY ? "ok (busy)"
                   : ok                       ? "ok"
                                              : "wrong protocol version");
    return ok ? 0 : 1;
}

/* --- console-user: the admin console's users ----------------------------- */

/* The password: the first line of stdin (never argv, which `ps` shows). */
static int read_password(char *buf, size_t cap)
{
    if (isatty(STDIN_FILENO)) fprintf(stderr, "password: ");
    if (!fgets(buf, (int)cap, stdin)) return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int cmd_console_user(const kn_config *cfg, const char *what, const char *name,
                            const char *role_name)
{
    kn_console_role role = KN_CONSOLE_READ_ONLY;
    if (!strcmp(what, "add") && kn_console_role_parse(role_name, &role)) {
        fprintf(stderr, "console-user add: --role admin|developer|maintainer|read-only\n");
        return 2;
    }
    char pw[1100] = "", msg[256] = "";
    if (strcmp(what, "remove") && read_password(pw, sizeof pw)) {
        fprintf(stderr, "console-user: no password on standard input\n");
        return 2;
    }
    kn_db *db;
    if (kn_db_open(cfg->database_url, &db)) return 1;
    int rc = !strcmp(what, "add")      ? kn_console_user_add(db, name, pw, role, msg, sizeof msg)
             : !strcmp(what, "passwd") ? kn_console_user_passwd(db, name, pw, msg, sizeof msg)
                                       : kn_console_user_remove(db, name, msg, sizeof msg);
    kn_crypto_wipe(pw, sizeof pw);
    kn_db_close(db);
    if (rc) {
        fprintf(stderr, "console-user %s: %s\n", what, *msg ? msg : kn_err_text(rc));
        return 1;
    }
    printf("console user %s: %s\n", name,
           !strcmp(what, "add")      ? "added"
           : !strcmp(what, "passwd") ? "password changed"
                                     : "removed");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("kaosnet %s (protocol v%u)\n", KAOS_VERSION, (unsigned)KN_PROTOCOL_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    int first = 2;
    const char *what = NULL;
    bool force = false;
    const char *user_name = NULL, *role_name = NULL;
    if (!strcmp(cmd, "migrate")) {
        if (argc < 3 || (strcmp(argv[2], "up") && strcmp(argv[2], "status"))) {
            fprintf(stderr, "usage: kaosnet migrate up|status [options]\n");
            return 2;
        }
        what = argv[2];
        first = 3;
    } else if (!strcmp(cmd, "console-user")) {
        if (argc < 4 ||
            (strcmp(argv[2], "add") && strcmp(argv[2], "passwd") && strcmp(argv[2], "remove"))) {
            fprintf(stderr, "usage: kaosnet console-user add|passwd|remove NAME [--role ROLE] "
                            "[options]\n");
            return 2;
        }
        what = argv[2];
        user_name = argv[3];
        first = 4;
    } else if (strcmp(cmd, "serve") && strcmp(cmd, "keygen") && strcmp(cmd, "healthcheck")) {
        fprintf(stderr, "unknown command \"%s\" (see kaosnet --help)\n", cmd);
        return 2;
    }
    /* --force belongs to keygen only; everything else is a config option. */
    char *opts[256];
    int nopts = 0;
    for (int i = first; i < argc && nopts < 256; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(cmd, "keygen") && !strcmp(argv[i], "--force"))
            force = true;
        else if (user_name && !strncmp(argv[i], "--role=", 7))
            role_name = argv[i] + 7;
        else if (user_name && !strcmp(argv[i], "--role") && i + 1 < argc)
            role_name = argv[++i];
        else
            opts[nopts++] = argv[i];
    }

    if (kn_crypto_init() != KN_OK) {
        fprintf(stderr, "libsodium failed to initialise\n");
        return 1;
    }
    kn_config cfg;
    char err[512];
    if (kn_config_init(&cfg)) return 1;
    if (kn_config_load(&cfg, nopts, opts, environ, err, sizeof err)) {
        fprintf(stderr, "kaosnet: %s\n", err);
        kn_config_deinit(&cfg);
        return 2;
    }
    setup_logging(&cfg);
    int rc;
    if (!strcmp(cmd, "serve"))
        rc = kn_server_run(&cfg) ? 1 : 0;
    else if (!strcmp(cmd, "migrate"))
        rc = cmd_migrate(&cfg, what);
    else if (!strcmp(cmd, "keygen"))
        rc = cmd_keygen(&cfg, force);
    else if (!strcmp(cmd, "console-user"))
        rc = cmd_console_user(&cfg, what, user_name, role_name);
    else
        rc = cmd_healthcheck(&cfg);
    kn_config_deinit(&cfg);
    return rc;
}
