/* kn_account: the account service. A user's own account (profile, the ways
 * it logs in, deletion), other users' public profiles, and bans.
 *
 * Threads: every function takes a kn_db and blocks on Postgres, so it runs on
 * the thread that owns that connection: an API worker (or a CLI command).
 * kn_account_link_email also hashes a password with argon2id (tens of ms and
 * 64 MiB). There is no service object and nothing is kept between calls.
 *
 * Who may do what: this module does not know who is calling. Its routes
 * (account_wire.c) pass the session's own user id for the Account* messages; deleting,
 * banning and unbanning other users is for server code (runtime, console).
 *
 * Ownership: every input is borrowed. Results are allocated with kn_malloc
 * and belong to the caller, who releases them with kn_account_deinit /
 * kn_users_free; both accept zeroed structs and NULL. On failure the
 * out-parameters are left zeroed (NULL, 0), so releasing them is harmless.
 *
 * Errors: KN_OK or a negative kn_err, and a one-line reason for the client
 * in msg (msg may be NULL when msg_cap is 0):
 *   INVALID_ARGUMENT     input breaks a rule below (checked before any query;
 *                        user and session ids must be canonical UUIDs)
 *   NOT_FOUND            unknown user, or a login method the user does not have
 *   ALREADY_EXISTS       a username, device, email or custom id that belongs
 *                        to another user
 *   FAILED_PRECONDITION  unlinking the user's last way to log in
 *   ABORTED              a race that did not settle after a few tries; retry
 *   DB, NOMEM            logged where they happen; msg "database unavailable"
 *                        or "out of memory"
 *
 * Text: every string is UTF-8 without control characters (checked); limits
 * are in bytes. Times are Unix seconds. */
#ifndef KN_ACCOUNT_H
#define KN_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kn_db kn_db;
typedef struct kn_entity kn_entity;

#define KN_ACCOUNT_DISPLAY_NAME_MAX 255
#define KN_ACCOUNT_AVATAR_URL_MAX   512
#define KN_ACCOUNT_LANG_TAG_MAX     18
#define KN_ACCOUNT_LOCATION_MAX     255
#define KN_ACCOUNT_TIMEZONE_MAX     255
#define KN_ACCOUNT_METADATA_MAX     16384 /* bytes of JSON text as sent */
#define KN_USERS_GET_MAX            100   /* ids, and separately usernames, per call */

/* A user's public profile: what any player may see. Optional fields the
 * user never set are NULL; lang_tag and metadata are never NULL. */
typedef struct kn_user {
    char id[37]; /* canonical UUID text */
    char *username;
    char *display_name;
    char *avatar_url;
    char *lang_tag; /* default "en" */
    char *location;
    char *timezone;
    char *metadata; /* a JSON object as Postgres prints jsonb; default "{}" */
    int64_t create_time;
    int64_t update_time; /* changes whenever the users row does */
} kn_user;

/* kn_user as the User entity (kn_entity.h): the wire's User and the Lua
 * user tables are built from it. */
extern const kn_entity kn_user_entity;

/* A user's own account: the profile plus the ways it logs in. */
typedef struct kn_account {
    kn_user user;
    char *email;     /* lower case; NULL when no email is linked */
    char *custom_id; /* NULL when none is linked */
    char **device_ids;
    size_t device_count;
    int64_t disable_time; /* when the user was banned; 0 = not banned */
    /* currency -> balance, a JSON object as Postgres prints jsonb; "{}" when
     * empty. Read here, changed only by the economy service (kn_economy.h). */
    char *wallet;
} kn_account;

/* Fields to change; NULL leaves a field as it is. For display_name,
 * avatar_url, location and timezone "" clears the field (stored as NULL);
 * username, lang_tag and metadata cannot be empty ("{}" empties metadata). */
typedef struct kn_account_changes {
    const char *username;     /* the login username rules (kn_auth); unique */
    const char *display_name; /* <= KN_ACCOUNT_DISPLAY_NAME_MAX */
    const char *avatar_url;   /* <= KN_ACCOUNT_AVATAR_URL_MAX, no spaces */
    const char *lang_tag;     /* 1..KN_ACCOUNT_LANG_TAG_MAX of [A-Za-z0-9_-] */
    const char *location;     /* <= KN_ACCOUNT_LOCATION_MAX */
    const char *timezone;     /* <= KN_ACCOUNT_TIMEZONE_MAX */
    const char *metadata;     /* a JSON object, <= KN_ACCOUNT_METADATA_MAX bytes */
} kn_account_changes;

/* The user's account with every field. Unknown user: NOT_FOUND. */
int kn_account_get(kn_db *db, const char *user_id, kn_account *out, char *msg, size_t msg_cap);
void kn_account_deinit(kn_account *account); /* accepts NULL and zeroed */

/* Applies the fields of `u` that are not NULL in one statement and bumps
 * update_time; nothing to change is KN_OK without a query. Every field is
 * validated before anything is written, so a refused update changes nothing.
 * It opens no transaction of its own: called inside one the caller opened
 * (kn_multi_update), its statement joins it and commits or rolls back with
 * the rest (a refusal after the statement ran leaves that transaction for
 * the caller to roll back).
 * A username held by another user: ALREADY_EXISTS "username is taken".
 * Session tokens already issued keep the old username until refreshed. */
int kn_account_update(kn_db *db, const char *user_id, const kn_account_changes *u, char *msg,
                      size_t msg_cap);

/* Public profiles of the users named by `ids` and/or `usernames` (either
 * list may be NULL with its count 0). At most KN_USERS_GET_MAX of each;
 * an id that is not a UUID or a username that breaks the username rules is
 * INVALID_ARGUMENT. Unknown ones are simply absent; a user named twice
 * (by id and by username) appears once. Ordered by username. *out is an
 * array of *n_out users (NULL when none); release with kn_users_free. */
int kn_users_get(kn_db *db, const char *const *ids, size_t n_ids, const char *const *usernames,
                 size_t n_usernames, kn_user **out, size_t *n_out, char *msg, size_t msg_cap);
void kn_users_free(kn_user *users, size_t n_users); /* accepts NULL */
/* Frees one user's strings (not `u` itself) and zeroes it; for a kn_user
 * embedded elsewhere (kn_friend). Accepts NULL and a zeroed user. */
void kn_user_deinit(kn_user *u);

/* Deletes the user and, by cascade, its devices and sessions (refresh
 * tokens stop working). Unknown user: NOT_FOUND. */
int kn_account_delete(kn_db *db, const char *user_id, char *msg, size_t msg_cap);

/* Ban: sets disable_time (kept if already banned) and deletes the user's
 * user_session rows in one transaction, so no refresh token works; logins
 * and refreshes are then PERMISSION_DENIED (kn_auth). Session tokens already
 * issued stay valid as JWTs until they expire: a resume checks
 * kn_session_live, and closing connections already bound to the user is
 * the session registry's (kn_sessions_end). Unban clears disable_time; the user logs in
 * again (old refresh tokens stay dead). Unknown user: NOT_FOUND. */
int kn_account_ban(kn_db *db, const char *user_id, char *msg, size_t msg_cap);
int kn_account_unban(kn_db *db, const char *user_id, char *msg, size_t msg_cap);

/* Link a login method to the user. The identifiers follow the login rules
 * (kn_auth_check_device_id, _email_password, _custom_id). Linking what the
 * user already has is KN_OK; what belongs to another user is ALREADY_EXISTS;
 * unknown user NOT_FOUND. An account has at most one email and one custom id:
 * linking another replaces it (for email, the password too, so this is also
 * how a user changes its password). */
int kn_account_link_device(kn_db *db, const char *user_id, const char *device_id, char *msg,
                           size_t msg_cap);
int kn_account_link_email(kn_db *db, const char *user_id, const char *email, const char *password,
                          char *msg, size_t msg_cap);
int kn_account_link_custom(kn_db *db, const char *user_id, const char *custom_id, char *msg,
                           size_t msg_cap);

/* Unlink a login method. Each runs in a transaction that locks the user row
 * (SELECT ... FOR UPDATE) and then counts the methods left (devices, email,
 * custom id), so concurrent unlinks can never leave an account with none:
 * removing the last one is FAILED_PRECONDITION "cannot unlink the last login
 * method". A method the user does not have is NOT_FOUND. Unlinking the email
 * also removes the password. */
int kn_account_unlink_device(kn_db *db, const char *user_id, const char *device_id, char *msg,
                             size_t msg_cap);
int kn_account_unlink_email(kn_db *db, const char *user_id, char *msg, size_t msg_cap);
int kn_account_unlink_custom(kn_db *db, const char *user_id, char *msg, size_t msg_cap);

/* The checks account_update applies, for other services whose records carry
 * the same kinds of fields (groups): text of at most max bytes of UTF-8
 * without control characters (nor spaces unless `spaces`; NULL is fine), a
 * lang tag (1-KN_ACCOUNT_LANG_TAG_MAX letters, digits, '-', '_') and
 * metadata (a JSON object of at most KN_ACCOUNT_METADATA_MAX bytes).
 * INVALID_ARGUMENT with the reason, naming the field `what`. No database. */
int kn_account_check_text(const char *what, const char *s, size_t max, bool spaces, char *msg,
                          size_t msg_cap);
int kn_account_check_lang_tag(const char *s, char *msg, size_t msg_cap);
int kn_account_check_metadata(const char *s, char *msg, size_t msg_cap);

#endif
