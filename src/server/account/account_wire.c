/* account_wire: the account routes (kn_account_wire.h). Replies borrow the
 * service's strings until they are encoded. */
#include "kn_account_wire.h"
#include "kn_account.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"

static char *text(const char *s)
{
    return (char *)(s ? s : "");
}

static kn_db *db_of(kn_req *r)
{
    return kn_req_worker(r)->db;
}

static const char *me(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

int kn_account_wire_get(kn_req *r, char *msg, size_t cap)
{
    kn_account a;
    int rc = kn_account_get(db_of(r), me(r), &a, msg, cap);
    if (rc) return rc;
    Kaos__V1__User user;
    kn_entity_to_proto(&kn_user_entity, &a.user, &user);
    Kaos__V1__Account acc = KAOS__V1__ACCOUNT__INIT;
    acc.user = &user;
    acc.email = text(a.email);
    acc.custom_id = text(a.custom_id);
    acc.n_device_ids = a.device_count;
    acc.device_ids = a.device_ids;
    acc.disable_time = a.disable_time;
    acc.wallet = (char *)(a.wallet ? a.wallet : "{}");
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_ACCOUNT;
    env.account = &acc;
    rc = kn_req_reply(r, &env);
    kn_account_deinit(&a);
    return rc;
}

int kn_account_wire_users_get(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__UsersGet *q = kn_req_msg(r)->users_get;
    kn_user *users = NULL;
    size_t n = 0;
    int rc = kn_users_get(db_of(r), (const char *const *)q->ids, q->n_ids,
                          (const char *const *)q->usernames, q->n_usernames, &users, &n, msg, cap);
    if (rc) return rc;
    Kaos__V1__User **ptrs;
    rc = kn_entity_to_proto_list(&kn_user_entity, users, sizeof *users, n, (void ***)&ptrs);
    if (rc) goto done;
    Kaos__V1__Users out = KAOS__V1__USERS__INIT;
    out.n_users = n;
    out.users = ptrs;
    kn_envelope env = KN_ENVELOPE_INIT;
    env.message_case = KAOS__V1__ENVELOPE__MESSAGE_USERS;
    env.users = &out;
    rc = kn_req_reply(r, &env);
    kn_free(ptrs);
done:
    kn_users_free(users, n);
    return rc;
}

/* An absent OptionalString leaves the field unchanged (NULL). */
static const char *optional(const Kaos__V1__OptionalString *o)
{
    return o ? text(o->value) : NULL;
}

static int ack_unless(kn_req *r, int rc)
{
    return rc ? rc : kn_req_ack(r);
}

int kn_account_wire_update(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__AccountUpdate *u = kn_req_msg(r)->account_update;
    kn_account_changes ch = {
        .username = optional(u->username),
        .display_name = optional(u->display_name),
        .avatar_url = optional(u->avatar_url),
        .lang_tag = optional(u->lang_tag),
        .location = optional(u->location),
        .timezone = optional(u->timezone),
        .metadata = optional(u->metadata),
    };
    return ack_unless(r, kn_account_update(db_of(r), me(r), &ch, msg, cap));
}

/* The account is gone: this connection (which gets the Ack) stays open,
 * unauthenticated; the user's others are closed. */
int kn_account_wire_delete(kn_req *r, char *msg, size_t cap)
{
    int rc = ack_unless(r, kn_account_delete(db_of(r), me(r), msg, cap));
    if (rc == KN_OK)
        rc = kn_req_effect_end_sessions(r, me(r), NULL, KN_SESSION_END_DELETE, true, 0);
    return rc;
}

int kn_account_wire_link_device(kn_req *r, char *msg, size_t cap)
{
    const char *id = kn_req_msg(r)->link_device->id;
    return ack_unless(r, kn_account_link_device(db_of(r), me(r), id, msg, cap));
}

int kn_account_wire_link_email(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__LinkEmail *l = kn_req_msg(r)->link_email;
    return ack_unless(r, kn_account_link_email(db_of(r), me(r), l->email, l->password, msg, cap));
}

int kn_account_wire_link_custom(kn_req *r, char *msg, size_t cap)
{
    const char *id = kn_req_msg(r)->link_custom->id;
    return ack_unless(r, kn_account_link_custom(db_of(r), me(r), id, msg, cap));
}

int kn_account_wire_unlink_device(kn_req *r, char *msg, size_t cap)
{
    const char *id = kn_req_msg(r)->unlink_device->id;
    return ack_unless(r, kn_account_unlink_device(db_of(r), me(r), id, msg, cap));
}

int kn_account_wire_unlink_email(kn_req *r, char *msg, size_t cap)
{
    return ack_unless(r, kn_account_unlink_email(db_of(r), me(r), msg, cap));
}

int kn_account_wire_unlink_custom(kn_req *r, char *msg, size_t cap)
{
    return ack_unless(r, kn_account_unlink_custom(db_of(r), me(r), msg, cap));
}
