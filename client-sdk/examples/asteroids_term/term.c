/* kaos-asteroids-term: play the asteroids match in a terminal (ncurses).
 *
 *   usage: kaos-asteroids-term [-k KEY | -i] [-h HOST] [-p PORT] [-m MATCH_ID | -M REGION
 *                              [-S SKILL]] [-u USERNAME]
 *
 * Connects, joins through the asteroids_find_or_create RPC (or -m, or the
 * matchmaker with -M: players of the region and a close skill), then
 * runs one non-blocking loop at about 60 frames per second: poll the client,
 * read every pending key, send the buttons once per match tick, draw the last
 * snapshot scaled to the terminal. Ships are drawn as the direction they
 * point (> \ v / < \ ^ /; yours in bold), asteroids as filled blobs by size
 * (@ large, O medium, o small), bullets as dots. A top line has the wave and
 * your score, a box in the corner the scoreboard, the bottom line the last
 * event. The players of a match share a chat room named after it (ast_chat):
 * its last lines are drawn above the bottom line.
 *
 * After q: leaves the match (the server then submits the score to the
 * asteroids_highscores board, docs/leaderboards.md) and prints the board's
 * top 10 and the player's own rank.
 *
 * Keys: left/a and right/d turn, up/w thrusts, space fires, q quits; t (or
 * Enter) opens the chat line, Enter sends it, Esc drops it.
 * Terminals report presses, not releases: a press holds its button for
 * HOLD_MS and the key's auto-repeat keeps it held. Exit status 0 after q, 1
 * when the connection or the match fails, 2 for bad arguments. */
#define _POSIX_C_SOURCE 200809L

#include "ast_chat.h"
#include "ast_player.h"

#include <kaos.h>

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRAME_MS     16
#define HOLD_MS      150
#define FIRE_HOLD_MS 100
#define SETUP_MS     15000
#define WORLD_W      1024
#define WORLD_H      768

enum { PAIR_ME = 1, PAIR_SHIP, PAIR_ROCK, PAIR_BULLET, PAIR_HUD };

typedef struct game {
    ast_player p;
    int64_t hold_until[4]; /* thrust, left, right, fire */
    char last_event[160];
    bool color;
    ast_chat chat;
    bool typing; /* the chat line has the keys */
    char line[AST_CHAT_LINE_MAX + 1];
    size_t len;
} game;

static const char *name_of(const ast_player *p, uint8_t id)
{
    /* a player who just left keeps its name until the id is given again */
    if (id >= 1 && id <= AST_MAX_PLAYERS && p->roster[id].name[0]) return p->roster[id].name;
    return "someone";
}

static void on_event(ast_player *p, const ast_event *ev, void *ud)
{
    game *g = ud;
    static const char *const sizes[] = {"", "small", "medium", "large"};
    switch (ev->op) {
    case AST_OP_JOINED:
        snprintf(g->last_event, sizeof g->last_event, "%s joined", ev->name);
        break;
    case AST_OP_LEFT:
        snprintf(g->last_event, sizeof g->last_event, "%s left", name_of(p, ev->id));
        break;
    case AST_OP_DEATH:
        if (ev->cause == AST_CAUSE_BULLET && ev->killer)
            snprintf(g->last_event, sizeof g->last_event, "%s shot %s", name_of(p, ev->killer),
                     name_of(p, ev->id));
        else
            snprintf(g->last_event, sizeof g->last_event, "%s crashed into an asteroid",
                     name_of(p, ev->id));
        break;
    case AST_OP_ASTEROID:
        if (ev->id)
            snprintf(g->last_event, sizeof g->last_event, "%s destroyed a %s asteroid",
                     name_of(p, ev->id), ev->size <= 3 ? sizes[ev->size] : "big");
        break;
    case AST_OP_WAVE:
        snprintf(g->last_event, sizeof g->last_event, "wave %u: %u large asteroids",
                 (unsigned)ev->wave, (unsigned)ev->count);
        break;
    case AST_OP_SHUTDOWN:
        snprintf(g->last_event, sizeof g->last_event, "the server is shutting down");
        break;
    default:
        break;
    }
}

/* --- input --------------------------------------------------------------------------------- */

/* A key while the chat line is open: Enter sends, Esc drops, Backspace
 * erases, printable ASCII is typed. */
static void chat_key(game *g, int ch)
{
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        if (g->len && ast_chat_say(&g->chat, g->line) != KAOS_OK)
            snprintf(g->last_event, sizeof g->last_event, "chat: not sent");
        g->typing = false;
        g->len = 0;
        g->line[0] = '\0';
    } else if (ch == 27) {
        g->typing = false;
        g->len = 0;
        g->line[0] = '\0';
    } else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && g->len) {
        g->line[--g->len] = '\0';
    } else if (ch >= 32 && ch < 127 && g->len < AST_CHAT_LINE_MAX) {
        g->line[g->len++] = (char)ch;
        g->line[g->len] = '\0';
    }
}

/* Reads every pending key; false when the player asked to quit. */
static bool read_keys(game *g, int64_t now)
{
    int ch;
    while ((ch = getch()) != ERR) {
        if (g->typing) {
            chat_key(g, ch);
            continue;
        }
        switch (ch) {
        case 't':
        case 'T':
        case '\n':
        case '\r':
        case KEY_ENTER:
            g->typing = true;
            break;
        case 'q':
        case 'Q':
            return false;
        case KEY_UP:
        case 'w':
        case 'W':
            g->hold_until[0] = now + HOLD_MS;
            break;
        case KEY_LEFT:
        case 'a':
        case 'A':
            g->hold_until[1] = now + HOLD_MS;
            break;
        case KEY_RIGHT:
        case 'd':
        case 'D':
            g->hold_until[2] = now + HOLD_MS;
            break;
        case ' ':
            g->hold_until[3] = now + FIRE_HOLD_MS;
            break;
        default:
            break;
        }
    }
    return true;
}

static uint8_t buttons(const game *g, int64_t now)
{
    static const uint8_t bits[4] = {AST_BTN_THRUST, AST_BTN_LEFT, AST_BTN_RIGHT, AST_BTN_FIRE};
    uint8_t b = 0;
    for (int i = 0; i < 4; i++)
        if (g->hold_until[i] > now) b |= bits[i];
    return b;
}

/* --- drawing ------------------------------------------------------------------------------- */

typedef struct view {
    int top, rows, cols; /* the field: rows below the top line, above the bottom line */
    double sx, sy;       /* cells per wire unit */
} view;

static void put(const view *v, int x, int y, chtype ch)
{
    x = ((x % v->cols) + v->cols) % v->cols; /* the world wraps, so does the drawing */
    y = ((y % v->rows) + v->rows) % v->rows;
    mvaddch(v->top + y, x, ch);
}

static void draw_asteroid(const view *v, const ast_thing *a, int scale, chtype attr)
{
    static const double radius[] = {0, 12, 22, 40};
    static const char glyph[] = {'?', 'o', 'O', '@'};
    int size = a->kind >= 1 && a->kind <= 3 ? a->kind : 1;
    double cx = a->x * v->sx, cy = a->y * v->sy;
    double rx = radius[size] * scale * v->sx, ry = radius[size] * scale * v->sy;
    chtype ch = (chtype)glyph[size] | attr;
    if (rx < 0.75 && ry < 0.75) {
        put(v, (int)cx, (int)cy, ch);
        return;
    }
    for (int y = (int)(cy - ry); y <= (int)(cy + ry); y++)
        for (int x = (int)(cx - rx); x <= (int)(cx + rx); x++) {
            double dx = (x + 0.5 - cx) / (rx > 0.5 ? rx : 0.5);
            double dy = (y + 0.5 - cy) / (ry > 0.5 ? ry : 0.5);
            if (dx * dx + dy * dy <= 1.0) put(v, x, y, ch);
        }
}

static chtype ship_glyph(uint8_t angle)
{
    /* 0 = right, 64 = down: the 8 compass points, clockwise on screen */
    static const char glyph[8] = {'>', '\\', 'v', '/', '<', '\\', '^', '/'};
    return (chtype)glyph[((angle + 16) >> 5) & 7];
}

static chtype pair(const game *g, int n)
{
    return g->color ? COLOR_PAIR(n) : 0;
}

static void draw_scoreboard(const game *g)
{
    const ast_player *p = &g->p;
    int order[AST_MAX_PLAYERS], n = 0;
    for (unsigned i = 0; i < p->snap.n_ships && n < AST_MAX_PLAYERS; i++)
        order[n++] = (int)i;
    for (int i = 1; i < n; i++) /* by score, highest first */
        for (int j = i; j > 0 && p->snap.ships[order[j]].score > p->snap.ships[order[j - 1]].score;
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int w = 24, x = COLS - w - 1;
    if (x < 0) return;
    attron(pair(g, PAIR_HUD));
    mvprintw(1, x, "%-*s", w, " SCORES");
    for (int i = 0; i < n && i + 2 < LINES - 1; i++) {
        const ast_ship *s = &p->snap.ships[order[i]];
        bool me = s->id == p->my_id;
        if (me) attron(A_BOLD);
        mvprintw(2 + i, x, " %c%-15.15s %6u ", me ? '*' : ' ', name_of(p, s->id),
                 (unsigned)s->score);
        if (me) attroff(A_BOLD);
    }
    attroff(pair(g, PAIR_HUD));
}

static void draw(game *g, int64_t now)
{
    erase();
    if (LINES < 5 || COLS < 20) {
        mvprintw(0, 0, "terminal too small");
        refresh();
        return;
    }
    ast_player *p = &g->p;
    const ast_snapshot *s = &p->snap;
    int scale = 16;
    view v = {.top = 1, .rows = LINES - 2, .cols = COLS};
    v.sx = (double)v.cols / (WORLD_W * scale);
    v.sy = (double)v.rows / (WORLD_H * scale);

    for (unsigned i = 0; p->have_snapshot && i < s->n_asteroids; i++)
        draw_asteroid(&v, &s->asteroids[i], scale, pair(g, PAIR_ROCK));
    for (unsigned i = 0; p->have_snapshot && i < s->n_bullets; i++) {
        const ast_thing *b = &s->bullets[i];
        chtype attr = b->kind == p->my_id ? A_BOLD : 0;
        put(&v, (int)(b->x * v.sx), (int)(b->y * v.sy), (chtype)'.' | attr | pair(g, PAIR_BULLET));
    }
    for (unsigned i = 0; p->have_snapshot && i < s->n_ships; i++) {
        const ast_ship *sh = &s->ships[i];
        if (!(sh->flags & AST_FLAG_ALIVE)) continue;
        bool mine = sh->id == p->my_id;
        /* invulnerable ships blink */
        if ((sh->flags & AST_FLAG_INVULNERABLE) && (now / 150) % 2) continue;
        chtype attr = mine ? A_BOLD | pair(g, PAIR_ME) : pair(g, PAIR_SHIP);
        put(&v, (int)(sh->x * v.sx), (int)(sh->y * v.sy), ship_glyph(sh->angle) | attr);
    }
    draw_scoreboard(g);
    /* the chat's last lines, newest lowest, above the bottom line */
    for (unsigned i = 0; i < AST_CHAT_LINES - 1 && LINES > 8; i++) {
        const char *l = ast_chat_line(&g->chat, i);
        if (l) mvprintw(LINES - 2 - (int)i, 0, "%.*s", COLS - 1, l);
    }

    attron(A_REVERSE);
    const ast_ship *mine = ast_player_ship(p);
    mvprintw(0, 0, "%-*s", COLS, "");
    mvprintw(0, 0, " ASTEROIDS  wave %u  you: %s  score %u  %s", (unsigned)s->wave,
             name_of(p, p->my_id), mine ? (unsigned)mine->score : 0u,
             mine && !(mine->flags & AST_FLAG_ALIVE) ? "(respawning...)" : "");
    mvprintw(LINES - 1, 0, "%-*s", COLS, "");
    if (g->typing) {
        mvprintw(LINES - 1, 0, " say: %.*s_", COLS > 8 ? COLS - 8 : 0, g->line);
    } else {
        const char *event = g->chat.error[0] ? g->chat.error : g->last_event;
        mvprintw(LINES - 1, 0, " %-.*s", COLS > 58 ? COLS - 58 : 0, event);
        if (COLS > 58)
            mvprintw(LINES - 1, COLS - 56, "arrows/WASD turn+thrust  space fire  t chat  q quit");
    }
    attroff(A_REVERSE);
    refresh();
}

/* --- main ---------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: kaos-asteroids-term [-k KEY | -i] [-h HOST] [-p PORT] [-m MATCH_ID | "
                    "-M REGION [-S SKILL]] [-u USERNAME]\n");
    return 2;
}

/* Connect and join before the screen switches, so errors stay readable. */
static bool join_match(game *g)
{
    ast_player *p = &g->p;
    p->may_find = true;
    int64_t deadline = ast_now_ms() + SETUP_MS;
    ast_state shown = AST_FAILED;
    while (!(p->state == AST_PLAYING && p->welcomed) && p->state != AST_FAILED &&
           ast_now_ms() < deadline) {
        if (p->state != shown) {
            shown = p->state;
            printf("%s...\n", ast_state_name(shown));
        }
        ast_player_poll(p, 10);
    }
    if (p->state == AST_PLAYING && p->welcomed) return true;
    fprintf(stderr, "kaos-asteroids-term: %s\n",
            p->error[0] ? p->error : "timed out joining a match");
    return false;
}

/* --- high scores ----------------------------------------------------------------------------- */

typedef struct highscores {
    int answers;
    bool failed;
    char top[10][96];
    size_t n_top;
    char mine[96];
} highscores;

static void format_record(char *out, size_t cap, const kaos_leaderboard_record *r)
{
    snprintf(out, cap, "%4lld. %-24s %8lld", (long long)r->rank, r->username, (long long)r->score);
}

static void on_top(kaos_client *c, const kaos_result *r, const kaos_leaderboard_record *recs,
                   size_t n, const kaos_leaderboard_record *owners, size_t n_owners,
                   const char *cursor, const char *prev_cursor, int64_t rank_count, void *ud)
{
    (void)c, (void)owners, (void)n_owners, (void)cursor, (void)prev_cursor, (void)rank_count;
    highscores *h = ud;
    h->answers++;
    if (r->code) {
        h->failed = true;
        return;
    }
    for (size_t i = 0; i < n && i < 10; i++)
        format_record(h->top[i], sizeof h->top[i], &recs[i]);
    h->n_top = n < 10 ? n : 10;
}

static void on_mine(kaos_client *c, const kaos_result *r, const kaos_leaderboard_record *recs,
                    size_t n, const kaos_leaderboard_record *owners, size_t n_owners,
                    const char *cursor, const char *prev_cursor, int64_t rank_count, void *ud)
{
    (void)c, (void)recs, (void)n, (void)cursor, (void)prev_cursor, (void)rank_count;
    highscores *h = ud;
    h->answers++;
    if (r->code) {
        h->failed = true;
        return;
    }
    if (n_owners) format_record(h->mine, sizeof h->mine, &owners[0]);
}

/* Leaves the match (the server submits the score), gives the queued write
 * a moment, then asks for the top 10 and the player's own record. */
static void show_highscores(game *g)
{
    kaos_client *c = g->p.client;
    if (g->p.handle) kaos_client_match_leave(c, g->p.handle, NULL, NULL);
    for (int64_t end = ast_now_ms() + 500; ast_now_ms() < end;)
        ast_player_poll(&g->p, 10);
    static const char board[] = "asteroids_highscores";
    highscores h = {0};
    const char *owners[] = {g->p.user_id};
    if (kaos_client_leaderboard_records_list(c, board, NULL, 0, 10, NULL, 0, on_top, &h) <= 0 ||
        kaos_client_leaderboard_records_list(c, board, owners, 1, 0, NULL, 0, on_mine, &h) <= 0)
        return;
    for (int64_t end = ast_now_ms() + 3000; h.answers < 2 && ast_now_ms() < end;)
        ast_player_poll(&g->p, 10);
    if (h.answers < 2 || h.failed) {
        printf("high scores unavailable\n");
        return;
    }
    printf("asteroids high scores\n");
    for (size_t i = 0; i < h.n_top; i++)
        printf("%s\n", h.top[i]);
    printf("you: %s\n", h.mine[0] ? h.mine : "no score yet");
}

static void screen_start(game *g)
{
    initscr();
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    g->color = has_colors();
    if (g->color) {
        start_color();
        use_default_colors();
        init_pair(PAIR_ME, COLOR_GREEN, -1);
        init_pair(PAIR_SHIP, COLOR_CYAN, -1);
        init_pair(PAIR_ROCK, COLOR_YELLOW, -1);
        init_pair(PAIR_BULLET, COLOR_WHITE, -1);
        init_pair(PAIR_HUD, COLOR_WHITE, COLOR_BLUE);
    }
}

int main(int argc, char **argv)
{
    ast_player_config cfg = {.host = "127.0.0.1", .port = 7350, .device_prefix = "term"};
    int opt;
    while ((opt = getopt(argc, argv, "u:" AST_PLAYER_GETOPT)) != -1) {
        switch (opt) {
        case 'u':
            cfg.username = optarg;
            break;
        default:
            if (ast_player_option(&cfg, opt, optarg) != 1) return usage();
        }
    }
    if (optind != argc) return usage();
    if (!ast_player_have_key(&cfg, "kaos-asteroids-term")) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);

    static game g;
    cfg.on_event = on_event;
    cfg.ud = &g;
    if (ast_player_start(&g.p, &cfg) < 0) {
        fprintf(stderr, "kaos-asteroids-term: %s\n", g.p.error);
        return 1;
    }
    if (!join_match(&g)) {
        ast_player_destroy(&g.p);
        return 1;
    }
    /* The chat line is a nicety: a refusal shows on the status line. */
    if (ast_chat_start(&g.chat, g.p.client, g.p.match_id) != KAOS_OK)
        snprintf(g.chat.error, sizeof g.chat.error, "chat: cannot join the match's room");
    screen_start(&g);
    int64_t now = ast_now_ms(), next_input = now, next_frame = now;
    bool quit = false;
    while (!quit && g.p.state == AST_PLAYING) {
        now = ast_now_ms();
        quit = !read_keys(&g, now);
        if (now >= next_input) {
            ast_player_send_input(&g.p, buttons(&g, now));
            next_input += 1000 / (g.p.tick_rate ? g.p.tick_rate : 30);
            if (next_input < now) next_input = now;
        }
        if (now >= next_frame) {
            draw(&g, now);
            next_frame = now + FRAME_MS;
        }
        int64_t next = next_frame < next_input ? next_frame : next_input;
        int64_t wait = next - ast_now_ms();
        ast_player_poll(&g.p, wait > 0 ? (uint32_t)wait : 0);
    }
    endwin();

    int status = quit ? 0 : 1;
    if (!quit) fprintf(stderr, "kaos-asteroids-term: %s\n", g.p.error);
    const ast_ship *me = ast_player_ship(&g.p);
    printf("final score %u, %llu deaths, %llu kills, %llu snapshots\n",
           me ? (unsigned)me->score : 0u, (unsigned long long)g.p.deaths,
           (unsigned long long)g.p.kills, (unsigned long long)g.p.snapshots);
    if (quit) show_highscores(&g);
    ast_player_stop(&g.p);
    for (int64_t end = ast_now_ms() + 1000; !ast_player_finished(&g.p) && ast_now_ms() < end;)
        ast_player_poll(&g.p, 10);
    ast_player_destroy(&g.p);
    return status;
}
