/*
 * libFuzzer target: the JWT parser and validator (with a fixed EC key), the
 * unverified issuer peek, base64url decoding and the JWKS parser.
 */

#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "fhir_jwt.h"


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static fhir_jwks_t   jwks;
    static fhir_jwk_t    key;
    fhir_jwks_t          other;
    fhir_jwt_policy_t    policy;
    fhir_claims_t        claims;
    unsigned char        buf[8192];
    char                 err[160], iss[256];

    if (jwks.n == 0) {
        key.pkey = EVP_EC_gen("P-256");
        strcpy(key.kid, "k");
        jwks.keys = &key;
        jwks.n = 1;
    }

    memset(&policy, 0, sizeof(policy));
    policy.issuer = "i";
    policy.audience = "a";
    policy.now = time(NULL);

    fhir_jwt_validate((const char *) data, size, &jwks, &policy, &claims, err,
                      sizeof(err));
    fhir_jwt_peek_iss((const char *) data, size, iss, sizeof(iss));
    fhir_b64url_decode((const char *) data, size, buf, sizeof(buf));

    if (fhir_jwks_parse((const char *) data, size, &other, err, sizeof(err))
        == 0)
    {
        fhir_jwks_free(&other);
    }

    return 0;
}
