
/*
 * ngx_fhir: partner sessions.  Per partner, the FHIR version (discovered
 * from its conformance statement when "version auto") and the gateway's own
 * OAuth2 token for it (client_secret_basic, client_secret_post or SMART
 * private_key_jwt), kept in a shared-memory zone so that all workers share
 * them.  HTTP to the partner's metadata and token endpoints is libcurl, run
 * in nginx's thread pool: the event loop never blocks.  One fetch per
 * partner at a time, whatever the number of workers and requests: the
 * others wait by polling the zone with a timer.  Tokens are refreshed
 * before they expire, metadata after its TTL.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ngx_http_fhir_module.h"
#include "fhir_jwt.h"


#define NGX_HTTP_FHIR_POLL        20        /* ms between zone checks */
#define NGX_HTTP_FHIR_BODY_MAX    (1024 * 1024)
#define NGX_HTTP_FHIR_TOKEN_MAX   4096


typedef struct {
    fhir_version_t       version;          /* discovered */
    time_t               meta_at;          /* when; 0: never */
    u_char               token_url[512];   /* discovered */

    u_char               token[NGX_HTTP_FHIR_TOKEN_MAX];
    size_t               token_len;
    time_t               token_exp;
    time_t               token_at;

    ngx_msec_t           fetch_start;      /* 0: no fetch under way */
    ngx_pid_t            fetch_pid;

    time_t               error_until;      /* a failure, remembered */
    ngx_uint_t           error_status;     /* 502 or 503 */
    u_char               error[256];

    ngx_uint_t           token_fetches;
    ngx_uint_t           meta_fetches;
} ngx_http_fhir_slot_t;


typedef struct {
    ngx_slab_pool_t     *shpool;
    ngx_http_fhir_slot_t *slots;
    ngx_uint_t           n;
} ngx_http_fhir_zone_t;


/* what one fetch needs and finds; lives in its own pool */
typedef struct {
    ngx_pool_t                *pool;
    ngx_http_fhir_main_conf_t *fmcf;
    ngx_http_fhir_partner_t   *partner;
    ngx_log_t                 *log;

    ngx_uint_t                 want_meta;
    ngx_uint_t                 want_token;

    char                      *meta_url;
    char                      *token_url;    /* may come from the metadata */
    char                      *assertion;    /* private_key_jwt */
    char                      *found_url;    /* discovered by the thread */

    /* results */
    long                       meta_status;
    char                      *meta_body;
    size_t                     meta_len;
    long                       token_status;
    char                      *token_body;
    size_t                     token_len;
    char                       curl_error[CURL_ERROR_SIZE];
    ngx_uint_t                 stage_failed;  /* 1 meta, 2 token */
} ngx_http_fhir_fetch_t;


static ngx_str_t  ngx_http_fhir_zone_name = ngx_string("fhir_partners");


/* the zone */

static ngx_int_t
ngx_http_fhir_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t            *shpool;
    ngx_http_fhir_zone_t       *z;
    ngx_http_fhir_main_conf_t  *fmcf = shm_zone->data;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    /* in the zone itself: mapped at the same address in every worker */
    z = ngx_slab_calloc(shpool, sizeof(ngx_http_fhir_zone_t));
    if (z == NULL) {
        return NGX_ERROR;
    }

    z->shpool = shpool;
    z->n = fmcf->partners.nelts;
    z->slots = ngx_slab_calloc(shpool,
                               z->n * sizeof(ngx_http_fhir_slot_t) + 1);
    if (z->slots == NULL) {
        return NGX_ERROR;
    }

    shpool->data = z;
    shm_zone->data = z;

    return NGX_OK;
}


ngx_int_t
ngx_http_fhir_session_zone(ngx_conf_t *cf, ngx_http_fhir_main_conf_t *fmcf)
{
    size_t                    size;
    ngx_str_t                 name = ngx_string("default");
    ngx_uint_t                i, need;
    ngx_http_fhir_partner_t  *p;

    need = 0;
    p = fmcf->partners.elts;
    for (i = 0; i < fmcf->partners.nelts; i++) {
        p[i].index = i;
        if (p[i].version == FHIR_VERSION_UNKNOWN
            || p[i].auth >= NGX_HTTP_FHIR_AUTH_BASIC)
        {
            need = 1;
        }
    }

    if (!need) {
        return NGX_OK;
    }

    size = 8 * ngx_pagesize
           + fmcf->partners.nelts * (sizeof(ngx_http_fhir_slot_t) + 64);

    fmcf->zone = ngx_shared_memory_add(cf, &ngx_http_fhir_zone_name, size,
                                       &ngx_http_fhir_module);
    if (fmcf->zone == NULL) {
        return NGX_ERROR;
    }

    fmcf->zone->init = ngx_http_fhir_init_zone;
    fmcf->zone->data = fmcf;
    fmcf->zone->noreuse = 1;      /* partners may change on reload */

    fmcf->thread_pool = ngx_thread_pool_add(cf, &name);
    if (fmcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_fhir_session_init_process(ngx_cycle_t *cycle)
{
    /* before any thread uses it */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "fhir: curl_global_init() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the thread: libcurl only, no nginx call but logging */

typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
} ngx_http_fhir_body_t;


static size_t
ngx_http_fhir_curl_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_fhir_body_t  *b = data;
    size_t                 n = size * nmemb;
    char                  *p;

    if (b->len + n > NGX_HTTP_FHIR_BODY_MAX) {
        return 0;   /* too large: the transfer fails */
    }

    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        p = realloc(b->data, b->cap);
        if (p == NULL) {
            return 0;
        }
        b->data = p;
    }

    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}


static long
ngx_http_fhir_curl(ngx_http_fhir_fetch_t *f, const char *url, const char *post,
    struct curl_slist *headers, const char *user, const char *password,
    char **body, size_t *len)
{
    long                      status = 0;
    CURL                     *curl;
    CURLcode                  rc;
    ngx_http_fhir_body_t      b = { NULL, 0, 0 };
    ngx_http_fhir_partner_t  *p = f->partner;

    curl = curl_easy_init();
    if (curl == NULL) {
        ngx_cpystrn((u_char *) f->curl_error, (u_char *) "curl_easy_init failed",
                    sizeof(f->curl_error));
        return 0;
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) p->timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) p->timeout);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
    if (p->ca_file.len) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, (char *) p->ca_file.data);
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, f->curl_error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ngx_http_fhir_curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ngx_fhir");

    if (headers) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }

    if (post) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post);
    }

    if (user) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, password);
    }

    f->curl_error[0] = '\0';
    rc = curl_easy_perform(curl);

    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    } else if (f->curl_error[0] == '\0') {
        ngx_cpystrn((u_char *) f->curl_error,
                    (u_char *) curl_easy_strerror(rc), sizeof(f->curl_error));
    }

    curl_easy_cleanup(curl);

    *body = b.data;
    *len = b.len;
    return status;
}


static char *
ngx_http_fhir_discover_token_url(const char *body, size_t len,
    fhir_version_t *version)
{
    char   *url = NULL;
    cJSON  *doc, *v, *rest, *r0, *sec, *ext, *e, *sub, *x, *u;

    doc = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        *version = FHIR_VERSION_UNKNOWN;
        return NULL;
    }

    v = cJSON_GetObjectItemCaseSensitive(doc, "fhirVersion");
    *version = cJSON_IsString(v) ? fhir_version_from_string(v->valuestring)
                                 : FHIR_VERSION_UNKNOWN;

    rest = cJSON_GetObjectItemCaseSensitive(doc, "rest");
    cJSON_ArrayForEach(r0, rest) {
        sec = cJSON_GetObjectItemCaseSensitive(r0, "security");
        ext = cJSON_GetObjectItemCaseSensitive(sec, "extension");
        cJSON_ArrayForEach(e, ext) {
            u = cJSON_GetObjectItemCaseSensitive(e, "url");
            if (!cJSON_IsString(u) || strstr(u->valuestring, "oauth-uris") == NULL)
            {
                continue;
            }
            sub = cJSON_GetObjectItemCaseSensitive(e, "extension");
            cJSON_ArrayForEach(x, sub) {
                u = cJSON_GetObjectItemCaseSensitive(x, "url");
                if (cJSON_IsString(u) && strcmp(u->valuestring, "token") == 0) {
                    u = cJSON_GetObjectItemCaseSensitive(x, "valueUri");
                    /* an http(s) URL that fits the zone and goes into a
                     * client assertion as it is; else none was found */
                    if (cJSON_IsString(u) && url == NULL
                        && (strncmp(u->valuestring, "https://", 8) == 0
                            || strncmp(u->valuestring, "http://", 7) == 0)
                        && ngx_http_fhir_json_safe(
                               (u_char *) u->valuestring,
                               strlen(u->valuestring), 511) == NULL
                        && strchr(u->valuestring, ' ') == NULL)
                    {
                        url = strdup(u->valuestring);
                    }
                }
            }
        }
    }

    cJSON_Delete(doc);
    return url;
}


static void
ngx_http_fhir_fetch_thread(void *data, ngx_log_t *log)
{
    ngx_http_fhir_fetch_t *f = data;

    char                     *form, *found, *cid, *sec, *scope, *ass;
    size_t                    n, size;
    CURL                     *esc;
    fhir_version_t            v;
    struct curl_slist        *h = NULL;
    ngx_http_fhir_partner_t  *p = f->partner;

    if (f->want_meta) {
        h = curl_slist_append(NULL, "Accept: application/fhir+json, "
                                    "application/json+fhir, application/json");
        f->meta_status = ngx_http_fhir_curl(f, f->meta_url, NULL, h, NULL,
                                            NULL, &f->meta_body, &f->meta_len);
        curl_slist_free_all(h);
        h = NULL;

        if (f->meta_status != 200 || f->meta_body == NULL) {
            f->stage_failed = 1;
            return;
        }

        if (f->token_url == NULL && f->want_token) {
            found = ngx_http_fhir_discover_token_url(f->meta_body, f->meta_len,
                                                     &v);
            f->found_url = found;   /* freed by the completion handler */
            f->token_url = found;
        }
    }

    if (!f->want_token) {
        return;
    }

    if (f->token_url == NULL) {
        f->stage_failed = 2;
        ngx_cpystrn((u_char *) f->curl_error, (u_char *) "no token URL: none "
                    "configured and none in the conformance statement",
                    sizeof(f->curl_error));
        return;
    }

    esc = curl_easy_init();
    if (esc == NULL) {
        f->stage_failed = 2;
        return;
    }

    /* (a length of 0 makes curl measure the string: never pass NULL) */
    cid = curl_easy_escape(esc, p->client_id.len
                                ? (char *) p->client_id.data : "",
                           (int) p->client_id.len);
    sec = curl_easy_escape(esc, p->client_secret.len
                                ? (char *) p->client_secret.data : "",
                           (int) p->client_secret.len);
    scope = curl_easy_escape(esc, p->scope.len ? (char *) p->scope.data : "",
                             (int) p->scope.len);
    ass = f->assertion ? curl_easy_escape(esc, f->assertion, 0) : NULL;

    size = 256 + (cid ? strlen(cid) : 0) + (sec ? strlen(sec) : 0)
           + (scope ? strlen(scope) : 0) + (ass ? strlen(ass) : 0);
    form = malloc(size);

    if (form && cid && sec && scope) {
        /* each part is told the room that is left: the 256 bytes cover
         * the fixed text of all of them */
        n = (size_t) snprintf(form, size, "grant_type=client_credentials%s%s",
                              p->scope.len ? "&scope=" : "",
                              p->scope.len ? scope : "");

        if (p->auth == NGX_HTTP_FHIR_AUTH_POST) {
            snprintf(form + n, size - n, "&client_id=%s&client_secret=%s",
                     cid, sec);

        } else if (p->auth == NGX_HTTP_FHIR_AUTH_JWT && ass) {
            snprintf(form + n, size - n,
                     "&client_id=%s&client_assertion_type=urn%%3Aietf%%3Aparams"
                     "%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
                     "&client_assertion=%s", cid, ass);
        }

        h = curl_slist_append(NULL, "Accept: application/json");
        f->token_status = ngx_http_fhir_curl(f, f->token_url, form, h,
                              p->auth == NGX_HTTP_FHIR_AUTH_BASIC
                              ? (char *) p->client_id.data : NULL,
                              p->client_secret.len
                              ? (char *) p->client_secret.data : "",
                              &f->token_body, &f->token_len);
        curl_slist_free_all(h);

        /* the form held the secret */
        OPENSSL_cleanse(form, strlen(form));
    }

    if (f->token_status != 200) {
        f->stage_failed = 2;
    }

    free(form);
    curl_free(cid);
    curl_free(sec);
    curl_free(scope);
    curl_free(ass);
    curl_easy_cleanup(esc);

    (void) log;
}


/* back in the event loop */

static void
ngx_http_fhir_fetch_fail(ngx_http_fhir_slot_t *s, ngx_http_fhir_fetch_t *f,
    ngx_uint_t status, time_t hold, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(s->error, s->error + sizeof(s->error) - 1, fmt, args);
    va_end(args);
    *p = '\0';

    s->error_status = status;
    s->error_until = ngx_time() + hold;

    /* the secret never appears: the message names the partner and stage */
    ngx_log_error(NGX_LOG_ERR, f->log, 0, "fhir: partner \"%V\": %s",
                  &f->partner->name, s->error);
}


static void
ngx_http_fhir_fetch_done(ngx_event_t *ev)
{
    ngx_http_fhir_fetch_t *f = ev->data;

    time_t                 exp;
    cJSON                 *doc, *tok, *ttl;
    fhir_version_t         v;
    ngx_http_fhir_slot_t  *s;
    ngx_http_fhir_zone_t  *z;
    char                  *found;

    z = f->fmcf->zone->data;
    s = &z->slots[f->partner->index];

    ngx_shmtx_lock(&z->shpool->mutex);

    if (f->want_meta) {
        s->meta_fetches++;

        if (f->stage_failed == 1) {
            if (f->meta_status) {
                ngx_http_fhir_fetch_fail(s, f, NGX_HTTP_BAD_GATEWAY, 5,
                    "metadata answered HTTP %l", f->meta_status);
            } else {
                ngx_http_fhir_fetch_fail(s, f, NGX_HTTP_BAD_GATEWAY, 5,
                    "metadata could not be fetched: %s", f->curl_error);
            }
            goto done;
        }

        found = ngx_http_fhir_discover_token_url(f->meta_body, f->meta_len,
                                                 &v);
        if (v == FHIR_VERSION_UNKNOWN) {
            free(found);
            ngx_http_fhir_fetch_fail(s, f, NGX_HTTP_BAD_GATEWAY, 30,
                "the conformance statement is malformed or of an unknown "
                "FHIR version (DSTU2 1.0.x, STU3 3.0.x and R4 4.0.x are "
                "served)");
            goto done;
        }

        s->version = v;
        s->meta_at = ngx_time();
        s->token_url[0] = '\0';
        if (found) {
            ngx_cpystrn(s->token_url, (u_char *) found, sizeof(s->token_url));
            free(found);
        }

        ngx_log_error(NGX_LOG_NOTICE, f->log, 0,
                      "fhir: partner \"%V\" speaks %s", &f->partner->name,
                      fhir_version_name(v));
    }

    if (f->want_token) {
        s->token_fetches++;

        if (f->stage_failed == 2) {
            if (f->token_status == 0) {
                ngx_http_fhir_fetch_fail(s, f,
                    NGX_HTTP_SERVICE_UNAVAILABLE, 5,
                    "the token endpoint could not be reached: %s",
                    f->curl_error);
            } else {
                ngx_http_fhir_fetch_fail(s, f,
                    NGX_HTTP_SERVICE_UNAVAILABLE, 5,
                    "the token endpoint answered HTTP %l", f->token_status);
            }
            goto done;
        }

        doc = cJSON_ParseWithLength(f->token_body ? f->token_body : "",
                                    f->token_len);
        tok = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
        ttl = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");

        if (!cJSON_IsString(tok) || strlen(tok->valuestring) == 0
            || strlen(tok->valuestring) + 7 >= NGX_HTTP_FHIR_TOKEN_MAX
            || (ttl && !cJSON_IsNumber(ttl)))
        {
            cJSON_Delete(doc);
            ngx_http_fhir_fetch_fail(s, f, NGX_HTTP_SERVICE_UNAVAILABLE, 5,
                "the token endpoint's answer is malformed (no access_token)");
            goto done;
        }

        exp = ngx_time() + (ttl ? (time_t) ttl->valuedouble : 300);
        s->token_len = ngx_sprintf(s->token, "Bearer %s", tok->valuestring)
                       - s->token;
        s->token_exp = exp;
        s->token_at = ngx_time();
        /* the token lives on in the zone only */
        OPENSSL_cleanse(tok->valuestring, strlen(tok->valuestring));
        cJSON_Delete(doc);

        ngx_log_error(NGX_LOG_INFO, f->log, 0,
                      "fhir: partner \"%V\": new token, valid %T s",
                      &f->partner->name, exp - ngx_time());
    }

    s->error_until = 0;

done:

    s->fetch_start = 0;
    ngx_shmtx_unlock(&z->shpool->mutex);

    free(f->meta_body);
    if (f->token_body) {
        OPENSSL_cleanse(f->token_body, f->token_len);
        free(f->token_body);
    }
    free(f->found_url);
    ngx_destroy_pool(f->pool);
}


/* starts a fetch (the caller holds the zone lock) */
static ngx_int_t
ngx_http_fhir_fetch_start(ngx_http_request_t *r, ngx_http_fhir_partner_t *p,
    ngx_http_fhir_slot_t *s, ngx_uint_t want_meta, ngx_uint_t want_token)
{
    u_char                     *q, rnd[16], jti[40];
    char                        payload[1024], *url;
    ngx_pool_t                 *pool;
    ngx_thread_task_t          *task;
    ngx_http_fhir_fetch_t      *f;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(pool, sizeof(ngx_http_fhir_fetch_t));
    if (task == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    f = task->ctx;
    f->pool = pool;
    f->fmcf = fmcf;
    f->partner = p;
    f->log = ngx_cycle->log;
    f->want_meta = want_meta;
    f->want_token = want_token;

    f->meta_url = ngx_pnalloc(pool, p->url.len + sizeof("/metadata"));
    if (f->meta_url == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }
    ngx_sprintf((u_char *) f->meta_url, "%V/metadata%Z", &p->url);

    /* the token URL: configured, else discovered (now, or before) */
    url = NULL;
    if (p->token_url.len) {
        url = (char *) p->token_url.data;
    } else if (s->token_url[0] && !want_meta) {
        url = ngx_pnalloc(pool, ngx_strlen(s->token_url) + 1);
        if (url == NULL) {
            ngx_destroy_pool(pool);
            return NGX_ERROR;
        }
        ngx_cpystrn((u_char *) url, s->token_url, ngx_strlen(s->token_url) + 1);
    }
    f->token_url = url;

    if (want_token && p->auth == NGX_HTTP_FHIR_AUTH_JWT) {
        if (url == NULL) {
            /* the assertion's audience is the token URL: discover it first */
            if (!want_meta) {
                f->want_meta = 1;
            }
            f->want_token = 0;
        } else {
            if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
                ngx_destroy_pool(pool);
                return NGX_ERROR;
            }
            *ngx_hex_dump(jti, rnd, sizeof(rnd)) = '\0';
            q = ngx_snprintf((u_char *) payload, sizeof(payload) - 1,
                             "{\"iss\":\"%V\",\"sub\":\"%V\",\"aud\":\"%s\","
                             "\"exp\":%T,\"iat\":%T,\"jti\":\"%s\"}",
                             &p->client_id, &p->client_id, url,
                             ngx_time() + 300, ngx_time(), jti);
            *q = '\0';
            f->assertion = ngx_pnalloc(pool, 4096);
            if (f->assertion == NULL
                || fhir_jwt_sign_assertion(p->private_key,
                                           (char *) p->key_id.data, payload,
                                           f->assertion, 4096) < 0)
            {
                ngx_destroy_pool(pool);
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "fhir: partner \"%V\": the client assertion "
                              "could not be signed", &p->name);
                return NGX_ERROR;
            }
        }
    }

    task->handler = ngx_http_fhir_fetch_thread;
    task->event.handler = ngx_http_fhir_fetch_done;
    task->event.data = f;

    if (ngx_thread_task_post(fmcf->thread_pool, task) != NGX_OK) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    s->fetch_start = ngx_current_msec ? ngx_current_msec : 1;
    s->fetch_pid = ngx_pid;

    return NGX_OK;
}


/* the request side */

static void ngx_http_fhir_session_poll(ngx_event_t *ev);


static void
ngx_http_fhir_session_cleanup(void *data)
{
    ngx_http_fhir_ctx_t  *ctx = data;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
}


/*
 * NGX_OK: ready (ctx->version, ctx->partner_auth set); NGX_AGAIN: a fetch
 * is under way; an HTTP status: the partner session failed.
 */
static ngx_int_t
ngx_http_fhir_session_check(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t need_token)
{
    u_char                     *t;
    time_t                      now;
    ngx_int_t                   rc;
    ngx_uint_t                  want_meta, want_token;
    ngx_http_fhir_slot_t       *s;
    ngx_http_fhir_zone_t       *z;
    ngx_http_fhir_partner_t    *p = ctx->partner;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);
    z = fmcf->zone->data;
    s = &z->slots[p->index];
    now = ngx_time();

    ngx_shmtx_lock(&z->shpool->mutex);

    want_meta = p->version == FHIR_VERSION_UNKNOWN
                && (s->meta_at == 0 || now - s->meta_at >= p->metadata_ttl);
    want_token = need_token && p->auth >= NGX_HTTP_FHIR_AUTH_BASIC
                 && (s->token_len == 0 || now + p->refresh >= s->token_exp);

    /* what is usable now (a token still valid may serve while refreshed) */
    if ((p->version != FHIR_VERSION_UNKNOWN || s->meta_at)
        && (!need_token || p->auth < NGX_HTTP_FHIR_AUTH_BASIC
            || (s->token_len && now < s->token_exp)))
    {
        ctx->version = p->version != FHIR_VERSION_UNKNOWN ? p->version
                                                          : s->version;

        if (need_token && p->auth >= NGX_HTTP_FHIR_AUTH_BASIC) {
            t = ngx_pnalloc(r->pool, s->token_len);
            if (t == NULL) {
                ngx_shmtx_unlock(&z->shpool->mutex);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            ngx_memcpy(t, s->token, s->token_len);
            ctx->partner_auth.data = t;
            ctx->partner_auth.len = s->token_len;

        } else if (need_token) {
            ctx->partner_auth = p->authorization;
        }

        rc = NGX_OK;

    } else if (s->error_until > now && s->fetch_start == 0) {
        rc = s->error_status;

    } else {
        rc = NGX_AGAIN;
    }

    /* one fetch per partner at a time, in any worker */
    if ((want_meta || want_token)
        && (s->fetch_start == 0
            || ngx_current_msec - s->fetch_start > 2 * p->timeout + 1000)
        && (s->error_until <= now || rc == NGX_OK))
    {
        if (ngx_http_fhir_fetch_start(r, p, s, want_meta, want_token)
            != NGX_OK && rc == NGX_AGAIN)
        {
            rc = NGX_HTTP_SERVICE_UNAVAILABLE;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (rc == NGX_HTTP_BAD_GATEWAY || rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        t = ngx_pnalloc(r->pool, sizeof(s->error));
        if (t == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_shmtx_lock(&z->shpool->mutex);
        ngx_cpystrn(t, s->error, sizeof(s->error));
        /* the failure is remembered until then: come back after it */
        ctx->retry_after = s->error_until > now ? s->error_until - now : 1;
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_http_fhir_set_error(r, ctx, rc, (char *) t);
    }

    return rc;
}


ngx_int_t
ngx_http_fhir_session(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t need_token)
{
    ngx_int_t                   rc;
    ngx_pool_cleanup_t         *cln;
    ngx_http_fhir_main_conf_t  *fmcf;
    ngx_http_fhir_partner_t    *p = ctx->partner;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    if (fmcf->zone == NULL
        || (p->version != FHIR_VERSION_UNKNOWN
            && (!need_token || p->auth < NGX_HTTP_FHIR_AUTH_BASIC)))
    {
        ctx->version = p->version;
        ctx->partner_auth = need_token ? p->authorization
                                       : (ngx_str_t) ngx_null_string;
        return NGX_OK;
    }

    rc = ngx_http_fhir_session_check(r, ctx, need_token);

    if (rc != NGX_AGAIN) {
        return rc;
    }

    /* wait for the fetch, polling the zone */

    if (ctx->wait.handler == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        cln->handler = ngx_http_fhir_session_cleanup;
        cln->data = ctx;

        ctx->wait.handler = ngx_http_fhir_session_poll;
        ctx->wait.data = r;
        ctx->wait.log = r->connection->log;
        ctx->wait_start = ngx_current_msec;
    }

    ctx->wait.cancelable = 1;
    ngx_add_timer(&ctx->wait, NGX_HTTP_FHIR_POLL);

    return NGX_DONE;
}


static void
ngx_http_fhir_session_poll(ngx_event_t *ev)
{
    ngx_http_request_t  *r = ev->data;

    ngx_connection_t     *c = r->connection;
    ngx_http_fhir_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    /* the phases resume in the access handler, which asks again */

    if (ngx_current_msec - ctx->wait_start
        > 2 * ctx->partner->timeout + 2000)
    {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "fhir: partner \"%V\": no session after %M ms",
                      &ctx->partner->name, ngx_current_msec - ctx->wait_start);
        ngx_http_fhir_set_error(r, ctx, NGX_HTTP_GATEWAY_TIME_OUT,
                                "the partner's token or conformance "
                                "statement did not come in time");
        ngx_http_finalize_request(r, NGX_HTTP_GATEWAY_TIME_OUT);
        ngx_http_run_posted_requests(c);
        return;
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


void
ngx_http_fhir_session_invalidate(ngx_http_request_t *r,
    ngx_http_fhir_partner_t *p)
{
    ngx_http_fhir_slot_t       *s;
    ngx_http_fhir_zone_t       *z;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    if (fmcf->zone == NULL || p->auth < NGX_HTTP_FHIR_AUTH_BASIC) {
        return;
    }

    z = fmcf->zone->data;
    s = &z->slots[p->index];

    ngx_shmtx_lock(&z->shpool->mutex);

    /* the token this request used was fetched before it started; a newer
     * one (another request already refreshed it) is kept */
    if (s->token_len && s->token_at <= r->start_sec) {
        s->token_len = 0;
        s->token_exp = 0;
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "fhir: partner \"%V\" refused the gateway's token; "
                      "fetching a new one", &p->name);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}
