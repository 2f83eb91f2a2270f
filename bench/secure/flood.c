/* flood: the load side of bench/secure/run.sh.
 *
 *   flood spoof PORT RATE SECONDS   send cookie-less ENet CONNECTs (random
 *                                   connectIDs and cookies) at RATE per second
 *   flood halfopen PORT N SECONDS   open N connections with valid cookies and
 *                                   never send the hello, then hold them
 *
 * Loopback only; stops by itself. Prints one line `result key=value...`. */
#include "kn_error.h"
#include "kn_secure.h"

#include <arpa/inet.h>
#include <enet/enet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int spoof(uint16_t port, double rate, double seconds)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    uint8_t d[4 + 48] = {0x8f, 0xff, 0x00, 0x01, 0x82, 0xff};
    long sent = 0, replies = 0;
    double start = now_s(), t;
    while ((t = now_s() - start) < seconds) {
        long due = (long)(t * rate);
        for (; sent < due; sent++) {
            uint32_t r = (uint32_t)rand();
            memcpy(d + 4 + 40, &r, 4); /* connectID */
            r = (uint32_t)rand();
            memcpy(d + 4 + 44, &r, 4); /* a guessed cookie */
            sendto(fd, d, sizeof d, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
        }
        uint8_t buf[256];
        while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) replies++;
        usleep(1000);
    }
    printf("result mode=spoof sent=%ld replies=%ld seconds=%.1f\n", sent, replies, seconds);
    close(fd);
    return 0;
}

static uint32_t got_cookie;
static int have_cookie;

static int ENET_CALLBACK catch_cookie(ENetHost *host, ENetEvent *event)
{
    uint8_t v, st;
    uint32_t c;
    if (kn_cookie_reply_parse(host->receivedData, host->receivedDataLength, &v, &st, &c) == KN_OK) {
        if (st == KN_COOKIE_OK) {
            got_cookie = c;
            have_cookie = 1;
        }
        return 1;
    }
    return 0;
}

static int halfopen(uint16_t port, int n, double seconds)
{
    ENetAddress addr;
    enet_address_set_host_ip(&addr, "127.0.0.1");
    addr.port = port;
    ENetHost **hosts = calloc((size_t)n, sizeof *hosts);
    int connected = 0;
    for (int i = 0; i < n; i++) {
        hosts[i] = enet_host_create(NULL, 1, 3, 0, 0);
        if (!hosts[i]) break;
        hosts[i]->intercept = catch_cookie;
        uint8_t req[KN_COOKIE_REQUEST_SIZE];
        kn_cookie_request_build(req, 1);
        ENetBuffer b = {.data = req, .dataLength = sizeof req};
        have_cookie = 0;
        for (int k = 0; k < 40 && !have_cookie; k++) {
            if (k % 10 == 0) enet_socket_send(hosts[i]->socket, &addr, &b, 1);
            ENetEvent ev;
            enet_host_service(hosts[i], &ev, 5);
        }
        if (!have_cookie) continue;
        enet_host_connect(hosts[i], &addr, 3, got_cookie);
        ENetEvent ev;
        for (int k = 0; k < 200; k++)
            if (enet_host_service(hosts[i], &ev, 5) > 0 && ev.type == ENET_EVENT_TYPE_CONNECT) {
                connected++;
                break;
            }
    }
    printf("ready halfopen=%d\n", connected);
    fflush(stdout);
    double start = now_s();
    while (now_s() - start < seconds) /* keep ENet's pings answered, send no hello */
        for (int i = 0; i < n; i++) {
            ENetEvent ev;
            if (hosts[i]) enet_host_service(hosts[i], &ev, 0);
        }
    printf("result mode=halfopen connected=%d seconds=%.1f\n", connected, seconds);
    for (int i = 0; i < n; i++)
        if (hosts[i]) enet_host_destroy(hosts[i]);
    free(hosts);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: flood spoof PORT RATE SECONDS | flood halfopen PORT N SECONDS\n");
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[2]);
    if (enet_initialize()) return 1;
    if (!strcmp(argv[1], "spoof")) return spoof(port, atof(argv[3]), atof(argv[4]));
    if (!strcmp(argv[1], "halfopen")) return halfopen(port, atoi(argv[3]), atof(argv[4]));
    return 2;
}
