// See include/ccurl.h: libcurl through dlopen, resolved once.
#include "ccurl.h"
#include <dlfcn.h>
#include <pthread.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLHcode (*easy_header)(CURL *, const char *, size_t, unsigned int, int, struct curl_header **);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} api;

static const char *load_error = "libcurl not loaded";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) { load_error = "cannot load libcurl.so.4 (install Debian's libcurl4)"; return; }
#define SYM(field, name) if (!(*(void **)&api.field = dlsym(h, name))) { load_error = "libcurl.so.4 lacks " name " (7.84 or later needed)"; return; }
    SYM(global_init, "curl_global_init")
    SYM(easy_init, "curl_easy_init")
    SYM(easy_cleanup, "curl_easy_cleanup")
    SYM(easy_perform, "curl_easy_perform")
    SYM(easy_strerror, "curl_easy_strerror")
    SYM(easy_header, "curl_easy_header")
    SYM(slist_append, "curl_slist_append")
    SYM(slist_free_all, "curl_slist_free_all")
    SYM(easy_setopt, "curl_easy_setopt")
    SYM(easy_getinfo, "curl_easy_getinfo")
#undef SYM
    load_error = api.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? NULL : "curl_global_init failed";
}

const char *gridlet_curl_load(void) {
    pthread_once(&once, load);
    return load_error;
}

// The wrappers below are called only after gridlet_curl_load() returned NULL.
CURL *gridlet_curl_easy_init(void) { return api.easy_init(); }
void gridlet_curl_easy_cleanup(CURL *c) { api.easy_cleanup(c); }
CURLcode gridlet_curl_easy_perform(CURL *c) { return api.easy_perform(c); }
const char *gridlet_curl_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
CURLHcode gridlet_curl_easy_header(CURL *c, const char *name, size_t index, unsigned int origin, int request, struct curl_header **out) {
    return api.easy_header(c, name, index, origin, request, out);
}
struct curl_slist *gridlet_curl_slist_append(struct curl_slist *list, const char *text) { return api.slist_append(list, text); }
void gridlet_curl_slist_free_all(struct curl_slist *list) { api.slist_free_all(list); }

CURLcode gridlet_curl_setopt_long(CURL *c, CURLoption o, long v) { return api.easy_setopt(c, o, v); }
CURLcode gridlet_curl_setopt_string(CURL *c, CURLoption o, const char *v) { return api.easy_setopt(c, o, v); }
CURLcode gridlet_curl_setopt_pointer(CURL *c, CURLoption o, void *v) { return api.easy_setopt(c, o, v); }
CURLcode gridlet_curl_setopt_slist(CURL *c, CURLoption o, struct curl_slist *v) { return api.easy_setopt(c, o, v); }
CURLcode gridlet_curl_setopt_data_cb(CURL *c, CURLoption o, gridlet_curl_data_cb f) { return api.easy_setopt(c, o, f); }
CURLcode gridlet_curl_setopt_progress_cb(CURL *c, gridlet_curl_progress_cb f) { return api.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, f); }
CURLcode gridlet_curl_getinfo_long(CURL *c, CURLINFO i, long *v) { return api.easy_getinfo(c, i, v); }
