/*
 * ngx_fhir core: JSON Web Tokens (see fhir_jwt.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "fhir_jwt.h"


/* base64url */

static const char  b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
fhir_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t  i, n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        out[n++] = b64url[in[i] >> 2];
        out[n++] = b64url[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        out[n++] = b64url[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        out[n++] = b64url[in[i + 2] & 63];
    }

    if (len - i == 1) {
        out[n++] = b64url[in[i] >> 2];
        out[n++] = b64url[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        out[n++] = b64url[in[i] >> 2];
        out[n++] = b64url[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        out[n++] = b64url[(in[i + 1] & 15) << 2];
    }

    out[n] = '\0';
    return n;
}


static int
b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}


long
fhir_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t out_size)
{
    size_t    i, n = 0;
    unsigned  acc = 0;
    int       bits = 0, v;

    if (len % 4 == 1) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        v = b64url_val((unsigned char) in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_size) {
                return -1;
            }
            out[n++] = (unsigned char) (acc >> bits);
        }
    }

    /* the unused low bits must be zero (canonical encoding) */
    if (bits && (acc & ((1u << bits) - 1))) {
        return -1;
    }

    return (long) n;
}


/* keys */

fhir_alg_t
fhir_jwt_key_alg(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        return FHIR_ALG_RS256;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        return FHIR_ALG_ES256;
    }
    return FHIR_ALG_NONE;
}


static fhir_alg_t
alg_of(const char *s)
{
    if (strcmp(s, "RS256") == 0) return FHIR_ALG_RS256;
    if (strcmp(s, "PS256") == 0) return FHIR_ALG_PS256;
    if (strcmp(s, "ES256") == 0) return FHIR_ALG_ES256;
    return FHIR_ALG_NONE;
}


static BIGNUM *
b64_bn(const char *s)
{
    unsigned char  buf[1024];
    long           n;

    n = fhir_b64url_decode(s, strlen(s), buf, sizeof(buf));
    return n > 0 ? BN_bin2bn(buf, (int) n, NULL) : NULL;
}


static EVP_PKEY *
jwk_rsa(cJSON *k)
{
    cJSON           *n = cJSON_GetObjectItemCaseSensitive(k, "n");
    cJSON           *e = cJSON_GetObjectItemCaseSensitive(k, "e");
    BIGNUM          *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD  *bld = NULL;
    OSSL_PARAM      *params = NULL;
    EVP_PKEY_CTX    *ctx = NULL;
    EVP_PKEY        *pkey = NULL;

    if (!cJSON_IsString(n) || !cJSON_IsString(e)) {
        return NULL;
    }

    bn = b64_bn(n->valuestring);
    be = b64_bn(e->valuestring);
    bld = OSSL_PARAM_BLD_new();

    if (bn && be && bld
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)
        && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
        && (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL
        && EVP_PKEY_fromdata_init(ctx) > 0)
    {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            pkey = NULL;
        }
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}


static EVP_PKEY *
jwk_ec(cJSON *k)
{
    cJSON          *crv = cJSON_GetObjectItemCaseSensitive(k, "crv");
    cJSON          *x = cJSON_GetObjectItemCaseSensitive(k, "x");
    cJSON          *y = cJSON_GetObjectItemCaseSensitive(k, "y");
    unsigned char   pub[65];
    OSSL_PARAM      params[3];
    EVP_PKEY_CTX   *ctx;
    EVP_PKEY       *pkey = NULL;
    char            group[] = "prime256v1";

    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0
        || !cJSON_IsString(x) || !cJSON_IsString(y))
    {
        return NULL;
    }

    pub[0] = 0x04;
    if (fhir_b64url_decode(x->valuestring, strlen(x->valuestring), pub + 1, 32)
        != 32
        || fhir_b64url_decode(y->valuestring, strlen(y->valuestring),
                              pub + 33, 32) != 32)
    {
        return NULL;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  pub, sizeof(pub));
    params[2] = OSSL_PARAM_construct_end();

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx && EVP_PKEY_fromdata_init(ctx) > 0) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            pkey = NULL;
        }
    }

    EVP_PKEY_CTX_free(ctx);
    return pkey;
}


int
fhir_jwks_parse(const char *json, size_t len, fhir_jwks_t *jwks, char *err,
    size_t err_len)
{
    cJSON       *doc, *keys, *k, *kty, *kid, *alg, *use;
    fhir_jwk_t  *jwk;
    size_t       n;

    memset(jwks, 0, sizeof(*jwks));

    doc = cJSON_ParseWithLength(json, len);
    keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");

    if (!cJSON_IsArray(keys)) {
        snprintf(err, err_len, "not a JWKS document (no \"keys\" array)");
        cJSON_Delete(doc);
        return -1;
    }

    n = (size_t) cJSON_GetArraySize(keys);
    jwks->keys = calloc(n ? n : 1, sizeof(fhir_jwk_t));
    if (jwks->keys == NULL) {
        cJSON_Delete(doc);
        return -1;
    }

    cJSON_ArrayForEach(k, keys) {
        kty = cJSON_GetObjectItemCaseSensitive(k, "kty");
        kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
        alg = cJSON_GetObjectItemCaseSensitive(k, "alg");
        use = cJSON_GetObjectItemCaseSensitive(k, "use");

        if (cJSON_IsString(use) && strcmp(use->valuestring, "sig") != 0) {
            continue;
        }
        if (!cJSON_IsString(kty)) {
            continue;
        }

        jwk = &jwks->keys[jwks->n];
        memset(jwk, 0, sizeof(*jwk));

        if (strcmp(kty->valuestring, "RSA") == 0) {
            jwk->pkey = jwk_rsa(k);
        } else if (strcmp(kty->valuestring, "EC") == 0) {
            jwk->pkey = jwk_ec(k);
        }

        if (jwk->pkey == NULL) {
            snprintf(err, err_len, "JWKS key %d is not a usable RSA or EC "
                     "P-256 public key", (int) jwks->n);
            cJSON_Delete(doc);
            fhir_jwks_free(jwks);
            return -1;
        }

        if (cJSON_IsString(kid)) {
            snprintf(jwk->kid, sizeof(jwk->kid), "%s", kid->valuestring);
        }

        if (cJSON_IsString(alg)) {
            jwk->alg = alg_of(alg->valuestring);
            if (jwk->alg == FHIR_ALG_NONE) {
                snprintf(err, err_len, "JWKS key \"%s\" has an unsupported "
                         "alg \"%s\" (RS256, PS256, ES256)", jwk->kid,
                         alg->valuestring);
                EVP_PKEY_free(jwk->pkey);
                cJSON_Delete(doc);
                fhir_jwks_free(jwks);
                return -1;
            }
        }

        jwks->n++;
    }

    cJSON_Delete(doc);

    if (jwks->n == 0) {
        snprintf(err, err_len, "the JWKS has no signing key");
        fhir_jwks_free(jwks);
        return -1;
    }

    return 0;
}


void
fhir_jwks_free(fhir_jwks_t *jwks)
{
    size_t  i;

    for (i = 0; i < jwks->n; i++) {
        EVP_PKEY_free(jwks->keys[i].pkey);
    }

    free(jwks->keys);
    jwks->keys = NULL;
    jwks->n = 0;
}


/* signatures */

static int
verify(EVP_PKEY *key, fhir_alg_t alg, const char *input, size_t len,
    const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX     *md;
    EVP_PKEY_CTX   *pctx = NULL;
    ECDSA_SIG      *es;
    BIGNUM         *r, *s;
    unsigned char  *der = NULL;
    int             der_len, ok = 0;

    if (alg == FHIR_ALG_ES256) {
        if (sig_len != 64) {
            return 0;
        }
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);
        if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return 0;
        }
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0) {
            return 0;
        }
        sig = der;
        sig_len = (size_t) der_len;
    }

    md = EVP_MD_CTX_new();

    if (md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) > 0) {
        if (alg == FHIR_ALG_PS256) {
            if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                   <= 0)
            {
                goto done;
            }
        }
        ok = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *) input,
                              len) == 1;
    }

done:

    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}


static void
claim_str(cJSON *o, const char *name, char *out, size_t size)
{
    cJSON  *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsString(v)) {
        snprintf(out, size, "%s", v->valuestring);
    }
}


static int
claim_num(cJSON *o, const char *name, long long *out)
{
    cJSON  *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (v == NULL) {
        return 0;
    }
    if (!cJSON_IsNumber(v)) {
        return -1;
    }
    *out = (long long) v->valuedouble;
    return 1;
}


int
fhir_jwt_validate(const char *token, size_t len, const fhir_jwks_t *jwks,
    const fhir_jwt_policy_t *policy, fhir_claims_t *claims, char *err,
    size_t err_len)
{
    const char     *d1, *d2;
    unsigned char   hdr[2048], sig[1024], *body = NULL;
    long            hlen, slen, blen;
    cJSON          *h = NULL, *p = NULL, *alg, *kid, *aud, *a;
    fhir_alg_t      al;
    const fhir_jwk_t  *key = NULL;
    size_t          i;
    int             rc = -1, found;

#define FAIL(msg)  do { snprintf(err, err_len, "%s", msg); goto done; } while (0)

    memset(claims, 0, sizeof(*claims));

    if (len > FHIR_JWT_MAX_LEN) {
        FAIL("the token is too large");
    }

    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', (size_t) (token + len - d1 - 1)) : NULL;
    if (d1 == NULL || d2 == NULL
        || memchr(d2 + 1, '.', (size_t) (token + len - d2 - 1)))
    {
        FAIL("the token is not a compact JWS (header.payload.signature)");
    }

    hlen = fhir_b64url_decode(token, (size_t) (d1 - token), hdr, sizeof(hdr));
    if (hlen <= 0) {
        FAIL("the token header is not base64url");
    }

    h = cJSON_ParseWithLength((char *) hdr, (size_t) hlen);
    if (!cJSON_IsObject(h)) {
        FAIL("the token header is not a JSON object");
    }

    if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        FAIL("the token has critical header parameters");
    }

    alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    if (!cJSON_IsString(alg)) {
        FAIL("the token header has no alg");
    }

    al = alg_of(alg->valuestring);
    if (al == FHIR_ALG_NONE) {
        FAIL("the token's algorithm is not accepted (RS256, PS256, ES256)");
    }

    kid = cJSON_GetObjectItemCaseSensitive(h, "kid");

    if (cJSON_IsString(kid)) {
        for (i = 0; i < jwks->n; i++) {
            if (strcmp(jwks->keys[i].kid, kid->valuestring) == 0) {
                key = &jwks->keys[i];
                break;
            }
        }
        if (key == NULL) {
            FAIL("the token's kid names no known key");
        }
    } else if (jwks->n == 1) {
        key = &jwks->keys[0];
    } else {
        FAIL("the token has no kid");
    }

    /* the key decides: its type, and its declared alg when it has one */
    switch (fhir_jwt_key_alg(key->pkey)) {
    case FHIR_ALG_RS256:
        found = (al == FHIR_ALG_RS256 || al == FHIR_ALG_PS256);
        break;
    case FHIR_ALG_ES256:
        found = (al == FHIR_ALG_ES256);
        break;
    default:
        found = 0;
    }
    if (!found || (key->alg != FHIR_ALG_NONE && key->alg != al)) {
        FAIL("the token's algorithm does not match its key");
    }

    slen = fhir_b64url_decode(d2 + 1, (size_t) (token + len - d2 - 1), sig,
                              sizeof(sig));
    if (slen <= 0) {
        FAIL("the token signature is not base64url");
    }

    if (!verify(key->pkey, al, token, (size_t) (d2 - token), sig,
                (size_t) slen))
    {
        FAIL("the token signature is wrong");
    }

    body = malloc(len);
    if (body == NULL) {
        FAIL("out of memory");
    }

    blen = fhir_b64url_decode(d1 + 1, (size_t) (d2 - d1 - 1), body, len);
    if (blen <= 0) {
        FAIL("the token payload is not base64url");
    }

    p = cJSON_ParseWithLength((char *) body, (size_t) blen);
    if (!cJSON_IsObject(p)) {
        FAIL("the token payload is not a JSON object");
    }

    claim_str(p, "iss", claims->iss, sizeof(claims->iss));
    claim_str(p, "sub", claims->sub, sizeof(claims->sub));
    claim_str(p, "client_id", claims->client_id, sizeof(claims->client_id));
    if (claims->client_id[0] == '\0') {
        claim_str(p, "azp", claims->client_id, sizeof(claims->client_id));
    }
    if (claims->client_id[0] == '\0') {
        claim_str(p, "appid", claims->client_id, sizeof(claims->client_id));
    }
    claim_str(p, "tid", claims->tenant, sizeof(claims->tenant));
    claim_str(p, "jti", claims->jti, sizeof(claims->jti));

    if (claim_num(p, "exp", &claims->exp) != 1) {
        FAIL("the token has no exp");
    }
    if (claim_num(p, "nbf", &claims->nbf) < 0
        || claim_num(p, "iat", &claims->iat) < 0)
    {
        FAIL("the token's nbf or iat is not a number");
    }

    if (policy->issuer && strcmp(claims->iss, policy->issuer) != 0) {
        FAIL("the token's issuer is not trusted");
    }

    if (policy->audience) {
        aud = cJSON_GetObjectItemCaseSensitive(p, "aud");
        found = 0;
        if (cJSON_IsString(aud)) {
            found = strcmp(aud->valuestring, policy->audience) == 0;
        } else if (cJSON_IsArray(aud)) {
            cJSON_ArrayForEach(a, aud) {
                if (cJSON_IsString(a)
                    && strcmp(a->valuestring, policy->audience) == 0)
                {
                    found = 1;
                }
            }
        }
        if (!found) {
            FAIL("the token is not for this audience");
        }
    }

    if ((long long) policy->now > claims->exp + policy->leeway) {
        FAIL("the token has expired");
    }

    if (claims->nbf && (long long) policy->now + policy->leeway < claims->nbf)
    {
        FAIL("the token is not valid yet");
    }

    rc = 0;

done:

#undef FAIL

    cJSON_Delete(h);
    cJSON_Delete(p);
    free(body);
    return rc;
}


static int
fhir_jwt_sign_with(EVP_PKEY *key, const EVP_MD *digest, const char *alg_name,
    size_t coord, const char *kid, const char *payload, char *out,
    size_t out_size)
{
    char             header[256];
    unsigned char    sig[1024], raw[132];
    size_t           n, plen, hlen, sig_len = sizeof(sig);
    EVP_MD_CTX      *md;
    ECDSA_SIG       *es;
    const BIGNUM    *r, *s;
    const unsigned char  *p;
    int              ok, ec;

    ec = EVP_PKEY_is_a(key, "EC");

    if (kid && kid[0]) {
        hlen = (size_t) snprintf(header, sizeof(header),
                                 "{\"alg\":\"%s\",\"typ\":\"JWT\","
                                 "\"kid\":\"%s\"}", alg_name, kid);
    } else {
        hlen = (size_t) snprintf(header, sizeof(header),
                                 "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_name);
    }
    plen = strlen(payload);

    if ((hlen + plen) * 4 / 3 + 8 + 700 > out_size) {
        return -1;
    }

    n = fhir_b64url_encode((unsigned char *) header, hlen, out);
    out[n++] = '.';
    n += fhir_b64url_encode((const unsigned char *) payload, plen, out + n);

    md = EVP_MD_CTX_new();
    ok = md && EVP_DigestSignInit(md, NULL, digest, NULL, key) > 0
         && EVP_DigestSign(md, sig, &sig_len, (unsigned char *) out, n) > 0;
    EVP_MD_CTX_free(md);

    if (!ok) {
        return -1;
    }

    if (ec) {
        /* JWS wants r || s, each of the curve's size, not DER */
        p = sig;
        es = d2i_ECDSA_SIG(NULL, &p, (long) sig_len);
        if (es == NULL) {
            return -1;
        }
        ECDSA_SIG_get0(es, &r, &s);
        if (BN_bn2binpad(r, raw, (int) coord) != (int) coord
            || BN_bn2binpad(s, raw + coord, (int) coord) != (int) coord)
        {
            ECDSA_SIG_free(es);
            return -1;
        }
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 2 * coord);
        sig_len = 2 * coord;
    }

    out[n++] = '.';
    n += fhir_b64url_encode(sig, sig_len, out + n);
    out[n] = '\0';
    return (int) n;
}


int
fhir_jwt_sign(EVP_PKEY *key, const char *kid, const char *payload, char *out,
    size_t out_size)
{
    switch (fhir_jwt_key_alg(key)) {
    case FHIR_ALG_ES256:
        return fhir_jwt_sign_with(key, EVP_sha256(), "ES256", 32, kid,
                                  payload, out, out_size);
    case FHIR_ALG_RS256:
        return fhir_jwt_sign_with(key, EVP_sha256(), "RS256", 0, kid,
                                  payload, out, out_size);
    default:
        return -1;
    }
}


int
fhir_jwt_sign_assertion(EVP_PKEY *key, const char *kid, const char *payload,
    char *out, size_t out_size)
{
    /* SMART Backend Services: RS384, or ES384 on a P-384 key */
    if (EVP_PKEY_is_a(key, "RSA")) {
        return fhir_jwt_sign_with(key, EVP_sha384(), "RS384", 0, kid,
                                  payload, out, out_size);
    }

    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 384) {
        return fhir_jwt_sign_with(key, EVP_sha384(), "ES384", 48, kid,
                                  payload, out, out_size);
    }

    return -1;
}


/* client secrets */

int
fhir_secret_hash(const char *secret, size_t len, unsigned iter, char *out,
    size_t out_size)
{
    unsigned char  salt[16], dk[32];
    char           s64[32], d64[64];

    if (RAND_bytes(salt, sizeof(salt)) != 1
        || PKCS5_PBKDF2_HMAC(secret, (int) len, salt, sizeof(salt),
                             (int) iter, EVP_sha256(), sizeof(dk), dk) != 1)
    {
        return -1;
    }

    fhir_b64url_encode(salt, sizeof(salt), s64);
    fhir_b64url_encode(dk, sizeof(dk), d64);

    return snprintf(out, out_size, "pbkdf2-sha256$%u$%s$%s", iter, s64, d64)
           < (int) out_size ? 0 : -1;
}


int
fhir_secret_check(const char *secret, size_t len, const char *stored)
{
    unsigned char   salt[64], want[64], got[64];
    const char     *p, *s, *h;
    long            slen, hlen;
    unsigned long   iter;
    char           *end;

    if (strncmp(stored, "pbkdf2-sha256$", 14) != 0) {
        return 0;
    }

    p = stored + 14;
    iter = strtoul(p, &end, 10);
    if (*end != '$' || iter < 1000 || iter > 10000000) {
        return 0;
    }

    s = end + 1;
    h = strchr(s, '$');
    if (h == NULL) {
        return 0;
    }

    slen = fhir_b64url_decode(s, (size_t) (h - s), salt, sizeof(salt));
    hlen = fhir_b64url_decode(h + 1, strlen(h + 1), want, sizeof(want));
    if (slen <= 0 || hlen <= 0 || hlen > (long) sizeof(got)) {
        return 0;
    }

    if (PKCS5_PBKDF2_HMAC(secret, (int) len, salt, (int) slen, (int) iter,
                          EVP_sha256(), (int) hlen, got) != 1)
    {
        return 0;
    }

    return CRYPTO_memcmp(got, want, (size_t) hlen) == 0;
}


int
fhir_jwt_peek_iss(const char *token, size_t len, char *out, size_t size)
{
    const char     *d1, *d2;
    unsigned char  *body;
    long            n;
    cJSON          *p;
    int             rc = -1;

    out[0] = '\0';

    if (len > FHIR_JWT_MAX_LEN) {
        return -1;
    }

    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', (size_t) (token + len - d1 - 1)) : NULL;
    if (d2 == NULL) {
        return -1;
    }

    body = malloc(len);
    if (body == NULL) {
        return -1;
    }

    n = fhir_b64url_decode(d1 + 1, (size_t) (d2 - d1 - 1), body, len);
    p = n > 0 ? cJSON_ParseWithLength((char *) body, (size_t) n) : NULL;

    if (cJSON_IsObject(p)) {
        claim_str(p, "iss", out, size);
        rc = out[0] ? 0 : -1;
    }

    cJSON_Delete(p);
    free(body);
    return rc;
}
