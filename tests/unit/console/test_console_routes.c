/* The console's dispatcher over real HTTP, against Postgres: every route of
 * every service table is refused without a session (401), every route that
 * needs more than read-only is refused to a read-only user (403) before its
 * handler runs, a cookie write without the CSRF token is refused (403) and
 * audited, and the static page is served with its security headers. */
#include "pgtest.h"
#include "console_internal.h"
#include "kn_crypto.h"
#include "kn_db.h"
#include "kn_error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static pgtest pg;
static kn_db *db;
static kn_console *console;
static char viewer[KN_CONSOLE_TOKEN_LEN + 1], viewer_csrf[KN_CONSOLE_CSRF_LEN + 1];

static const kn_console_route *const tables[] = {
#define TABLE(name) kn_console__##name##_routes,
    KN_CONSOLE_SERVICES(TABLE)
#undef TABLE
};

static int setup(void **state)
{
    (void)state;
    char msg[256];
    kn_console_who who;
    if (kn_crypto_init() || pgtest_create(&pg, "kaos_console_routes", &db)) return -1;
    if (kn_console_user_add(db, "viewer", "viewer-password", KN_CONSOLE_READ_ONLY, msg,
                            sizeof msg) ||
        kn_console_login(db, "viewer", "viewer-password", 60, viewer, &who, msg, sizeof msg))
        return -1;
    snprintf(viewer_csrf, sizeof viewer_csrf, "%s", who.csrf);
    kn_console_config cfg = {.bind = "127.0.0.1",
                             .database_url = pg.url,
                             .session_ttl_sec = 60,
                             .lockout_failures = 5,
                             .lockout_ms = 60000};
    kn_console_hooks hooks = {0};
    return kn_console_start(&cfg, &hooks, &console);
}

static int teardown(void **state)
{
    (void)state;
    kn_console_stop(console);
    kn_db_close(db);
    return pgtest_drop(&pg);
}

/* One request with a JSON body; the status code, and the answer's head and
 * body in out. */
static int request_body(const char *method, const char *path, const char *headers, const char *body,
                        char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(kn_console_port(console))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, headers ? headers : "", strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    int status = 0;
    assert_int_equal(sscanf(out, "HTTP/1.1 %d", &status), 1);
    return status;
}

static int request(const char *method, const char *path, const char *headers, char *out, size_t cap)
{
    return request_body(method, path, headers, "{}", out, cap);
}

static void every_route_needs_a_session(void **state)
{
    (void)state;
    char out[4096], path[128];
    int routes = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const kn_console_route *r = tables[t]; r->path; r++, routes++) {
            snprintf(path, sizeof path, "/v2/console/%s", r->path);
            if (request(r->method, path, NULL, out, sizeof out) != 401)
                fail_msg("%s %s answered without a session: %s", r->method, path, out);
        }
    assert_true(routes >= 30);
}

static void every_route_above_read_only_refuses_a_read_only_user(void **state)
{
    (void)state;
    char out[4096], path[128], auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", viewer);
    int refused = 0, writes = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const kn_console_route *r = tables[t]; r->path; r++) {
            snprintf(path, sizeof path, "/v2/console/%s", r->path);
            /* No write is open to read-only users. */
            if (!strcmp(r->method, "POST") && r->need == KN_CONSOLE_READ_ONLY)
                fail_msg("write %s is open to read-only users", path);
            int status = request(r->method, path, auth, out, sizeof out);
            if (r->need > KN_CONSOLE_READ_ONLY) {
                if (status != 403 || !strstr(out, "the read-only role may not do this"))
                    fail_msg("%s %s let a read-only user through: %s", r->method, path, out);
                refused++;
                writes += !strcmp(r->method, "POST");
            } else if (status == 401 || status == 403) {
                fail_msg("%s %s refused a read-only user: %s", r->method, path, out);
            }
        }
    assert_true(refused >= 15);
    /* Each refused write, and only the writes, is in the audit log. */
    pgtest_sql(db,
               "DO $$ BEGIN IF (SELECT count(*) FROM console_audit WHERE username = 'viewer'"
               " AND result = 7) <> %d THEN RAISE 'wrong audit rows'; END IF; END $$",
               writes);
}

static void a_cookie_write_needs_the_csrf_token(void **state)
{
    (void)state;
    char out[4096], headers[256];
    snprintf(headers, sizeof headers, "Cookie: kaos_console=%s\r\n", viewer);
    assert_int_equal(request("POST", "/v2/console/logout", headers, out, sizeof out), 403);
    assert_non_null(strstr(out, "CSRF"));
    snprintf(headers, sizeof headers, "Cookie: kaos_console=%s\r\nX-Kaos-Csrf: nope\r\n", viewer);
    assert_int_equal(request("POST", "/v2/console/logout", headers, out, sizeof out), 403);
    snprintf(headers, sizeof headers, "Cookie: kaos_console=%s\r\n", viewer);
    assert_int_equal(request("GET", "/v2/console/me", headers, out, sizeof out), 200);
    assert_non_null(strstr(out, "\"role\":\"read-only\""));
}

static void the_page_is_served_with_its_security_headers(void **state)
{
    (void)state;
    static char out[262144];
    assert_int_equal(request("GET", "/", NULL, out, sizeof out), 200);
    assert_non_null(strstr(out, "Content-Security-Policy: default-src 'self'"));
    assert_non_null(strstr(out, "X-Frame-Options: DENY"));
    assert_non_null(strstr(out, "<title>KaosNet console</title>"));
    assert_int_equal(request("GET", "/assets/pages.js", NULL, out, sizeof out), 200);
    assert_non_null(strstr(out, "KC.page({ id: 'accounts'"));
    assert_int_equal(request("GET", "/nope", NULL, out, sizeof out), 404);
}

/* Runs last: it locks the user and the address out. */
static void a_login_sets_the_cookie_and_failures_lock_it_out(void **state)
{
    (void)state;
    char out[4096];
    const char *right = "{\"username\":\"viewer\",\"password\":\"viewer-password\"}";
    const char *wrong = "{\"username\":\"viewer\",\"password\":\"not-it-at-all\"}";
    assert_int_equal(request_body("POST", "/v2/console/login", NULL, right, out, sizeof out), 200);
    assert_non_null(strstr(out, "Set-Cookie: kaos_console="));
    assert_non_null(strstr(out, "HttpOnly; SameSite=Strict; Max-Age=60"));
    assert_null(strstr(out, "\"token\""));
    assert_int_equal(request_body("POST", "/v2/console/token", NULL, right, out, sizeof out), 200);
    assert_null(strstr(out, "Set-Cookie"));
    assert_non_null(strstr(out, "\"token\":\""));
    for (int i = 0; i < 5; i++)
        assert_int_equal(request_body("POST", "/v2/console/login", NULL, wrong, out, sizeof out),
                         401);
    assert_int_equal(request_body("POST", "/v2/console/login", NULL, right, out, sizeof out), 429);
    assert_non_null(strstr(out, "too many failed logins"));
}

/* A metrics hook whose sessions gauge counts its calls. */
static atomic_int metric_calls;
static void counting_metrics(void *ud, char *buf, size_t cap)
{
    (void)ud;
    int n = atomic_fetch_add(&metric_calls, 1) + 1;
    snprintf(buf, cap, "# HELP kaos_sessions sessions\nkaos_sessions %d\nkaos_requests_total %d\n",
             n, 10 * n);
}

/* A console behind a TLS proxy marks its cookie Secure; its Status answer
 * carries the history its sampler kept, oldest first. */
static void the_cookie_can_be_secure_and_status_keeps_a_history(void **state)
{
    (void)state;
    kn_console_config cfg = {.bind = "127.0.0.1",
                             .database_url = pg.url,
                             .session_ttl_sec = 60,
                             .secure_cookie = true,
                             .history_interval_ms = 20};
    kn_console_hooks hooks = {.metrics = counting_metrics};
    kn_console *plain = console, *secure;
    assert_int_equal(kn_console_start(&cfg, &hooks, &secure), KN_OK);
    console = secure; /* request() talks to it */
    while (atomic_load(&metric_calls) < 4)
        usleep(10000);

    char out[16384];
    const char *right = "{\"username\":\"viewer\",\"password\":\"viewer-password\"}";
    assert_int_equal(request_body("POST", "/v2/console/login", NULL, right, out, sizeof out), 200);
    assert_non_null(strstr(out, "HttpOnly; SameSite=Strict; Max-Age=60; Secure"));

    char cookie[256];
    snprintf(cookie, sizeof cookie, "Cookie: kaos_console=%s\r\n", viewer);
    assert_int_equal(request("GET", "/v2/console/status", cookie, out, sizeof out), 200);
    const char *h = strstr(out, "\"history\"");
    assert_non_null(h);
    assert_non_null(strstr(h, "\"interval_ms\":20"));
    /* at least three samples, the sessions gauge rising from one to the next */
    const char *p = h;
    double prev = -1;
    int samples = 0;
    while ((p = strstr(p, "\"kaos_sessions\":"))) {
        double v = strtod(p + strlen("\"kaos_sessions\":"), NULL);
        assert_true(v > prev);
        prev = v;
        samples++;
        p++;
    }
    assert_true(samples >= 3);
    assert_non_null(strstr(h, "\"kaos_requests_total\":"));

    console = plain;
    kn_console_stop(secure);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_route_needs_a_session),
        cmocka_unit_test(every_route_above_read_only_refuses_a_read_only_user),
        cmocka_unit_test(a_cookie_write_needs_the_csrf_token),
        cmocka_unit_test(the_page_is_served_with_its_security_headers),
        cmocka_unit_test(a_login_sets_the_cookie_and_failures_lock_it_out),
        cmocka_unit_test(the_cookie_can_be_secure_and_status_keeps_a_history),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
