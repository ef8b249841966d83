/*
 * ngx_fhir core: the streaming driver.  Bytes of a partner's JSON response go
 * in, in chunks split anywhere; R4 JSON comes out.  A Bundle is converted
 * entry by entry, so memory is bounded by the largest entry, never by the
 * Bundle; any other resource is held whole (bounded by max_resource).
 * Plain C99, no nginx headers.
 */

#ifndef FHIR_STREAM_H
#define FHIR_STREAM_H

#include "fhir_json.h"
#include "fhir_convert.h"

typedef struct fhir_stream_s  fhir_stream_t;

#define FHIR_STREAM_OK     0
#define FHIR_STREAM_ERROR  -1

/* conv must outlive the stream; its arena is reset per entry */
fhir_stream_t *fhir_stream_create(fhir_conv_t *conv, size_t max_resource,
    unsigned max_depth);

/* sets the limits (a reused stream may serve another location) */
void fhir_stream_limits(fhir_stream_t *s, size_t max_resource,
    unsigned max_depth);

/* starts over on a new document, keeping the memory it has (for reuse) */
void fhir_stream_reset(fhir_stream_t *s, fhir_conv_t *conv);

/* appends the converted output for these bytes (possibly none) to out */
int fhir_stream_feed(fhir_stream_t *s, const char *data, size_t len,
    fhir_buf_t *out);

/* the input is complete: flushes the rest, or fails if it was truncated */
int fhir_stream_finish(fhir_stream_t *s, fhir_buf_t *out);

const char *fhir_stream_error(const fhir_stream_t *s);

/* entries converted so far, and whether the document is a Bundle */
unsigned long fhir_stream_entries(const fhir_stream_t *s);
int fhir_stream_is_bundle(const fhir_stream_t *s);
/* the document is whole: what may still come is whitespace, or an error */
int fhir_stream_done(const fhir_stream_t *s);
/* bytes consumed so far */
unsigned long long fhir_stream_offset(const fhir_stream_t *s);

void fhir_stream_destroy(fhir_stream_t *s);

#endif /* FHIR_STREAM_H */
