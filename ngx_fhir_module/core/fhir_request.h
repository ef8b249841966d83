/*
 * ngx_fhir core: translation of an R4-style request (path and query string)
 * into the partner's version.  Plain C99, no nginx headers.
 */

#ifndef FHIR_REQUEST_H
#define FHIR_REQUEST_H

#include "fhir_json.h"
#include "fhir_convert.h"

/*
 * path: the part after the partner's route, without a leading slash and
 * already URI-escaped ("MedicationRequest", "Patient/123", "Patient/_search");
 * args: the raw query string (may be empty).  Appends "path[?args]" for a
 * partner of version `to` to out.  Returns 0, or -1 when out of memory.
 */
int fhir_request_translate(fhir_version_t to, const char *path,
    size_t path_len, const char *args, size_t args_len, fhir_buf_t *out);

/*
 * A query string or a POST search's form: 0 when its _format asks for
 * something else than JSON (XML, Turtle, HTML), which the gateway cannot
 * convert; 1 otherwise (a JSON format, none, or no value).
 */
int fhir_format_ok(const char *args, size_t len);

/* the partner's name for an R4 resource type, or NULL when the same */
const char *fhir_partner_type_name(fhir_version_t to, const char *type,
    size_t len);

/* a batch entry's request as the partner will read it (the URL's JSON
 * escapes decoded); url is valid during the call only */
typedef void (*fhir_batch_entry_pt)(void *data, int post, const char *url,
    size_t url_len);

/*
 * A posted batch Bundle: every entry's request (only GET, and POST
 * <Type>/_search, are reads) is translated for a partner of version `to`;
 * the Bundle is written compact to out.  Each entry's request is handed to
 * on_entry (when not NULL) in order, before its translation.  Returns 0, or
 * -1 with a message in err (no PHI) when the body is not a batch of reads.
 */
int fhir_batch_translate(fhir_version_t to, const char *body, size_t len,
    unsigned max_depth, fhir_buf_t *out, char *err, size_t err_len,
    fhir_batch_entry_pt on_entry, void *data);

/*
 * The value of the first parameter `name` of an application/x-www-form-
 * urlencoded body (the token endpoint's request), decoded into out, which
 * has room for len bytes: '+' is a space, %XX a byte, a '%' that starts no
 * escape stays as it is.  Returns the value's length, or -1 when the form
 * has no such parameter.
 */
long fhir_form_arg(const char *form, size_t len, const char *name, char *out);

#endif /* FHIR_REQUEST_H */
