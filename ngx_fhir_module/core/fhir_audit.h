/*
 * ngx_fhir core: audit records.  What a request reads (one of the 11 event
 * kinds of the Patients app), one JSON line per read event, and the
 * tamper-evident seal: a sequence number and an HMAC-SHA256 chained over
 * the previous record of the same chain (one chain per nginx worker).
 * Plain C99 + OpenSSL, no nginx headers.
 */

#ifndef FHIR_AUDIT_H
#define FHIR_AUDIT_H

#include "fhir_json.h"

#define FHIR_AUDIT_HMAC_HEX  64

typedef struct {
    const char   *event;             /* capability.read, patient.search, ... */
    char          resource_type[64];
    char          resource_id[128];
    char          patient[128];      /* the patient's id, when known */
    unsigned      search:1;
} fhir_audit_what_t;

/*
 * Classifies an R4 request: path is what follows the partner's route
 * ("Patient/123", "Observation", "metadata", "Patient/_search"), args the
 * query string or a form body.
 */
void fhir_audit_classify(int post, const char *path, size_t path_len,
    const char *args, size_t args_len, fhir_audit_what_t *w);

/* the patient's id in a reference "Patient/123" or ".../Patient/123" */
int fhir_audit_patient_of_reference(const char *ref, size_t len,
    char *out, size_t out_size);

typedef struct {
    unsigned char        key[256];
    size_t               key_len;
    unsigned long long   seq;
    char                 prev[FHIR_AUDIT_HMAC_HEX + 1];
    void                *mac;          /* the key, scheduled once */
} fhir_audit_chain_t;

/* a new chain: seq 0, prev = 64 zeros */
void fhir_audit_chain_init(fhir_audit_chain_t *c, const void *key,
    size_t key_len);
void fhir_audit_chain_free(fhir_audit_chain_t *c);

/*
 * record building: {"name":value,... without the closing brace; name is a
 * string literal (the macros measure it at compile time)
 */
int fhir_audit_strn(fhir_buf_t *b, const char *name, size_t name_len,
    const char *v, size_t len);
int fhir_audit_numn(fhir_buf_t *b, const char *name, size_t name_len,
    long long v);
/* a member whose value is JSON text already (an object, an array) */
int fhir_audit_rawn(fhir_buf_t *b, const char *name, size_t name_len,
    const char *json, size_t len);

#define fhir_audit_str(b, name, v, len)                                       \
    fhir_audit_strn((b), "" name, sizeof("" name) - 1, (v), (len))
#define fhir_audit_num(b, name, v)                                            \
    fhir_audit_numn((b), "" name, sizeof("" name) - 1, (v))
#define fhir_audit_raw(b, name, json, len)                                    \
    fhir_audit_rawn((b), "" name, sizeof("" name) - 1, (json), (len))

/* a string member's value; data == NULL writes null */
typedef struct {
    const char   *data;
    size_t        len;
} fhir_audit_text_t;

/* the members of a read event's record (docs/audit.md), in their order */
typedef struct {
    fhir_audit_text_t   event;
    fhir_audit_text_t   outcome;
    fhir_audit_text_t   request_id;
    fhir_audit_text_t   batch_id;
    fhir_audit_text_t   client_ip;
    fhir_audit_text_t   subject;
    fhir_audit_text_t   tenant;
    fhir_audit_text_t   client_id;
    fhir_audit_text_t   partner;
    fhir_audit_text_t   method;
    fhir_audit_text_t   resource_type;
    fhir_audit_text_t   resource_id;
    fhir_audit_text_t   patient;
    fhir_audit_text_t   query;
    long long           status;
    long long           upstream_status;
    long long           entries;
    long long           bytes;
} fhir_audit_record_t;

/*
 * A record's texts come from the request (its path, query or form) and may
 * hold any bytes; a JSON line must be UTF-8.  fhir_audit_utf8_ok() says
 * whether len bytes are valid UTF-8 (no overlong form, no surrogate, nothing
 * above U+10FFFF); fhir_audit_utf8_fix() copies them to out (room for
 * 3 * len bytes) with each byte that is not part of a valid character
 * written as %XX, as a URL would carry it, and returns the length written.
 */
int    fhir_audit_utf8_ok(const char *s, size_t len);
size_t fhir_audit_utf8_fix(char *out, const char *s, size_t len);

/* the record's members as "{...", without the closing brace (the text an
 * AuditEvent line carries) */
int fhir_audit_build(fhir_buf_t *b, const fhir_audit_record_t *r);

/*
 * A JSON line of the audit log, built in one pass: {"ts":..,"chain":.., the
 * record's members in their order, and the seal (fhir_audit_seal()).
 */
int fhir_audit_line(fhir_audit_chain_t *c, fhir_buf_t *line,
    const char *ts, size_t ts_len, const char *chain, size_t chain_len,
    const fhir_audit_record_t *r);

/* the line's first members, {"ts":..,"chain":.. (a record other than a read
 * event adds its own members after them, then seals) */
int fhir_audit_line_head(fhir_buf_t *line, const char *ts, size_t ts_len,
    const char *chain, size_t chain_len);

/*
 * Seals the record in b ("{...members" without the closing brace): appends
 * ,"seq":N,"prev":"<hex>","hmac":"<hex>"}\n where the HMAC-SHA256 (key of
 * the chain) covers every byte before the hmac's hex digits.  Advances the
 * chain.  The caller writes the line only if it is sealed.
 */
int fhir_audit_seal(fhir_audit_chain_t *c, fhir_buf_t *b);

/* the same, for a sealed record that ends with suffix (AuditEvent lines) */
int fhir_audit_seal_ext(fhir_audit_chain_t *c, fhir_buf_t *b,
    const char *before_seq, const char *before_prev, const char *before_hmac,
    const char *suffix);

/* HMAC-SHA256 in lower-case hex (65 bytes with the NUL) */
int fhir_audit_hmac(const void *key, size_t key_len, const void *data,
    size_t len, char *hex);

#endif /* FHIR_AUDIT_H */
