
/*
 * ngx_fhir: shared declarations of the nginx glue.
 */

#ifndef _NGX_HTTP_FHIR_MODULE_H_INCLUDED_
#define _NGX_HTTP_FHIR_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "fhir_json.h"
#include "fhir_convert.h"
#include "fhir_stream.h"
#include "fhir_jwt.h"


typedef enum {
    NGX_HTTP_FHIR_AUTH_NONE = 0,
    NGX_HTTP_FHIR_AUTH_STATIC,                 /* bearer_token_file */
    NGX_HTTP_FHIR_AUTH_BASIC,                  /* client_secret_basic */
    NGX_HTTP_FHIR_AUTH_POST,                   /* client_secret_post */
    NGX_HTTP_FHIR_AUTH_JWT                     /* private_key_jwt */
} ngx_http_fhir_auth_style_e;


typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  url;            /* without a trailing slash */
    fhir_version_t             version;        /* UNKNOWN: "auto" */
    ngx_str_t                  authorization;  /* static "Bearer ..." */
    ngx_http_fhir_auth_style_e auth;
    ngx_str_t                  client_id;
    ngx_str_t                  client_secret;
    EVP_PKEY                  *private_key;    /* private_key_jwt */
    ngx_str_t                  key_id;
    ngx_str_t                  scope;
    ngx_str_t                  token_url;      /* configured: wins */
    ngx_str_t                  ca_file;
    ngx_flag_t                 tls_verify;
    ngx_msec_t                 timeout;
    time_t                     metadata_ttl;
    time_t                     refresh;        /* refresh this early */
    ngx_uint_t                 index;          /* its slot in the zone */
    u_char                    *file;           /* where it was declared */
    ngx_uint_t                 line;
} ngx_http_fhir_partner_t;


typedef struct {
    ngx_open_file_t           *file;           /* fhir_audit_log PATH */
    ngx_uint_t                 mode;
    ngx_addr_t                *syslog;         /* fhir_audit_log syslog: */
    ngx_uint_t                 facility;
    ngx_str_t                  tag;
    ngx_str_t                  key;            /* fhir_audit_key_file */
    ngx_flag_t                 fail_closed;
    ngx_uint_t                 format;         /* 0: JSON lines, 1: AuditEvent */
    ngx_uint_t                 set;
} ngx_http_fhir_audit_conf_t;


typedef struct {
    ngx_str_t                  issuer;
    ngx_str_t                  audience;
    fhir_jwks_t               *jwks;
} ngx_http_fhir_trust_t;


typedef struct {
    ngx_str_t                  id;
    ngx_str_t                  tenants;        /* "t1,t2" */
    ngx_array_t               *hashes;         /* char *: pbkdf2-sha256$... */
} ngx_http_fhir_client_t;


typedef struct {
    EVP_PKEY                  *signing_key;    /* fhir_token_signing_key */
    ngx_str_t                  kid;
    fhir_jwks_t               *own;            /* its public half */
    ngx_str_t                  issuer;         /* fhir_token_issuer */
    ngx_str_t                  audience;       /* fhir_token_audience */
    ngx_str_t                  token_url;      /* fhir_token_url */
    time_t                     lifetime;       /* fhir_token_lifetime */
    time_t                     leeway;         /* fhir_auth_leeway */
    ngx_array_t               *trusts;         /* fhir_auth_trust */
    ngx_array_t               *clients;        /* fhir_clients_file */
} ngx_http_fhir_auth_conf_t;


typedef struct {
    ngx_array_t                partners;       /* ngx_http_fhir_partner_t */
    ngx_array_t               *tenants;        /* ngx_http_fhir_tenant_t */
    ngx_http_fhir_audit_conf_t audit;
    ngx_http_fhir_auth_conf_t  auth;
    ngx_shm_zone_t            *zone;           /* partner sessions */
    void                      *thread_pool;    /* ngx_thread_pool_t */
} ngx_http_fhir_main_conf_t;


typedef struct {
    ngx_str_t                  id;
    /* an index, not a pointer: the partners array may still move as
     * later fhir_partner blocks are added to it */
    ngx_uint_t                 partner;
} ngx_http_fhir_tenant_t;


/* a batch entry's request as the caller wrote it (url in ctx->body) */
typedef struct {
    ngx_uint_t                 post;
    ngx_str_t                  url;
} ngx_http_fhir_batch_request_t;


/* what the response said about one read (a batch entry, or the request) */
typedef struct {
    ngx_uint_t                 status;
    ngx_int_t                  entries;
    char                       patient[128];
} ngx_http_fhir_audit_entry_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_flag_t                 auth;           /* fhir_auth */
    ngx_str_t                  prefix;         /* the location's prefix */
    ngx_str_t                  public_url;     /* fhir_public_url */
    size_t                     max_resource;
    ngx_uint_t                 max_depth;
    ngx_bufs_t                 bufs;
} ngx_http_fhir_loc_conf_t;


typedef enum {
    NGX_HTTP_FHIR_PASS = 0,     /* nothing to do with the body */
    NGX_HTTP_FHIR_CONVERT,      /* partner JSON -> R4 */
    NGX_HTTP_FHIR_REPLACE       /* the body is our OperationOutcome */
} ngx_http_fhir_mode_e;


typedef struct {
    ngx_http_fhir_partner_t   *partner;
    ngx_str_t                  upstream_url;
    ngx_str_t                  path;           /* R4 path after the partner */
    ngx_str_t                  body;           /* a batch or a search form */

    /* the partner session: its version and our token for it */
    fhir_version_t             version;
    ngx_str_t                  partner_auth;   /* "Bearer ..." or empty */
    ngx_event_t                wait;           /* polls the zone */
    time_t                     retry_after;    /* for a 503 */
    ngx_msec_t                 wait_start;

    /* the caller */
    fhir_claims_t              claims;
    ngx_http_fhir_partner_t   *tenant_partner;

    /* for the audit trail */
    ngx_array_t               *batch_requests; /* of *_batch_request_t */
    ngx_array_t               *batch_results;
    ngx_http_fhir_audit_entry_t  read;

    /* an error decided before the response (status and message) */
    ngx_uint_t                 error_status;
    ngx_str_t                  error_text;

    ngx_http_fhir_mode_e       mode;

    /* conversion */
    fhir_conv_t                conv;
    fj_arena_t                 arena;
    fhir_stream_t             *stream;
    fhir_buf_t                 pending;        /* converted, not yet sent */
    ngx_str_t                  public_base;

    ngx_chain_t               *in;
    size_t                     in_fed;         /* of in's first buffer */
    ngx_chain_t               *pinned;         /* fed, not yet released */
    ngx_chain_t               *out;
    ngx_chain_t              **last_out;
    ngx_chain_t               *free;
    ngx_chain_t               *busy;
    ngx_chain_t               *outbufs;        /* every output buffer */
    size_t                     out_peak;       /* $fhir_buffers_peak */

    ngx_str_t                  oo;             /* the OperationOutcome */

    unsigned                   authenticated:1;
    unsigned                   routed:1;
    unsigned                   session_ready:1;
    unsigned                   batch:1;
    unsigned                   search_form:1;
    unsigned                   aborted:1;
    unsigned                   body_read:1;
    unsigned                   waiting_body:1;
    unsigned                   body_done:1;
    unsigned                   header_sent:1;
    unsigned                   input_done:1;
    unsigned                   last_sent:1;
    unsigned                   oo_sent:1;
    unsigned                   not_audited:1;  /* no read event */
} ngx_http_fhir_ctx_t;


extern ngx_module_t  ngx_http_fhir_module;
extern ngx_int_t     ngx_http_fhir_request_id_index;


ngx_int_t ngx_http_fhir_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_fhir_pool_copy(ngx_pool_t *pool, fhir_buf_t *b,
    ngx_str_t *dst);
char *ngx_http_fhir_read_file(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out,
    size_t max, ngx_uint_t secret);

char *ngx_http_fhir_audit_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_fhir_audit_check(ngx_conf_t *cf,
    ngx_http_fhir_audit_conf_t *acf);
ngx_int_t ngx_http_fhir_audit_init(ngx_conf_t *cf);
ngx_int_t ngx_http_fhir_audit_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_fhir_audit_init_process(ngx_cycle_t *cycle);
void ngx_http_fhir_audit_exit_process(ngx_cycle_t *cycle);
void ngx_http_fhir_filter_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_fhir_audit_refuses(ngx_http_request_t *r);
void ngx_http_fhir_audit_observe(void *data, int what, fj_node_t *node);

char *ngx_http_fhir_token_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_fhir_auth_trust(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_fhir_clients_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_fhir_tenant(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_fhir_token_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* why a value cannot be written as it is inside a JSON string (max: 128,
 * 256 or 511 bytes), or NULL; plain C, thread-safe */
const char *ngx_http_fhir_json_safe(u_char *p, size_t len, size_t max);
char *ngx_http_fhir_auth_check(ngx_conf_t *cf,
    ngx_http_fhir_main_conf_t *fmcf);
ngx_int_t ngx_http_fhir_authenticate(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx);
void ngx_http_fhir_auth_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_fhir_session_zone(ngx_conf_t *cf,
    ngx_http_fhir_main_conf_t *fmcf);
ngx_int_t ngx_http_fhir_session(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx, ngx_uint_t need_token);
void ngx_http_fhir_session_invalidate(ngx_http_request_t *r,
    ngx_http_fhir_partner_t *partner);
ngx_int_t ngx_http_fhir_session_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_fhir_set_error(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx, ngx_uint_t status, const char *text);
ngx_http_fhir_ctx_t *ngx_http_fhir_create_ctx(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_fhir_add_header(ngx_http_request_t *r,
    const char *key, const char *value);
ngx_uint_t ngx_http_fhir_type_is_json(ngx_str_t *type);
ngx_uint_t ngx_http_fhir_type_is_form(ngx_str_t *type);
ngx_table_elt_t *ngx_http_fhir_find_header(ngx_list_t *headers,
    const char *name, size_t len);

/* is this header's name `name` (len bytes, any case)? */
static ngx_inline ngx_uint_t
ngx_http_fhir_header_is(ngx_table_elt_t *h, const char *name, size_t len)
{
    return h->key.len == len
           && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0;
}
ngx_uint_t ngx_http_fhir_encoded(ngx_table_elt_t *ce);

/* r->buffered: the filter holds input or converted bytes */
#define NGX_HTTP_FHIR_BUFFERED  0x08

/* what every gateway answer is; content_type_len is the media type's
 * length without parameters, as nginx's own modules set it (gzip_types and
 * the other *_types directives compare that much) */
#define NGX_HTTP_FHIR_MEDIA_TYPE    "application/fhir+json"
#define NGX_HTTP_FHIR_CONTENT_TYPE  NGX_HTTP_FHIR_MEDIA_TYPE "; fhirVersion=4.0"

/* nginx names no constants for them */
#define NGX_HTTP_FHIR_NOT_ACCEPTABLE          406
#define NGX_HTTP_FHIR_UNSUPPORTED_MEDIA_TYPE  415


#endif /* _NGX_HTTP_FHIR_MODULE_H_INCLUDED_ */
