/*
 * ngx_fhir core: the conversion driver.  Generic rules that apply to every
 * resource (MAPPING.md section 1), Bundles (section 13), URL rewriting, and
 * the dispatch to the per-type converters in fhir_types.c.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fhir_convert_int.h"


typedef int (*fhir_type_conv_pt)(fhir_conv_t *c, fj_node_t *r);

typedef struct {
    const char          *type;
    fhir_type_conv_pt    handler;
} fhir_type_t;


static const fhir_type_t  fhir_types[] = {
    { "Patient",             fhir_conv_patient },
    { "Observation",         fhir_conv_observation },
    { "Condition",           fhir_conv_condition },
    { "Encounter",           fhir_conv_encounter },
    { "AllergyIntolerance",  fhir_conv_allergy },
    { "MedicationOrder",     fhir_conv_medication_order },
    { "MedicationRequest",   fhir_conv_medication_request },
    { "MedicationStatement", fhir_conv_medication_statement },
    { "Coverage",            fhir_conv_coverage },
    { "Location",            fhir_conv_location },
    { "Practitioner",        fhir_conv_practitioner },
    { "OperationOutcome",    fhir_conv_operation_outcome },
    { "Conformance",         fhir_conv_capability },
    { "CapabilityStatement", fhir_conv_capability },
    { "Bundle",              NULL },
    { NULL, NULL }
};


static int fhir_convert_bundle(fhir_conv_t *c, fj_node_t *bundle);
static int fhir_walk(fhir_conv_t *c, fj_node_t *n, int in_repeat);
static int fhir_walk_refs(fhir_conv_t *c, fj_node_t *n);


int
fhir_oom(fhir_conv_t *c)
{
    snprintf(c->err, sizeof(c->err), "out of memory");
    return -1;
}


static const fhir_type_t *
fhir_find_type(const char *type, size_t len)
{
    const fhir_type_t  *t;

    for (t = fhir_types; t->type; t++) {
        if (strlen(t->type) == len && memcmp(t->type, type, len) == 0) {
            return t;
        }
    }

    return NULL;
}


int
fhir_type_is_mapped(const char *type, size_t len)
{
    return fhir_find_type(type, len) != NULL;
}


const char *
fhir_r4_type_name(fhir_version_t from, const char *type, size_t len)
{
    if (from == FHIR_DSTU2) {
        if (len == 15 && memcmp(type, "MedicationOrder", 15) == 0) {
            return "MedicationRequest";
        }
        if (len == 11 && memcmp(type, "Conformance", 11) == 0) {
            return "CapabilityStatement";
        }
    }

    return NULL;
}


fhir_version_t
fhir_version_from_string(const char *s)
{
    if (strcmp(s, "dstu2") == 0 || strncmp(s, "1.0", 3) == 0) {
        return FHIR_DSTU2;
    }
    if (strcmp(s, "stu3") == 0 || strncmp(s, "3.0", 3) == 0) {
        return FHIR_STU3;
    }
    if (strcmp(s, "r4") == 0 || strncmp(s, "4.0", 3) == 0) {
        return FHIR_R4;
    }
    return FHIR_VERSION_UNKNOWN;
}


const char *
fhir_version_name(fhir_version_t v)
{
    switch (v) {
    case FHIR_DSTU2: return "dstu2";
    case FHIR_STU3:  return "stu3";
    case FHIR_R4:    return "r4";
    default:         return "unknown";
    }
}


static int
fhir_contains(const char *text, size_t len, const char *needle)
{
    size_t  n = strlen(needle), i;

    if (len < n) {
        return 0;
    }

    for (i = 0; i + n <= len; i++) {
        if (text[i] == needle[0] && memcmp(text + i, needle, n) == 0) {
            return 1;
        }
    }

    return 0;
}


fhir_version_t
fhir_detect_version(const char *text, size_t len)
{
    static const char *const  dstu2[] = {
        "\"MedicationOrder\"", "\"Conformance\"", "\"careProvider\"",
        "\"dateRecorded\"", "\"dateWritten\"", "\"fhir_comments\"",
        "\"json+fhir\"", "\"fhirVersion\":\"1.0", "\"fhirVersion\": \"1.0",
        NULL
    };
    static const char *const  stu3[] = {
        "\"MedicationRequest\"", "\"CapabilityStatement\"",
        "\"assertedDate\"", "\"generalPractitioner\"", "\"authoredOn\"",
        "\"fhirVersion\":\"3.0", "\"fhirVersion\": \"3.0", NULL
    };
    static const char *const  r4[] = {
        "\"fhirVersion\":\"4.0", "\"fhirVersion\": \"4.0", "\"doseAndRate\"",
        NULL
    };
    int  i;

    for (i = 0; r4[i]; i++) {
        if (fhir_contains(text, len, r4[i])) {
            return FHIR_R4;
        }
    }
    for (i = 0; dstu2[i]; i++) {
        if (fhir_contains(text, len, dstu2[i])) {
            return FHIR_DSTU2;
        }
    }
    for (i = 0; stu3[i]; i++) {
        if (fhir_contains(text, len, stu3[i])) {
            return FHIR_STU3;
        }
    }

    /* DSTU2 HumanName.family is an array */
    if (fhir_contains(text, len, "\"family\":[")
        || fhir_contains(text, len, "\"family\": ["))
    {
        return FHIR_DSTU2;
    }

    return FHIR_VERSION_UNKNOWN;
}


/* URL rewriting */

/* the path of the partner's base URL ("" for a base with none) */
static int
fhir_base_path(fhir_conv_t *c, const char **path, size_t *len)
{
    const char  *b = c->partner_base, *end, *p;

    if (c->partner_base_len == 0 || c->public_base_len == 0) {
        return 0;
    }

    end = b + c->partner_base_len;
    p = memchr(b, ':', c->partner_base_len);
    if (p == NULL || end - p < 3 || p[1] != '/' || p[2] != '/') {
        return 0;
    }

    p = memchr(p + 3, '/', (size_t) (end - p - 3));
    *path = p ? p : end;
    *len = (size_t) (end - *path);
    return 1;
}


int
fhir_rewrite_url(fhir_conv_t *c, const char *in, size_t len,
    const char **out, size_t *out_len)
{
    const char  *rest, *type, *to, *slash, *bp;
    size_t       rest_len, type_len, n, to_len, bp_len;
    int          based = 0;
    char        *p;

    *out = in;
    *out_len = len;

    rest = in;
    rest_len = len;

    if (c->partner_base_len && len >= c->partner_base_len
        && memcmp(in, c->partner_base, c->partner_base_len) == 0
        && (len == c->partner_base_len || in[c->partner_base_len] == '/'
            || in[c->partner_base_len] == '?'))
    {
        based = 1;
        rest = in + c->partner_base_len;
        rest_len = len - c->partner_base_len;

    } else if (len && in[0] == '/' && (len == 1 || in[1] != '/')
               && fhir_base_path(c, &bp, &bp_len)
               && len >= bp_len && memcmp(in, bp, bp_len) == 0
               && (len == bp_len || in[bp_len] == '/' || in[bp_len] == '?'))
    {
        /* a path on the partner's server (a Location or Content-Location
         * header relative to its origin, a reference so written) under the
         * partner's base: the gateway's route, as an absolute URL */
        based = 1;
        rest = in + bp_len;
        rest_len = len - bp_len;

    } else if (c->from != FHIR_DSTU2
               || len == 0 || (in[0] != 'M' && in[0] != 'C' && in[0] != '/'))
    {
        /* any other URL changes only when its first segment is a type R4
         * renamed: MedicationOrder or Conformance, from DSTU2 only */
        return 0;
    }

    /* the resource type: first path segment after the base (or at start) */
    type = rest;
    type_len = rest_len;
    if (type_len && type[0] == '/') {
        type++;
        type_len--;
    }
    slash = memchr(type, '/', type_len);
    n = slash ? (size_t) (slash - type) : type_len;
    {
        const char  *q = memchr(type, '?', n);
        if (q) {
            n = (size_t) (q - type);
        }
    }

    to = fhir_r4_type_name(c->from, type, n);

    if (!based && to == NULL) {
        return 0;
    }

    to_len = to ? strlen(to) : n;

    p = fj_alloc(c->arena, (based ? c->public_base_len : 0) + rest_len
                           + to_len + 1);
    if (p == NULL) {
        return fhir_oom(c);
    }

    *out = p;

    if (based) {
        memcpy(p, c->public_base, c->public_base_len);
        p += c->public_base_len;
    }

    memcpy(p, rest, (size_t) (type - rest));
    p += type - rest;
    memcpy(p, to ? to : type, to_len);
    p += to_len;
    memcpy(p, type + n, type_len - n);
    p += type_len - n;

    *out_len = (size_t) (p - *out);
    return 0;
}


static int
fhir_rewrite_url_node(fhir_conv_t *c, fj_node_t *n)
{
    if (n == NULL || n->type != FJ_STRING) {
        return 0;
    }

    return fhir_rewrite_url(c, n->raw, n->raw_len, &n->raw, &n->raw_len);
}


/* the generic pass over every element of a resource */

static int
fhir_join_family(fhir_conv_t *c, fj_node_t *fam)
{
    fj_node_t  *e;
    size_t      len = 0;
    char       *p, *q;

    for (e = fam->child; e; e = e->next) {
        if (e->type != FJ_STRING) {
            snprintf(c->err, sizeof(c->err),
                     "HumanName.family holds a non-string");
            return -1;
        }
        len += e->raw_len + 1;
    }

    if (fam->child == NULL) {
        return 0;
    }

    p = fj_alloc(c->arena, len);
    if (p == NULL) {
        return fhir_oom(c);
    }

    q = p;
    for (e = fam->child; e; e = e->next) {
        if (q != p) {
            *q++ = ' ';
        }
        memcpy(q, e->raw, e->raw_len);
        q += e->raw_len;
    }

    fam->type = FJ_STRING;
    fam->child = NULL;
    fam->raw = p;
    fam->raw_len = (size_t) (q - p);
    return 0;
}


/*
 * No extension value[x] is an array in any FHIR version; some partners send
 * "valueString": ["a", "b"].  Each value becomes an extension of its own
 * with the same url, which is how FHIR repeats an extension.
 */
static int
fhir_split_extension_values(fhir_conv_t *c, fj_node_t *arr)
{
    fj_node_t   *ext, *next, *m, *mnext, *url, *u, *v, *vnext, *copy, *after;
    const char  *key;
    size_t       key_len;

    for (ext = arr->child; ext; ext = next) {
        next = ext->next;

        if (ext->type != FJ_OBJECT) {
            continue;
        }

        for (m = ext->child; m; m = m->next) {
            if (m->type == FJ_ARRAY && m->key_len > 5
                && memcmp(m->key, "value", 5) == 0)
            {
                break;
            }
        }

        url = fj_get_str(ext, "url");

        if (m == NULL || url == NULL || m->child == NULL) {
            continue;
        }

        key = m->key;
        key_len = m->key_len;
        mnext = m->next;
        v = m->child;
        vnext = v->next;

        /* the first value stays in this extension */
        *m = *v;
        m->key = key;
        m->key_len = key_len;
        m->next = mnext;

        after = ext;

        for (v = vnext; v; v = vnext) {
            vnext = v->next;
            v->key = key;
            v->key_len = key_len;
            v->next = NULL;

            copy = fj_new(c->arena, FJ_OBJECT);
            u = fj_new_strn(c->arena, url->raw, url->raw_len);
            if (copy == NULL || u == NULL) {
                return fhir_oom(c);
            }
            fj_append(copy, fj_member(u, "url"));
            fj_append(copy, v);
            fj_insert_after(arr, after, copy);
            after = copy;
        }
    }

    return 0;
}


/* the keys the walk acts on, told apart by length first */
enum {
    FHIR_K_OTHER = 0,
    FHIR_K_COMMENTS,
    FHIR_K_SYSTEM,
    FHIR_K_REFERENCE,
    FHIR_K_FAMILY,
    FHIR_K__FAMILY,
    FHIR_K_EXTENSION,
    FHIR_K_CONTAINED,
    FHIR_K_REPEAT,
    FHIR_K_PERIODUNITS,
    FHIR_K__PERIODUNITS,
    FHIR_K_DURATIONUNITS,
    FHIR_K__DURATIONUNITS,
    FHIR_K_WHEN
};


/*
 * A filter of those keys by length, first and last byte: most keys are none
 * of them, and one test of a bit answers for them (about one other key in
 * a hundred of the sample data passes it), where the switch below on the
 * length of every key costs the walk an indirect jump that the processor
 * seldom predicts.
 */
#define FHIR_WALK_H(len, first, last)                                         \
    ((((len) * 19) + ((first) * 2) + ((last) * 5)) & 63)
#define FHIR_WALK_B(lit)                                                      \
    ((uint64_t) 1 << FHIR_WALK_H(sizeof(lit) - 1, lit[0], lit[sizeof(lit) - 2]))

#define FHIR_WALK_KEYS                                                        \
    (FHIR_WALK_B("when") | FHIR_WALK_B("_when") | FHIR_WALK_B("system")       \
     | FHIR_WALK_B("family") | FHIR_WALK_B("_family") | FHIR_WALK_B("repeat") \
     | FHIR_WALK_B("reference") | FHIR_WALK_B("extension")                   \
     | FHIR_WALK_B("contained") | FHIR_WALK_B("periodUnits")                  \
     | FHIR_WALK_B("_periodUnits") | FHIR_WALK_B("fhir_comments")             \
     | FHIR_WALK_B("durationUnits") | FHIR_WALK_B("_durationUnits")           \
     | FHIR_WALK_B("modifierExtension"))


static inline int
fhir_walk_key(const fj_node_t *m)
{
#define K(lit, code)                                                          \
    (memcmp(m->key, lit, sizeof(lit) - 1) == 0 ? (code) : FHIR_K_OTHER)

    if (m->key_len == 0
        || !((FHIR_WALK_KEYS
              >> FHIR_WALK_H(m->key_len, (unsigned char) m->key[0],
                             (unsigned char) m->key[m->key_len - 1]))
             & 1))
    {
        return FHIR_K_OTHER;
    }

    switch (m->key_len) {
    case 4:
        return K("when", FHIR_K_WHEN);
    case 5:
        return K("_when", FHIR_K_WHEN);
    case 6:
        switch (m->key[0]) {
        case 's': return K("system", FHIR_K_SYSTEM);
        case 'f': return K("family", FHIR_K_FAMILY);
        case 'r': return K("repeat", FHIR_K_REPEAT);
        }
        return FHIR_K_OTHER;
    case 7:
        return K("_family", FHIR_K__FAMILY);
    case 9:
        switch (m->key[0]) {
        case 'r': return K("reference", FHIR_K_REFERENCE);
        case 'e': return K("extension", FHIR_K_EXTENSION);
        case 'c': return K("contained", FHIR_K_CONTAINED);
        }
        return FHIR_K_OTHER;
    case 11:
        return K("periodUnits", FHIR_K_PERIODUNITS);
    case 12:
        return K("_periodUnits", FHIR_K__PERIODUNITS);
    case 13:
        switch (m->key[0]) {
        case 'f': return K("fhir_comments", FHIR_K_COMMENTS);
        case 'd': return K("durationUnits", FHIR_K_DURATIONUNITS);
        }
        return FHIR_K_OTHER;
    case 14:
        return K("_durationUnits", FHIR_K__DURATIONUNITS);
    case 17:
        return K("modifierExtension", FHIR_K_EXTENSION);
    }

    return FHIR_K_OTHER;

#undef K
}


static int
fhir_walk_object(fhir_conv_t *c, fj_node_t *obj, int in_repeat)
{
    int          k;
    fj_node_t  **pp, *m, *e;
    const char  *url;
    size_t       len;

    for (pp = &obj->child; *pp; ) {
        m = *pp;
        k = fhir_walk_key(m);

        /* most members: nothing to do here but to look inside */
        if (k == FHIR_K_OTHER) {
            goto inside;
        }

        /* DSTU2 JSON comments have no place in the R4 model */
        if (k == FHIR_K_COMMENTS) {
            *pp = m->next;
            continue;
        }

        if (m->type == FJ_STRING) {
            if (k == FHIR_K_SYSTEM) {
                url = fhir_code_system_r4(c, m->raw, m->raw_len, &len);
                if (url) {
                    m->raw = url;
                    m->raw_len = len;
                }

            } else if (k == FHIR_K_REFERENCE) {
                if (fhir_rewrite_url_node(c, m) != 0) {
                    return -1;
                }
            }
        }

        if (IS_DSTU2(c)) {
            if (m->type == FJ_ARRAY && k == FHIR_K_FAMILY) {
                if (fhir_join_family(c, m) != 0) {
                    return -1;
                }
            } else if (m->type == FJ_ARRAY && k == FHIR_K__FAMILY) {
                /* the joined family keeps the first part's extension */
                for (e = m->child; e && e->type == FJ_NULL; e = e->next) {
                    /* void */
                }
                if (e == NULL) {
                    *pp = m->next;
                    continue;
                }
                m->type = e->type;
                m->raw = e->raw;
                m->raw_len = e->raw_len;
                m->child = e->child;
            }

            if (in_repeat) {
                if (k == FHIR_K_PERIODUNITS) {
                    fj_rename(m, "periodUnit");
                } else if (k == FHIR_K__PERIODUNITS) {
                    fj_rename(m, "_periodUnit");
                } else if (k == FHIR_K_DURATIONUNITS) {
                    fj_rename(m, "durationUnit");
                } else if (k == FHIR_K__DURATIONUNITS) {
                    fj_rename(m, "_durationUnit");
                } else if (k == FHIR_K_WHEN) {
                    if (fj_wrap_array(c->arena, m) == NULL) {
                        return fhir_oom(c);
                    }
                }
            }
        }

        if (k == FHIR_K_EXTENSION && m->type == FJ_ARRAY
            && fhir_split_extension_values(c, m) != 0)
        {
            return -1;
        }

        if (k == FHIR_K_CONTAINED && m->type == FJ_ARRAY) {
            for (e = m->child; e; e = e->next) {
                if (e->type == FJ_OBJECT && fhir_convert_resource(c, e) != 0) {
                    return -1;
                }
            }
            pp = &m->next;
            continue;
        }

    inside:

        if ((m->type == FJ_OBJECT || m->type == FJ_ARRAY)
            && fhir_walk(c, m, k == FHIR_K_REPEAT) != 0)
        {
            return -1;
        }

        pp = &m->next;
    }

    return 0;
}


static int
fhir_walk(fhir_conv_t *c, fj_node_t *n, int in_repeat)
{
    fj_node_t  *e;

    if (n->type == FJ_OBJECT) {
        return fhir_walk_object(c, n, in_repeat);
    }

    if (n->type == FJ_ARRAY) {
        for (e = n->child; e; e = e->next) {
            if (e->type == FJ_OBJECT || e->type == FJ_ARRAY) {
                if (fhir_walk(c, e, in_repeat) != 0) {
                    return -1;
                }
            }
        }
    }

    return 0;
}


static int
fhir_walk_refs(fhir_conv_t *c, fj_node_t *n)
{
    fj_node_t  *m;

    for (m = n->child; m; m = m->next) {
        if (m->type == FJ_STRING && n->type == FJ_OBJECT
            && FJ_KEY(m, "reference"))
        {
            if (fhir_rewrite_url_node(c, m) != 0) {
                return -1;
            }

        } else if (m->type == FJ_OBJECT || m->type == FJ_ARRAY) {
            if (fhir_walk_refs(c, m) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


int
fhir_convert_resource(fhir_conv_t *c, fj_node_t *res)
{
    fj_node_t          *rt, *meta;
    const fhir_type_t  *t;
    const char         *to;

    if (res->type != FJ_OBJECT) {
        snprintf(c->err, sizeof(c->err), "a resource is not a JSON object");
        return -1;
    }

    rt = fj_get_str(res, "resourceType");
    if (rt == NULL) {
        snprintf(c->err, sizeof(c->err), "a resource has no resourceType");
        return -1;
    }

    t = fhir_find_type(rt->raw, rt->raw_len);

    if (t && t->handler == NULL) {
        return fhir_convert_bundle(c, res);
    }

    if (c->from == FHIR_R4) {
        /* same version: only the gateway's URLs change */
        c->resources++;
        return fhir_walk(c, res, 0);
    }

    if (t == NULL) {
        /* no mapping: forwarded unchanged but for its references, which
         * must name R4 types and the gateway's routes; counted */
        c->unmapped++;
        return fhir_walk_refs(c, res);
    }

    to = fhir_r4_type_name(c->from, rt->raw, rt->raw_len);
    if (to) {
        fj_set_raw(rt, to);
    }

    /* profiles of the source version describe what this no longer is */
    meta = fj_get(res, "meta");
    if (meta && meta->type == FJ_OBJECT) {
        fj_detach(meta, "profile");
        fj_detach(meta, "_profile");
        if (meta->child == NULL) {
            fj_detach(res, "meta");
        }
    }

    if (fhir_walk(c, res, 0) != 0) {
        return -1;
    }

    if (t->handler(c, res) != 0) {
        return -1;
    }

    c->resources++;
    return 0;
}


/* Bundles */

int
fhir_convert_bundle_head(fhir_conv_t *c, fj_node_t *b)
{
    fj_node_t  *m, *l;

    for (m = b->child; m; m = m->next) {

        if (fj_key_is(m, "link") && m->type == FJ_ARRAY) {
            for (l = m->child; l; l = l->next) {
                if (fhir_rewrite_url_node(c, fj_get(l, "url")) != 0) {
                    return -1;
                }
            }
        }
    }

    fj_detach(b, "fhir_comments");

    if (c->from != FHIR_R4) {
        m = fj_get(b, "meta");
        if (m) {
            fj_detach(m, "profile");
            if (m->child == NULL) {
                fj_detach(b, "meta");
            }
        }
    }

    return 0;
}


int
fhir_convert_entry(fhir_conv_t *c, fj_node_t *entry)
{
    fj_node_t  *m, *l;

    fj_detach(entry, "fhir_comments");

    if (fhir_rewrite_url_node(c, fj_get(entry, "fullUrl")) != 0) {
        return -1;
    }

    m = fj_get(entry, "link");
    if (m && m->type == FJ_ARRAY) {
        for (l = m->child; l; l = l->next) {
            if (fhir_rewrite_url_node(c, fj_get(l, "url")) != 0) {
                return -1;
            }
        }
    }

    m = fj_get(entry, "resource");
    if (m && fhir_convert_resource(c, m) != 0) {
        return -1;
    }

    m = fj_get(entry, "request");
    if (m && fhir_rewrite_url_node(c, fj_get(m, "url")) != 0) {
        return -1;
    }

    m = fj_get(entry, "response");
    if (m) {
        fj_detach(m, "fhir_comments");
        if (fhir_rewrite_url_node(c, fj_get(m, "location")) != 0) {
            return -1;
        }
        l = fj_get(m, "outcome");
        if (l && fhir_convert_resource(c, l) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
fhir_convert_bundle(fhir_conv_t *c, fj_node_t *b)
{
    fj_node_t  *entries, *e;

    if (fhir_convert_bundle_head(c, b) != 0) {
        return -1;
    }

    entries = fj_get(b, "entry");
    if (entries && entries->type == FJ_ARRAY) {
        for (e = entries->child; e; e = e->next) {
            if (e->type != FJ_OBJECT) {
                snprintf(c->err, sizeof(c->err),
                         "Bundle entry is not an object");
                return -1;
            }
            if (fhir_convert_entry(c, e) != 0) {
                return -1;
            }
        }
    }

    return 0;
}
