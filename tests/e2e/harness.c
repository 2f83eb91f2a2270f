/* harness: see header. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef KAOSNET_BIN
#error "KAOSNET_BIN must name the server binary"
#endif

#define MAX_CLIENTS 96
#define MAX_SERVERS 8

static e2e_client *live[MAX_CLIENTS];

/* Servers still running, killed at exit so a failed test never leaves one
 * behind (it would hold ctest's output pipe open until the timeout). */
static pid_t running[MAX_SERVERS];

static void kill_leftovers(void)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
}

static void track(pid_t pid, bool add)
{
    static bool registered;
    if (!registered) {
        atexit(kill_leftovers);
        registered = true;
    }
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (add && running[i] == 0) {
            running[i] = pid;
            return;
        }
        if (!add && running[i] == pid) {
            running[i] = 0;
            return;
        }
    }
}

/* The key each started server announced, by port, so clients pin it. */
static struct {
    uint16_t port;
    char key_hex[65];
} known[MAX_SERVERS];

static void remember_key(uint16_t port, const char *hex)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (known[i].port == port || known[i].port == 0) {
            known[i].port = port;
            snprintf(known[i].key_hex, sizeof known[i].key_hex, "%s", hex);
            return;
        }
    }
    fail_msg("too many servers");
}

static const char *key_for(uint16_t port)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (known[i].port == port) return known[i].key_hex;
    return NULL;
}

int64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void e2e_device_id(char out[40])
{
    static unsigned counter;
    snprintf(out, 40, "e2e-%08x-%04x-%u", (unsigned)rand(), (unsigned)getpid() & 0xffff, ++counter);
}

/* --- database ------------------------------------------------------------- */

static void admin_sql(const char *sql)
{
    /* libpq defaults: the PG* variables pg_virtualenv exported. */
    PGconn *conn = PQconnectdb("");
    if (PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot reach the test Postgres (run inside pg_virtualenv): %s",
                 PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

void e2e_server_init(e2e_server *s)
{
    static unsigned n;
    memset(s, 0, sizeof *s);
    s->pid = -1;
    s->out_fd = -1;
    srand((unsigned)getpid() ^ (unsigned)e2e_now_ms());
    snprintf(s->dbname, sizeof s->dbname, "kaos_e2e_%d_%u", (int)getpid(), ++n);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->dbname);
    admin_sql(sql);
    snprintf(s->data_dir, sizeof s->data_dir, "/tmp/kaos-e2e-%d-%u", (int)getpid(), n);
}

void e2e_server_cleanup(e2e_server *s)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->dbname);
    admin_sql(sql);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->data_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", s->data_dir);
}

/* --- server process -------------------------------------------------------- */

void e2e_server_start(e2e_server *s, const char *const *extra)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    char url[128];
    snprintf(url, sizeof url, "dbname=%s", s->dbname);
    const char *argv[64] = {KAOSNET_BIN, "serve", "--database-url", url, "--bind", "127.0.0.1",
                            "--port", "0", "--http-port", "0", "--data-dir", s->data_dir,
                            "--migrate",
                            /* every test shares 127.0.0.1: only lockout tests lower this */
                            "--lockout-address-failures", "1000", "--log-level",
                            getenv("KAOS_E2E_LOG") ? getenv("KAOS_E2E_LOG") : "warn"};
    int argc = 17;
    for (int i = 0; extra && extra[i] && argc < 62; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(KAOSNET_BIN, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->out_fd = pipefd[0];
    track(pid, true);

    /* Wait for "kaosnet ready udp 127.0.0.1:PORT". */
    char buf[512] = "";
    size_t len = 0;
    int64_t deadline = e2e_now_ms() + 30000; /* generous: sanitizer builds start slowly */
    while (e2e_now_ms() < deadline) {
        struct pollfd p = {s->out_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(s->out_fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0) break; /* exited */
        len += (size_t)n;
        buf[len] = '\0';
        const char *ready = strstr(buf, "kaosnet ready udp ");
        const char *colon = ready ? strchr(ready + 18, ':') : NULL;
        const char *key = colon ? strstr(colon, " key ") : NULL;
        if (key && strchr(key, '\n')) {
            s->port = (uint16_t)atoi(colon + 1);
            const char *http = strstr(key, " http ");
            s->http_port = http ? (uint16_t)atoi(http + 6) : 0;
            snprintf(s->key_hex, sizeof s->key_hex, "%.64s", key + 5);
            for (int i = 0; i < 32; i++) {
                unsigned v;
                sscanf(s->key_hex + 2 * i, "%2x", &v);
                s->key[i] = (uint8_t)v;
            }
            remember_key(s->port, s->key_hex);
            return;
        }
    }
    int status = 0;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    track(pid, false);
    s->pid = -1;
    fail_msg("server did not become ready (output: %s)", buf);
}

int e2e_server_stop(e2e_server *s)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    int64_t deadline = e2e_now_ms() + 30000;
    pid_t r;
    /* Keep pumping clients so they can acknowledge the disconnect. */
    while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && e2e_now_ms() < deadline)
        e2e_pump();
    track(s->pid, false);
    if (r == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        s->pid = -1;
        fail_msg("server did not stop within 30 s of SIGTERM");
    }
    s->pid = -1;
    close(s->out_fd);
    s->out_fd = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void e2e_server_kill(e2e_server *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGKILL);
    int status = 0;
    waitpid(s->pid, &status, 0);
    track(s->pid, false);
    s->pid = -1;
    close(s->out_fd);
    s->out_fd = -1;
}

e2e_server e2e_group_server;

int e2e_group_setup(void **state)
{
    e2e_server_init(&e2e_group_server);
    e2e_server_start(&e2e_group_server, NULL);
    return 0;
}

int e2e_group_setup_with_examples(void **state)
{
    const char *extra[] = {"--runtime-path", KAOS_SOURCE_DIR "/lua-examples", NULL};
    e2e_server_init(&e2e_group_server);
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

int e2e_group_teardown(void **state)
{
    int rc = e2e_server_stop(&e2e_group_server);
    e2e_server_cleanup(&e2e_group_server);
    if (rc != 0) fprintf(stderr, "server exit status %d\n", rc);
    return rc == 0 ? 0 : -1;
}

char e2e_test_modules_dir[64];

int e2e_group_setup_with_test_modules(void **state)
{
    (void)state;
    const char *dirs[] = {KAOS_SOURCE_DIR "/tests/e2e/lua", NULL};
    e2e_runtime_dir(e2e_test_modules_dir, sizeof e2e_test_modules_dir, dirs);
    e2e_server_init(&e2e_group_server);
    const char *extra[] = {"--runtime-path", e2e_test_modules_dir, NULL};
    e2e_server_start(&e2e_group_server, extra);
    return 0;
}

int e2e_group_teardown_with_test_modules(void **state)
{
    int rc = e2e_group_teardown(state);
    e2e_runtime_dir_remove(e2e_test_modules_dir);
    return rc;
}

static void link_module(const char *dir, const char *src)
{
    char dst[512];
    const char *base = strrchr(src, '/');
    int n = snprintf(dst, sizeof dst, "%s/%s", dir, base ? base + 1 : src);
    assert_true(n > 0 && (size_t)n < sizeof dst);
    assert_int_equal(symlink(src, dst), 0);
}

void e2e_runtime_dir(char *out, size_t cap, const char *const *from)
{
    snprintf(out, cap, "/tmp/kaos-e2e-rt-XXXXXX");
    assert_non_null(mkdtemp(out));
    for (; *from; from++) {
        size_t len = strlen(*from);
        if (len > 4 && !strcmp(*from + len - 4, ".lua")) {
            link_module(out, *from);
            continue;
        }
        DIR *d = opendir(*from);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".lua")) continue;
            char src[512];
            snprintf(src, sizeof src, "%s/%s", *from, e->d_name);
            link_module(out, src);
        }
        closedir(d);
    }
}

void e2e_runtime_dir_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int e2e_http(uint16_t port, const char *method, const char *path, const char *headers,
             const char *body, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[4096];
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                 "Content-Length: %zu\r\n\r\n%s",
                 method, path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    char *b = strstr(out, "\r\n\r\n");
    if (b) memmove(out, b + 4, strlen(b + 4) + 1);
    return status;
}

long long e2e_metric(uint16_t http_port, const char *name)
{
    static char page[65536];
    assert_int_equal(e2e_http(http_port, "GET", "/metrics", NULL, NULL, page, sizeof page), 200);
    char key[160];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(page, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

int e2e_run_cli(const char *const *args, char *out, size_t out_cap)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    const char *argv[32] = {KAOSNET_BIN};
    int argc = 1;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(KAOSNET_BIN, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(pipefd[0], out + len, out_cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- clients ----------------------------------------------------------------- */

static void on_connected(kaos_client *k, void *ud)
{
    ((e2e_client *)ud)->connected = true;
}

static void on_disconnected(kaos_client *k, uint32_t reason, void *ud)
{
    e2e_client *c = ud;
    c->disconnected = true;
    c->connected = false;
    c->disconnect_reason = reason;
}

static void record_error(e2e_client *c, const kaos_result *r)
{
    c->errors++;
    c->error_cid = r->cid;
    c->error_code = -r->code;
    snprintf(c->error_message, sizeof c->error_message, "%s", r->message ? r->message : "");
}

/* The error event: errors of no pending request. */
static void on_error(kaos_client *k, const kaos_result *r, void *ud)
{
    record_error(ud, r);
}

/* True when a completion carries an answer. A request cut short by a
 * disconnect is counted apart (`closed_requests`), not as an error: the
 * tests look at the disconnect itself. */
static bool answer(e2e_client *c, const kaos_result *r)
{
    if (r->code == KAOS_OK) return true;
    if (r->code == KAOS_ERR_CLOSED)
        c->closed_requests++;
    else
        record_error(c, r);
    return false;
}

void e2e_on_session(kaos_client *k, const kaos_result *r, const kaos_session *s, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->sessions++;
    snprintf(c->token, sizeof c->token, "%s", s->token);
    snprintf(c->refresh_token, sizeof c->refresh_token, "%s",
             s->refresh_token ? s->refresh_token : "");
    snprintf(c->user_id, sizeof c->user_id, "%s", s->user_id);
    snprintf(c->username, sizeof c->username, "%s", s->username);
    snprintf(c->session_id, sizeof c->session_id, "%s", s->session_id);
    c->created = s->created;
}

void e2e_on_match(kaos_client *k, const kaos_result *r, const kaos_match *m, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->matches++;
    c->match_cid = r->cid;
    snprintf(c->match_id, sizeof c->match_id, "%s", m->match_id);
    c->match_handle = m->handle;
    c->match_size = m->size;
    c->match_max_size = m->max_size;
    c->self_slot = m->self.slot;
    c->match_others = m->presence_count;
    for (size_t i = 0; i < m->presence_count && i < 16; i++)
        c->other_slots[i] = m->presences[i].slot;
}

void e2e_on_done(kaos_client *k, const kaos_result *r, void *ud)
{
    e2e_client *c = ud;
    if (answer(c, r)) c->acks++;
}

void e2e_on_pong(kaos_client *k, const kaos_result *r, int64_t rtt, void *ud)
{
    e2e_client *c = ud;
    if (answer(c, r)) c->pongs++;
}

static void on_data(kaos_client *k, uint32_t match, uint32_t sender, int64_t op,
                    const uint8_t *data, size_t len, bool reliable, void *ud)
{
    e2e_client *c = ud;
    if (c->data_count == E2E_MAX_DATA) return;
    e2e_data *d = &c->data[c->data_count++];
    d->match = match;
    d->sender = sender;
    d->op_code = op;
    d->len = len < sizeof d->bytes ? len : sizeof d->bytes;
    memcpy(d->bytes, data, d->len);
    d->reliable = reliable;
}

static void on_presence(kaos_client *k, uint32_t match, const kaos_presence *joins, size_t nj,
                        const kaos_presence *leaves, size_t nl, void *ud)
{
    e2e_client *c = ud;
    c->joins += (int)nj;
    c->leaves += (int)nl;
    if (nj) c->last_join_slot = joins[nj - 1].slot;
    if (nl) c->last_leave_slot = leaves[nl - 1].slot;
}

void e2e_on_rpc(kaos_client *k, const kaos_result *r, const char *payload, size_t len, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->rpcs++;
    snprintf(c->rpc_payload, sizeof c->rpc_payload, "%s", payload);
}

static void on_match_end(kaos_client *k, uint32_t match, const char *match_id, int code,
                         const char *reason, void *ud)
{
    e2e_client *c = ud;
    c->match_ends++;
    c->match_end_handle = match;
    c->match_end_code = code;
    snprintf(c->match_end_reason, sizeof c->match_end_reason, "%s", reason);
}

void e2e_on_match_list(kaos_client *k, const kaos_result *r, const kaos_match_info *list, size_t n,
                       void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->match_lists++;
    c->match_list_count = n;
    snprintf(c->match_list_first, sizeof c->match_list_first, "%s", n ? list[0].label : "");
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

void e2e_on_account(kaos_client *k, const kaos_result *r, const kaos_account *a, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    e2e_account *x = &c->account;
    c->accounts++;
    COPY(x->id, a->user.id);
    COPY(x->username, a->user.username);
    COPY(x->display_name, a->user.display_name);
    COPY(x->avatar_url, a->user.avatar_url);
    COPY(x->lang_tag, a->user.lang_tag);
    COPY(x->location, a->user.location);
    COPY(x->timezone, a->user.timezone);
    COPY(x->metadata, a->user.metadata);
    COPY(x->email, a->email);
    COPY(x->custom_id, a->custom_id);
    x->device_count = a->device_count;
    for (size_t i = 0; i < a->device_count && i < 8; i++)
        COPY(x->device_ids[i], a->device_ids[i]);
    x->create_time = a->user.create_time;
    x->update_time = a->user.update_time;
    x->disable_time = a->disable_time;
    COPY(x->wallet, a->wallet);
}

void e2e_on_users(kaos_client *k, const kaos_result *r, const kaos_user *users, size_t n, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->users_answers++;
    c->users_count = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        COPY(c->users_ids[i], users[i].id);
        COPY(c->users_names[i], users[i].username);
    }
}

void e2e_on_friends(kaos_client *k, const kaos_result *r, const kaos_friend *friends, size_t n,
                    const char *cursor, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->friends_answers++;
    c->friend_count = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        COPY(c->friend_ids[i], friends[i].user.id);
        COPY(c->friend_names[i], friends[i].user.username);
        c->friend_states[i] = friends[i].state;
        c->friend_times[i] = friends[i].update_time;
        COPY(c->friend_metadata[i], friends[i].metadata);
    }
    COPY(c->friends_cursor, cursor);
}

void e2e_on_storage_acks(kaos_client *k, const kaos_result *r, const kaos_storage_ack *acks,
                         size_t n, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->storage_acks++;
    c->acks_cid = r->cid;
    c->ack_count = n;
    for (size_t i = 0; i < n && i < E2E_MAX_OBJECTS; i++) {
        e2e_ack *a = &c->acks_seen[i];
        COPY(a->collection, acks[i].collection);
        COPY(a->key, acks[i].key);
        COPY(a->user_id, acks[i].user_id);
        COPY(a->version, acks[i].version);
    }
}

void e2e_on_storage_objects(kaos_client *k, const kaos_result *r, const kaos_storage_object *objs,
                            size_t n, const char *cursor, void *ud)
{
    e2e_client *c = ud;
    if (!answer(c, r)) return;
    c->storage_objects++;
    c->objects_cid = r->cid;
    c->object_count = n;
    for (size_t i = 0; i < n && i < E2E_MAX_OBJECTS; i++) {
        e2e_object *o = &c->objects[i];
        COPY(o->collection, objs[i].collection);
        COPY(o->key, objs[i].key);
        COPY(o->user_id, objs[i].user_id);
        COPY(o->version, objs[i].version);
        COPY(o->value, objs[i].value);
        o->permission_read = objs[i].permission_read;
        o->permission_write = objs[i].permission_write;
        o->create_time_ms = objs[i].create_time_ms;
        o->update_time_ms = objs[i].update_time_ms;
    }
    COPY(c->cursor, cursor);
}

static void on_shutdown(kaos_client *k, uint32_t grace, void *ud)
{
    ((e2e_client *)ud)->shutdown_notices++;
}

static e2e_client *client_new_cfg(uint16_t port, uint32_t version, uint32_t keepalive,
                                  const char *key_hex, bool insecure, bool plaintext,
                                  bool appear_online)
{
    e2e_client *c = calloc(1, sizeof *c);
    assert_non_null(c);
    kaos_client_config cfg;
    kaos_client_config_default(&cfg);
    cfg.port = port;
    cfg.keepalive_ms = keepalive;
    if (version) cfg.protocol_version = version;
    cfg.server_key = key_hex;
    cfg.insecure_dev_mode = insecure;
    cfg.plaintext = plaintext;
    cfg.appear_online = appear_online;
    assert_int_equal(kaos_client_create(&cfg, &c->c), KAOS_OK);
    kaos_client_on_connected(c->c, on_connected, c);
    kaos_client_on_disconnected(c->c, on_disconnected, c);
    kaos_client_on_error(c->c, on_error, c);
    kaos_client_on_match_data(c->c, on_data, c);
    kaos_client_on_match_presence(c->c, on_presence, c);
    kaos_client_on_match_end(c->c, on_match_end, c);
    kaos_client_on_shutdown_notice(c->c, on_shutdown, c);
    assert_int_equal(kaos_client_connect(c->c), KAOS_OK);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (!live[i]) {
            live[i] = c;
            return c;
        }
    }
    fail_msg("too many clients");
    return NULL;
}

static e2e_client *client_new(uint16_t port, uint32_t version, uint32_t keepalive)
{
    const char *key = key_for(port);
    if (!key) fail_msg("no server known on port %u", port);
    return client_new_cfg(port, version, keepalive, key, false, false, false);
}

e2e_client *e2e_client_new_nowait(uint16_t port, uint32_t version)
{
    return client_new(port, version, 0);
}

e2e_client *e2e_client_new_with_key(uint16_t port, const char *key_hex, bool insecure)
{
    /* keepalive on: these clients may sit through long waits */
    return client_new_cfg(port, 0, 2000, key_hex, insecure, false, false);
}

e2e_client *e2e_client_new_plaintext(uint16_t port)
{
    return client_new_cfg(port, 0, 0, NULL, true, true, false);
}

e2e_client *e2e_client_new(uint16_t port, uint32_t version, uint32_t keepalive_ms)
{
    e2e_client *c = client_new(port, version, keepalive_ms);
    E2E_WAIT(c->connected || c->disconnected, 10000);
    assert_true(c->connected);
    return c;
}

e2e_client *e2e_client_new_appear_online(uint16_t port)
{
    const char *key = key_for(port);
    if (!key) fail_msg("no server known on port %u", port);
    e2e_client *c = client_new_cfg(port, 0, 0, key, false, false, true);
    E2E_WAIT(c->connected || c->disconnected, 10000);
    assert_true(c->connected);
    return c;
}

void e2e_client_free(e2e_client *c)
{
    if (!c) return;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (live[i] == c) live[i] = NULL;
    kaos_client_destroy(c->c);
    free(c);
}

void e2e_auth(e2e_client *c, const char *device_id)
{
    int before = c->sessions, errors = c->errors;
    int cid = kaos_client_auth_device(c->c, device_id, NULL, true, NULL, e2e_on_session, c);
    assert_true(cid > 0);
    E2E_WAIT(c->sessions > before || c->errors > errors, 10000);
    if (c->sessions == before) fail_msg("auth failed: %d %s", c->error_code, c->error_message);
}

void e2e_match_by_rpc(e2e_client *c, const char *rpc, const char *payload, char id[128])
{
    int before = c->rpcs, errors = c->errors;
    kaos_client_rpc_call(c->c, rpc, payload, e2e_on_rpc, c);
    E2E_WAIT(c->rpcs == before + 1 || c->errors > errors, 5000);
    if (c->errors > errors) fail_msg("%s failed: %d %s", rpc, c->error_code, c->error_message);
    snprintf(id, 128, "%.127s", c->rpc_payload);
    assert_non_null(strchr(id, '.'));
}

void e2e_join(e2e_client *c, const char *id, const char *const *metadata)
{
    int before = c->matches, errors = c->errors;
    kaos_client_match_join(c->c, id, metadata, e2e_on_match, c);
    E2E_WAIT(c->matches == before + 1 || c->errors > errors, 5000);
    if (c->errors > errors) fail_msg("join refused: %d %s", c->error_code, c->error_message);
}

e2e_client *e2e_player(uint16_t port, uint32_t keepalive_ms)
{
    char dev[40];
    e2e_device_id(dev);
    e2e_client *c = e2e_client_new(port, 0, keepalive_ms);
    e2e_auth(c, dev);
    return c;
}

int e2e_answer(e2e_client *c, const int *counter, int before, int errors, int cid)
{
    assert_true(cid > 0);
    E2E_WAIT(*counter > before || c->errors > errors, 15000);
    if (*counter > before) return 0;
    assert_int_equal(c->error_cid, (uint32_t)cid);
    return c->error_code;
}

void e2e_pump(void)
{
    bool any = false;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (live[i]) {
            kaos_client_poll(live[i]->c, 0);
            any = true;
        }
    }
    struct timespec ts = {0, any ? 1000000 : 5000000};
    nanosleep(&ts, NULL);
}

void e2e_pump_for(int ms)
{
    int64_t end = e2e_now_ms() + ms;
    while (e2e_now_ms() < end)
        e2e_pump();
}

/* --- a stream of storage writes ----------------------------------------------- */

static void stream_send(e2e_stream *s)
{
    char key[24], value[64];
    snprintf(key, sizeof key, "k%d", s->next);
    snprintf(value, sizeof value, "{\"n\":%d}", s->next);
    kaos_storage_write_object o = {.collection = s->collection, .key = key, .value = value};
    s->acks_seen = s->c->storage_acks;
    s->errors_seen = s->c->errors;
    int cid = kaos_client_storage_write(s->c->c, &o, 1, e2e_on_storage_acks, s->c);
    s->in_flight = cid > 0 ? s->next : -1;
    s->next++;
}

void e2e_stream_start(e2e_stream *s, e2e_client *c, const char *collection)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    s->collection = collection;
    stream_send(s);
}

int e2e_stream_step(e2e_stream *s)
{
    int answer = 0;
    if (s->in_flight >= 0 && s->c->storage_acks > s->acks_seen) {
        if (s->n_acked == E2E_STREAM_MAX) fail_msg("stream: more than %d acks", E2E_STREAM_MAX);
        snprintf(s->acked_key[s->n_acked], sizeof s->acked_key[0], "k%d", s->in_flight);
        snprintf(s->acked_version[s->n_acked], sizeof s->acked_version[0], "%s",
                 s->c->acks_seen[0].version);
        s->n_acked++;
        answer = 1;
    } else if (s->in_flight >= 0 && s->c->errors > s->errors_seen) {
        s->n_refused++;
        s->last_error = s->c->error_code;
        answer = -1;
    }
    if (answer || s->in_flight < 0) stream_send(s);
    return answer;
}

void e2e_stream_check(const e2e_stream *s, const char *dbname)
{
    char conninfo[128];
    snprintf(conninfo, sizeof conninfo, "dbname=%s", dbname);
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) fail_msg("stream check: %s", PQerrorMessage(db));
    for (int k = 0; k < s->n_acked; k++) {
        const char *params[3] = {s->collection, s->acked_key[k], s->c->user_id};
        PGresult *res = PQexecParams(db,
                                     "SELECT version FROM storage WHERE collection = $1 AND "
                                     "key = $2 AND user_id = $3",
                                     3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("stream check: %s", PQerrorMessage(db));
        const char *got = PQntuples(res) ? PQgetvalue(res, 0, 0) : "(none)";
        if (strcmp(got, s->acked_version[k]))
            fail_msg("%s of user %s acknowledged as version %s, in Postgres %s", s->acked_key[k],
                     s->c->user_id, s->acked_version[k], got);
        PQclear(res);
    }
    PQfinish(db);
}
