#ifndef CGRIDLETSYS_H
#define CGRIDLETSYS_H
/* Small wrappers for Linux/GNU calls that do not import cleanly into Swift. */

/* 1 when the kernel clock is synchronised (adjtimex: no STA_UNSYNC, not TIME_ERROR), else 0. */
int gridlet_clock_synchronised(void);

/* Names the calling thread (pthread_setname_np, 15 chars max). */
void gridlet_set_thread_name(const char *name);
#endif

/* Marks the executable's own code mapping MADV_RANDOM (no read-ahead or fault-around beyond
   what is executed) and drops the code pages mapped so far, so the resident set holds the code
   actually in use. Only the r-xp mapping of /proc/self/exe is touched (clean, file-backed
   pages that simply fault in again). Returns the bytes advised, or -1. */
long gridlet_trim_code_pages(void);
