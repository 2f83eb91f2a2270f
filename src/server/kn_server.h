/* kn_server: the composition root. Builds every module from the config,
 * wires them together (who calls whom is decided here and nowhere else),
 * runs until SIGINT/SIGTERM, and tears down in dependency order. */
#ifndef KN_SERVER_H
#define KN_SERVER_H

#include "kn_config.h"

/* Runs the server in the calling thread (it becomes the net thread).
 * Returns 0 after a clean shutdown, a negative kn_err if it cannot start. */
int kn_server_run(const kn_config *cfg);

#endif
