#ifndef CGRIDLETSYS_H
#define CGRIDLETSYS_H
/* Small wrappers for Linux/GNU calls that do not import cleanly into Swift. */

/* 1 when the kernel clock is synchronised (adjtimex: no STA_UNSYNC, not TIME_ERROR), else 0. */
int gridlet_clock_synchronised(void);

/* Names the calling thread (pthread_setname_np, 15 chars max). */
void gridlet_set_thread_name(const char *name);
#endif
