/* Internal to the match module: the label query language. */
#ifndef KN_MATCH_INTERNAL_H
#define KN_MATCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kn_match_query kn_match_query;

/* "+mode:ffa -map:dust skill:>=3 name:\"two words\"": `+` terms must match,
 * `-` terms must not, bare terms add to the score. A field is a dotted path
 * into the label's JSON object ("label." in front is ignored, as in Nakama).
 * Values: >=N, >N, <=N, <N compare numbers; anything else equals a string,
 * a number or true/false. KN_ERR_INVALID_ARGUMENT with a reason on a bad
 * query. */
int kn_match_query_parse(const char *text, kn_match_query **out, char *msg, size_t cap);
void kn_match_query_free(kn_match_query *q); /* accepts NULL */
/* Whether label (JSON text, may be NULL) passes; *score counts bare terms
 * that matched. */
bool kn_match_query_eval(const kn_match_query *q, const char *label, int *score);

#endif
