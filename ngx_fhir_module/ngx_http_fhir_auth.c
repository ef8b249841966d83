
/*
 * ngx_fhir: caller identity.  The gateway is the OAuth2 authorization server
 * the Patients app expects (client credentials, the Azure AD tenant in
 * scope): POST <token location> issues short-lived JWTs signed with the
 * gateway's key.  Every data request carries "Authorization: Bearer <JWT>",
 * validated here in the access phase (the gateway's own tokens, and those of
 * trusted external issuers from JWKS files), remembered per worker until
 * expiry, and routed by its tenant.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ngx_http_fhir_module.h"
#include "fhir_jwt.h"
#include "fhir_oo.h"
#include "fhir_request.h"


#define NGX_HTTP_FHIR_TOKEN_CACHE  1024


typedef struct {
    u_char          *token;
    size_t           len;
    uint32_t         hash;
    fhir_claims_t    claims;
} ngx_http_fhir_cached_t;


static ngx_http_fhir_cached_t  ngx_http_fhir_cache[NGX_HTTP_FHIR_TOKEN_CACHE];


/* configuration */

static void
ngx_http_fhir_pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


static void
ngx_http_fhir_jwks_cleanup(void *data)
{
    fhir_jwks_free(data);
}




/* fhir_token_signing_key PEM [kid] */
char *
ngx_http_fhir_token_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    BIO                 *bio;
    char                *rv, err[128];
    const char          *why;
    EVP_PKEY            *pkey;
    ngx_str_t           *value, pem;
    fhir_jwks_t         *own;
    ngx_pool_cleanup_t  *cln;
    ngx_http_fhir_auth_conf_t  *ac = &fmcf->auth;

    if (ac->signing_key) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rv = ngx_http_fhir_read_file(cf, &value[1], &pem, 65536, 1);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    bio = BIO_new_mem_buf(pem.data, (int) pem.len);
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ngx_explicit_memzero(pem.data, pem.len);

    if (pkey == NULL || fhir_jwt_key_alg(pkey) == FHIR_ALG_NONE) {
        EVP_PKEY_free(pkey);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a PEM RSA or EC P-256 private key",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_CONF_ERROR;
    }
    cln->handler = ngx_http_fhir_pkey_cleanup;
    cln->data = pkey;

    ac->signing_key = pkey;

    if (cf->args->nelts > 2) {
        ac->kid = value[2];
        why = ngx_http_fhir_json_safe(ac->kid.data, ac->kid.len, 128);
        if (why) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_token_signing_key: the key id \"%V\" %s",
                               &ac->kid, why);
            return NGX_CONF_ERROR;
        }
    } else {
        ngx_str_set(&ac->kid, "ngx-fhir-1");
    }

    /* the gateway's own tokens are checked with the public half */
    own = ngx_pcalloc(cf->pool, sizeof(fhir_jwks_t));
    if (own == NULL) {
        return NGX_CONF_ERROR;
    }
    own->keys = ngx_pcalloc(cf->pool, sizeof(fhir_jwk_t));
    if (own->keys == NULL) {
        return NGX_CONF_ERROR;
    }
    own->n = 1;
    ngx_cpystrn((u_char *) own->keys[0].kid, ac->kid.data,
                ngx_min(ac->kid.len + 1, sizeof(own->keys[0].kid)));
    own->keys[0].pkey = pkey;
    own->keys[0].alg = fhir_jwt_key_alg(pkey);
    ac->own = own;

    (void) err;
    return NGX_CONF_OK;
}


/* fhir_auth_trust ISSUER JWKS_FILE AUDIENCE */
char *
ngx_http_fhir_auth_trust(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    char                       *rv, err[160];
    ngx_str_t                  *value, json;
    fhir_jwks_t                *jwks;
    ngx_pool_cleanup_t         *cln;
    ngx_http_fhir_trust_t      *t;
    ngx_http_fhir_auth_conf_t  *ac = &fmcf->auth;

    value = cf->args->elts;

    if (ac->trusts == NULL) {
        ac->trusts = ngx_array_create(cf->pool, 2,
                                      sizeof(ngx_http_fhir_trust_t));
        if (ac->trusts == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rv = ngx_http_fhir_read_file(cf, &value[2], &json, 1024 * 1024, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    jwks = ngx_pcalloc(cf->pool, sizeof(fhir_jwks_t));
    if (jwks == NULL) {
        return NGX_CONF_ERROR;
    }

    if (fhir_jwks_parse((char *) json.data, json.len, jwks, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "fhir_auth_trust: \"%V\": %s",
                           &value[2], err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }
    cln->handler = ngx_http_fhir_jwks_cleanup;
    cln->data = jwks;

    t = ngx_array_push(ac->trusts);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    t->issuer = value[1];
    t->audience = value[3];
    t->jwks = jwks;

    return NGX_CONF_OK;
}


/*
 * A configured value the gateway writes as it is inside a JSON string (the
 * claims of the tokens it signs, a client assertion, the URLs of converted
 * bodies): no quote, backslash or control character, and short enough for
 * the buffers it goes into.  Returns why not, or NULL.
 */
const char *
ngx_http_fhir_json_safe(u_char *p, size_t len, size_t max)
{
    size_t  i;

    if (len > max) {
        return max == 128 ? "is too long (at most 128 bytes)"
               : max == 256 ? "is too long (at most 256 bytes)"
               : "is too long (at most 511 bytes)";
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\' || p[i] == 0x7f) {
            return "holds a quote, a backslash or a control character";
        }
    }

    return NULL;
}


/*
 * fhir_clients_file: one client a line,
 *     CLIENT_ID  TENANT[,TENANT...]  HASH [HASH...]
 * HASH = pbkdf2-sha256$ITER$SALT$HASH; several at once while a secret is
 * being rotated.  "#" starts a comment.  scripts/fhir-client edits it.
 */
char *
ngx_http_fhir_clients_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    u_char                     *p, *end, *line, *eol, *f[64], *t, *comma;
    char                       *rv;
    const char                 *why, *what;
    size_t                      flen[64];
    ngx_str_t                  *value, text;
    ngx_uint_t                  i, n, lineno;
    ngx_http_fhir_client_t     *c;
    ngx_http_fhir_auth_conf_t  *ac = &fmcf->auth;

    value = cf->args->elts;

    if (ac->clients) {
        return "is duplicate";
    }

    ac->clients = ngx_array_create(cf->pool, 8, sizeof(ngx_http_fhir_client_t));
    if (ac->clients == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_fhir_read_file(cf, &value[1], &text, 4 * 1024 * 1024, 0);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    p = text.data;
    end = text.data + text.len;
    lineno = 0;

    for ( /* void */ ; p < end; p = eol + 1) {
        lineno++;
        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        /* split on blanks */
        n = 0;
        line = p;
        while (line < eol && n < 64) {
            while (line < eol && (*line == ' ' || *line == '\t' || *line == '\r'))
            {
                line++;
            }
            if (line == eol || *line == '#') {
                break;
            }
            f[n] = line;
            while (line < eol && *line != ' ' && *line != '\t' && *line != '\r')
            {
                line++;
            }
            flen[n] = line - f[n];
            n++;
        }

        if (n == 0) {
            continue;
        }

        if (n < 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_clients_file \"%V\", line %ui: expected "
                               "CLIENT_ID TENANTS SECRET_HASH...",
                               &value[1], lineno);
            return NGX_CONF_ERROR;
        }

        why = ngx_http_fhir_json_safe(f[0], flen[0], 128);
        what = "client id";
        if (why == NULL) {
            /* each tenant of the list, up to 128 bytes */
            what = "tenant";
            for (t = f[1]; t < f[1] + flen[1]; t = comma + 1) {
                comma = ngx_strlchr(t, f[1] + flen[1], ',');
                if (comma == NULL) {
                    comma = f[1] + flen[1];
                }
                why = ngx_http_fhir_json_safe(t, comma - t, 128);
                if (why == NULL && comma == t) {
                    why = "is empty";
                }
                if (why) {
                    break;
                }
            }
        }

        if (why) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "fhir_clients_file \"%V\", line %ui: the %s %s",
                               &value[1], lineno, what, why);
            return NGX_CONF_ERROR;
        }

        c = ngx_array_push(ac->clients);
        if (c == NULL) {
            return NGX_CONF_ERROR;
        }

        c->id.data = f[0];
        c->id.len = flen[0];
        c->id.data[c->id.len] = '\0';
        c->tenants.data = f[1];
        c->tenants.len = flen[1];

        c->hashes = ngx_array_create(cf->pool, n - 2, sizeof(char *));
        if (c->hashes == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 2; i < n; i++) {
            char  **h = ngx_array_push(c->hashes);

            if (h == NULL) {
                return NGX_CONF_ERROR;
            }
            if (ngx_strncmp(f[i], "pbkdf2-sha256$", 14) != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "fhir_clients_file \"%V\", line %ui: a "
                                   "secret must be stored as a "
                                   "pbkdf2-sha256$... hash, never in clear "
                                   "(use scripts/fhir-client)",
                                   &value[1], lineno);
                return NGX_CONF_ERROR;
            }
            *h = ngx_pnalloc(cf->pool, flen[i] + 1);
            if (*h == NULL) {
                return NGX_CONF_ERROR;
            }
            ngx_cpystrn((u_char *) *h, f[i], flen[i] + 1);
        }
    }

    return NGX_CONF_OK;
}


/* fhir_tenant TENANT_ID PARTNER */
char *
ngx_http_fhir_tenant(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_fhir_main_conf_t *fmcf = conf;

    ngx_str_t               *value;
    ngx_uint_t               i;
    ngx_http_fhir_tenant_t  *t;
    ngx_http_fhir_partner_t *p;

    value = cf->args->elts;

    if (fmcf->tenants == NULL) {
        fmcf->tenants = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_fhir_tenant_t));
        if (fmcf->tenants == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    t = fmcf->tenants->elts;
    for (i = 0; i < fmcf->tenants->nelts; i++) {
        if (t[i].id.len == value[1].len
            && ngx_strncmp(t[i].id.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate fhir_tenant \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    p = fmcf->partners.elts;
    for (i = 0; i < fmcf->partners.nelts; i++) {
        if (p[i].name.len == value[2].len
            && ngx_strncmp(p[i].name.data, value[2].data, value[2].len) == 0)
        {
            break;
        }
    }

    if (i == fmcf->partners.nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "fhir_tenant \"%V\": no fhir_partner \"%V\" is "
                           "declared before it", &value[1], &value[2]);
        return NGX_CONF_ERROR;
    }

    t = ngx_array_push(fmcf->tenants);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    t->id = value[1];
    t->partner = i;

    return NGX_CONF_OK;
}


char *
ngx_http_fhir_auth_check(ngx_conf_t *cf, ngx_http_fhir_main_conf_t *fmcf)
{
    ngx_http_fhir_auth_conf_t  *ac = &fmcf->auth;

    const char                 *why;

    if (ac->issuer.len == 0) {
        ngx_str_set(&ac->issuer, "ngx_fhir");
    }
    if (ac->audience.len == 0) {
        ac->audience = ac->issuer;
    }

    why = ngx_http_fhir_json_safe(ac->issuer.data, ac->issuer.len, 256);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"fhir_token_issuer\" %s",
                           why);
        return NGX_CONF_ERROR;
    }

    /* advertised as it is in the converted conformance statements */
    if (ac->token_url.len
        && ((ngx_strncmp(ac->token_url.data, "http://", 7) != 0
             && ngx_strncmp(ac->token_url.data, "https://", 8) != 0)
            || ngx_http_fhir_json_safe(ac->token_url.data, ac->token_url.len,
                                        511)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"fhir_token_url\" \"%V\" "
                           "must be an http:// or https:// URL of at most 511 "
                           "bytes without a quote, backslash or control "
                           "character", &ac->token_url);
        return NGX_CONF_ERROR;
    }

    why = ngx_http_fhir_json_safe(ac->audience.data, ac->audience.len, 256);
    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"fhir_token_audience\" %s", why);
        return NGX_CONF_ERROR;
    }
    if (ac->lifetime == NGX_CONF_UNSET) {
        ac->lifetime = 900;
    }
    if (ac->leeway == NGX_CONF_UNSET) {
        ac->leeway = 60;
    }

    return NGX_CONF_OK;
}


/* validation */

static uint32_t
ngx_http_fhir_token_hash(u_char *p, size_t len)
{
    uint32_t  h = 2166136261u;

    while (len--) {
        h = (h ^ *p++) * 16777619u;
    }

    return h;
}


static ngx_int_t
ngx_http_fhir_validate(ngx_http_request_t *r, ngx_http_fhir_auth_conf_t *ac,
    u_char *token, size_t len, fhir_claims_t *claims, char *err,
    size_t err_len)
{
    char                     iss[256];
    uint32_t                 hash;
    ngx_uint_t               i;
    fhir_jwt_policy_t        policy;
    ngx_http_fhir_trust_t   *t;
    ngx_http_fhir_cached_t  *c;
    const fhir_jwks_t       *jwks = NULL;

    hash = ngx_http_fhir_token_hash(token, len);
    c = &ngx_http_fhir_cache[hash % NGX_HTTP_FHIR_TOKEN_CACHE];

    /* a token seen before costs no signature check, until it expires */
    if (c->token && c->hash == hash && c->len == len
        && ngx_memcmp(c->token, token, len) == 0)
    {
        if ((long long) ngx_time() <= c->claims.exp + ac->leeway) {
            *claims = c->claims;
            return NGX_OK;
        }
        ngx_snprintf((u_char *) err, err_len, "the token has expired%Z");
        return NGX_ERROR;
    }

    ngx_memzero(&policy, sizeof(policy));
    policy.leeway = ac->leeway;
    policy.now = ngx_time();

    if (fhir_jwt_peek_iss((char *) token, len, iss, sizeof(iss)) != 0) {
        ngx_snprintf((u_char *) err, err_len,
                     "the token is malformed or has no issuer%Z");
        return NGX_ERROR;
    }

    if (ac->own && ngx_strlen(iss) == ac->issuer.len
        && ngx_strncmp(iss, ac->issuer.data, ac->issuer.len) == 0)
    {
        jwks = ac->own;
        policy.issuer = (char *) ac->issuer.data;
        policy.audience = (char *) ac->audience.data;
    }

    if (jwks == NULL && ac->trusts) {
        t = ac->trusts->elts;
        for (i = 0; i < ac->trusts->nelts; i++) {
            if (ngx_strlen(iss) == t[i].issuer.len
                && ngx_strncmp(iss, t[i].issuer.data, t[i].issuer.len) == 0)
            {
                jwks = t[i].jwks;
                policy.issuer = (char *) t[i].issuer.data;
                policy.audience = (char *) t[i].audience.data;
                break;
            }
        }
    }

    if (jwks == NULL) {
        ngx_snprintf((u_char *) err, err_len,
                     "the token's issuer is not trusted%Z");
        return NGX_ERROR;
    }

    if (fhir_jwt_validate((char *) token, len, jwks, &policy, claims, err,
                          err_len)
        != 0)
    {
        return NGX_ERROR;
    }

    /* remember it (one slot per hash; the newest wins) */
    if (c->token) {
        ngx_free(c->token);
        c->token = NULL;
    }
    c->token = ngx_alloc(len, r->connection->log);
    if (c->token) {
        ngx_memcpy(c->token, token, len);
        c->len = len;
        c->hash = hash;
        c->claims = *claims;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_unauthorized(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx,
    const char *why)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

    len = sizeof("Bearer error=\"invalid_token\", error_description=\"\"") - 1
          + ngx_strlen(why);

    p = ngx_pnalloc(r->pool, len);
    h = ngx_list_push(&r->headers_out.headers);
    if (p == NULL || h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "Bearer error=\"invalid_token\", "
                                  "error_description=\"%s\"", why) - p;
    r->headers_out.www_authenticate = h;

    p = ngx_pnalloc(r->pool, ngx_strlen(why) + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_cpystrn(p, (u_char *) why, ngx_strlen(why) + 1);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "fhir: bearer token refused: %s", why);

    return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_UNAUTHORIZED, (char *) p);
}


/*
 * The caller's identity, before routing.  NGX_DECLINED when the request may
 * go on (ctx->claims set, ctx->tenant_partner set when a tenant maps).
 */
ngx_int_t
ngx_http_fhir_authenticate(ngx_http_request_t *r, ngx_http_fhir_ctx_t *ctx)
{
    u_char                     *token, *p;
    size_t                      len;
    char                        err[160];
    ngx_uint_t                  i;
    ngx_table_elt_t            *auth;
    ngx_http_fhir_tenant_t     *t;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    auth = r->headers_in.authorization;

    if (auth == NULL) {
        return ngx_http_fhir_unauthorized(r, ctx,
                   "no bearer token: ask the token endpoint for one");
    }

    if (auth->value.len < 7
        || ngx_strncasecmp(auth->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return ngx_http_fhir_unauthorized(r, ctx,
                   "the Authorization scheme must be Bearer");
    }

    token = auth->value.data + 7;
    len = auth->value.len - 7;

    while (len && *token == ' ') {
        token++;
        len--;
    }

    if (len == 0) {
        return ngx_http_fhir_unauthorized(r, ctx, "the bearer token is empty");
    }

    if (len > FHIR_JWT_MAX_LEN) {
        return ngx_http_fhir_unauthorized(r, ctx, "the token is too large");
    }

    if (ngx_http_fhir_validate(r, &fmcf->auth, token, len, &ctx->claims, err,
                               sizeof(err))
        != NGX_OK)
    {
        p = ngx_pnalloc(r->pool, ngx_strlen(err) + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_cpystrn(p, (u_char *) err, ngx_strlen(err) + 1);
        return ngx_http_fhir_unauthorized(r, ctx, (char *) p);
    }

    ctx->authenticated = 1;

    if (ctx->claims.tenant[0] == '\0') {
        return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_FORBIDDEN,
                                       "the token carries no tenant");
    }

    if (fmcf->tenants) {
        t = fmcf->tenants->elts;
        for (i = 0; i < fmcf->tenants->nelts; i++) {
            if (t[i].id.len == ngx_strlen(ctx->claims.tenant)
                && ngx_strncmp(t[i].id.data, ctx->claims.tenant, t[i].id.len)
                   == 0)
            {
                ctx->tenant_partner = (ngx_http_fhir_partner_t *)
                                          fmcf->partners.elts + t[i].partner;
                return NGX_DECLINED;
            }
        }
    }

    return ngx_http_fhir_set_error(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "the token's tenant has no partner here");
}


/* the token endpoint */

static void
ngx_http_fhir_token_body(ngx_http_request_t *r);


static ngx_int_t
ngx_http_fhir_token_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_fhir_add_header(r, "Cache-Control", "no-store") == NULL
        || ngx_http_fhir_add_header(r, "Pragma", "no-cache") == NULL
        || (status == NGX_HTTP_UNAUTHORIZED
            && ngx_http_fhir_add_header(r, "WWW-Authenticate",
                                        "Basic realm=\"ngx_fhir\"") == NULL)
        || (status == NGX_HTTP_NOT_ALLOWED
            && ngx_http_fhir_add_header(r, "Allow", "POST") == NULL))
    {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }
    b->last = ngx_cpymem(b->pos, json, len);
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_fhir_token_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description)
{
    u_char  *p, *last;
    size_t   len;

    len = sizeof("{\"error\":\"\",\"error_description\":\"\"}") - 1
          + ngx_strlen(error) + ngx_strlen(description);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "{\"error\":\"%s\",\"error_description\":\"%s\"}",
                       error, description);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "fhir: token request refused: %s", error);

    return ngx_http_fhir_token_send(r, status, p, last - p);
}


/* a form parameter's value, decoded into a pool copy (core/fhir_request.c) */
static ngx_int_t
ngx_http_fhir_form_arg(ngx_http_request_t *r, ngx_str_t *form,
    const char *name, ngx_str_t *value)
{
    long  n;

    value->data = ngx_pnalloc(r->pool, form->len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    n = fhir_form_arg((char *) form->data, form->len, name,
                      (char *) value->data);
    if (n < 0) {
        value->len = 0;
        value->data = NULL;
        return NGX_DECLINED;
    }

    value->len = (size_t) n;
    return NGX_OK;
}


static ngx_int_t
ngx_http_fhir_token_issue(ngx_http_request_t *r)
{
    u_char                     *p, *body, rnd[16], *scope_p;
    char                        jti[40], payload[2048], token[4096];
    size_t                      len;
    ngx_int_t                   n;
    ngx_str_t                   form, grant, id, secret, scope, basic, dec;
    ngx_str_t                   tenant;
    ngx_uint_t                  i, ok;
    ngx_chain_t                *cl;
    ngx_table_elt_t            *auth;
    ngx_http_fhir_client_t     *c, *client;
    ngx_http_fhir_main_conf_t  *fmcf;
    ngx_http_fhir_auth_conf_t  *ac;
    char                      **h;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);
    ac = &fmcf->auth;

    if (r->request_body == NULL || r->request_body->temp_file) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request", "the request body is missing or too "
                   "large");
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        return NGX_ERROR;
    }
    p = body;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, ngx_buf_size(cl->buf));
    }
    form.data = body;
    form.len = p - body;

    if (r->headers_in.content_type == NULL
        || !ngx_http_fhir_type_is_form(&r->headers_in.content_type->value))
    {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request", "the body must be "
                   "application/x-www-form-urlencoded");
    }

    if (ngx_http_fhir_form_arg(r, &form, "grant_type", &grant) != NGX_OK) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request", "grant_type is missing");
    }

    if (grant.len != 18
        || ngx_strncmp(grant.data, "client_credentials", 18) != 0)
    {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "unsupported_grant_type", "only client_credentials");
    }

    /* client authentication: HTTP Basic, or the form's fields */

    id.len = 0;
    secret.len = 0;
    auth = r->headers_in.authorization;

    if (auth && auth->value.len > 6
        && ngx_strncasecmp(auth->value.data, (u_char *) "Basic ", 6) == 0)
    {
        basic.data = auth->value.data + 6;
        basic.len = auth->value.len - 6;
        dec.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(basic.len));
        if (dec.data == NULL) {
            return NGX_ERROR;
        }
        if (ngx_decode_base64(&dec, &basic) != NGX_OK
            || (p = ngx_strlchr(dec.data, dec.data + dec.len, ':')) == NULL)
        {
            return ngx_http_fhir_token_error(r, NGX_HTTP_UNAUTHORIZED,
                       "invalid_client", "malformed Basic credentials");
        }
        id.data = dec.data;
        id.len = p - dec.data;
        secret.data = p + 1;
        secret.len = dec.data + dec.len - p - 1;

    } else {
        (void) ngx_http_fhir_form_arg(r, &form, "client_id", &id);
        (void) ngx_http_fhir_form_arg(r, &form, "client_secret", &secret);
    }

    if (id.len == 0 || secret.len == 0) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_UNAUTHORIZED,
                   "invalid_client", "client authentication is required");
    }

    client = NULL;
    if (ac->clients) {
        c = ac->clients->elts;
        for (i = 0; i < ac->clients->nelts; i++) {
            if (c[i].id.len == id.len
                && ngx_strncmp(c[i].id.data, id.data, id.len) == 0)
            {
                client = &c[i];
                break;
            }
        }
    }

    ok = 0;
    if (client) {
        h = client->hashes->elts;
        for (i = 0; i < client->hashes->nelts && !ok; i++) {
            ok = fhir_secret_check((char *) secret.data, secret.len, h[i]);
        }
    }

    if (!ok) {
        /* the same answer for an unknown client and a wrong secret */
        return ngx_http_fhir_token_error(r, NGX_HTTP_UNAUTHORIZED,
                   "invalid_client", "client authentication failed");
    }

    /* the tenant: the scope (the Azure AD tenant id), one of the client's */

    if (ngx_http_fhir_form_arg(r, &form, "scope", &scope) != NGX_OK
        || scope.len == 0)
    {
        if (ngx_strlchr(client->tenants.data,
                        client->tenants.data + client->tenants.len, ',')
            != NULL)
        {
            return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_scope", "scope must name the tenant");
        }
        scope = client->tenants;
    }

    tenant = scope;
    scope_p = ngx_strlchr(scope.data, scope.data + scope.len, ' ');
    if (scope_p) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_scope", "one tenant per token");
    }

    ok = 0;
    p = client->tenants.data;
    while (p < client->tenants.data + client->tenants.len) {
        u_char  *comma = ngx_strlchr(p, client->tenants.data
                                        + client->tenants.len, ',');
        if (comma == NULL) {
            comma = client->tenants.data + client->tenants.len;
        }
        if ((size_t) (comma - p) == tenant.len
            && ngx_strncmp(p, tenant.data, tenant.len) == 0)
        {
            ok = 1;
            break;
        }
        p = comma + 1;
    }

    if (!ok) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_scope", "the client may not use this tenant");
    }

    for (i = 0; i < tenant.len; i++) {
        if (tenant.data[i] == '"' || tenant.data[i] == '\\'
            || tenant.data[i] < 0x20)
        {
            return ngx_http_fhir_token_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_scope", "malformed scope");
        }
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_ERROR;
    }
    ngx_hex_dump((u_char *) jti, rnd, sizeof(rnd))[0] = '\0';

    n = ngx_snprintf((u_char *) payload, sizeof(payload) - 1,
                     "{\"iss\":\"%V\",\"aud\":\"%V\",\"sub\":\"%V\","
                     "\"client_id\":\"%V\",\"tid\":\"%V\",\"scope\":\"%V\","
                     "\"iat\":%T,\"exp\":%T,\"jti\":\"%s\"}",
                     &ac->issuer, &ac->audience, &client->id, &client->id,
                     &tenant, &tenant, ngx_time(),
                     ngx_time() + ac->lifetime, jti)
        - (u_char *) payload;

    if ((size_t) n >= sizeof(payload) - 1) {
        /* cut: the claims would not be JSON (configured names too long) */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "fhir: the token's claims exceed %uz bytes: shorten "
                      "fhir_token_issuer, fhir_token_audience, the client id "
                      "or the tenant", sizeof(payload) - 2);
        return ngx_http_fhir_token_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   "server_error", "the token could not be issued");
    }

    payload[n] = '\0';

    n = fhir_jwt_sign(ac->signing_key, (char *) ac->kid.data, payload, token,
                      sizeof(token));
    if (n < 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "fhir: the token could not be signed");
        return ngx_http_fhir_token_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                   "server_error", "the token could not be signed");
    }

    p = ngx_pnalloc(r->pool, n + 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sprintf(p, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
                         "\"expires_in\":%T}", token, (time_t) ac->lifetime)
          - p;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "fhir: token issued to client \"%V\"", &client->id);

    return ngx_http_fhir_token_send(r, NGX_HTTP_OK, p, len);
}


static void
ngx_http_fhir_token_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_fhir_token_issue(r));
}


static ngx_int_t
ngx_http_fhir_token_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_fhir_main_conf_t  *fmcf;

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_fhir_module);

    if (r->method != NGX_HTTP_POST) {
        /* an OAuth error like the others, not nginx's HTML page */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
        return ngx_http_fhir_token_error(r, NGX_HTTP_NOT_ALLOWED,
                   "invalid_request", "the token endpoint takes POST");
    }

    if (fmcf->auth.signing_key == NULL) {
        return ngx_http_fhir_token_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   "temporarily_unavailable", "no signing key configured");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_fhir_token_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


char *
ngx_http_fhir_token_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_fhir_token_handler;

    return NGX_CONF_OK;
}


/* the validation cache goes with the worker */
void
ngx_http_fhir_auth_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_FHIR_TOKEN_CACHE; i++) {
        if (ngx_http_fhir_cache[i].token) {
            ngx_free(ngx_http_fhir_cache[i].token);
            ngx_http_fhir_cache[i].token = NULL;
        }
    }
}
