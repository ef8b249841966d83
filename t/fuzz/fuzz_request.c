/*
 * libFuzzer target: request translation (path and query), the batch
 * translator, and the parser of search parameters and form bodies (Patient
 * POST _search) that the audit trail uses, and the token endpoint's form
 * parser, with the first byte choosing the partner's version.
 */

#include <stdlib.h>
#include <string.h>

#include "fhir_request.h"
#include "fhir_audit.h"


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fhir_buf_t      out = { NULL, 0, 0 };
    fhir_version_t  v;
    const char     *q;
    char            err[160];
    size_t          n;

    if (size < 1) {
        return 0;
    }

    v = (data[0] & 1) ? FHIR_DSTU2 : FHIR_STU3;
    data++;
    size--;

    q = memchr(data, '?', size);
    n = q ? (size_t) (q - (const char *) data) : size;

    fhir_request_translate(v, (const char *) data, n, q ? q + 1 : "",
                           q ? size - n - 1 : 0, &out);
    out.len = 0;
    fhir_batch_translate(v, (const char *) data, size, 32, &out, err,
                         sizeof(err), NULL, NULL);
    (void) fhir_format_ok((const char *) data, size);

    {
        fhir_audit_what_t  w;

        fhir_audit_classify(v == FHIR_DSTU2, (const char *) data, n,
                            q ? q + 1 : "", q ? size - n - 1 : 0, &w);
    }

    {
        static const char *const  names[] = {
            "grant_type", "client_id", "client_secret", "scope", ""
        };
        char  *val = malloc(size + 1);
        long   got;
        int    i;

        for (i = 0; val && i < 5; i++) {
            got = fhir_form_arg((const char *) data, size, names[i], val);
            if (got > (long) size) {
                __builtin_trap();   /* never longer than the form */
            }
        }
        free(val);
    }

    fhir_buf_free(&out);
    return 0;
}
