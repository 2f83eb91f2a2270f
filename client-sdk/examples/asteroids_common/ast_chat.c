/* ast_chat: the asteroids chat line (ast_chat.h). The room is a plain chat
 * room: everyone in the match joins the same name, so the server's room is
 * the match's conversation without the match service knowing of chat. */
#include "ast_chat.h"

#include <stdio.h>
#include <string.h>

void ast_chat_room(const char *match_id, char *out, size_t cap)
{
    size_t n = strcspn(match_id, ".");
    if (n > 36) n = 36;
    snprintf(out, cap, "asteroids %.*s", (int)n, match_id);
}

bool ast_chat_encode(const char *text, char *out, size_t cap)
{
    size_t o = 0;
    int w = snprintf(out, cap, "{\"text\":\"");
    if (w < 0 || (size_t)w >= cap) return false;
    o = (size_t)w;
    for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\')
            snprintf(esc, sizeof esc, "\\%c", *s);
        else if (*s < 0x20)
            snprintf(esc, sizeof esc, "\\u%04x", *s);
        else
            snprintf(esc, sizeof esc, "%c", *s);
        size_t len = strlen(esc);
        if (o + len + 3 > cap) return false;
        memcpy(out + o, esc, len);
        o += len;
    }
    memcpy(out + o, "\"}", 3);
    return true;
}

bool ast_chat_text(const char *content, char *out, size_t cap)
{
    const char *k = content ? strstr(content, "\"text\"") : NULL;
    if (!k || cap == 0) return false;
    k += 6;
    while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')
        k++;
    if (*k++ != ':') return false;
    while (*k == ' ' || *k == '\t' || *k == '\n' || *k == '\r')
        k++;
    if (*k++ != '"') return false;
    size_t o = 0;
    for (; *k && *k != '"'; k++) {
        char c = *k;
        if (c == '\\') {
            k++;
            switch (*k) {
            case 'n':
                c = ' ';
                break; /* one line on screen */
            case 't':
                c = ' ';
                break;
            case 'u':
                for (int i = 0; i < 4 && k[1]; i++)
                    k++;
                c = '?';
                break;
            case '\0':
                return false;
            default:
                c = *k;
                break; /* \" \\ \/ */
            }
        }
        if (o + 1 < cap) out[o++] = c;
    }
    out[o] = '\0';
    return *k == '"';
}

static void on_joined(kaos_client *c, const kaos_result *r, const kaos_channel *ch, void *ud)
{
    (void)c;
    ast_chat *chat = ud;
    if (r->code != KAOS_OK) {
        snprintf(chat->error, sizeof chat->error, "chat: %s", r->message);
        return;
    }
    snprintf(chat->channel_id, sizeof chat->channel_id, "%s", ch->id);
    chat->joined = true;
}

static void on_sent(kaos_client *c, const kaos_result *r, const kaos_channel_message *m, void *ud)
{
    (void)c, (void)m;
    ast_chat *chat = ud;
    if (r->code != KAOS_OK) snprintf(chat->error, sizeof chat->error, "chat: %s", r->message);
}

static void on_message(kaos_client *c, const kaos_channel_message *m, void *ud)
{
    (void)c;
    ast_chat *chat = ud;
    char text[AST_CHAT_LINE_MAX + 1];
    if (!chat->joined || strcmp(m->channel_id, chat->channel_id) || m->code != 0 ||
        !ast_chat_text(m->content, text, sizeof text))
        return;
    snprintf(chat->lines[chat->n_lines % AST_CHAT_LINES], sizeof chat->lines[0], "%.128s: %s",
             m->username, text);
    chat->n_lines++;
}

int ast_chat_start(ast_chat *chat, kaos_client *c, const char *match_id)
{
    memset(chat, 0, sizeof *chat);
    chat->client = c;
    ast_chat_room(match_id, chat->room, sizeof chat->room);
    kaos_client_on_channel_message(c, on_message, chat);
    int rc =
        kaos_client_channel_join(c, chat->room, KAOS_CHANNEL_ROOM, false, false, on_joined, chat);
    return rc < 0 ? rc : KAOS_OK;
}

int ast_chat_say(ast_chat *chat, const char *text)
{
    char content[AST_CHAT_LINE_MAX * 6 + 16];
    if (!chat->joined) return KAOS_ERR_CLOSED;
    if (!*text || strlen(text) > AST_CHAT_LINE_MAX ||
        !ast_chat_encode(text, content, sizeof content))
        return KAOS_ERR_INVALID_ARGUMENT;
    int rc =
        kaos_client_channel_message_send(chat->client, chat->channel_id, content, on_sent, chat);
    return rc < 0 ? rc : KAOS_OK;
}

const char *ast_chat_line(const ast_chat *chat, unsigned i)
{
    if (i >= chat->n_lines || i >= AST_CHAT_LINES) return NULL;
    return chat->lines[(chat->n_lines - 1 - i) % AST_CHAT_LINES];
}
