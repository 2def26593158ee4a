/* The baseline: a raw libmodbus + libmosquitto loop with no queue, no control and no config.
 * Polls the SDM630 blocks gridlet reads (input registers 0..17, 52..53, 70..75; 3 requests)
 * of each unit id, decodes the 13 float32 values (high word first) and publishes them as one
 * JSON message per device (QoS 1) to raw/<unit>. Every interval_ms (0 = back to back).
 * usage: raw_loop MQTT_PORT MODBUS_PORT INTERVAL_MS UNIT...
 * build: gcc -O2 -o raw_loop raw_loop.c $(pkg-config --cflags --libs libmodbus) -lmosquitto */
#include <errno.h>
#include <modbus.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;
static void on_term(int s) { (void)s; stop = 1; }

static float f32(const uint16_t *r) {
    uint32_t v = ((uint32_t)r[0] << 16) | r[1];
    float f;
    memcpy(&f, &v, 4);
    return f;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: raw_loop MQTT_PORT MODBUS_PORT INTERVAL_MS UNIT...\n"); return 2; }
    int mqtt_port = atoi(argv[1]), mb_port = atoi(argv[2]), interval_ms = atoi(argv[3]);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new("raw-loop", true, NULL);
    if (!m || mosquitto_connect(m, "127.0.0.1", mqtt_port, 30) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mqtt connect failed\n"); return 1; }
    mosquitto_loop_start(m);
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", mb_port);
    if (!ctx || modbus_connect(ctx) != 0) { fprintf(stderr, "modbus connect: %s\n", modbus_strerror(errno)); return 1; }
    static const int blocks[3][2] = {{0, 18}, {52, 2}, {70, 6}};
    uint16_t regs[76];
    char payload[512];
    char topic[64];
    while (!stop) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int u = 4; u < argc; u++) {
            int unit = atoi(argv[u]), ok = 1;
            modbus_set_slave(ctx, unit);
            for (int b = 0; b < 3 && ok; b++)
                if (modbus_read_input_registers(ctx, blocks[b][0], blocks[b][1], regs + blocks[b][0]) != blocks[b][1]) ok = 0;
            if (!ok) { fprintf(stderr, "read unit %d: %s\n", unit, modbus_strerror(errno)); continue; }
            int n = snprintf(payload, sizeof payload,
                "{\"v\":[%g,%g,%g],\"a\":[%g,%g,%g],\"w\":[%g,%g,%g],\"p\":%g,\"hz\":%g,\"imp\":%g,\"exp\":%g}",
                f32(regs + 0), f32(regs + 2), f32(regs + 4), f32(regs + 6), f32(regs + 8), f32(regs + 10),
                f32(regs + 12), f32(regs + 14), f32(regs + 16), f32(regs + 52), f32(regs + 70), f32(regs + 72), f32(regs + 74));
            snprintf(topic, sizeof topic, "raw/%d", unit);
            mosquitto_publish(m, NULL, topic, n, payload, 1, false);
        }
        if (interval_ms > 0) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            long spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
            long left = interval_ms - spent;
            if (left > 0) { struct timespec d = {left / 1000, (left % 1000) * 1000000}; nanosleep(&d, NULL); }
        }
    }
    modbus_close(ctx);
    modbus_free(ctx);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
