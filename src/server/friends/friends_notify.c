/* friends_notify: what an add did, told to the users as notifications
 * (kn_friends_tell in kn_friends.h). The friends service depends on the
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
        assert(ev->items[i].kind != KN_FRIEND_EVENT_BLOCKED); /* an add's events only */
        bool invited = ev->items[i].kind == KN_FRIEND_EVENT_INVITED;
        notes[i] = (kn_notify_msg){
            .user_id = ev->items[i].user_id,
            .subject = invited ? "friend request received" : "friend request accepted",
            .content = "{}",
            .code = invited ? KN_NOTIFY_CODE_FRIEND_REQUEST : KN_NOTIFY_CODE_FRIEND_ACCEPTED,
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
            KN_WARN("friends: cannot notify about user %s's add: %s (%s)", user_id, kn_err_name(rc),
                    msg);
    }
}
