/* Internal to the matchmaker: the JSON a script sees and returns. */
#ifndef KN_MATCHMAKER_INTERNAL_H
#define KN_MATCHMAKER_INTERNAL_H

#include "kn_matchmaker.h"

/* Pool for a processor script: [{ticket, party_id, presence, players,
 * properties, query, min_count, max_count, count_multiple, intervals}];
 * kn_malloc'd, NULL when out of memory. */
char *kn_mm__pool_json(kn_mm_ticket *const *tickets, size_t n);
/* Candidate groups for an override script: [[ticket, ...], ...] with the
 * same ticket objects. */
char *kn_mm__groups_json(kn_mm_ticket *const *tickets, const kn_mm_group *g, size_t n);
/* A script's answer [[ticket id, ...], ...] as groups of the pool's
 * indexes. INVALID_ARGUMENT with why for a bad shape or an unknown id. */
int kn_mm__groups_parse(const char *json, size_t len, kn_mm_ticket *const *tickets, size_t n,
                        kn_mm_group **out, size_t *n_out, char *msg, size_t cap);

#endif
