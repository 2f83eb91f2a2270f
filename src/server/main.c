/* main: the kaosnet command line. Parses the subcommand and options, sets up
 * logging, and hands over to the server, the migrator or the key tool. */
#include "kaos.h"
#include "kn_config.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"
#include "kn_keys.h"
#include "kn_log.h"
#include "kn_server.h"

#include <stdio.h>
#include <string.h>

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "kaosnet %s — realtime game server over ENet\n\n"
            "Usage:\n"
            "  kaosnet serve [options]          run the server\n"
            "  kaosnet migrate up [options]     apply pending database migrations\n"
            "  kaosnet migrate status [options] list migrations and whether they are applied\n"
            "  kaosnet keygen [--force] [options]  create the server key file\n"
            "  kaosnet healthcheck [options]    ping the server on this host; exit 0 if it answers\n"
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
    int rc = force ? kn_keys_generate(cfg->data_dir, true, &keys) : kn_keys_load(cfg->data_dir, &keys);
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

/* --- healthcheck: a real client round trip over UDP ------------------------ */

typedef struct probe {
    int state; /* 0 waiting, 1 connected, 2 pong, -1 failed */
} probe;

static void hc_pong(kaos_client *c, const kaos_result *r, int64_t rtt_ms, void *ud)
{
    ((probe *)ud)->state = r->code == KAOS_OK ? 2 : -1;
}

static void hc_connected(kaos_client *c, void *ud)
{
    probe *p = ud;
    p->state = kaos_client_ping(c, hc_pong, p) > 0 ? 1 : -1;
}

static void hc_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    ((probe *)ud)->state = -1;
}

static int cmd_healthcheck(const kn_config *cfg)
{
    kn_log_set_level(KN_LOG_WARN); /* the client's connect chatter is noise here */
    probe p = {0};
    kaos_client_config cc;
    kaos_client_config_default(&cc);
    /* Pin our own key when the key file is readable here (same host, same
     * data dir); otherwise the probe only proves the port answers. */
    kn_keys keys;
    char pub[2 * KN_KEY_BYTES + 1] = "";
    if (kn_keys_load(cfg->data_dir, &keys) == KN_OK) {
        kn_keys_public_hex(&keys, pub);
        kn_keys_wipe(&keys);
        cc.server_key = pub;
    } else {
        cc.insecure_dev_mode = true;
    }
    cc.plaintext = !strcmp(cfg->security, "off");
    if (cc.plaintext) cc.insecure_dev_mode = true;
    cc.host = strcmp(cfg->bind, "0.0.0.0") ? cfg->bind : "127.0.0.1";
    cc.port = (uint16_t)cfg->port;
    cc.connect_timeout_ms = 2000;
    kaos_client *c;
    if (kaos_client_create(&cc, &c)) return 1;
    kaos_client_on_connected(c, hc_connected, &p);
    kaos_client_on_disconnected(c, hc_disconnected, &p);
    if (kaos_client_connect(c)) return 1;
    for (int i = 0; i < 60 && p.state >= 0 && p.state < 2; i++) kaos_client_poll(c, 50);
    kaos_client_destroy(c);
    printf("%s\n", p.state == 2 ? "ok" : "no answer");
    return p.state == 2 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("kaosnet %s (protocol v%u)\n", KAOS_VERSION, (unsigned)KAOS_PROTOCOL_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    int first = 2;
    const char *what = NULL;
    bool force = false;
    if (!strcmp(cmd, "migrate")) {
        if (argc < 3 || (strcmp(argv[2], "up") && strcmp(argv[2], "status"))) {
            fprintf(stderr, "usage: kaosnet migrate up|status [options]\n");
            return 2;
        }
        what = argv[2];
        first = 3;
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
        if (!strcmp(cmd, "keygen") && !strcmp(argv[i], "--force")) force = true;
        else opts[nopts++] = argv[i];
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
    if (!strcmp(cmd, "serve")) rc = kn_server_run(&cfg) ? 1 : 0;
    else if (!strcmp(cmd, "migrate")) rc = cmd_migrate(&cfg, what);
    else if (!strcmp(cmd, "keygen")) rc = cmd_keygen(&cfg, force);
    else rc = cmd_healthcheck(&cfg);
    kn_config_deinit(&cfg);
    return rc;
}
