/*
 * ngx_fhir core: the one table of code systems that moved in R4
 * (MAPPING.md 1.4), and the small tree helpers the per-type converters share.
 */

#include <stdio.h>
#include <string.h>

#include "fhir_convert_int.h"


#define THO  "http://terminology.hl7.org/CodeSystem/"

typedef struct {
    const char  *from;
    size_t       from_len;
    const char  *to;
    size_t       to_len;
} fhir_moved_t;

#define FHIR_MOVED(from, to)  { from, sizeof(from) - 1, to, sizeof(to) - 1 }

/* where all but one of the moved systems lived: a system URL elsewhere is
 * looked for in the short second table only */
#define HL7F  "http://hl7.org/fhir/"

static const fhir_moved_t  fhir_moved_systems[] = {
    FHIR_MOVED("http://hl7.org/fhir/observation-category",
               THO "observation-category"),
    FHIR_MOVED("http://hl7.org/fhir/condition-category",
               THO "condition-category"),
    FHIR_MOVED("http://hl7.org/fhir/condition-clinical",
               THO "condition-clinical"),
    FHIR_MOVED("http://hl7.org/fhir/condition-ver-status",
               THO "condition-ver-status"),
    FHIR_MOVED("http://hl7.org/fhir/allergyintolerance-clinical",
               THO "allergyintolerance-clinical"),
    FHIR_MOVED("http://hl7.org/fhir/allergyintolerance-verification",
               THO "allergyintolerance-verification"),
    FHIR_MOVED("http://hl7.org/fhir/medication-request-category",
               THO "medicationrequest-category"),
    FHIR_MOVED("http://hl7.org/fhir/diagnosis-role", THO "diagnosis-role"),
    FHIR_MOVED("http://hl7.org/fhir/data-absent-reason",
               THO "data-absent-reason"),
    FHIR_MOVED("http://hl7.org/fhir/subscriber-relationship",
               THO "subscriber-relationship"),
    /* STU3 Coverage.relationship's value set became R4's code system */
    FHIR_MOVED("http://hl7.org/fhir/policyholder-relationship",
               THO "subscriber-relationship"),
    FHIR_MOVED("http://hl7.org/fhir/coverage-class", THO "coverage-class"),
    { NULL, 0, NULL, 0 }
};

/* the others: system URLs outside HL7F */
static const fhir_moved_t  fhir_moved_elsewhere[] = {
    FHIR_MOVED("http://unitsofmeasure.org/", "http://unitsofmeasure.org"),
    { NULL, 0, NULL, 0 }
};


const char *
fhir_code_system_r4(fhir_conv_t *c, const char *url, size_t len,
    size_t *out_len)
{
    static const char  v2[] = "http://hl7.org/fhir/v2/";
    static const char  v3[] = "http://hl7.org/fhir/v3/";
    const fhir_moved_t  *t;
    const char         *prefix;
    char               *p;
    size_t              n;

    if (len < 20 || url[0] != 'h') {
        return NULL;
    }

    t = (memcmp(url, HL7F, sizeof(HL7F) - 1) == 0) ? fhir_moved_systems
                                                     : fhir_moved_elsewhere;

    for ( /* void */ ; t->from; t++) {
        if (t->from_len == len && memcmp(t->from, url, len) == 0) {
            *out_len = t->to_len;
            return t->to;
        }
    }

    /* http://hl7.org/fhir/v2/0203 -> .../CodeSystem/v2-0203, same for v3 */
    if (len > sizeof(v2) - 1 && memcmp(url, v2, sizeof(v2) - 1) == 0) {
        prefix = THO "v2-";
    } else if (len > sizeof(v3) - 1 && memcmp(url, v3, sizeof(v3) - 1) == 0) {
        prefix = THO "v3-";
    } else {
        return NULL;
    }

    n = len - (sizeof(v2) - 1);
    if (memchr(url + sizeof(v2) - 1, '/', n)) {
        return NULL;  /* a value set or other sub-path: not a code system */
    }

    p = fj_alloc(c->arena, strlen(prefix) + n);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, prefix, strlen(prefix));
    memcpy(p + strlen(prefix), url + sizeof(v2) - 1, n);
    *out_len = strlen(prefix) + n;
    return p;
}


/* helpers */

/*
 * The member named key and its twin "_key" (the primitive's extensions), in
 * one pass over the object's members; the first of each, as fj_get finds.
 */
static void
fhir_pair(fj_node_t *obj, const char *key, fj_node_t **m, fj_node_t **twin)
{
    size_t      len;
    fj_node_t  *e;

    *m = NULL;
    *twin = NULL;

    if (obj == NULL || obj->type != FJ_OBJECT) {
        return;
    }

    len = strlen(key);

    for (e = obj->child; e; e = e->next) {
        if (e->key_len == len) {
            if (*m == NULL && memcmp(e->key, key, len) == 0) {
                *m = e;
            }

        } else if (e->key_len == len + 1 && e->key[0] == '_') {
            if (*twin == NULL && memcmp(e->key + 1, key, len) == 0) {
                *twin = e;
            }
        }
    }
}


void
fhir_rename(fhir_conv_t *c, fj_node_t *obj, const char *from, const char *to)
{
    fj_node_t  *m, *tm;
    char       *twin;

    fhir_pair(obj, from, &m, &tm);

    if (m) {
        fj_rename(m, to);
    }

    m = tm;
    if (m) {
        twin = fj_alloc(c->arena, strlen(to) + 2);
        if (twin) {
            twin[0] = '_';
            strcpy(twin + 1, to);
            fj_rename(m, twin);
        }
    }
}


int
fhir_to_array(fhir_conv_t *c, fj_node_t *obj, const char *key)
{
    fj_node_t  *m, *tm;

    fhir_pair(obj, key, &m, &tm);

    return fhir_to_array_pair(c, m, tm);
}


int
fhir_to_array_pair(fhir_conv_t *c, fj_node_t *m, fj_node_t *tm)
{
    if (m && m->type != FJ_ARRAY && fj_wrap_array(c->arena, m) == NULL) {
        return fhir_oom(c);
    }

    m = tm;
    if (m && m->type != FJ_ARRAY && fj_wrap_array(c->arena, m) == NULL) {
        return fhir_oom(c);
    }

    return 0;
}


int
fhir_string_to_note(fhir_conv_t *c, fj_node_t *obj, const char *from,
    const char *to)
{
    fj_node_t  *m, *ext;

    /* most resources have neither the string nor its twin: one pass */
    fhir_pair(obj, from, &m, &ext);
    if (m == NULL && ext == NULL) {
        return 0;
    }

    return fhir_string_to_note_pair(c, obj, m, ext, fj_get(obj, to) != NULL,
                                    to);
}


int
fhir_string_to_note_pair(fhir_conv_t *c, fj_node_t *obj, fj_node_t *m,
    fj_node_t *ext, int has_to, const char *to)
{
    fj_node_t  *ann, *arr;

    if ((m == NULL && ext == NULL) || (m && m->type != FJ_STRING) || has_to) {
        return 0;
    }

    fj_unlink(obj, m);
    fj_unlink(obj, ext);

    FHIR_TRY(ann = fj_new(c->arena, FJ_OBJECT));

    if (m) {
        fj_append(ann, fj_member(m, "text"));
    }
    if (ext) {
        fj_append(ann, fj_member(ext, "_text"));
    }

    FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
    fj_append(arr, ann);
    fj_append(obj, fj_member(arr, to));
    return 0;
}


fj_node_t *
fhir_coding(fhir_conv_t *c, const char *system, const char *code,
    const char *display)
{
    fj_node_t  *coding, *m;

    coding = fj_new(c->arena, FJ_OBJECT);
    if (coding == NULL) {
        return NULL;
    }

    if (system) {
        if ((m = fj_new_str(c->arena, system)) == NULL) {
            return NULL;
        }
        fj_append(coding, fj_member(m, "system"));
    }

    if ((m = fj_new_str(c->arena, code)) == NULL) {
        return NULL;
    }
    fj_append(coding, fj_member(m, "code"));

    if (display) {
        if ((m = fj_new_str(c->arena, display)) == NULL) {
            return NULL;
        }
        fj_append(coding, fj_member(m, "display"));
    }

    return coding;
}


fj_node_t *
fhir_codeable(fhir_conv_t *c, const char *system, const char *code,
    size_t code_len)
{
    fj_node_t  *cc, *arr, *coding, *m;

    cc = fj_new(c->arena, FJ_OBJECT);
    arr = fj_new(c->arena, FJ_ARRAY);
    coding = fj_new(c->arena, FJ_OBJECT);
    if (cc == NULL || arr == NULL || coding == NULL) {
        return NULL;
    }

    if ((m = fj_new_str(c->arena, system)) == NULL) {
        return NULL;
    }
    fj_append(coding, fj_member(m, "system"));

    if ((m = fj_new_strn(c->arena, code, code_len)) == NULL) {
        return NULL;
    }
    fj_append(coding, fj_member(m, "code"));

    fj_append(arr, coding);
    fj_append(cc, fj_member(arr, "coding"));
    return cc;
}


fj_node_t *
fhir_dar(fhir_conv_t *c)
{
    fj_node_t  *obj, *arr, *ext, *m;

    obj = fj_new(c->arena, FJ_OBJECT);
    arr = fj_new(c->arena, FJ_ARRAY);
    ext = fj_new(c->arena, FJ_OBJECT);
    if (obj == NULL || arr == NULL || ext == NULL) {
        return NULL;
    }

    if ((m = fj_new_str(c->arena, FHIR_DAR_URL)) == NULL) {
        return NULL;
    }
    fj_append(ext, fj_member(m, "url"));

    if ((m = fj_new_str(c->arena, "unknown")) == NULL) {
        return NULL;
    }
    fj_append(ext, fj_member(m, "valueCode"));

    fj_append(arr, ext);
    fj_append(obj, fj_member(arr, "extension"));
    return obj;
}


int
fhir_require(fhir_conv_t *c, fj_node_t *obj, const char *key, int array)
{
    fj_node_t  *dar, *arr;

    if (fj_get(obj, key)) {
        return 0;
    }

    FHIR_TRY(dar = fhir_dar(c));

    if (array) {
        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        fj_append(arr, dar);
        dar = arr;
    }

    fj_append(obj, fj_member(dar, key));
    return 0;
}


int
fhir_require_primitive(fhir_conv_t *c, fj_node_t *obj, const char *key)
{
    fj_node_t  *dar, *m, *tm;
    char       *twin;

    fhir_pair(obj, key, &m, &tm);
    if (m || tm) {
        return 0;
    }

    FHIR_TRY(dar = fhir_dar(c));
    FHIR_TRY(twin = fj_alloc(c->arena, strlen(key) + 2));
    twin[0] = '_';
    strcpy(twin + 1, key);
    fj_append(obj, fj_member(dar, twin));
    return 0;
}


int
fhir_add_extension(fhir_conv_t *c, fj_node_t *obj, const char *url,
    const char *value_key, fj_node_t *value)
{
    fj_node_t  *arr, *ext, *m;

    arr = fj_get(obj, "extension");
    if (arr == NULL) {
        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        fj_append(obj, fj_member(arr, "extension"));
    }

    FHIR_TRY(ext = fj_new(c->arena, FJ_OBJECT));
    FHIR_TRY(m = fj_new_str(c->arena, url));
    fj_append(ext, fj_member(m, "url"));
    fj_append(ext, fj_member(value, value_key));
    fj_append(arr, ext);
    return 0;
}


int
fhir_to_extension(fhir_conv_t *c, fj_node_t *obj, const char *key,
    const char *url, const char *value_key)
{
    fj_node_t  *m;

    m = fj_detach(obj, key);
    if (m == NULL) {
        return 0;
    }

    return fhir_add_extension(c, obj, url, value_key, m);
}


const char *
fhir_map_code(const fj_node_t *n, const char *const *pairs)
{
    if (n == NULL || n->type != FJ_STRING) {
        return NULL;
    }

    for ( /* void */ ; pairs[0]; pairs += 2) {
        if (fj_str_is(n, pairs[0])) {
            return pairs[1];
        }
    }

    return NULL;
}


void
fhir_recode(fj_node_t *n, const char *const *pairs)
{
    const char  *to;

    to = fhir_map_code(n, pairs);
    if (to) {
        fj_set_raw(n, to);
    }
}


void
fhir_put_after(fj_node_t *obj, const char *after, fj_node_t *m)
{
    fj_insert_after(obj, after ? fj_get(obj, after) : NULL, m);
}
