// libcurl for the OpenADR VEN, loaded with dlopen("libcurl.so.4") on first use instead of linked:
// a site without `openadr:` then maps none of libcurl's dependency chain (GnuTLS, Kerberos, LDAP,
// libssh2, nghttp2, ... about 3 MiB of resident library pages measured, docs/benchmarks.md).
// The types and constants come from Debian's libcurl4-openssl-dev headers; every call goes
// through the typed wrappers below (curl_easy_setopt and curl_easy_getinfo are variadic, which
// Swift cannot call either way).
#pragma once
#include <curl/curl.h>

typedef size_t (*gridlet_curl_data_cb)(char *data, size_t size, size_t count, void *user);
typedef int (*gridlet_curl_progress_cb)(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static const long gridlet_curl_global_default = CURL_GLOBAL_DEFAULT;
static const unsigned int gridlet_curlh_header = CURLH_HEADER;
static const size_t gridlet_curl_error_size = CURL_ERROR_SIZE;

/// Loads libcurl and runs curl_global_init once (thread safe). NULL when ready, else why not
/// (a static string).
const char *gridlet_curl_load(void);

CURL *gridlet_curl_easy_init(void);
void gridlet_curl_easy_cleanup(CURL *c);
CURLcode gridlet_curl_easy_perform(CURL *c);
const char *gridlet_curl_easy_strerror(CURLcode code);
CURLHcode gridlet_curl_easy_header(CURL *c, const char *name, size_t index, unsigned int origin, int request, struct curl_header **out);
struct curl_slist *gridlet_curl_slist_append(struct curl_slist *list, const char *text);
void gridlet_curl_slist_free_all(struct curl_slist *list);

CURLcode gridlet_curl_setopt_long(CURL *c, CURLoption o, long v);
CURLcode gridlet_curl_setopt_string(CURL *c, CURLoption o, const char *v);
CURLcode gridlet_curl_setopt_pointer(CURL *c, CURLoption o, void *v);
CURLcode gridlet_curl_setopt_slist(CURL *c, CURLoption o, struct curl_slist *v);
CURLcode gridlet_curl_setopt_data_cb(CURL *c, CURLoption o, gridlet_curl_data_cb f);
CURLcode gridlet_curl_setopt_progress_cb(CURL *c, gridlet_curl_progress_cb f);
CURLcode gridlet_curl_getinfo_long(CURL *c, CURLINFO i, long *v);
