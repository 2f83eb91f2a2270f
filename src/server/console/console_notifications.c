/* console_notifications: send one notification to a user (stored, and
 * delivered at once when online), through kn_notify_send as a system
 * notification. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_notify.h"

#include <stdio.h>

static int notification_send(kn_console_call *c)
{
    const char *user, *subject, *content = kn_console__arg(c, "content");
    int64_t code;
    int rc;
    if ((rc = kn_console__need(c, "user_id", &user)) ||
        (rc = kn_console__need(c, "subject", &subject)) ||
        (rc = kn_console__int_arg(c, "code", 0, -1000000, 1000000, &code)))
        return rc;
    snprintf(c->target, sizeof c->target, "user %.36s: %.100s", user, subject);
    kn_notify_msg m = {.user_id = user,
                       .subject = subject,
                       .content = content && *content ? content : "{}",
                       .code = (int)code,
                       .sender_id = NULL,
                       .persistent = true};
    return kn_notify_send(c->db, c->hooks->out, &m, 1, true, c->msg, sizeof c->msg);
}

const kn_console_route kn_console__notifications_routes[] = {
    {"POST", "notifications/send", KN_CONSOLE_MAINTAINER, notification_send},
    {0},
};
