#define _GNU_SOURCE
#include <sys/timex.h>
#include <sys/eventfd.h>
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

int gridlet_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

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

#include <link.h>
#include <elf.h>

/* Drops this process's mappings of pages that are never written: every PT_LOAD segment without
 * PF_W of the executable and of each loaded shared library (code, read-only data, and the symbol
 * and relocation tables the dynamic loader read once at start-up). They are clean file pages, so
 * MADV_DONTNEED only unmaps them; the ones in use fault in again. Writable segments (including
 * the RELRO part holding relocated pointers) and objects with text relocations are left alone:
 * dropping their private copies would undo the relocations. Returns the bytes advised. */
static int has_textrel(const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        for (; d->d_tag != DT_NULL; d++) {
            if (d->d_tag == DT_TEXTREL) return 1;
            if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL)) return 1;
        }
    }
    return 0;
}

struct trim_pass { long total; int index; int from; };

static int trim_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct trim_pass *pass = data;
    long *total = &pass->total;
    if (pass->index++ < pass->from) return 0;
    if (info->dlpi_name && strncmp(info->dlpi_name, "linux-vdso", 10) == 0) return 0;
    if (has_textrel(info)) return 0;
    long page = sysconf(_SC_PAGESIZE);
    /* The program headers live in the object's first, read-only segment: work from a copy, or
     * reading the next header after that segment was dropped faults it in again (and the kernel's
     * fault-around maps 64 KiB with it: measured ~64 KiB per loaded object). */
    ElfW(Phdr) phdrs[64];
    int phnum = info->dlpi_phnum < 64 ? info->dlpi_phnum : 64;
    memcpy(phdrs, info->dlpi_phdr, (size_t)phnum * sizeof phdrs[0]);
    for (int i = 0; i < phnum; i++) {
        const ElfW(Phdr) *ph = &phdrs[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t)(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(uintptr_t)(page - 1);
        /* A read-only segment never shares a page with a writable one in these objects (-z
         * separate-code, page-aligned PT_LOADs); check anyway and keep a shared boundary page. */
        for (int j = 0; j < phnum; j++) {
            const ElfW(Phdr) *w = &phdrs[j];
            if (w->p_type != PT_LOAD || !(w->p_flags & PF_W)) continue;
            uintptr_t wlo = (info->dlpi_addr + w->p_vaddr) & ~(uintptr_t)(page - 1);
            uintptr_t whi = (info->dlpi_addr + w->p_vaddr + w->p_memsz + page - 1) & ~(uintptr_t)(page - 1);
            if (wlo < hi && whi > lo) { if (wlo <= lo) lo = whi; else hi = wlo; }
        }
        if (hi <= lo) continue;
        if (ph->p_flags & PF_X) madvise((void *)lo, hi - lo, MADV_RANDOM);
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) *total += (long)(hi - lo);
    }
    return 0;
}

long gridlet_trim_code_pages(void) { return gridlet_trim_code_pages_from(0); }

long gridlet_trim_code_pages_from(int first) {
    struct trim_pass pass = { 0, 0, first };
    dl_iterate_phdr(trim_object, &pass);
    return pass.total;
}

static int count_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info; (void)size;
    ++*(int *)data;
    return 0;
}

int gridlet_loaded_object_count(void) {
    int n = 0;
    dl_iterate_phdr(count_object, &n);
    return n;
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

#include <malloc.h>

int gridlet_malloc_one_arena(void) {
    return mallopt(M_ARENA_MAX, 1);
}
