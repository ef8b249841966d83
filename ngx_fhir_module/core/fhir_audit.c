/*
 * ngx_fhir core: audit records (see fhir_audit.h).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The chain's HMAC-SHA256.  With OpenSSL 3.0's SHA-256 functions, which are
 * deprecated but kept (nginx uses their MD5 and SHA-1 siblings the same
 * way), from the key's inner and outer states computed once (RFC 2104,
 * section 4): a record costs its own blocks and two final ones, with no
 * provider lookup and no allocation; a running worker loses less to the
 * audit with it (docs/audit.md).  Where those functions are left out
 * (OPENSSL_NO_DEPRECATED_3_0, or an OpenSSL after 3.x) or FHIR_AUDIT_EVP is
 * defined (the unit tests build both ways), an EVP_MAC context keyed once
 * and restarted per record.  The verifier checks records with the one-shot
 * HMAC() either way.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/opensslv.h>
#include <openssl/configuration.h>

#if !defined(FHIR_AUDIT_EVP) && !defined(OPENSSL_NO_DEPRECATED_3_0)          \
    && OPENSSL_VERSION_MAJOR < 4
#define FHIR_AUDIT_SHA256  1
#endif

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#if (FHIR_AUDIT_SHA256)
#include <openssl/sha.h>
#endif

#include "fhir_audit.h"


static void fhir_audit_hex(const unsigned char *md, size_t len, char *hex);


static const struct {
    const char  *type;
    const char  *search;
} fhir_audit_searches[] = {
    { "Patient",             "patient.search" },
    { "Observation",         "vitals.search" },
    { "Condition",           "condition.search" },
    { "Encounter",           "encounter.search" },
    { "AllergyIntolerance",  "allergy.search" },
    { "MedicationRequest",   "medication.search" },
    { "MedicationOrder",     "medication.search" },
    { "MedicationStatement", "medication.search" },
    { "Coverage",            "coverage.search" },
    { NULL, NULL }
};


static void
fhir_copy(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size) {
        len = size - 1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}


static int
fhir_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* percent-decodes a query value ('+' is a space in a form) */
static size_t
fhir_unescape(char *dst, size_t size, const char *src, size_t len)
{
    size_t  i, n = 0;
    int     h, l;

    for (i = 0; i < len && n + 1 < size; i++) {
        if (src[i] == '%' && i + 2 < len
            && (h = fhir_hexval(src[i + 1])) >= 0
            && (l = fhir_hexval(src[i + 2])) >= 0)
        {
            dst[n++] = (char) (h * 16 + l);
            i += 2;
        } else {
            dst[n++] = src[i] == '+' ? ' ' : src[i];
        }
    }

    dst[n] = '\0';
    return n;
}


int
fhir_audit_patient_of_reference(const char *ref, size_t len, char *out,
    size_t out_size)
{
    const char  *p, *last = NULL;
    size_t       i;

    /* the last "Patient/" segment of a relative or absolute reference */
    for (i = 0; i + 8 <= len; i++) {
        if (memcmp(ref + i, "Patient/", 8) == 0
            && (i == 0 || ref[i - 1] == '/'))
        {
            last = ref + i + 8;
        }
    }

    if (last == NULL) {
        /* a bare id, as in "patient=123" */
        if (len == 0 || memchr(ref, '/', len) || memchr(ref, ':', len)) {
            return -1;
        }
        fhir_copy(out, out_size, ref, len);
        return 0;
    }

    p = memchr(last, '/', (size_t) (ref + len - last));
    fhir_copy(out, out_size, last, p ? (size_t) (p - last)
                                     : (size_t) (ref + len - last));
    return out[0] ? 0 : -1;
}


static void
fhir_audit_patient_from_args(const char *args, size_t len, int patient_type,
    fhir_audit_what_t *w)
{
    const char  *p = args, *end = args + len, *amp, *eq, *colon;
    char         val[256], key[64];
    size_t       n, vlen, klen;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        n = amp ? (size_t) (amp - p) : (size_t) (end - p);
        eq = memchr(p, '=', n);

        if (eq && (size_t) (eq - p) < sizeof(key)) {
            /* the name as the partner reads it (pati%65nt is patient),
             * with the one modifier that still names a patient's id
             * (subject:Patient=123); :missing, :not and the others,
             * and chained names, do not */
            klen = fhir_unescape(key, sizeof(key), p, (size_t) (eq - p));
            colon = memchr(key, ':', klen);
            if (colon) {
                if (strcmp(colon + 1, "Patient") != 0) {
                    klen = 0;
                } else {
                    klen = (size_t) (colon - key);
                }
            }

            if ((klen == 7 && memcmp(key, "patient", 7) == 0)
                || (klen == 7 && memcmp(key, "subject", 7) == 0)
                || (klen == 11 && memcmp(key, "beneficiary", 11) == 0)
                || (patient_type
                    && ((klen == 3 && memcmp(key, "_id", 3) == 0)
                        || (klen == 2 && memcmp(key, "id", 2) == 0))))
            {
                vlen = fhir_unescape(val, sizeof(val), eq + 1,
                                     (size_t) (p + n - eq - 1));
                if (fhir_audit_patient_of_reference(val, vlen, w->patient,
                                                    sizeof(w->patient))
                    == 0)
                {
                    return;
                }
            }
        }

        p += n + (amp ? 1 : 0);
    }
}


int
fhir_audit_utf8_ok(const char *s, size_t len)
{
    int                   n;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        if (*p < 0x80) {
            uint64_t  w;

            /* ASCII, eight bytes at a time */
            while (end - p >= 8) {
                memcpy(&w, p, 8);
                if (w & 0x8080808080808080ULL) {
                    break;
                }
                p += 8;
            }
            while (p < end && *p < 0x80) {
                p++;
            }
            continue;
        }
        n = fhir_utf8_char(p, end);
        if (n <= 0) {
            return 0;
        }
        p += n;
    }

    return 1;
}


size_t
fhir_audit_utf8_fix(char *out, const char *s, size_t len)
{
    static const char     hex[] = "0123456789ABCDEF";
    int                   n;
    char                 *o;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;
    o = out;

    while (p < end) {
        n = (*p < 0x80) ? 1 : fhir_utf8_char(p, end);

        if (n > 0) {
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }

        *o++ = '%';
        *o++ = hex[*p >> 4];
        *o++ = hex[*p & 0xf];
        p++;
    }

    return (size_t) (o - out);
}


void
fhir_audit_classify(int post, const char *path, size_t path_len,
    const char *args, size_t args_len, fhir_audit_what_t *w)
{
    const char  *slash, *rest;
    size_t       tlen, rlen;
    int          i;

    memset(w, 0, sizeof(*w));

    while (path_len && path[path_len - 1] == '/') {
        path_len--;
    }

    if (path_len == 8 && memcmp(path, "metadata", 8) == 0) {
        w->event = "capability.read";
        fhir_copy(w->resource_type, sizeof(w->resource_type),
                  "CapabilityStatement", 19);
        return;
    }

    slash = memchr(path, '/', path_len);
    tlen = slash ? (size_t) (slash - path) : path_len;
    rest = slash ? slash + 1 : path + path_len;
    rlen = (size_t) (path + path_len - rest);

    fhir_copy(w->resource_type, sizeof(w->resource_type), path, tlen);

    if (rlen == 0 || (post && rlen == 7 && memcmp(rest, "_search", 7) == 0)) {
        w->search = 1;
        w->event = "resource.read";   /* a search of another type */
        for (i = 0; fhir_audit_searches[i].type; i++) {
            if (strlen(fhir_audit_searches[i].type) == tlen
                && memcmp(fhir_audit_searches[i].type, path, tlen) == 0)
            {
                w->event = fhir_audit_searches[i].search;
                break;
            }
        }
        fhir_audit_patient_from_args(args, args_len,
                                     tlen == 7 && memcmp(path, "Patient", 7) == 0,
                                     w);
        return;
    }

    /* a direct read: Type/id (a version or an operation may follow) */
    slash = memchr(rest, '/', rlen);
    fhir_copy(w->resource_id, sizeof(w->resource_id), rest,
              slash ? (size_t) (slash - rest) : rlen);

    if (tlen == 7 && memcmp(path, "Patient", 7) == 0) {
        w->event = "patient.read";
        memcpy(w->patient, w->resource_id, sizeof(w->patient));
    } else if (tlen == 8 && memcmp(path, "Location", 8) == 0) {
        w->event = "location.read";
    } else {
        w->event = "resource.read";
    }
}


/* records */

/* ,"name": (no comma after the opening brace) */
static int
fhir_audit_name(fhir_buf_t *b, const char *name, size_t n, size_t extra)
{
    char   *p;

    if (fhir_buf_reserve(b, n + 4 + extra) != 0) {
        return -1;
    }

    p = b->data + b->len;
    if (b->len > 1) {
        *p++ = ',';
    }
    *p++ = '"';
    memcpy(p, name, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
    b->len = (size_t) (p - b->data);
    return 0;
}


/* the decimal digits of v, written backwards from end; returns the start */
static char *
fhir_audit_digits(char *end, unsigned long long v)
{
    do {
        *--end = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return end;
}


int
fhir_audit_strn(fhir_buf_t *b, const char *name, size_t name_len,
    const char *v, size_t len)
{
    if (v == NULL) {
        return fhir_audit_rawn(b, name, name_len, "null", 4);
    }

    if (fhir_audit_name(b, name, name_len, len + 2) != 0) {
        return -1;
    }

    b->data[b->len++] = '"';

    if (fhir_json_escape(b, v, len) != 0 || fhir_buf_reserve(b, 1) != 0) {
        return -1;
    }

    b->data[b->len++] = '"';
    return 0;
}


int
fhir_audit_numn(fhir_buf_t *b, const char *name, size_t name_len,
    long long v)
{
    char  num[24], *p;

    p = fhir_audit_digits(num + sizeof(num),
                          v < 0 ? 0ULL - (unsigned long long) v
                                : (unsigned long long) v);
    if (v < 0) {
        *--p = '-';
    }

    return fhir_audit_rawn(b, name, name_len, p,
                           (size_t) (num + sizeof(num) - p));
}


int
fhir_audit_rawn(fhir_buf_t *b, const char *name, size_t name_len,
    const char *json, size_t len)
{
    if (fhir_audit_name(b, name, name_len, len) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, json, len);
    b->len += len;
    return 0;
}


/* the members of a read event's record, after what b holds already */
static int
fhir_audit_members(fhir_buf_t *b, const fhir_audit_record_t *r)
{
#define TEXT(name, t)  fhir_audit_str(b, name, (t).data, (t).len) != 0

    if (TEXT("event", r->event)
        || TEXT("outcome", r->outcome)
        || TEXT("request_id", r->request_id)
        || TEXT("batch_id", r->batch_id)
        || TEXT("client_ip", r->client_ip)
        || TEXT("subject", r->subject)
        || TEXT("tenant", r->tenant)
        || TEXT("client_id", r->client_id)
        || TEXT("partner", r->partner)
        || TEXT("method", r->method)
        || TEXT("resource_type", r->resource_type)
        || TEXT("resource_id", r->resource_id)
        || TEXT("patient", r->patient)
        || TEXT("query", r->query)
        || fhir_audit_num(b, "status", r->status) != 0
        || fhir_audit_num(b, "upstream_status", r->upstream_status) != 0
        || fhir_audit_num(b, "entries", r->entries) != 0
        || fhir_audit_num(b, "bytes", r->bytes) != 0)
    {
        return -1;
    }

#undef TEXT

    return 0;
}


int
fhir_audit_build(fhir_buf_t *b, const fhir_audit_record_t *r)
{
    if (fhir_buf_puts(b, "{") != 0) {
        return -1;
    }

    return fhir_audit_members(b, r);
}


int
fhir_audit_line_head(fhir_buf_t *line, const char *ts, size_t ts_len,
    const char *chain, size_t chain_len)
{
    if (fhir_buf_puts(line, "{") != 0
        || fhir_audit_str(line, "ts", ts, ts_len) != 0
        || fhir_audit_str(line, "chain", chain, chain_len) != 0)
    {
        return -1;
    }

    return 0;
}


int
fhir_audit_line(fhir_audit_chain_t *c, fhir_buf_t *line, const char *ts,
    size_t ts_len, const char *chain, size_t chain_len,
    const fhir_audit_record_t *r)
{
    if (fhir_audit_line_head(line, ts, ts_len, chain, chain_len) != 0
        || fhir_audit_members(line, r) != 0)
    {
        return -1;
    }

    return fhir_audit_seal(c, line);
}


#if (FHIR_AUDIT_SHA256)

/* the key's inner and outer SHA-256 states */
typedef struct {
    SHA256_CTX  inner;
    SHA256_CTX  outer;
} fhir_audit_mac_t;


static void *
fhir_audit_mac_new(const unsigned char *key, size_t key_len)
{
    size_t             i;
    unsigned char      k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
    fhir_audit_mac_t  *mac;

    /* a key longer than a block is hashed first, a shorter one padded
     * with zeros */
    memset(k, 0, sizeof(k));
    if (key_len > sizeof(k)) {
        SHA256(key, key_len, k);
    } else {
        memcpy(k, key, key_len);
    }

    mac = malloc(sizeof(fhir_audit_mac_t));

    if (mac) {
        for (i = 0; i < sizeof(pad); i++) {
            pad[i] = k[i] ^ 0x36;
        }
        SHA256_Init(&mac->inner);
        SHA256_Update(&mac->inner, pad, sizeof(pad));

        for (i = 0; i < sizeof(pad); i++) {
            pad[i] = k[i] ^ 0x5c;
        }
        SHA256_Init(&mac->outer);
        SHA256_Update(&mac->outer, pad, sizeof(pad));
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));

    return mac;
}


static void
fhir_audit_mac_free(void *mac)
{
    if (mac) {
        OPENSSL_cleanse(mac, sizeof(fhir_audit_mac_t));
        free(mac);
    }
}


/* H((K ^ opad) || H((K ^ ipad) || data)), from the saved states */
static int
fhir_audit_mac(void *m, const void *data, size_t len, unsigned char *md,
    size_t *md_len)
{
    int                rc;
    SHA256_CTX         h;
    fhir_audit_mac_t  *mac = m;

    h = mac->inner;
    rc = SHA256_Update(&h, data, len) == 1 && SHA256_Final(md, &h) == 1;

    if (rc) {
        h = mac->outer;
        rc = SHA256_Update(&h, md, SHA256_DIGEST_LENGTH) == 1
             && SHA256_Final(md, &h) == 1;
    }

    OPENSSL_cleanse(&h, sizeof(h));

    *md_len = SHA256_DIGEST_LENGTH;
    return rc ? 0 : -1;
}

#else

static void *
fhir_audit_mac_new(const unsigned char *key, size_t key_len)
{
    EVP_MAC      *mac;
    EVP_MAC_CTX  *ctx = NULL;
    OSSL_PARAM    params[2];
    char          digest[] = "SHA256";

    /* the key schedule once; each record restarts the context */
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac) {
        ctx = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx && EVP_MAC_init(ctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }

    return ctx;
}


static void
fhir_audit_mac_free(void *mac)
{
    EVP_MAC_CTX_free(mac);
}


static int
fhir_audit_mac(void *mac, const void *data, size_t len, unsigned char *md,
    size_t *md_len)
{
    /* a NULL key starts a new MAC with the key already scheduled */
    if (EVP_MAC_init(mac, NULL, 0, NULL) != 1
        || EVP_MAC_update(mac, data, len) != 1
        || EVP_MAC_final(mac, md, md_len, EVP_MAX_MD_SIZE) != 1)
    {
        return -1;
    }

    return 0;
}

#endif


void
fhir_audit_chain_init(fhir_audit_chain_t *c, const void *key, size_t key_len)
{
    fhir_audit_chain_free(c);
    memset(c, 0, sizeof(*c));

    if (key_len > sizeof(c->key)) {
        key_len = sizeof(c->key);
    }

    memcpy(c->key, key, key_len);
    c->key_len = key_len;
    memset(c->prev, '0', FHIR_AUDIT_HMAC_HEX);
    c->prev[FHIR_AUDIT_HMAC_HEX] = '\0';

    /* NULL (out of memory): each record falls back to the one-shot HMAC() */
    c->mac = fhir_audit_mac_new(c->key, c->key_len);
}


void
fhir_audit_chain_free(fhir_audit_chain_t *c)
{
    fhir_audit_mac_free(c->mac);
    c->mac = NULL;
}


static int
fhir_audit_chain_hmac(fhir_audit_chain_t *c, const void *data, size_t len,
    char *hex)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    size_t         md_len = 0;

    if (c->mac == NULL) {
        return fhir_audit_hmac(c->key, c->key_len, data, len, hex);
    }

    if (fhir_audit_mac(c->mac, data, len, md, &md_len) != 0) {
        return -1;
    }

    fhir_audit_hex(md, md_len, hex);
    return 0;
}


static void
fhir_audit_hex(const unsigned char *md, size_t len, char *hex)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;
    unsigned           b;

    for (i = 0; i < len; i++) {
        b = md[i];
        hex[0] = digits[b >> 4];
        hex[1] = digits[b & 0xf];
        hex += 2;
    }

    *hex = '\0';
}


int
fhir_audit_hmac(const void *key, size_t key_len, const void *data, size_t len,
    char *hex)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   md_len;

    if (HMAC(EVP_sha256(), key, (int) key_len, data, len, md, &md_len)
        == NULL)
    {
        return -1;
    }

    fhir_audit_hex(md, md_len, hex);
    return 0;
}


int
fhir_audit_seal_ext(fhir_audit_chain_t *c, fhir_buf_t *b,
    const char *before_seq, const char *before_prev, const char *before_hmac,
    const char *suffix)
{
    char  num[24], *p, hex[FHIR_AUDIT_HMAC_HEX + 1];

    p = fhir_audit_digits(num + sizeof(num), c->seq + 1);

    if (fhir_buf_puts(b, before_seq) != 0
        || fhir_buf_append(b, p, (size_t) (num + sizeof(num) - p)) != 0
        || fhir_buf_puts(b, before_prev) != 0
        || fhir_buf_puts(b, c->prev) != 0
        || fhir_buf_puts(b, before_hmac) != 0)
    {
        return -1;
    }

    if (fhir_audit_chain_hmac(c, b->data, b->len, hex) != 0) {
        return -1;
    }

    if (fhir_buf_append(b, hex, FHIR_AUDIT_HMAC_HEX) != 0
        || fhir_buf_puts(b, suffix) != 0)
    {
        return -1;
    }

    c->seq++;
    memcpy(c->prev, hex, sizeof(hex));
    return 0;
}


int
fhir_audit_seal(fhir_audit_chain_t *c, fhir_buf_t *b)
{
    return fhir_audit_seal_ext(c, b, ",\"seq\":", ",\"prev\":\"",
                               "\",\"hmac\":\"", "\"}\n");
}
