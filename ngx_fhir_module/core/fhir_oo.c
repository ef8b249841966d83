/*
 * ngx_fhir core: OperationOutcome documents (see fhir_oo.h).
 */

#include <stdio.h>
#include <string.h>

#include "fhir_oo.h"


int
fhir_oo_write(fhir_buf_t *out, const char *severity, const char *code,
    const char *diagnostics, size_t diag_len)
{
    if (fhir_buf_puts(out, "{\"resourceType\":\"OperationOutcome\","
                           "\"issue\":[{\"severity\":\"") != 0
        || fhir_buf_puts(out, severity) != 0
        || fhir_buf_puts(out, "\",\"code\":\"") != 0
        || fhir_buf_puts(out, code) != 0
        || fhir_buf_puts(out, "\",\"diagnostics\":\"") != 0
        || fhir_json_escape(out, diagnostics, diag_len) != 0
        || fhir_buf_puts(out, "\"}]}") != 0)
    {
        return -1;
    }

    return 0;
}


const char *
fhir_oo_code_for_status(unsigned status)
{
    switch (status) {
    case 400: return "invalid";
    case 401: return "login";
    case 403: return "forbidden";
    case 404: return "not-found";
    case 405: return "not-supported";
    case 406: return "not-supported";
    case 408: return "timeout";
    case 413: return "too-costly";
    case 414: return "too-long";
    case 415: return "not-supported";
    case 429: return "throttled";
    case 501: return "not-supported";
    case 503: return "transient";
    case 504: return "timeout";
    default:  return status >= 500 ? "exception" : "processing";
    }
}
