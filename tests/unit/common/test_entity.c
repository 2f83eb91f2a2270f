/* kn_entity: the one description of each entity (kn_entities.h) against
 * the proto messages, and the generic copies built from it: every table
 * (the services' and the SDK's) matches its message field for field; C ->
 * proto -> bytes -> proto -> C gives back every field; the bytes are those
 * the hand-written copies used to send; NULL text travels as ""; views are
 * never NULL; nothing allocates. */
#include "failalloc.h"
#include "kaos.h"
#include "kn_account.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_match.h"
#include "kn_relay.h"
#include "kn_storage.h"
#include "kn_friends.h"
#include "kn_groups.h"
#include "kn_leaderboard.h"
#include "kn_tournament.h"
#include "kn_notify.h"
#include "kn_chat.h"

#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The SDK's tables (client-sdk/src/client_internal.h, defined in dispatch.c). */
extern const kn_entity kaos_client__presence_entity;
extern const kn_entity kaos_client__user_entity;
extern const kn_entity kaos_client__storage_object_entity;
extern const kn_entity kaos_client__storage_ack_entity;
extern const kn_entity kaos_client__notification_entity;
extern const kn_entity kaos_client__group_entity;
extern const kn_entity kaos_client__group_user_entity;
extern const kn_entity kaos_client__user_group_entity;
extern const kn_entity kaos_client__channel_message_entity;
extern const kn_entity kaos_client__leaderboard_record_entity;
extern const kn_entity kaos_client__tournament_entity;

/* Room for any of the entity messages, which are a few pointers and numbers. */
typedef union message_buf {
    max_align_t align;
    char bytes[512];
} message_buf;

static void every_table_matches_its_message_field_for_field(void **state)
{
    const kn_entity *tables[] = {
        &kn_user_entity,
        &kn_storage_object_entity,
        &kn_storage_ack_entity,
        &kn_friend_entity,
        &kn_notification_entity,
        &kn_group_entity,
        &kn_group_user_entity,
        &kn_user_group_entity,
        &kn_chat_message_entity,
        &kn_match_presence_entity,
        &kn_relay_member_entity,
        &kaos_client__presence_entity,
        &kaos_client__user_entity,
        &kaos_client__storage_object_entity,
        &kaos_client__storage_ack_entity,
        &kaos_client__notification_entity,
        &kaos_client__group_entity,
        &kaos_client__group_user_entity,
        &kaos_client__user_group_entity,
        &kaos_client__channel_message_entity,
        &kn_leaderboard_entity,
        &kn_leaderboard_record_entity,
        &kaos_client__leaderboard_record_entity,
        &kn_tournament_entity,
        &kaos_client__tournament_entity,
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char msg[256] = "";
        if (kn_entity_check(tables[i], msg, sizeof msg) != KN_OK) fail_msg("%s", msg);
        assert_true(tables[i]->desc->sizeof_message <= sizeof(message_buf));
    }
}

/* A proto field that no table maps and that is not listed as unmapped fails
 * the check: that is what stops a new proto field from being forgotten. */
#define KN_PARTIAL_PROTO kaos__v1__presence__descriptor
#define KN_PARTIAL_UNMAPPED
#define KN_PARTIAL_FIELDS(X, T) X(T, slot, UINT32) X(T, user_id, STRING)
#define KN_LISTED_PROTO         kaos__v1__presence__descriptor
#define KN_LISTED_UNMAPPED      "session_id", "username",
#define KN_LISTED_FIELDS(X, T)  KN_PARTIAL_FIELDS(X, T)
#define KN_WRONG_PROTO          kaos__v1__presence__descriptor
#define KN_WRONG_UNMAPPED       "user_id", "session_id", "username",
#define KN_WRONG_FIELDS(X, T)   X(T, slot, INT64)

typedef struct partial {
    uint32_t slot;
    const char *user_id;
} partial;
typedef struct wrong {
    int64_t slot;
} wrong;

KN_ENTITY_DEFINE(partial_entity, partial, PARTIAL);
KN_ENTITY_DEFINE(listed_entity, partial, LISTED);
KN_ENTITY_DEFINE(wrong_entity, wrong, WRONG);

static void a_proto_field_neither_mapped_nor_listed_fails_the_check(void **state)
{
    char msg[256] = "";
    assert_int_equal(kn_entity_check(&partial_entity, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "PARTIAL: proto field session_id is not mapped (map it or list it as "
                             "unmapped)");
    assert_int_equal(kn_entity_check(&listed_entity, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_entity_check(&wrong_entity, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_string_equal(msg, "WRONG: field slot is not a singular int64 field of kaos.v1.Presence");
}

/* obj -> message -> bytes -> message -> back; returns the decoded message,
 * which back's pointer fields borrow (free it after comparing). */
static ProtobufCMessage *round_trip(const kn_entity *e, const void *obj, void *back)
{
    message_buf m;
    kn_entity_to_proto(e, obj, &m);
    size_t n = protobuf_c_message_get_packed_size((ProtobufCMessage *)&m);
    uint8_t *bytes = malloc(n + 1);
    assert_non_null(bytes);
    assert_int_equal(protobuf_c_message_pack((ProtobufCMessage *)&m, bytes), n);
    ProtobufCMessage *got = protobuf_c_message_unpack(e->desc, NULL, n, bytes);
    free(bytes);
    assert_non_null(got);
    assert_int_equal(kn_entity_from_proto(e, got, back), KN_OK);
    return got;
}

/* Every field of the entity equal in a and b, compared through the table. */
static void assert_same_fields(const kn_entity *e, const void *a, const void *b)
{
    for (size_t i = 0; i < e->n_fields; i++) {
        const kn_entity_field *f = &e->fields[i];
        if (f->kind == KN_FIELD_STRING || f->kind == KN_FIELD_JSON)
            assert_string_equal(kn_entity_text(f, a), kn_entity_text(f, b));
        else
            assert_int_equal(kn_entity_integer(f, a), kn_entity_integer(f, b));
    }
}

static void a_user_survives_the_wire_with_every_field(void **state)
{
    kn_user u = {
        .id = "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
        .username = "alice",
        .display_name = "Alice A.",
        .avatar_url = "https://a.example/a.png",
        .lang_tag = "fr",
        .location = "Lyon",
        .timezone = "Europe/Paris",
        .metadata = "{\"level\": 3}",
        .create_time = 1700000000,
        .update_time = -1700000001,
    };
    kn_user back;
    memset(&back, 0, sizeof back);
    ProtobufCMessage *m = round_trip(&kn_user_entity, &u, &back);
    assert_same_fields(&kn_user_entity, &u, &back);
    assert_string_equal(back.id, u.id);
    assert_string_equal(back.timezone, "Europe/Paris");
    assert_int_equal(back.update_time, -1700000001);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void a_chat_message_survives_the_wire_with_every_field(void **state)
{
    (void)state;
    kn_chat_message m = {
        .channel_id =
            "4.0a1b2c3d-0000-4000-8000-000000000001.0a1b2c3d-0000-4000-8000-000000000002.",
        .message_id = "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
        .code = 7,
        .sender_id = "0a1b2c3d-0000-4000-8000-000000000001",
        .username = "alice",
        .content = "{\"text\": \"hi\"}",
        .create_time_ms = 1700000000123,
        .update_time_ms = 1700000000456,
        .persistent = true,
        .sequence = 42,
        .room_name = "r",
        .group_id = "g",
        .user_id_one = "0a1b2c3d-0000-4000-8000-000000000001",
        .user_id_two = "0a1b2c3d-0000-4000-8000-000000000002",
    };
    kn_chat_message back;
    memset(&back, 0, sizeof back);
    ProtobufCMessage *pm = round_trip(&kn_chat_message_entity, &m, &back);
    assert_same_fields(&kn_chat_message_entity, &m, &back);
    assert_int_equal(back.sequence, 42);
    assert_true(back.persistent);
    protobuf_c_message_free_unpacked(pm, NULL);
}

static void a_storage_object_and_its_ack_survive_the_wire(void **state)
{
    kn_storage_object o = {
        .collection = "saves",
        .key = "slot1",
        .user_id = "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
        .version = "0123456789abcdef0123456789abcdef",
        .value = "{\"hp\": 10}",
        .value_len = 10,
        .permission_read = 2,
        .permission_write = 1,
        .create_time_ms = 1700000000123,
        .update_time_ms = 1700000000456,
    };
    kn_storage_object back;
    memset(&back, 0, sizeof back);
    ProtobufCMessage *m = round_trip(&kn_storage_object_entity, &o, &back);
    assert_same_fields(&kn_storage_object_entity, &o, &back);
    assert_string_equal(back.value, "{\"hp\": 10}");
    assert_int_equal(back.permission_read, 2);
    protobuf_c_message_free_unpacked(m, NULL);

    kn_storage_ack a = {"saves", "slot1", "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
                        "0123456789abcdef0123456789abcdef"};
    kn_storage_ack ack_back;
    memset(&ack_back, 0, sizeof ack_back);
    m = round_trip(&kn_storage_ack_entity, &a, &ack_back);
    assert_memory_equal(&ack_back, &a, sizeof a); /* all inline text */
    protobuf_c_message_free_unpacked(m, NULL);

    kn_friend f = {.state = 2, .update_time = 1733600000};
    kn_friend f_back;
    memset(&f_back, 0, sizeof f_back);
    m = round_trip(&kn_friend_entity, &f, &f_back);
    assert_int_equal(f_back.state, 2);
    assert_int_equal(f_back.update_time, 1733600000);
    protobuf_c_message_free_unpacked(m, NULL);

    kn_group g = {"6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
                  "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4c",
                  "Dragons",
                  "fly",
                  "http://a/b.png",
                  "fr",
                  "{\"x\": 1}",
                  true,
                  7,
                  50,
                  1733600000,
                  1733600001};
    kn_group g_back;
    memset(&g_back, 0, sizeof g_back);
    m = round_trip(&kn_group_entity, &g, &g_back);
    assert_same_fields(&kn_group_entity, &g, &g_back);
    assert_true(g_back.open);
    assert_int_equal(g_back.max_count, 50);
    protobuf_c_message_free_unpacked(m, NULL);
    kn_leaderboard_record lr = {"asteroids_highscores",
                                "6f1c2b9e-3a4d-4e5f-8a7b-9c0d1e2f3a4b",
                                "ace",
                                -42,
                                7,
                                3,
                                "{\"ship\": 2}",
                                1733600000,
                                1733600001,
                                1733700000,
                                12};
    kn_leaderboard_record lr_back;
    memset(&lr_back, 0, sizeof lr_back);
    m = round_trip(&kn_leaderboard_record_entity, &lr, &lr_back);
    assert_same_fields(&kn_leaderboard_record_entity, &lr, &lr_back);
    assert_int_equal(lr_back.score, -42);
    assert_int_equal(lr_back.rank, 12);
    protobuf_c_message_free_unpacked(m, NULL);
    kn_user_group ug = {.state = 3}, ug_back = {0};
    m = round_trip(&kn_user_group_entity, &ug, &ug_back);
    assert_int_equal(ug_back.state, 3);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void presences_of_both_kinds_of_match_survive_the_wire(void **state)
{
    kn_match_presence p = {
        .slot = 7, .conn = 99, .user_id = "u-1", .session_id = "s-1", .username = "bob"};
    kn_match_presence back = {.conn = 1};
    ProtobufCMessage *m = round_trip(&kn_match_presence_entity, &p, &back);
    assert_same_fields(&kn_match_presence_entity, &p, &back);
    assert_int_equal(back.slot, 7);
    assert_string_equal(back.username, "bob");
    assert_int_equal(back.conn, 1); /* not an entity field: left alone */
    protobuf_c_message_free_unpacked(m, NULL);

    kn_relay_member r = {
        .conn = 5, .slot = 0xffffffffu, .user_id = "u-2", .session_id = "s-2", .username = "carol"};
    kn_relay_member rback = {.conn = 5};
    m = round_trip(&kn_relay_member_entity, &r, &rback);
    assert_same_fields(&kn_relay_member_entity, &r, &rback);
    assert_int_equal(rback.slot, 0xffffffffu);
    assert_string_equal(rback.session_id, "s-2");
    protobuf_c_message_free_unpacked(m, NULL);
}

/* The bytes are those of the message as the services filled it by hand. */
static void the_wire_bytes_are_those_of_the_hand_filled_message(void **state)
{
    kn_match_presence p = {.slot = 3, .user_id = "u-1", .session_id = "s-1", .username = "bob"};
    Kaos__V1__Presence by_table, by_hand = KAOS__V1__PRESENCE__INIT;
    kn_entity_to_proto(&kn_match_presence_entity, &p, &by_table);
    by_hand.slot = 3;
    by_hand.user_id = "u-1";
    by_hand.session_id = "s-1";
    by_hand.username = "bob";
    uint8_t a[256], b[256];
    size_t n = kaos__v1__presence__pack(&by_table, a);
    assert_int_equal(kaos__v1__presence__pack(&by_hand, b), n);
    assert_memory_equal(a, b, n);

    kn_user u = {.id = "id",
                 .username = "alice",
                 .lang_tag = "en",
                 .metadata = "{}",
                 .create_time = 5,
                 .update_time = 6};
    Kaos__V1__User ut, uh = KAOS__V1__USER__INIT;
    kn_entity_to_proto(&kn_user_entity, &u, &ut);
    uh.id = "id";
    uh.username = "alice";
    uh.display_name = uh.avatar_url = uh.location = uh.timezone = "";
    uh.lang_tag = "en";
    uh.metadata = "{}";
    uh.create_time = 5;
    uh.update_time = 6;
    uint8_t c[512], d[512];
    n = kaos__v1__user__pack(&ut, c);
    assert_int_equal(kaos__v1__user__pack(&uh, d), n);
    assert_memory_equal(c, d, n);
}

static void null_text_travels_as_empty_strings(void **state)
{
    kn_user u = {.id = "id"}; /* every pointer NULL */
    Kaos__V1__User m;
    kn_entity_to_proto(&kn_user_entity, &u, &m);
    assert_string_equal(m.username, "");
    assert_string_equal(m.display_name, "");
    assert_string_equal(m.metadata, "");
    kn_storage_object o = {.collection = "c", .key = "k"}; /* value NULL */
    Kaos__V1__StorageObject so;
    kn_entity_to_proto(&kn_storage_object_entity, &o, &so);
    assert_string_equal(so.value, "");
    assert_string_equal(so.version, "");
}

static void views_of_the_sdk_are_never_null_and_json_is_never_empty(void **state)
{
    kaos_user v;
    memset(&v, 0xff, sizeof v);
    assert_int_equal(kn_entity_from_proto(&kaos_client__user_entity, NULL, &v), KN_OK);
    assert_string_equal(v.id, "");
    assert_string_equal(v.timezone, "");
    assert_string_equal(v.metadata, "{}");
    assert_int_equal(v.create_time, 0);

    Kaos__V1__StorageObject o = KAOS__V1__STORAGE_OBJECT__INIT;
    o.collection = NULL; /* a message built by hand may hold NULL */
    o.value = "";
    o.permission_read = 2;
    kaos_storage_object so;
    assert_int_equal(kn_entity_from_proto(&kaos_client__storage_object_entity, &o, &so), KN_OK);
    assert_string_equal(so.collection, "");
    assert_string_equal(so.value, "{}");
    assert_int_equal(so.permission_read, 2);

    Kaos__V1__Presence pm = KAOS__V1__PRESENCE__INIT;
    pm.slot = 4;
    pm.username = "dan";
    kaos_presence pv;
    assert_int_equal(kn_entity_from_proto(&kaos_client__presence_entity, &pm, &pv), KN_OK);
    assert_int_equal(pv.slot, 4);
    assert_string_equal(pv.username, "dan");
    assert_string_equal(pv.user_id, "");
}

static void text_longer_than_an_inline_array_is_refused(void **state)
{
    char name[200];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    Kaos__V1__Presence m = KAOS__V1__PRESENCE__INIT;
    m.username = name;
    kn_match_presence p;
    assert_int_equal(kn_entity_from_proto(&kn_match_presence_entity, &m, &p),
                     KN_ERR_INVALID_ARGUMENT);
    name[128] = '\0'; /* exactly the 128 bytes username[129] holds */
    assert_int_equal(kn_entity_from_proto(&kn_match_presence_entity, &m, &p), KN_OK);
    assert_string_equal(p.username, name);
}

/* The copies borrow: with every allocation failing they still work. */
static void the_mapping_never_allocates(void **state)
{
    kn_user u = {.id = "id", .username = "alice", .metadata = "{}"};
    failalloc_install(0);
    Kaos__V1__User m;
    kn_entity_to_proto(&kn_user_entity, &u, &m);
    kaos_user v;
    int rc = kn_entity_from_proto(&kaos_client__user_entity, &m, &v);
    long count = failalloc_count();
    failalloc_remove();
    assert_int_equal(rc, KN_OK);
    assert_int_equal(count, 0);
    assert_string_equal(v.username, "alice");
}

/* A repeated field's messages in one block: each one the struct it came
 * from, packed as the wire expects; n = 0 is no block; a failed allocation
 * is NOMEM with nothing to free. */
static void a_list_of_entities_becomes_the_messages_of_a_repeated_field(void **state)
{
    kn_user users[3] = {
        {.id = "00000000-0000-0000-0000-000000000001", .username = "ann"},
        {.id = "00000000-0000-0000-0000-000000000002", .username = "bob"},
        {.id = "00000000-0000-0000-0000-000000000003", .username = "cy", .create_time = 42}};
    Kaos__V1__User **ptrs;
    assert_int_equal(
        kn_entity_to_proto_list(&kn_user_entity, users, sizeof *users, 3, (void ***)&ptrs), KN_OK);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(ptrs[i]->id, users[i].id);
        assert_string_equal(ptrs[i]->username, users[i].username);
        assert_string_equal(ptrs[i]->display_name, ""); /* NULL travels as "" */
    }
    assert_int_equal(ptrs[2]->create_time, 42);
    Kaos__V1__Users out = KAOS__V1__USERS__INIT;
    out.n_users = 3;
    out.users = ptrs;
    uint8_t buf[512];
    size_t len = kaos__v1__users__pack(&out, buf);
    Kaos__V1__Users *back = kaos__v1__users__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_int_equal(back->n_users, 3);
    assert_string_equal(back->users[1]->username, "bob");
    kaos__v1__users__free_unpacked(back, NULL);
    kn_free(ptrs);

    assert_int_equal(
        kn_entity_to_proto_list(&kn_user_entity, users, sizeof *users, 0, (void ***)&ptrs), KN_OK);
    assert_null(ptrs);
    failalloc_install(0);
    assert_int_equal(
        kn_entity_to_proto_list(&kn_user_entity, users, sizeof *users, 3, (void ***)&ptrs),
        KN_ERR_NOMEM);
    failalloc_remove();
    assert_null(ptrs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_table_matches_its_message_field_for_field),
        cmocka_unit_test(a_proto_field_neither_mapped_nor_listed_fails_the_check),
        cmocka_unit_test(a_user_survives_the_wire_with_every_field),
        cmocka_unit_test(a_storage_object_and_its_ack_survive_the_wire),
        cmocka_unit_test(a_chat_message_survives_the_wire_with_every_field),
        cmocka_unit_test(presences_of_both_kinds_of_match_survive_the_wire),
        cmocka_unit_test(the_wire_bytes_are_those_of_the_hand_filled_message),
        cmocka_unit_test(null_text_travels_as_empty_strings),
        cmocka_unit_test(views_of_the_sdk_are_never_null_and_json_is_never_empty),
        cmocka_unit_test(text_longer_than_an_inline_array_is_refused),
        cmocka_unit_test(the_mapping_never_allocates),
        cmocka_unit_test(a_list_of_entities_becomes_the_messages_of_a_repeated_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
