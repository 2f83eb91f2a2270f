/* lossy_proxy: see header. */
#include "lossy_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 32
#define MAX_QUEUED 4096
#define MAX_DGRAM 2048

typedef struct flow {
    struct sockaddr_in client;
    int upstream; /* socket connected to the server */
} flow;

typedef struct pending {
    int64_t due_us;
    int fd;
    struct sockaddr_in to;
    bool connected; /* fd is connected: send, not sendto */
    uint16_t len;
    uint8_t data[MAX_DGRAM];
} pending;

struct lossy_proxy {
    pthread_t thread;
    atomic_int stop;
    int listen_fd;
    struct sockaddr_in server;
    double loss;
    int delay_ms, jitter_ms;
    flow flows[MAX_FLOWS];
    int nflows;
    pending *queue;
    int nqueued;
    int64_t last_due_us;
    unsigned seed;
    lossy_stats st;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double uniform(lossy_proxy *p)
{
    return (double)rand_r(&p->seed) / ((double)RAND_MAX + 1.0);
}

static void enqueue(lossy_proxy *p, int fd, const struct sockaddr_in *to, bool connected,
                    const uint8_t *data, size_t len)
{
    if (uniform(p) < p->loss || p->nqueued == MAX_QUEUED || len > MAX_DGRAM) {
        p->st.dropped++;
        return;
    }
    pending *q = &p->queue[p->nqueued++];
    int64_t jitter = p->jitter_ms ? (int64_t)((uniform(p) * 2 - 1) * p->jitter_ms * 1000) : 0;
    q->due_us = now_us() + (int64_t)p->delay_ms * 1000 + jitter;
    if (q->due_us < p->last_due_us) p->st.reordered++;
    else p->last_due_us = q->due_us;
    q->fd = fd;
    if (to) q->to = *to;
    q->connected = connected;
    q->len = (uint16_t)len;
    memcpy(q->data, data, len);
}

static void send_due(lossy_proxy *p)
{
    int64_t t = now_us();
    for (int i = 0; i < p->nqueued;) {
        pending *q = &p->queue[i];
        if (q->due_us > t) {
            i++;
            continue;
        }
        if (q->connected) send(q->fd, q->data, q->len, 0);
        else sendto(q->fd, q->data, q->len, 0, (struct sockaddr *)&q->to, sizeof q->to);
        p->st.forwarded++;
        p->queue[i] = p->queue[--p->nqueued];
    }
}

static flow *flow_for(lossy_proxy *p, const struct sockaddr_in *client)
{
    for (int i = 0; i < p->nflows; i++)
        if (p->flows[i].client.sin_port == client->sin_port &&
            p->flows[i].client.sin_addr.s_addr == client->sin_addr.s_addr)
            return &p->flows[i];
    if (p->nflows == MAX_FLOWS) return NULL;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&p->server, sizeof p->server) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    flow *f = &p->flows[p->nflows++];
    f->client = *client;
    f->upstream = fd;
    return f;
}

static void *run(void *arg)
{
    lossy_proxy *p = arg;
    uint8_t buf[MAX_DGRAM];
    while (!atomic_load(&p->stop)) {
        struct pollfd fds[1 + MAX_FLOWS];
        int n = 0;
        fds[n++] = (struct pollfd){p->listen_fd, POLLIN, 0};
        for (int i = 0; i < p->nflows; i++) fds[n++] = (struct pollfd){p->flows[i].upstream, POLLIN, 0};
        poll(fds, (nfds_t)n, 1);
        if (fds[0].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t r = recvfrom(p->listen_fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
            flow *f = r > 0 ? flow_for(p, &from) : NULL;
            if (f) enqueue(p, f->upstream, NULL, true, buf, (size_t)r);
        }
        for (int i = 1; i < n; i++) {
            if (!(fds[i].revents & POLLIN)) continue;
            ssize_t r = recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) enqueue(p, p->listen_fd, &p->flows[i - 1].client, false, buf, (size_t)r);
        }
        send_due(p);
    }
    return NULL;
}

lossy_proxy *lossy_start(uint16_t server_port, double loss, int delay_ms, int jitter_ms,
                         uint16_t *listen_port)
{
    lossy_proxy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->queue = calloc(MAX_QUEUED, sizeof *p->queue);
    p->loss = loss;
    p->delay_ms = delay_ms;
    p->jitter_ms = jitter_ms;
    p->seed = 12345;
    p->server.sin_family = AF_INET;
    p->server.sin_port = htons(server_port);
    inet_pton(AF_INET, "127.0.0.1", &p->server.sin_addr);
    p->listen_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    if (!p->queue || p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &al) ||
        pthread_create(&p->thread, NULL, run, p)) {
        if (p->listen_fd >= 0) close(p->listen_fd);
        free(p->queue);
        free(p);
        return NULL;
    }
    *listen_port = ntohs(a.sin_port);
    return p;
}

void lossy_stop(lossy_proxy *p, lossy_stats *stats)
{
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    if (stats) *stats = p->st;
    for (int i = 0; i < p->nflows; i++) close(p->flows[i].upstream);
    close(p->listen_fd);
    free(p->queue);
    free(p);
}
