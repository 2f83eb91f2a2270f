/* ast_wire: see ast_wire.h. A cursor over the bytes; every read checks the
 * remaining length first. */
#include "ast_wire.h"

#include <stdbool.h>
#include <string.h>

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static bool need(const reader *r, size_t n)
{
    return r->left >= n;
}

static uint8_t u8(reader *r)
{
    uint8_t v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

static uint16_t u16(reader *r)
{
    uint16_t v = (uint16_t)(r->p[0] | (r->p[1] << 8));
    r->p += 2;
    r->left -= 2;
    return v;
}

static uint32_t u32(reader *r)
{
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

int ast_snapshot_decode(const uint8_t *data, size_t len, ast_snapshot *out)
{
    reader r = {data, len};
    if (!need(&r, 9)) return -1;
    out->tick = u32(&r);
    out->wave = u16(&r);
    out->n_ships = u8(&r);
    out->n_asteroids = u8(&r);
    out->n_bullets = u8(&r);
    if (out->n_ships > AST_MAX_PLAYERS || out->n_asteroids > AST_MAX_ASTEROIDS ||
        out->n_bullets > AST_MAX_BULLETS)
        return -1;
    if (!need(&r, 10u * out->n_ships + 5u * out->n_asteroids + 5u * out->n_bullets)) return -1;
    for (unsigned i = 0; i < out->n_ships; i++) {
        ast_ship *s = &out->ships[i];
        s->id = u8(&r);
        s->flags = u8(&r);
        s->x = u16(&r);
        s->y = u16(&r);
        s->angle = u8(&r);
        s->score = u16(&r);
        s->last_seq = u8(&r);
    }
    for (unsigned i = 0; i < out->n_asteroids; i++) {
        out->asteroids[i].x = u16(&r);
        out->asteroids[i].y = u16(&r);
        out->asteroids[i].kind = u8(&r);
    }
    for (unsigned i = 0; i < out->n_bullets; i++) {
        out->bullets[i].x = u16(&r);
        out->bullets[i].y = u16(&r);
        out->bullets[i].kind = u8(&r);
    }
    return 0;
}

int ast_event_decode(int64_t op, const uint8_t *data, size_t len, ast_event *out)
{
    memset(out, 0, sizeof *out);
    out->op = op;
    reader r = {data, len};
    switch (op) {
    case AST_OP_WELCOME:
        if (!need(&r, 9)) return -1;
        out->version = u8(&r);
        out->id = u8(&r);
        out->world_w = u16(&r);
        out->world_h = u16(&r);
        out->tick_rate = u8(&r);
        out->max_players = u8(&r);
        out->scale = u8(&r);
        return 0;
    case AST_OP_JOINED: {
        if (!need(&r, 8)) return -1;
        out->id = u8(&r);
        out->slot = u32(&r);
        out->score = u16(&r);
        size_t n = u8(&r);
        if (!need(&r, n) || n > AST_NAME_MAX) return -1;
        memcpy(out->name, r.p, n);
        out->name[n] = '\0';
        return 0;
    }
    case AST_OP_LEFT:
        if (!need(&r, 1)) return -1;
        out->id = u8(&r);
        return 0;
    case AST_OP_DEATH:
        if (!need(&r, 3)) return -1;
        out->id = u8(&r);
        out->killer = u8(&r);
        out->cause = u8(&r);
        return 0;
    case AST_OP_ASTEROID:
        if (!need(&r, 6)) return -1;
        out->id = u8(&r);
        out->size = u8(&r);
        out->x = u16(&r);
        out->y = u16(&r);
        return 0;
    case AST_OP_SCORE:
        if (!need(&r, 3)) return -1;
        out->id = u8(&r);
        out->score = u16(&r);
        return 0;
    case AST_OP_WAVE:
        if (!need(&r, 3)) return -1;
        out->wave = u16(&r);
        out->count = u8(&r);
        return 0;
    case AST_OP_RESPAWN:
        if (!need(&r, 5)) return -1;
        out->id = u8(&r);
        out->x = u16(&r);
        out->y = u16(&r);
        return 0;
    case AST_OP_SHUTDOWN:
        if (!need(&r, 2)) return -1;
        out->grace = u16(&r);
        return 0;
    default:
        return -1;
    }
}

size_t ast_input_encode(uint8_t out[2], uint8_t buttons, uint8_t seq)
{
    out[0] = buttons;
    out[1] = seq;
    return 2;
}
