#ifndef CGRIDLETSYS_H
#define CGRIDLETSYS_H
/* Small wrappers for Linux/GNU calls that do not import cleanly into Swift. */

/* 1 when the kernel clock is synchronised (adjtimex: no STA_UNSYNC, not TIME_ERROR), 0 when not,
   -1 when adjtimex is refused (EPERM under systemd ProtectClock=yes). */
int gridlet_clock_synchronised(void);

/* A non-blocking, close-on-exec eventfd with counter 0 (-1 and errno on failure). */
int gridlet_eventfd(void);

/* Names the calling thread (pthread_setname_np, 15 chars max). */
void gridlet_set_thread_name(const char *name);

/* Unmaps the pages of every segment that is never written (no PF_W PT_LOAD: code, read-only
   data, symbol and relocation tables) of the executable and each loaded shared library, and marks
   the code MADV_RANDOM (no read-ahead on refault). They are clean file-backed pages that fault in
   again as used, so the resident set holds what is in use (plus the kernel's fault-around) instead
   of what start-up and the dynamic loader touched once. Writable segments (RELRO included) and
   objects with text relocations are left alone. Returns the bytes advised. */
long gridlet_trim_code_pages(void);
/* The same for the loaded objects from the `first`-th on (in load order: dlopen appends). */
long gridlet_trim_code_pages_from(int first);
/* How many objects are loaded (the executable, the vDSO and the shared libraries). */
int gridlet_loaded_object_count(void);

/* mallopt(M_ARENA_MAX, 1): every thread allocates from the main arena (returns mallopt's 1 on
   success). */
int gridlet_malloc_one_arena(void);

/* RTS line control for user-space RS-485 direction switching (installed as libmodbus's custom
   RTS setter). gridlet_rts_set_fd raises (on != 0) or lowers RTS with TIOCMBIS/TIOCMBIC.
   gridlet_rts_probe returns 0 when fd has a controllable RTS line (TIOCMGET works), else errno
   (ENOTTY for a pty or an adapter without modem lines). */
void gridlet_rts_set_fd(int fd, int on);
int gridlet_rts_probe(int fd);

/* Test support only. In test mode the ioctls are skipped (a pty has no RTS line), the probe
   succeeds, and every transition is recorded with its CLOCK_MONOTONIC time in ns.
   gridlet_rts_trace_read copies up to max recorded transitions, clears them, returns the count. */
void gridlet_rts_test_mode(int enable);
int gridlet_rts_trace_read(long long *ns, int *on, int max);

/* A TCP connection to host:port (name or address, IPv4/IPv6) within timeout_ms, with
   TCP_NODELAY; blocking afterwards. Returns the socket, or -1 with errno set
   (ETIMEDOUT, ECONNREFUSED, ...; EHOSTUNREACH when the name does not resolve). */
int gridlet_tcp_connect(const char *host, int port, int timeout_ms);

/* A new pseudo-terminal: returns the master fd (O_RDWR, O_NOCTTY, O_CLOEXEC) and writes the
   slave's path into path; -1 with errno set on failure. */
int gridlet_open_pty(char *path, unsigned long path_len);

/* A TCP listening socket on host:port (SO_REUSEADDR, backlog 4, close-on-exec); -1 with errno. */
int gridlet_tcp_listen(const char *host, int port);

#endif
