/*
 * ngx_fhir core: per-type DSTU2 / STU3 -> R4 rules (MAPPING.md sections
 * 2-15).  The generic pass (fhir_convert.c) has already rewritten code
 * systems, references, DSTU2 HumanName.family and Timing.repeat; what is
 * left here is what differs for one resource type.  Where R4 / US Core needs
 * an element the source lacks, a data-absent-reason stands in; nothing
 * clinical is invented.  Where the gateway departs from HAPI, the comment
 * says "not HAPI" and names the MAPPING.md 0.1 row.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fhir_convert_int.h"


#define X1(path)  "http://hl7.org/fhir/1.0/StructureDefinition/extension-" path
#define X3(path)  "http://hl7.org/fhir/3.0/StructureDefinition/extension-" path
#define THO       "http://terminology.hl7.org/CodeSystem/"


/* a code member becomes a CodeableConcept of `system`, mapped by `map` */
static int
fhir_code_to_cc(fhir_conv_t *c, fj_node_t *obj, const char *key,
    const char *system, const char *const *map)
{
    fj_node_t   *m, *cc;
    const char  *to;

    m = fj_get(obj, key);
    if (m == NULL || m->type != FJ_STRING) {
        return 0;
    }

    if (map) {
        to = fhir_map_code(m, map);
        if (to == NULL) {
            /* an unknown code: kept in the source's words, as text */
            FHIR_TRY(cc = fj_new(c->arena, FJ_OBJECT));
            fj_append(cc, fj_member(fj_new_strn(c->arena, m->raw, m->raw_len),
                                    "text"));
            goto done;
        }
        if (to[0] == '\0') {
            fj_detach(obj, key);
            return 0;
        }
    } else {
        to = NULL;
    }

    FHIR_TRY(cc = to ? fhir_codeable(c, system, to, strlen(to))
                     : fhir_codeable(c, system, m->raw, m->raw_len));

done:

    cc->key = m->key;
    cc->key_len = m->key_len;
    cc->next = m->next;
    *m = *cc;
    return 0;
}


/* an integer written as a JSON string ("3") becomes the number 3 */
static void
fhir_string_to_number(fj_node_t *n)
{
    size_t  i;

    if (n == NULL || n->type != FJ_STRING || n->raw_len == 0
        || n->raw_len > 9 || (n->raw[0] == '0' && n->raw_len > 1))
    {
        return;
    }

    for (i = 0; i < n->raw_len; i++) {
        if (n->raw[i] < '0' || n->raw[i] > '9') {
            return;
        }
    }

    n->type = FJ_NUMBER;
}


/* ---- Patient (section 2) ---- */

int
fhir_conv_patient(fhir_conv_t *c, fj_node_t *r)
{
    static const char *const  link_type[] = { "replace", "replaced-by", NULL };
    static const char *const  argo[] = {
        "http://fhir.org/guides/argonaut/StructureDefinition/argo-race",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "http://fhir.org/guides/argonaut/StructureDefinition/argo-ethnicity",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
        "http://fhir.org/guides/argonaut/StructureDefinition/argo-birthsex",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
        NULL
    };
    fj_node_t   *m, *e, *animal;

    if (IS_DSTU2(c)) {
        fhir_rename(c, r, "careProvider", "generalPractitioner");
    }

    m = fj_get(r, "link");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            fhir_recode(fj_get(e, "type"), link_type);
        }
    }

    /* US Core: identifier.system 1..1, which the source may lack (the
     * Synthea samples' passport numbers): a data-absent-reason */
    m = fj_get(r, "identifier");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            if (e->type == FJ_OBJECT
                && fhir_require_primitive(c, e, "system") != 0)
            {
                return -1;
            }
        }
    }

    m = fj_get(r, "extension");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            fhir_recode(fj_get(e, "url"), argo);
        }
    }

    /* R4 has no animal element: the core patient-animal extension */
    animal = fj_detach(r, "animal");
    if (animal && animal->type == FJ_OBJECT) {
        fj_node_t  *arr, *sub, *next;

        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        for (e = animal->child; e; e = next) {
            next = e->next;
            FHIR_TRY(sub = fj_new(c->arena, FJ_OBJECT));
            fj_append(sub, fj_member(fj_new_strn(c->arena, e->key, e->key_len),
                                     "url"));
            fj_append(sub, fj_member(e, "valueCodeableConcept"));
            fj_append(arr, sub);
        }
        if (fhir_add_extension(c, r,
                "http://hl7.org/fhir/StructureDefinition/patient-animal",
                "extension", arr) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* ---- Observation (section 3) ---- */

/*
 * The members an Observation's conversion reads (a component's: the first
 * three), found in one pass over its members instead of a pass for each:
 * a searchset of vital signs is the Patients app's commonest read.
 */
typedef struct {
    fj_node_t  *interpretation, *_interpretation;
    fj_node_t  *reference_range;
    fj_node_t  *value_attachment;
    fj_node_t  *value_quantity;
    fj_node_t  *category, *_category;
    fj_node_t  *comments, *_comments;   /* DSTU2 comments, STU3 comment */
    fj_node_t  *note;
    fj_node_t  *component;
    fj_node_t  *related;
    fj_node_t  *code;
} fhir_obs_t;

/*
 * A filter of those keys by length and first byte, so that the other keys
 * (three in four of an Observation's) cost one test of a bit instead of
 * the switch on their length, an indirect jump seldom predicted; of the
 * others in the sample data only STU3's "context" passes it.
 */
#define FHIR_OBS_H(len, first)  (((len) + (first) * 2) & 63)
#define FHIR_OBS_B(lit)                                                       \
    ((uint64_t) 1 << FHIR_OBS_H(sizeof(lit) - 1, lit[0]))

#define FHIR_OBS_KEYS                                                         \
    (FHIR_OBS_B("code") | FHIR_OBS_B("note") | FHIR_OBS_B("related")          \
     | FHIR_OBS_B("comment") | FHIR_OBS_B("_comment")                         \
     | FHIR_OBS_B("category") | FHIR_OBS_B("comments")                       \
     | FHIR_OBS_B("_comments") | FHIR_OBS_B("component")                     \
     | FHIR_OBS_B("_category") | FHIR_OBS_B("interpretation")                \
     | FHIR_OBS_B("_interpretation") | FHIR_OBS_B("referenceRange")          \
     | FHIR_OBS_B("valueAttachment") | FHIR_OBS_B("valueQuantity"))


static void
fhir_obs_members(fhir_conv_t *c, fj_node_t *o, fhir_obs_t *f)
{
    fj_node_t  *m;

    memset(f, 0, sizeof(fhir_obs_t));

    /* keys are unique in a parsed object: the one found is fj_get's (the
     * switch tells FJ_KEY's length test to the compiler) */
    for (m = o->child; m; m = m->next) {

        if (m->key_len == 0
            || !((FHIR_OBS_KEYS
                  >> FHIR_OBS_H(m->key_len, (unsigned char) m->key[0])) & 1))
        {
            continue;
        }

        switch (m->key_len) {

        case 4:
            if (FJ_KEY(m, "code")) {
                f->code = m;
            } else if (FJ_KEY(m, "note")) {
                f->note = m;
            }
            break;

        case 7:
            if (FJ_KEY(m, "related")) {
                f->related = m;
            } else if (IS_STU3(c) && FJ_KEY(m, "comment")) {
                f->comments = m;
            }
            break;

        case 8:
            if (FJ_KEY(m, "category")) {
                f->category = m;
            } else if (IS_DSTU2(c) && FJ_KEY(m, "comments")) {
                f->comments = m;
            } else if (IS_STU3(c) && FJ_KEY(m, "_comment")) {
                f->_comments = m;
            }
            break;

        case 9:
            if (FJ_KEY(m, "component")) {
                f->component = m;
            } else if (FJ_KEY(m, "_category")) {
                f->_category = m;
            } else if (IS_DSTU2(c) && FJ_KEY(m, "_comments")) {
                f->_comments = m;
            }
            break;

        case 13:
            if (FJ_KEY(m, "valueQuantity")) {
                f->value_quantity = m;
            }
            break;

        case 14:
            if (FJ_KEY(m, "interpretation")) {
                f->interpretation = m;
            } else if (FJ_KEY(m, "referenceRange")) {
                f->reference_range = m;
            }
            break;

        case 15:
            if (FJ_KEY(m, "valueAttachment")) {
                f->value_attachment = m;
            } else if (FJ_KEY(m, "_interpretation")) {
                f->_interpretation = m;
            }
            break;
        }
    }
}


/*
 * US Core's vital signs require valueQuantity.unit (16.1), which a source
 * may leave out where it gives the UCUM code (the DSTU2 SMART samples, 892
 * times): the code is the unit, and is copied to it.  Nothing is made up:
 * without a UCUM code the unit stays absent.
 */
static int
fhir_ucum_unit(fhir_conv_t *c, fj_node_t *q)
{
    fj_node_t  *m, *value, *system, *code, *u;

    if (q == NULL || q->type != FJ_OBJECT) {
        return 0;
    }

    /* one pass over the Quantity's few members (a lookup for each cost
     * 0.6% more of a 100-entry vital-signs request's instructions) */
    value = NULL;
    system = NULL;
    code = NULL;

    for (m = q->child; m; m = m->next) {
        switch (m->key_len) {
        case 4:
            if (FJ_KEY(m, "unit")) {
                return 0;
            }
            if (FJ_KEY(m, "code")) {
                code = m;
            }
            break;
        case 5:
            if (FJ_KEY(m, "_unit")) {
                return 0;
            }
            if (FJ_KEY(m, "value")) {
                value = m;
            }
            break;
        case 6:
            if (FJ_KEY(m, "system")) {
                system = m;
            }
            break;
        }
    }

    if (code == NULL || code->type != FJ_STRING || code->raw_len == 0
        || !fj_str_is(system, "http://unitsofmeasure.org"))
    {
        return 0;
    }

    FHIR_TRY(u = fj_new_strn(c->arena, code->raw, code->raw_len));
    fj_insert_after(q, value, fj_member(u, "unit"));
    return 0;
}


static int
fhir_obs_common(fhir_conv_t *c, fj_node_t *o, fhir_obs_t *f)
{
    fj_node_t  *m, *e;

    if (fhir_ucum_unit(c, f->value_quantity) != 0) {
        return -1;
    }

    if (fhir_to_array_pair(c, f->interpretation, f->_interpretation) != 0) {
        return -1;
    }

    m = f->reference_range;
    if (m && m->type == FJ_ARRAY && IS_DSTU2(c)) {
        for (e = m->child; e; e = e->next) {
            fhir_rename(c, e, "meaning", "type");
        }
    }

    /* valueAttachment has no R4 type (HAPI throws, 0.1 #13): kept as an
     * extension so that nothing is lost */
    m = f->value_attachment;
    if (m) {
        fj_unlink(o, m);
        if (fhir_add_extension(c, o,
                IS_DSTU2(c) ? X1("Observation.valueAttachment")
                            : X3("Observation.valueAttachment"),
                "valueAttachment", m) != 0)
        {
            return -1;
        }
    }

    return 0;
}


int
fhir_conv_observation(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t   *m, *e, *next, *code, *coding, *has, *der, *target;
    fhir_obs_t   f, cf;
    int          bp = 0, panel = 0, smoking = 0;

    fhir_obs_members(c, r, &f);

    if (fhir_to_array_pair(c, f.category, f._category) != 0) {
        return -1;
    }

    if (IS_STU3(c)) {
        fhir_rename(c, r, "context", "encounter");
    }

    if (fhir_string_to_note_pair(c, r, f.comments, f._comments,
                                 f.note != NULL, "note") != 0
        || fhir_obs_common(c, r, &f) != 0)
    {
        return -1;
    }

    m = f.component;
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            if (e->type != FJ_OBJECT) {
                continue;
            }
            fhir_obs_members(c, e, &cf);
            if (fhir_obs_common(c, e, &cf) != 0) {
                return -1;
            }
        }
    }

    /* related[] -> hasMember[] / derivedFrom[]; other types have no home */
    m = f.related;
    if (m) {
        fj_unlink(r, m);
    }
    if (m && m->type == FJ_ARRAY) {
        has = NULL;
        der = NULL;
        for (e = m->child; e; e = next) {
            next = e->next;
            target = fj_get(e, "target");
            if (target == NULL) {
                continue;
            }
            target->key = NULL;
            target->key_len = 0;
            if (fj_str_is(fj_get(e, "type"), "derived-from")) {
                if (der == NULL) {
                    FHIR_TRY(der = fj_new(c->arena, FJ_ARRAY));
                    fj_append(r, fj_member(der, "derivedFrom"));
                }
                fj_append(der, target);
            } else if (fj_str_is(fj_get(e, "type"), "has-member")
                       || fj_get(e, "type") == NULL)
            {
                if (has == NULL) {
                    FHIR_TRY(has = fj_new(c->arena, FJ_ARRAY));
                    fj_append(r, fj_member(has, "hasMember"));
                }
                fj_append(has, target);
            }
        }
    }

    /* blood pressure: the R4 vital-signs panel code goes first (16.1) */
    code = f.code;
    coding = fj_get(code, "coding");
    if (coding && coding->type == FJ_ARRAY) {
        for (e = coding->child; e; e = e->next) {
            m = fj_get(e, "code");
            if (fj_str_is(m, "55284-4")) {
                bp = 1;
            } else if (fj_str_is(m, "85354-9")) {
                panel = 1;
            } else if (fj_str_is(m, "72166-2")) {
                smoking = 1;
            }
        }
        if (bp && !panel) {
            FHIR_TRY(e = fhir_coding(c, "http://loinc.org", "85354-9",
                         "Blood pressure panel with all children optional"));
            fj_insert_after(coding, NULL, e);
        }
    }

    /* US Core smoking status: issued 1..1, which the source may lack */
    if (smoking && fhir_require_primitive(c, r, "issued") != 0) {
        return -1;
    }

    return 0;
}


/* ---- Condition (section 4) ---- */

int
fhir_conv_condition(fhir_conv_t *c, fj_node_t *r)
{
    static const char *const  ver[] = {
        "provisional", "provisional", "differential", "differential",
        "confirmed", "confirmed", "refuted", "refuted",
        "entered-in-error", "entered-in-error",
        /* not HAPI (0.1 #6): R4's unconfirmed has the same definition */
        "unknown", "unconfirmed", NULL
    };
    static const char *const  clinical[] = {
        "active", "active", "relapse", "relapse", "recurrence", "recurrence",
        "remission", "remission", "resolved", "resolved",
        "inactive", "inactive", NULL
    };
    static const char *const  category[] = {
        "diagnosis", "encounter-diagnosis", "problem", "problem-list-item",
        "encounter-diagnosis", NULL, "problem-list-item", NULL,
        "health-concern", NULL, NULL
    };
    fj_node_t   *m, *e, *coding, *cd, *sys;
    const char  *to;

    if (IS_DSTU2(c)) {
        fhir_rename(c, r, "patient", "subject");
        fhir_rename(c, r, "dateRecorded", "recordedDate");
        fhir_rename(c, r, "onsetQuantity", "onsetAge");
        fhir_rename(c, r, "abatementQuantity", "abatementAge");
        /* not HAPI (0.1 #6): notes and abatementBoolean are kept */
        if (fhir_string_to_note(c, r, "notes", "note") != 0
            || fhir_to_extension(c, r, "abatementBoolean",
                   X1("Condition.abatementBoolean"), "valueBoolean") != 0)
        {
            return -1;
        }

    } else {
        fhir_rename(c, r, "context", "encounter");
        fhir_rename(c, r, "assertedDate", "recordedDate");
        if (fhir_to_extension(c, r, "abatementBoolean",
                X3("Condition.abatementBoolean"), "valueBoolean") != 0)
        {
            return -1;
        }
    }

    /* written with the R4 systems, not HAPI's old DSTU2 ones (0.1 #5) */
    if (fhir_code_to_cc(c, r, "clinicalStatus", THO "condition-clinical",
                        clinical) != 0
        || fhir_code_to_cc(c, r, "verificationStatus",
                           THO "condition-ver-status", ver) != 0
        || fhir_to_array(c, r, "category") != 0
        || fhir_to_array(c, r, "stage") != 0)
    {
        return -1;
    }

    /* categories: DSTU2 / Argonaut codes get their R4 coding first */
    m = fj_get(r, "category");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            coding = fj_get(e, "coding");
            if (coding == NULL || coding->type != FJ_ARRAY) {
                continue;
            }
            for (cd = coding->child; cd; cd = cd->next) {
                sys = fj_get(cd, "system");
                to = fhir_map_code(fj_get(cd, "code"), category);
                if (to && sys
                    && (fj_str_is(sys, THO "condition-category")
                        || fj_str_is(sys,
                               "http://argonaut.hl7.org/extension-codes")))
                {
                    FHIR_TRY(cd = fhir_coding(c, THO "condition-category", to,
                                              NULL));
                    fj_insert_after(coding, NULL, cd);
                    break;
                }
            }
        }
    }

    m = fj_get(r, "evidence");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            if (fhir_to_array(c, e, "code") != 0) {
                return -1;
            }
        }
    }

    /* US Core: category is mandatory; never guessed */
    return fhir_require(c, r, "category", 1);
}


/* ---- Encounter (section 5) ---- */

static const char *const  fhir_encounter_class[] = {
    "inpatient", "IMP", "outpatient", "AMB", "ambulatory", "AMB",
    "emergency", "EMER", "home", "HH", "field", "FLD", "daytime", "SS",
    "virtual", "VR", NULL
};


static int
fhir_encounter_diagnosis(fhir_conv_t *c, fj_node_t *r, fj_node_t *list,
    const char *use)
{
    fj_node_t  *diag, *e, *next, *d;

    if (list == NULL || list->type != FJ_ARRAY) {
        return 0;
    }

    diag = fj_get(r, "diagnosis");
    if (diag == NULL) {
        FHIR_TRY(diag = fj_new(c->arena, FJ_ARRAY));
        fj_append(r, fj_member(diag, "diagnosis"));
    }

    for (e = list->child; e; e = next) {
        next = e->next;
        FHIR_TRY(d = fj_new(c->arena, FJ_OBJECT));
        fj_append(d, fj_member(e, "condition"));
        FHIR_TRY(e = fhir_codeable(c, THO "diagnosis-role", use, strlen(use)));
        fj_append(d, fj_member(e, "use"));
        fj_append(diag, d);
    }

    return 0;
}


int
fhir_conv_encounter(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t   *m, *e, *cls, *code, *hosp;
    const char  *to;

    fhir_rename(c, r, "patient", "subject");
    fhir_rename(c, r, "incomingReferral", "basedOn");
    fhir_rename(c, r, "reason", "reasonCode");

    if (fhir_to_array(c, r, "appointment") != 0
        || fhir_to_array(c, r, "reasonCode") != 0)
    {
        return -1;
    }

    cls = fj_get(r, "class");

    if (IS_DSTU2(c)) {
        /* not HAPI (0.1 #7): the R4 v3-ActCode URL; "other" -> absent */
        if (cls && cls->type == FJ_STRING) {
            to = fhir_map_code(cls, fhir_encounter_class);
            fj_detach(r, "class");
            if (to) {
                FHIR_TRY(e = fhir_coding(c, THO "v3-ActCode", to, NULL));
                fhir_put_after(r, "status", fj_member(e, "class"));
            }
        }

        /* not HAPI (0.1 #8): kept in their R4 homes */
        fhir_rename(c, r, "indication", "reasonReference");
        hosp = fj_get(r, "hospitalization");
        if (hosp) {
            if (fhir_encounter_diagnosis(c, r,
                    fj_detach(hosp, "admittingDiagnosis"), "AD") != 0
                || fhir_encounter_diagnosis(c, r,
                    fj_detach(hosp, "dischargeDiagnosis"), "DD") != 0)
            {
                return -1;
            }
        }

    } else {
        /* a system-less DSTU2-style code gets the v3-ActCode coding */
        code = fj_get(cls, "code");
        if (cls && fj_get(cls, "system") == NULL && code) {
            to = fhir_map_code(code, fhir_encounter_class);
            if (to) {
                FHIR_TRY(e = fhir_coding(c, THO "v3-ActCode", to,
                                         NULL));
                e->key = cls->key;
                e->key_len = cls->key_len;
                e->next = cls->next;
                *cls = *e;
            }
        }

        m = fj_get(r, "diagnosis");
        if (m && m->type == FJ_ARRAY) {
            for (e = m->child; e; e = e->next) {
                fhir_rename(c, e, "role", "use");
            }
        }
    }

    /* US Core: type 1..*, which the source may lack (16.1) */
    if (fhir_require(c, r, "type", 1) != 0) {
        return -1;
    }

    return fhir_require(c, r, "class", 0);
}


/* ---- AllergyIntolerance (section 6) ---- */

int
fhir_conv_allergy(fhir_conv_t *c, fj_node_t *r)
{
    static const char *const  criticality[] = {
        "CRITL", "low", "CRITH", "high", "CRITU", "unable-to-assess", NULL
    };
    /* DSTU2 status -> clinical, verification (6.1, gateway column) */
    static const char *const  split[] = {
        "active", "active", "",
        "unconfirmed", "active", "unconfirmed",
        "confirmed", "active", "confirmed",
        "inactive", "inactive", "",
        "resolved", "resolved", "",
        "refuted", "inactive", "refuted",
        "entered-in-error", "", "entered-in-error",
        NULL
    };
    static const char *const  category[] = {
        "food", "food", "medication", "medication",
        "environment", "environment", "biologic", "biologic", NULL
    };
    fj_node_t   *m, *e, *cat, *status, *cc;
    const char  *const *s;

    if (IS_DSTU2(c)) {
        fhir_rename(c, r, "substance", "code");
        fhir_rename(c, r, "onset", "onsetDateTime");
        fhir_rename(c, r, "reporter", "asserter");
        fhir_rename(c, r, "lastOccurence", "lastOccurrence");

        status = fj_detach(r, "status");
        if (status && status->type == FJ_STRING) {
            for (s = split; *s; s += 3) {
                if (!fj_str_is(status, s[0])) {
                    continue;
                }
                if (s[1][0]) {
                    FHIR_TRY(cc = fhir_codeable(c,
                                 THO "allergyintolerance-clinical", s[1],
                                 strlen(s[1])));
                    fj_insert_after(r, fj_get(r, "identifier"),
                                    fj_member(cc, "clinicalStatus"));
                }
                if (s[2][0]) {
                    FHIR_TRY(cc = fhir_codeable(c,
                                 THO "allergyintolerance-verification", s[2],
                                 strlen(s[2])));
                    fj_insert_after(r, fj_get(r, "clinicalStatus")
                                       ? fj_get(r, "clinicalStatus")
                                       : fj_get(r, "identifier"),
                                    fj_member(cc, "verificationStatus"));
                }
                break;
            }
        }

        m = fj_get(r, "reaction");
        if (m && m->type == FJ_ARRAY) {
            for (e = m->child; e; e = e->next) {
                if (fhir_to_extension(c, e, "certainty",
                        X1("AllergyIntolerance.reaction.certainty"),
                        "valueCode") != 0
                    || fhir_to_array(c, e, "note") != 0)
                {
                    return -1;
                }
            }
        }

    } else {
        fhir_rename(c, r, "assertedDate", "recordedDate");
        if (fhir_code_to_cc(c, r, "clinicalStatus",
                            THO "allergyintolerance-clinical", NULL) != 0
            || fhir_code_to_cc(c, r, "verificationStatus",
                               THO "allergyintolerance-verification", NULL)
               != 0)
        {
            return -1;
        }
    }

    /* category: "other" has no R4 code (HAPI throws, 0.1 #9) */
    if (fhir_to_array(c, r, "category") != 0) {
        return -1;
    }
    cat = fj_get(r, "category");
    if (cat && cat->type == FJ_ARRAY) {
        for (e = cat->child; e; e = e->next) {
            if (e->type == FJ_STRING && fhir_map_code(e, category) == NULL) {
                fj_detach(r, "category");
                if (fhir_add_extension(c, r,
                        IS_DSTU2(c) ? X1("AllergyIntolerance.category")
                                    : X3("AllergyIntolerance.category"),
                        "valueCode", fj_new_strn(c->arena, e->raw,
                                                 e->raw_len)) != 0)
                {
                    return -1;
                }
                break;
            }
        }
    }

    fhir_recode(fj_get(r, "criticality"), criticality);

    if (fhir_to_array(c, r, "note") != 0) {
        return -1;
    }

    return 0;
}


/* ---- Dosage (1.5, 7.2, 8.1) ---- */

static int
fhir_dose_and_rate(fhir_conv_t *c, fj_node_t *d, const char *const *dose,
    const char *const *rate)
{
    fj_node_t  *dr = NULL, *arr, *m;
    int         i;

    for (i = 0; dose[i]; i += 2) {
        m = fj_detach(d, dose[i]);
        if (m) {
            if (dr == NULL) {
                FHIR_TRY(dr = fj_new(c->arena, FJ_OBJECT));
            }
            fj_append(dr, fj_member(m, dose[i + 1]));
        }
    }

    for (i = 0; rate[i]; i += 2) {
        m = fj_detach(d, rate[i]);
        if (m) {
            if (dr == NULL) {
                FHIR_TRY(dr = fj_new(c->arena, FJ_OBJECT));
            }
            fj_append(dr, fj_member(m, rate[i + 1]));
        }
    }

    if (dr) {
        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        fj_append(arr, dr);
        fj_append(d, fj_member(arr, "doseAndRate"));
    }

    return 0;
}


static int
fhir_dosage_list(fhir_conv_t *c, fj_node_t *list, int statement)
{
    static const char *const  dose2[] = {
        "doseQuantity", "doseQuantity", "doseRange", "doseRange", NULL
    };
    static const char *const  qty2[] = {
        "quantityQuantity", "doseQuantity", "quantityRange", "doseRange", NULL
    };
    static const char *const  rate2[] = {
        "rateRatio", "rateRatio", "rateRange", "rateRange",
        "rateQuantity", "rateQuantity", NULL
    };
    static const char *const  dose3[] = {
        "doseQuantity", "doseQuantity", "doseRange", "doseRange",
        "doseSimpleQuantity", "doseQuantity", NULL
    };
    static const char *const  rate3[] = {
        "rateRatio", "rateRatio", "rateRange", "rateRange",
        "rateSimpleQuantity", "rateQuantity", "rateQuantity", "rateQuantity",
        NULL
    };
    fj_node_t  *d;

    if (list == NULL || list->type != FJ_ARRAY) {
        return 0;
    }

    for (d = list->child; d; d = d->next) {
        if (d->type != FJ_OBJECT) {
            continue;
        }

        if (IS_DSTU2(c)) {
            fhir_rename(c, d, "additionalInstructions",
                        "additionalInstruction");
            if (fhir_to_array(c, d, "additionalInstruction") != 0) {
                return -1;
            }
            fhir_rename(c, d, "siteCodeableConcept", "site");
            if (fhir_to_extension(c, d, "siteReference",
                    X1("Dosage.siteReference"), "valueReference") != 0
                || fhir_dose_and_rate(c, d, statement ? qty2 : dose2, rate2)
                   != 0)
            {
                return -1;
            }

        } else if (fhir_dose_and_rate(c, d, dose3, rate3) != 0) {
            return -1;
        }
    }

    return 0;
}


/* ---- MedicationOrder (DSTU2) -> MedicationRequest (7.1) ---- */

int
fhir_conv_medication_order(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t  *m, *sub, *type;

    FHIR_TRY(m = fj_new_str(c->arena, "order"));
    fhir_put_after(r, "status", fj_member(m, "intent"));

    if (fj_get(r, "status") == NULL) {
        FHIR_TRY(m = fj_new_str(c->arena, "unknown"));
        fhir_put_after(r, "identifier", fj_member(m, "status"));
    }

    fhir_rename(c, r, "dateWritten", "authoredOn");
    fhir_rename(c, r, "patient", "subject");
    fhir_rename(c, r, "prescriber", "requester");
    fhir_rename(c, r, "reasonCodeableConcept", "reasonCode");
    if (fhir_to_array(c, r, "reasonCode") != 0
        || fhir_to_array(c, r, "reasonReference") != 0
        || fhir_string_to_note(c, r, "note", "note") != 0)
    {
        return -1;
    }

    /* not HAPI (0.1 #10): encounter kept; the rest as extensions */
    if (fhir_to_extension(c, r, "dateEnded", X1("MedicationOrder.dateEnded"),
                          "valueDateTime") != 0
        || fhir_to_extension(c, r, "reasonEnded",
               X1("MedicationOrder.reasonEnded"), "valueCodeableConcept") != 0
        || fhir_dosage_list(c, fj_get(r, "dosageInstruction"), 0) != 0)
    {
        return -1;
    }

    m = fj_get(r, "dispenseRequest");
    if (m) {
        fhir_string_to_number(fj_get(m, "numberOfRepeatsAllowed"));
        fj_detach(m, "medicationCodeableConcept");
        fj_detach(m, "medicationReference");
    }

    sub = fj_get(r, "substitution");
    if (sub) {
        type = fj_detach(sub, "type");
        if (type) {
            fj_insert_after(sub, NULL, fj_member(type, "allowedCodeableConcept"));
        } else if (fhir_require(c, sub, "allowedCodeableConcept", 0) != 0) {
            return -1;
        }
    }

    if (fhir_require(c, r, "requester", 0) != 0
        || fhir_require_primitive(c, r, "authoredOn") != 0)
    {
        return -1;
    }

    return 0;
}


/* ---- MedicationRequest (STU3, 7.4) ---- */

int
fhir_conv_medication_request(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t  *m, *e, *agent, *obo, *req, *sub, *allowed;

    if (IS_DSTU2(c)) {
        /* DSTU2 had no MedicationRequest: forwarded as it is */
        c->unmapped++;
        return 0;
    }

    m = fj_detach(r, "definition");
    if (m && m->type == FJ_ARRAY) {
        fj_node_t  *arr, *ref;

        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        for (e = m->child; e; e = e->next) {
            ref = fj_get_str(e, "reference");
            if (ref) {
                fj_append(arr, fj_new_strn(c->arena, ref->raw, ref->raw_len));
            }
        }
        if (arr->child) {
            fj_append(r, fj_member(arr, "instantiatesCanonical"));
        }
    }

    if (fhir_to_array(c, r, "category") != 0) {
        return -1;
    }
    fhir_rename(c, r, "context", "encounter");

    req = fj_get(r, "requester");
    if (req && req->type == FJ_OBJECT) {
        agent = fj_get(req, "agent");
        obo = fj_get(req, "onBehalfOf");
        if (agent) {
            agent->key = req->key;
            agent->key_len = req->key_len;
            agent->next = req->next;
            *req = *agent;
            if (obo && fhir_add_extension(c, req,
                    X3("MedicationRequest.requester.onBehalfOf"),
                    "valueReference", obo) != 0)
            {
                return -1;
            }
        } else {
            fj_detach(r, "requester");
        }
    }

    if (fhir_dosage_list(c, fj_get(r, "dosageInstruction"), 0) != 0) {
        return -1;
    }

    sub = fj_get(r, "substitution");
    if (sub) {
        allowed = fj_get(sub, "allowed");
        if (allowed) {
            fj_rename(allowed, "allowedBoolean");
        } else if (fhir_require(c, sub, "allowedBoolean", 0) != 0) {
            return -1;
        }
    }

    if (fhir_require_primitive(c, r, "status") != 0
        || fhir_require(c, r, "requester", 0) != 0
        || fhir_require_primitive(c, r, "authoredOn") != 0)
    {
        return -1;
    }

    return 0;
}


/* ---- MedicationStatement (section 8) ---- */

int
fhir_conv_medication_statement(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t  *m, *status, *taken;

    status = fj_get(r, "status");

    if (IS_DSTU2(c)) {
        fhir_rename(c, r, "patient", "subject");
        fhir_rename(c, r, "supportingInformation", "derivedFrom");
        fhir_rename(c, r, "reasonNotTaken", "statusReason");
        fhir_rename(c, r, "reasonForUseCodeableConcept", "reasonCode");
        fhir_rename(c, r, "reasonForUseReference", "reasonReference");
        if (fhir_to_array(c, r, "reasonCode") != 0
            || fhir_to_array(c, r, "reasonReference") != 0
            || fhir_string_to_note(c, r, "note", "note") != 0)
        {
            return -1;
        }

        /* not HAPI (0.1 #11): not taken changes the meaning, so it stays */
        m = fj_detach(r, "wasNotTaken");
        if (m && m->type == FJ_TRUE && status) {
            status->raw = "not-taken";
            status->raw_len = 9;
        }

        if (fhir_dosage_list(c, fj_get(r, "dosage"), 1) != 0) {
            return -1;
        }

    } else {
        taken = fj_detach(r, "taken");
        if (taken && taken->type == FJ_STRING) {
            if (fhir_add_extension(c, r,
                    X3("MedicationStatement.taken"), "valueCode",
                    fj_new_strn(c->arena, taken->raw, taken->raw_len)) != 0)
            {
                return -1;
            }
            if (status && fj_str_is(taken, "n")) {
                status->raw = "not-taken";
                status->raw_len = 9;
            } else if (status && fj_str_is(taken, "unk")) {
                status->raw = "unknown";
                status->raw_len = 7;
            }
        }
        fhir_rename(c, r, "reasonNotTaken", "statusReason");

        if (fhir_dosage_list(c, fj_get(r, "dosage"), 0) != 0) {
            return -1;
        }
    }

    return fhir_require_primitive(c, r, "status");
}


/* ---- Coverage (sections 9, 10) ---- */

static int
fhir_coverage_class(fhir_conv_t *c, fj_node_t *r, fj_node_t *value,
    fj_node_t *name, const char *code)
{
    fj_node_t  *arr, *cl, *m;

    if (value == NULL) {
        return 0;   /* class.value is 1..1: a display alone has no home */
    }

    arr = fj_get(r, "class");
    if (arr == NULL) {
        FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
        fj_append(r, fj_member(arr, "class"));
    }

    FHIR_TRY(cl = fj_new(c->arena, FJ_OBJECT));
    FHIR_TRY(m = fhir_codeable(c, THO "coverage-class", code, strlen(code)));
    fj_append(cl, fj_member(m, "type"));
    fj_append(cl, fj_member(value, "value"));
    if (name) {
        fj_append(cl, fj_member(name, "name"));
    }
    fj_append(arr, cl);
    return 0;
}


/* obj[key] (an Identifier) becomes its value string, or goes */
static void
fhir_identifier_to_string(fj_node_t *obj, const char *key)
{
    fj_node_t  *m, *v;

    m = fj_get(obj, key);
    if (m == NULL || m->type != FJ_OBJECT) {
        return;
    }

    v = fj_get_str(m, "value");
    if (v == NULL) {
        fj_detach(obj, key);
        return;
    }

    m->type = FJ_STRING;
    m->raw = v->raw;
    m->raw_len = v->raw_len;
    m->child = NULL;
}


int
fhir_conv_coverage(fhir_conv_t *c, fj_node_t *r)
{
    /* lower-case R4 codes, not HAPI's subGroup / subPlan / subClass */
    static const char *const  groups[] = {
        "group", "groupDisplay", "group",
        "subGroup", "subGroupDisplay", "subgroup",
        "plan", "planDisplay", "plan",
        "subPlan", "subPlanDisplay", "subplan",
        "class", "classDisplay", "class",
        "subClass", "subClassDisplay", "subclass",
        NULL
    };
    fj_node_t         *g, *m, *v, *arr, *sub;
    const char *const *s;

    if (IS_STU3(c)) {
        g = fj_detach(r, "grouping");
        if (g) {
            for (s = groups; *s; s += 3) {
                if (fhir_coverage_class(c, r, fj_detach(g, s[0]),
                                        fj_detach(g, s[1]), s[2]) != 0)
                {
                    return -1;
                }
            }
        }
        if (fhir_coverage_class(c, r, fj_detach(r, "sequence"), NULL,
                                "sequence") != 0)
        {
            return -1;
        }

    } else {
        /* DSTU2: no HAPI converter (0.1 #1); MAPPING.md section 10 */
        m = fj_detach(r, "issuer");
        if (m) {
            FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
            fj_append(arr, m);
            fj_append(r, fj_member(arr, "payor"));
        }

        m = fj_get(r, "type");
        if (m && m->type == FJ_OBJECT) {
            FHIR_TRY(arr = fj_new(c->arena, FJ_ARRAY));
            FHIR_TRY(v = fj_new(c->arena, FJ_OBJECT));
            *v = *m;
            v->key = NULL;
            v->key_len = 0;
            v->next = NULL;
            fj_append(arr, v);
            m->type = FJ_OBJECT;
            m->child = NULL;
            fj_append(m, fj_member(arr, "coding"));
        }

        /* DSTU2 Identifiers that R4 holds as plain strings */
        fhir_identifier_to_string(r, "subscriberId");
        fhir_identifier_to_string(r, "network");

        m = fj_get(r, "dependent");
        if (m && m->type == FJ_NUMBER) {
            m->type = FJ_STRING;
        }

        fhir_rename(c, r, "sequence", "order");

        m = fj_detach(r, "bin");
        if (m) {
            v = fj_get_str(m, "value");
            if (v && fhir_coverage_class(c, r, v, NULL, "rxbin") != 0) {
                return -1;
            }
        }

        if (fhir_coverage_class(c, r, fj_detach(r, "group"), NULL, "group")
            || fhir_coverage_class(c, r, fj_detach(r, "plan"), NULL, "plan")
            || fhir_coverage_class(c, r, fj_detach(r, "subPlan"), NULL,
                                   "subplan"))
        {
            return -1;
        }

        sub = fj_get(r, "subscriber");
        if (sub && fj_get(r, "beneficiary") == NULL
            && fj_get(r, "dependent") == NULL)
        {
            FHIR_TRY(v = fj_new(c->arena, FJ_OBJECT));
            *v = *sub;
            v->next = NULL;
            fj_append(r, fj_member(v, "beneficiary"));
        }
    }

    if (fhir_require_primitive(c, r, "status") != 0
        || fhir_require(c, r, "beneficiary", 0) != 0
        || fhir_require(c, r, "payor", 1) != 0)
    {
        return -1;
    }

    return 0;
}


/* ---- Location, Practitioner, OperationOutcome (11, 12, 14) ---- */

int
fhir_conv_location(fhir_conv_t *c, fj_node_t *r)
{
    return fhir_to_array(c, r, "type");
}


int
fhir_conv_practitioner(fhir_conv_t *c, fj_node_t *r)
{
    if (IS_DSTU2(c)) {
        if (fhir_to_array(c, r, "name") != 0) {
            return -1;
        }
        /* R4 models roles as PractitionerRole resources, which HAPI does
         * not create and the gateway does not invent ids for: dropped
         * (docs/conversion.md) */
        fj_detach(r, "practitionerRole");
    }

    return 0;
}


int
fhir_conv_operation_outcome(fhir_conv_t *c, fj_node_t *r)
{
    (void) c;
    (void) r;
    return 0;
}


/* ---- Conformance / CapabilityStatement (section 15) ---- */

static int
fhir_reference_to_canonical(fj_node_t *m)
{
    fj_node_t  *ref;

    if (m == NULL || m->type != FJ_OBJECT) {
        return 0;
    }

    ref = fj_get_str(m, "reference");
    if (ref == NULL) {
        return 0;
    }

    m->type = FJ_STRING;
    m->raw = ref->raw;
    m->raw_len = ref->raw_len;
    m->child = NULL;
    return 0;
}


int
fhir_conv_capability(fhir_conv_t *c, fj_node_t *r)
{
    fj_node_t   *m, *e, *rest, *res, *sp, *op, *sec, *inter, *mode;
    const char  *to;

    /* the gateway serves R4 */
    m = fj_get(r, "fhirVersion");
    if (m) {
        m->type = FJ_STRING;
        m->raw = "4.0.1";
        m->raw_len = 5;
    } else {
        FHIR_TRY(m = fj_new_str(c->arena, "4.0.1"));
        fj_append(r, fj_member(m, "fhirVersion"));
    }

    fhir_rename(c, r, "requirements", "purpose");

    if (fhir_to_extension(c, r, "acceptUnknown",
            X3("CapabilityStatement.acceptUnknown"), "valueCode") != 0)
    {
        return -1;
    }

    fj_detach(r, "profile");

    m = fj_get(r, "format");
    if (m && m->type == FJ_ARRAY) {
        for (e = m->child; e; e = e->next) {
            if (fj_str_is(e, "application/json+fhir")) {
                e->raw = "application/fhir+json";
                e->raw_len = 21;
            } else if (fj_str_is(e, "application/xml+fhir")) {
                e->raw = "application/fhir+xml";
                e->raw_len = 20;
            }
        }
    }

    if (fj_get(r, "status") == NULL) {
        FHIR_TRY(m = fj_new_str(c->arena, "active"));
        fj_append(r, fj_member(m, "status"));
    }
    if (fj_get(r, "kind") == NULL) {
        FHIR_TRY(m = fj_new_str(c->arena, "instance"));
        fj_append(r, fj_member(m, "kind"));
    }

    /* the statement describes the gateway: its base, its token endpoint */
    if (c->public_url) {
        m = fj_get(r, "implementation");
        if (m == NULL) {
            FHIR_TRY(m = fj_new(c->arena, FJ_OBJECT));
            fj_append(m, fj_member(fj_new_str(c->arena, "ngx_fhir gateway"),
                                   "description"));
            fj_append(r, fj_member(m, "implementation"));
        }
        fj_detach(m, "url");
        fj_append(m, fj_member(fj_new_str(c->arena, c->public_url), "url"));
    }

    rest = fj_get(r, "rest");
    if (rest == NULL || rest->type != FJ_ARRAY) {
        return 0;
    }

    for (e = rest->child; e; e = e->next) {

        sec = fj_get(e, "security");
        if (sec) {
            fj_detach(sec, "certificate");
        }

        if (c->token_url) {
            fj_node_t  *ext, *x, *uris, *tok;

            if (sec == NULL) {
                FHIR_TRY(sec = fj_new(c->arena, FJ_OBJECT));
                fj_append(e, fj_member(sec, "security"));
            }

            /* the partner's own OAuth endpoints must not leak */
            (void) fj_detach(sec, "extension");
            FHIR_TRY(ext = fj_new(c->arena, FJ_ARRAY));
            FHIR_TRY(uris = fj_new(c->arena, FJ_OBJECT));
            FHIR_TRY(x = fj_new(c->arena, FJ_ARRAY));
            FHIR_TRY(tok = fj_new(c->arena, FJ_OBJECT));
            fj_append(tok, fj_member(fj_new_str(c->arena, "token"), "url"));
            fj_append(tok, fj_member(fj_new_str(c->arena, c->token_url),
                                     "valueUri"));
            fj_append(x, tok);
            fj_append(uris, fj_member(fj_new_str(c->arena,
                "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                "oauth-uris"), "url"));
            fj_append(uris, fj_member(x, "extension"));
            fj_append(ext, uris);
            fj_insert_after(sec, NULL, fj_member(ext, "extension"));
        }

        mode = fj_detach(e, "transactionMode");
        if (mode && (fj_str_is(mode, "batch") || fj_str_is(mode, "both"))) {
            inter = fj_get(e, "interaction");
            if (inter == NULL) {
                FHIR_TRY(inter = fj_new(c->arena, FJ_ARRAY));
                fj_append(e, fj_member(inter, "interaction"));
            }
            FHIR_TRY(op = fj_new(c->arena, FJ_OBJECT));
            fj_append(op, fj_member(fj_new_str(c->arena, "batch"), "code"));
            fj_append(inter, op);
        }

        res = fj_get(e, "resource");
        if (res && res->type == FJ_ARRAY) {
            fj_node_t  *rr;

            for (rr = res->child; rr; rr = rr->next) {
                m = fj_get_str(rr, "type");
                if (m) {
                    to = fhir_r4_type_name(c->from, m->raw, m->raw_len);
                    if (to) {
                        fj_set_raw(m, to);
                    }
                }
                fhir_reference_to_canonical(fj_get(rr, "profile"));
                sp = fj_get(rr, "searchParam");
                if (sp && sp->type == FJ_ARRAY) {
                    fj_node_t  *p;

                    for (p = sp->child; p; p = p->next) {
                        fj_detach(p, "target");
                        fj_detach(p, "modifier");
                        fj_detach(p, "chain");
                    }
                }
            }
        }

        op = fj_get(e, "operation");
        if (op && op->type == FJ_ARRAY) {
            fj_node_t  *o;

            for (o = op->child; o; o = o->next) {
                fhir_reference_to_canonical(fj_get(o, "definition"));
            }
        }

        sp = fj_get(e, "searchParam");
        if (sp && sp->type == FJ_ARRAY) {
            fj_node_t  *p;

            for (p = sp->child; p; p = p->next) {
                fj_detach(p, "target");
                fj_detach(p, "modifier");
                fj_detach(p, "chain");
            }
        }
    }

    return 0;
}
