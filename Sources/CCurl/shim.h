// libcurl (Debian's libcurl4-openssl-dev) for the OpenADR VEN. curl_easy_setopt and
// curl_easy_getinfo are variadic, which Swift cannot call: the typed wrappers below are the
// only way the Swift side sets options or reads results.
#include <curl/curl.h>

typedef size_t (*gridlet_curl_data_cb)(char *data, size_t size, size_t count, void *user);
typedef int (*gridlet_curl_progress_cb)(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static const long gridlet_curl_global_default = CURL_GLOBAL_DEFAULT;
static const unsigned int gridlet_curlh_header = CURLH_HEADER;
static const size_t gridlet_curl_error_size = CURL_ERROR_SIZE;

static inline CURLcode gridlet_curl_setopt_long(CURL *c, CURLoption o, long v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode gridlet_curl_setopt_string(CURL *c, CURLoption o, const char *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode gridlet_curl_setopt_pointer(CURL *c, CURLoption o, void *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode gridlet_curl_setopt_slist(CURL *c, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode gridlet_curl_setopt_data_cb(CURL *c, CURLoption o, gridlet_curl_data_cb f) { return curl_easy_setopt(c, o, f); }
static inline CURLcode gridlet_curl_setopt_progress_cb(CURL *c, gridlet_curl_progress_cb f) {
    return curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, f);
}
static inline CURLcode gridlet_curl_getinfo_long(CURL *c, CURLINFO i, long *v) { return curl_easy_getinfo(c, i, v); }
