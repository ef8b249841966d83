
/*
 * ngx_fhir: directives, configuration, variables and the access-phase
 * handler that routes /<location>/<partner>/... to a partner FHIR server.
 * The network I/O is nginx's proxy module (proxy_pass $fhir_upstream_url);
 * the response filters are in ngx_http_fhir_filter.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/stat.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ngx_http_fhir_module.h"
#include "fhir_request.h"


static ngx_int_t ngx_http_fhir_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_fhir_route(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx, ngx_http_fhir_loc_conf_t *flcf);
static ngx_int_t ngx_http_fhir_upstream_url(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx);
static ngx_uint_t ngx_http_fhir_is_metadata(ngx_http_request_t *r,
    ngx_http_fhir_loc_conf_t *flcf);
static ngx_int_t ngx_http_fhir_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_fhir_init(ngx_conf_t *cf);
static void *ngx_http_fhir_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_fhir_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_fhir_audit_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_read_secret(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out);
static void *ngx_http_fhir_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_fhir_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_fhir_partner_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_partner_item(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_http_fhir_partner_setting(ngx_conf_t *cf,
    ngx_http_fhir_partner_t *partner, ngx_str_t *value);
static ngx_int_t ngx_http_fhir_init_process(ngx_cycle_t *cycle);
static void ngx_http_fhir_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_fhir_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_fhir_error_outcome(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_http_fhir_audit_formats[] = {
    { ngx_string("json"), 0 },
    { ngx_string("auditevent"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_fhir_commands[] = {

    { ngx_string("fhir_partner"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_fhir_partner_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_audit_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_fhir_audit_log,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_audit_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_fhir_audit_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_audit_format"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, audit.format),
      &ngx_http_fhir_audit_formats },

    { ngx_string("fhir_audit_fail_closed"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, audit.fail_closed),
      NULL },

    { ngx_string("fhir_token_signing_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_fhir_token_signing_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_token_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, auth.issuer),
      NULL },

    { ngx_string("fhir_token_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, auth.audience),
      NULL },

    { ngx_string("fhir_token_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, auth.token_url),
      NULL },

    { ngx_string("fhir_token_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, auth.lifetime),
      NULL },

    { ngx_string("fhir_auth_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_fhir_main_conf_t, auth.leeway),
      NULL },

    { ngx_string("fhir_auth_trust"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_fhir_auth_trust,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_clients_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_fhir_clients_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_tenant"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_fhir_tenant,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_token_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_fhir_token_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_error_outcome"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_fhir_error_outcome,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_loc_conf_t, auth),
      NULL },

    { ngx_string("fhir_gateway"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_fhir_gateway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("fhir_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_loc_conf_t, public_url),
      NULL },

    { ngx_string("fhir_max_resource_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_loc_conf_t, max_resource),
      NULL },

    { ngx_string("fhir_max_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_loc_conf_t, max_depth),
      NULL },

    { ngx_string("fhir_buffers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_conf_set_bufs_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_fhir_loc_conf_t, bufs),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_fhir_module_ctx = {
    ngx_http_fhir_add_variables,           /* preconfiguration */
    ngx_http_fhir_init,                    /* postconfiguration */

    ngx_http_fhir_create_main_conf,        /* create main configuration */
    ngx_http_fhir_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_fhir_create_loc_conf,         /* create location configuration */
    ngx_http_fhir_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_fhir_module = {
    NGX_MODULE_V1,
    &ngx_http_fhir_module_ctx,             /* module context */
    ngx_http_fhir_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_fhir_audit_init_module,       /* init module */
    ngx_http_fhir_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_fhir_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* variables */

typedef enum {
    NGX_HTTP_FHIR_VAR_PARTNER = 0,
    NGX_HTTP_FHIR_VAR_UPSTREAM_URL,
    NGX_HTTP_FHIR_VAR_AUTHORIZATION,
    NGX_HTTP_FHIR_VAR_VERSION,
    NGX_HTTP_FHIR_VAR_ACCEPT,
    NGX_HTTP_FHIR_VAR_CONTENT_TYPE,
    NGX_HTTP_FHIR_VAR_TENANT,
    NGX_HTTP_FHIR_VAR_SUBJECT,
    NGX_HTTP_FHIR_VAR_CLIENT_ID,
    NGX_HTTP_FHIR_VAR_BUFFERS_PEAK
} ngx_http_fhir_var_e;


static ngx_int_t
ngx_http_fhir_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t             val;
    const char           *name;
    ngx_http_fhir_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    val.len = 0;
    val.data = NULL;
    name = NULL;

    if (ctx == NULL) {
        if (data == NGX_HTTP_FHIR_VAR_UPSTREAM_URL) {
            /* nginx alone would say 'invalid URL prefix in ""' */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "fhir: $fhir_upstream_url is empty in a location "
                          "without \"fhir_gateway on\": conf/fhir_proxy.conf "
                          "belongs in a gateway location");
        }
        v->not_found = 1;
        return NGX_OK;
    }

    switch ((ngx_http_fhir_var_e) data) {

    /* the caller's claims */

    case NGX_HTTP_FHIR_VAR_TENANT:
        name = ctx->authenticated ? ctx->claims.tenant : NULL;
        break;

    case NGX_HTTP_FHIR_VAR_SUBJECT:
        name = ctx->authenticated ? ctx->claims.sub : NULL;
        break;

    case NGX_HTTP_FHIR_VAR_CLIENT_ID:
        name = ctx->authenticated ? ctx->claims.client_id : NULL;
        break;

    /* the most output memory a conversion held at once, in bytes: what
     * fhir_buffers bounds, for an access log that helps size it */

    case NGX_HTTP_FHIR_VAR_BUFFERS_PEAK:
        if (ctx->out_peak == 0) {
            break;
        }
        val.data = ngx_pnalloc(r->pool, NGX_SIZE_T_LEN);
        if (val.data == NULL) {
            return NGX_ERROR;
        }
        val.len = ngx_sprintf(val.data, "%uz", ctx->out_peak) - val.data;
        break;

    /* the partner of the request */

    case NGX_HTTP_FHIR_VAR_PARTNER:
        if (ctx->partner) {
            val = ctx->partner->name;
        }
        break;

    case NGX_HTTP_FHIR_VAR_UPSTREAM_URL:
        val = ctx->upstream_url;
        break;

    case NGX_HTTP_FHIR_VAR_AUTHORIZATION:
        val = ctx->partner_auth;
        break;

    case NGX_HTTP_FHIR_VAR_VERSION:
        name = ctx->partner ? fhir_version_name(ctx->version) : NULL;
        break;

    case NGX_HTTP_FHIR_VAR_CONTENT_TYPE:
        /* a FHIR JSON body goes in the partner's mime type; a form as is */
        if (ctx->partner == NULL || r->headers_in.content_type == NULL) {
            break;
        }
        val = r->headers_in.content_type->value;
        if (!ngx_http_fhir_type_is_json(&val)) {
            break;
        }
        val.len = 0;
        /* fall through */

    case NGX_HTTP_FHIR_VAR_ACCEPT:
        /* the partner version's JSON mime type */
        if (ctx->partner) {
            name = ctx->version == FHIR_DSTU2 ? "application/json+fhir"
                                              : "application/fhir+json";
        }
        break;
    }

    if (name) {
        val.data = (u_char *) name;
        val.len = ngx_strlen(name);
    }

    if (val.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = val.len;
    v->data = val.data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * $fhir_upstream_method: the method sent to the partner, the caller's but
 * for HEAD, which goes as GET: a partner need not support HEAD, and nginx
 * sends the caller the headers only, whatever comes from the partner
 */
static ngx_int_t
ngx_http_fhir_method_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    if (r->method == NGX_HTTP_HEAD) {
        v->data = (u_char *) "GET";
        v->len = 3;

    } else {
        v->data = r->method_name.data;
        v->len = r->method_name.len;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_http_variable_t  ngx_http_fhir_vars[] = {

    { ngx_string("fhir_upstream_method"), NULL, ngx_http_fhir_method_variable,
      0, 0, 0 },

    { ngx_string("fhir_partner"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_PARTNER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_upstream_url"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_UPSTREAM_URL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_partner_authorization"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_AUTHORIZATION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_partner_version"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_VERSION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_partner_accept"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_ACCEPT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_partner_content_type"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_CONTENT_TYPE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_tenant"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_subject"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_SUBJECT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_client_id"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_CLIENT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("fhir_buffers_peak"), NULL, ngx_http_fhir_variable,
      NGX_HTTP_FHIR_VAR_BUFFERS_PEAK, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_fhir_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_fhir_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* the access phase: routing and request translation */

ngx_int_t
ngx_http_fhir_set_error(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t status, const char *text)
{
    ctx->error_status = status;
    ctx->error_text.data = (u_char *) text;
    ctx->error_text.len = ngx_strlen(text);

    /* the gateway's own errors are answered as they are, never redirected
     * by an error_page (the snippet's error_page is for partner 401s) */
    r->error_page = 1;

    return status;
}


/* a media type that names JSON (FHIR's of any version, plain JSON) */
ngx_uint_t
ngx_http_fhir_type_is_json(ngx_str_t *type)
{
    /* ngx_strlcasestrn() takes the needle's length less one */
    return type->len
           && ngx_strlcasestrn(type->data, type->data + type->len,
                               (u_char *) "json", sizeof("json") - 2)
              != NULL;
}


/* a form's media type, parameters (a charset) allowed */
ngx_uint_t
ngx_http_fhir_type_is_form(ngx_str_t *type)
{
    size_t  n = sizeof("application/x-www-form-urlencoded") - 1;

    return type->len >= n
           && ngx_strncasecmp(type->data,
                              (u_char *) "application/x-www-form-urlencoded",
                              n) == 0
           && (type->len == n || type->data[n] == ';' || type->data[n] == ' ');
}


/* a _format other than JSON: 406 */
static ngx_int_t
ngx_http_fhir_not_json(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_FHIR_NOT_ACCEPTABLE,
               "the gateway answers in FHIR JSON only: _format asks for "
               "another format");
}


/* a new context for a request that has none */
ngx_http_fhir_ctx_t *
ngx_http_fhir_create_ctx(ngx_http_request_t *r)
{
    ngx_http_fhir_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_fhir_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_fhir_module);

    return ctx;
}


/* the first live header named name (len bytes, any case) of a list */
ngx_table_elt_t *
ngx_http_fhir_find_header(ngx_list_t *headers, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0 && ngx_http_fhir_header_is(&h[i], name, len)) {
            return &h[i];
        }
    }
}


/* a Content-Encoding header (NULL: none) that names a coding other than
 * identity: a body the gateway cannot read as it is, either way */
ngx_uint_t
ngx_http_fhir_encoded(ngx_table_elt_t *ce)
{
    return ce != NULL && ce->hash != 0
           && !(ce->value.len == 8
                && ngx_strncasecmp(ce->value.data, (u_char *) "identity", 8)
                   == 0);
}


/* a response header whose key and value outlive the request */
ngx_table_elt_t *
ngx_http_fhir_add_header(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = value ? ngx_strlen(value) : 0;

    return h;
}


/*
 * fhir_error_outcome: the content of a location that an error_page sends
 * nginx's own errors to (conf/fhir_errors.conf), chiefly the requests it
 * refuses before any location is chosen (a malformed request line or URI,
 * headers too large): the same status, as an OperationOutcome.  Not a
 * read event, so not audited.
 */
static ngx_int_t
ngx_http_fhir_error_handler(ngx_http_request_t *r)
{
    ngx_uint_t            status;
    const char           *text;
    ngx_http_fhir_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    if (ctx == NULL) {
        ctx = ngx_http_fhir_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ctx->not_audited = 1;
    }

    status = r->err_status ? r->err_status : NGX_HTTP_BAD_REQUEST;

    switch (status) {
    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        text = "the request URI is too long";
        break;
    case NGX_HTTP_BAD_REQUEST:
        /* also headers too large: error_page turns nginx's 494 into 400 */
        text = "the request could not be read: a malformed request line, "
               "URI or header, or headers too large";
        break;
    default:
        if (status < NGX_HTTP_BAD_REQUEST) {
            status = NGX_HTTP_BAD_REQUEST;
        }
        text = NULL;
        break;
    }

    if (text == NULL) {
        /* the header filter words it by its status */
        r->error_page = 1;
        return status;
    }

    return ngx_http_fhir_set_error(r, ctx, status, text);
}


static char *
ngx_http_fhir_error_outcome(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_fhir_error_handler;

    return NGX_CONF_OK;
}


static ngx_http_fhir_partner_t *
ngx_http_fhir_find_partner(ngx_http_request_t *r, u_char *name, size_t len)
{
    ngx_uint_t                  i;
    ngx_http_fhir_partner_t    *p;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    p = fmcf->partners.elts;
    for (i = 0; i < fmcf->partners.nelts; i++) {
        if (p[i].name.len == len && ngx_strncmp(p[i].name.data, name, len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


/*
 * The caller's Host goes into the URLs the gateway writes (JSON strings,
 * Location headers) as it is: only the bytes of an RFC 3986 authority
 * (nginx itself lets a quote or a backslash through).
 */
static ngx_uint_t
ngx_http_fhir_host_ok(ngx_str_t *host)
{
    u_char      c;
    ngx_uint_t  i;

    for (i = 0; i < host->len; i++) {
        c = host->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }

        if (c == '\0' || ngx_strchr("-._~!$&'()*+,;=:[]%", c) == NULL) {
            return 0;
        }
    }

    return 1;
}


/* NGX_DECLINED: the caller's Host cannot be written into a URL */
static ngx_int_t
ngx_http_fhir_public_base(ngx_http_request_t *r, ngx_http_fhir_loc_conf_t *flcf,
    ngx_http_fhir_ctx_t *ctx)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   base, host;

    if (flcf->public_url.len) {
        base = flcf->public_url;
        if (base.len && base.data[base.len - 1] == '/') {
            base.len--;
        }
        host.len = 0;
        host.data = NULL;

    } else {
        /* scheme://host + the location prefix */
        if (r->headers_in.host) {
            host = r->headers_in.host->value;
        } else {
            host = r->headers_in.server;
        }
        base = flcf->prefix;
        if (base.len && base.data[base.len - 1] == '/') {
            base.len--;
        }

        if (!ngx_http_fhir_host_ok(&host)) {
            return NGX_DECLINED;
        }
    }

    len = sizeof("https://") - 1 + host.len + base.len + 1
          + ctx->partner->name.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->public_base.data = p;

    if (host.len) {
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            p = ngx_cpymem(p, "https://", 8);
        } else
#endif
        {
            p = ngx_cpymem(p, "http://", 7);
        }
        p = ngx_cpymem(p, host.data, host.len);
    }

    p = ngx_cpymem(p, base.data, base.len);
    *p++ = '/';
    p = ngx_cpymem(p, ctx->partner->name.data, ctx->partner->name.len);

    ctx->public_base.len = p - ctx->public_base.data;

    return NGX_OK;
}


static void
ngx_http_fhir_body_handler(ngx_http_request_t *r)
{
    ngx_http_fhir_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    ctx->body_read = 1;
    r->main->count--;

    if (ctx->waiting_body) {
        ctx->waiting_body = 0;
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);
    }
}


/* a core buffer moved into the pool (the core buffer is freed) */
ngx_int_t
ngx_http_fhir_pool_copy(ngx_pool_t *pool, fhir_buf_t *b, ngx_str_t *dst)
{
    dst->data = ngx_pnalloc(pool, b->len ? b->len : 1);
    if (dst->data == NULL) {
        fhir_buf_free(b);
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, b->data, b->len);
    dst->len = b->len;
    fhir_buf_free(b);

    return NGX_OK;
}


/* each batch entry's request, kept for the audit trail's records */
static void
ngx_http_fhir_batch_request(void *data, int post, const char *url,
    size_t url_len)
{
    ngx_http_fhir_ctx_t  *ctx = data;

    ngx_http_fhir_batch_request_t  *e;

    if (ctx->batch_requests == NULL) {
        return;
    }

    e = ngx_array_push(ctx->batch_requests);
    if (e == NULL) {
        ctx->batch_requests = NULL;   /* the request fails: no audit, no read */
        return;
    }

    /* the URL lives as long as the call: the audit keeps a copy */
    e->post = post;
    e->url.data = ngx_pnalloc(ctx->batch_requests->pool, url_len ? url_len : 1);
    if (e->url.data == NULL) {
        ctx->batch_requests = NULL;
        return;
    }
    ngx_memcpy(e->url.data, url, url_len);
    e->url.len = url_len;
}


/* the body of a batch (translated for the partner) or of a search form */
static ngx_int_t
ngx_http_fhir_read_body(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_http_fhir_loc_conf_t *flcf)
{
    u_char       *p;
    char          err[160];
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_str_t     body;
    fhir_buf_t    out;
    ngx_chain_t  *cl;

    if (!ctx->body_read) {
        rc = ngx_http_read_client_request_body(r, ngx_http_fhir_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        if (!ctx->body_read) {
            ctx->waiting_body = 1;
            return NGX_DONE;
        }
    }

    ctx->body_done = 1;

    if ((r->request_body == NULL || r->request_body->bufs == NULL)
        && ctx->search_form)
    {
        return NGX_DECLINED;
    }

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_BAD_REQUEST,
                                       "a batch Bundle is expected in the "
                                       "request body");
    }

    if (r->request_body->temp_file) {
        return ngx_http_fhir_set_error(r, ctx,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "the batch is larger than client_body_buffer_size; the "
                   "gateway keeps request bodies in memory only");
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len = ngx_cpymem(p + len, cl->buf->pos, ngx_buf_size(cl->buf)) - p;
    }

    /* kept for the audit trail (request bodies stay in memory) */
    ctx->body.data = p;
    ctx->body.len = len;

    if (ctx->search_form) {
        if (!fhir_format_ok((char *) p, len)) {
            return ngx_http_fhir_not_json(r, ctx);
        }
        return NGX_DECLINED;
    }

    out.data = NULL;
    out.len = 0;
    out.cap = 0;

    ctx->batch_requests = ngx_array_create(r->pool, 8,
                                      sizeof(ngx_http_fhir_batch_request_t));
    if (ctx->batch_requests == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (fhir_batch_translate(ctx->version, (char *) p, len,
                             flcf->max_depth, &out, err, sizeof(err),
                             ngx_http_fhir_batch_request, ctx)
        != 0)
    {
        fhir_buf_free(&out);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "fhir: batch refused: %s", err);

        p = ngx_pnalloc(r->pool, ngx_strlen(err) + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_cpystrn(p, (u_char *) err, ngx_strlen(err) + 1);

        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_BAD_REQUEST,
                                       (char *) p);
    }

    if (ctx->batch_requests == NULL
        || ngx_http_fhir_pool_copy(r->pool, &out, &body) != NGX_OK)
    {
        fhir_buf_free(&out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;
    b->last_buf = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->request_body->buf = b;
    r->headers_in.content_length_n = b->last - b->pos;

    return NGX_DECLINED;
}


/*
 * The error log's context of a gateway request: nginx would add the request
 * line and the upstream URL, which carry patient ids and search terms.  PHI
 * belongs in the audit trail only, so the context names the request by its
 * id instead.
 */
static u_char *
ngx_http_fhir_log_error_handler(ngx_http_request_t *r, ngx_http_request_t *sr,
    u_char *buf, size_t len)
{
    u_char                     *p;
    ngx_http_fhir_ctx_t        *ctx;
    ngx_http_variable_value_t  *rid;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    p = buf;

    if (r->headers_in.server.len) {
        p = ngx_snprintf(p, len, ", server: %V", &r->headers_in.server);
        len -= p - buf;
        buf = p;
    }

    if (ctx && ctx->partner) {
        p = ngx_snprintf(p, len, ", partner: %V", &ctx->partner->name);
        len -= p - buf;
        buf = p;
    }

    rid = ngx_http_fhir_request_id_index == NGX_ERROR ? NULL
          : ngx_http_get_indexed_variable(r, ngx_http_fhir_request_id_index);
    if (rid && !rid->not_found) {
        p = ngx_snprintf(p, len, ", request_id: %v", rid);
    }

    return p;
}


/*
 * nginx logs some errors of a request before the gateway's access handler
 * has run (a body over client_max_body_size is refused as the location is
 * chosen), with the request line.  From the first phase on, every request's
 * context goes through this one, which gives gateway locations the context
 * above and any other location nginx's own (kept when first seen).
 */
static ngx_http_log_handler_pt  ngx_http_fhir_nginx_log_handler;


static u_char *
ngx_http_fhir_log_handler(ngx_http_request_t *r, ngx_http_request_t *sr,
    u_char *buf, size_t len)
{
    ngx_http_fhir_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    if (flcf->enable || ngx_http_get_module_ctx(r, ngx_http_fhir_module)) {
        return ngx_http_fhir_log_error_handler(r, sr, buf, len);
    }

    return ngx_http_fhir_nginx_log_handler(r, sr, buf, len);
}


static ngx_int_t
ngx_http_fhir_post_read_handler(ngx_http_request_t *r)
{
    if (ngx_http_fhir_nginx_log_handler == NULL) {
        ngx_http_fhir_nginx_log_handler = r->log_handler;
    }

    /* another module's own context is left alone */
    if (r->log_handler == ngx_http_fhir_nginx_log_handler) {
        r->log_handler = ngx_http_fhir_log_handler;
    }

    return NGX_DECLINED;
}


/*
 * What was asked, for the audit of a request refused before routing: the
 * path after the prefix, without a first segment that names no resource
 * type (resource types start with a capital letter, partner names need not).
 */
static void
ngx_http_fhir_provisional_path(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_http_fhir_loc_conf_t *flcf)
{
    u_char  *p, *end, *slash;

    if (r->uri.len < flcf->prefix.len) {
        return;
    }

    p = r->uri.data + flcf->prefix.len;
    end = r->uri.data + r->uri.len;

    while (p < end && *p == '/') {
        p++;
    }

    slash = ngx_strlchr(p, end, '/');

    if (p < end && !(*p >= 'A' && *p <= 'Z') && slash) {
        p = slash + 1;
    }

    ctx->path.data = p;
    ctx->path.len = end - p;
}


/* GET <prefix>[<partner>/]metadata: the conformance statement */
static ngx_uint_t
ngx_http_fhir_is_metadata(ngx_http_request_t *r, ngx_http_fhir_loc_conf_t *flcf)
{
    u_char  *end;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) || r->uri.len < 8) {
        return 0;
    }

    end = r->uri.data + r->uri.len;

    if (ngx_strncmp(end - 8, "metadata", 8) != 0) {
        return 0;
    }

    /* prefix + "metadata" or prefix + one segment + "/metadata" */
    if (r->uri.len == flcf->prefix.len + 8) {
        return 1;
    }

    return r->uri.len > flcf->prefix.len + 9 && end[-9] == '/'
           && ngx_strlchr(r->uri.data + flcf->prefix.len, end - 9, '/')
              == NULL;
}


/*
 * $request_id for a gateway request, where nothing has read it yet: as
 * nginx makes it (16 bytes of RAND_bytes() in hex), but the bytes drawn
 * from OpenSSL 4 KB at a time.  nginx's own calls RAND_bytes() for each
 * request, which in OpenSSL 3.0 takes its provider layers, locks and a
 * getpid() call for each 16 bytes: some 2.3 us of a 10-entry Bundle's
 * 65-80 us of the worker (a sampling profile, 2026-11-30).  The gateway
 * reads the id for each request (X-Request-Id to the partner, the audit
 * record, the error log's context).  The pool is the worker's own (filled
 * only once a request is served, after fork); where RAND_bytes() fails,
 * nginx's variable is left to make the id (and to log why).
 */
static void
ngx_http_fhir_request_id(ngx_http_request_t *r)
{
    u_char                     *id;
    ngx_http_variable_value_t  *v;

    static u_char               pool[4096];
    static size_t               left;

    if (ngx_http_fhir_request_id_index == NGX_ERROR) {
        return;
    }

    v = &r->variables[ngx_http_fhir_request_id_index];

    if (v->valid || v->not_found) {
        return;
    }

    if (left < 16) {
        if (RAND_bytes(pool, sizeof(pool)) != 1) {
            return;
        }
        left = sizeof(pool);
    }

    id = ngx_pnalloc(r->pool, 32);
    if (id == NULL) {
        return;
    }

    left -= 16;
    ngx_hex_dump(id, pool + left, 16);
    ngx_memzero(pool + left, 16);

    v->len = 32;
    v->data = id;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
}


static ngx_int_t
ngx_http_fhir_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_fhir_ctx_t       *ctx;
    ngx_http_fhir_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    if (!flcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    if (ctx == NULL) {
        ctx = ngx_http_fhir_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_fhir_request_id(r);

        /* also where another module's context handler kept the first
         * phase's from being set (ngx_http_fhir_post_read_handler) */
        r->log_handler = ngx_http_fhir_log_error_handler;

        ngx_http_fhir_provisional_path(r, ctx, flcf);

        /* nobody reaches PHI without a valid token; metadata stays open */
        if (flcf->auth && !ngx_http_fhir_is_metadata(r, flcf)) {
            rc = ngx_http_fhir_authenticate(r, ctx);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        rc = ngx_http_fhir_route(r, ctx, flcf);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        /*
         * Back here through "error_page 401" (conf/fhir_proxy.conf): the
         * partner refused the gateway's token; a new one, and one more try.
         */
        if (r->error_page) {
            ngx_http_fhir_session_invalidate(r, ctx->partner);
        }

        /* no audit, no access, where the operator asks for that */
        if (ngx_http_fhir_audit_refuses(r)) {
            return ngx_http_fhir_set_error(r, ctx,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "the audit trail cannot be written, so patient data "
                       "is not served (fhir_audit_fail_closed)");
        }
    }

    /* the partner's version and our token for it (may wait for a fetch) */
    if (ctx->routed && !ctx->session_ready) {
        rc = ngx_http_fhir_session(r, ctx, !ngx_http_fhir_is_metadata(r, flcf));
        if (rc == NGX_DONE) {
            return NGX_DONE;
        }
        if (rc != NGX_OK) {
            return rc;
        }
        ctx->session_ready = 1;

        if (ngx_http_fhir_upstream_url(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if ((ctx->batch || ctx->search_form) && !ctx->body_done) {
        return ngx_http_fhir_read_body(r, ctx, flcf);
    }

    return NGX_DECLINED;
}


/* /<prefix>/<partner>/<path>: the partner, the path, the public base */
static ngx_int_t
ngx_http_fhir_route(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_http_fhir_loc_conf_t *flcf)
{
    u_char     *p, *end, *name;
    ngx_int_t   rc;
    ngx_str_t  *ct;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_NOT_ALLOWED,
                   "the gateway serves read interactions only: GET (and "
                   "HEAD), and POST for searches and batches");
    }

    /* /<prefix>/<partner>/<path> */

    if (r->uri.len < flcf->prefix.len
        || ngx_strncmp(r->uri.data, flcf->prefix.data, flcf->prefix.len) != 0)
    {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_NOT_FOUND,
                                       "no partner in the path");
    }

    p = r->uri.data + flcf->prefix.len;
    end = r->uri.data + r->uri.len;

    while (p < end && *p == '/') {
        p++;
    }

    name = p;
    while (p < end && *p != '/') {
        p++;
    }

    if (p == name) {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_NOT_FOUND,
                   "no partner in the path: use <base>/<partner>/<resource>");
    }

    ctx->partner = ngx_http_fhir_find_partner(r, name, p - name);

    if (ctx->tenant_partner) {
        if (ctx->partner == NULL) {
            /* <prefix>/<rest>: the token's tenant decides the partner */
            ctx->partner = ctx->tenant_partner;
            p = name;

        } else if (ctx->partner != ctx->tenant_partner) {
            return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_FORBIDDEN,
                       "the path names a partner of another tenant");
        }
    }

    if (ctx->partner == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "fhir: unknown partner \"%*s\"", (size_t) (p - name),
                      name);

        while (p < end && *p == '/') {
            p++;
        }
        ctx->path.data = p;
        ctx->path.len = end - p;

        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_NOT_FOUND,
                                       "unknown partner");
    }

    while (p < end && *p == '/') {
        p++;
    }

    ctx->path.data = p;
    ctx->path.len = end - p;

    /* POST: a batch to the base, or a search; nothing else is a read */

    if (r->method == NGX_HTTP_POST) {
        if (p == end) {
            ctx->batch = 1;

        } else if (end - p >= 8 && ngx_strncmp(end - 8, "/_search", 8) == 0) {
            ctx->search_form = 1;

        } else {
            return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_NOT_ALLOWED,
                       "the gateway serves read interactions only: POST is "
                       "for <Type>/_search and for batches to the base");
        }

        /* what the body is said to be: a search is a form, a batch JSON */
        ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                        : NULL;

        if (ct && ctx->search_form && !ngx_http_fhir_type_is_form(ct)) {
            return ngx_http_fhir_set_error(r, ctx,
                       NGX_HTTP_FHIR_UNSUPPORTED_MEDIA_TYPE,
                       "a POST search takes an "
                       "application/x-www-form-urlencoded body");
        }

        if (ct && ctx->batch && !ngx_http_fhir_type_is_json(ct)) {
            return ngx_http_fhir_set_error(r, ctx,
                       NGX_HTTP_FHIR_UNSUPPORTED_MEDIA_TYPE,
                       "the gateway takes a batch Bundle as FHIR JSON");
        }

        /* nginx does not decode a compressed request body, and the gateway
         * reads the form or the batch itself */
        if (ngx_http_fhir_encoded(ngx_http_fhir_find_header(
                &r->headers_in.headers, "Content-Encoding", 16)))
        {
            return ngx_http_fhir_set_error(r, ctx,
                       NGX_HTTP_FHIR_UNSUPPORTED_MEDIA_TYPE,
                       "the gateway takes request bodies uncompressed");
        }
    }

    /* the answer can only be FHIR JSON: refused before the partner is
     * asked (a search form's _format once its body is read) */
    if (!fhir_format_ok((char *) r->args.data, r->args.len)) {
        return ngx_http_fhir_not_json(r, ctx);
    }

    rc = ngx_http_fhir_public_base(r, flcf, ctx);

    if (rc == NGX_DECLINED) {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_BAD_REQUEST,
                                       "the Host header is not a host name "
                                       "(and port)");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->routed = 1;

    return NGX_DECLINED;
}


/* the partner's URL for this request, in the partner's version */
static ngx_int_t
ngx_http_fhir_upstream_url(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    u_char      *p, *end, *path;
    size_t       len;
    uintptr_t    escape;
    fhir_buf_t   out;

    p = ctx->path.data;
    end = ctx->path.data + ctx->path.len;

    /* the rest of the path, escaped again as proxy_pass would */

    len = end - p;
    escape = 2 * ngx_escape_uri(NULL, p, len, NGX_ESCAPE_URI);

    path = ngx_pnalloc(r->pool, len + escape);
    if (path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (escape) {
        ngx_escape_uri(path, p, len, NGX_ESCAPE_URI);
    } else {
        ngx_memcpy(path, p, len);
    }

    len += escape;

    out.data = NULL;
    out.len = 0;
    out.cap = 0;

    if (fhir_buf_append(&out, ctx->partner->url.data, ctx->partner->url.len)
        != 0
        || fhir_buf_append(&out, "/", 1) != 0
        || fhir_request_translate(ctx->version, (char *) path, len,
                                  (char *) r->args.data, r->args.len, &out)
           != 0)
    {
        fhir_buf_free(&out);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_fhir_pool_copy(r->pool, &out, &ctx->upstream_url)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "fhir: partner \"%V\" upstream \"%V\"",
                   &ctx->partner->name, &ctx->upstream_url);

    return NGX_OK;
}


/* configuration */

static void
ngx_http_fhir_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_fhir_auth_exit_process(cycle);
    ngx_http_fhir_audit_exit_process(cycle);
    ngx_http_fhir_filter_exit_process(cycle);
}


static ngx_int_t
ngx_http_fhir_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_fhir_session_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_fhir_audit_init_process(cycle);
}


static void *
ngx_http_fhir_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_fhir_main_conf_t));
    if (fmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&fmcf->partners, cf->pool, 4,
                       sizeof(ngx_http_fhir_partner_t))
        != NGX_OK)
    {
        return NULL;
    }

    fmcf->audit.fail_closed = NGX_CONF_UNSET;
    fmcf->audit.format = NGX_CONF_UNSET_UINT;
    fmcf->auth.lifetime = NGX_CONF_UNSET;
    fmcf->auth.leeway = NGX_CONF_UNSET;

    return fmcf;
}


static char *
ngx_http_fhir_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    if (ngx_http_fhir_auth_check(cf, fmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_fhir_session_zone(cf, fmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_fhir_audit_check(cf, &fmcf->audit);
}


static char *
ngx_http_fhir_audit_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    char       *rv;
    ngx_str_t  *value;

    if (fmcf->audit.key.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rv = ngx_http_fhir_read_secret(cf, &value[1], &fmcf->audit.key);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (fmcf->audit.key.len < 16) {
        return "needs a key of at least 16 bytes";
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_fhir_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_fhir_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_fhir_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->prefix = { 0, NULL };
     *     conf->public_url = { 0, NULL };
     *     conf->bufs.num = 0;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET;
    conf->max_resource = NGX_CONF_UNSET_SIZE;
    conf->max_depth = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_fhir_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_fhir_loc_conf_t  *prev = parent;
    ngx_http_fhir_loc_conf_t  *conf = child;

    const char                *why;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->auth, prev->auth, 0);

    /* without a proxy_pass (fhir_proxy.conf) nginx's static module would
     * answer: it would look for the request's path, a patient's id in it,
     * on disk, and name it in the error log.  An "if" block or limit_except
     * (noname) keeps its location's content handler. */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->enable && clcf->handler == NULL && !clcf->noname) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_gateway on\" in location \"%V\" without "
                           "\"proxy_pass\": include conf/fhir_proxy.conf in "
                           "it (a location nested in a gateway location that "
                           "does not proxy needs \"fhir_gateway off\")",
                           &clcf->name);
        return NGX_CONF_ERROR;
    }

    if (conf->enable && !conf->auth) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"fhir_gateway on\" without \"fhir_auth on\": "
                           "patient data is served without authenticating "
                           "the caller");
    }
    ngx_conf_merge_str_value(conf->prefix, prev->prefix, "");
    ngx_conf_merge_str_value(conf->public_url, prev->public_url, "");
    ngx_conf_merge_size_value(conf->max_resource, prev->max_resource,
                              16 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_depth, prev->max_depth, 64);
    ngx_conf_merge_bufs_value(conf->bufs, prev->bufs, 8, 32 * 1024);

    if (conf->public_url.len
        && ngx_strncmp(conf->public_url.data, "http://", 7) != 0
        && ngx_strncmp(conf->public_url.data, "https://", 8) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_public_url\" must start with http:// or "
                           "https://, not \"%V\"", &conf->public_url);
        return NGX_CONF_ERROR;
    }

    /* written as it is into the URLs of converted bodies */
    if (conf->public_url.len
        && (why = ngx_http_fhir_json_safe(conf->public_url.data,
                                           conf->public_url.len, 511)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_public_url\" \"%V\" %s",
                           &conf->public_url, why);
        return NGX_CONF_ERROR;
    }

    if (conf->max_depth < 8 || conf->max_depth > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_max_depth\" must be between 8 and 1000, "
                           "not %ui", conf->max_depth);
        return NGX_CONF_ERROR;
    }

    if (conf->max_resource < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_max_resource_size\" of %uz bytes is too "
                           "small: at least 1k", conf->max_resource);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_fhir_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_loc_conf_t *flcf = conf;

    char                       *rv;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_fhir_main_conf_t  *fmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (!flcf->enable) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->named
#if (NGX_PCRE)
        || clcf->regex
#endif
        || clcf->exact_match)
    {
        return "must be used in a prefix location, such as "
               "\"location /fhir/ { ... }\"";
    }

    flcf->prefix = clcf->name;

    /* the prefix goes into the URLs of converted bodies as it is */
    if (ngx_http_fhir_json_safe(clcf->name.data, clcf->name.len, 511)
        != NULL)
    {
        return "must be in a location whose prefix has no quote, backslash "
               "or control character, and at most 511 bytes";
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_fhir_module);

    if (fmcf->partners.nelts == 0) {
        return "needs at least one \"fhir_partner\" block declared before "
               "it in the http block";
    }

    return NGX_CONF_OK;
}


/* fhir_partner NAME { url ...; version ...; bearer_token_file ...; } */

static char *
ngx_http_fhir_partner_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    char                     *rv;
    u_char                   *c;
    ngx_str_t                *value;
    ngx_uint_t                i;
    ngx_conf_t                save;
    ngx_http_fhir_partner_t  *partner, *p;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 64) {
        return "needs a partner name of 1 to 64 characters";
    }

    for (c = value[1].data; c < value[1].data + value[1].len; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid partner name \"%V\": use letters, "
                               "digits, \"-\" and \"_\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    p = fmcf->partners.elts;
    for (i = 0; i < fmcf->partners.nelts; i++) {
        if (p[i].name.len == value[1].len
            && ngx_strncmp(p[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate partner \"%V\", first declared in "
                               "%s:%ui", &value[1], p[i].file, p[i].line);
            return NGX_CONF_ERROR;
        }
    }

    partner = ngx_array_push(&fmcf->partners);
    if (partner == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(partner, sizeof(ngx_http_fhir_partner_t));
    partner->name = value[1];
    partner->version = FHIR_VERSION_UNKNOWN;     /* auto */
    partner->tls_verify = 1;
    partner->timeout = 5000;
    partner->metadata_ttl = 3600;
    partner->refresh = 60;
    partner->file = cf->conf_file->file.name.data;
    partner->line = cf->conf_file->line;

    save = *cf;
    cf->handler = ngx_http_fhir_partner_item;
    cf->handler_conf = (char *) partner;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (partner->url.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_partner \"%V\" has no \"url\"",
                           &partner->name);
        return NGX_CONF_ERROR;
    }

    if (partner->authorization.len
        && (partner->client_id.len || partner->client_secret.len
            || partner->private_key || partner->auth != NGX_HTTP_FHIR_AUTH_STATIC))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_partner \"%V\": \"bearer_token_file\" and "
                           "client credentials exclude each other",
                           &partner->name);
        return NGX_CONF_ERROR;
    }

    if (partner->auth == NGX_HTTP_FHIR_AUTH_NONE && partner->client_id.len) {
        partner->auth = partner->private_key ? NGX_HTTP_FHIR_AUTH_JWT
                                             : NGX_HTTP_FHIR_AUTH_BASIC;
    }

    if ((partner->auth == NGX_HTTP_FHIR_AUTH_BASIC
         || partner->auth == NGX_HTTP_FHIR_AUTH_POST)
        && (partner->client_id.len == 0 || partner->client_secret.len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_partner \"%V\": client_secret_%s needs "
                           "\"client_id\" and \"client_secret_file\"",
                           &partner->name,
                           partner->auth == NGX_HTTP_FHIR_AUTH_BASIC
                           ? "basic" : "post");
        return NGX_CONF_ERROR;
    }

    if (partner->auth == NGX_HTTP_FHIR_AUTH_JWT
        && (partner->client_id.len == 0 || partner->private_key == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_partner \"%V\": private_key_jwt needs "
                           "\"client_id\" and \"private_key_file\"",
                           &partner->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Reads a configuration file (a key, a JWKS, the clients) into a
 * NUL-terminated string: libcurl and OpenSSL take C strings.  A secret is
 * also trimmed, and nginx -t warns when every user can read it.
 */
char *
ngx_http_fhir_read_file(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out,
    size_t max, ngx_uint_t secret)
{
    u_char           *p, *last;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name->data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (secret && (fi.st_mode & S_IROTH)) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "secret file \"%s\" is readable by every user of "
                           "this machine: chmod o-r it", name->data);
    }

    if (ngx_file_size(&fi) > (off_t) max
        || (secret && ngx_file_size(&fi) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is empty or larger than %uz bytes",
                           name->data, max);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (p == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *name;
    file.log = cf->log;

    n = ngx_read_file(&file, p, ngx_file_size(&fi), 0);
    ngx_close_file(fd);

    if (n != ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cannot read \"%s\"",
                           name->data);
        return NGX_CONF_ERROR;
    }

    last = p + n;
    while (secret && last > p && (last[-1] == '\n' || last[-1] == '\r'
                                  || last[-1] == ' ' || last[-1] == '\t'))
    {
        last--;
    }

    *last = '\0';
    out->data = p;
    out->len = last - p;

    return NGX_CONF_OK;
}


static char *
ngx_http_fhir_read_secret(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out)
{
    return ngx_http_fhir_read_file(cf, name, out, 65536, 1);
}


static void
ngx_http_fhir_free_pkey(void *data)
{
    EVP_PKEY_free(data);
}


static char *
ngx_http_fhir_partner_setting(ngx_conf_t *cf, ngx_http_fhir_partner_t *partner,
    ngx_str_t *value)
{
    BIO         *bio;
    char        *rv;
    ngx_str_t    pem;
    ngx_int_t    n;
    const char  *why;

    if (ngx_strcmp(value[0].data, "client_id") == 0
        || ngx_strcmp(value[0].data, "key_id") == 0
        || ngx_strcmp(value[0].data, "token_url") == 0)
    {
        /* written as they are into the client assertion's JSON */
        why = ngx_http_fhir_json_safe(value[1].data, value[1].len,
                                       value[0].data[0] == 't' ? 511 : 128);
        if (why) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": %V \"%V\" %s",
                               &partner->name, &value[0], &value[1], why);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_strcmp(value[0].data, "client_id") == 0) {
        partner->client_id = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "client_secret_file") == 0) {
        return ngx_http_fhir_read_secret(cf, &value[1],
                                         &partner->client_secret);
    }

    if (ngx_strcmp(value[0].data, "private_key_file") == 0) {
        rv = ngx_http_fhir_read_secret(cf, &value[1], &pem);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
        bio = BIO_new_mem_buf(pem.data, (int) pem.len);
        partner->private_key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL,
                                                             NULL)
                                   : NULL;
        BIO_free(bio);
        ngx_explicit_memzero(pem.data, pem.len);

        if (partner->private_key) {
            ngx_pool_cleanup_t  *cln = ngx_pool_cleanup_add(cf->pool, 0);

            if (cln == NULL) {
                EVP_PKEY_free(partner->private_key);
                return NGX_CONF_ERROR;
            }
            cln->handler = ngx_http_fhir_free_pkey;
            cln->data = partner->private_key;
        }
        if (partner->private_key == NULL
            || !(EVP_PKEY_is_a(partner->private_key, "RSA")
                 || (EVP_PKEY_is_a(partner->private_key, "EC")
                     && EVP_PKEY_get_bits(partner->private_key) == 384)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": \"%V\" is not a PEM "
                               "RSA or EC P-384 private key (RS384 / ES384)",
                               &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "key_id") == 0) {
        partner->key_id = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "scope") == 0) {
        partner->scope = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "token_url") == 0) {
        if (ngx_strncmp(value[1].data, "http://", 7) != 0
            && ngx_strncmp(value[1].data, "https://", 8) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": token_url \"%V\" must "
                               "start with http:// or https://",
                               &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }
        partner->token_url = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "auth") == 0) {
        if (ngx_strcmp(value[1].data, "client_secret_basic") == 0) {
            partner->auth = NGX_HTTP_FHIR_AUTH_BASIC;
        } else if (ngx_strcmp(value[1].data, "client_secret_post") == 0) {
            partner->auth = NGX_HTTP_FHIR_AUTH_POST;
        } else if (ngx_strcmp(value[1].data, "private_key_jwt") == 0) {
            partner->auth = NGX_HTTP_FHIR_AUTH_JWT;
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": auth \"%V\": use "
                               "client_secret_basic, client_secret_post or "
                               "private_key_jwt", &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "ca_file") == 0) {
        partner->ca_file = value[1];
        if (ngx_conf_full_name(cf->cycle, &partner->ca_file, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "tls_verify") == 0) {
        if (ngx_strcmp(value[1].data, "on") == 0) {
            partner->tls_verify = 1;
        } else if (ngx_strcmp(value[1].data, "off") == 0) {
            partner->tls_verify = 0;
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "fhir_partner \"%V\": tls_verify off: the "
                               "partner's certificate is not checked for "
                               "metadata and token requests",
                               &partner->name);
        } else {
            return "takes \"on\" or \"off\" for tls_verify";
        }
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "timeout") == 0) {
        partner->timeout = ngx_parse_time(&value[1], 0);
        if (partner->timeout == (ngx_msec_t) NGX_ERROR
            || partner->timeout == 0)
        {
            return "has an invalid timeout";
        }
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "metadata_ttl") == 0
        || ngx_strcmp(value[0].data, "token_refresh") == 0)
    {
        n = ngx_parse_time(&value[1], 1);
        if (n == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": invalid %V \"%V\"",
                               &partner->name, &value[0], &value[1]);
            return NGX_CONF_ERROR;
        }
        if (value[0].data[0] == 'm') {
            partner->metadata_ttl = n;
        } else {
            partner->refresh = n;
        }
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "fhir_partner \"%V\": unknown setting \"%V\" (known: "
                       "url, version, bearer_token_file, client_id, "
                       "client_secret_file, private_key_file, key_id, auth, "
                       "scope, token_url, ca_file, tls_verify, timeout, "
                       "metadata_ttl, token_refresh)",
                       &partner->name, &value[0]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_fhir_partner_item(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_fhir_partner_t *partner = (ngx_http_fhir_partner_t *) conf;

    u_char     *p;
    char       *rv;
    ngx_str_t  *value, token;

    value = cf->args->elts;

    if (cf->args->nelts != 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_partner \"%V\": \"%V\" takes one value",
                           &partner->name, &value[0]);
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[0].data, "url") == 0) {

        if (ngx_strncmp(value[1].data, "http://", 7) != 0
            && ngx_strncmp(value[1].data, "https://", 8) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": url \"%V\" must start "
                               "with http:// or https://",
                               &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }

        if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '?')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": url \"%V\" must not "
                               "carry a query string",
                               &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }

        partner->url = value[1];
        while (partner->url.len && partner->url.data[partner->url.len - 1]
                                   == '/')
        {
            partner->url.len--;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "version") == 0) {

        partner->version = fhir_version_from_string((char *) value[1].data);

        if (ngx_strcmp(value[1].data, "auto") == 0) {
            /* discovered from the partner's conformance statement */
            partner->version = FHIR_VERSION_UNKNOWN;
            return NGX_CONF_OK;
        }

        if (partner->version == FHIR_VERSION_UNKNOWN
            || (ngx_strcmp(value[1].data, "dstu2") != 0
                && ngx_strcmp(value[1].data, "stu3") != 0
                && ngx_strcmp(value[1].data, "r4") != 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_partner \"%V\": invalid version \"%V\": "
                               "use dstu2, stu3 or r4",
                               &partner->name, &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "bearer_token_file") == 0) {

        rv = ngx_http_fhir_read_secret(cf, &value[1], &token);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        partner->auth = NGX_HTTP_FHIR_AUTH_STATIC;
        partner->authorization.len = sizeof("Bearer ") - 1 + token.len;
        partner->authorization.data = ngx_pnalloc(cf->pool,
                                                  partner->authorization.len);
        if (partner->authorization.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(partner->authorization.data, "Bearer ", 7);
        ngx_memcpy(p, token.data, token.len);

        return NGX_CONF_OK;
    }

    return ngx_http_fhir_partner_setting(cf, partner, value);
}


static ngx_int_t
ngx_http_fhir_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_fhir_access_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_fhir_post_read_handler;

    if (ngx_http_fhir_audit_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_fhir_filter_init(cf);
}
