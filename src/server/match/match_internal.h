/* Internal to the match module. The query language is public (kn_match.h:
 * the matchmaker shares it); this header stays for the module's own files. */
#ifndef KN_MATCH_INTERNAL_H
#define KN_MATCH_INTERNAL_H

#include "kn_match.h"

#endif
