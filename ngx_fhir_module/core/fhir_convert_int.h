/*
 * ngx_fhir core: helpers shared by the per-type converters (internal).
 */

#ifndef FHIR_CONVERT_INT_H
#define FHIR_CONVERT_INT_H

#include "fhir_convert.h"

#define FHIR_DAR_URL  "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

#define IS_DSTU2(c)  ((c)->from == FHIR_DSTU2)
#define IS_STU3(c)   ((c)->from == FHIR_STU3)

/* returns -1 from the calling converter when an allocation failed */
#define FHIR_TRY(expr)                                                        \
    do { if ((expr) == NULL) { return fhir_oom(c); } } while (0)

int fhir_oom(fhir_conv_t *c);

/* renames member `from` of obj to `to`, with its "_from" primitive twin */
void fhir_rename(fhir_conv_t *c, fj_node_t *obj, const char *from,
    const char *to);
/* wraps a single value in an array (with its "_" twin); no-op if absent */
int fhir_to_array(fhir_conv_t *c, fj_node_t *obj, const char *key);
/* the same for a member and its twin already found (either may be NULL) */
int fhir_to_array_pair(fhir_conv_t *c, fj_node_t *m, fj_node_t *tm);
/* a string member becomes [{"text": value}] (Annotation), under `to` */
int fhir_string_to_note(fhir_conv_t *c, fj_node_t *obj, const char *from,
    const char *to);
/* the same for the string member and its twin already found, has_to: obj
 * already has a `to` member (then nothing changes) */
int fhir_string_to_note_pair(fhir_conv_t *c, fj_node_t *obj, fj_node_t *m,
    fj_node_t *ext, int has_to, const char *to);
/* a code member becomes a CodeableConcept {"coding":[{system, code}]} */
fj_node_t *fhir_codeable(fhir_conv_t *c, const char *system,
    const char *code, size_t code_len);
fj_node_t *fhir_coding(fhir_conv_t *c, const char *system, const char *code,
    const char *display);
/* {"extension":[{"url": DAR, "valueCode": "unknown"}]} */
fj_node_t *fhir_dar(fhir_conv_t *c);
/* sets obj[key] (an element) to a data-absent-reason, if missing */
int fhir_require(fhir_conv_t *c, fj_node_t *obj, const char *key, int array);
/* sets "_key" of a primitive to a data-absent-reason, if key is missing */
int fhir_require_primitive(fhir_conv_t *c, fj_node_t *obj, const char *key);
/* moves a member into an extension with the cross-version URL */
int fhir_to_extension(fhir_conv_t *c, fj_node_t *obj, const char *key,
    const char *url, const char *value_key);
/* adds an extension (url, value node under value_key) to obj.extension */
int fhir_add_extension(fhir_conv_t *c, fj_node_t *obj, const char *url,
    const char *value_key, fj_node_t *value);
/* the code a string maps to in pairs {from, to, ..., NULL}, or NULL */
const char *fhir_map_code(const fj_node_t *n, const char *const *pairs);
/* the same, in place: a string found in pairs becomes its code */
void fhir_recode(fj_node_t *n, const char *const *pairs);
/* inserts member m into obj after member `after` (NULL: first) */
void fhir_put_after(fj_node_t *obj, const char *after, fj_node_t *m);

/* per-type converters (fhir_types.c) */
int fhir_conv_patient(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_observation(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_condition(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_encounter(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_allergy(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_medication_order(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_medication_request(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_medication_statement(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_coverage(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_location(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_practitioner(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_operation_outcome(fhir_conv_t *c, fj_node_t *r);
int fhir_conv_capability(fhir_conv_t *c, fj_node_t *r);

/* the R4 URL of a code system, or NULL when it did not move */
const char *fhir_code_system_r4(fhir_conv_t *c, const char *url, size_t len,
    size_t *out_len);

#endif /* FHIR_CONVERT_INT_H */
