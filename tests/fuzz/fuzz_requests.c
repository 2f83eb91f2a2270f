/* libFuzzer target: the request validators. The input is split on NUL bytes
 * into a device id (or email), a username (or password) and session
 * variables for the device and email validators, and interpreted as a program of relay operations
 * (create, join, leave, data with targets, disconnect) by four connections against a relay with a
 * counting sink. Properties: validators never crash and give a message with every refusal; the
 * relay never loses track of a member (every data send from a member succeeds, from a non-member
 * fails). */
#include "kn_auth.h"
#include "kn_crypto.h"
#include "kn_error.h"
#include "kn_relay.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t delivered;

static int count_sink(void *ud, const kn_relay_conn *conns, size_t n, uint8_t channel,
                      const uint8_t *d, size_t len, bool reliable)
{
    delivered += n;
    return 0;
}

static void auth_validator(const uint8_t *data, size_t size)
{
    char buf[1024];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    /* fields separated by NUL: device, username, then key/value pairs */
    const char *fields[40];
    size_t nf = 0;
    for (size_t i = 0; i <= n && nf < 40;) {
        fields[nf++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    kn_token_var vars[16];
    size_t nv = 0;
    for (size_t i = 2; i + 1 < nf && nv < 16; i += 2, nv++) {
        vars[nv].key = (char *)fields[i];
        vars[nv].value = (char *)fields[i + 1];
    }
    char msg[256] = "";
    int rc = kn_auth_check_device(fields[0], nf > 1 ? fields[1] : NULL, vars, nv, msg, sizeof msg);
    if (rc && !msg[0]) abort();
    msg[0] = '\0';
    rc = kn_auth_check_email(fields[0], nf > 1 ? fields[1] : NULL, nf > 2 ? fields[2] : NULL, vars,
                             nv, msg, sizeof msg);
    if (rc && !msg[0]) abort();
}

static void relay_program(const uint8_t *data, size_t size)
{
    kn_relay_config cfg = {.node = "fz",
                           .default_size = 4,
                           .max_size = 8,
                           .max_matches_per_conn = 3,
                           .max_message_size = 512};
    kn_tracker_config tc;
    kn_tracker_config_default(&tc);
    kn_tracker_sink sink = {count_sink, NULL};
    kn_tracker *t;
    kn_relay *r;
    if (kn_tracker_create(&tc, &sink, &t) || kn_relay_create(&cfg, t, &r)) abort();
    char ids[8][112] = {{0}};
    uint32_t handles[8] = {0};
    int nmatch = 0;
    bool member[8][5] = {{false}}; /* [match][conn] as we believe it */
    for (size_t i = 0; i + 3 <= size; i += 3) {
        uint8_t op = data[i] % 5, conn = (uint8_t)(data[i + 1] % 4 + 1), arg = data[i + 2];
        kn_relay_member who = {.conn = conn};
        strcpy(who.user_id, "u");
        kn_relay_joined j = {0};
        char msg[128];
        int m = nmatch ? arg % nmatch : 0;
        switch (op) {
        case 0:
            if (nmatch < 8 &&
                kn_relay_match_create(r, &who, arg % 10, &j, msg, sizeof msg) == KN_OK) {
                strcpy(ids[nmatch], j.match_id);
                handles[nmatch] = j.handle;
                memset(member[nmatch], 0, sizeof member[nmatch]);
                member[nmatch++][conn] = true;
            }
            break;
        case 1:
            if (nmatch && kn_relay_match_join(r, ids[m], &who, &j, msg, sizeof msg) == KN_OK)
                member[m][conn] = true;
            break;
        case 2:
            if (nmatch && kn_relay_match_leave(r, handles[m], conn) == KN_OK)
                member[m][conn] = false;
            break;
        case 3:
            if (nmatch) {
                uint32_t targets[2] = {arg & 7u, arg >> 5};
                int rc = kn_relay_data(r, handles[m], conn, arg, data, size > 64 ? 64 : size,
                                       targets, arg & 1u ? 2 : 0, 2, false);
                /* A match whose last member left is gone, handles are not reused here. */
                if (member[m][conn] && rc != KN_OK) abort();
                if (!member[m][conn] && rc == KN_OK) abort();
            }
            break;
        case 4:
            kn_tracker_untrack_all(t, conn); /* its session ended */
            for (int k = 0; k < nmatch; k++)
                member[k][conn] = false;
            break;
        }
        kn_relay_joined_deinit(&j);
    }
    kn_relay_destroy(r);
    kn_tracker_destroy(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (kn_crypto_init() != 0) abort();
        ready = 1;
    }
    auth_validator(data, size);
    relay_program(data, size);
    return 0;
}
