/* notify_wire: the notifications routes (kn_notify_wire.h). A list answers
 * NotificationList, whose messages borrow the service's strings until the
 * reply is encoded; a delete answers Ack. */
#include "kn_notify_wire.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_notify.h"

#include <stdio.h>

static const char *caller(kn_req *r)
{
    return kn_req_caller(r)->user_id;
}

static int reply_list(kn_req *r, kn_notification *notes, size_t n, const char *cursor)
{
    Kaos__V1__Notification **np = NULL;
    int rc =
        kn_entity_to_proto_list(&kn_notification_entity, notes, sizeof *notes, n, (void ***)&np);
    if (rc == KN_OK) {
        Kaos__V1__NotificationList out = KAOS__V1__NOTIFICATION_LIST__INIT;
        out.n_notifications = n;
        out.notifications = np;
        out.cacheable_cursor = (char *)cursor;
        kn_envelope env = KN_ENVELOPE_INIT;
        env.message_case = KAOS__V1__ENVELOPE__MESSAGE_NOTIFICATION_LIST;
        env.notification_list = &out;
        rc = kn_req_reply(r, &env);
    }
    kn_free(np);
    return rc;
}

int kn_notify_wire_list(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__NotificationsList *q = kn_req_msg(r)->notifications_list;
    if (q->limit > KN_NOTIFY_LIST_MAX) { /* the service takes an int; say it as it would */
        snprintf(msg, cap, "limit must be 1-%d, not %u", KN_NOTIFY_LIST_MAX, q->limit);
        return KN_ERR_INVALID_ARGUMENT;
    }
    kn_notification *notes = NULL;
    size_t n = 0;
    char *next = NULL;
    int rc = kn_notify_list(kn_req_worker(r)->db, caller(r), (int)q->limit, q->cacheable_cursor,
                            &notes, &n, &next, msg, cap);
    if (rc == KN_OK) rc = reply_list(r, notes, n, next);
    kn_notify_free(notes, n);
    kn_free(next);
    return rc;
}

int kn_notify_wire_delete(kn_req *r, char *msg, size_t cap)
{
    Kaos__V1__NotificationsDelete *q = kn_req_msg(r)->notifications_delete;
    int rc = kn_notify_delete(kn_req_worker(r)->db, caller(r), (const char *const *)q->ids,
                              q->n_ids, msg, cap);
    return rc ? rc : kn_req_ack(r);
}
