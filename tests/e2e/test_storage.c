/* End to end: storage over the wire and from Lua — round trips, the
 * permission matrix (owner, another player, public and system objects ×
 * read, write, delete, list), two connections racing on one version,
 * batch atomicity, keyset pages while others write, invalid input, the
 * size limits (the service's over a raw client, one message in the SDK and
 * for an answer), a before hook refusing a write, an after hook seeing the
 * acks, the kaos.storage_* functions, the example's settings RPCs, and
 * objects surviving a restart.
 *
 * The runtime path is a directory of links to the .lua files of
 * lua-examples/ and tests/e2e/lua/ (storage_example.lua brings the before
 * hook, storage_api.lua the after hook and the test RPCs). The server takes
 * packets up to 128 KiB (so a raw client can send a value past the
 * service's 64 KiB limit) and more control messages per second than the
 * default (tests send bursts on one connection). */
#include "harness.h"
#include "kn_codec.h"
#include "rawclient.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define SYSTEM "00000000-0000-0000-0000-000000000000"

static char rt_dir[64];

/* --- server ------------------------------------------------------------------ */

static void link_modules(const char *from)
{
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua")) continue;
        char src[512], dst[512];
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", rt_dir, e->d_name);
        assert_int_equal(symlink(src, dst), 0);
    }
    closedir(d);
}

static void start_server(void)
{
    const char *extra[] = {"--runtime-path",
                           rt_dir,
                           "--max-message-size",
                           "131072",
                           "--rate-control-bytes",
                           "1048576",
                           "--rate-control-msgs",
                           "1000",
                           NULL};
    e2e_server_start(&e2e_group_server, extra);
}

static int setup(void **state)
{
    snprintf(rt_dir, sizeof rt_dir, "/tmp/kaos-e2e-store-XXXXXX");
    assert_non_null(mkdtemp(rt_dir));
    link_modules(KAOS_SOURCE_DIR "/lua-examples");
    link_modules(KAOS_SOURCE_DIR "/tests/e2e/lua");
    e2e_server_init(&e2e_group_server);
    start_server();
    return 0;
}

static int teardown(void **state)
{
    int rc = e2e_group_teardown(state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rt_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", rt_dir);
    return rc;
}

/* --- clients and requests ------------------------------------------------------ */

static e2e_client *connected(void)
{
    return e2e_client_new(e2e_group_server.port, 0, 0);
}

/* A new connection logged in with the device dev (a fresh one when dev[0]
 * is 0; written back). Two players with the same device are one user. */
static e2e_client *player(char dev[40])
{
    if (!dev[0]) e2e_device_id(dev);
    e2e_client *c = connected();
    e2e_auth(c, dev);
    return c;
}

/* A name no other test (or earlier run) uses. */
static void unique(char *out, size_t cap, const char *prefix)
{
    char id[40];
    e2e_device_id(id);
    snprintf(out, cap, "%s-%s", prefix, id + 4);
}

#define WROTE(c, call) e2e_answer((c), &(c)->storage_acks, (c)->storage_acks, (c)->errors, (call))
#define GOT(c, call)                                                                               \
    e2e_answer((c), &(c)->storage_objects, (c)->storage_objects, (c)->errors, (call))
#define RPC(c, call) e2e_answer((c), &(c)->rpcs, (c)->rpcs, (c)->errors, (call))

/* One object; read < 0 = the default permissions. 0 or the error code; the
 * ack in c->acks_seen[0]. */
static int put(e2e_client *c, const char *col, const char *key, const char *value,
               const char *version, int read, int write)
{
    kaos_storage_write_object o = {.collection = col,
                                   .key = key,
                                   .value = value,
                                   .version = version,
                                   .permissions_set = read >= 0,
                                   .permission_read = read,
                                   .permission_write = write};
    return WROTE(c, kaos_client_storage_write(c->c, &o, 1, e2e_on_storage_acks, c));
}

/* Reads owner's (NULL = own) objects `keys` of col (NULL-terminated);
 * returns how many came back (in c->objects). */
static size_t get_keys(e2e_client *c, const char *owner, const char *col, const char *const *keys)
{
    kaos_storage_id ids[16];
    size_t n = 0;
    for (; keys[n]; n++)
        ids[n] = (kaos_storage_id){col, keys[n], owner, NULL};
    int rc = GOT(c, kaos_client_storage_read(c->c, ids, n, e2e_on_storage_objects, c));
    if (rc) fail_msg("read: %d %s", rc, c->error_message);
    return c->object_count;
}

/* Whether owner's object col/key exists for c (a copy in c->objects[0]). */
static bool get(e2e_client *c, const char *owner, const char *col, const char *key)
{
    const char *keys[] = {key, NULL};
    return get_keys(c, owner, col, keys) == 1;
}

static int del(e2e_client *c, const char *owner, const char *col, const char *key,
               const char *version)
{
    kaos_storage_id id = {col, key, owner, version};
    return E2E_ACKED(c, kaos_client_storage_delete(c->c, &id, 1, e2e_on_done, c));
}

static int list(e2e_client *c, const char *owner, const char *col, uint32_t limit,
                const char *cursor)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", cursor ? cursor : "");
    return GOT(c,
               kaos_client_storage_list(c->c, owner, col, limit, copy, e2e_on_storage_objects, c));
}

/* The keys of the last objects answer, "a,b,c". */
static const char *keys_of(const e2e_client *c)
{
    static char out[4096];
    out[0] = '\0';
    for (size_t i = 0; i < c->object_count; i++) {
        if (i) strcat(out, ",");
        strcat(out, c->objects[i].key);
    }
    return out;
}

static int rpc(e2e_client *c, const char *id, const char *payload)
{
    return RPC(c, kaos_client_rpc_call(c->c, id, payload, e2e_on_rpc, c));
}

/* A system object (read, write permissions) made by server code. */
static void system_object(e2e_client *c, const char *col, const char *key, int read, int write)
{
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"collection\":\"%s\",\"key\":\"%s\",\"read\":%d,\"write\":%d,"
             "\"value\":{\"key\":\"%s\"}}",
             col, key, read, write, key);
    if (rpc(c, "storage_system_write", payload)) fail_msg("system write: %s", c->error_message);
}

/* --- tests -------------------------------------------------------------------------- */

static void storage_requests_need_a_session(void **state)
{
    e2e_client *c = connected();
    kaos_storage_write_object o = {.collection = "saves", .key = "slot1", .value = "{}"};
    assert_int_equal(WROTE(c, kaos_client_storage_write(c->c, &o, 1, e2e_on_storage_acks, c)), 16);
    assert_string_equal(c->error_message, "authenticate first");
    kaos_storage_id id = {"saves", "slot1", NULL, NULL};
    assert_int_equal(GOT(c, kaos_client_storage_read(c->c, &id, 1, e2e_on_storage_objects, c)), 16);
    assert_int_equal(E2E_ACKED(c, kaos_client_storage_delete(c->c, &id, 1, e2e_on_done, c)), 16);
    assert_int_equal(list(c, NULL, "saves", 10, NULL), 16);
    e2e_client_free(c);
}

static void a_player_writes_reads_lists_and_deletes_its_objects(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "saves");
    e2e_client *a = player(dev);
    assert_int_equal(put(a, col, "slot1", "{\"name\": \"ann\",\"hp\":10}", NULL, -1, 0), 0);
    assert_int_equal(a->ack_count, 1);
    assert_string_equal(a->acks_seen[0].collection, col);
    assert_string_equal(a->acks_seen[0].key, "slot1");
    assert_string_equal(a->acks_seen[0].user_id, a->user_id);
    char version[40];
    snprintf(version, sizeof version, "%s", a->acks_seen[0].version);
    assert_int_equal(strlen(version), 32);

    assert_true(get(a, NULL, col, "slot1"));
    const e2e_object *o = &a->objects[0];
    assert_string_equal(o->value, "{\"hp\": 10, \"name\": \"ann\"}"); /* as Postgres prints JSONB */
    assert_string_equal(o->version, version);
    assert_string_equal(o->user_id, a->user_id);
    assert_int_equal(o->permission_read, 1);
    assert_int_equal(o->permission_write, 1);
    assert_true(o->create_time_ms > 0 && o->update_time_ms >= o->create_time_ms);
    assert_string_equal(a->cursor, "");

    /* The same value, spaced and ordered otherwise, keeps its version. */
    assert_int_equal(put(a, col, "slot1", "{ \"hp\" : 10, \"name\" : \"ann\" }", version, -1, 0),
                     0);
    assert_string_equal(a->acks_seen[0].version, version);
    assert_int_equal(list(a, a->user_id, col, 10, NULL), 0);
    assert_string_equal(keys_of(a), "slot1");
    assert_string_equal(a->cursor, "");

    assert_int_equal(del(a, NULL, col, "slot1", version), 0);
    assert_false(get(a, NULL, col, "slot1"));
    assert_int_equal(list(a, a->user_id, col, 10, NULL), 0);
    assert_int_equal(a->object_count, 0);
    e2e_client_free(a);
}

static void the_permission_matrix_holds_over_the_wire(void **state)
{
    char da[40] = "", db[40] = "", col[64];
    unique(col, sizeof col, "matrix");
    e2e_client *a = player(da), *b = player(db);
    /* A's objects: private (1,1), public (2,1), secret (0,1), locked (2,0);
     * the system's: sys_public (2,0), sys_private (1,0). */
    assert_int_equal(put(a, col, "private", "{\"v\":\"a\"}", NULL, 1, 1), 0);
    char private_version[40];
    snprintf(private_version, sizeof private_version, "%s", a->acks_seen[0].version);
    assert_int_equal(put(a, col, "public", "{\"v\":\"a\"}", NULL, 2, 1), 0);
    assert_int_equal(put(a, col, "secret", "{\"v\":\"a\"}", NULL, 0, 1), 0);
    assert_int_equal(put(a, col, "locked", "{\"v\":\"a\"}", NULL, 2, 0), 0);
    system_object(a, col, "sys_public", 2, 0);
    system_object(a, col, "sys_private", 1, 0);
    const char *mine[] = {"private", "public", "secret", "locked", NULL};
    const char *sys[] = {"sys_public", "sys_private", NULL};

    /* read: the owner reads read >= 1, others read == 2, nobody reads 0 */
    assert_int_equal(get_keys(a, NULL, col, mine), 3);
    assert_string_equal(keys_of(a), "private,public,locked");
    assert_int_equal(get_keys(b, a->user_id, col, mine), 2);
    assert_string_equal(keys_of(b), "public,locked");
    assert_int_equal(get_keys(b, SYSTEM, col, sys), 1);
    assert_string_equal(b->objects[0].user_id, SYSTEM);
    assert_string_equal(b->objects[0].key, "sys_public");
    assert_int_equal(get_keys(a, SYSTEM, col, sys), 1);

    /* list: the owner's collection, another's, every owner's public ones */
    assert_int_equal(list(a, a->user_id, col, 100, NULL), 0);
    assert_string_equal(keys_of(a), "locked,private,public");
    assert_int_equal(list(b, a->user_id, col, 100, NULL), 0);
    assert_string_equal(keys_of(b), "locked,public");
    assert_int_equal(list(b, SYSTEM, col, 100, NULL), 0);
    assert_string_equal(keys_of(b), "sys_public");
    assert_int_equal(list(b, NULL, col, 100, NULL), 0);
    assert_string_equal(keys_of(b), "sys_public,locked,public"); /* by owner: the nil UUID first */

    /* write: the owner changes write = 1 objects, not write = 0 ones; a
     * write names no owner, so another player's write makes their own */
    assert_int_equal(put(a, col, "private", "{\"v\":\"a2\"}", private_version, 1, 1), 0);
    assert_int_equal(put(a, col, "locked", "{\"v\":\"a2\"}", NULL, 2, 0), 7);
    char want[256];
    snprintf(want, sizeof want,
             "object 0: \"%s\"/\"locked\" (owner %s) has write permission 0; only the server "
             "may change it",
             col, a->user_id);
    assert_string_equal(a->error_message, want);
    assert_int_equal(put(b, col, "private", "{\"v\":\"b\"}", NULL, -1, 0), 0);
    assert_string_equal(b->acks_seen[0].user_id, b->user_id);
    assert_true(get(a, NULL, col, "private"));
    assert_string_equal(a->objects[0].value, "{\"v\": \"a2\"}");
    assert_true(get(a, NULL, col, "locked"));
    assert_string_equal(a->objects[0].value, "{\"v\": \"a\"}");

    /* delete: own write = 1 objects only */
    assert_int_equal(del(b, a->user_id, col, "private", NULL), 7);
    assert_string_equal(b->error_message, "object 0: clients may delete only their own objects");
    assert_int_equal(del(b, SYSTEM, col, "sys_public", NULL), 7);
    assert_int_equal(del(a, NULL, col, "locked", NULL), 7);
    assert_int_equal(del(a, NULL, col, "public", NULL), 0);
    assert_int_equal(get_keys(b, a->user_id, col, mine), 1);
    assert_string_equal(keys_of(b), "locked");
    assert_true(get(b, SYSTEM, col, "sys_public"));
    assert_true(get(a, NULL, col, "private"));
    e2e_client_free(a);
    e2e_client_free(b);
}

/* Two connections of one user write the same object expecting the same
 * version: Postgres decides on the row, so exactly one wins, every time. */
static void two_connections_racing_on_one_version_exactly_one_wins(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "race");
    e2e_client *c[2];
    c[0] = player(dev);
    c[1] = player(dev);
    assert_string_equal(c[0]->user_id, c[1]->user_id);
    int wins[2] = {0, 0};
    for (int round = 0; round < 8; round++) {
        char value[64], key[16], version[40];
        snprintf(value, sizeof value, "{\"round\":%d}", round);
        assert_int_equal(put(c[0], col, "race", value, NULL, -1, 0), 0);
        snprintf(version, sizeof version, "%s", c[0]->acks_seen[0].version);
        snprintf(key, sizeof key, "new%d", round);
        for (int star = 0; star < 2; star++) { /* the same version, then "*" on a new key */
            int acks[2], errors[2], cid[2];
            char values[2][64];
            for (int i = 0; i < 2; i++) {
                acks[i] = c[i]->storage_acks;
                errors[i] = c[i]->errors;
                snprintf(values[i], sizeof values[i], "{\"by\":%d,\"round\":%d}", i, round);
                kaos_storage_write_object o = {.collection = col,
                                               .key = star ? key : "race",
                                               .value = values[i],
                                               .version = star ? "*" : version};
                cid[i] = kaos_client_storage_write(c[i]->c, &o, 1, e2e_on_storage_acks, c[i]);
                assert_true(cid[i] > 0);
            }
            E2E_WAIT(c[0]->storage_acks + c[0]->errors > acks[0] + errors[0] &&
                         c[1]->storage_acks + c[1]->errors > acks[1] + errors[1],
                     15000);
            int won = -1;
            for (int i = 0; i < 2; i++) {
                if (c[i]->storage_acks > acks[i]) {
                    assert_int_equal(won, -1); /* never both */
                    won = i;
                } else {
                    assert_int_equal(c[i]->error_cid, (uint32_t)cid[i]);
                    assert_int_equal(c[i]->error_code, 9);
                    assert_non_null(strstr(c[i]->error_message, "version check failed"));
                }
            }
            assert_int_not_equal(won, -1); /* never neither */
            wins[won]++;
            assert_true(get(c[0], NULL, col, star ? key : "race"));
            char by[32];
            snprintf(by, sizeof by, "\"by\": %d", won);
            assert_non_null(strstr(c[0]->objects[0].value, by));
        }
    }
    assert_int_equal(wins[0] + wins[1], 16);
    e2e_client_free(c[0]);
    e2e_client_free(c[1]);
}

static void a_batch_with_one_conflicting_object_writes_nothing(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "batch");
    e2e_client *a = player(dev);
    assert_int_equal(put(a, col, "x", "{\"v\":1}", NULL, -1, 0), 0);
    char version[40];
    snprintf(version, sizeof version, "%s", a->acks_seen[0].version);
    kaos_storage_write_object batch[] = {
        {.collection = col, .key = "n1", .value = "{\"v\":2}"},
        {.collection = col, .key = "x", .value = "{\"v\":3}", .version = "0123456789abcdef"},
        {.collection = col, .key = "n2", .value = "{\"v\":4}", .version = "*"},
    };
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, batch, 3, e2e_on_storage_acks, a)),
                     9);
    char want[200];
    snprintf(want, sizeof want, "version check failed for \"%s\"/\"x\" (owner %s)", col,
             a->user_id);
    assert_string_equal(a->error_message, want);
    const char *keys[] = {"n1", "x", "n2", NULL};
    assert_int_equal(get_keys(a, NULL, col, keys), 1);
    assert_string_equal(a->objects[0].version, version);
    assert_string_equal(a->objects[0].value, "{\"v\": 1}");

    /* With the right version the same batch goes through, acks in order. */
    batch[1].version = version;
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, batch, 3, e2e_on_storage_acks, a)),
                     0);
    assert_int_equal(a->ack_count, 3);
    assert_string_equal(a->acks_seen[0].key, "n1");
    assert_string_equal(a->acks_seen[1].key, "x");
    assert_string_equal(a->acks_seen[2].key, "n2");
    assert_int_equal(get_keys(a, NULL, col, keys), 3);
    e2e_client_free(a);
}

typedef struct seen_key {
    char user_id[40], key[130];
} seen_key;

/* A reader walks every owner's public objects of a collection in pages
 * while the owner (from a second connection) and another player write:
 * every object that existed before the walk is seen exactly once, in
 * order, and objects inserted ahead of the cursor are seen, behind it not. */
static void pages_see_every_object_once_while_others_write(void **state)
{
    char da[40] = "", dr[40] = "", dw[40] = "", col[64];
    unique(col, sizeof col, "pages");
    e2e_client *a = player(da), *a2 = player(da), *r = player(dr), *w = player(dw);
    enum { N = 40, LIMIT = 7 };
    kaos_storage_write_object batch[N];
    char keys[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", 2 * i); /* even keys; odd ones come later */
        batch[i] = (kaos_storage_write_object){.collection = col,
                                               .key = keys[i],
                                               .value = "{\"gen\":0}",
                                               .permissions_set = true,
                                               .permission_read = 2,
                                               .permission_write = 1};
    }
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, batch, N, e2e_on_storage_acks, a)),
                     0);

    static seen_key seen[512];
    size_t n_seen = 0, pages = 0;
    char ahead[16][16], behind[16][16], cursor[512] = "";
    size_t n_ahead = 0, n_behind = 0;
    do {
        assert_int_equal(list(r, NULL, col, LIMIT, cursor), 0);
        pages++;
        for (size_t i = 0; i < r->object_count; i++) {
            assert_true(n_seen < 512);
            snprintf(seen[n_seen].user_id, 40, "%s", r->objects[i].user_id);
            snprintf(seen[n_seen].key, 130, "%s", r->objects[i].key);
            n_seen++;
        }
        snprintf(cursor, sizeof cursor, "%s", r->cursor);
        if (!*cursor || !r->object_count) break;
        /* Between pages: the owner inserts one object behind the cursor and
         * one ahead of it, and rewrites one not seen yet; another player adds
         * a public object of their own. */
        const e2e_object *last = &r->objects[r->object_count - 1];
        if (!strcmp(last->user_id, a->user_id) && n_ahead < 16) {
            /* New keys just behind and just ahead of the last one seen
             * ("k011-b2" < "k012" < "k013-a2"), and the next even key. */
            int at = atoi(last->key + 1), next = 2 * (at / 2 + 2);
            snprintf(behind[n_behind], 16, "k%03d-b%zu", at - 1, pages);
            snprintf(ahead[n_ahead], 16, "k%03d-a%zu", at + 1, pages);
            assert_int_equal(put(a2, col, behind[n_behind++], "{\"gen\":1}", NULL, 2, 1), 0);
            assert_int_equal(put(a2, col, ahead[n_ahead++], "{\"gen\":1}", NULL, 2, 1), 0);
            if (next < 2 * N)
                assert_int_equal(put(a2, col, keys[next / 2], "{\"gen\":2}", NULL, 2, 1), 0);
        }
        char wkey[16];
        snprintf(wkey, sizeof wkey, "w%zu", pages);
        assert_int_equal(put(w, col, wkey, "{\"gen\":1}", NULL, 2, 1), 0);
    } while (1);
    assert_true(pages >= N / LIMIT);
    assert_true(n_ahead >= 3);

    /* Strictly increasing (owner, key): nothing twice, nothing out of order. */
    for (size_t i = 1; i < n_seen; i++) {
        int c = strcmp(seen[i - 1].user_id, seen[i].user_id);
        if (!c) c = strcmp(seen[i - 1].key, seen[i].key);
        if (c >= 0)
            fail_msg("page order broken at %zu: %s/%s then %s/%s", i, seen[i - 1].user_id,
                     seen[i - 1].key, seen[i].user_id, seen[i].key);
    }
    size_t count_of_a = 0;
    for (int k = 0; k < N; k++) {
        int times = 0;
        for (size_t i = 0; i < n_seen; i++)
            if (!strcmp(seen[i].user_id, a->user_id) && !strcmp(seen[i].key, keys[k])) times++;
        if (times != 1) fail_msg("%s seen %d times", keys[k], times);
        count_of_a++;
    }
    assert_int_equal(count_of_a, N);
    for (size_t j = 0; j < n_ahead; j++) {
        bool found = false;
        for (size_t i = 0; i < n_seen; i++)
            found |= !strcmp(seen[i].user_id, a->user_id) && !strcmp(seen[i].key, ahead[j]);
        if (!found) fail_msg("%s (ahead) not seen", ahead[j]);
    }
    for (size_t j = 0; j < n_behind; j++)
        for (size_t i = 0; i < n_seen; i++)
            if (!strcmp(seen[i].user_id, a->user_id) && !strcmp(seen[i].key, behind[j]))
                fail_msg("%s (behind) seen", behind[j]);
    e2e_client_free(a);
    e2e_client_free(a2);
    e2e_client_free(r);
    e2e_client_free(w);
}

/* Each malformed request is INVALID_ARGUMENT with a message naming what is
 * wrong, and writes nothing. */
static void invalid_input_is_invalid_argument_and_writes_nothing(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "invalid");
    e2e_client *a = player(dev);
    static const struct {
        const char *collection, *key, *value, *version;
        int read, want_prefix;
        const char *message;
    } writes[] = {
        {NULL, "k", "{not json", NULL, -1, 1, "object 0: value is not valid JSON: "},
        {NULL, "k", "[1, 2]", NULL, -1, 0, "object 0: value must be a JSON object, not an array"},
        {NULL, "k", "\"text\"", NULL, -1, 0, "object 0: value must be a JSON object, not a string"},
        {NULL, "k", "{\"a\":1,\"a\":2}", NULL, -1, 1,
         "object 0: value is not valid JSON: duplicate"},
        {"", "k", "{}", NULL, -1, 0, "object 0: collection is missing"},
        {NULL, "", "{}", NULL, -1, 0, "object 0: key is missing"},
        {NULL, "k", "", NULL, -1, 0, "object 0: value is missing"},
        {NULL, "k", "{}", NULL, 3, 0,
         "object 0: read permission must be 0 (none), 1 (owner) or 2 (public), not 3"},
        {NULL, "k\x01", "{}", NULL, -1, 0,
         "object 0: key must be 1-128 bytes of UTF-8 without control characters"},
        {NULL, "k", "{}", "not a version", -1, 0,
         "object 0: version must be \"\", \"*\" or a version the server returned"},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        int rc = put(a, writes[i].collection ? writes[i].collection : col, writes[i].key,
                     writes[i].value, writes[i].version, writes[i].read, 1);
        if (rc != 3) fail_msg("write case %zu: code %d (%s)", i, rc, a->error_message);
        bool ok = writes[i].want_prefix
                      ? !strncmp(a->error_message, writes[i].message, strlen(writes[i].message))
                      : !strcmp(a->error_message, writes[i].message);
        if (!ok) fail_msg("write case %zu: \"%s\"", i, a->error_message);
    }

    /* Batches: too many objects, one object twice. */
    kaos_storage_write_object many[101];
    char keys[101][8];
    for (int i = 0; i < 101; i++) {
        snprintf(keys[i], sizeof keys[i], "m%d", i);
        many[i] = (kaos_storage_write_object){.collection = col, .key = keys[i], .value = "{}"};
    }
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, many, 101, e2e_on_storage_acks, a)),
                     3);
    assert_string_equal(a->error_message, "at most 100 objects per write, not 101");
    many[1].key = "m0";
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, many, 2, e2e_on_storage_acks, a)), 3);
    assert_string_equal(a->error_message, "object 1: repeats object 0");

    /* Reads, deletes and lists. */
    kaos_storage_id bad_owner = {col, "k", "not-a-uuid", NULL};
    assert_int_equal(
        GOT(a, kaos_client_storage_read(a->c, &bad_owner, 1, e2e_on_storage_objects, a)), 3);
    assert_string_equal(a->error_message, "object 0: user_id is not a UUID");
    kaos_storage_id no_key = {col, "", NULL, NULL};
    assert_int_equal(E2E_ACKED(a, kaos_client_storage_delete(a->c, &no_key, 1, e2e_on_done, a)), 3);
    assert_string_equal(a->error_message, "object 0: key is missing");
    assert_int_equal(del(a, NULL, col, "k", "*"), 3);
    assert_int_equal(list(a, NULL, "", 10, NULL), 3);
    assert_string_equal(a->error_message, "collection is missing");
    assert_int_equal(list(a, NULL, col, 0, NULL), 3);
    assert_string_equal(a->error_message, "limit must be 1-100, not 0");
    assert_int_equal(list(a, NULL, col, 101, NULL), 3);
    assert_string_equal(a->error_message, "limit must be 1-100, not 101");
    assert_int_equal(list(a, NULL, col, 10, "garbage!"), 3);
    assert_string_equal(a->error_message, "cursor is malformed");
    /* A cursor from another listing. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(put(a, col, keys[i], "{}", NULL, 2, 1), 0);
    assert_int_equal(list(a, a->user_id, col, 1, NULL), 0);
    char cursor[512];
    snprintf(cursor, sizeof cursor, "%s", a->cursor);
    assert_true(cursor[0] != '\0');
    assert_int_equal(list(a, NULL, col, 1, cursor), 3);
    assert_string_equal(a->error_message,
                        "cursor belongs to another listing (collection or user_id differ)");

    /* Nothing but the three good objects was written. */
    assert_int_equal(list(a, a->user_id, col, 100, NULL), 0);
    assert_string_equal(keys_of(a), "m0,m1,m2");
    e2e_client_free(a);
}

/* The service refuses a value over 64 KiB (a raw client sends one; the test
 * server takes packets that large), the SDK refuses locally what cannot fit
 * in one message, and an answer larger than the largest message is refused
 * (the connection stays) while a smaller one of big objects arrives whole. */
static void values_and_answers_over_their_limits_are_refused(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "big");

    raw_client rc;
    raw_connect(&rc, e2e_group_server.port, e2e_group_server.key);
    e2e_device_id(dev);
    Kaos__V1__AuthenticateDevice auth = KAOS__V1__AUTHENTICATE_DEVICE__INIT;
    auth.device_id = dev;
    auth.create = 1;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.cid = 1;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_AUTHENTICATE_DEVICE;
    env.authenticate_device = &auth;
    raw_send_env(&rc, &env);
    for (int i = 0; i < 500 && !rc.sessions; i++)
        raw_pump(&rc, 10);
    assert_int_equal(rc.sessions, 1);

    char *big = malloc(65538);
    assert_non_null(big);
    memset(big, ' ', 65537);
    big[0] = '{';
    big[65535] = '}';
    big[65537] = '\0'; /* 65537 bytes: a valid object padded with spaces */
    Kaos__V1__WriteStorageObject obj = KAOS__V1__WRITE_STORAGE_OBJECT__INIT, *objs[] = {&obj};
    obj.collection = col;
    obj.key = "huge";
    obj.value = big;
    Kaos__V1__StorageWrite sw = KAOS__V1__STORAGE_WRITE__INIT;
    sw.n_objects = 1;
    sw.objects = objs;
    env = (kn_envelope)KN_ENVELOPE_INIT;
    env.cid = 2;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_STORAGE_WRITE;
    env.storage_write = &sw;
    raw_send_env(&rc, &env);
    for (int i = 0; i < 500 && rc.last_cid != 2; i++)
        raw_pump(&rc, 10);
    assert_int_equal(rc.last_cid, 2);
    assert_int_equal(rc.last_type, KAOS__V1__ENVELOPE__MESSAGE_ERROR);
    assert_int_equal(rc.last_error_code, 3);
    assert_string_equal(rc.last_error, "object 0: value is 65537 bytes; the limit is 65536");
    /* One byte less is stored. */
    big[65536] = '\0';
    env.cid = 3;
    raw_send_env(&rc, &env);
    for (int i = 0; i < 500 && rc.last_cid != 3; i++)
        raw_pump(&rc, 10);
    assert_int_equal(rc.last_type, KAOS__V1__ENVELOPE__MESSAGE_STORAGE_ACKS);
    raw_close(&rc);

    /* The SDK: a value that cannot fit in one message never leaves. */
    e2e_client *a = player(dev);
    big[20000] = '\0';
    kaos_storage_write_object o = {.collection = col, .key = "k", .value = big};
    assert_int_equal(kaos_client_storage_write(a->c, &o, 1, e2e_on_storage_acks, a),
                     KAOS_ERR_TOO_LARGE);
    free(big);
    assert_true(get(a, NULL, col, "huge"));           /* the raw client's, same device */
    assert_int_equal(strlen(a->objects[0].value), 2); /* "{}": JSONB drops the padding */

    /* Answers: 10 public objects of ~40 KB made by server code. Four do
     * not fit in one message (128 KiB on this server), three do. */
    char payload[256];
    snprintf(payload, sizeof payload, "{\"collection\":\"%s\",\"count\":10,\"bytes\":40000}", col);
    assert_int_equal(rpc(a, "storage_fill", payload), 0);
    assert_int_equal(list(a, SYSTEM, col, 4, NULL), 8);
    assert_non_null(strstr(a->error_message, "more than the largest message (131072"));
    const char *four[] = {"big001", "big002", "big003", "big004", NULL};
    kaos_storage_id ids[4];
    for (int i = 0; i < 4; i++)
        ids[i] = (kaos_storage_id){col, four[i], SYSTEM, NULL};
    assert_int_equal(GOT(a, kaos_client_storage_read(a->c, ids, 4, e2e_on_storage_objects, a)), 8);
    assert_true(a->connected); /* refused, not disconnected */
    assert_int_equal(get_keys(a, SYSTEM, col, four + 1), 3);
    size_t pages = 0, total = 0;
    char cursor[512] = "";
    do {
        assert_int_equal(list(a, SYSTEM, col, 3, cursor), 0);
        assert_int_equal(strlen(a->objects[0].value),
                         sizeof a->objects[0].value - 1); /* truncated copy */
        snprintf(cursor, sizeof cursor, "%s", a->cursor);
        total += a->object_count;
        pages++;
    } while (*cursor);
    assert_int_equal(pages, 4);
    assert_int_equal(total, 10);
    assert_string_equal(a->objects[a->object_count - 1].key, "big010");
    e2e_client_free(a);
}

/* lua-examples/storage_example.lua refuses writes to "server_*"
 * collections and settings over 4096 bytes; the client gets the hook's
 * code and message, and nothing of the write is stored. */
static void a_before_hook_rejects_a_write_and_nothing_is_written(void **state)
{
    char dev[40] = "";
    e2e_client *a = player(dev);
    kaos_storage_write_object batch[] = {
        {.collection = "saves", .key = "fine", .value = "{}"},
        {.collection = "server_config", .key = "motd", .value = "{\"text\":\"hi\"}"},
    };
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, batch, 2, e2e_on_storage_acks, a)),
                     7);
    assert_string_equal(a->error_message,
                        "collection \"server_config\" is written by the server only");
    assert_false(get(a, NULL, "saves", "fine"));
    assert_false(get(a, NULL, "server_config", "motd"));

    char value[5000];
    memset(value, ' ', sizeof value);
    value[0] = '{';
    value[sizeof value - 2] = '}';
    value[sizeof value - 1] = '\0';
    assert_int_equal(put(a, "settings", "player", value, NULL, -1, 0), 3);
    assert_string_equal(a->error_message, "object 0: settings are at most 4096 bytes, not 4999");
    assert_false(get(a, NULL, "settings", "player"));
    /* What the hook lets through is stored. */
    assert_int_equal(put(a, "settings", "player", "{\"volume\":7}", NULL, -1, 0), 0);
    assert_true(get(a, NULL, "settings", "player"));
    e2e_client_free(a);
}

/* tests/e2e/lua/storage_api.lua's after hook keeps the acks it saw. */
static void an_after_hook_sees_the_acks(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "after");
    e2e_client *a = player(dev);
    kaos_storage_write_object batch[] = {
        {.collection = col, .key = "one", .value = "{\"n\":1}"},
        {.collection = col, .key = "two", .value = "{\"n\":2}"},
    };
    assert_int_equal(WROTE(a, kaos_client_storage_write(a->c, batch, 2, e2e_on_storage_acks, a)),
                     0);
    char want1[128], want2[128];
    snprintf(want1, sizeof want1, "\"version\":\"%s\"", a->acks_seen[0].version);
    snprintf(want2, sizeof want2, "\"version\":\"%s\"", a->acks_seen[1].version);
    /* The hook runs once the client has its answer: wait for it. */
    for (int i = 0; i < 100 && !strstr(a->rpc_payload, want2); i++) {
        assert_int_equal(rpc(a, "storage_audit", ""), 0);
        if (!strstr(a->rpc_payload, want2)) e2e_pump_for(50);
    }
    assert_non_null(strstr(a->rpc_payload, want1));
    assert_non_null(strstr(a->rpc_payload, want2));
    assert_non_null(strstr(a->rpc_payload, "\"objects\":2"));
    char user[64];
    snprintf(user, sizeof user, "\"user_id\":\"%s\"", a->user_id);
    assert_non_null(strstr(a->rpc_payload, user));
    /* Clients cannot read the audit: it is a system object with read 0. */
    assert_false(get(a, SYSTEM, "audit", a->user_id));
    e2e_client_free(a);
}

static void the_lua_storage_api_works_through_an_rpc(void **state)
{
    char da[40] = "", db[40] = "", tag[64], payload[256];
    unique(tag, sizeof tag, "api");
    e2e_client *a = player(da), *b = player(db);
    snprintf(payload, sizeof payload, "{\"other\":\"%s\",\"tag\":\"%s\"}", b->user_id, tag);
    if (rpc(a, "storage_api", payload)) fail_msg("storage_api: %s", a->error_message);
    const char *r = a->rpc_payload;
    char want[512];
#define SEEN(text)                                                                                 \
    do {                                                                                           \
        if (!strstr(r, text)) fail_msg("missing %s in %s", text, r);                               \
    } while (0)
    SEEN("\"version_len\":32");
    SEEN("\"read_value\":true");
    SEEN("\"read_fields\":true");
    SEEN("\"same_version\":true");
    SEEN("\"missing\":true");
    snprintf(want, sizeof want,
             "\"wrong_version\":\"9 version check failed for \\\"lua-%s\\\"/\\\"a\\\" (owner %s)\"",
             tag, a->user_id);
    SEEN(want);
    snprintf(want, sizeof want, "\"absent_only\":\"9 version check failed for \\\"lua-%s\\\"", tag);
    SEEN(want);
    SEEN("\"conditional\":true");
    SEEN("\"unknown_owner\":\"5 object 0: owner 8f4d52c7-bf28-4fcf-8af2-1d4fcf685592 does not "
         "exist\"");
    SEEN("\"not_object\":\"3 object 0: value must be a JSON object, not an array\"");
    SEEN("\"other_secret\":true");
    SEEN("\"other_overwrite\":true");
    SEEN("\"system_owner\":true");
    SEEN("\"system_nil\":true");
    SEEN("\"batch_acks\":true");
    snprintf(want, sizeof want,
             "\"batch_conflict\":\"9 version check failed for \\\"lua-%s\\\"/\\\"b1\\\"", tag);
    SEEN(want);
    SEEN("\"batch_nothing\":true");
    SEEN("\"read_batch\":\"b3,b1,b2\"");
    SEEN("\"read_batch_perm\":true");
    SEEN("\"pages\":\"a,b1|b2|nil\"");
    SEEN("\"every_owner\":\"6 nil\"");
    SEEN("\"bad_cursor\":\"3 cursor belongs to another listing (collection or user_id differ)\"");
    SEEN("\"delete_wrong_version\":\"9 version check failed");
    SEEN("\"deleted\":true");
    SEEN("\"delete_missing\":\"ok\"");
    SEEN("\"delete_missing_version\":\"9 version check failed");
    bool order = strcmp(a->user_id, b->user_id) < 0;
    SEEN(order ? "\"after_batch_delete\":\"b2,secret\"" : "\"after_batch_delete\":\"secret,b2\"");
#undef SEEN
    e2e_client_free(a);
    e2e_client_free(b);
}

static void the_example_settings_rpcs_save_and_load(void **state)
{
    char dev[40] = "";
    e2e_client *a = player(dev);
    assert_int_equal(rpc(a, "load_settings", ""), 0);
    assert_string_equal(a->rpc_payload, "{}");
    assert_int_equal(rpc(a, "save_settings", "{\"volume\":3,\"lang\":\"fr\"}"), 0);
    assert_non_null(strstr(a->rpc_payload, "\"version\":\""));
    assert_int_equal(rpc(a, "load_settings", ""), 0);
    assert_non_null(strstr(a->rpc_payload, "\"volume\":3"));
    assert_non_null(strstr(a->rpc_payload, "\"lang\":\"fr\""));
    assert_int_equal(rpc(a, "save_settings", "[1,2]"), 3);
    assert_string_equal(a->error_message, "save_settings expects a JSON object");
    /* The object is the player's own, readable over the wire. */
    assert_true(get(a, NULL, "settings", "player"));
    assert_string_equal(a->objects[0].value, "{\"lang\": \"fr\", \"volume\": 3}");
    e2e_client_free(a);
}

/* Runs last: restarts the group's server on the same database. */
static void objects_survive_a_server_restart(void **state)
{
    char dev[40] = "", col[64];
    unique(col, sizeof col, "durable");
    e2e_client *a = player(dev);
    assert_int_equal(put(a, col, "kept", "{\"level\":12,\"items\":[\"sword\"]}", NULL, 2, 1), 0);
    char version[40];
    snprintf(version, sizeof version, "%s", a->acks_seen[0].version);
    e2e_client_free(a);

    assert_int_equal(e2e_server_stop(&e2e_group_server), 0);
    start_server();
    e2e_client *b = player(dev);
    assert_true(get(b, NULL, col, "kept"));
    assert_string_equal(b->objects[0].version, version);
    assert_string_equal(b->objects[0].value, "{\"items\": [\"sword\"], \"level\": 12}");
    assert_int_equal(b->objects[0].permission_read, 2);
    /* and its version still guards writes */
    assert_int_equal(put(b, col, "kept", "{\"level\":13}", version, 2, 1), 0);
    e2e_client_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(storage_requests_need_a_session),
        cmocka_unit_test(a_player_writes_reads_lists_and_deletes_its_objects),
        cmocka_unit_test(the_permission_matrix_holds_over_the_wire),
        cmocka_unit_test(two_connections_racing_on_one_version_exactly_one_wins),
        cmocka_unit_test(a_batch_with_one_conflicting_object_writes_nothing),
        cmocka_unit_test(pages_see_every_object_once_while_others_write),
        cmocka_unit_test(invalid_input_is_invalid_argument_and_writes_nothing),
        cmocka_unit_test(values_and_answers_over_their_limits_are_refused),
        cmocka_unit_test(a_before_hook_rejects_a_write_and_nothing_is_written),
        cmocka_unit_test(an_after_hook_sees_the_acks),
        cmocka_unit_test(the_lua_storage_api_works_through_an_rpc),
        cmocka_unit_test(the_example_settings_rpcs_save_and_load),
        cmocka_unit_test(objects_survive_a_server_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
