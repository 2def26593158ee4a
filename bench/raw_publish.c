/* Reference for gridlet's unpaced drain rate: publish N QoS 1 messages of SIZE bytes with at
 * most 16 in flight (as gridlet does), wait for every PUBACK, print messages per second.
 * build: gcc -O2 -o raw_publish raw_publish.c -lmosquitto
 * usage: raw_publish PORT N SIZE */
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int acked = 0, connected = 0;
static void on_connect(struct mosquitto *m, void *o, int rc) { (void)m; (void)o; connected = rc == 0 ? 1 : -1; }
static void on_publish(struct mosquitto *m, void *o, int mid) { (void)m; (void)o; (void)mid; acked++; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: raw_publish PORT N SIZE\n"); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[2]), size = atoi(argv[3]);
    char *payload = malloc(size); memset(payload, 'x', size);
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new("raw-publish", true, NULL);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect failed\n"); return 1; }
    while (!connected) mosquitto_loop(m, 100, 1);
    double t0 = now();
    int sent = 0;
    while (acked < n) {
        while (sent < n && sent - acked < 16) {
            mosquitto_publish(m, NULL, "bench/raw", size, payload, 1, false);
            sent++;
        }
        mosquitto_loop(m, 10, 1);
    }
    double dt = now() - t0;
    printf("raw_libmosquitto_msgs_per_s=%.0f (n=%d size=%d elapsed=%.3fs)\n", n / dt, n, size, dt);
    mosquitto_disconnect(m); mosquitto_destroy(m); mosquitto_lib_cleanup();
    return 0;
}
