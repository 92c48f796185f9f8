/*
 * wsgen: the fan-out benchmark's subscriber process in C (one epoll loop),
 * so the generator can take more deliveries per second than the servers
 * it measures can send.  gen.js (--client c) starts --procs of these and
 * drives them over stdin/stdout, exactly as it drives its Node children:
 *
 *   stdin  "open N" | "phase NAME" | "count" | "collect" | "exit"
 *   stdout {"ev":"opened","ok":..,"failed":..} | {"ev":"phased"} |
 *          {"ev":"count","delivered":..,"lastRecv":..,"closed":..} |
 *          {"ev":"collect","lat":[..],"delivered":..,"lastRecv":..,"closed":..}
 *
 * Subscribers speak RFC 6455 (masked client frames) and, with --proto sio,
 * Engine.IO v4 / Socket.IO v5: open packet, 40{"token"}, 421["join_ticket",
 * id] and its ack, pings "2" answered "3".  With --proto nchan a socket is
 * subscribed once upgraded.  A delivery is a text frame holding
 * "fanout-ts=<ms>;", <ms> being CLOCK_MONOTONIC in ms when the publisher
 * wrote the request (Node's hrtime, the same clock); its latency is our
 * CLOCK_MONOTONIC when the frame is parsed minus that.
 *
 * Usage: wsgen --host H --port P --path /socket.io/?... --proto sio|nchan
 *              [--token T] [--ticket ID] [--conc 200]
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { S_CONNECTING, S_UPGRADE, S_SIO_OPEN, S_SIO_AUTH, S_SIO_JOIN, S_READY,
       S_DEAD };

typedef struct {
    int       fd;
    int       state;
    char     *buf;
    size_t    len, cap;
} conn_t;

static struct {
    const char  *host, *path, *token, *ticket;
    int          port, sio, conc;
    conn_t      *conns;
    int          nconns, want, started, settled, ok, failed, closed;
    int          ep;
    int          measuring;
    double      *lat;
    size_t       nlat, caplat;
    double       last_recv;
} g;


static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


static void
send_all(conn_t *c, const char *p, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = write(c->fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;              /* tiny control frames: never blocks */
        }
        p += w;
        n -= w;
    }
}


/* One masked client frame (opcode op) carrying s[0..n). */
static void
send_frame(conn_t *c, int op, const char *s, size_t n)
{
    static const unsigned char  key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    char                        f[4096];
    size_t                      h = 0, i;

    if (n > sizeof(f) - 14) {
        return;
    }
    f[h++] = (char) (0x80 | op);
    if (n < 126) {
        f[h++] = (char) (0x80 | n);
    } else {
        f[h++] = (char) (0x80 | 126);
        f[h++] = (char) (n >> 8);
        f[h++] = (char) n;
    }
    memcpy(f + h, key, 4);
    h += 4;
    for (i = 0; i < n; i++) {
        f[h + i] = (char) (s[i] ^ key[i & 3]);
    }
    send_all(c, f, h + n);
}


static void
settle(conn_t *c, int ok)
{
    if (c->state == S_READY || c->state == S_DEAD) {
        return;
    }
    g.settled++;
    if (ok) {
        g.ok++;
        c->state = S_READY;
    } else {
        g.failed++;
        c->state = S_DEAD;
    }
}


static void
kill_conn(conn_t *c)
{
    if (c->state == S_READY) {
        g.closed++;
    }
    settle(c, 0);
    c->state = S_DEAD;
    if (c->fd >= 0) {
        epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}


static void start_more(void);


static void
on_text(conn_t *c, const char *p, size_t n)
{
    const char  *ts;
    char         msg[256];
    int          m;

    if (c->state == S_READY) {
        if (n == 1 && p[0] == '2') {
            send_frame(c, 1, "3", 1);
            return;
        }
        ts = memmem(p, n, "fanout-ts=", 10);
        if (ts != NULL && g.measuring) {
            double  t = now_ms(), sent = strtod(ts + 10, NULL);

            if (g.nlat == g.caplat) {
                g.caplat = g.caplat ? g.caplat * 2 : 65536;
                g.lat = realloc(g.lat, g.caplat * sizeof(double));
            }
            g.lat[g.nlat++] = t - sent;
            g.last_recv = t;
        }
        return;
    }
    if (!g.sio) {
        return;
    }
    if (n == 1 && p[0] == '2') {
        send_frame(c, 1, "3", 1);
    } else if (c->state == S_SIO_OPEN && n > 0 && p[0] == '0') {
        m = snprintf(msg, sizeof(msg), "40{\"token\":\"%s\"}", g.token);
        send_frame(c, 1, msg, m);
        c->state = S_SIO_AUTH;
    } else if (c->state == S_SIO_AUTH && n >= 2 && memcmp(p, "40", 2) == 0) {
        m = snprintf(msg, sizeof(msg), "421[\"join_ticket\",\"%s\"]", g.ticket);
        send_frame(c, 1, msg, m);
        c->state = S_SIO_JOIN;
    } else if (c->state == S_SIO_JOIN && n >= 3 && memcmp(p, "431", 3) == 0) {
        settle(c, memmem(p, n, "\"ok\":true", 9) != NULL);
        start_more();
    } else if (n >= 2 && memcmp(p, "44", 2) == 0) {
        kill_conn(c);
        start_more();
    }
}


/* Parse what c->buf holds: the 101 answer, then frames. */
static void
on_data(conn_t *c)
{
    size_t          off = 0, hl, n;
    unsigned char  *b;
    char           *end;
    int             op;

    if (c->state == S_UPGRADE) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL) {
            return;
        }
        if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) {
            kill_conn(c);
            start_more();
            return;
        }
        off = end + 4 - c->buf;
        if (g.sio) {
            c->state = S_SIO_OPEN;
        } else {
            settle(c, 1);
            start_more();
        }
    }

    while (c->fd >= 0 && c->len - off >= 2) {
        b = (unsigned char *) c->buf + off;
        op = b[0] & 0x0f;
        n = b[1] & 0x7f;
        hl = 2;
        if (n == 126) {
            if (c->len - off < 4) {
                break;
            }
            n = (size_t) b[2] << 8 | b[3];
            hl = 4;
        } else if (n == 127) {
            if (c->len - off < 10) {
                break;
            }
            n = 0;
            for (int i = 2; i < 10; i++) {
                n = n << 8 | b[i];
            }
            hl = 10;
        }
        if (c->len - off < hl + n) {
            break;
        }
        if (op == 1 || op == 2 || op == 0) {
            on_text(c, (char *) b + hl, n);
        } else if (op == 9) {
            send_frame(c, 10, (char *) b + hl, n);
        } else if (op == 8) {
            kill_conn(c);
            start_more();
            return;
        }
        off += hl + n;
    }
    if (c->fd >= 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}


static void
on_readable(conn_t *c)
{
    ssize_t  r;

    for ( ;; ) {
        if (c->cap - c->len < 16384) {
            c->cap = c->cap ? c->cap * 2 : 32768;
            c->buf = realloc(c->buf, c->cap);
        }
        r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r > 0) {
            c->len += r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && errno == EAGAIN) {
            break;
        }
        on_data(c);                /* what came before the close */
        kill_conn(c);
        start_more();
        return;
    }
    on_data(c);
}


static void
on_connected(conn_t *c)
{
    struct epoll_event  ev = { .events = EPOLLIN, .data.ptr = c };
    char                req[1024];
    int                 err = 0, n;
    socklen_t           len = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        kill_conn(c);
        start_more();
        return;
    }
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                 g.path, g.host, g.port);
    c->state = S_UPGRADE;
    send_all(c, req, n);
}


static void
start_one(conn_t *c)
{
    struct sockaddr_in   sa = { .sin_family = AF_INET };
    struct epoll_event   ev = { .events = EPOLLOUT, .data.ptr = c };
    int                  one = 1;

    sa.sin_port = htons(g.port);
    inet_pton(AF_INET, g.host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        settle(c, 0);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->state = S_CONNECTING;
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        && errno != EINPROGRESS)
    {
        kill_conn(c);
        return;
    }
    epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev);
}


/* Keep up to --conc handshakes in flight until "open N" is done. */
static void
start_more(void)
{
    while (g.started < g.want && g.started - g.settled < g.conc) {
        start_one(&g.conns[g.started++]);
    }
    if (g.want > 0 && g.settled == g.want) {
        printf("{\"ev\":\"opened\",\"ok\":%d,\"failed\":%d}\n", g.ok, g.failed);
        fflush(stdout);
        g.want = 0;
    }
}


static void
command(char *line)
{
    size_t  i;

    if (strncmp(line, "open ", 5) == 0) {
        g.nconns = atoi(line + 5);
        g.conns = calloc(g.nconns ? g.nconns : 1, sizeof(conn_t));
        g.want = g.nconns;
        if (g.want == 0) {
            printf("{\"ev\":\"opened\",\"ok\":0,\"failed\":0}\n");
            fflush(stdout);
        }
        start_more();
    } else if (strncmp(line, "phase ", 6) == 0) {
        g.measuring = strcmp(line + 6, "idle") != 0;
        g.nlat = 0;
        g.last_recv = 0;
        printf("{\"ev\":\"phased\"}\n");
    } else if (strcmp(line, "count") == 0) {
        printf("{\"ev\":\"count\",\"delivered\":%zu,\"lastRecv\":%.3f,"
               "\"closed\":%d}\n", g.nlat, g.last_recv, g.closed);
    } else if (strcmp(line, "collect") == 0) {
        printf("{\"ev\":\"collect\",\"delivered\":%zu,\"lastRecv\":%.3f,"
               "\"closed\":%d,\"lat\":[", g.nlat, g.last_recv, g.closed);
        for (i = 0; i < g.nlat; i++) {
            printf(i ? ",%.3f" : "%.3f", g.lat[i]);
        }
        printf("]}\n");
        g.measuring = 0;
    } else if (strcmp(line, "exit") == 0) {
        exit(0);
    }
    fflush(stdout);
}


int
main(int argc, char **argv)
{
    struct epoll_event   evs[256], ev = { .events = EPOLLIN, .data.ptr = NULL };
    char                 in[4096], *nl;
    size_t               inlen = 0;
    ssize_t              r;
    int                  i, n;
    conn_t              *c;

    g.host = "127.0.0.1";
    g.path = "/";
    g.token = g.ticket = "";
    g.conc = 200;
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) g.host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) g.port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--path")) g.path = argv[i + 1];
        else if (!strcmp(argv[i], "--proto")) g.sio = !strcmp(argv[i + 1], "sio");
        else if (!strcmp(argv[i], "--token")) g.token = argv[i + 1];
        else if (!strcmp(argv[i], "--ticket")) g.ticket = argv[i + 1];
        else if (!strcmp(argv[i], "--conc")) g.conc = atoi(argv[i + 1]);
    }
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    epoll_ctl(g.ep, EPOLL_CTL_ADD, 0, &ev);

    for ( ;; ) {
        n = epoll_wait(g.ep, evs, 256, -1);
        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (c == NULL) {
                r = read(0, in + inlen, sizeof(in) - 1 - inlen);
                if (r == 0) {
                    return 0;            /* the driver went away */
                }
                if (r < 0) {
                    continue;
                }
                inlen += r;
                in[inlen] = '\0';
                while ((nl = strchr(in, '\n')) != NULL) {
                    *nl = '\0';
                    command(in);
                    inlen -= nl + 1 - in;
                    memmove(in, nl + 1, inlen + 1);
                }
                continue;
            }
            if (c->fd < 0) {
                continue;
            }
            if (c->state == S_CONNECTING) {
                on_connected(c);
            } else {
                on_readable(c);
            }
        }
    }
}
