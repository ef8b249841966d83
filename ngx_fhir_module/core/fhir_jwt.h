/*
 * ngx_fhir core: JSON Web Tokens for callers.  Parsing and signature
 * checks (RS256, PS256, ES256; the algorithm comes from the key, never from
 * the token alone), claim checks, signing of the gateway's own tokens, JWKS
 * and PEM keys, and PBKDF2 client-secret hashes.  Plain C99 + OpenSSL 3 +
 * cJSON (small documents only), no nginx headers.
 */

#ifndef FHIR_JWT_H
#define FHIR_JWT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>

#define FHIR_JWT_MAX_LEN  6144

typedef enum {
    FHIR_ALG_NONE = 0,
    FHIR_ALG_RS256,
    FHIR_ALG_PS256,
    FHIR_ALG_ES256
} fhir_alg_t;

typedef struct {
    char         kid[128];
    fhir_alg_t   alg;          /* FHIR_ALG_NONE: any the key type allows */
    EVP_PKEY    *pkey;
} fhir_jwk_t;

typedef struct {
    fhir_jwk_t  *keys;
    size_t       n;
} fhir_jwks_t;

typedef struct {
    char         iss[256];
    char         sub[256];
    char         client_id[256];
    char         tenant[128];
    char         jti[128];
    long long    exp;
    long long    nbf;
    long long    iat;
} fhir_claims_t;

/* what a token must satisfy */
typedef struct {
    const char  *issuer;       /* exact "iss" */
    const char  *audience;     /* one of "aud" */
    long         leeway;       /* seconds */
    time_t       now;
} fhir_jwt_policy_t;

/*
 * Validates a compact JWS against the keys (picked by "kid"; a token without
 * kid is tried with a single key only).  Returns 0 and fills claims, or -1
 * with a short reason in err (no secret, no token text).
 */
int fhir_jwt_validate(const char *token, size_t len, const fhir_jwks_t *jwks,
    const fhir_jwt_policy_t *policy, fhir_claims_t *claims, char *err,
    size_t err_len);

/* the "iss" claim of a token, unverified: only to pick the trusted issuer
 * whose keys then verify it */
int fhir_jwt_peek_iss(const char *token, size_t len, char *out, size_t size);

/* signs header.payload (JSON texts) with key; the token goes to out */
int fhir_jwt_sign(EVP_PKEY *key, const char *kid, const char *payload,
    char *out, size_t out_size);

/* a SMART Backend Services client assertion: RS384 (RSA) or ES384 (P-384) */
int fhir_jwt_sign_assertion(EVP_PKEY *key, const char *kid,
    const char *payload, char *out, size_t out_size);

/* the algorithm a private or public key signs with (RS256 or ES256) */
fhir_alg_t fhir_jwt_key_alg(EVP_PKEY *key);

/* loads a JWKS document (RSA and EC P-256 public keys); -1 with err */
int fhir_jwks_parse(const char *json, size_t len, fhir_jwks_t *jwks,
    char *err, size_t err_len);
void fhir_jwks_free(fhir_jwks_t *jwks);

/* base64url without padding */
size_t fhir_b64url_encode(const unsigned char *in, size_t len, char *out);
long fhir_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t out_size);

/*
 * Client secrets are stored as "pbkdf2-sha256$ITER$SALT$HASH" (salt and
 * hash base64url).  Checks a secret against one stored hash.
 */
int fhir_secret_check(const char *secret, size_t len, const char *stored);
int fhir_secret_hash(const char *secret, size_t len, unsigned iter,
    char *out, size_t out_size);

#endif /* FHIR_JWT_H */
