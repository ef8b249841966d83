/*
 * ngx_fhir core: FHIR R4 OperationOutcome documents for the gateway's own
 * errors.  Plain C99, no nginx headers.
 */

#ifndef FHIR_OO_H
#define FHIR_OO_H

#include "fhir_json.h"

/*
 * Writes {"resourceType":"OperationOutcome","issue":[{...}]} to out.
 * severity: fatal | error | warning | information; code: an R4 issue-type
 * code (not-found, exception, timeout, ...); diagnostics is plain text and
 * is escaped here.  It must never carry PHI.
 */
int fhir_oo_write(fhir_buf_t *out, const char *severity, const char *code,
    const char *diagnostics, size_t diag_len);

/* the R4 issue-type code that fits an HTTP status */
const char *fhir_oo_code_for_status(unsigned status);

#endif /* FHIR_OO_H */
