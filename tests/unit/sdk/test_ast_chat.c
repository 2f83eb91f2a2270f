/* The asteroids chat line's pure helpers (client-sdk/examples/
 * asteroids_common/ast_chat.h): the room named after a match, a typed line
 * as a JSON object and back, including the characters JSON escapes, and
 * what does not fit or is not there. tests/e2e/test_asteroids.c runs the
 * chat itself with bots in a match. */
#include "ast_chat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void the_room_is_named_after_the_match_uuid(void **state)
{
    (void)state;
    char room[72];
    ast_chat_room("0a1b2c3d-0000-4000-8000-000000000001.node-1", room, sizeof room);
    assert_string_equal(room, "asteroids 0a1b2c3d-0000-4000-8000-000000000001");
    ast_chat_room("short", room, sizeof room);
    assert_string_equal(room, "asteroids short");
    assert_true(strlen(room) <= 64); /* a room name's limit */
}

static void a_line_survives_encoding_and_decoding(void **state)
{
    (void)state;
    char json[256], back[128];
    assert_true(ast_chat_encode("gg \"all\" \\o/\tnow", json, sizeof json));
    assert_string_equal(json, "{\"text\":\"gg \\\"all\\\" \\\\o/\\u0009now\"}");
    assert_true(ast_chat_text(json, back, sizeof back));
    assert_string_equal(back, "gg \"all\" \\o/?now");
    /* what the server returns: jsonb's spacing */
    assert_true(ast_chat_text("{\"n\": 1, \"text\": \"hi \\n there\"}", back, sizeof back));
    assert_string_equal(back, "hi   there");
    /* truncated to the buffer, still a line */
    assert_true(ast_chat_text("{\"text\":\"abcdef\"}", back, 4));
    assert_string_equal(back, "abc");
}

static void what_does_not_fit_or_is_not_there_is_refused(void **state)
{
    (void)state;
    char small[12], back[32];
    assert_false(ast_chat_encode("hello world", small, sizeof small));
    assert_false(ast_chat_text("{\"other\":\"x\"}", back, sizeof back));
    assert_false(ast_chat_text("{\"text\":5}", back, sizeof back));
    assert_false(ast_chat_text("{\"text\":\"unterminated", back, sizeof back));
    assert_false(ast_chat_text(NULL, back, sizeof back));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_room_is_named_after_the_match_uuid),
        cmocka_unit_test(a_line_survives_encoding_and_decoding),
        cmocka_unit_test(what_does_not_fit_or_is_not_there_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
