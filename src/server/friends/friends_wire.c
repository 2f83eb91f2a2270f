/* friends_wire: the friends routes (kn_friends_wire.h). Add, delete and
 * block answer Ack; a list answers FriendList, whose messages borrow the
 * service's strings until the reply is encoded. */
#include "kn_friends_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_mem.h"

#include <stdio.h>

#define NAMES(q)                                                                                   \
    (const char *const *)(q)->ids, (q)->n_ids, (const char *const *)(q)->usernames, (q)->n_usernames

static const char *caller(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

/* A wire limit past what the service's int takes, refused as it would. */
static int too_many(uint32_t limit, char *msg, size_t cap)
{
    snprintf(msg, cap, "limit must be 1-%d, not %u", KN_FRIENDS_LIST_MAX, limit);
    return KN_ERR_INVALID_ARGUMENT;
}

int kn_friends_wire_add(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsAdd *q = kn_req_msg(r)->friends_add;
    const kn_friends_deps *deps = kn_req_service(r);
    kn_friends_add_opts o = {.max_friends = deps ? deps->config.max_friends : 0,
                             .metadata = q->metadata && *q->metadata ? q->metadata : NULL,
                             .ev = kn_malloc(sizeof *o.ev)};
    if (!o.ev) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_db *db = kn_req_worker(r)->db;
    int rc = kn_friends_add_ex(db, &o, caller(r), NAMES(q), msg, cap);
    if (rc == KN_OK) {
        kn_friends_tell(db, kn_req_out(r), caller(r), o.ev);
        rc = kn_req_ack(r);
    }
    kn_free(o.ev);
    return rc;
}

int kn_friends_wire_delete(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsDelete *q = kn_req_msg(r)->friends_delete;
    kn_friend_events *ev = kn_malloc(sizeof *ev);
    if (!ev) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    kn_db *db = kn_req_worker(r)->db;
    int rc = kn_friends_delete_events(db, caller(r), NAMES(q), ev, msg, cap);
    if (rc == KN_OK) {
        kn_friends_tell(db, kn_req_out(r), caller(r), ev);
        rc = kn_req_ack(r);
    }
    kn_free(ev);
    return rc;
}

int kn_friends_wire_metadata_update(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsMetadataUpdate *q = kn_req_msg(r)->friends_metadata_update;
    int rc =
        kn_friends_metadata_update(kn_req_worker(r)->db, caller(r), q->id, q->metadata, msg, cap);
    return rc ? rc : kn_req_ack(r);
}

int kn_friends_wire_block(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsBlock *q = kn_req_msg(r)->friends_block;
    kn_friend_events *ev = kn_malloc(sizeof *ev);
    if (!ev) return kn_err_msg(KN_ERR_NOMEM, msg, cap, "out of memory");
    int rc = kn_friends_block_events(kn_req_worker(r)->db, caller(r), NAMES(q), ev, msg, cap);
    if (rc == KN_OK) {
        kn_friends_tell_blocks(kn_req_service(r), caller(r), ev);
        rc = kn_req_ack(r);
    }
    kn_free(ev);
    return rc;
}

/* FriendList: each Friend message gets its User message, both built from
 * the entity tables (the users sit in the friends array, a kn_friend apart). */
static int reply_list(kn_req *r, kn_friend *friends, size_t n, const char *cursor)
{
    Kaos__V1__Friend **fp = NULL;
    Kaos__V1__User **up = NULL;
    int rc = kn_entity_to_proto_list(&kn_friend_entity, friends, sizeof *friends, n, (void ***)&fp);
    if (rc == KN_OK && n)
        rc = kn_entity_to_proto_list(&kn_user_entity, &friends[0].user, sizeof *friends, n,
                                     (void ***)&up);
    if (rc == KN_OK) {
        for (size_t i = 0; i < n; i++)
            fp[i]->user = up[i];
        Kaos__V1__FriendList out = KAOS__V1__FRIEND_LIST__INIT;
        out.n_friends = n;
        out.friends = fp;
        out.cursor = (char *)(cursor ? cursor : "");
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_FRIEND_LIST;
        env.friend_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(fp);
    kn_free(up);
    return rc;
}

int kn_friends_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsList *q = kn_req_msg(r)->friends_list;
    if (q->limit > KN_FRIENDS_LIST_MAX) return too_many(q->limit, msg, cap);
    int state = q->filter_case == KAOS__V1__FRIENDS_LIST__FILTER_STATE ? q->state : KN_FRIEND_ANY;
    kn_friend *friends = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc = kn_friends_list(kn_req_worker(r)->db, caller(r), state, (int)q->limit, q->cursor,
                             &friends, &n, &next, msg, cap);
    if (rc == KN_OK) rc = reply_list(r, friends, n, next);
    kn_friends_free(friends, n);
    kn_free(next);
    return rc;
}

/* FriendsOfFriends: each entry's User message built from the entity table. */
static int reply_fof(kn_req *r, kn_friend_of_friend *fof, size_t n, const char *cursor)
{
    Kaos__V1__User **up = NULL;
    Kaos__V1__FriendOfFriend *items = n ? kn_calloc(n, sizeof *items) : NULL;
    Kaos__V1__FriendOfFriend **ptrs = n ? kn_calloc(n, sizeof *ptrs) : NULL;
    int rc = n && (!items || !ptrs) ? KN_ERR_NOMEM : KN_OK;
    if (rc == KN_OK && n)
        rc = kn_entity_to_proto_list(&kn_user_entity, &fof[0].user, sizeof *fof, n, (void ***)&up);
    if (rc == KN_OK) {
        for (size_t i = 0; i < n; i++) {
            Kaos__V1__FriendOfFriend init = KAOS__V1__FRIEND_OF_FRIEND__INIT;
            items[i] = init;
            items[i].referrer = fof[i].referrer;
            items[i].user = up[i];
            ptrs[i] = &items[i];
        }
        Kaos__V1__FriendsOfFriends out = KAOS__V1__FRIENDS_OF_FRIENDS__INIT;
        out.n_friends_of_friends = n;
        out.friends_of_friends = ptrs;
        out.cursor = (char *)(cursor ? cursor : "");
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_FRIENDS_OF_FRIENDS;
        env.friends_of_friends = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(up);
    kn_free(items);
    kn_free(ptrs);
    return rc;
}

int kn_friends_wire_of_friends_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__FriendsOfFriendsList *q = kn_req_msg(r)->friends_of_friends_list;
    if (q->limit > KN_FRIENDS_LIST_MAX) return too_many(q->limit, msg, cap);
    kn_friend_of_friend *fof = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc = kn_friends_of_friends_list(kn_req_worker(r)->db, caller(r), (int)q->limit, q->cursor,
                                        &fof, &n, &next, msg, cap);
    if (rc == KN_OK) rc = reply_fof(r, fof, n, next);
    kn_friends_of_friends_free(fof, n);
    kn_free(next);
    return rc;
}
