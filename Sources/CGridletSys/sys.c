#define _GNU_SOURCE
#include <sys/timex.h>
#include <pthread.h>
#include <string.h>
#include "cgridletsys.h"

int gridlet_clock_synchronised(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx);
    if (state == -1) return -1;   /* e.g. EPERM under systemd's ProtectClock=yes */
    if (state == TIME_ERROR) return 0;
    return (tx.status & STA_UNSYNC) ? 0 : 1;
}

void gridlet_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    pthread_setname_np(pthread_self(), buf);
}

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <limits.h>

long gridlet_trim_code_pages(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return -1;
    char line[PATH_MAX + 256];
    long total = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 || path_at == 0) continue;
        char *path = line + path_at;
        size_t len = strlen(path);
        if (len && path[len - 1] == '\n') path[len - 1] = 0;
        if (strcmp(path, exe) != 0 || strcmp(perms, "r-xp") != 0) continue;
        madvise((void *)lo, hi - lo, MADV_RANDOM);
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
        total += (long)(hi - lo);
    }
    fclose(f);
    return total;
}

#include <errno.h>
#include <sys/ioctl.h>
#include <time.h>
#include <stdatomic.h>

#define RTS_TRACE_MAX 256
static atomic_int rts_test_mode;
static pthread_mutex_t rts_trace_lock = PTHREAD_MUTEX_INITIALIZER;
static long long rts_trace_ns[RTS_TRACE_MAX];
static int rts_trace_on[RTS_TRACE_MAX];
static int rts_trace_count;

void gridlet_rts_set_fd(int fd, int on) {
    if (atomic_load(&rts_test_mode)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        pthread_mutex_lock(&rts_trace_lock);
        if (rts_trace_count < RTS_TRACE_MAX) {
            rts_trace_ns[rts_trace_count] = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            rts_trace_on[rts_trace_count] = on ? 1 : 0;
            rts_trace_count++;
        }
        pthread_mutex_unlock(&rts_trace_lock);
        return;
    }
    int bit = TIOCM_RTS;
    (void)ioctl(fd, on ? TIOCMBIS : TIOCMBIC, &bit);
}

int gridlet_rts_probe(int fd) {
    if (atomic_load(&rts_test_mode)) return 0;
    int flags = 0;
    return ioctl(fd, TIOCMGET, &flags) == 0 ? 0 : errno;
}

void gridlet_rts_test_mode(int enable) {
    pthread_mutex_lock(&rts_trace_lock);
    rts_trace_count = 0;
    pthread_mutex_unlock(&rts_trace_lock);
    atomic_store(&rts_test_mode, enable ? 1 : 0);
}

int gridlet_rts_trace_read(long long *ns, int *on, int max) {
    pthread_mutex_lock(&rts_trace_lock);
    int n = rts_trace_count < max ? rts_trace_count : max;
    for (int i = 0; i < n; i++) { ns[i] = rts_trace_ns[i]; on[i] = rts_trace_on[i]; }
    rts_trace_count = 0;
    pthread_mutex_unlock(&rts_trace_lock);
    return n;
}

#include <netdb.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* getaddrinfo for a TCP host:port (passive: for bind); NULL with errno = fail_errno. */
static struct addrinfo *tcp_addresses(const char *host, int port, int passive, int fail_errno) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL) { errno = fail_errno; return NULL; }
    return res;
}

int gridlet_tcp_connect(const char *host, int port, int timeout_ms) {
    struct addrinfo *res = tcp_addresses(host, port, 0, EHOSTUNREACH);
    if (res == NULL) return -1;
    int last = ECONNREFUSED;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) { last = errno; continue; }
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            rc = poll(&p, 1, timeout_ms);
            if (rc == 1) {
                int err = 0; socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err == 0) rc = 0; else { errno = err; rc = -1; }
            } else {
                if (rc == 0) errno = ETIMEDOUT;
                rc = -1;
            }
        }
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            freeaddrinfo(res);
            return fd;
        }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    errno = last;
    return -1;
}

int gridlet_open_pty(char *path, unsigned long path_len) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, path, path_len) != 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    return m;
}

int gridlet_tcp_listen(const char *host, int port) {
    struct addrinfo *res = tcp_addresses(host, port, 1, EADDRNOTAVAIL);
    if (res == NULL) return -1;
    int last = EADDRNOTAVAIL;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { last = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4) == 0) { freeaddrinfo(res); return fd; }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    errno = last;
    return -1;
}
