/* friends_notify: what an add or a delete did, told to the users as
 * notifications (kn_friends_tell in kn_friends.h). The friends service depends on the
 * notifications service, never the other way round; the notifications are
 * sent after the friends transaction commits, with the same connection. */
#include "kn_error.h"
#include "kn_friends.h"
#include "kn_log.h"
#include "kn_notify.h"

#include <assert.h>

void kn_friends_tell(kn_db *db, kn_out *out, const char *user_id, const kn_friend_events *ev)
{
    if (!ev || ev->n == 0) return;
    kn_notify_msg notes[KN_FRIENDS_EVENTS_MAX];
    for (size_t i = 0; i < ev->n; i++) {
        int kind = ev->items[i].kind;
        /* an add's or a delete's events, never a block's */
        assert(kind == KN_FRIEND_EVENT_INVITED || kind == KN_FRIEND_EVENT_ACCEPTED ||
               kind == KN_FRIEND_EVENT_REMOVED);
        notes[i] = (kn_notify_msg){
            .user_id = ev->items[i].user_id,
            .subject = kind == KN_FRIEND_EVENT_INVITED    ? "friend request received"
                       : kind == KN_FRIEND_EVENT_ACCEPTED ? "friend request accepted"
                                                          : "friend removed",
            .content = "{}",
            .code = kind == KN_FRIEND_EVENT_INVITED    ? KN_NOTIFY_CODE_FRIEND_REQUEST
                    : kind == KN_FRIEND_EVENT_ACCEPTED ? KN_NOTIFY_CODE_FRIEND_ACCEPTED
                                                       : KN_NOTIFY_CODE_FRIEND_REMOVED,
            .sender_id = user_id,
            .persistent = true,
        };
    }
    /* At most 200 events; kn_notify_send takes KN_NOTIFY_BATCH_MAX a call. */
    for (size_t at = 0; at < ev->n; at += KN_NOTIFY_BATCH_MAX) {
        size_t n = ev->n - at < KN_NOTIFY_BATCH_MAX ? ev->n - at : KN_NOTIFY_BATCH_MAX;
        char msg[256] = "";
        int rc = kn_notify_send(db, out, notes + at, n, true, msg, sizeof msg);
        if (rc)
            KN_WARN("friends: cannot notify about user %s's change: %s (%s)", user_id,
                    kn_err_name(rc), msg);
    }
}
