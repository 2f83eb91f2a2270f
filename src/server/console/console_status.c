/* console_status: the Status page's data — the /metrics counters as JSON
 * (the same numbers, from the same handler), plus uptime. The page turns
 * the counters into rates and charts. */
#include "console_internal.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prometheus text "name{labels} value" lines -> {"name{labels}": value}. */
static int status_get(kn_console_call *c)
{
    if (!c->hooks->metrics) {
        snprintf(c->msg, sizeof c->msg, "no metrics in this server");
        return KN_ERR_UNAVAILABLE;
    }
    size_t cap = 65536;
    char *buf = kn_malloc(cap);
    if (!buf) return KN_ERR_NOMEM;
    buf[0] = '\0';
    c->hooks->metrics(c->hooks->ud, buf, cap);
    kn_json *m = kn_json_object();
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *sp = strrchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        kn_json_object_set_new(m, line, kn_json_real(strtod(sp + 1, NULL)));
    }
    kn_free(buf);
    c->result = kn_json_object();
    kn_json_object_set_new(c->result, "metrics", m);
    kn_json_object_set_new(c->result, "uptime_ms",
                           kn_json_integer(kn_time_wall_ms() - c->cfg->started_ms));
    kn_json_object_set_new(c->result, "time_ms", kn_json_integer(kn_time_wall_ms()));
    return KN_OK;
}

const kn_console_route kn_console__status_routes[] = {
    {"GET", "status", KN_CONSOLE_READ_ONLY, status_get},
    {0},
};
