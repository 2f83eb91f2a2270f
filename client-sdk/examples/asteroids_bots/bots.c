/* kaos-asteroids-bots: N headless players of the asteroids match in one
 * process, each on its own kaos_client, pressing random buttons every tick.
 *
 *   usage: kaos-asteroids-bots [-n N] [-d SECONDS] [-k KEY | -i] [-h HOST] [-p PORT]
 *                              [-m MATCH_ID | -M REGION [-S SKILL]] [-c TEXT] [-q]
 *
 * Bots connect and authenticate together, then join one after another
 * (each calls the asteroids_find_or_create RPC once the previous one is in,
 * so they fill a match before opening the next), or all join -m MATCH_ID,
 * or all add matchmaker tickets at once (-M REGION, skills around -S, 1000
 * by default) and join the match the server's matched hook creates.
 * They play for -d seconds, disconnect and print, per bot, what arrived:
 * snapshots per second, reliable events, payload bytes per second, the
 * input-to-snapshot round trip (the seq echoed in the snapshot). With -c,
 * each bot also joins its match's chat room (ast_chat) as it enters the
 * match, says TEXT once a second of play has passed, and the summary counts
 * the chat lines said and received. The run is
 * bounded: 15 s to get everyone in, the play time, 3 s to disconnect. Exit
 * status 0 when every bot played and received snapshots, 1 otherwise, 2 for
 * bad arguments. Uses kaos.h and the asteroids example code only. */
#define _POSIX_C_SOURCE 200809L

#include "ast_chat.h"
#include "ast_player.h"

#include <kaos.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOTS 32
#define SETUP_MS 15000
#define STOP_MS  3000

typedef struct bot {
    ast_player p;
    uint64_t rng;
    uint8_t buttons;
    int64_t next_input_ms;
    int64_t played_ms; /* time spent in the match, for the rates */
    bool announced;
    ast_chat chat;
    bool chatting, said;
} bot;

static const char *chat_text; /* -c: what each bot says; NULL = no chat */

static uint32_t rnd(bot *b)
{
    b->rng ^= b->rng << 13; /* xorshift64 */
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return (uint32_t)(b->rng >> 32);
}

static bool chance(bot *b, unsigned percent)
{
    return rnd(b) % 100 < percent;
}

/* Random but with some persistence, so ships actually fly somewhere. */
static uint8_t next_buttons(bot *b)
{
    uint8_t btn = b->buttons;
    if (chance(b, 10)) {
        btn &= (uint8_t) ~(AST_BTN_LEFT | AST_BTN_RIGHT);
        unsigned r = rnd(b) % 3;
        if (r == 1) btn |= AST_BTN_LEFT;
        if (r == 2) btn |= AST_BTN_RIGHT;
    }
    if (chance(b, 8)) btn ^= AST_BTN_THRUST;
    if (chance(b, 15)) btn ^= AST_BTN_FIRE;
    b->buttons = btn;
    return btn;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void poll_all(bot *bots, int n)
{
    for (int i = 0; i < n; i++)
        ast_player_poll(&bots[i].p, 0);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: kaos-asteroids-bots [-n N] [-d SECONDS] [-k KEY | -i] [-h HOST] "
            "[-p PORT] [-m MATCH_ID | -M REGION [-S SKILL]] [-c TEXT] [-q]\n"
            "  -n bots in this process (1-%d, default 4); -d seconds of play (default "
            "10)\n"
            "  -k the server's public key (or KAOS_SERVER_KEY); -i insecure dev mode\n"
            "  -m join this match instead of asteroids_find_or_create; -q summary only\n"
            "  -c each bot says TEXT in its match's chat room\n"
            "  -M find matches through the matchmaker in REGION (skill -S, default 1000)\n",
            MAX_BOTS);
    return 2;
}

/* Connect everyone and get them into matches, one join at a time. */
static void setup(bot *bots, int n, bool quiet)
{
    /* The matchmaker passes every 15 s by default: wait for two passes more. */
    int64_t deadline = ast_now_ms() + SETUP_MS + (bots[0].p.cfg.region ? 30000 : 0);
    /* Through the matchmaker everyone asks at once (a group needs them all). */
    for (int i = 0; i < n; i++)
        bots[i].p.may_find = i == 0 || bots[i].p.cfg.region;
    for (;;) {
        int settled = 0;
        for (int i = 0; i < n; i++) {
            ast_player *p = &bots[i].p;
            bool in = p->state == AST_PLAYING && p->welcomed;
            if (in || p->state == AST_FAILED) {
                settled++;
                if (i + 1 < n) bots[i + 1].p.may_find = true;
            }
            if (in && !bots[i].announced) {
                bots[i].announced = true;
                if (chat_text)
                    bots[i].chatting =
                        ast_chat_start(&bots[i].chat, p->client, p->match_id) == KAOS_OK;
                if (!quiet)
                    printf("bot %d joined %s as player %u\n", i, p->match_id, (unsigned)p->my_id);
            }
        }
        if (settled == n || ast_now_ms() >= deadline) break;
        poll_all(bots, n);
        sleep_ms(1);
    }
}

static void play(bot *bots, int n, int64_t duration_ms)
{
    int64_t start = ast_now_ms(), end = start + duration_ms;
    for (int i = 0; i < n; i++)
        bots[i].next_input_ms = start;
    for (int64_t now = start; now < end; now = ast_now_ms()) {
        int64_t next = end;
        for (int i = 0; i < n; i++) {
            bot *b = &bots[i];
            if (b->p.state != AST_PLAYING) continue;
            /* a second in, everyone's room join has long been answered */
            if (b->chatting && !b->said && now - start >= 1000 && b->chat.joined)
                b->said = ast_chat_say(&b->chat, chat_text) == KAOS_OK;
            if (now >= b->next_input_ms) {
                ast_player_send_input(&b->p, next_buttons(b));
                int rate = b->p.tick_rate ? b->p.tick_rate : 30;
                b->next_input_ms += 1000 / rate;
                if (b->next_input_ms < now) b->next_input_ms = now; /* fell behind: no burst */
            }
            if (b->next_input_ms < next) next = b->next_input_ms;
        }
        poll_all(bots, n);
        int64_t wait = next - ast_now_ms();
        sleep_ms(wait > 2 ? 2 : wait);
    }
    int64_t stop = ast_now_ms();
    for (int i = 0; i < n; i++)
        bots[i].played_ms = bots[i].p.joined_ms ? stop - bots[i].p.joined_ms : 0;
}

static void stop_all(bot *bots, int n)
{
    for (int i = 0; i < n; i++)
        ast_player_stop(&bots[i].p);
    int64_t deadline = ast_now_ms() + STOP_MS;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && ast_player_finished(&bots[i].p);
        if (all || ast_now_ms() >= deadline) break;
        poll_all(bots, n);
        sleep_ms(1);
    }
}

/* One line per bot, then the totals; returns the exit status. */
static int summary(bot *bots, int n, const bool *played)
{
    printf("%-4s %-7s %-6s %8s %8s %7s %9s %7s %7s %6s %6s %5s\n", "bot", "state", "player",
           "snaps", "snaps/s", "events", "bytes/s", "inputs", "rtt_ms", "score", "deaths", "kills");
    double snaps_rate = 0, bytes_rate = 0;
    uint64_t events = 0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        bot *b = &bots[i];
        ast_player *p = &b->p;
        double secs = b->played_ms > 0 ? (double)b->played_ms / 1000.0 : 0;
        double sr = secs > 0 ? (double)p->snapshots / secs : 0;
        double br = secs > 0 ? (double)p->bytes / secs : 0;
        const ast_ship *me = ast_player_ship(p);
        printf("%-4d %-7s %-6u %8" PRIu64 " %8.1f %7" PRIu64 " %9.0f %7" PRIu64
               " %7.1f %6u %6" PRIu64 " %5" PRIu64 "\n",
               i, played[i] ? "played" : "failed", (unsigned)p->my_id, p->snapshots, sr, p->events,
               br, p->inputs, p->rtt_n ? (double)p->rtt_sum_ms / (double)p->rtt_n : 0.0,
               me ? (unsigned)me->score : 0u, p->deaths, p->kills);
        if (!played[i])
            printf("     bot %d: %s\n", i, p->error[0] ? p->error : ast_state_name(p->state));
        if (played[i] && p->snapshots > 0) ok++;
        snaps_rate += sr;
        bytes_rate += br;
        events += p->events;
    }
    printf("total: %d/%d bots played, %.1f snapshots/s per bot, %" PRIu64
           " events, %.0f payload bytes/s received\n",
           ok, n, n ? snaps_rate / n : 0, events, bytes_rate);
    if (chat_text) {
        unsigned said = 0, heard = 0;
        for (int i = 0; i < n; i++) {
            said += bots[i].said;
            heard += bots[i].chat.n_lines;
            if (bots[i].chat.error[0]) printf("     bot %d: %s\n", i, bots[i].chat.error);
        }
        printf("chat: %u lines said, %u received\n", said, heard);
    }
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    int n = 4;
    double duration = 10;
    bool quiet = false;
    ast_player_config cfg = {.host = "127.0.0.1", .port = 7350, .device_prefix = "bot"};
    int opt;
    while ((opt = getopt(argc, argv, "n:d:c:q" AST_PLAYER_GETOPT)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'n':
            n = (int)strtol(optarg, &end, 10);
            if (*end || n < 1 || n > MAX_BOTS) return usage();
            break;
        case 'd':
            duration = strtod(optarg, &end);
            if (*end || !(duration > 0 && duration <= 86400)) return usage();
            break;
        case 'q':
            quiet = true;
            break;
        case 'c':
            if (!*optarg || strlen(optarg) > AST_CHAT_LINE_MAX) return usage();
            chat_text = optarg;
            break;
        default:
            if (ast_player_option(&cfg, opt, optarg) != 1) return usage();
        }
    }
    if (optind != argc) return usage();
    if (!ast_player_have_key(&cfg, "kaos-asteroids-bots")) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);

    static bot bots[MAX_BOTS];
    uint64_t seed = (uint64_t)ast_now_ms() * 0x9E3779B97F4A7C15u ^ (uint64_t)getpid();
    for (int i = 0; i < n; i++) {
        bots[i].rng = seed + (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9u;
        if (ast_player_start(&bots[i].p, &cfg) < 0) {
            fprintf(stderr, "kaos-asteroids-bots: bot %d: %s\n", i, bots[i].p.error);
            for (int j = 0; j <= i; j++)
                ast_player_destroy(&bots[j].p);
            return 1;
        }
    }
    setup(bots, n, quiet);
    bool played[MAX_BOTS];
    for (int i = 0; i < n; i++) {
        if (bots[i].p.state != AST_PLAYING && bots[i].p.state != AST_FAILED)
            snprintf(bots[i].p.error, sizeof bots[i].p.error, "still %s after %d s",
                     ast_state_name(bots[i].p.state), SETUP_MS / 1000);
    }
    play(bots, n, (int64_t)(duration * 1000));
    for (int i = 0; i < n; i++)
        played[i] = bots[i].p.state == AST_PLAYING;
    stop_all(bots, n);
    int status = summary(bots, n, played);
    for (int i = 0; i < n; i++)
        ast_player_destroy(&bots[i].p);
    return status;
}
