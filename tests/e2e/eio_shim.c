/* LD_PRELOAD shim for test_queue_io_error.py: makes fdatasync/fsync of a file named queue.dat
   fail with EIO, as a disk whose writeback failed would, without syncing anything.
   GRIDLET_EIO_AT=N   the Nth sync of queue.dat (counted from 1, in this process) fails;
   GRIDLET_EIO_COUNT=K that many syncs from the Nth on fail (default 1).
   GRIDLET_SYNC_DELAY_MS=D every sync of queue.dat first sleeps D ms (a slow SD card).
   Syncs of other files (control.json, ledger.json) pass through untouched.
   Build: cc -shared -fPIC -O2 -o eio_shim.so eio_shim.c */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue_fd.h"

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

/* 1 when this sync of queue.dat is one of those that must fail. */
static int must_fail(int fd) {
    static long calls;
    if (!is_queue_fd(fd)) return 0;
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    long at = env_long("GRIDLET_EIO_AT", 0), count = env_long("GRIDLET_EIO_COUNT", 1);
    return at > 0 && n >= at && n < at + count;
}

typedef int (*sync_fn)(int);

static void slow_disk(int fd) {
    long ms = env_long("GRIDLET_SYNC_DELAY_MS", 0);
    if (ms <= 0 || !is_queue_fd(fd)) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int fdatasync(int fd) {
    static sync_fn real;
    if (!real) real = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    slow_disk(fd);
    if (must_fail(fd)) { errno = EIO; return -1; }
    return real(fd);
}

int fsync(int fd) {
    static sync_fn real;
    if (!real) real = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    slow_disk(fd);
    if (must_fail(fd)) { errno = EIO; return -1; }
    return real(fd);
}
