/* Raw libmodbus poll loop: the baseline for bench/poll-rate.sh.
 * usage: raw_modbus_poll HOST PORT UNIT SECONDS FC:ADDR:COUNT [FC:ADDR:COUNT ...]
 * Reads the given blocks back to back for SECONDS and prints transactions per second. */
#include <errno.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: %s HOST PORT UNIT SECONDS FC:ADDR:COUNT...\n", argv[0]); return 2; }
    modbus_t *ctx = modbus_new_tcp(argv[1], atoi(argv[2]));
    if (!ctx || modbus_connect(ctx) != 0) { fprintf(stderr, "connect: %s\n", modbus_strerror(errno)); return 1; }
    modbus_set_slave(ctx, atoi(argv[3]));
    double seconds = atof(argv[4]);
    int nblocks = argc - 5, fc[64], addr[64], count[64];
    for (int i = 0; i < nblocks && i < 64; i++) sscanf(argv[5 + i], "%d:%d:%d", &fc[i], &addr[i], &count[i]);
    uint16_t regs[125];
    long tx = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        for (int i = 0; i < nblocks; i++) {
            int rc = fc[i] == 3 ? modbus_read_registers(ctx, addr[i], count[i], regs)
                                : modbus_read_input_registers(ctx, addr[i], count[i], regs);
            if (rc < 0) { fprintf(stderr, "read: %s\n", modbus_strerror(errno)); return 1; }
            tx++;
        }
    }
    double elapsed = now() - start;
    printf("raw blocks=%d transactions=%ld seconds=%.3f tps=%.0f\n", nblocks, tx, elapsed, tx / elapsed);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
