/* Configuration: defaults, file < environment < flags, and clear errors. */
#include "failalloc.h"
#include "kn_config.h"
#include "kn_error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static void defaults_are_documented_values(void **state)
{
    kn_config c;
    assert_int_equal(kn_config_init(&c), KN_OK);
    assert_int_equal(c.port, 7350);
    assert_string_equal(c.bind, "0.0.0.0");
    assert_string_equal(c.database_url, "");
    assert_string_equal(c.log_format, "text");
    assert_int_equal(c.max_message_size, 16384);
    assert_false(c.migrate);
    char err[256];
    assert_int_equal(kn_config_validate(&c, err, sizeof err), KN_OK);
    kn_config_deinit(&c);
}

static void flags_override_env_which_overrides_file(void **state)
{
    char path[] = "/tmp/kaos-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nport = 9000\nnode = \"filenode\"\nlog_level = debug\n"
                       "database_url = postgresql://file\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char cfgarg[64];
    snprintf(cfgarg, sizeof cfgarg, "--config=%s", path);
    char *argv[] = {cfgarg, "--port", "9002", "--log-format=json", "--migrate"};
    char *env[] = {"KAOS_PORT=9001", "KAOS_NODE=envnode", "UNRELATED=1", NULL};
    kn_config c;
    char err[256] = "";
    assert_int_equal(kn_config_init(&c), KN_OK);
    int rc = kn_config_load(&c, 5, argv, env, err, sizeof err);
    if (rc) fail_msg("load: %s", err);
    assert_int_equal(c.port, 9002);                         /* flag */
    assert_string_equal(c.node, "envnode");                 /* env over file */
    assert_string_equal(c.log_level, "debug");              /* file */
    assert_string_equal(c.database_url, "postgresql://file");
    assert_string_equal(c.log_format, "json");
    assert_true(c.migrate);                                 /* bare boolean flag */
    kn_config_deinit(&c);
    unlink(path);
}

static void config_file_from_environment(void **state)
{
    char path[] = "/tmp/kaos-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "max_connections = 64\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char envcfg[64];
    snprintf(envcfg, sizeof envcfg, "KAOS_CONFIG=%s", path);
    char *env[] = {envcfg, NULL};
    kn_config c;
    char err[256];
    assert_int_equal(kn_config_init(&c), KN_OK);
    assert_int_equal(kn_config_load(&c, 0, NULL, env, err, sizeof err), KN_OK);
    assert_int_equal(c.max_connections, 64);
    kn_config_deinit(&c);
    unlink(path);
}

static void bad_values_give_clear_errors(void **state)
{
    struct {
        char *arg;
        const char *expect;
    } cases[] = {
        {"--port=70000", "port: expected an integer in 0..65535"},
        {"--port=abc", "port: expected an integer"},
        {"--no-such-thing=1", "unknown option \"--no-such-thing\""},
        {"--migrate=maybe", "migrate: expected true or false"},
        {"--log-format=xml", "log_format: expected text or json"},
        {"--node=a.b", "node:"},
        {"stray", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kn_config c;
        char err[256] = "";
        assert_int_equal(kn_config_init(&c), KN_OK);
        char *argv[] = {cases[i].arg};
        assert_int_equal(kn_config_load(&c, 1, argv, NULL, err, sizeof err), KN_ERR_CONFIG);
        if (!strstr(err, cases[i].expect)) fail_msg("for %s got \"%s\"", cases[i].arg, err);
        kn_config_deinit(&c);
    }
}

static void connections_beyond_the_network_threads_are_refused(void **state)
{
    kn_config c;
    char err[256] = "";
    assert_int_equal(kn_config_init(&c), KN_OK);
    char *ok[] = {"--max-connections", "8000", "--net-threads", "2"};
    assert_int_equal(kn_config_load(&c, 4, ok, NULL, err, sizeof err), KN_OK);
    kn_config_deinit(&c);
    assert_int_equal(kn_config_init(&c), KN_OK);
    char *bad[] = {"--max-connections", "9000", "--net-threads", "2"};
    assert_int_equal(kn_config_load(&c, 4, bad, NULL, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "needs net_threads of at least 3"));
    kn_config_deinit(&c);
    assert_int_equal(kn_config_init(&c), KN_OK);
    char *automatic[] = {"--max-connections", "9000"}; /* net_threads 0: as many as needed */
    assert_int_equal(kn_config_load(&c, 2, automatic, NULL, err, sizeof err), KN_OK);
    kn_config_deinit(&c);
}

static void bad_env_and_file_lines_name_their_source(void **state)
{
    kn_config c;
    char err[256] = "";
    char *env[] = {"KAOS_MAX_CONNECTIONS=999999", NULL};
    assert_int_equal(kn_config_init(&c), KN_OK);
    assert_int_equal(kn_config_load(&c, 0, NULL, env, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, "KAOS_MAX_CONNECTIONS"));
    kn_config_deinit(&c);

    char path[] = "/tmp/kaos-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "port = 1\nthis line has no equals\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char arg[64];
    snprintf(arg, sizeof arg, "--config=%s", path);
    char *argv[] = {arg};
    assert_int_equal(kn_config_init(&c), KN_OK);
    assert_int_equal(kn_config_load(&c, 1, argv, NULL, err, sizeof err), KN_ERR_CONFIG);
    assert_non_null(strstr(err, ":2: expected `name = value`"));
    kn_config_deinit(&c);
    unlink(path);
}

static int init_and_set(void *arg)
{
    kn_config c;
    int rc = kn_config_init(&c);
    if (rc) return rc;
    rc = kn_config_set(&c, "database-url", "postgresql://x", NULL, 0);
    kn_config_deinit(&c);
    return rc;
}

static void init_survives_allocation_failures(void **state)
{
    assert_true(failalloc_sweep(init_and_set, NULL) > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_documented_values),
        cmocka_unit_test(flags_override_env_which_overrides_file),
        cmocka_unit_test(config_file_from_environment),
        cmocka_unit_test(bad_values_give_clear_errors),
        cmocka_unit_test(bad_env_and_file_lines_name_their_source),
        cmocka_unit_test(connections_beyond_the_network_threads_are_refused),
        cmocka_unit_test(init_survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
