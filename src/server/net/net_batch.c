/* net_batch: one sendmmsg per round instead of ENet's one sendmsg per peer,
 * and recvmmsg under ENet's one-datagram receives.
 *
 * ENet (a shared library from the distribution) sends every datagram with
 * enet_socket_send and reads every one with enet_socket_receive, and it
 * calls both through its PLT, so the definitions below — linked into the
 * server executable — take their place. They keep ENet's exact contract
 * (return the bytes sent or received, 0 for "would block", -1 on error or a
 * truncated datagram) and behave exactly like ENet's own unless the calling
 * thread has armed a batch for that very socket (kn_net_batch_arm): a
 * network thread during its round. Then a send copies the datagram into the
 * batch and reports it sent; kn_net_batch_flush hands the whole batch to the
 * kernel in sendmmsg calls (also whenever the batch fills). A receive reads
 * up to RX_SLOTS datagrams at once with recvmmsg and hands them to ENet one
 * by one; kn_net_batch_rx_pending tells the loop not to sleep on the socket
 * while some wait here.
 *
 * Invariants: a batch belongs to one network thread; nothing is queued
 * outside an armed round except through that thread's own flush; a datagram
 * the kernel refuses (other than "would block", retried next flush up to
 * once) is dropped and counted, as ENet drops an unreliable datagram whose
 * send failed (its reliable commands are resent on their timeout).
 *
 * Whether the interposition took effect is checked at start-up
 * (kn_net_batch_available): if the dynamic linker resolves ENet's calls to
 * ENet itself (a static ENet, another loader), batching reports itself off
 * and ENet sends as usual. */
#include "net_internal.h"

#include <dlfcn.h>
#include <enet/enet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define TX_SLOTS   64
#define RX_SLOTS   32
#define SLOT_BYTES ENET_PROTOCOL_MAXIMUM_MTU

struct kn_net_batch {
    int fd;
    /* sends waiting for the flush */
    unsigned tx_count;
    struct mmsghdr tx_msg[TX_SLOTS];
    struct iovec tx_iov[TX_SLOTS];
    struct sockaddr_in tx_addr[TX_SLOTS];
    unsigned char tx_data[TX_SLOTS][SLOT_BYTES];
    /* datagrams read, not yet handed to ENet: [rx_next, rx_count) */
    unsigned rx_next, rx_count;
    struct mmsghdr rx_msg[RX_SLOTS];
    struct iovec rx_iov[RX_SLOTS];
    struct sockaddr_in rx_addr[RX_SLOTS];
    unsigned char rx_data[RX_SLOTS][SLOT_BYTES];
    kn_net_batch_stats st;
};

static _Thread_local kn_net_batch *tl_armed;

kn_net_batch *kn_net_batch_new(void)
{
    kn_net_batch *b = kn_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->fd = -1;
    for (unsigned i = 0; i < TX_SLOTS; i++) {
        b->tx_iov[i].iov_base = b->tx_data[i];
        b->tx_msg[i].msg_hdr.msg_iov = &b->tx_iov[i];
        b->tx_msg[i].msg_hdr.msg_iovlen = 1;
        b->tx_msg[i].msg_hdr.msg_name = &b->tx_addr[i];
        b->tx_msg[i].msg_hdr.msg_namelen = sizeof b->tx_addr[i];
    }
    return b;
}

void kn_net_batch_free(kn_net_batch *b)
{
    if (!b) return;
    kn_net_batch_flush(b);
    if (tl_armed == b) tl_armed = NULL;
    kn_free(b);
}

void kn_net_batch_arm(kn_net_batch *b, int fd)
{
    b->fd = fd;
    tl_armed = b;
}

void kn_net_batch_disarm(kn_net_batch *b)
{
    kn_net_batch_flush(b);
    if (tl_armed == b) tl_armed = NULL;
}

void kn_net_batch_flush(kn_net_batch *b)
{
    unsigned done = 0, retried = 0;
    while (done < b->tx_count) {
        int n = sendmmsg(b->fd, b->tx_msg + done, b->tx_count - done, MSG_NOSIGNAL);
        b->st.send_calls++;
        if (n > 0) {
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !retried++) continue;
        /* The datagram at `done` was refused: drop it, go on with the rest. */
        b->st.send_dropped++;
        done++;
    }
    b->st.datagrams_sent += b->tx_count;
    b->tx_count = 0;
}

bool kn_net_batch_rx_pending(const kn_net_batch *b)
{
    return b->rx_next < b->rx_count;
}

kn_net_batch_stats kn_net_batch_stats_of(const kn_net_batch *b)
{
    return b->st;
}

/* --- ENet's socket calls -------------------------------------------------- */

static int plain_send(ENetSocket s, const ENetAddress *address, const ENetBuffer *buffers,
                      size_t count)
{
    struct msghdr m = {0};
    struct sockaddr_in sin = {0};
    if (address) {
        sin.sin_family = AF_INET;
        sin.sin_port = ENET_HOST_TO_NET_16(address->port);
        sin.sin_addr.s_addr = address->host;
        m.msg_name = &sin;
        m.msg_namelen = sizeof sin;
    }
    m.msg_iov = (struct iovec *)buffers;
    m.msg_iovlen = count;
    ssize_t n = sendmsg(s, &m, MSG_NOSIGNAL);
    if (n == -1) return errno == EWOULDBLOCK ? 0 : -1;
    return (int)n;
}

int enet_socket_send(ENetSocket s, const ENetAddress *address, const ENetBuffer *buffers,
                     size_t count)
{
    kn_net_batch *b = tl_armed;
    if (!b || b->fd != s || !address) return plain_send(s, address, buffers, count);
    size_t len = 0;
    for (size_t i = 0; i < count; i++)
        len += buffers[i].dataLength;
    if (len > SLOT_BYTES) return plain_send(s, address, buffers, count);
    if (b->tx_count == TX_SLOTS) kn_net_batch_flush(b);
    unsigned k = b->tx_count++;
    unsigned char *p = b->tx_data[k];
    for (size_t i = 0; i < count; i++) {
        memcpy(p, buffers[i].data, buffers[i].dataLength);
        p += buffers[i].dataLength;
    }
    b->tx_iov[k].iov_len = len;
    b->tx_addr[k] = (struct sockaddr_in){.sin_family = AF_INET,
                                         .sin_port = ENET_HOST_TO_NET_16(address->port),
                                         .sin_addr.s_addr = address->host};
    return (int)len;
}

static int plain_receive(ENetSocket s, ENetAddress *address, ENetBuffer *buffers, size_t count)
{
    struct msghdr m = {0};
    struct sockaddr_in sin;
    if (address) {
        m.msg_name = &sin;
        m.msg_namelen = sizeof sin;
    }
    m.msg_iov = (struct iovec *)buffers;
    m.msg_iovlen = count;
    ssize_t n = recvmsg(s, &m, MSG_NOSIGNAL);
    if (n == -1) return errno == EWOULDBLOCK ? 0 : -1;
    if (m.msg_flags & MSG_TRUNC) return -1;
    if (address) {
        address->host = (enet_uint32)sin.sin_addr.s_addr;
        address->port = ENET_NET_TO_HOST_16(sin.sin_port);
    }
    return (int)n;
}

static int refill(kn_net_batch *b)
{
    for (unsigned i = 0; i < RX_SLOTS; i++) {
        b->rx_iov[i] = (struct iovec){b->rx_data[i], SLOT_BYTES};
        b->rx_msg[i].msg_hdr = (struct msghdr){.msg_name = &b->rx_addr[i],
                                               .msg_namelen = sizeof b->rx_addr[i],
                                               .msg_iov = &b->rx_iov[i],
                                               .msg_iovlen = 1};
    }
    int n;
    do
        n = recvmmsg(b->fd, b->rx_msg, RX_SLOTS, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    b->st.recv_calls++;
    if (n < 0) return errno == EWOULDBLOCK ? 0 : -1;
    b->rx_next = 0;
    b->rx_count = (unsigned)n;
    b->st.datagrams_received += (unsigned)n;
    return n;
}

int enet_socket_receive(ENetSocket s, ENetAddress *address, ENetBuffer *buffers, size_t count)
{
    kn_net_batch *b = tl_armed;
    if (!b || b->fd != s || count != 1 || !address)
        return plain_receive(s, address, buffers, count);
    if (b->rx_next == b->rx_count) {
        int n = refill(b);
        if (n <= 0) return n;
    }
    unsigned k = b->rx_next++;
    const struct mmsghdr *m = &b->rx_msg[k];
    if (m->msg_hdr.msg_flags & MSG_TRUNC) return -1;
    size_t len = m->msg_len;
    if (len > buffers[0].dataLength) return -1;
    memcpy(buffers[0].data, b->rx_data[k], len);
    address->host = (enet_uint32)b->rx_addr[k].sin_addr.s_addr;
    address->port = ENET_NET_TO_HOST_16(b->rx_addr[k].sin_port);
    return (int)len;
}

bool kn_net_batch_available(void)
{
    /* ENet's calls go through the same global lookup as this one. */
    union {
        void *obj;
        int (*send)(ENetSocket, const ENetAddress *, const ENetBuffer *, size_t);
        int (*receive)(ENetSocket, ENetAddress *, ENetBuffer *, size_t);
    } s, r;
    s.obj = dlsym(RTLD_DEFAULT, "enet_socket_send");
    r.obj = dlsym(RTLD_DEFAULT, "enet_socket_receive");
    return s.send == enet_socket_send && r.receive == enet_socket_receive;
}
