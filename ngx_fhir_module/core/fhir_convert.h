/*
 * ngx_fhir core: DSTU2 / STU3 -> R4 conversion of one resource (as a tree),
 * of Bundle entries, and of the gateway's URLs.  Plain C99, no nginx headers.
 */

#ifndef FHIR_CONVERT_H
#define FHIR_CONVERT_H

#include "fhir_json.h"

typedef enum {
    FHIR_VERSION_UNKNOWN = 0,
    FHIR_DSTU2 = 2,
    FHIR_STU3 = 3,
    FHIR_R4 = 4
} fhir_version_t;

#define FHIR_OBSERVE_RESOURCE  1   /* a whole document that is no Bundle */
#define FHIR_OBSERVE_ENTRY     2   /* one entry of the top-level Bundle */

typedef struct {
    fhir_version_t   from;

    /* absolute references and Bundle URLs that start with partner_base are
     * rewritten to start with public_base (both without a trailing slash),
     * and so are paths ("/...") under partner_base's path */
    const char      *partner_base;
    size_t           partner_base_len;
    const char      *public_base;
    size_t           public_base_len;

    /* the gateway's own token URL and base, for its CapabilityStatement */
    const char      *token_url;
    const char      *public_url;

    fj_arena_t      *arena;

    /* called with each converted top-level resource and Bundle entry */
    void           (*observe)(void *data, int what, fj_node_t *node);
    void            *observe_data;

    /* statistics */
    unsigned long    resources;      /* resources converted */
    unsigned long    unmapped;       /* resources of a type with no mapping */

    char             err[160];
} fhir_conv_t;

/* converts a resource in place; -1 with c->err set when it cannot be */
int fhir_convert_resource(fhir_conv_t *c, fj_node_t *res);

/* converts one Bundle.entry object in place */
int fhir_convert_entry(fhir_conv_t *c, fj_node_t *entry);

/* converts the members of a Bundle other than entry (id, meta, link, ...) */
int fhir_convert_bundle_head(fhir_conv_t *c, fj_node_t *bundle);

/*
 * Rewrites a URL found in a Bundle or a Location header: the partner's base
 * becomes the gateway's, and resource type names that R4 renamed are
 * renamed.  Returns a string in c->arena (or the input when unchanged).
 */
int fhir_rewrite_url(fhir_conv_t *c, const char *in, size_t len,
    const char **out, size_t *out_len);

/* the R4 name of a resource type of the source version, or NULL if same */
const char *fhir_r4_type_name(fhir_version_t from, const char *type,
    size_t len);

/* guesses the version of a complete document from its text */
fhir_version_t fhir_detect_version(const char *text, size_t len);

fhir_version_t fhir_version_from_string(const char *s);
const char *fhir_version_name(fhir_version_t v);

/* is this resource type converted (not just forwarded)? */
int fhir_type_is_mapped(const char *type, size_t len);

#endif /* FHIR_CONVERT_H */
