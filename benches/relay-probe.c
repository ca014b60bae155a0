// The readiness-model probe of BENCHMARKS.md (B3, 1-byte streams): a one-way
// relay from unix socket A to unix socket B that waits with select, with epoll
// (registered once, edge-triggered: as tokio does), with EPOLLONESHOT re-armed
// after each drain, or with the socket removed from epoll while it is read.
//   cc -O2 -o /tmp/relay benches/relay-probe.c
//   /tmp/relay select|epoll|oneshot|del A.sock B.sock &
//   chardevd-load --socket A.sock --peer unix:B.sock --workload relay-stream --payload 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <fcntl.h>
#include <errno.h>
static int listen_accept(const char *p) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0); struct sockaddr_un a = {0};
  a.sun_family = AF_UNIX; strcpy(a.sun_path, p); unlink(p);
  if (bind(s, (void*)&a, sizeof a) || listen(s, 1)) { perror("bind"); exit(1); }
  return s;
}
int main(int argc, char **argv) {
  int la = listen_accept(argv[2]), lb = listen_accept(argv[3]);
  int a = accept(la, 0, 0), b = accept(lb, 0, 0);
  static char buf[131072];
  fcntl(a, F_SETFL, O_NONBLOCK);
  if (!strcmp(argv[1], "epoll")) {
    int ep = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = a};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    for (;;) {
      struct epoll_event got; if (epoll_wait(ep, &got, 1, -1) < 0) continue;
      for (;;) {
        ssize_t n = read(a, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) break;
        for (ssize_t o = 0; o < n;) { ssize_t w = write(b, buf + o, n - o); if (w <= 0) return 1; o += w; }
        if (n < (ssize_t)sizeof buf) break;
      }
    }
  } else if (!strcmp(argv[1], "oneshot") || !strcmp(argv[1], "del")) {
    int del = !strcmp(argv[1], "del");
    int ep = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN | (del ? 0 : EPOLLONESHOT), .data.fd = a};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    for (;;) {
      struct epoll_event got; if (epoll_wait(ep, &got, 1, -1) < 0) continue;
      if (del) epoll_ctl(ep, EPOLL_CTL_DEL, a, 0);
      for (;;) {
        ssize_t n = read(a, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) break;
        for (ssize_t o = 0; o < n;) { ssize_t w = write(b, buf + o, n - o); if (w <= 0) return 1; o += w; }
        if (n < (ssize_t)sizeof buf) break;
      }
      epoll_ctl(ep, del ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, a, &ev);
    }
  } else {
    for (;;) {
      fd_set r; FD_ZERO(&r); FD_SET(a, &r);
      if (select(a + 1, &r, 0, 0, 0) < 0) continue;
      ssize_t n = read(a, buf, sizeof buf);
      if (n == 0) return 0;
      if (n < 0) continue;
      for (ssize_t o = 0; o < n;) { ssize_t w = write(b, buf + o, n - o); if (w <= 0) return 1; o += w; }
    }
  }
}
