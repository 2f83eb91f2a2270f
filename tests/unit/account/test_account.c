/* kn_account against the Postgres named by the PG* environment (the suite
 * runs inside pg_virtualenv): a fresh database per run, migrated by
 * kn_db_migrate_up, users made through kn_auth as the wire would make them.
 * Covers get/update with every limit, public lookups, delete, bans (and
 * their effect on kn_auth), the link/unlink matrix, session checks, a race
 * between two unlinks, and allocation failures of the result builders. */
#include "failalloc.h"
#include "kn_account.h"
#include "kn_auth.h"
#include "kn_db.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_json.h"
#include "kn_uuid.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

static const uint8_t skey[32] = "session-key-session-key-session-";
static const uint8_t rkey[32] = "refresh-key-refresh-key-refresh-";

static kn_db *db;
static kn_auth *auth;
static kn_session_store *store;
static char dbname[64];
static char msg[256];

/* --- fixtures ------------------------------------------------------------------ */

static int admin_exec(const char *sql)
{
    kn_db *admin;
    int rc = kn_db_open("", &admin);
    if (rc) {
        fprintf(stderr, "cannot reach the test Postgres (run inside pg_virtualenv)\n");
        return rc;
    }
    rc = kn_db_exec(admin, sql);
    kn_db_close(admin);
    return rc;
}

static int setup(void **state)
{
    char sql[128], url[96];
    snprintf(dbname, sizeof dbname, "kaos_unit_account_%d", (int)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    if (admin_exec(sql)) return -1;
    snprintf(url, sizeof url, "dbname=%s", dbname);
    int applied;
    if (kn_db_open(url, &db) || kn_db_migrate_up(db, &applied)) return -1;
    kn_session_store_config sc = {skey, 32, rkey, 32, 60, 3600};
    if (kn_session_store_create(&sc, &store)) return -1;
    kn_auth_config c = {store};
    return kn_auth_create(&c, &auth) ? -1 : 0;
}

static int teardown(void **state)
{
    kn_auth_destroy(auth);
    kn_session_store_destroy(store);
    kn_db_close(db);
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    return admin_exec(sql) ? -1 : 0;
}

/* --- helpers --------------------------------------------------------------------- */

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

/* Asserts the code and that msg contains `text`. */
#define expect(code, text, call)                                                                   \
    do {                                                                                           \
        msg[0] = '\0';                                                                             \
        int rc_ = (call);                                                                          \
        if (rc_ != (code))                                                                         \
            fail_msg("%s: got %s (%s), expected %s", #call, kn_err_name(rc_), msg,                 \
                     kn_err_name(code));                                                           \
        if (!strstr(msg, (text))) fail_msg("%s: message '%s' lacks '%s'", #call, msg, (text));     \
    } while (0)

#define expect_ok(call) expect(KN_OK, "", call)

/* A new user made by a device login, as the wire would make it. */
static void new_user(const char *device_id, const char *username, kn_session_grant *s)
{
    expect_ok(
        kn_auth_device(auth, db, device_id, username, true, NULL, 0, now(), s, msg, sizeof msg));
    assert_true(s->created);
}

static int device_login(const char *device_id, kn_session_grant *s)
{
    msg[0] = '\0';
    int rc = kn_auth_device(auth, db, device_id, NULL, false, NULL, 0, now(), s, msg, sizeof msg);
    if (rc) kn_session_grant_deinit(s);
    return rc;
}

static void age_update_time(const char *user_id)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE users SET update_time = now() - interval '1 hour' WHERE id = '%s'", user_id);
    assert_int_equal(kn_db_exec(db, sql), KN_OK);
}

static void assert_json_equal(const char *got, const char *want)
{
    kn_json *g = kn_json_parse(got, strlen(got), 0, NULL);
    kn_json *w = kn_json_parse(want, strlen(want), 0, NULL);
    assert_non_null(g);
    assert_non_null(w);
    if (!kn_json_equal(g, w)) fail_msg("json %s != %s", got, want);
    kn_json_decref(g);
    kn_json_decref(w);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* --- get ----------------------------------------------------------------------------- */

static void get_returns_every_field_of_a_new_account(void **state)
{
    kn_session_grant s;
    new_user("get-device-0001", "getter", &s);
    kn_account a;
    expect_ok(kn_account_get(db, s.claims.user_id, &a, msg, sizeof msg));
    assert_string_equal(a.user.id, s.claims.user_id);
    assert_string_equal(a.user.username, "getter");
    assert_null(a.user.display_name);
    assert_null(a.user.avatar_url);
    assert_string_equal(a.user.lang_tag, "en");
    assert_null(a.user.location);
    assert_null(a.user.timezone);
    assert_string_equal(a.user.metadata, "{}");
    assert_true(llabs(a.user.create_time - now()) < 60);
    assert_true(a.user.update_time >= a.user.create_time);
    assert_null(a.email);
    assert_null(a.custom_id);
    assert_int_equal(a.device_count, 1);
    assert_string_equal(a.device_ids[0], "get-device-0001");
    assert_int_equal(a.disable_time, 0);
    kn_account_deinit(&a);
    kn_account_deinit(&a); /* a zeroed account is fine too */
    kn_account_deinit(NULL);

    /* Upper-case UUIDs name the same user; the answer is canonical. */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(s.claims.user_id[i] >= 'a' && s.claims.user_id[i] <= 'f'
                              ? s.claims.user_id[i] - 32
                              : s.claims.user_id[i]);
    expect_ok(kn_account_get(db, upper, &a, msg, sizeof msg));
    assert_string_equal(a.user.id, s.claims.user_id);
    kn_account_deinit(&a);
    kn_session_grant_deinit(&s);
}

static void get_unknown_user_is_not_found(void **state)
{
    char id[37];
    kn_uuid_v4(id);
    kn_account a;
    expect(KN_ERR_NOT_FOUND, "user not found", kn_account_get(db, id, &a, msg, sizeof msg));
    assert_null(a.user.username);
    kn_account_deinit(&a);
}

/* db is NULL: reaching it would crash, so these prove validation comes first. */
static void invalid_arguments_are_refused_before_any_database_call(void **state)
{
    char id[37];
    kn_uuid_v4(id);
    kn_account a;
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_get(NULL, "nope", &a, msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_get(NULL, NULL, &a, msg, sizeof msg));
    kn_account_changes bad = {.metadata = "[]"};
    expect(KN_ERR_INVALID_ARGUMENT, "JSON object",
           kn_account_update(NULL, id, &bad, msg, sizeof msg));
    kn_account_changes none = {0};
    expect_ok(kn_account_update(NULL, id, &none, msg, sizeof msg)); /* nothing to do */
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_update(NULL, "x", &none, msg, sizeof msg));
    kn_user *u;
    size_t n;
    const char *ids[] = {"not-a-uuid"};
    expect(KN_ERR_INVALID_ARGUMENT, "UUIDs",
           kn_users_get(NULL, ids, 1, NULL, 0, &u, &n, msg, sizeof msg));
    expect_ok(kn_users_get(NULL, NULL, 0, NULL, 0, &u, &n, msg, sizeof msg));
    assert_null(u);
    assert_int_equal(n, 0);
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_delete(NULL, "x", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_ban(NULL, "x", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_unban(NULL, "x", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_session_live(NULL, "x", id, msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_session_live(NULL, id, "x", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "device id",
           kn_account_link_device(NULL, id, "short", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "device id",
           kn_account_unlink_device(NULL, id, "has space in it", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "password",
           kn_account_link_email(NULL, id, "someone@example.com", "short", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "email",
           kn_account_link_email(NULL, id, "no-at-sign.example", "long enough", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "custom id",
           kn_account_link_custom(NULL, id, "abc", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_unlink_email(NULL, "x", msg, sizeof msg));
    expect(KN_ERR_INVALID_ARGUMENT, "UUID", kn_account_unlink_custom(NULL, "x", msg, sizeof msg));
}

/* --- update ---------------------------------------------------------------------------- */

static void update_changes_each_field_and_bumps_update_time(void **state)
{
    kn_session_grant s;
    new_user("update-device-01", "updater", &s);
    const char *id = s.claims.user_id;
    enum { USERNAME, DISPLAY, AVATAR, LANG, LOCATION, TIMEZONE, METADATA, NFIELDS };
    const char *values[NFIELDS] = {"updated-name",
                                   "Zoë the Brave ☃",
                                   "https://cdn.example.com/a.png",
                                   "pt-BR",
                                   "Porto Alegre",
                                   "America/Sao_Paulo",
                                   "{\"level\":3,\"tags\":[\"a\",\"b\"],\"nested\":{\"x\":null}}"};
    for (int f = 0; f < NFIELDS; f++) {
        age_update_time(id);
        kn_account_changes u = {0};
        const char **slot[NFIELDS] = {&u.username, &u.display_name, &u.avatar_url, &u.lang_tag,
                                      &u.location, &u.timezone,     &u.metadata};
        *slot[f] = values[f];
        expect_ok(kn_account_update(db, id, &u, msg, sizeof msg));
        kn_account a;
        expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
        char *got[NFIELDS] = {a.user.username, a.user.display_name, a.user.avatar_url,
                              a.user.lang_tag, a.user.location,     a.user.timezone,
                              a.user.metadata};
        /* this field and every earlier one hold the new values; later ones are untouched */
        for (int g = 0; g < NFIELDS; g++) {
            if (g == METADATA && g <= f)
                assert_json_equal(got[g], values[g]);
            else if (g <= f)
                assert_string_equal(got[g], values[g]);
        }
        if (f < DISPLAY) assert_null(a.user.display_name);
        if (f < LANG) assert_string_equal(a.user.lang_tag, "en");
        if (f < METADATA) assert_string_equal(a.user.metadata, "{}");
        assert_true(a.user.update_time > now() - 60);
        kn_account_deinit(&a);
    }

    /* "" clears the optional text fields; "{}" empties metadata. */
    kn_account_changes clear = {
        .display_name = "", .avatar_url = "", .location = "", .timezone = "", .metadata = "{}"};
    expect_ok(kn_account_update(db, id, &clear, msg, sizeof msg));
    kn_account a;
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    assert_null(a.user.display_name);
    assert_null(a.user.avatar_url);
    assert_null(a.user.location);
    assert_null(a.user.timezone);
    assert_string_equal(a.user.metadata, "{}");
    assert_string_equal(a.user.username, "updated-name");
    assert_string_equal(a.user.lang_tag, "pt-BR");
    kn_account_deinit(&a);

    /* The new username is what the next refresh puts in the token. */
    kn_session_grant r;
    expect_ok(kn_session_refresh(kn_auth_sessions(auth), db, s.refresh_token, NULL, 0, now(), &r,
                                 msg, sizeof msg));
    assert_string_equal(r.claims.username, "updated-name");
    kn_session_grant_deinit(&r);
    kn_session_grant_deinit(&s);
}

static void update_with_nothing_to_change_is_a_no_op(void **state)
{
    kn_session_grant s;
    new_user("noop-device-001", "noop-user", &s);
    age_update_time(s.claims.user_id);
    kn_account before, after;
    expect_ok(kn_account_get(db, s.claims.user_id, &before, msg, sizeof msg));
    kn_account_changes none = {0};
    expect_ok(kn_account_update(db, s.claims.user_id, &none, msg, sizeof msg));
    expect_ok(kn_account_get(db, s.claims.user_id, &after, msg, sizeof msg));
    assert_int_equal(after.user.update_time, before.user.update_time);
    assert_true(after.user.update_time < now() - 1800);
    kn_account_deinit(&before);
    kn_account_deinit(&after);
    kn_session_grant_deinit(&s);
}

static void update_refuses_a_taken_username(void **state)
{
    kn_session_grant a, b;
    new_user("taken-device-a1", "taken-a", &a);
    new_user("taken-device-b1", "taken-b", &b);
    kn_account_changes u = {.username = "taken-b", .display_name = "should not stick"};
    expect(KN_ERR_ALREADY_EXISTS, "username is taken",
           kn_account_update(db, a.claims.user_id, &u, msg, sizeof msg));
    kn_account acc;
    expect_ok(kn_account_get(db, a.claims.user_id, &acc, msg, sizeof msg));
    assert_string_equal(acc.user.username, "taken-a");
    assert_null(acc.user.display_name);
    kn_account_deinit(&acc);
    /* keeping one's own name is not a conflict */
    kn_account_changes same = {.username = "taken-a"};
    expect_ok(kn_account_update(db, a.claims.user_id, &same, msg, sizeof msg));
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
}

static void update_refuses_bad_input_and_changes_nothing(void **state)
{
    kn_session_grant s;
    new_user("badinput-device1", "bad-input", &s);
    const char *id = s.claims.user_id;
    char *d256 = repeat('d', 256), *d255 = repeat('d', 255), *a513 = repeat('a', 513),
         *l19 = repeat('l', 19), *u129 = repeat('u', 129);
    struct {
        kn_account_changes u;
        const char *why;
    } cases[] = {
        {{.metadata = "[1,2]"}, "metadata must be a JSON object"},
        {{.metadata = "42"}, "metadata must be a JSON object"},
        {{.metadata = "not json"}, "metadata must be a JSON object"},
        {{.metadata = ""}, "metadata must be a JSON object"},
        {{.metadata = "{\"a\":"}, "metadata must be a JSON object"},
        {{.metadata = "{\"a\":\"\\u0000\"}"}, "metadata must be a JSON object"},
        {{.display_name = d256}, "display_name must be at most 255 bytes"},
        {{.display_name = "bad \xc3\x28 utf8"}, "display_name"},
        {{.display_name = "overlong \xc0\xaf"}, "display_name"},
        {{.display_name = "surrogate \xed\xa0\x80"}, "display_name"},
        {{.display_name = "tab\there"}, "display_name"},
        {{.avatar_url = a513}, "avatar_url must be at most 512 bytes"},
        {{.avatar_url = "https://example.com/a b.png"}, "avatar_url"},
        {{.lang_tag = l19}, "lang_tag must be 1-18"},
        {{.lang_tag = ""}, "lang_tag"},
        {{.lang_tag = "en US"}, "lang_tag"},
        {{.location = d256}, "location must be at most 255 bytes"},
        {{.timezone = d256}, "timezone must be at most 255 bytes"},
        {{.username = ""}, "username must be 1-128"},
        {{.username = "has space"}, "username"},
        {{.username = u129}, "username"},
        /* one bad field refuses the whole update */
        {{.display_name = "fine", .metadata = "[]"}, "metadata"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect(KN_ERR_INVALID_ARGUMENT, cases[i].why,
               kn_account_update(db, id, &cases[i].u, msg, sizeof msg));
    kn_account a;
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    assert_null(a.user.display_name);
    assert_string_equal(a.user.metadata, "{}");
    kn_account_deinit(&a);

    /* The limits themselves are allowed. */
    char *meta = repeat('m', KN_ACCOUNT_METADATA_MAX);
    memcpy(meta, "{\"k\":\"", 6);
    memcpy(meta + KN_ACCOUNT_METADATA_MAX - 2, "\"}", 2);
    kn_account_changes max = {.display_name = d255, .metadata = meta};
    expect_ok(kn_account_update(db, id, &max, msg, sizeof msg));
    char *over = repeat('m', KN_ACCOUNT_METADATA_MAX + 1);
    memcpy(over, "{\"k\":\"", 6);
    memcpy(over + KN_ACCOUNT_METADATA_MAX - 1, "\"}", 2);
    kn_account_changes big = {.metadata = over};
    expect(KN_ERR_INVALID_ARGUMENT, "at most 16384 bytes",
           kn_account_update(db, id, &big, msg, sizeof msg));

    char unknown[37];
    kn_uuid_v4(unknown);
    kn_account_changes ok = {.display_name = "ghost"};
    expect(KN_ERR_NOT_FOUND, "user not found",
           kn_account_update(db, unknown, &ok, msg, sizeof msg));
    free(d256), free(d255), free(a513), free(l19), free(u129), free(meta), free(over);
    kn_session_grant_deinit(&s);
}

/* --- public profiles ----------------------------------------------------------------- */

static void users_get_finds_by_ids_and_usernames_without_duplicates(void **state)
{
    kn_session_grant one, two, three;
    new_user("public-device-1", "pub-one", &one);
    new_user("public-device-2", "pub-two", &two);
    new_user("public-device-3", "pub-three", &three);
    kn_account_changes u = {.display_name = "One", .metadata = "{\"rank\":1}"};
    expect_ok(kn_account_update(db, one.claims.user_id, &u, msg, sizeof msg));
    char unknown[37];
    kn_uuid_v4(unknown);

    /* two is named twice; unknown ones are absent */
    const char *ids[] = {one.claims.user_id, two.claims.user_id, unknown};
    const char *names[] = {"pub-two", "pub-three", "nobody-at-all"};
    kn_user *users;
    size_t n;
    expect_ok(kn_users_get(db, ids, 3, names, 3, &users, &n, msg, sizeof msg));
    assert_int_equal(n, 3);
    assert_string_equal(users[0].username, "pub-one"); /* ordered by username */
    assert_string_equal(users[0].id, one.claims.user_id);
    assert_string_equal(users[0].display_name, "One");
    assert_json_equal(users[0].metadata, "{\"rank\":1}");
    assert_string_equal(users[0].lang_tag, "en");
    assert_true(users[0].create_time > 0);
    assert_string_equal(users[1].username, "pub-three");
    assert_string_equal(users[2].username, "pub-two");
    assert_null(users[2].display_name);
    kn_users_free(users, n);

    const char *twice[] = {one.claims.user_id, one.claims.user_id};
    expect_ok(kn_users_get(db, twice, 2, NULL, 0, &users, &n, msg, sizeof msg));
    assert_int_equal(n, 1);
    kn_users_free(users, n);

    const char *nobody[] = {unknown};
    expect_ok(kn_users_get(db, nobody, 1, names + 2, 1, &users, &n, msg, sizeof msg));
    assert_int_equal(n, 0);
    assert_null(users);
    kn_users_free(NULL, 0);

    /* Quotes, backslashes, commas and braces are legal in usernames and
     * must not break out of the array parameter. */
    kn_account_changes odd = {.username = "we\"ird\\,{name}"};
    expect_ok(kn_account_update(db, three.claims.user_id, &odd, msg, sizeof msg));
    const char *odd_names[] = {"we\"ird\\,{name}", "pub-two"};
    expect_ok(kn_users_get(db, NULL, 0, odd_names, 2, &users, &n, msg, sizeof msg));
    assert_int_equal(n, 2);
    assert_string_equal(users[1].username, "we\"ird\\,{name}");
    assert_string_equal(users[1].id, three.claims.user_id);
    kn_users_free(users, n);
    kn_session_grant_deinit(&one);
    kn_session_grant_deinit(&two);
    kn_session_grant_deinit(&three);
}

static void users_get_refuses_invalid_ids_and_too_many(void **state)
{
    kn_user *users = (kn_user *)1;
    size_t n = 7;
    char unknown[37];
    kn_uuid_v4(unknown);
    const char *mixed[] = {unknown, "1234"};
    expect(KN_ERR_INVALID_ARGUMENT, "user ids must be UUIDs",
           kn_users_get(db, mixed, 2, NULL, 0, &users, &n, msg, sizeof msg));
    assert_null(users);
    assert_int_equal(n, 0);
    const char *bad_name[] = {"has space"};
    expect(KN_ERR_INVALID_ARGUMENT, "username",
           kn_users_get(db, NULL, 0, bad_name, 1, &users, &n, msg, sizeof msg));

    static char idbuf[KN_USERS_GET_MAX + 1][37];
    const char *many[KN_USERS_GET_MAX + 1];
    for (int i = 0; i <= KN_USERS_GET_MAX; i++) {
        kn_uuid_v4(idbuf[i]);
        many[i] = idbuf[i];
    }
    expect(KN_ERR_INVALID_ARGUMENT, "at most 100",
           kn_users_get(db, many, KN_USERS_GET_MAX + 1, NULL, 0, &users, &n, msg, sizeof msg));
    expect_ok(kn_users_get(db, many, KN_USERS_GET_MAX, NULL, 0, &users, &n, msg, sizeof msg));
    assert_int_equal(n, 0);
    const char *names[KN_USERS_GET_MAX + 1];
    for (int i = 0; i <= KN_USERS_GET_MAX; i++)
        names[i] = "someone";
    expect(KN_ERR_INVALID_ARGUMENT, "at most 100",
           kn_users_get(db, NULL, 0, names, KN_USERS_GET_MAX + 1, &users, &n, msg, sizeof msg));
}

/* --- delete ------------------------------------------------------------------------------- */

static void delete_removes_the_user_its_devices_and_sessions(void **state)
{
    kn_session_grant s;
    new_user("delete-device-01", "deleted-user", &s);
    char id[37];
    snprintf(id, sizeof id, "%s", s.claims.user_id);
    expect_ok(kn_account_delete(db, id, msg, sizeof msg));
    kn_account a;
    expect(KN_ERR_NOT_FOUND, "user not found", kn_account_get(db, id, &a, msg, sizeof msg));
    kn_session_grant again;
    assert_int_equal(device_login("delete-device-01", &again), KN_ERR_NOT_FOUND);
    expect(KN_ERR_UNAUTHENTICATED, "",
           kn_session_refresh(kn_auth_sessions(auth), db, s.refresh_token, NULL, 0, now(), &again,
                              msg, sizeof msg));
    expect(KN_ERR_UNAUTHENTICATED, "user no longer exists",
           kn_session_live(db, s.claims.session_id, id, msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "user not found", kn_account_delete(db, id, msg, sizeof msg));
    /* the device id is free again */
    new_user("delete-device-01", "deleted-user", &again);
    assert_string_not_equal(again.claims.user_id, id);
    kn_session_grant_deinit(&again);
    kn_session_grant_deinit(&s);
}

/* --- bans ----------------------------------------------------------------------------------- */

static void ban_blocks_logins_and_refresh_and_unban_restores_them(void **state)
{
    kn_session_grant s, t;
    new_user("banned-device-01", "banned-user", &s);
    const char *id = s.claims.user_id;
    expect_ok(
        kn_account_link_email(db, id, "Banned@Example.com", "correct horse", msg, sizeof msg));
    expect_ok(kn_account_link_custom(db, id, "banned-custom", msg, sizeof msg));

    expect_ok(kn_account_ban(db, id, msg, sizeof msg));
    kn_account a;
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    int64_t banned_at = a.disable_time;
    assert_true(llabs(banned_at - now()) < 60);
    kn_account_deinit(&a);

    assert_int_equal(device_login("banned-device-01", &t), KN_ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "account is banned");
    expect(KN_ERR_PERMISSION_DENIED, "account is banned",
           kn_auth_email(auth, db, "banned@example.com", "correct horse", NULL, false, NULL, 0,
                         now(), &t, msg, sizeof msg));
    /* without the password nobody learns about the ban */
    expect(KN_ERR_UNAUTHENTICATED, "invalid credentials",
           kn_auth_email(auth, db, "banned@example.com", "wrong horse", NULL, false, NULL, 0, now(),
                         &t, msg, sizeof msg));
    /* create=true must not slip past the ban by making a new user */
    expect(
        KN_ERR_PERMISSION_DENIED, "account is banned",
        kn_auth_custom(auth, db, "banned-custom", NULL, true, NULL, 0, now(), &t, msg, sizeof msg));
    expect(KN_ERR_PERMISSION_DENIED, "account is banned",
           kn_session_refresh(kn_auth_sessions(auth), db, s.refresh_token, NULL, 0, now(), &t, msg,
                              sizeof msg));
    expect(KN_ERR_PERMISSION_DENIED, "account is banned",
           kn_session_live(db, s.claims.session_id, id, msg, sizeof msg));

    /* banning again keeps the original time */
    expect_ok(kn_account_ban(db, id, msg, sizeof msg));
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    assert_int_equal(a.disable_time, banned_at);
    kn_account_deinit(&a);

    expect_ok(kn_account_unban(db, id, msg, sizeof msg));
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    assert_int_equal(a.disable_time, 0);
    kn_account_deinit(&a);
    assert_int_equal(device_login("banned-device-01", &t), KN_OK);
    assert_string_equal(t.claims.user_id, id);
    expect_ok(kn_session_live(db, t.claims.session_id, id, msg, sizeof msg));
    kn_session_grant_deinit(&t);
    /* the refresh tokens the ban deleted stay dead */
    expect(KN_ERR_UNAUTHENTICATED, "already used or revoked",
           kn_session_refresh(kn_auth_sessions(auth), db, s.refresh_token, NULL, 0, now(), &t, msg,
                              sizeof msg));
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, s.claims.session_id, id, msg, sizeof msg));

    char unknown[37];
    kn_uuid_v4(unknown);
    expect(KN_ERR_NOT_FOUND, "user not found", kn_account_ban(db, unknown, msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "user not found", kn_account_unban(db, unknown, msg, sizeof msg));
    kn_session_grant_deinit(&s);
}

/* --- sessions ---------------------------------------------------------------------------- */

static void session_valid_follows_refresh_logout_and_expiry(void **state)
{
    kn_session_grant s, r;
    new_user("session-device-1", "session-user", &s);
    const char *id = s.claims.user_id;
    expect_ok(kn_session_live(db, s.claims.session_id, id, msg, sizeof msg));

    /* a refresh supersedes the session */
    expect_ok(kn_session_refresh(kn_auth_sessions(auth), db, s.refresh_token, NULL, 0, now(), &r,
                                 msg, sizeof msg));
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, s.claims.session_id, id, msg, sizeof msg));
    expect_ok(kn_session_live(db, r.claims.session_id, id, msg, sizeof msg));

    /* someone else's session id does not validate for this user */
    kn_session_grant other;
    new_user("session-device-2", "session-other", &other);
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, other.claims.session_id, id, msg, sizeof msg));

    /* expiry */
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE user_session SET expires_at = now() - interval '1 second' WHERE id = '%s'",
             other.claims.session_id);
    assert_int_equal(kn_db_exec(db, sql), KN_OK);
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, other.claims.session_id, other.claims.user_id, msg, sizeof msg));

    /* logout */
    assert_int_equal(kn_session_logout(db, r.claims.session_id, id), KN_OK);
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, r.claims.session_id, id, msg, sizeof msg));

    char unknown[37];
    kn_uuid_v4(unknown);
    expect(KN_ERR_UNAUTHENTICATED, "user no longer exists",
           kn_session_live(db, r.claims.session_id, unknown, msg, sizeof msg));
    kn_session_grant_deinit(&s);
    kn_session_grant_deinit(&r);
    kn_session_grant_deinit(&other);
}

static void logout_all_ends_every_session_of_the_user_and_no_other(void **state)
{
    kn_session_grant a, b, other;
    new_user("logout-all-device-1", "logout-all-user", &a);
    expect_ok(kn_auth_device(auth, db, "logout-all-device-1", NULL, false, NULL, 0, now(), &b, msg,
                             sizeof msg));
    new_user("logout-all-device-2", "logout-all-other", &other);
    const char *id = a.claims.user_id;
    assert_int_equal(kn_session_logout_all(db, id), KN_OK);
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, a.claims.session_id, id, msg, sizeof msg));
    expect(KN_ERR_UNAUTHENTICATED, "session has ended",
           kn_session_live(db, b.claims.session_id, id, msg, sizeof msg));
    expect_ok(kn_session_live(db, other.claims.session_id, other.claims.user_id, msg, sizeof msg));
    kn_session_grant r;
    expect(KN_ERR_UNAUTHENTICATED, "already used or revoked",
           kn_session_refresh(kn_auth_sessions(auth), db, b.refresh_token, NULL, 0, now(), &r, msg,
                              sizeof msg));
    assert_int_equal(kn_session_logout_all(db, id), KN_OK); /* nothing left: still fine */
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
    kn_session_grant_deinit(&other);
}

/* --- link / unlink --------------------------------------------------------------------- */

static void link_device_of_another_user_is_refused(void **state)
{
    kn_session_grant a, b, t;
    new_user("link-device-a-1", "link-a", &a);
    new_user("link-device-b-1", "link-b", &b);
    expect(KN_ERR_ALREADY_EXISTS, "device id is linked to another account",
           kn_account_link_device(db, a.claims.user_id, "link-device-b-1", msg, sizeof msg));
    expect_ok(kn_account_link_device(db, a.claims.user_id, "link-device-a-1", msg, sizeof msg));
    expect_ok(kn_account_link_device(db, a.claims.user_id, "link-device-a-2", msg, sizeof msg));
    kn_account acc;
    expect_ok(kn_account_get(db, a.claims.user_id, &acc, msg, sizeof msg));
    assert_int_equal(acc.device_count, 2);
    assert_string_equal(acc.device_ids[0], "link-device-a-1");
    assert_string_equal(acc.device_ids[1], "link-device-a-2");
    kn_account_deinit(&acc);
    assert_int_equal(device_login("link-device-a-2", &t), KN_OK);
    assert_string_equal(t.claims.user_id, a.claims.user_id);
    kn_session_grant_deinit(&t);

    char unknown[37];
    kn_uuid_v4(unknown);
    expect(KN_ERR_NOT_FOUND, "user not found",
           kn_account_link_device(db, unknown, "link-device-x-1", msg, sizeof msg));
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
}

static void unlink_refuses_the_last_method_and_what_is_not_linked(void **state)
{
    kn_session_grant s, other, t;
    new_user("unlink-device-01", "unlinker", &s);
    new_user("unlink-other-01", "unlink-other", &other);
    const char *id = s.claims.user_id;

    expect(KN_ERR_FAILED_PRECONDITION, "cannot unlink the last login method",
           kn_account_unlink_device(db, id, "unlink-device-01", msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "no email", kn_account_unlink_email(db, id, msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "no custom id", kn_account_unlink_custom(db, id, msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "not linked to this account",
           kn_account_unlink_device(db, id, "never-linked-01", msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "not linked to this account",
           kn_account_unlink_device(db, id, "unlink-other-01", msg, sizeof msg));
    assert_int_equal(device_login("unlink-other-01", &t), KN_OK); /* untouched */
    kn_session_grant_deinit(&t);

    /* with a second method the device can go, then the custom id is the last */
    expect_ok(kn_account_link_custom(db, id, "unlinker-custom", msg, sizeof msg));
    expect_ok(kn_account_unlink_device(db, id, "unlink-device-01", msg, sizeof msg));
    assert_int_equal(device_login("unlink-device-01", &t), KN_ERR_NOT_FOUND);
    expect(KN_ERR_FAILED_PRECONDITION, "cannot unlink the last login method",
           kn_account_unlink_custom(db, id, msg, sizeof msg));

    expect_ok(kn_account_link_device(db, id, "unlink-device-02", msg, sizeof msg));
    expect_ok(kn_account_unlink_custom(db, id, msg, sizeof msg));
    kn_account a;
    expect_ok(kn_account_get(db, id, &a, msg, sizeof msg));
    assert_null(a.custom_id);
    assert_int_equal(a.device_count, 1);
    assert_string_equal(a.device_ids[0], "unlink-device-02");
    kn_account_deinit(&a);
    expect(KN_ERR_NOT_FOUND, "",
           kn_auth_custom(auth, db, "unlinker-custom", NULL, false, NULL, 0, now(), &t, msg,
                          sizeof msg));

    char unknown[37];
    kn_uuid_v4(unknown);
    expect(KN_ERR_NOT_FOUND, "user not found",
           kn_account_unlink_email(db, unknown, msg, sizeof msg));
    kn_session_grant_deinit(&s);
    kn_session_grant_deinit(&other);
}

static void link_email_checks_the_password_and_other_owners(void **state)
{
    kn_session_grant a, b, t;
    new_user("email-device-a01", "email-a", &a);
    new_user("email-device-b01", "email-b", &b);
    expect(KN_ERR_INVALID_ARGUMENT, "password must be 8-128 bytes",
           kn_account_link_email(db, a.claims.user_id, "player@example.com", "1234567", msg,
                                 sizeof msg));
    expect_ok(kn_account_link_email(db, a.claims.user_id, "Player@Example.com", "first password",
                                    msg, sizeof msg));
    kn_account acc;
    expect_ok(kn_account_get(db, a.claims.user_id, &acc, msg, sizeof msg));
    assert_string_equal(acc.email, "player@example.com");
    kn_account_deinit(&acc);
    expect_ok(kn_auth_email(auth, db, "player@example.com", "first password", NULL, false, NULL, 0,
                            now(), &t, msg, sizeof msg));
    assert_string_equal(t.claims.user_id, a.claims.user_id);
    kn_session_grant_deinit(&t);

    expect(KN_ERR_ALREADY_EXISTS, "email is linked to another account",
           kn_account_link_email(db, b.claims.user_id, "PLAYER@example.com", "other password", msg,
                                 sizeof msg));

    /* linking again replaces the password */
    expect_ok(kn_account_link_email(db, a.claims.user_id, "player@example.com", "second password",
                                    msg, sizeof msg));
    expect(KN_ERR_UNAUTHENTICATED, "invalid credentials",
           kn_auth_email(auth, db, "player@example.com", "first password", NULL, false, NULL, 0,
                         now(), &t, msg, sizeof msg));

    /* unlinking removes the login (the device is still there) */
    expect_ok(kn_account_unlink_email(db, a.claims.user_id, msg, sizeof msg));
    expect(KN_ERR_NOT_FOUND, "",
           kn_auth_email(auth, db, "player@example.com", "second password", NULL, false, NULL, 0,
                         now(), &t, msg, sizeof msg));
    expect_ok(kn_account_get(db, a.claims.user_id, &acc, msg, sizeof msg));
    assert_null(acc.email);
    kn_account_deinit(&acc);

    char unknown[37];
    kn_uuid_v4(unknown);
    expect(
        KN_ERR_NOT_FOUND, "user not found",
        kn_account_link_email(db, unknown, "ghost@example.com", "ghost password", msg, sizeof msg));
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
}

static void link_custom_of_another_user_is_refused(void **state)
{
    kn_session_grant a, b, t;
    new_user("custom-device-a1", "custom-a", &a);
    new_user("custom-device-b1", "custom-b", &b);
    expect_ok(kn_account_link_custom(db, a.claims.user_id, "platform-123", msg, sizeof msg));
    expect_ok(kn_account_link_custom(db, a.claims.user_id, "platform-123", msg, sizeof msg));
    expect(KN_ERR_ALREADY_EXISTS, "custom id is linked to another account",
           kn_account_link_custom(db, b.claims.user_id, "platform-123", msg, sizeof msg));
    /* a second link replaces the first, which is then free */
    expect_ok(kn_account_link_custom(db, a.claims.user_id, "platform-456", msg, sizeof msg));
    expect(
        KN_ERR_NOT_FOUND, "",
        kn_auth_custom(auth, db, "platform-123", NULL, false, NULL, 0, now(), &t, msg, sizeof msg));
    expect_ok(kn_account_link_custom(db, b.claims.user_id, "platform-123", msg, sizeof msg));
    expect_ok(
        kn_auth_custom(auth, db, "platform-456", NULL, false, NULL, 0, now(), &t, msg, sizeof msg));
    assert_string_equal(t.claims.user_id, a.claims.user_id);
    kn_session_grant_deinit(&t);
    char unknown[37];
    kn_uuid_v4(unknown);
    expect(KN_ERR_NOT_FOUND, "user not found",
           kn_account_link_custom(db, unknown, "platform-789", msg, sizeof msg));
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
}

/* Two connections unlink the two devices of one user at the same moment:
 * the row lock makes one wait and then see a single method left. */
typedef struct racer {
    kn_db *db;
    const char *user_id, *device_id;
    pthread_barrier_t *start;
    int rc;
} racer;

static void *race_unlink(void *arg)
{
    racer *r = arg;
    char m[128];
    pthread_barrier_wait(r->start);
    r->rc = kn_account_unlink_device(r->db, r->user_id, r->device_id, m, sizeof m);
    return NULL;
}

static void concurrent_unlinks_never_remove_the_last_method(void **state)
{
    kn_session_grant s;
    new_user("race-device-0001", "racer", &s);
    char url[96];
    snprintf(url, sizeof url, "dbname=%s", dbname);
    racer r[2] = {{.user_id = s.claims.user_id, .device_id = "race-device-0001"},
                  {.user_id = s.claims.user_id, .device_id = "race-device-0002"}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(kn_db_open(url, &r[i].db), KN_OK);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 2; i++)
            expect_ok(
                kn_account_link_device(db, s.claims.user_id, r[i].device_id, msg, sizeof msg));
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            r[i].start = &start;
            pthread_create(&th[i], NULL, race_unlink, &r[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        int ok = (r[0].rc == KN_OK) + (r[1].rc == KN_OK);
        int refused =
            (r[0].rc == KN_ERR_FAILED_PRECONDITION) + (r[1].rc == KN_ERR_FAILED_PRECONDITION);
        if (ok != 1 || refused != 1)
            fail_msg("round %d: %s and %s", round, kn_err_name(r[0].rc), kn_err_name(r[1].rc));
        kn_account a;
        expect_ok(kn_account_get(db, s.claims.user_id, &a, msg, sizeof msg));
        assert_int_equal(a.device_count, 1);
        kn_account_deinit(&a);
    }
    for (int i = 0; i < 2; i++)
        kn_db_close(r[i].db);
    kn_session_grant_deinit(&s);
}

/* --- allocation failures ----------------------------------------------------------------- */

static int get_account_attempt(void *arg)
{
    kn_account a;
    char m[64];
    int rc = kn_account_get(db, arg, &a, m, sizeof m);
    if (rc == KN_OK && (a.device_count != 2 || !a.email || !a.custom_id)) rc = KN_ERR_INTERNAL;
    kn_account_deinit(&a);
    return rc;
}

typedef struct users_args {
    const char *const *ids;
    size_t n;
} users_args;

static int users_get_attempt(void *arg)
{
    users_args *u = arg;
    kn_user *users;
    size_t n;
    char m[64];
    int rc = kn_users_get(db, u->ids, u->n, NULL, 0, &users, &n, m, sizeof m);
    if (rc == KN_OK && n != u->n) rc = KN_ERR_INTERNAL;
    kn_users_free(users, n);
    return rc;
}

static void results_survive_allocation_failures(void **state)
{
    kn_session_grant a, b;
    new_user("alloc-device-a01", "alloc-a", &a);
    new_user("alloc-device-b01", "alloc-b", &b);
    kn_account_changes u = {.display_name = "Alloc",
                            .avatar_url = "https://e.example/a.png",
                            .location = "Here",
                            .timezone = "UTC",
                            .metadata = "{\"k\":1}"};
    expect_ok(kn_account_update(db, a.claims.user_id, &u, msg, sizeof msg));
    expect_ok(kn_account_update(db, b.claims.user_id, &u, msg, sizeof msg));
    expect_ok(kn_account_link_device(db, a.claims.user_id, "alloc-device-a02", msg, sizeof msg));
    expect_ok(kn_account_link_custom(db, a.claims.user_id, "alloc-custom", msg, sizeof msg));
    expect_ok(kn_account_link_email(db, a.claims.user_id, "alloc@example.com", "alloc password",
                                    msg, sizeof msg));

    /* rows, 7 strings, email, custom id, rows, array, 2 devices */
    assert_true(failalloc_sweep(get_account_attempt, a.claims.user_id) >= 14);
    const char *ids[] = {a.claims.user_id, b.claims.user_id};
    users_args args = {ids, 2};
    /* 2 array literals, rows, array, 7 strings per user */
    assert_true(failalloc_sweep(users_get_attempt, &args) >= 18);
    kn_session_grant_deinit(&a);
    kn_session_grant_deinit(&b);
}

int main(void)
{
    if (kn_crypto_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_returns_every_field_of_a_new_account),
        cmocka_unit_test(get_unknown_user_is_not_found),
        cmocka_unit_test(invalid_arguments_are_refused_before_any_database_call),
        cmocka_unit_test(update_changes_each_field_and_bumps_update_time),
        cmocka_unit_test(update_with_nothing_to_change_is_a_no_op),
        cmocka_unit_test(update_refuses_a_taken_username),
        cmocka_unit_test(update_refuses_bad_input_and_changes_nothing),
        cmocka_unit_test(users_get_finds_by_ids_and_usernames_without_duplicates),
        cmocka_unit_test(users_get_refuses_invalid_ids_and_too_many),
        cmocka_unit_test(delete_removes_the_user_its_devices_and_sessions),
        cmocka_unit_test(ban_blocks_logins_and_refresh_and_unban_restores_them),
        cmocka_unit_test(session_valid_follows_refresh_logout_and_expiry),
        cmocka_unit_test(logout_all_ends_every_session_of_the_user_and_no_other),
        cmocka_unit_test(link_device_of_another_user_is_refused),
        cmocka_unit_test(unlink_refuses_the_last_method_and_what_is_not_linked),
        cmocka_unit_test(link_email_checks_the_password_and_other_owners),
        cmocka_unit_test(link_custom_of_another_user_is_refused),
        cmocka_unit_test(concurrent_unlinks_never_remove_the_last_method),
        cmocka_unit_test(results_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
