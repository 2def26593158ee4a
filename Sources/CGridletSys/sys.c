#define _GNU_SOURCE
#include <sys/timex.h>
#include <pthread.h>
#include <string.h>
#include "cgridletsys.h"

int gridlet_clock_synchronised(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx);
    if (state == -1 || state == TIME_ERROR) return 0;
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
