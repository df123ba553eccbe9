// Round-trip floor: a 4 KiB request and a 40-byte answer between two processes, over TCP on
// loopback or over an AF_UNIX stream socket, one at a time. Prints p50 and p99 in microseconds.
// Build and run: gcc -O2 -o /tmp/round-trip-floor Benchmarks/experiments/round-trip-floor.c && /tmp/round-trip-floor tcp && /tmp/round-trip-floor unix
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void full(int fd, char *buf, size_t n, int rd) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = rd ? recv(fd, buf + done, n - done, 0) : send(fd, buf + done, n - done, 0);
        if (k <= 0) { perror("io"); exit(1); }
        done += k;
    }
}
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    int unixsock = argc > 1 && strcmp(argv[1], "unix") == 0;
    int count = 20000, fds[2];
    if (unixsock) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
    } else {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = inet_addr("127.0.0.1")};
        socklen_t len = sizeof a;
        bind(l, (void *)&a, sizeof a); listen(l, 1); getsockname(l, (void *)&a, &len);
        fds[0] = socket(AF_INET, SOCK_STREAM, 0);
        connect(fds[0], (void *)&a, sizeof a);
        fds[1] = accept(l, 0, 0);
        int one = 1;
        setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char req[4096 + 32] = {0}, ans[40] = {0};
    if (fork() == 0) {
        for (int i = 0; i < count; i++) { full(fds[1], req, sizeof req, 1); full(fds[1], ans, sizeof ans, 0); }
        exit(0);
    }
    double *t = malloc(sizeof(double) * count);
    for (int i = 0; i < count; i++) {
        struct timespec s, e;
        clock_gettime(CLOCK_MONOTONIC, &s);
        full(fds[0], req, sizeof req, 0); full(fds[0], ans, sizeof ans, 1);
        clock_gettime(CLOCK_MONOTONIC, &e);
        t[i] = (e.tv_sec - s.tv_sec) * 1e6 + (e.tv_nsec - s.tv_nsec) / 1e3;
    }
    wait(0);
    qsort(t, count, sizeof(double), cmp);
    printf("%s round trip (4 KiB there, 40 B back): p50 %.1f us p99 %.1f us\n", unixsock ? "AF_UNIX" : "TCP loopback", t[count / 2], t[count * 99 / 100]);
    return 0;
}
