/* End to end: the kaosnet command line, migrations, graceful shutdown, and
 * the SDK's hello example against a live server. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#ifndef KAOS_HELLO_BIN
#error "KAOS_HELLO_BIN must name the hello example"
#endif

static void version_and_help_and_bad_options(void **state)
{
    char out[16384]; /* --help passed 8 KiB with the console's options */
    const char *version[] = {"--version", NULL};
    assert_int_equal(e2e_run_cli(version, out, sizeof out), 0);
    assert_non_null(strstr(out, "kaosnet "));
    assert_non_null(strstr(out, "protocol v1"));
    const char *help[] = {"--help", NULL};
    assert_int_equal(e2e_run_cli(help, out, sizeof out), 0);
    assert_non_null(strstr(out, "KAOS_DATABASE_URL"));
    assert_non_null(strstr(out, "migrate up"));
    const char *bad[] = {"serve", "--port", "nope", NULL};
    assert_int_equal(e2e_run_cli(bad, out, sizeof out), 2);
    assert_non_null(strstr(out, "port: expected an integer"));
    const char *unknown[] = {"frobnicate", NULL};
    assert_int_equal(e2e_run_cli(unknown, out, sizeof out), 2);
}

/* docs/configuration.md must name every option --help prints. */
static void every_option_is_documented(void **state)
{
    char out[16384];
    const char *help[] = {"--help", NULL};
    assert_int_equal(e2e_run_cli(help, out, sizeof out), 0);
    FILE *f = fopen(KAOS_SOURCE_DIR "/docs/configuration.md", "r");
    assert_non_null(f);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    int checked = 0;
    for (char *p = strstr(out, "\n  --"); p; p = strstr(p + 1, "\n  --")) {
        char flag[64];
        if (sscanf(p + 3, "%63s", flag) != 1) continue;
        char want[80];
        snprintf(want, sizeof want, "`%s`", flag);
        if (!strstr(doc, want)) fail_msg("option %s is not in docs/configuration.md", flag);
        checked++;
    }
    assert_true(checked >= 20);
}

static void migrate_and_keygen_commands(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    char url[128], out[8192];
    snprintf(url, sizeof url, "dbname=%s", s.dbname);
    const char *status[] = {"migrate", "status", "--database-url", url, NULL};
    assert_int_equal(e2e_run_cli(status, out, sizeof out), 0);
    assert_non_null(strstr(out, "0001_users"));
    /* On a fresh database every migration in the binary is pending; the
     * last line counts them ("N pending"), so adding one needs no edit here. */
    int migrations = -1;
    for (const char *l = out; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        int count;
        char word[16];
        if (sscanf(l, "%d %15s", &count, word) == 2 && !strcmp(word, "pending")) migrations = count;
    }
    assert_true(migrations >= 4);

    const char *keygen[] = {"keygen", "--data-dir", s.data_dir, NULL};
    assert_int_equal(e2e_run_cli(keygen, out, sizeof out), 0);
    assert_non_null(strstr(out, "created"));
    char first[128];
    const char *pk = strstr(out, "public key ");
    assert_non_null(pk);
    snprintf(first, sizeof first, "%.75s", pk);
    assert_int_equal(e2e_run_cli(keygen, out, sizeof out), 0);
    assert_non_null(strstr(out, "kept existing"));
    assert_non_null(strstr(out, first));
    const char *force[] = {"keygen", "--force", "--data-dir", s.data_dir, NULL};
    assert_int_equal(e2e_run_cli(force, out, sizeof out), 0);
    assert_null(strstr(out, first));

    /* serve refuses an unmigrated database unless told to migrate */
    const char *serve[] = {"serve", "--database-url", url, "--data-dir", s.data_dir,
                           "--port", "0", NULL};
    assert_int_equal(e2e_run_cli(serve, out, sizeof out), 1);
    assert_non_null(strstr(out, "migration(s) pending"));

    const char *up[] = {"migrate", "up", "--database-url", url, NULL};
    assert_int_equal(e2e_run_cli(up, out, sizeof out), 0);
    char applied[64];
    snprintf(applied, sizeof applied, "migrations applied: %d\n", migrations);
    assert_non_null(strstr(out, applied));
    assert_int_equal(e2e_run_cli(up, out, sizeof out), 0);
    assert_non_null(strstr(out, "migrations applied: 0"));
    assert_int_equal(e2e_run_cli(status, out, sizeof out), 0);
    assert_non_null(strstr(out, "0 pending"));

    e2e_server_cleanup(&s);
}

static void graceful_shutdown_tells_clients_and_exits_cleanly(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    const char *extra[] = {"--shutdown-grace-ms", "1000", NULL};
    e2e_server_start(&s, extra);
    char dev[40];
    e2e_device_id(dev);
    e2e_client *a = e2e_client_new(s.port, 0, 0);
    e2e_auth(a, dev);
    kaos_client_match_create(a->c, 0, e2e_on_match, a);
    E2E_WAIT(a->matches == 1, 5000);
    e2e_client *b = e2e_client_new(s.port, 0, 0);
    assert_int_equal(e2e_server_stop(&s), 0); /* pumps clients while waiting */
    E2E_WAIT(a->disconnected && b->disconnected, 5000);
    assert_int_equal(a->shutdown_notices, 1);
    assert_int_equal(a->disconnect_reason, KAOS_DISCONNECT_SHUTDOWN);
    assert_int_equal(b->disconnect_reason, KAOS_DISCONNECT_SHUTDOWN);
    e2e_client_free(a);
    e2e_client_free(b);
    e2e_server_cleanup(&s);
}

/* The healthcheck asks a network thread for a cookie: a live server
 * answers, a port where nothing listens does not. */
static void healthcheck_answers_ok_only_while_a_network_thread_serves(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    e2e_server_start(&s, NULL);
    char port[8], out[256];
    snprintf(port, sizeof port, "%u", s.port);
    const char *check[] = {"healthcheck", "--bind", "127.0.0.1", "--port", port, NULL};
    assert_int_equal(e2e_run_cli(check, out, sizeof out), 0);
    assert_non_null(strstr(out, "ok"));
    assert_int_equal(e2e_server_stop(&s), 0);
    assert_int_equal(e2e_run_cli(check, out, sizeof out), 1);
    assert_non_null(strstr(out, "no answer"));
    e2e_server_cleanup(&s);
}

static void hello_example_runs_against_the_server(void **state)
{
    e2e_server s;
    e2e_server_init(&s);
    e2e_server_start(&s, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -t 20 -k %s 127.0.0.1 %u 2>&1", KAOS_HELLO_BIN, s.key_hex,
             s.port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("hello failed:\n%s", out);
    assert_non_null(strstr(out, "op=1"));
    assert_non_null(strstr(out, "op=2"));
    assert_int_equal(e2e_server_stop(&s), 0);
    e2e_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_and_help_and_bad_options),
        cmocka_unit_test(every_option_is_documented),
        cmocka_unit_test(migrate_and_keygen_commands),
        cmocka_unit_test(graceful_shutdown_tells_clients_and_exits_cleanly),
        cmocka_unit_test(healthcheck_answers_ok_only_while_a_network_thread_serves),
        cmocka_unit_test(hello_example_runs_against_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
