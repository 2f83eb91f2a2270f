/* error: the public error and disconnect-reason texts.
 *
 * kaos.h must not include src/common or generated headers, so it repeats
 * the values; the assertions below stop the build if kn_error.h,
 * kn_secure.h or proto/kaos.proto ever move away from them. */
#include "kaos.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_secure.h"

#include <stddef.h>

#define SAME_AS_KN(name)                                                                           \
    _Static_assert((int)KAOS_ERR_##name == (int)KN_ERR_##name,                                     \
                   "KAOS_ERR_" #name " differs from kn_error.h");
#define SAME_AS_WIRE(name)                                                                         \
    _Static_assert((int)KAOS_ERR_##name == -(int)KAOS__V1__ERROR_CODE__##name,                     \
                   "KAOS_ERR_" #name " differs from proto ErrorCode");
#define WIRE_ERRORS(X)                                                                             \
    X(CANCELLED)                                                                                   \
    X(UNKNOWN)                                                                                     \
    X(INVALID_ARGUMENT)                                                                            \
    X(DEADLINE_EXCEEDED)                                                                           \
    X(NOT_FOUND)                                                                                   \
    X(ALREADY_EXISTS)                                                                              \
    X(PERMISSION_DENIED)                                                                           \
    X(RESOURCE_EXHAUSTED)                                                                          \
    X(FAILED_PRECONDITION)                                                                         \
    X(ABORTED)                                                                                     \
    X(OUT_OF_RANGE)                                                                                \
    X(UNIMPLEMENTED)                                                                               \
    X(INTERNAL)                                                                                    \
    X(UNAVAILABLE)                                                                                 \
    X(DATA_LOSS)                                                                                   \
    X(UNAUTHENTICATED)
#define LOCAL_ERRORS(X)                                                                            \
    X(NOMEM)                                                                                       \
    X(IO)                                                                                          \
    X(DB)                                                                                          \
    X(MALFORMED)                                                                                   \
    X(TOO_LARGE)                                                                                   \
    X(CLOSED)                                                                                      \
    X(CONFIG)                                                                                      \
    X(TOKEN_EXPIRED)                                                                               \
    X(TOKEN_INVALID)                                                                               \
    X(VERSION)

_Static_assert((int)KAOS_OK == (int)KN_OK, "KAOS_OK differs from KN_OK");
WIRE_ERRORS(SAME_AS_KN)
WIRE_ERRORS(SAME_AS_WIRE)
LOCAL_ERRORS(SAME_AS_KN)

#define SAME_REASON(name)                                                                          \
    _Static_assert((int)KAOS_DISCONNECT_##name ==                                                  \
                       (int)KAOS__V1__DISCONNECT_REASON__DISCONNECT_##name,                        \
                   "KAOS_DISCONNECT_" #name " differs from proto DisconnectReason");
SAME_REASON(NONE)
SAME_REASON(SHUTDOWN)
SAME_REASON(UNSUPPORTED_VERSION)
SAME_REASON(AUTH_TIMEOUT)
SAME_REASON(IDLE_TIMEOUT)
SAME_REASON(PROTOCOL_VIOLATION)
SAME_REASON(SERVER_FULL)
SAME_REASON(KICKED)
SAME_REASON(HANDSHAKE_FAILED)
SAME_REASON(RATE_LIMITED)
SAME_REASON(TOO_MANY_CONNECTIONS)
SAME_REASON(SEND_QUEUE_FULL)
SAME_REASON(BANNED)
SAME_REASON(SESSION_REPLACED)

_Static_assert(KAOS_PROTOCOL_VERSION == KN_PROTOCOL_VERSION, "protocol versions differ");
_Static_assert(KAOS_SEAL_OVERHEAD == KN_SEAL_OVERHEAD, "seal overheads differ");
_Static_assert(KAOS_SERVER_KEY_HEX_SIZE == 2 * KN_KEY_SIZE + 1, "key sizes differ");

const char *kaos_err_text(int err)
{
    return kn_err_text(err);
}

static const char *const reasons[] = {
    [KAOS_DISCONNECT_NONE] = "none",
    [KAOS_DISCONNECT_SHUTDOWN] = "server shutting down",
    [KAOS_DISCONNECT_UNSUPPORTED_VERSION] = "unsupported protocol version",
    [KAOS_DISCONNECT_AUTH_TIMEOUT] = "did not authenticate in time",
    [KAOS_DISCONNECT_IDLE_TIMEOUT] = "idle for too long",
    [KAOS_DISCONNECT_PROTOCOL_VIOLATION] = "protocol violation",
    [KAOS_DISCONNECT_SERVER_FULL] = "server full",
    [KAOS_DISCONNECT_KICKED] = "kicked",
    [KAOS_DISCONNECT_HANDSHAKE_FAILED] = "secure handshake failed",
    [KAOS_DISCONNECT_RATE_LIMITED] = "rate limited",
    [KAOS_DISCONNECT_TOO_MANY_CONNECTIONS] = "too many connections from this address",
    [KAOS_DISCONNECT_SEND_QUEUE_FULL] = "could not keep up with the server's data",
    [KAOS_DISCONNECT_BANNED] = "account banned or deleted",
    [KAOS_DISCONNECT_SESSION_REPLACED] = "another session of the user took over",
};

const char *kaos_disconnect_reason_text(uint32_t reason)
{
    return reason < sizeof reasons / sizeof reasons[0] ? reasons[reason] : "unknown reason";
}
