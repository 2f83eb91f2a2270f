/* ast_chat: the asteroids chat line — players in the same match talk in a
 * chat room named after the match (docs/chat.md, docs/asteroids.md).
 *
 * ast_chat_start joins the room "asteroids <match uuid>" (not stored, not
 * hidden) on the player's client and registers the client's channel
 * message event; ast_chat_say sends one line as {"text": "..."}; the last
 * AST_CHAT_LINES lines received ("name: text", the player's own included)
 * are kept for drawing. The pure helpers (room name, JSON text in and out)
 * are separate so they can be tested without a server. Single-threaded,
 * like the SDK; written against kaos.h only. */
#ifndef AST_CHAT_H
#define AST_CHAT_H

#include <kaos.h>

#include <stdbool.h>
#include <stddef.h>

#define AST_CHAT_LINES    4
#define AST_CHAT_LINE_MAX 160 /* bytes of text a player types */

typedef struct ast_chat {
    kaos_client *client;
    char room[72];
    char channel_id[96]; /* set once joined */
    bool joined;
    char error[160]; /* the last refusal, for the status line */
    char lines[AST_CHAT_LINES][AST_CHAT_LINE_MAX + 140];
    unsigned n_lines; /* received so far; lines[(n - 1) % AST_CHAT_LINES] is the last */
} ast_chat;

/* The room of a match: "asteroids " and the match id up to its first dot
 * (the UUID), into out (cap bytes, at least 48). */
void ast_chat_room(const char *match_id, char *out, size_t cap);
/* {"text": "<text>"} with text escaped as a JSON string; false when it does
 * not fit in cap. */
bool ast_chat_encode(const char *text, char *out, size_t cap);
/* The "text" string of a message's JSON content, unescaped (\uXXXX outside
 * ASCII as '?'), into out; false when there is none. */
bool ast_chat_text(const char *content, char *out, size_t cap);

/* Joins the room of match_id on c; the answer and every message arrive
 * through the client's poll. KAOS_OK or a negative KAOS_ERR_*. */
int ast_chat_start(ast_chat *chat, kaos_client *c, const char *match_id);
/* Sends a line (1..AST_CHAT_LINE_MAX bytes) once joined. */
int ast_chat_say(ast_chat *chat, const char *text);
/* The i-th most recent line (0 = the last), NULL when there is none. */
const char *ast_chat_line(const ast_chat *chat, unsigned i);

#endif
