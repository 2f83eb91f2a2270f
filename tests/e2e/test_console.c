/* End to end: the admin console in a real browser. The server runs the
 * example modules; SDK clients make the world the console is to show (a
 * player with a storage object and a live session, another playing in an
 * asteroids match with an object the console edits); `kaosnet console-user`
 * adds a read-only console user; then tests/browser/console.test.mjs drives
 * headless Chromium through the console (docs/console.md) while this
 * process keeps the clients alive. Afterwards the wire must agree: the
 * banned player was disconnected, the edited object reads back changed.
 * Then the sessions are expired in Postgres and the browser must be sent to
 * the login form.
 *
 * Skipped, saying why, where Chromium, node or the npm driver is missing
 * (scripts/deps.sh installs them). */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define DRIVER          KAOS_SOURCE_DIR "/tests/browser/console.test.mjs"
#define MODULES         KAOS_SOURCE_DIR "/tests/browser/node_modules/playwright-core/package.json"
#define VIEWER_PASSWORD "viewer-password-1"

static const char *chromium(void)
{
    const char *c = getenv("KAOS_CHROMIUM");
    return c && *c ? c : "/usr/bin/chromium";
}

/* Why the browser test cannot run here, or NULL. */
static const char *missing(void)
{
    if (access(chromium(), X_OK)) return "no Chromium (scripts/deps.sh installs Debian's chromium)";
    if (system("node --version >/dev/null 2>&1")) return "no node on PATH";
    if (access(MODULES, R_OK))
        return "no playwright-core in tests/browser (scripts/deps.sh: npm ci)";
    return NULL;
}

/* `kaosnet console-user ARGS` with the password on stdin; its exit status. */
static int console_user(const char *args, const char *password)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s console-user %s --database-url dbname=%s --log-level error",
             KAOSNET_BIN, args, e2e_group_server.dbname);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fprintf(p, "%s\n", password);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int put(e2e_client *c, const char *col, const char *key, const char *value)
{
    kaos_storage_write_object o = {.collection = col, .key = key, .value = value};
    return e2e_answer(c, &c->storage_acks, c->storage_acks, c->errors,
                      kaos_client_storage_write(c->c, &o, 1, e2e_on_storage_acks, c));
}

/* Player b's chat: the channel joined, the answers, the removals seen. */
static struct {
    char channel[128];
    int answers, failures, removals;
} chat;

static void on_channel(kaos_client *k, const kaos_result *r, const kaos_channel *ch, void *ud)
{
    (void)k;
    (void)ud;
    if (r->code) {
        chat.failures++;
        return;
    }
    snprintf(chat.channel, sizeof chat.channel, "%s", ch->id);
    chat.answers++;
}

static void on_sent(kaos_client *k, const kaos_result *r, const kaos_channel_message *m, void *ud)
{
    (void)k;
    (void)m;
    (void)ud;
    if (r->code)
        chat.failures++;
    else
        chat.answers++;
}

static void on_message(kaos_client *k, const kaos_channel_message *m, void *ud)
{
    (void)k;
    (void)ud;
    if (m->code == KAOS_CHANNEL_MESSAGE_REMOVE) chat.removals++;
}

/* Runs the browser driver in `phase`, pumping the clients meanwhile; its
 * exit status (the driver has its own 120 s watchdog; this waits 150 s). */
static int run_driver(const char *phase, const char *test_json)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", e2e_group_server.console_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("KAOS_CONSOLE_URL", url, 1);
        setenv("KAOS_CONSOLE_TEST", test_json, 1);
        setenv("KAOS_CONSOLE_PHASE", phase, 1);
        setenv("KAOS_CHROMIUM", chromium(), 1);
        execlp("node", "node", DRIVER, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = e2e_now_ms() + 150000;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (e2e_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("the browser driver did not finish in 150 s");
        }
        e2e_pump();
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The party and the matchmaker ticket the console shows. */
static struct {
    bool party, ticket;
    int failures;
} world;

static void on_party(kaos_client *c, const kaos_result *r, const kaos_party *p, void *ud)
{
    (void)c, (void)p, (void)ud;
    world.party = r->code == 0;
    world.failures += r->code != 0;
}

static void on_ticket(kaos_client *c, const kaos_result *r, const char *ticket, void *ud)
{
    (void)c, (void)ticket, (void)ud;
    world.ticket = r->code == 0;
    world.failures += r->code != 0;
}

static void console_shows_bans_and_edits_what_sdk_clients_made(void **state)
{
    (void)state;
    const char *why = missing();
    if (why) {
        fprintf(stderr, "SKIPPED: console browser test: %s\n", why);
        skip();
    }
    /* The console users: the CLI adds, changes and removes them. */
    assert_int_equal(console_user("add viewer --role read-only", VIEWER_PASSWORD), 0);
    assert_int_equal(console_user("add viewer --role read-only", VIEWER_PASSWORD), 1);
    assert_int_equal(console_user("add tmp --role developer", "tmp-password-1"), 0);
    assert_int_equal(console_user("passwd tmp", "tmp-password-2"), 0);
    assert_int_equal(console_user("remove tmp", ""), 0);
    assert_int_equal(console_user("remove tmp", ""), 1);
    assert_int_equal(console_user("add bad --role superuser", "whatever-pw"), 2);

    /* The player the console finds and bans, and one in an asteroids match. */
    e2e_client *a = e2e_player(e2e_group_server.port, 1000);
    e2e_client *b = e2e_player(e2e_group_server.port, 1000);
    assert_int_equal(put(a, "profile", "card", "{\"title\":\"ace\"}"), 0);
    assert_int_equal(put(b, "saves", "slot1", "{\"hp\":10}"), 0);
    char match[128];
    e2e_match_by_rpc(b, "asteroids_find_or_create", "", match);
    e2e_join(b, match, NULL);
    /* A stored chat message in a room, for the Chat page to remove. */
    kaos_client_on_channel_message(b->c, on_message, NULL);
    assert_true(kaos_client_channel_join(b->c, "lobby", KAOS_CHANNEL_ROOM, true, false, on_channel,
                                         NULL) > 0);
    E2E_WAIT(chat.answers == 1 || chat.failures, 10000);
    assert_true(kaos_client_channel_message_send(b->c, chat.channel, "{\"text\":\"hello console\"}",
                                                 on_sent, NULL) > 0);
    E2E_WAIT(chat.answers == 2 || chat.failures, 10000);
    assert_int_equal(chat.failures, 0);
    /* A party the Parties page lists, and a ticket the Matchmaker page shows waiting. */
    kaos_party_config pc = {.open = true, .max_size = 4, .label = "{\"mode\":\"console\"}"};
    assert_true(kaos_client_party_create(a->c, &pc, on_party, NULL) > 0);
    E2E_WAIT(world.party || world.failures, 10000);
    kaos_matchmaker_widen w = {"skill", 10, 50};
    double skill = 7;
    const char *nn[] = {"skill"};
    kaos_matchmaker_request mr = {.min_count = 2,
                                  .max_count = 2,
                                  .query = "+mode:console-nobody +skill:<=5",
                                  .properties = {NULL, NULL, 0, nn, &skill, 1},
                                  .widen = &w,
                                  .n_widen = 1};
    assert_true(kaos_client_matchmaker_add(a->c, &mr, on_ticket, NULL) > 0);
    E2E_WAIT(world.ticket || world.failures, 10000);
    assert_int_equal(world.failures, 0);

    char state_file[] = "/tmp/kaos-console-state-XXXXXX";
    int fd = mkstemp(state_file);
    assert_true(fd >= 0);
    close(fd);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"admin_password\":\"%s\",\"username\":\"%s\",\"user_id\":\"%s\","
             "\"object_key\":\"card\",\"edit_collection\":\"saves\",\"edit_key\":\"slot1\","
             "\"edit_user_id\":\"%s\",\"viewer\":\"viewer\",\"viewer_password\":\"%s\","
             "\"state_file\":\"%s\",\"channel\":\"%s\"}",
             E2E_CONSOLE_ADMIN_PASSWORD, a->username, a->user_id, b->user_id, VIEWER_PASSWORD,
             state_file, chat.channel);
    assert_int_equal(run_driver("main", json), 0);

    /* The console's removal of the chat message reached the room. */
    E2E_WAIT(chat.removals == 1, 10000);
    /* The ban ended the player's session: its client was disconnected. */
    E2E_WAIT(a->disconnected, 10000);
    /* The edit reads back over the wire. */
    kaos_storage_id id = {.collection = "saves", .key = "slot1"};
    assert_int_equal(e2e_answer(b, &b->storage_objects, b->storage_objects, b->errors,
                                kaos_client_storage_read(b->c, &id, 1, e2e_on_storage_objects, b)),
                     0);
    assert_int_equal(b->object_count, 1);
    assert_non_null(strstr(b->objects[0].value, "99"));
    assert_non_null(strstr(b->objects[0].value, "console"));

    /* Sessions past their expiry send the browser back to the login form. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "psql -q -d %s -c \"UPDATE console_session SET expire_time = now() - interval "
             "'1 second'\" >/dev/null",
             e2e_group_server.dbname);
    assert_int_equal(system(sql), 0);
    assert_int_equal(run_driver("expired", json), 0);
    unlink(state_file);
    e2e_client_free(a);
    e2e_client_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(console_shows_bans_and_edits_what_sdk_clients_made),
    };
    return cmocka_run_group_tests(tests, e2e_group_setup_with_examples, e2e_group_teardown);
}
