/*
 * ngx_fhir core: request translation (see fhir_request.h).
 *
 * Resource types R4 renamed go back to the partner's names (DSTU2:
 * MedicationRequest -> MedicationOrder).  Sorting: R4 and STU3 write
 * _sort=-date, DSTU2 _sort:desc=date (and _sort:asc=date); each is written
 * the partner's way.  Every other parameter passes byte for byte.
 */

#include <string.h>

#include "fhir_request.h"


const char *
fhir_partner_type_name(fhir_version_t to, const char *type, size_t len)
{
    if (to == FHIR_DSTU2) {
        if (len == 17 && memcmp(type, "MedicationRequest", 17) == 0) {
            return "MedicationOrder";
        }
        if (len == 19 && memcmp(type, "CapabilityStatement", 19) == 0) {
            return "Conformance";
        }
    }

    return NULL;
}


static int
fhir_starts(const char *p, size_t len, const char *s)
{
    size_t  n = strlen(s);

    return len >= n && memcmp(p, s, n) == 0;
}


/* one name=value pair of the query string */
static int
fhir_translate_param(fhir_version_t to, const char *p, size_t len,
    fhir_buf_t *out)
{
    const char  *v;
    size_t       vlen;

    if (to == FHIR_DSTU2) {
        /* _sort=-x -> _sort:desc=x; _sort=x stays (ascending) */
        if (fhir_starts(p, len, "_sort=-")) {
            return fhir_buf_puts(out, "_sort:desc=")
                   || fhir_buf_append(out, p + 7, len - 7);
        }

    } else {
        /* _sort:desc=x -> _sort=-x, _sort:asc=x -> _sort=x */
        if (fhir_starts(p, len, "_sort:desc=")) {
            v = p + 11;
            vlen = len - 11;
            return fhir_buf_puts(out, "_sort=-")
                   || fhir_buf_append(out, v, vlen);
        }
        if (fhir_starts(p, len, "_sort:asc=")) {
            return fhir_buf_puts(out, "_sort=")
                   || fhir_buf_append(out, p + 10, len - 10);
        }
    }

    return fhir_buf_append(out, p, len);
}


int
fhir_request_translate(fhir_version_t to, const char *path, size_t path_len,
    const char *args, size_t args_len, fhir_buf_t *out)
{
    const char  *seg, *name, *amp, *end;
    size_t       n;

    seg = memchr(path, '/', path_len);
    n = seg ? (size_t) (seg - path) : path_len;

    name = fhir_partner_type_name(to, path, n);

    if (name) {
        if (fhir_buf_puts(out, name) != 0
            || fhir_buf_append(out, path + n, path_len - n) != 0)
        {
            return -1;
        }

    } else if (fhir_buf_append(out, path, path_len) != 0) {
        return -1;
    }

    if (args_len == 0) {
        return 0;
    }

    if (fhir_buf_append(out, "?", 1) != 0) {
        return -1;
    }

    end = args + args_len;

    while (args < end) {
        amp = memchr(args, '&', (size_t) (end - args));
        n = amp ? (size_t) (amp - args) : (size_t) (end - args);

        if (fhir_translate_param(to, args, n, out) != 0) {
            return -1;
        }

        args += n;

        if (amp) {
            if (fhir_buf_append(out, "&", 1) != 0) {
                return -1;
            }
            args++;
        }
    }

    return 0;
}
