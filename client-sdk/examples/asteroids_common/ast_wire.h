/* ast_wire: the payloads of the asteroids match (lua-examples/asteroids.lua),
 * as docs/asteroids.md lays them out byte by byte: little-endian, no padding.
 *
 * Decoders check every length before reading and return 0 or -1 (too short,
 * too many records, an unknown op code); they never read past `len`. Shared
 * by the asteroids examples; uses nothing from the SDK. */
#ifndef AST_WIRE_H
#define AST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define AST_PROTOCOL      1
#define AST_MAX_PLAYERS   16
#define AST_MAX_ASTEROIDS 64 /* the match caps at 40; room for a later version */
#define AST_MAX_BULLETS   64 /* the match caps at 48 */
#define AST_NAME_MAX      64

enum {
    AST_OP_INPUT = 1,
    AST_OP_SNAPSHOT = 10,
    AST_OP_WELCOME = 20,
    AST_OP_JOINED = 21,
    AST_OP_LEFT = 22,
    AST_OP_DEATH = 23,
    AST_OP_ASTEROID = 24,
    AST_OP_SCORE = 25,
    AST_OP_WAVE = 26,
    AST_OP_RESPAWN = 27,
    AST_OP_SHUTDOWN = 28,
};

enum { AST_BTN_THRUST = 1, AST_BTN_LEFT = 2, AST_BTN_RIGHT = 4, AST_BTN_FIRE = 8 };
enum { AST_FLAG_ALIVE = 1, AST_FLAG_INVULNERABLE = 2, AST_FLAG_THRUST = 4 };
enum { AST_CAUSE_ASTEROID = 1, AST_CAUSE_BULLET = 2 };

/* Positions stay in wire units (world units x scale, 16 today). */
typedef struct ast_ship {
    uint8_t id, flags, angle, last_seq;
    uint16_t x, y, score;
} ast_ship;

typedef struct ast_thing { /* an asteroid (kind = size 1-3) or a bullet (kind = owner id) */
    uint16_t x, y;
    uint8_t kind;
} ast_thing;

typedef struct ast_snapshot {
    uint32_t tick;
    uint16_t wave;
    uint8_t n_ships, n_asteroids, n_bullets;
    ast_ship ships[AST_MAX_PLAYERS];
    ast_thing asteroids[AST_MAX_ASTEROIDS];
    ast_thing bullets[AST_MAX_BULLETS];
} ast_snapshot;

/* One reliable event, flat: which fields are set depends on `op`. */
typedef struct ast_event {
    int64_t op;
    uint8_t id;                  /* WELCOME (yours), JOINED, LEFT, DEATH (victim), SCORE, RESPAWN,
                                    ASTEROID (shooter, 0 = a crash) */
    uint8_t killer;              /* DEATH, 0 = none */
    uint8_t cause;               /* DEATH: AST_CAUSE_* */
    uint8_t size;                /* ASTEROID */
    uint16_t x, y;               /* ASTEROID, RESPAWN */
    uint16_t score;              /* JOINED, SCORE */
    uint32_t slot;               /* JOINED */
    uint16_t wave;               /* WAVE */
    uint8_t count;               /* WAVE: large asteroids spawned */
    uint16_t grace;              /* SHUTDOWN: seconds */
    char name[AST_NAME_MAX + 1]; /* JOINED */
    /* WELCOME */
    uint8_t version, tick_rate, max_players, scale;
    uint16_t world_w, world_h;
} ast_event;

int ast_snapshot_decode(const uint8_t *data, size_t len, ast_snapshot *out);
/* Op codes 20-28. */
int ast_event_decode(int64_t op, const uint8_t *data, size_t len, ast_event *out);
/* Writes the 2-byte INPUT payload into out; returns its length. */
size_t ast_input_encode(uint8_t out[2], uint8_t buttons, uint8_t seq);

#endif
