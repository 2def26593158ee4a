/* Shared by the LD_PRELOAD shims of the e2e tests (powercut_shim.c, eio_shim.c). */
#ifndef GRIDLET_QUEUE_FD_H
#define GRIDLET_QUEUE_FD_H
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 1 when fd is open on a file named queue.dat (the shims act on the queue file only). */
static int is_queue_fd(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t len = (size_t)n;
    return len >= 10 && strcmp(path + len - 10, "/queue.dat") == 0;
}
#endif
