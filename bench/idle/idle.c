/* idle: many authenticated, idle connections on one server — what each
 * costs in memory and what they cost in CPU while nobody does anything.
 *
 *   bench_idle --port P --server-key HEX --server-pid PID --ccu N [--procs K]
 *              [--window S] [--ping-ms MS]
 *
 * The parent reads the server's resident memory first, then forks K worker
 * processes one after another; each opens its share of SDK clients (lg_sdk: connect, device
 * login with a fresh id, 100 at a time) and then only services them (ENet's
 * keepalive and the SDK's, nothing else) until the parent stops it. Once
 * every worker reports all its clients logged in, the parent waits a
 * settling second, then samples over the window: the server's CPU
 * (utime + stime) and resident memory, the workers' CPU, the machine's.
 * Prints one `result key=value ...` line on stdout.
 *
 * Memory per session is (RSS with the sessions - RSS before any) / N. ENet
 * allocates (and zeroes) every ENetPeer slot when the host is created, so
 * those are in the first reading already; what a connection adds on ENet's
 * side is its 3 channels, printed beside the figure, and beyond_peer_bytes
 * is the rest: KaosNet's own per-session memory.
 * Every process stops by itself: workers exit when the parent's pipe closes
 * or after the setup timeout. Loopback only. */
#include "../lg/lg_sdk.h"
#include "../lg/lg_util.h"

#include <enet/enet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64
#define CHANNELS  3 /* KaosNet's ENet channels (KN_CHANNEL_COUNT) */

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* One worker: open n clients, say so on `ready`, pump until `stop` closes. */
static void worker(int n, uint16_t port, const char *key, int ready, int stop)
{
    lg_sdk_pool p;
    lg_sdk_pool_open(&p, n, "127.0.0.1", port, key, NULL, NULL);
    p.sweep_ms = 250; /* idle: ENet's timers (a ping every 500 ms) need no more */
    char ok = 1;
    if (write(ready, &ok, 1) != 1) _exit(1);
    for (;;) {
        lg_sdk_pool_pump(&p, 50);
        char c;
        ssize_t r = read(stop, &c, 1);
        if (r == 0 || (r < 0 && errno != EAGAIN)) break; /* the parent closed it (or died) */
    }
    printf("dead=%d\n", lg_sdk_pool_dead(&p));
    lg_sdk_pool_close(&p);
    _exit(0);
}

int main(int argc, char **argv)
{
    int port = 0, server_pid = 0, ccu = 0, procs = 0;
    double window = 10;
    const char *key = NULL;
    static const struct option opts[] = {
        {"port", required_argument, 0, 'p'},       {"server-key", required_argument, 0, 'k'},
        {"server-pid", required_argument, 0, 's'}, {"ccu", required_argument, 0, 'n'},
        {"procs", required_argument, 0, 'j'},      {"window", required_argument, 0, 'w'},
        {"ping-ms", required_argument, 0, 'g'},    {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            server_pid = atoi(optarg);
            break;
        case 'n':
            ccu = atoi(optarg);
            break;
        case 'j':
            procs = atoi(optarg);
            break;
        case 'w':
            window = atof(optarg);
            break;
        case 'g':
            lg_sdk_set_ping_interval((uint32_t)atoi(optarg));
            break;
        default:
            lg_die("usage: see the top of bench/idle/idle.c");
        }
    }
    if (port <= 0 || server_pid <= 0 || ccu <= 0 || window <= 0)
        lg_die("--port, --server-pid, --ccu and --window are required");
    if (procs <= 0) procs = (ccu + 999) / 1000;
    if (procs > MAX_PROCS) procs = MAX_PROCS;
    signal(SIGPIPE, SIG_IGN);

    long rss0 = rss_kib(server_pid);
    /* Workers log in one after another (each 100 clients at a time): a
     * burst of thousands of device logins at once outruns the API workers
     * and the auth timeout. A pipe per worker, so one that dies is seen. */
    int stop[2];
    if (pipe(stop)) lg_die("pipe: %s", strerror(errno));
    int64_t t_setup = lg_now_ns();
    pid_t kids[MAX_PROCS];
    for (int i = 0; i < procs; i++) {
        int n = ccu / procs + (i < ccu % procs);
        int ready[2];
        if (pipe(ready)) lg_die("pipe: %s", strerror(errno));
        kids[i] = fork();
        if (kids[i] < 0) lg_die("fork: %s", strerror(errno));
        if (kids[i] == 0) {
            close(ready[0]);
            close(stop[1]);
            (void)fcntl(stop[0], F_SETFL, O_NONBLOCK);
            worker(n, (uint16_t)port, key, ready[1], stop[0]);
        }
        close(ready[1]);
        char c;
        ssize_t r;
        do
            r = read(ready[0], &c, 1);
        while (r < 0 && errno == EINTR);
        close(ready[0]);
        if (r != 1) {
            for (int k = 0; k <= i; k++)
                kill(kids[k], SIGKILL);
            lg_die("worker %d failed during setup (%d of %d sessions were up)", i, ccu / procs * i,
                   ccu);
        }
    }
    close(stop[0]);
    double setup_s = (double)(lg_now_ns() - t_setup) / 1e9;
    sleep(1); /* the last logins' effects settle */

    double s0 = lg_proc_cpu_s(server_pid), m0 = lg_machine_busy_s();
    struct timespec ts = {(time_t)window, (long)((window - (time_t)window) * 1e9)};
    int64_t w0 = lg_now_ns();
    double lg0 = 0;
    for (int i = 0; i < procs; i++)
        lg0 += lg_proc_cpu_s(kids[i]);
    nanosleep(&ts, NULL);
    double s1 = lg_proc_cpu_s(server_pid), m1 = lg_machine_busy_s();
    double lg1 = 0;
    for (int i = 0; i < procs; i++)
        lg1 += lg_proc_cpu_s(kids[i]);
    double span = (double)(lg_now_ns() - w0) / 1e9;
    long rss1 = rss_kib(server_pid);

    close(stop[1]); /* workers stop */
    int failed = 0;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) failed++;
    }
    size_t channels = CHANNELS * sizeof(ENetChannel);
    double per = rss0 >= 0 && rss1 >= 0 ? (double)(rss1 - rss0) * 1024.0 / ccu : -1;
    printf("result status=%s ccu=%d procs=%d setup_s=%.1f window_s=%.2f rss0_kib=%ld "
           "rss_kib=%ld bytes_per_session=%.0f enet_peer_slot_bytes=%zu enet_channel_bytes=%zu "
           "beyond_peer_bytes=%.0f "
           "srv_cpu_pct=%.2f srv_us_per_session_s=%.3f lg_cpu_pct=%.1f machine_cpu_pct=%.1f\n",
           failed ? "failed" : "ok", ccu, procs, setup_s, span, rss0, rss1, per, sizeof(ENetPeer),
           channels, per >= 0 ? per - (double)channels : -1, 100 * (s1 - s0) / span,
           1e6 * (s1 - s0) / span / ccu, 100 * (lg1 - lg0) / span, 100 * (m1 - m0) / span);
    return failed ? 1 : 0;
}
