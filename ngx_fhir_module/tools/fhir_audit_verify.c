/*
 * fhir-audit-verify: checks the HMAC chains of ngx_fhir audit logs and
 * reports the first edited, deleted, reordered or missing record.
 *
 *   fhir-audit-verify --key KEY_FILE FILE...
 *
 * Give rotated files oldest first (audit.log.2 audit.log.1 audit.log): each
 * nginx worker's chain continues across them.  Exit 0 when every chain is
 * whole, 1 at the first problem (said on stderr), 2 on usage errors.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fhir_audit.h"


typedef struct chain_s  chain_t;

struct chain_s {
    chain_t             *next;
    char                *id;
    unsigned long long   seq;
    char                 prev[FHIR_AUDIT_HMAC_HEX + 1];
    char                 where[512];
};

static chain_t  *chains;


static chain_t *
chain_get(const char *id)
{
    chain_t  *c;

    for (c = chains; c; c = c->next) {
        if (strcmp(c->id, id) == 0) {
            return c;
        }
    }

    c = calloc(1, sizeof(chain_t));
    c->id = strdup(id);
    c->next = chains;
    chains = c;
    return c;
}


static int
fail(const char *file, unsigned long line, const char *fmt, const char *a,
    unsigned long long x, unsigned long long y)
{
    fprintf(stderr, "fhir-audit-verify: %s:%lu: ", file, line);
    fprintf(stderr, fmt, a, x, y);
    fputc('\n', stderr);
    return 1;
}


/* the 64 hex digits of the seal and where they start, or -1 */
static long
find_hmac(const char *line, size_t len)
{
    static const char  json_marker[] = "\"hmac\":\"";
    static const char  ext_marker[] = "\"url\":\"hmac\",\"valueString\":\"";
    const char        *p, *found = NULL;
    size_t             i, m;

    for (i = 0; i < len; i++) {
        if (line[i] != '"') {
            continue;
        }
        if (len - i > sizeof(json_marker)
            && memcmp(line + i, json_marker, sizeof(json_marker) - 1) == 0)
        {
            found = line + i + sizeof(json_marker) - 1;
        } else if (len - i > sizeof(ext_marker)
                   && memcmp(line + i, ext_marker, sizeof(ext_marker) - 1)
                      == 0)
        {
            found = line + i + sizeof(ext_marker) - 1;
        }
    }

    if (found == NULL || (size_t) (line + len - found) < FHIR_AUDIT_HMAC_HEX) {
        return -1;
    }

    for (p = found, m = 0; m < FHIR_AUDIT_HMAC_HEX; m++, p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return -1;
        }
    }

    return (long) (found - line);
}


/* the seal's seq and prev: top level (JSON lines) or in the extension */
/*
 * A seal field: a top-level member of a JSON-lines record, or, in an
 * AuditEvent, the value of the sub-extension of that name inside the
 * urn:ngx-fhir:audit-seal extension.
 */
static cJSON *
seal_field(cJSON *rec, const char *name, const char *value_key)
{
    cJSON  *v, *e, *x, *url;

    v = cJSON_GetObjectItemCaseSensitive(rec, name);
    if (v) {
        return v;
    }

    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rec, "extension")) {
        url = cJSON_GetObjectItemCaseSensitive(e, "url");
        if (!cJSON_IsString(url)
            || strcmp(url->valuestring, "urn:ngx-fhir:audit-seal") != 0)
        {
            continue;
        }
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(e, "extension")) {
            url = cJSON_GetObjectItemCaseSensitive(x, "url");
            if (cJSON_IsString(url) && strcmp(url->valuestring, name) == 0) {
                return cJSON_GetObjectItemCaseSensitive(x, value_key);
            }
        }
    }

    return NULL;
}


static int
seal_fields(cJSON *rec, double *seq, const char **prev, const char **chain)
{
    cJSON  *s, *p, *c;

    s = seal_field(rec, "seq", "valueInteger");
    p = seal_field(rec, "prev", "valueString");
    c = seal_field(rec, "chain", "valueString");

    if (!cJSON_IsNumber(s) || !cJSON_IsString(p) || !cJSON_IsString(c)) {
        return -1;
    }

    *seq = s->valuedouble;
    *prev = p->valuestring;
    *chain = c->valuestring;
    return 0;
}


int
main(int argc, char **argv)
{
    FILE                *f;
    char                *line = NULL, hex[FHIR_AUDIT_HMAC_HEX + 1];
    unsigned char        key[256];
    size_t               cap = 0, key_len, len;
    ssize_t              n;
    long                 at;
    int                  i;
    unsigned long        lineno, records = 0, nchains = 0;
    double               seqd;
    unsigned long long   seq;
    const char          *prev, *id;
    cJSON               *rec;
    chain_t             *c;

    if (argc < 4 || strcmp(argv[1], "--key") != 0) {
        fprintf(stderr, "usage: fhir-audit-verify --key KEY_FILE FILE...\n"
                "Give rotated files oldest first.\n");
        return 2;
    }

    f = fopen(argv[2], "rb");
    if (f == NULL) {
        fprintf(stderr, "fhir-audit-verify: %s: %s\n", argv[2],
                strerror(errno));
        return 2;
    }
    key_len = fread(key, 1, sizeof(key), f);
    fclose(f);
    while (key_len && (key[key_len - 1] == '\n' || key[key_len - 1] == '\r'
                       || key[key_len - 1] == ' '))
    {
        key_len--;
    }
    if (key_len == 0) {
        fprintf(stderr, "fhir-audit-verify: %s: empty key\n", argv[2]);
        return 2;
    }

    for (i = 3; i < argc; i++) {

        f = fopen(argv[i], "rb");
        if (f == NULL) {
            fprintf(stderr, "fhir-audit-verify: %s: %s\n", argv[i],
                    strerror(errno));
            return 2;
        }

        lineno = 0;

        while ((n = getline(&line, &cap, f)) > 0) {
            lineno++;
            len = (size_t) n;

            if (line[len - 1] != '\n') {
                return fail(argv[i], lineno, "truncated record: the last "
                            "line is cut off%s", "", 0, 0);
            }
            line[--len] = '\0';

            at = find_hmac(line, len);
            rec = cJSON_ParseWithLength(line, len);

            if (at < 0 || rec == NULL
                || seal_fields(rec, &seqd, &prev, &id) != 0)
            {
                return fail(argv[i], lineno, "not a sealed audit record "
                            "(edited or truncated)%s", "", 0, 0);
            }

            seq = (unsigned long long) seqd;

            fhir_audit_hmac(key, key_len, line, (size_t) at, hex);
            if (memcmp(hex, line + at, FHIR_AUDIT_HMAC_HEX) != 0) {
                return fail(argv[i], lineno, "record %s#%llu was edited "
                            "(its HMAC does not match)%.0llu", id, seq, 0);
            }

            c = chain_get(id);

            if (c->seq == 0 && c->where[0] == '\0') {
                nchains++;
                if (seq != 1) {
                    return fail(argv[i], lineno, "chain %s starts at record "
                                "%llu: records 1 to %llu are missing (give "
                                "older rotated files first)", id, seq,
                                seq - 1);
                }
                memset(c->prev, '0', FHIR_AUDIT_HMAC_HEX);
            }

            if (seq <= c->seq) {
                return fail(argv[i], lineno, "chain %s: record %llu comes "
                            "after record %llu: records reordered or "
                            "duplicated", id, seq, c->seq);
            }

            if (seq != c->seq + 1) {
                return fail(argv[i], lineno, "chain %s: record %llu follows "
                            "record %llu: the records between are deleted, "
                            "missing or moved", id, seq, c->seq);
            }

            if (strcmp(prev, c->prev) != 0) {
                return fail(argv[i], lineno, "chain %s: record %llu does "
                            "not follow the record before it (replaced)%.0llu",
                            id, seq, 0);
            }

            c->seq = seq;
            memcpy(c->prev, line + at, FHIR_AUDIT_HMAC_HEX);
            snprintf(c->where, sizeof(c->where), "%s:%lu", argv[i], lineno);
            records++;
            cJSON_Delete(rec);
        }

        fclose(f);
    }

    printf("fhir-audit-verify: ok: %lu records in %lu chains\n", records,
           nchains);
    free(line);
    return 0;
}
