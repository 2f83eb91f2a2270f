/* bench_matchmaker_pass: one matchmaker pass over N waiting tickets with
 * realistic queries (region + skill window), the built-in indexed matcher
 * beside the naive all-pairs matcher on the same tickets in the same run.
 * No sockets, no server: the matcher through kn_matchmaker.h, a stepped
 * clock, passes run by hand.
 *
 * Tickets: 8 regions (one of them half the players), skill 0-3000, 70 %
 * duels (2-2) and 30 % squads (2-4), each asking "+region:R
 * +skill:>=S-W +skill:<=S+W" with W 100-300. Every ticket is past its
 * max_intervals, so the pass forms every group it can.
 *
 * Usage: bench_matchmaker_pass [--sizes 1000,10000,100000] [--naive-max N]
 * (the naive matcher runs up to N tickets, default 10000: past that it
 * takes minutes; its time at larger sizes is projected from its n^2 fit and
 * marked so). Prints one table row per size and matcher. */
#include "kn_error.h"
#include "kn_matchmaker.h"
#include "kn_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t now_ms;
static int64_t fake_now(void)
{
    return now_ms;
}

static size_t formed_groups, formed_players;
static void on_matched(void *ud, kn_mm_ticket *const *t, size_t n)
{
    (void)ud;
    formed_groups++;
    for (size_t i = 0; i < n; i++)
        formed_players += t[i]->n_players;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static kn_matchmaker *fill(size_t n, kn_mm_process_fn fn)
{
    kn_matchmaker_config cfg = {
        .max_intervals = 1, .max_tickets = 3, .now_ms = fake_now, .matched = on_matched};
    kn_matchmaker *mm;
    if (kn_matchmaker_create(&cfg, &mm)) exit(1);
    kn_mm_processor p = {fn, NULL};
    kn_matchmaker_set_processor(mm, &p);
    static const char *const regions[] = {"eu",   "eu", "eu", "eu", "us", "us",
                                          "asia", "sa", "oc", "af", "me"};
    rng = 88172645463325252ull; /* the same tickets for both matchers */
    for (size_t i = 0; i < n; i++) {
        kn_mm_player pl = {.conn = i};
        snprintf(pl.user_id, sizeof pl.user_id, "u%zu", i);
        snprintf(pl.session_id, sizeof pl.session_id, "s%zu", i);
        const char *region = regions[next() % 11];
        int skill = (int)(next() % 3001), w = 100 + (int)(next() % 201);
        bool duel = next() % 10 < 7;
        kn_mm_prop props[3] = {
            {.is_num = false}, {.is_num = true, .num = skill}, {.is_num = false}};
        snprintf(props[0].name, sizeof props[0].name, "region");
        snprintf(props[0].str, sizeof props[0].str, "%s", region);
        snprintf(props[1].name, sizeof props[1].name, "skill");
        snprintf(props[2].name, sizeof props[2].name, "mode");
        snprintf(props[2].str, sizeof props[2].str, "%s", duel ? "duel" : "squad");
        char q[160];
        snprintf(q, sizeof q, "+region:%s +mode:%s +skill:>=%d +skill:<=%d", region,
                 duel ? "duel" : "squad", skill - w, skill + w);
        kn_mm_request req = {.players = &pl,
                             .n_players = 1,
                             .query = q,
                             .min_count = 2,
                             .max_count = duel ? 2 : 4,
                             .props = props,
                             .n_props = 3};
        char id[37], msg[256];
        if (kn_mm_add(mm, &req, id, msg, sizeof msg)) {
            fprintf(stderr, "add: %s\n", msg);
            exit(1);
        }
    }
    return mm;
}

/* One pass; its time in ms. */
static double one_pass(size_t n, kn_mm_process_fn fn)
{
    kn_matchmaker *mm = fill(n, fn);
    formed_groups = formed_players = 0;
    int64_t t0 = kn_time_mono_us();
    kn_mm_process(mm);
    double ms = (double)(kn_time_mono_us() - t0) / 1000.0;
    kn_matchmaker_stats st;
    kn_matchmaker_stats_get(mm, &st);
    if (st.fallbacks)
        fprintf(stderr, "warning: %llu fallback(s)\n", (unsigned long long)st.fallbacks);
    kn_matchmaker_destroy(mm);
    return ms;
}

int main(int argc, char **argv)
{
    char sizes[256] = "1000,10000,100000";
    size_t naive_max = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sizes"))
            snprintf(sizes, sizeof sizes, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--naive-max"))
            naive_max = (size_t)strtoull(argv[i + 1], NULL, 10);
    }
    printf("| tickets | matcher | pass (ms) | groups | players matched |\n");
    printf("|--:|---|--:|--:|--:|\n");
    double fit = 0; /* naive ms per n^2, from its largest measured size */
    for (char *save = NULL, *tok = strtok_r(sizes, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t n = (size_t)strtoull(tok, NULL, 10);
        double ms = one_pass(n, kn_mm_process_builtin);
        printf("| %zu | indexed (built-in) | %.1f | %zu | %zu |\n", n, ms, formed_groups,
               formed_players);
        fflush(stdout);
        if (n <= naive_max) {
            ms = one_pass(n, kn_mm_process_naive);
            fit = ms / ((double)n * (double)n);
            printf("| %zu | naive all pairs | %.1f | %zu | %zu |\n", n, ms, formed_groups,
                   formed_players);
        } else if (fit > 0) {
            printf("| %zu | naive all pairs | ~%.0f (projected n^2, not run) | - | - |\n", n,
                   fit * (double)n * (double)n);
        }
        fflush(stdout);
    }
    return 0;
}
