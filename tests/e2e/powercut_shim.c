/* LD_PRELOAD shim for the power-cut variant of the queue crash loop (queue_crash.py
   --power-cut). For every pwrite to a file named queue.dat it first appends an undo/redo
   entry to the journal named by $GRIDLET_POWERCUT_JOURNAL:

       'W' u64 offset, u32 length, old bytes (what the file held there), new bytes

   for every fdatasync/fsync of that file a 'B' u32 token when it starts and, when it returns
   successfully, an 'E' u32 token (the same token), and every write to standard output (the
   stress program's protocol lines) as 'O' u32 length, bytes. Syncs may run on another thread
   than the writes (the queue's background syncs): one mutex orders every journal entry with
   the operation it describes (a write is journaled and done under it; 'B' is journaled before
   the sync starts), so a completed sync covers exactly the writes journaled before its 'B'.
   So the journal is one total order of file writes, syncs and reports: the harness can cut
   the power at any point of it, undo every write after that point and a random subset of the
   unsynced ones before it, and check the reopened queue against the reports made before it.
   Build: cc -shared -fPIC -O2 -o powercut_shim.so powercut_shim.c */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "queue_fd.h"

static int journal = -1;
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t sync_tokens;

static void journal_open(void) {
    if (journal >= 0) return;
    const char *p = getenv("GRIDLET_POWERCUT_JOURNAL");
    if (!p) return;
    journal = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
static write_fn real_write;

static void journal_put(const void *b, size_t n) {
    const char *c = b;
    if (!real_write) real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    while (n > 0) {
        ssize_t w = real_write(journal, c, n);
        if (w <= 0) { if (errno == EINTR) continue; abort(); }
        c += w; n -= (size_t)w;
    }
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef int (*sync_fn)(int);

static void record_write(int fd, const void *buf, size_t count, off_t offset) {
    journal_open();
    if (journal < 0 || !is_queue_fd(fd)) return;
    pread_fn real_pread = (pread_fn)dlsym(RTLD_NEXT, "pread64");
    unsigned char *old = calloc(1, count ? count : 1);
    if (!old) abort();
    ssize_t got = real_pread(fd, old, count, offset);
    (void)got; /* bytes past the end read as zero (calloc) */
    unsigned char hdr[13];
    uint64_t off = (uint64_t)offset;
    uint32_t len = (uint32_t)count;
    hdr[0] = 'W';
    memcpy(hdr + 1, &off, 8);
    memcpy(hdr + 9, &len, 4);
    journal_put(hdr, sizeof hdr);
    journal_put(old, count);
    journal_put(buf, count);
    free(old);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    pthread_mutex_lock(&journal_lock);
    record_write(fd, buf, count, offset);
    ssize_t rc = real(fd, buf, count, offset);
    pthread_mutex_unlock(&journal_lock);
    return rc;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    pthread_mutex_lock(&journal_lock);
    record_write(fd, buf, count, offset);
    ssize_t rc = real(fd, buf, count, offset);
    pthread_mutex_unlock(&journal_lock);
    return rc;
}

static void sync_marker(char tag, uint32_t token) {
    unsigned char m[5];
    m[0] = (unsigned char)tag;
    memcpy(m + 1, &token, 4);
    journal_put(m, sizeof m);
}

/* 'B' before the sync starts, 'E' after it succeeded; returns the sync's result. */
static int journaled_sync(int fd, sync_fn real) {
    uint32_t token = 0;
    int queue = 0;
    pthread_mutex_lock(&journal_lock);
    journal_open();
    if (journal >= 0 && is_queue_fd(fd)) {
        queue = 1;
        token = ++sync_tokens;
        sync_marker('B', token);
    }
    pthread_mutex_unlock(&journal_lock);
    int rc = real(fd);
    if (rc == 0 && queue) {
        pthread_mutex_lock(&journal_lock);
        sync_marker('E', token);
        pthread_mutex_unlock(&journal_lock);
    }
    return rc;
}

int fdatasync(int fd) {
    static sync_fn real;
    if (!real) real = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    return journaled_sync(fd, real);
}

int fsync(int fd) {
    static sync_fn real;
    if (!real) real = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    return journaled_sync(fd, real);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (!real_write) real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    if (fd == 1) {
        pthread_mutex_lock(&journal_lock);
        journal_open();
        if (journal >= 0) {
            unsigned char hdr[5];
            uint32_t len = (uint32_t)count;
            hdr[0] = 'O';
            memcpy(hdr + 1, &len, 4);
            journal_put(hdr, sizeof hdr);
            journal_put(buf, count);
        }
        ssize_t rc = real_write(fd, buf, count);
        pthread_mutex_unlock(&journal_lock);
        return rc;
    }
    return real_write(fd, buf, count);
}
