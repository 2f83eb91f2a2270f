/* harness: end-to-end test support. Starts the real kaosnet binary against
 * a fresh database in the Postgres that pg_virtualenv (or the environment's
 * PG* variables) points at, and drives real SDK clients over loopback UDP.
 *
 * Clients record every event and every answer into plain fields, and
 * E2E_WAIT pumps all live clients until a condition holds or a deadline
 * passes (a failed wait fails the test; nothing here asserts a wall-clock
 * duration). Events are registered by e2e_client_new*; a request records
 * its answer when it is given the e2e_on_* completion of its kind and the
 * e2e_client as user data, e.g.
 *   kaos_client_storage_write(a->c, objs, n, e2e_on_storage_acks, a); */
#ifndef KN_E2E_HARNESS_H
#define KN_E2E_HARNESS_H

#include "kaos.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* --- server ---------------------------------------------------------------- */

typedef struct e2e_server {
    pid_t pid;
    uint16_t port;
    char dbname[64];
    char data_dir[128];
    int out_fd; /* server stdout (we read the ready line from it) */
    uint16_t http_port;
    char key_hex[65]; /* the server's public key, from its ready line */
    uint8_t key[32];
} e2e_server;

/* Creates a fresh database and a data dir for `s` (call once per server). */
void e2e_server_init(e2e_server *s);
/* Like e2e_group_setup, with the repository's lua-examples as runtime path. */
int e2e_group_setup_with_examples(void **state);
/* Starts `kaosnet serve` on 127.0.0.1, a free port, with --migrate and the
 * given extra arguments (NULL-terminated, may be NULL). Fails the test if
 * the server does not print its ready line in time. */
void e2e_server_start(e2e_server *s, const char *const *extra);
/* SIGTERM and wait; returns the exit status (0 = clean, leak-free under ASan). */
int e2e_server_stop(e2e_server *s);
/* SIGKILL and reap: a crash, nothing flushed or shut down. The database and
 * data dir stay, so e2e_server_start can start it again on them. */
void e2e_server_kill(e2e_server *s);
/* Drops the database and removes the data dir. */
void e2e_server_cleanup(e2e_server *s);
/* cmocka group setup/teardown around one server per test file, reachable
 * as e2e_group_server. Teardown fails the group on a dirty exit (crash, or a
 * leak under ASan). */
extern e2e_server e2e_group_server;
int e2e_group_setup(void **state);
int e2e_group_teardown(void **state);
/* The same with the test modules of tests/e2e/lua/ as runtime path (a
 * directory of links to them, removed by the teardown), which a test may
 * hand a server of its own as e2e_test_modules_dir while the group runs. */
extern char e2e_test_modules_dir[64];
int e2e_group_setup_with_test_modules(void **state);
int e2e_group_teardown_with_test_modules(void **state);
/* One HTTP/1.1 request to 127.0.0.1:port; returns the status, body in out. */
int e2e_http(uint16_t port, const char *method, const char *path, const char *headers,
             const char *body, char *out, size_t cap);
/* One metric of the server's /metrics page ("kaos_x" or a labelled
 * "kaos_x{le=\"1\"}"), fetched now; -1 when the page lacks it. */
long long e2e_metric(uint16_t http_port, const char *name);
/* A fresh temporary directory (its path into out) of links to the .lua
 * files listed and to those of the directories listed (NULL-terminated),
 * so modules of several places load together as one runtime path. */
void e2e_runtime_dir(char *out, size_t cap, const char *const *from);
void e2e_runtime_dir_remove(const char *dir);
/* Runs the kaosnet binary with args; returns its exit status; output into out. */
int e2e_run_cli(const char *const *args, char *out, size_t out_cap);

/* --- clients ---------------------------------------------------------------- */

#define E2E_MAX_DATA 1024

typedef struct e2e_data {
    uint32_t match, sender;
    int64_t op_code;
    uint8_t bytes[256];
    size_t len;
    bool reliable;
} e2e_data;

/* A copy of the last kaos_account received. */
typedef struct e2e_account {
    char id[40], username[130], display_name[256], avatar_url[513], lang_tag[20];
    char location[256], timezone[256], metadata[2048], email[256], custom_id[130];
    char device_ids[8][130];
    char wallet[1024];
    size_t device_count;
    int64_t create_time, update_time, disable_time;
} e2e_account;

/* Storage answers, copied (values truncated to the buffer). */
#define E2E_MAX_OBJECTS 128

typedef struct e2e_object {
    char collection[130], key[130], user_id[40], version[40];
    char value[2048];
    int permission_read, permission_write;
    int64_t create_time_ms, update_time_ms;
} e2e_object;

typedef struct e2e_ack {
    char collection[130], key[130], user_id[40], version[40];
} e2e_ack;

typedef struct e2e_client {
    kaos_client *c;
    bool connected, disconnected;
    uint32_t disconnect_reason;
    /* last session */
    int sessions;
    char token[4096], refresh_token[4096], user_id[40], username[130], session_id[40];
    bool created;
    /* last error: of a request (its completion) or of none (the error event);
     * error_code is the wire code (positive), or a local KAOS_ERR_* negated */
    int errors;
    uint32_t error_cid;
    int error_code;
    char error_message[256];
    /* last match */
    int matches;
    uint32_t match_cid;
    char match_id[128];
    uint32_t match_handle, match_size, match_max_size, self_slot;
    size_t match_others;
    uint32_t other_slots[16];
    /* requests cut short by a disconnect (KAOS_ERR_CLOSED): not errors */
    int closed_requests;
    /* answers and events */
    int acks, pongs, shutdown_notices;
    int rpcs;
    char rpc_payload[4096];
    int joins, leaves;
    uint32_t last_join_slot, last_leave_slot;
    e2e_data data[E2E_MAX_DATA];
    size_t data_count;
    /* authoritative matches */
    int match_ends;
    uint32_t match_end_handle;
    int match_end_code;
    char match_end_reason[128];
    int match_lists;
    size_t match_list_count;
    char match_list_first[256];
    /* account answers */
    int accounts;
    e2e_account account;
    int users_answers;
    size_t users_count;
    char users_ids[8][40], users_names[8][130];
    /* storage answers: the last acks, the last objects (read or list page) */
    int storage_acks;
    uint32_t acks_cid;
    size_t ack_count;
    e2e_ack acks_seen[E2E_MAX_OBJECTS];
    int storage_objects;
    uint32_t objects_cid;
    size_t object_count;
    e2e_object objects[E2E_MAX_OBJECTS];
    char cursor[512];
    /* friends answers: the last list page (its cursor in friends_cursor) */
    int friends_answers;
    size_t friend_count;
    char friend_ids[8][40], friend_names[8][130];
    int friend_states[8];
    int64_t friend_times[8];
    char friend_metadata[8][128];
    char friends_cursor[512];
} e2e_client;

/* Completions recording into the e2e_client given as `ud`: an error into
 * errors/error_*, else the answer into the fields above (acks counts the
 * requests answered with a plain acknowledgement). */
void e2e_on_session(kaos_client *k, const kaos_result *r, const kaos_session *s, void *ud);
void e2e_on_match(kaos_client *k, const kaos_result *r, const kaos_match *m, void *ud);
void e2e_on_done(kaos_client *k, const kaos_result *r, void *ud);
void e2e_on_pong(kaos_client *k, const kaos_result *r, int64_t rtt_ms, void *ud);
void e2e_on_rpc(kaos_client *k, const kaos_result *r, const char *payload, size_t len, void *ud);
void e2e_on_match_list(kaos_client *k, const kaos_result *r, const kaos_match_info *list, size_t n,
                       void *ud);
void e2e_on_account(kaos_client *k, const kaos_result *r, const kaos_account *a, void *ud);
void e2e_on_users(kaos_client *k, const kaos_result *r, const kaos_user *users, size_t n, void *ud);
void e2e_on_storage_acks(kaos_client *k, const kaos_result *r, const kaos_storage_ack *acks,
                         size_t n, void *ud);
void e2e_on_storage_objects(kaos_client *k, const kaos_result *r, const kaos_storage_object *objs,
                            size_t n, const char *cursor, void *ud);
void e2e_on_friends(kaos_client *k, const kaos_result *r, const kaos_friend *friends, size_t n,
                    const char *cursor, void *ud);

/* Connects to the server (keepalive off unless keepalive_ms > 0) and waits
 * for the connection. protocol_version 0 = the SDK's. */
e2e_client *e2e_client_new(uint16_t port, uint32_t protocol_version, uint32_t keepalive_ms);
/* The same with kaos_client_config.appear_online set (the SDK publishes an
 * empty status after every session answer). */
e2e_client *e2e_client_new_appear_online(uint16_t port);
/* Starts a connection but does not wait for it. */
e2e_client *e2e_client_new_nowait(uint16_t port, uint32_t protocol_version);
/* Starts a connection pinning key_hex (or insecure mode); does not wait. */
e2e_client *e2e_client_new_with_key(uint16_t port, const char *key_hex, bool insecure);
/* Starts a plaintext (no handshake) connection; does not wait. */
e2e_client *e2e_client_new_plaintext(uint16_t port);
void e2e_client_free(e2e_client *c);
/* Authenticates by device and waits for the session. */
void e2e_auth(e2e_client *c, const char *device_id);
/* Creates a match through an RPC that answers with its id (asteroids'
 * find-or-create, the test module's create_test_match) and waits; fails the
 * test on an error or an answer that is not a match id. id gets the id. */
void e2e_match_by_rpc(e2e_client *c, const char *rpc, const char *payload, char id[128]);
/* Joins match id with metadata (NULL-terminated key, value pairs; may be
 * NULL) and waits; fails the test, naming the reason, when refused. */
void e2e_join(e2e_client *c, const char *id, const char *const *metadata);
/* A new client, authenticated with a fresh device id (created). */
e2e_client *e2e_player(uint16_t port, uint32_t keepalive_ms);

/* Poll every live client once (up to ~1 ms). */
void e2e_pump(void);
int64_t e2e_now_ms(void);
/* Waits for the answer to request `cid` of c: 0 when `*counter` (the field
 * the expected answer moves) passed `before`, else the error's code
 * (c->errors passed `errors`; its cid must be `cid`). */
int e2e_answer(e2e_client *c, const int *counter, int before, int errors, int cid);
/* The answer of a request completing with e2e_on_done (an Ack). */
#define E2E_ACKED(c, call) e2e_answer((c), &(c)->acks, (c)->acks, (c)->errors, (call))
/* Pump until cond holds; fail the test (naming cond) after timeout_ms. */
#define E2E_WAIT(cond, timeout_ms)                                                                 \
    do {                                                                                           \
        int64_t dl_ = e2e_now_ms() + (timeout_ms);                                                 \
        while (!(cond) && e2e_now_ms() < dl_)                                                      \
            e2e_pump();                                                                            \
        if (!(cond)) fail_msg("timed out waiting for %s (%s:%d)", #cond, __FILE__, __LINE__);      \
    } while (0)
/* Pump for a fixed time (to show something does NOT happen). */
void e2e_pump_for(int ms);

/* A random device id "e2e-<hex>" unique per call. */
void e2e_device_id(char out[40]);

/* --- a stream of storage writes ----------------------------------------------- */

/* One storage write in flight on a client at a time, a new key each
 * ("k<n>" in `collection`); what each was answered is recorded. */
#define E2E_STREAM_MAX 512
typedef struct e2e_stream {
    e2e_client *c;
    const char *collection;
    int next, in_flight; /* the key number in flight, -1 when none */
    int acks_seen, errors_seen;
    int n_acked, n_refused, last_error; /* last_error: the wire code of the last refusal */
    char acked_key[E2E_STREAM_MAX][24], acked_version[E2E_STREAM_MAX][40];
} e2e_stream;

/* Starts the stream (sends its first write). */
void e2e_stream_start(e2e_stream *s, e2e_client *c, const char *collection);
/* After pumping: records the answer to the write in flight, if any, and
 * sends the next. 1 acknowledged, -1 refused, 0 not answered yet. */
int e2e_stream_step(e2e_stream *s);
/* Reads Postgres database `dbname` straight: fails the test unless every
 * write the stream saw acknowledged is there with the version its
 * acknowledgement named. */
void e2e_stream_check(const e2e_stream *s, const char *dbname);

#endif
