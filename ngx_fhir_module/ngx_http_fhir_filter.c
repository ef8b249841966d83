
/*
 * ngx_fhir: the header and body filters.  A partner's response is fed to
 * the streaming core and leaves as R4 JSON in a bounded set of buffers
 * (fhir_buffers); the response header is held back until the first
 * converted bytes exist, so that a partner's broken JSON still becomes a
 * 502 OperationOutcome while nothing has gone out.  Once bytes went out, a
 * failure aborts the response (the connection is closed without the last
 * chunk).  Errors that nginx itself produces for a gateway request (502,
 * 504, ...) are replaced by OperationOutcomes here too.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_fhir_module.h"
#include "fhir_oo.h"


/* the header is sent once this much output is waiting, even mid-entry */
#define NGX_HTTP_FHIR_HOLD_MAX  (256 * 1024)


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_int_t ngx_http_fhir_partner_headers(ngx_http_request_t *r,
    ngx_http_fhir_ctx_t *ctx, ngx_uint_t replaced);


/*
 * The memory of a finished conversion (its stream, arena and output
 * buffer) is kept for the next one in this worker: a Bundle of some
 * hundred KB would otherwise cost page faults on every request.
 */
#define NGX_HTTP_FHIR_SPARES      8
#define NGX_HTTP_FHIR_SPARE_MAX   (1024 * 1024)

typedef struct {
    fhir_stream_t  *stream;
    fj_arena_t      arena;
    fhir_buf_t      pending;
} ngx_http_fhir_spare_t;

static ngx_http_fhir_spare_t  ngx_http_fhir_spares[NGX_HTTP_FHIR_SPARES];
static ngx_uint_t             ngx_http_fhir_nspares;


static void
ngx_http_fhir_cleanup(void *data)
{
    ngx_http_fhir_ctx_t  *ctx = data;

    ngx_buf_t              *b;
    fhir_buf_t              keep, mem;
    ngx_chain_t            *cl;
    ngx_http_fhir_spare_t  *sp;

    /*
     * The output memory: the pending buffer and every output buffer's; the
     * largest that a spare may hold is kept, the rest is freed.
     */
    keep = ctx->pending;
    keep.len = 0;

    for (cl = ctx->outbufs; cl; cl = cl->next) {
        b = cl->buf;
        mem.data = (char *) b->start;
        mem.cap = b->end - b->start;
        mem.len = 0;
        b->start = NULL;
        b->end = NULL;

        if (mem.cap > keep.cap && mem.cap <= NGX_HTTP_FHIR_SPARE_MAX) {
            fhir_buf_free(&keep);
            keep = mem;

        } else {
            fhir_buf_free(&mem);
        }
    }

    ctx->outbufs = NULL;

    if (ctx->stream && ngx_http_fhir_nspares < NGX_HTTP_FHIR_SPARES
        && keep.cap <= NGX_HTTP_FHIR_SPARE_MAX
        && ctx->arena.used <= NGX_HTTP_FHIR_SPARE_MAX)
    {
        sp = &ngx_http_fhir_spares[ngx_http_fhir_nspares++];
        sp->stream = ctx->stream;
        fj_arena_reset(&ctx->arena);
        sp->arena = ctx->arena;
        sp->pending = keep;

    } else {
        fhir_stream_destroy(ctx->stream);
        fj_arena_free(&ctx->arena);
        fhir_buf_free(&keep);
    }

    ctx->stream = NULL;
    ngx_memzero(&ctx->arena, sizeof(fj_arena_t));
    ngx_memzero(&ctx->pending, sizeof(fhir_buf_t));
}


/* the worker exits: its spare converters go too */
void
ngx_http_fhir_filter_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_fhir_spare_t  *sp;

    while (ngx_http_fhir_nspares) {
        sp = &ngx_http_fhir_spares[--ngx_http_fhir_nspares];
        fhir_stream_destroy(sp->stream);
        fj_arena_free(&sp->arena);
        fhir_buf_free(&sp->pending);
    }
}


static ngx_int_t
ngx_http_fhir_set_content_type(ngx_http_request_t *r)
{
    r->headers_out.content_type_len = sizeof(NGX_HTTP_FHIR_MEDIA_TYPE) - 1;
    ngx_str_set(&r->headers_out.content_type, NGX_HTTP_FHIR_CONTENT_TYPE);
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return NGX_OK;
}


/*
 * X-Request-Id on every gateway answer: the id of the access log, the audit
 * trail and the error log, for support calls.  Added here, not with an
 * add_header in fhir_proxy.conf: nginx inherits the server's add_header
 * lines (HSTS, ...) only into a location that has none of its own.
 */
static ngx_int_t
ngx_http_fhir_request_id_header(ngx_http_request_t *r)
{
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *v;

    if (ngx_http_fhir_request_id_index == NGX_ERROR) {
        return NGX_OK;
    }

    v = ngx_http_get_indexed_variable(r, ngx_http_fhir_request_id_index);
    if (v == NULL || v->not_found) {
        return NGX_OK;
    }

    h = ngx_http_fhir_add_header(r, "X-Request-Id", NULL);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = v->data;
    h->value.len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_no_store(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_table_elt_t  *cc, **ccp;

    /* what the partner said about caching is replaced: PHI is never cached */

    ccp = r->headers_out.cache_control.elts;

    if (ccp == NULL) {

        if (ngx_array_init(&r->headers_out.cache_control, r->pool,
                           1, sizeof(ngx_table_elt_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cc = ngx_list_push(&r->headers_out.headers);
        if (cc == NULL) {
            return NGX_ERROR;
        }

        cc->hash = 1;
        ngx_str_set(&cc->key, "Cache-Control");

        ccp = ngx_array_push(&r->headers_out.cache_control);
        if (ccp == NULL) {
            return NGX_ERROR;
        }

        *ccp = cc;

    } else {
        for (i = 1; i < r->headers_out.cache_control.nelts; i++) {
            ccp[i]->hash = 0;
        }

        cc = ccp[0];
        cc->hash = 1;
    }

    ngx_str_set(&cc->value, "no-store");

    return NGX_OK;
}


static const char *
ngx_http_fhir_status_text(ngx_uint_t status)
{
    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        return "the request is malformed";
    case NGX_HTTP_NOT_FOUND:
        return "not found";
    case NGX_HTTP_NOT_ALLOWED:
        return "method not allowed";
    case NGX_HTTP_REQUEST_TIME_OUT:
        return "the request took too long to arrive";
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return "the request body is too large";
    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        return "the request URI is too long";
    case NGX_HTTP_INTERNAL_SERVER_ERROR:
        return "internal error in the gateway";
    case NGX_HTTP_BAD_GATEWAY:
        return "the partner FHIR server could not be reached or did not "
               "answer properly";
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        return "the service is unavailable";
    case NGX_HTTP_GATEWAY_TIME_OUT:
        return "the partner FHIR server did not answer in time";
    default:
        return "the request failed";
    }
}


/*
 * The origin of an absolute URL for the error log: "scheme://host[:port]",
 * without any user information and stopping at the first byte that is not
 * printable ASCII; an empty string for anything else.
 */
static ngx_str_t
ngx_http_fhir_origin(ngx_pool_t *pool, ngx_str_t *url)
{
    u_char     *p, *end, *host, *scheme_end;
    ngx_str_t   origin;

    ngx_str_null(&origin);

    end = url->data + url->len;

    /* a scheme (RFC 3986: a letter, then letters, digits, "+", "-", ".")
     * and "://" at the start, or not an absolute URL */
    for (scheme_end = url->data; scheme_end < end; scheme_end++) {
        if (!((*scheme_end | 0x20) >= 'a' && (*scheme_end | 0x20) <= 'z')
            && !(scheme_end > url->data
                 && ((*scheme_end >= '0' && *scheme_end <= '9')
                     || *scheme_end == '+' || *scheme_end == '-'
                     || *scheme_end == '.')))
        {
            break;
        }
    }

    if (scheme_end == url->data || end - scheme_end < 3
        || ngx_strncmp(scheme_end, "://", 3) != 0)
    {
        return origin;
    }

    host = scheme_end + 3;

    for (p = host; p < end && *p > ' ' && *p < 0x7f; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            break;
        }
        if (*p == '@') {
            host = p + 1;
        }
    }

    origin.len = (scheme_end - url->data) + 3 + (p - host);
    origin.data = ngx_pnalloc(pool, origin.len);
    if (origin.data == NULL) {
        origin.len = 0;
        return origin;
    }

    ngx_memcpy(ngx_cpymem(ngx_cpymem(origin.data, url->data,
                                     scheme_end - url->data),
                          "://", 3),
               host, p - host);

    return origin;
}


static ngx_int_t
ngx_http_fhir_prepare_oo(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *text)
{
    fhir_buf_t   buf;
    const char  *severity;

    buf.data = NULL;
    buf.len = 0;
    buf.cap = 0;

    severity = status >= 500 ? "fatal" : "error";

    if (fhir_oo_write(&buf, severity, fhir_oo_code_for_status(status),
                      (char *) text->data, text->len)
        != 0)
    {
        fhir_buf_free(&buf);
        return NGX_ERROR;
    }

    if (ngx_http_fhir_pool_copy(r->pool, &buf, &ctx->oo) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->mode = NGX_HTTP_FHIR_REPLACE;
    ctx->oo_sent = 0;

    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;
    r->err_status = 0;
    r->headers_out.content_length_n = ctx->oo.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    if (r->headers_out.location) {
        r->headers_out.location->hash = 0;
        r->headers_out.location = NULL;
    }

    if (r->headers_out.content_range) {
        r->headers_out.content_range->hash = 0;
        r->headers_out.content_range = NULL;
    }

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    if (ngx_http_fhir_partner_headers(r, ctx, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_fhir_set_content_type(r);
}


static ngx_int_t
ngx_http_fhir_send_oo(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ctx->oo_sent) {
        return NGX_OK;
    }

    ctx->oo_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->oo.data;
    b->last = ctx->oo.data + ctx->oo.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_fhir_rewrite_location(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_table_elt_t *h)
{
    int           rc;
    u_char       *p;
    size_t        len;
    const char   *out;
    fj_arena_t    arena = { NULL, 0 };
    fhir_conv_t   head, *conv;

    if (h == NULL || h->hash == 0) {
        return NGX_OK;
    }

    /* the rewritten URL goes to the request's pool; the core's scratch is
     * the conversion's arena, or, where there is no conversion (a HEAD),
     * an arena of its own, freed here */
    conv = &ctx->conv;
    if (ctx->stream == NULL) {
        head = ctx->conv;
        head.arena = &arena;
        conv = &head;
    }

    rc = fhir_rewrite_url(conv, (char *) h->value.data, h->value.len,
                          &out, &len);

    if (rc == 0 && out != (char *) h->value.data) {
        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            rc = -1;

        } else {
            ngx_memcpy(p, out, len);
            h->value.data = p;
            h->value.len = len;
        }
    }

    fj_arena_free(&arena);

    return rc == 0 ? NGX_OK : NGX_ERROR;
}


/*
 * One pass over the partner's headers that do not fit what the caller
 * gets.  Its digests of its body (Content-MD5, RFC 3230's Digest, RFC
 * 9530's Content-Digest and Repr-Digest), which a client checking one would
 * find wrong, are hidden.  For a converted answer its Content-Location
 * (HAPI sends one with each read, the resource's versioned URL on the
 * partner) names the gateway's route instead, as Location does (nginx's
 * proxy_redirect leaves it alone), and so does either when it is a path on
 * the partner's server (nginx's upstream module leaves a Location that
 * starts with a slash out of headers_out.location: it is in the list
 * only); such a path outside the partner's base names nothing at the
 * gateway and is hidden.  For an OperationOutcome in place of its answer
 * (replaced), every Location and Content-Location is hidden.
 */
static ngx_int_t
ngx_http_fhir_partner_headers(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t replaced)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

#define NGX_HTTP_FHIR_IS(name)                                                \
    ngx_http_fhir_header_is(&h[i], name, sizeof(name) - 1)

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0) {
            continue;
        }

        if (NGX_HTTP_FHIR_IS("Content-Location")
            || (NGX_HTTP_FHIR_IS("Location")
                && &h[i] != r->headers_out.location))
        {
            if (replaced) {
                h[i].hash = 0;
                continue;
            }

            if (ngx_http_fhir_rewrite_location(r, ctx, &h[i]) != NGX_OK) {
                return NGX_ERROR;
            }

            if (h[i].value.len && h[i].value.data[0] == '/') {
                /* a path on the partner's server outside its base: it
                 * names nothing at the gateway */
                h[i].hash = 0;
            }

        } else if (NGX_HTTP_FHIR_IS("Location")) {
            if (replaced) {
                h[i].hash = 0;
            }

        } else if (NGX_HTTP_FHIR_IS("Content-MD5")
                   || NGX_HTTP_FHIR_IS("Digest")
                   || NGX_HTTP_FHIR_IS("Content-Digest")
                   || NGX_HTTP_FHIR_IS("Repr-Digest")
                   || NGX_HTTP_FHIR_IS("Link"))
        {
            /* digests of bytes the caller does not get; links (RFC 8288)
             * to the partner's own URLs, which paging through them would
             * take the caller around the gateway to */
            h[i].hash = 0;
        }
    }

#undef NGX_HTTP_FHIR_IS

    return NGX_OK;
}


/* what the conversion, and the rewriting of a Location, need to know */
static ngx_int_t
ngx_http_fhir_conv_init(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    ngx_http_fhir_main_conf_t  *fmcf;

    ctx->conv.from = ctx->version;
    ctx->conv.arena = &ctx->arena;
    ctx->conv.partner_base = (char *) ctx->partner->url.data;
    ctx->conv.partner_base_len = ctx->partner->url.len;
    ctx->conv.public_base = (char *) ctx->public_base.data;
    ctx->conv.public_base_len = ctx->public_base.len;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    if (fmcf->auth.token_url.len) {
        ctx->conv.token_url = (char *) fmcf->auth.token_url.data;
    }

    /* a NUL-terminated copy of the gateway's base for this partner */
    ctx->conv.public_url = (char *) ngx_pnalloc(r->pool,
                                               ctx->public_base.len + 1);
    if (ctx->conv.public_url == NULL) {
        return NGX_ERROR;
    }
    ngx_cpystrn((u_char *) ctx->conv.public_url, ctx->public_base.data,
                ctx->public_base.len + 1);

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_start_conversion(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_fhir_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_fhir_cleanup;
    cln->data = ctx;

    ctx->conv.observe = ngx_http_fhir_audit_observe;
    ctx->conv.observe_data = r;

    if (ngx_http_fhir_nspares) {
        ngx_http_fhir_spare_t  *sp;

        sp = &ngx_http_fhir_spares[--ngx_http_fhir_nspares];
        ctx->arena = sp->arena;
        ctx->pending = sp->pending;
        ctx->stream = sp->stream;
        fhir_stream_reset(ctx->stream, &ctx->conv);
        fhir_stream_limits(ctx->stream, flcf->max_resource, flcf->max_depth);

    } else {
        ctx->stream = fhir_stream_create(&ctx->conv, flcf->max_resource,
                                         flcf->max_depth);
        if (ctx->stream == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->last_out = &ctx->out;
    ctx->mode = NGX_HTTP_FHIR_CONVERT;

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_header_filter(ngx_http_request_t *r)
{
    ngx_str_t              text, origin;
    ngx_uint_t             status, out;
    ngx_table_elt_t       *loc, *retry;
    static ngx_str_t       none = ngx_null_string;
    ngx_http_fhir_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    if (ctx == NULL && r == r->main && r->err_status) {
        ngx_http_fhir_loc_conf_t  *flcf;

        /* an error nginx decided in a gateway location before the gateway
         * saw the request (a body over client_max_body_size is refused
         * when the location is chosen): an OperationOutcome as well; no
         * read event, so not audited */
        flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

        if (flcf->enable) {
            ctx = ngx_http_fhir_create_ctx(r);
            if (ctx == NULL) {
                return NGX_ERROR;
            }
            ctx->not_audited = 1;
        }
    }

    if (ctx == NULL || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_fhir_no_store(r) != NGX_OK
        || ngx_http_fhir_request_id_header(r) != NGX_OK)
    {
        return NGX_ERROR;
    }

    status = r->headers_out.status;

    /* an error nginx produced itself (our own 4xx, or 502, 504, ...) */

    if (r->err_status || ctx->error_status) {

        if (ctx->error_status) {
            status = ctx->error_status;
            text = ctx->error_text;

        } else if (r->err_status == NGX_HTTP_UNAUTHORIZED && ctx->partner) {
            /* the partner refused the gateway's token, even a new one */
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "fhir: partner \"%V\" refused the gateway's "
                          "credentials twice", &ctx->partner->name);
            status = NGX_HTTP_BAD_GATEWAY;
            ngx_str_set(&text, "the partner refused the gateway's "
                               "credentials");
            if (r->headers_out.www_authenticate) {
                r->headers_out.www_authenticate->hash = 0;
                r->headers_out.www_authenticate = NULL;
            }

        } else {
            text.data = (u_char *) ngx_http_fhir_status_text(r->err_status);
            text.len = ngx_strlen(text.data);
        }

        if (ngx_http_fhir_prepare_oo(r, ctx, status, &text) != NGX_OK) {
            return NGX_ERROR;
        }

        /* what the gateway serves (RFC 9110 asks a 405 to say it) */
        if (status == NGX_HTTP_NOT_ALLOWED
            && ngx_http_fhir_add_header(r, "Allow", "GET, HEAD, POST") == NULL)
        {
            return NGX_ERROR;
        }

        if (ctx->retry_after && status == NGX_HTTP_SERVICE_UNAVAILABLE) {
            ngx_table_elt_t  *h = ngx_http_fhir_add_header(r, "Retry-After",
                                                           NULL);

            if (h == NULL) {
                return NGX_ERROR;
            }
            h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
            if (h->value.data == NULL) {
                return NGX_ERROR;
            }
            h->value.len = ngx_sprintf(h->value.data, "%T", ctx->retry_after)
                           - h->value.data;
        }

        return ngx_http_next_header_filter(r);
    }

    if (r->upstream == NULL || ctx->partner == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* a partner's response */

    if (r->header_only || status == NGX_HTTP_NO_CONTENT
        || status == NGX_HTTP_NOT_MODIFIED)
    {
        /* a 304 confirms the converted body, whose ETag was weakened */
        if (status == NGX_HTTP_NOT_MODIFIED) {
            ngx_http_weak_etag(r);
        }
        return ngx_http_next_header_filter(r);
    }

    /* a part of a body is not JSON that can be converted; the gateway
     * asks for the whole (fhir_proxy.conf does not pass the caller's
     * Range) */
    if (status == NGX_HTTP_PARTIAL_CONTENT) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "fhir: partner \"%V\" answered 206 with a part of "
                      "the body, which cannot be converted (does the "
                      "location include fhir_proxy.conf, which does not "
                      "pass the caller's Range header?)",
                      &ctx->partner->name);
        ngx_str_set(&text, "the partner sent a part of the body, which the "
                           "gateway cannot convert");
        if (ngx_http_fhir_prepare_oo(r, ctx, NGX_HTTP_BAD_GATEWAY, &text)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_fhir_encoded(r->headers_out.content_encoding)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "fhir: partner \"%V\" sent a body with "
                      "Content-Encoding \"%V\" although the gateway asks for "
                      "identity; refused", &ctx->partner->name,
                      &r->headers_out.content_encoding->value);
        ngx_str_set(&text, "the partner sent a compressed body, which the "
                           "gateway does not accept");
        if (ngx_http_fhir_prepare_oo(r, ctx, NGX_HTTP_BAD_GATEWAY, &text)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        return ngx_http_next_header_filter(r);
    }

    if (!ngx_http_fhir_type_is_json(&r->headers_out.content_type)) {

        loc = NULL;
        out = NGX_HTTP_BAD_GATEWAY;

        if (status >= NGX_HTTP_SPECIAL_RESPONSE
            && status < NGX_HTTP_BAD_REQUEST)
        {
            /* (a relative Location is in the list only, not in
             * headers_out.location) */
            loc = ngx_http_fhir_find_header(&r->headers_out.headers,
                                            "Location", 8);
        }

        if (loc) {
            /* a redirect, commonly a partner url with http:// where the
             * server wants https://, or an old base: the gateway does not
             * follow it (its token and TLS checks are the url's).  The
             * log names the target's origin only: its path may name a
             * patient */
            origin = ngx_http_fhir_origin(r->pool, &loc->value);
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "fhir: partner \"%V\" answered %ui, a redirect to "
                          "%s%V, which the gateway does not follow: is the "
                          "partner's url right?", &ctx->partner->name, status,
                          origin.len ? "" : "a path on the partner's server",
                          &origin);
            ngx_str_set(&text, "the partner redirected the request, which "
                               "the gateway does not follow");

        } else if (status == NGX_HTTP_TOO_MANY_REQUESTS
                   || status == NGX_HTTP_SERVICE_UNAVAILABLE)
        {
            /* throttled or down for a while: the caller is told so, with
             * the partner's Retry-After (kept), rather than that it failed */
            retry = ngx_http_fhir_find_header(&r->headers_out.headers,
                                              "Retry-After", 11);
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "fhir: partner \"%V\" answered %ui (%s)%s%V",
                          &ctx->partner->name, status,
                          status == NGX_HTTP_TOO_MANY_REQUESTS
                          ? "too many requests" : "unavailable",
                          retry ? ", Retry-After: " : "",
                          retry ? &retry->value : &none);
            if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
                ngx_str_set(&text, "the partner is limiting the gateway's "
                                   "requests; retry later");
            } else {
                ngx_str_set(&text, "the partner is unavailable; retry "
                                   "later");
            }
            out = status;

        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "fhir: partner \"%V\" answered %ui with "
                          "Content-Type \"%V\", not FHIR JSON",
                          &ctx->partner->name, status,
                          &r->headers_out.content_type);
            ngx_str_set(&text, "the partner did not answer with FHIR JSON");
        }

        if (ngx_http_fhir_prepare_oo(r, ctx, out, &text)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
        return ngx_http_next_header_filter(r);
    }

    /* a HEAD: nginx sends the caller no body, whatever the partner sent;
     * the headers a GET would get, and nothing to convert */
    if (ngx_http_fhir_conv_init(r, ctx) != NGX_OK
        || (r->method != NGX_HTTP_HEAD
            && ngx_http_fhir_start_conversion(r, ctx) != NGX_OK)
        || ngx_http_fhir_rewrite_location(r, ctx, r->headers_out.location)
           != NGX_OK
        || ngx_http_fhir_partner_headers(r, ctx, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_weak_etag(r);
    ngx_http_fhir_set_content_type(r);

    if (r->method == NGX_HTTP_HEAD) {
        return ngx_http_next_header_filter(r);
    }

    r->filter_need_in_memory = 1;

    /* held back until the first converted bytes exist */

    return NGX_OK;
}


/*
 * The partner's response cannot be delivered whole: a 502 OperationOutcome
 * while nothing went out, else an abort (the connection is closed without
 * the last chunk).
 */
static ngx_int_t
ngx_http_fhir_response_failed(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    const char *why, const char *diagnostics)
{
    ngx_str_t   text;
    ngx_int_t   rc;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "fhir: the response of partner \"%V\" %s; %s",
                  &ctx->partner->name, why,
                  ctx->header_sent ? "response aborted" : "502 sent instead");

    if (ctx->header_sent) {
        ctx->aborted = 1;
        return NGX_ERROR;
    }

    text.data = (u_char *) diagnostics;
    text.len = ngx_strlen(diagnostics);

    if (ngx_http_fhir_prepare_oo(r, ctx, NGX_HTTP_BAD_GATEWAY, &text)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->header_sent = 1;

    rc = ngx_http_next_header_filter(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_fhir_send_oo(r, ctx);
}


static ngx_int_t
ngx_http_fhir_stream_failed(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    u_char  why[256], *p;

    /* terminated whatever the length of the core's message */
    p = ngx_snprintf(why, sizeof(why) - 1, "cannot be converted: %s",
                     fhir_stream_error(ctx->stream));
    *p = '\0';

    return ngx_http_fhir_response_failed(r, ctx, (char *) why,
               "the partner's response is not valid FHIR JSON and cannot be "
               "converted");
}


/*
 * nginx's upstream module ends a response that broke off (the partner
 * closed, reset or stalled past proxy_read_timeout) with a flush instead of
 * the last buffer.
 */
static ngx_uint_t
ngx_http_fhir_upstream_broke_off(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_event_pipe_t  *p;

    if (r->upstream == NULL || r->upstream->pipe == NULL) {
        return 0;
    }

    p = r->upstream->pipe;

    if (!(p->upstream_error || p->upstream_eof || p->upstream_done)) {
        return 0;
    }

    for ( /* void */ ; in; in = in->next) {
        if (in->buf->last_buf) {
            return 0;
        }
        if (in->buf->flush && ngx_buf_size(in->buf) == 0) {
            return 1;
        }
    }

    return 0;
}


/* bytes of our output memory in a chain */
static size_t
ngx_http_fhir_chain_memory(ngx_chain_t *cl)
{
    size_t  size;

    for (size = 0; cl; cl = cl->next) {
        if (cl->buf->tag == (ngx_buf_tag_t) &ngx_http_fhir_module) {
            size += cl->buf->end - cl->buf->start;
        }
    }

    return size;
}


/*
 * No more output may go out before some of what is in flight to the caller
 * (held by the filters after this one, or about to be passed to them) has
 * left.
 */
static ngx_inline ngx_uint_t
ngx_http_fhir_full(ngx_http_fhir_ctx_t *ctx, ngx_http_fhir_loc_conf_t *flcf,
    size_t held)
{
    return held && held + ctx->pending.cap > flcf->bufs.num * flcf->bufs.size;
}


/* the output memory in flight: held by the next filters, or about to be */
static ngx_inline size_t
ngx_http_fhir_held(ngx_http_fhir_ctx_t *ctx)
{
    return ngx_http_fhir_chain_memory(ctx->busy)
           + ngx_http_fhir_chain_memory(ctx->out);
}


static ngx_inline ngx_uint_t
ngx_http_fhir_out_full(ngx_http_fhir_ctx_t *ctx,
    ngx_http_fhir_loc_conf_t *flcf)
{
    return ngx_http_fhir_full(ctx, flcf, ngx_http_fhir_held(ctx));
}


/*
 * Hands the pending converted bytes to the next filter without a copy: the
 * buffer they were written to goes out as it is, and the converter goes on
 * in the memory of an output buffer that has left (or in new memory).
 * NGX_AGAIN: as much as fhir_buffers allows is in flight.
 */
static ngx_int_t
ngx_http_fhir_drain(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    size_t                     size, held;
    u_char                    *mem;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl, *all;
    ngx_http_fhir_loc_conf_t  *flcf;

    if (ctx->pending.len == 0) {
        return NGX_OK;
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    held = ngx_http_fhir_held(ctx);

    if (ngx_http_fhir_full(ctx, flcf, held)) {
        return NGX_AGAIN;
    }

    if (ctx->free) {
        cl = ctx->free;
        ctx->free = cl->next;
        b = cl->buf;
        mem = b->start;
        size = b->end - b->start;

    } else {
        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        all = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL || all == NULL) {
            return NGX_ERROR;
        }

        b->tag = (ngx_buf_tag_t) &ngx_http_fhir_module;
        b->temporary = 1;
        b->recycled = 1;
        cl->buf = b;

        /* every output buffer's memory is freed (or kept) at cleanup */
        all->buf = b;
        all->next = ctx->outbufs;
        ctx->outbufs = all;

        mem = NULL;
        size = 0;
    }

    b->start = (u_char *) ctx->pending.data;
    b->end = b->start + ctx->pending.cap;
    b->pos = b->start;
    b->last = b->start + ctx->pending.len;

    ctx->pending.data = (char *) mem;
    ctx->pending.cap = size;
    ctx->pending.len = 0;

    cl->next = NULL;
    *ctx->last_out = cl;
    ctx->last_out = &cl->next;

    /* the most output memory the response held at once, in flight (the
     * buffer just added with it) and in the converter's hands
     * ($fhir_buffers_peak) */
    held += (size_t) (b->end - b->start) + ctx->pending.cap;
    if (held > ctx->out_peak) {
        ctx->out_peak = held;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_last_buf(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;
    *ctx->last_out = cl;
    ctx->last_out = &cl->next;
    ctx->last_sent = 1;

    return NGX_OK;
}


/*
 * Feeds the core the next input, at most what the output buffers have room
 * for (NUMBER x SIZE less what is pending), or SIZE (what one feed
 * converts is what may go beyond fhir_buffers: with a whole 64k proxy
 * buffer at once, 2 4k buffers held 256k); NGX_DECLINED when none is
 * left.  A buffer fed whole is "pinned": it stays unconsumed
 * in the eyes of the upstream pipe until its converted bytes have left our
 * buffers, so that a slow client holds the partner back (nginx's own
 * back-pressure) and the pipe keeps calling this filter to flush.
 */
static ngx_int_t
ngx_http_fhir_feed(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    ngx_uint_t *flush)
{
    int                        rc;
    size_t                     n;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_fhir_loc_conf_t  *flcf;

    if (ctx->in == NULL) {
        return NGX_DECLINED;
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    cl = ctx->in;
    b = cl->buf;

    if (ngx_buf_size(b) && !ngx_buf_in_memory(b)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "fhir: a file buffer reached the filter; proxied FHIR "
                      "responses must stay in memory "
                      "(proxy_max_temp_file_size 0)");
        return NGX_ERROR;
    }

    if (ngx_buf_in_memory(b) && b->last > b->pos + ctx->in_fed) {

        /* new output memory starts at the size of an output buffer */
        if (ctx->pending.cap == 0
            && fhir_buf_reserve(&ctx->pending, flcf->bufs.size) != 0)
        {
            return NGX_ERROR;
        }

        /* as much as the output buffers have room for, at least SIZE */
        n = flcf->bufs.num * flcf->bufs.size;
        n = (n > ctx->pending.len + flcf->bufs.size) ? n - ctx->pending.len
                                                     : flcf->bufs.size;
        n = ngx_min((size_t) (b->last - b->pos) - ctx->in_fed, n);

        rc = fhir_stream_feed(ctx->stream, (char *) b->pos + ctx->in_fed, n,
                              &ctx->pending);
        if (rc != FHIR_STREAM_OK) {
            return NGX_ABORT;
        }

        ctx->in_fed += n;

        if (b->pos + ctx->in_fed < b->last) {
            return NGX_OK;
        }
    }

    ctx->in = cl->next;
    ctx->in_fed = 0;

    cl->next = ctx->pinned;
    ctx->pinned = cl;

    if (b->flush) {
        *flush = 1;
    }

    if (b->last_buf) {
        ctx->input_done = 1;
        if (fhir_stream_finish(ctx->stream, &ctx->pending) != FHIR_STREAM_OK) {
            return NGX_ABORT;
        }
    }

    return NGX_OK;
}


/*
 * The document is whole but the partner's response has not ended yet (its
 * end comes at once, as a rule): the last converted bytes wait for it, so
 * that they leave with the end of the response in one write, not in two,
 * unless whoever called wants them to move now.
 */
static ngx_inline ngx_uint_t
ngx_http_fhir_tail(ngx_http_fhir_ctx_t *ctx, ngx_uint_t flush)
{
    return !ctx->input_done && !flush && ctx->busy == NULL
           && fhir_stream_done(ctx->stream);
}


/*
 * The pinned input is let go once its converted bytes have left (nothing
 * pending, nothing in flight) or wait as a whole document's tail (nothing
 * is left to hold the partner back for): the pipe may reuse it.
 */
static void
ngx_http_fhir_release(ngx_http_fhir_ctx_t *ctx)
{
    ngx_chain_t  *cl;

    if (ctx->busy || (ctx->pending.len && !ngx_http_fhir_tail(ctx, 0))) {
        return;
    }

    for (cl = ctx->pinned; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
    }

    ctx->pinned = NULL;
}


static ngx_int_t
ngx_http_fhir_flush_buf(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(r->pool);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->flush = 1;
    cl->buf = b;
    cl->next = NULL;
    *ctx->last_out = cl;
    ctx->last_out = &cl->next;

    return NGX_OK;
}


/*
 * More of the partner's bytes are at hand and nothing is in flight to the
 * caller: they are converted before anything is sent (up to what the output
 * buffers hold), so that a response the proxy has read whole leaves in one
 * write rather than one per input buffer.  A caller still reading what was
 * sent gets the converted bytes buffer by buffer, as they fit.
 */
static ngx_inline ngx_uint_t
ngx_http_fhir_gather(ngx_http_fhir_ctx_t *ctx, ngx_http_fhir_loc_conf_t *flcf)
{
    return ctx->in != NULL && ctx->busy == NULL
           && ctx->pending.len < flcf->bufs.num * flcf->bufs.size;
}


static ngx_int_t
ngx_http_fhir_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                  rc;
    ngx_uint_t                 flush;
    ngx_http_fhir_ctx_t       *ctx;
    ngx_http_fhir_loc_conf_t  *flcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_fhir_module);

    if (ctx == NULL || r != r->main || ctx->mode == NGX_HTTP_FHIR_PASS) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->mode == NGX_HTTP_FHIR_REPLACE) {
        /* the partner's or nginx's own body is dropped */
        for ( /* void */ ; in; in = in->next) {
            in->buf->pos = in->buf->last;
            if (in->buf->file) {
                in->buf->file_pos = in->buf->file_last;
            }
        }
        return ngx_http_fhir_send_oo(r, ctx);
    }

    if (!ctx->input_done && ngx_http_fhir_upstream_broke_off(r, in)) {
        return ngx_http_fhir_response_failed(r, ctx,
                   "broke off before it was complete",
                   "the partner's response broke off before it was complete");
    }

    if (in && ngx_chain_add_copy(r->pool, &ctx->in, in) != NGX_OK) {
        return NGX_ERROR;
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_fhir_module);

    /* called with nothing new: whoever calls wants what we hold to move */
    flush = (in == NULL && ctx->busy) ? 1 : 0;

    for ( ;; ) {

        /* convert input while there are buffers for the output */

        for ( ;; ) {

            if (ctx->header_sent && !ngx_http_fhir_gather(ctx, flcf)
                && !ngx_http_fhir_tail(ctx, flush))
            {
                rc = ngx_http_fhir_drain(r, ctx);
                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }
                if (rc == NGX_AGAIN) {
                    break;
                }
                if (ctx->input_done && !ctx->last_sent) {
                    if (ngx_http_fhir_last_buf(r, ctx) != NGX_OK) {
                        return NGX_ERROR;
                    }
                }
            }

            rc = ngx_http_fhir_feed(r, ctx, &flush);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_ABORT) {
                return ngx_http_fhir_stream_failed(r, ctx);
            }

            if (!ctx->header_sent
                && (ctx->input_done
                    || fhir_stream_entries(ctx->stream) > 0
                    || ctx->pending.len > NGX_HTTP_FHIR_HOLD_MAX))
            {
                ctx->header_sent = 1;
                rc = ngx_http_next_header_filter(r);
                if (rc == NGX_ERROR || rc > NGX_OK) {
                    return NGX_ERROR;
                }

                continue;
            }

            if (rc == NGX_DECLINED && (!ctx->header_sent
                                        || ctx->pending.len == 0
                                        || ngx_http_fhir_tail(ctx, flush)))
            {
                break;
            }
        }

        if (ctx->out == NULL && flush && ctx->header_sent
            && ngx_http_fhir_flush_buf(r, ctx) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->out == NULL) {
            ngx_http_fhir_release(ctx);
            break;
        }

        rc = ngx_http_next_body_filter(r, ctx->out);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &ctx->out,
                                (ngx_buf_tag_t) &ngx_http_fhir_module);
        ctx->last_out = &ctx->out;
        flush = 0;

        ngx_http_fhir_release(ctx);

        if (ctx->last_sent
            || (ctx->in == NULL && ctx->pending.len == 0)
            || ngx_http_fhir_out_full(ctx, flcf))
        {
            break;
        }
    }

    if (ctx->in || ctx->pending.len || (!ctx->last_sent && ctx->input_done)) {
        r->buffered |= NGX_HTTP_FHIR_BUFFERED;
    } else {
        r->buffered &= ~NGX_HTTP_FHIR_BUFFERED;
    }

    if (ctx->last_sent && ctx->busy == NULL) {
        return NGX_OK;
    }

    return ctx->busy ? NGX_AGAIN : NGX_OK;
}


ngx_int_t
ngx_http_fhir_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_fhir_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_fhir_body_filter;

    return NGX_OK;
}
