/* ast_player: one asteroids player on one kaos_client — connect, authenticate
 * with a fresh device id, find or create a match through the
 * asteroids_find_or_create RPC, or through the matchmaker (-M REGION: a ticket
 * with game, region and skill; the server's matched hook creates the
 * match), or join a given id; then keep the game state
 * the match sends: the last snapshot, the roster, counters.
 *
 * The flow is a state machine driven by the SDK's callbacks inside
 * ast_player_poll; the caller owns the loop and the input. A refused join
 * (the match filled up or ended meanwhile) goes back to the RPC, up to 5
 * times; a find or join refused with UNAVAILABLE (the server is shedding
 * load: "try again later") is tried again after 100 ms, doubling, 5 times.
 * Single-threaded like the SDK: one thread uses a player at a time.
 * Written against kaos.h only. */
#ifndef AST_PLAYER_H
#define AST_PLAYER_H

#include "ast_wire.h"

#include <kaos.h>

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    AST_CONNECTING,
    AST_AUTHENTICATING,
    AST_WAITING, /* authenticated; finds a match once may_find is set */
    AST_FINDING, /* the RPC is out */
    AST_JOINING,
    AST_PLAYING,
    AST_LEAVING, /* disconnect sent */
    AST_DONE,    /* left and disconnected as asked */
    AST_FAILED,  /* see error */
} ast_state;

typedef struct ast_player ast_player;

typedef struct ast_player_config {
    const char *host;
    uint16_t port;
    const char *server_key; /* 64 hex digits; NULL needs insecure */
    bool insecure;
    const char *match_id; /* join this; NULL = asteroids_find_or_create */
    const char *region;   /* not NULL: find through the matchmaker in this region */
    double skill;         /* the matchmaker ticket's skill (0 = 1000) */
    const char *username; /* NULL = the server picks one */
    const char *device_prefix;
    /* Optional: every reliable event, after the player updated its own state. */
    void (*on_event)(ast_player *p, const ast_event *ev, void *ud);
    void *ud;
} ast_player_config;

typedef struct ast_roster_entry {
    bool present;
    uint32_t slot;
    uint16_t score;
    char name[AST_NAME_MAX + 1];
} ast_roster_entry;

struct ast_player {
    ast_player_config cfg;
    kaos_client *client;
    ast_state state;
    bool may_find; /* set by the caller; bots join one after another */
    char error[256];
    char user_id[40]; /* the session's, once logged in */
    char match_id[128];
    uint32_t handle;
    int attempts;
    int busy_tries; /* finds and joins refused with UNAVAILABLE so far */
    int64_t retry_at_ms;
    /* from the match */
    bool welcomed;
    uint8_t my_id, tick_rate, max_players;
    ast_roster_entry roster[AST_MAX_PLAYERS + 1]; /* by player id */
    bool have_snapshot;
    ast_snapshot snap;
    char ended[128]; /* MatchEnd reason once the match ended */
    /* input */
    uint8_t seq;
    uint8_t acked_seq;
    int64_t sent_ms[256]; /* when each seq left, for the echo in the snapshot */
    /* counters since joining */
    int64_t joined_ms;
    uint64_t snapshots, events, bytes, inputs, malformed, deaths, kills;
    int64_t rtt_sum_ms;
    uint64_t rtt_n;
};

int64_t ast_now_ms(void);

/* The connection options both demos take, for getopt: -k KEY, -i (insecure
 * dev mode), -h HOST, -p PORT, -m MATCH_ID. */
#define AST_PLAYER_GETOPT "k:ih:p:m:M:S:"
/* Applies one of them to cfg: 1 when opt was one (and its value good), -1
 * for a bad value, 0 when opt is not one of them. */
int ast_player_option(ast_player_config *cfg, int opt, const char *arg);
/* After the options: the key from KAOS_SERVER_KEY when -k was not given.
 * False, with a message to stderr naming prog, when there is still no key
 * and no -i. */
bool ast_player_have_key(ast_player_config *cfg, const char *prog);

/* Creates the client and starts connecting. 0, or -1 with p->error set. */
int ast_player_start(ast_player *p, const ast_player_config *cfg);
/* Polls the client (waiting at most timeout_ms) and runs the retries. */
void ast_player_poll(ast_player *p, uint32_t timeout_ms);
/* Sends INPUT with the next seq (unreliable). Only while playing. */
int ast_player_send_input(ast_player *p, uint8_t buttons);
/* Disconnects (the server takes the player out of the match). */
void ast_player_stop(ast_player *p);
bool ast_player_finished(const ast_player *p);
/* Accepts a zeroed or stopped player. */
void ast_player_destroy(ast_player *p);
const char *ast_state_name(ast_state s);
/* This player's ship in the last snapshot, or NULL. */
const ast_ship *ast_player_ship(const ast_player *p);

#endif
