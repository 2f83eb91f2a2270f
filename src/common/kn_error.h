/* kn_error: the one table of error codes.
 *
 * Every fallible function in KaosNet returns 0 (KN_OK) or a negative kn_err.
 * The X-macro below builds the enum, the names, the texts and the mapping to
 * the stable wire codes of proto/kaos.proto (gRPC-style ErrorCode). Codes
 * that match a wire code use its negated value, so the mapping is obvious in
 * a debugger; internal codes live below -100 and map to INTERNAL or
 * UNAVAILABLE on the wire. Thread-safe: everything here is constant data. */
#ifndef KN_ERROR_H
#define KN_ERROR_H

#include <stddef.h>

/* X(NAME, value, wire code, text) */
#define KN_ERROR_TABLE(X)                                                                          \
    X(OK, 0, 0, "ok")                                                                              \
    X(CANCELLED, -1, 1, "cancelled")                                                               \
    X(UNKNOWN, -2, 2, "unknown error")                                                             \
    X(INVALID_ARGUMENT, -3, 3, "invalid argument")                                                 \
    X(DEADLINE_EXCEEDED, -4, 4, "deadline exceeded")                                               \
    X(NOT_FOUND, -5, 5, "not found")                                                               \
    X(ALREADY_EXISTS, -6, 6, "already exists")                                                     \
    X(PERMISSION_DENIED, -7, 7, "permission denied")                                               \
    X(RESOURCE_EXHAUSTED, -8, 8, "resource exhausted")                                             \
    X(FAILED_PRECONDITION, -9, 9, "failed precondition")                                           \
    X(ABORTED, -10, 10, "aborted")                                                                 \
    X(OUT_OF_RANGE, -11, 11, "out of range")                                                       \
    X(UNIMPLEMENTED, -12, 12, "unimplemented")                                                     \
    X(INTERNAL, -13, 13, "internal error")                                                         \
    X(UNAVAILABLE, -14, 14, "unavailable")                                                         \
    X(DATA_LOSS, -15, 15, "data loss")                                                             \
    X(UNAUTHENTICATED, -16, 16, "unauthenticated")                                                 \
    X(NOMEM, -101, 13, "out of memory")                                                            \
    X(IO, -102, 13, "input/output error")                                                          \
    X(DB, -103, 14, "database error")                                                              \
    X(MALFORMED, -104, 3, "malformed message")                                                     \
    X(TOO_LARGE, -105, 8, "message too large")                                                     \
    X(CLOSED, -106, 14, "closed")                                                                  \
    X(CONFIG, -107, 3, "invalid configuration")                                                    \
    X(TOKEN_EXPIRED, -108, 16, "token expired")                                                    \
    X(TOKEN_INVALID, -109, 16, "token invalid")                                                    \
    X(VERSION, -110, 9, "unsupported protocol version")

typedef enum kn_err {
#define KN_ERR_ENUM(name, value, wire, text) KN_ERR_##name = (value),
    KN_ERROR_TABLE(KN_ERR_ENUM)
#undef KN_ERR_ENUM
} kn_err;

#define KN_OK KN_ERR_OK

/* "INVALID_ARGUMENT" etc.; "UNKNOWN_ERROR_CODE" for values not in the table. */
const char *kn_err_name(int err);
/* Human text: "invalid argument". Never NULL. */
const char *kn_err_text(int err);
/* The stable wire code (proto ErrorCode) for an error; 2 (UNKNOWN) if not in the table. */
int kn_err_to_wire(int err);
/* The kn_err for a wire code received from the peer; KN_ERR_UNKNOWN if out of range. */
int kn_err_from_wire(int wire_code);
/* Writes the formatted message into msg (when msg and cap say there is
 * room) and returns rc, for `return kn_err_msg(rc, msg, cap, "...", ...);`. */
__attribute__((format(printf, 4, 5))) int kn_err_msg(int rc, char *msg, size_t cap,
                                                     const char *fmt, ...);

#endif
