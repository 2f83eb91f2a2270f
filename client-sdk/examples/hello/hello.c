/* kaos-hello: two clients in one process meet in a relayed match.
 *
 *   usage: kaos-hello [-v] [-t SECONDS] [-k KEY | -i] [HOST [PORT]]
 *          defaults: 127.0.0.1 7350, a 10 s overall timeout; -v logs the SDK's debug lines
 *          -k KEY: the server's public key (64 hex digits), as the server prints it at
 *                  start ("server public key <hex>"); or set KAOS_SERVER_KEY
 *          -i:     insecure development mode: do not verify the server's identity
 *
 * Both clients pin the server's key, so they talk only to the server that
 * holds its secret key; without a key (and without -i) the program says
 * where to find it and exits 2.
 *
 * A and B connect and authenticate with fresh random device ids. A creates a
 * relayed match and B joins it by match_id. When A sees B join, A sends a
 * reliable message (op 1); B sends an unreliable one (op 2), repeated until A
 * has it, since an unreliable packet may be lost. Each prints what it got,
 * both leave the match and disconnect, and the exit status is 0. An error, an
 * unexpected disconnect or the timeout prints one line saying what went wrong
 * and exits 1 (bad arguments print the usage and exit 2). Everything is
 * driven by callbacks from kaos_client_poll: each request names its own
 * completion, and the events a player cares about are registered on its
 * client. The program uses nothing but the public header. */
#define _POSIX_C_SOURCE 200809L

#include <kaos.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OP_RELIABLE   1
#define OP_UNRELIABLE 2
#define RESEND_MS     250
#define POLL_MS       10

static const char msg_from_a[] = "hello from A (reliable)";
static const char msg_from_b[] = "hello from B (unreliable)";

typedef struct hello hello;

typedef struct player {
    const char *name;
    hello *app;
    kaos_client *client;
    const char *doing; /* what it is waiting for, for error messages */
    bool connected;
    bool authenticated;
    bool joined;
    bool got_data;
    bool left;
    bool finished;
    uint32_t match; /* match handle, once joined */
} player;

struct hello {
    player a, b;
    const char *host;
    uint16_t port;
    const char *server_key; /* NULL with insecure */
    bool insecure;
    char match_id[256];
    bool join_sent;
    bool a_sent;
    bool leave_sent;
    bool failed;
};

/* Reports the first failure only: later ones are usually its consequences. */
static void fail(hello *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(hello *app, const char *fmt, ...)
{
    if (app->failed) return;
    app->failed = true;
    va_list ap;
    va_start(ap, fmt);
    fputs("kaos-hello: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Returns rc (a cid) when a call succeeded; otherwise records the failure. */
static int check(player *p, int rc, const char *what)
{
    if (rc < 0) fail(p->app, "%s: cannot %s: %s", p->name, what, kaos_err_text(rc));
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "hello-" and 32 random hex digits: a device nobody used before. */
static void random_device_id(char *out, size_t cap)
{
    unsigned char bytes[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    if (got != sizeof bytes) {
        /* No /dev/urandom: weaker, but unique enough for a demo. */
        uint64_t x = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)out ^ (uint64_t)clock();
        for (size_t i = 0; i < sizeof bytes; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            bytes[i] = (unsigned char)(x >> 56);
        }
    }
    size_t n = (size_t)snprintf(out, cap, "hello-");
    for (size_t i = 0; i < sizeof bytes && n + 2 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", bytes[i]);
}

/* A request's completion reported an error: true (and the failure recorded). */
static bool request_failed(player *p, const kaos_result *r)
{
    if (r->code == KAOS_OK) return false;
    fail(p->app, "%s: request %" PRIu32 " failed while %s: %s (%s)", p->name, r->cid, p->doing,
         r->message, kaos_err_text(r->code));
    return true;
}

static void on_match(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud);

/* B joins once it is authenticated and A's match exists, whichever is last. */
static void try_join(hello *app)
{
    player *b = &app->b;
    if (!b->authenticated || !app->match_id[0] || app->join_sent) return;
    app->join_sent = true;
    b->doing = "joining the match";
    check(b, kaos_client_match_join(b->client, app->match_id, NULL, on_match, b), "join the match");
}

static void on_left(kaos_client *c, const kaos_result *r, void *ud)
{
    player *p = ud;
    if (request_failed(p, r)) return;
    p->left = true;
    printf("%s left the match\n", p->name);
    p->doing = "disconnecting";
    check(p, kaos_client_disconnect(c), "disconnect");
}

static void maybe_leave(hello *app)
{
    if (!app->a.got_data || !app->b.got_data || app->leave_sent) return;
    app->leave_sent = true;
    player *both[] = {&app->a, &app->b};
    for (size_t i = 0; i < 2; i++) {
        player *p = both[i];
        p->doing = "leaving the match";
        check(p, kaos_client_match_leave(p->client, p->match, on_left, p), "leave the match");
    }
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud);

static void on_connected(kaos_client *c, void *ud)
{
    player *p = ud;
    p->connected = true;
    printf("%s connected to %s:%u\n", p->name, p->app->host, p->app->port);
    char device_id[64];
    random_device_id(device_id, sizeof device_id);
    p->doing = "authenticating";
    check(p, kaos_client_auth_device(c, device_id, NULL, true, NULL, on_session, p),
          "authenticate");
}

static void on_disconnected(kaos_client *c, uint32_t reason, void *ud)
{
    (void)c;
    player *p = ud;
    p->finished = true;
    if (p->left) {
        printf("%s disconnected\n", p->name);
    } else if (!p->connected) {
        fail(p->app, "%s could not connect to %s:%u (%s)", p->name, p->app->host, p->app->port,
             reason ? kaos_disconnect_reason_text(reason) : "no answer from the server");
    } else {
        fail(p->app, "%s was disconnected while %s (%s)", p->name, p->doing,
             kaos_disconnect_reason_text(reason));
    }
}

/* Errors of no request: the connection itself (a wrong server key, ...). */
static void on_error(kaos_client *c, const kaos_result *r, void *ud)
{
    (void)c;
    player *p = ud;
    fail(p->app, "%s: error while %s: %s (%s)", p->name, p->doing, r->message,
         kaos_err_text(r->code));
}

static void on_session(kaos_client *c, const kaos_result *r, const kaos_session *s, void *ud)
{
    player *p = ud;
    if (request_failed(p, r)) return;
    p->authenticated = true;
    printf("%s authenticated as %s (user %s%s)\n", p->name, s->username, s->user_id,
           s->created ? ", new" : "");
    if (p == &p->app->a) {
        p->doing = "creating a match";
        check(p, kaos_client_match_create(c, 2, on_match, p), "create a match");
    } else {
        p->doing = "waiting for A's match";
        try_join(p->app);
    }
}

static void on_match(kaos_client *c, const kaos_result *r, const kaos_match *m, void *ud)
{
    (void)c;
    player *p = ud;
    if (request_failed(p, r)) return;
    hello *app = p->app;
    p->joined = true;
    p->match = m->handle;
    if (p == &app->a) {
        printf("A created match %s (slot %" PRIu32 ")\n", m->match_id, m->self.slot);
        snprintf(app->match_id, sizeof app->match_id, "%s", m->match_id);
        p->doing = "waiting for B to join";
        try_join(app);
    } else {
        printf("B joined match %s (slot %" PRIu32 ", %" PRIu32 " players)\n", m->match_id,
               m->self.slot, m->size);
        p->doing = "waiting for A's message";
    }
}

static void on_match_presence(kaos_client *c, uint32_t match, const kaos_presence *joins,
                              size_t join_count, const kaos_presence *leaves, size_t leave_count,
                              void *ud)
{
    player *p = ud;
    hello *app = p->app;
    for (size_t i = 0; i < join_count; i++)
        printf("%s sees slot=%" PRIu32 " join (%s)\n", p->name, joins[i].slot, joins[i].username);
    for (size_t i = 0; i < leave_count; i++)
        printf("%s sees slot=%" PRIu32 " leave\n", p->name, leaves[i].slot);
    if (p == &app->a && join_count > 0 && !app->a_sent) {
        app->a_sent = true;
        p->doing = "waiting for B's message";
        check(p,
              kaos_client_match_send(c, match, OP_RELIABLE, msg_from_a, strlen(msg_from_a), true,
                                     NULL, 0),
              "send match data");
    }
}

static void on_match_data(kaos_client *c, uint32_t match, uint32_t sender, int64_t op_code,
                          const uint8_t *data, size_t len, bool reliable, void *ud)
{
    (void)c;
    (void)match;
    (void)reliable;
    player *p = ud;
    if (p->got_data) return; /* B's unreliable message may arrive more than once */
    p->got_data = true;
    printf("%s got op=%" PRId64 " from slot=%" PRIu32 ": %.*s\n", p->name, op_code, sender,
           (int)len, (const char *)data);
    maybe_leave(p->app);
}

static void on_shutdown_notice(kaos_client *c, uint32_t grace_ms, void *ud)
{
    (void)c;
    player *p = ud;
    printf("%s: the server is shutting down within %" PRIu32 " ms\n", p->name, grace_ms);
}

static void log_line(int level, const char *msg, void *ud)
{
    (void)ud;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "[kaos %s] %s\n", (level >= 0 && level <= 3) ? names[level] : "?", msg);
}

static int start_player(hello *app, player *p, const char *name)
{
    p->name = name;
    p->app = app;
    p->doing = "connecting";
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.host = app->host;
    cfg.port = app->port;
    cfg.server_key = app->server_key;
    cfg.insecure_dev_mode = app->insecure;
    int created = kaos_client_create(&cfg, &p->client);
    if (created == KAOS_ERR_CONFIG && app->server_key) {
        fail(app, "the server key must be 64 hex digits, as the server prints it at start");
        return -1;
    }
    if (check(p, created, "create a client") < 0) return -1;
    kaos_client_on_connected(p->client, on_connected, p);
    kaos_client_on_disconnected(p->client, on_disconnected, p);
    kaos_client_on_error(p->client, on_error, p);
    kaos_client_on_match_data(p->client, on_match_data, p);
    kaos_client_on_match_presence(p->client, on_match_presence, p);
    kaos_client_on_shutdown_notice(p->client, on_shutdown_notice, p);
    int rc = kaos_client_connect(p->client);
    if (rc < 0)
        fail(app, "%s: cannot connect to %s:%u: %s", p->name, app->host, app->port,
             kaos_err_text(rc));
    return rc;
}

/* Polls both clients until both are done, something failed, or time is up. */
static void run(hello *app, double timeout_s)
{
    int64_t deadline = now_ms() + (int64_t)(timeout_s * 1000);
    int64_t next_resend = 0;
    player *a = &app->a, *b = &app->b;
    while (!app->failed && !(a->finished && b->finished)) {
        int64_t now = now_ms();
        if (now >= deadline) {
            fail(app, "timed out after %g s talking to %s:%u (A was %s, B was %s)", timeout_s,
                 app->host, app->port, a->doing, b->doing);
            break;
        }
        if (b->joined && !a->got_data && now >= next_resend) {
            next_resend = now + RESEND_MS;
            check(b,
                  kaos_client_match_send(b->client, b->match, OP_UNRELIABLE, msg_from_b,
                                         strlen(msg_from_b), false, NULL, 0),
                  "send match data");
        }
        check(a, kaos_client_poll(a->client, POLL_MS), "poll");
        check(b, kaos_client_poll(b->client, POLL_MS), "poll");
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: kaos-hello [-v] [-t SECONDS] [-k KEY | -i] [HOST [PORT]]\n");
    return 2;
}

static int missing_key(void)
{
    fprintf(stderr, "kaos-hello: no server key. Pass the key the server printed at start\n"
                    "  (the line \"server public key <64 hex digits>\") with -k KEY or in the\n"
                    "  KAOS_SERVER_KEY environment variable, or use -i to skip verifying the\n"
                    "  server (insecure: for development only).\n");
    return 2;
}

int main(int argc, char **argv)
{
    hello app = {.host = "127.0.0.1", .port = 7350};
    double timeout_s = 10;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char *end;
        if (strcmp(arg, "-v") == 0) {
            kaos_set_log_sink(log_line, NULL);
            kaos_set_log_level(KAOS_LOG_DEBUG);
        } else if (strcmp(arg, "-k") == 0 && i + 1 < argc) {
            app.server_key = argv[++i];
        } else if (strcmp(arg, "-i") == 0) {
            app.insecure = true;
        } else if (strcmp(arg, "-t") == 0 && i + 1 < argc) {
            timeout_s = strtod(argv[++i], &end);
            if (*end || !(timeout_s > 0 && timeout_s < 1e6)) return usage();
        } else if (arg[0] == '-' || positional >= 2) {
            return usage();
        } else if (positional++ == 0) {
            app.host = arg;
        } else {
            unsigned long port = strtoul(arg, &end, 10);
            if (*end || port == 0 || port > 65535) return usage();
            app.port = (uint16_t)port;
        }
    }
    if (!app.server_key) {
        const char *env = getenv("KAOS_SERVER_KEY");
        if (env && env[0]) app.server_key = env;
    }
    if (!app.server_key && !app.insecure) return missing_key();
    if (!app.server_key)
        fprintf(stderr, "kaos-hello: insecure development mode: the server's identity is not "
                        "verified\n");
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (start_player(&app, &app.a, "A") >= 0 && start_player(&app, &app.b, "B") >= 0)
        run(&app, timeout_s);
    kaos_client_destroy(app.a.client);
    kaos_client_destroy(app.b.client);
    if (app.failed) return 1;
    printf("done\n");
    return 0;
}
