/*
 * Unit tests of the ngx_fhir core (no nginx): the JSON tree, the streaming
 * driver under every chunking, the per-type conversions (checked by hand
 * against MAPPING.md), request translation and URL rewriting.
 * Ends with the line "N passed, N failed".
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_stream.h"
#include "fhir_request.h"
#include "fhir_oo.h"
#include "fhir_audit.h"
#include "fhir_convert_int.h"

static int  passed, failed;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) { passed++; }                                               \
        else { failed++; printf("not ok: "); printf(__VA_ARGS__);             \
               printf("  (%s:%d)\n", __FILE__, __LINE__); }                   \
    } while (0)


/* converts text in chunks of `chunk` bytes (0: one chunk, -1: random) */
static int
convert(const char *text, size_t len, fhir_version_t v, long chunk,
    fhir_buf_t *out, char *err, size_t errlen, size_t max)
{
    fhir_conv_t     conv;
    fj_arena_t      arena = { NULL, 0 };
    fhir_stream_t  *s;
    size_t          off, n;
    int             rc = 0;

    memset(&conv, 0, sizeof(conv));
    conv.from = v;
    conv.arena = &arena;
    conv.partner_base = "http://partner.example/fhir";
    conv.partner_base_len = strlen(conv.partner_base);
    conv.public_base = "https://gw.example/fhir/p";
    conv.public_base_len = strlen(conv.public_base);

    s = fhir_stream_create(&conv, max ? max : 64 * 1024 * 1024, 64);
    out->len = 0;

    for (off = 0; off < len && rc == 0; off += n) {
        n = chunk == 0 ? len : chunk < 0 ? (size_t) (rand() % 4096) + 1
                                          : (size_t) chunk;
        if (n > len - off) {
            n = len - off;
        }
        rc = fhir_stream_feed(s, text + off, n, out);
    }

    if (rc == 0) {
        rc = fhir_stream_finish(s, out);
    }

    if (rc != 0 && err) {
        snprintf(err, errlen, "%s", fhir_stream_error(s));
    }

    fhir_stream_destroy(s);
    fj_arena_free(&arena);
    return rc;
}


static char *
conv_str(const char *json, fhir_version_t v)
{
    static fhir_buf_t  out;
    char               err[256];

    if (convert(json, strlen(json), v, 0, &out, err, sizeof(err), 0) != 0) {
        printf("  conversion failed: %s\n", err);
        return "";
    }

    fhir_buf_append(&out, "", 1);
    return out.data;
}

#define HAS(hay, needle)  (strstr((hay), (needle)) != NULL)


static char *
read_file(const char *path, size_t *len)
{
    FILE  *f = fopen(path, "rb");

    *len = 0;
    char  *p;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *len = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc(*len + 1);
    if (fread(p, 1, *len, f) != *len) {
        *len = 0;
    }
    p[*len] = '\0';
    fclose(f);
    return p;
}


/* every "value": <number> lexeme of the input appears in the output */
static int
decimals_kept(const char *in, const char *out, size_t out_len)
{
    const char  *p = in, *q;
    char         lex[64];
    size_t       n;

    (void) out_len;

    while ((p = strstr(p, "\"value\"")) != NULL) {
        p += 7;
        while (*p == ' ' || *p == ':') {
            p++;
        }
        if (!(*p == '-' || (*p >= '0' && *p <= '9'))) {
            continue;
        }
        q = p;
        while (*q && strchr("-+.eE0123456789", *q)) {
            q++;
        }
        n = (size_t) (q - p);
        if (n >= sizeof(lex) - 12) {
            continue;
        }
        memcpy(lex, "\"value\":", 8);
        memcpy(lex + 8, p, n);
        lex[8 + n] = '\0';
        if (strstr(out, lex) == NULL) {
            printf("  lost decimal %s\n", lex);
            return 0;
        }
    }

    return 1;
}


static void
test_corpus(const char *dir, fhir_version_t v)
{
    DIR            *d;
    struct dirent  *e;
    char            path[1024], err[256];
    char           *text;
    size_t          len = 0;
    fhir_buf_t      one = { NULL, 0, 0 }, many = { NULL, 0, 0 };
    int             files = 0;

    d = opendir(dir);
    CHECK(d != NULL, "corpus folder %s", dir);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".json") == NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        text = read_file(path, &len);
        files++;

        CHECK(convert(text, len, v, 0, &one, err, sizeof(err), 0) == 0,
              "%s converts: %s", path, err);
        fhir_buf_append(&one, "", 1);

        /* random chunk splits give the same bytes */
        CHECK(convert(text, len, v, -1, &many, err, sizeof(err), 0) == 0
              && many.len + 1 == one.len
              && memcmp(many.data, one.data, many.len) == 0,
              "%s: random chunking gives identical output", path);

        /* one byte at a time, for the smaller files */
        if (len < 100000) {
            CHECK(convert(text, len, v, 1, &many, err, sizeof(err), 0) == 0
                  && many.len + 1 == one.len
                  && memcmp(many.data, one.data, many.len) == 0,
                  "%s: byte-at-a-time gives identical output", path);
        }

        CHECK(decimals_kept(text, one.data, one.len),
              "%s: decimals kept byte for byte", path);
        CHECK(!HAS(one.data, "\"MedicationOrder") && !HAS(one.data,
              "\"MedicationOrder/") && !HAS(one.data, "fhir_comments"),
              "%s: no DSTU2 type names or comments left", path);
        CHECK(!HAS(one.data, "\"family\":["),
              "%s: no HumanName.family arrays left", path);
        CHECK(!HAS(one.data, "http://hl7.org/fhir/observation-category"),
              "%s: observation-category system rewritten", path);

        /* a truncated copy never converts */
        CHECK(convert(text, len - 7, v, -1, &many, err, sizeof(err), 0) != 0,
              "%s: truncated input is refused", path);

        free(text);
    }

    closedir(d);
    CHECK(files > 5, "%s has the corpus files (%d)", dir, files);
    fhir_buf_free(&one);
    fhir_buf_free(&many);
}


static void
test_errors(void)
{
    static const struct { const char *json, *what, *err; }  bad[] = {
        { "", "empty", "truncated" },
        { "[1,2]", "an array", "must be a JSON object" },
        { "{\"resourceType\":\"Patient\",\"id\":\"a\",\"id\":\"b\"}",
          "duplicate keys", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"ab\":1,\"ac\":2,\"b\":3,\"c\":4,"
          "\"d\":5,\"ac\":6}", "a duplicate among keys alike", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"a\":{\"x\":1},\"b\":{\"x\":1,\"x\":2}}",
          "a duplicate in a nested object", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"a\":{\"b\":1},\"a\":2}",
          "a duplicate after a nested object", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"a\":{},\"a\":1}",
          "a duplicate after an empty object", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"a\":[],\"a\":1}",
          "a duplicate after an empty array", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"a\":[{\"b\":[1]}],\"a\":1}",
          "a duplicate after nested arrays", "duplicate key" },
        { "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"a\xff\"}]}",
          "invalid UTF-8", "invalid UTF-8" },
        { "{\"resourceType\":\"Patient\"} x", "trailing data", "trailing" },
        { "{\"resourceType\":\"Patient\",\"a\":01}", "bad number",
          "expected" },
        { "{\"resourceType\":\"Patient\",\"a\":\"\\q\"}", "bad escape",
          "escape" },
        { "{\"id\":\"x\"}", "no resourceType", "no resourceType" },
        { "{\"resourceType\":\"Bundle\",\"entry\":[1]}", "entry not object",
          "not an object" },
        { "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"a\":1}]}",
          "mismatched brackets", "" },
    };
    fhir_buf_t  out = { NULL, 0, 0 };
    char        err[256], deep[4096];
    size_t      i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(convert(bad[i].json, strlen(bad[i].json), FHIR_DSTU2, 1, &out,
                      err, sizeof(err), 0) != 0
              && strstr(err, bad[i].err) != NULL,
              "%s is refused with \"%s\" (got \"%s\")", bad[i].what,
              bad[i].err, err);
    }

    /* keys alike (same length and first byte) that differ are no duplicates */
    {
        static const char  alike[] = "{\"resourceType\":\"Basic\",\"ab\":1,"
                                     "\"ac\":2,\"ad\":{\"ab\":3,\"ae\":4},\"\":5,\"af\":6}";

        CHECK(convert(alike, sizeof(alike) - 1, FHIR_STU3, 0, &out, err,
                      sizeof(err), 0) == 0
              && out.len == sizeof(alike) - 1
              && memcmp(out.data, alike, out.len) == 0,
              "keys alike are kept (%s)", err);
    }

    /* nesting deeper than the limit */
    strcpy(deep, "{\"resourceType\":\"Patient\",\"a\":");
    for (i = 0; i < 100; i++) {
        strcat(deep, "[");
    }
    for (i = 0; i < 100; i++) {
        strcat(deep, "]");
    }
    strcat(deep, "}");
    CHECK(convert(deep, strlen(deep), FHIR_STU3, 0, &out, err, sizeof(err),
                  0) != 0 && strstr(err, "nested") != NULL,
          "deep nesting is refused (%s)", err);

    /* the parser itself: depth limits on both sides of its frame stack,
     * where each error is found, and a prefix that may still grow */
    {
        fj_arena_t   a = { NULL, 0 };
        fj_node_t   *n;
        const char  *e;
        char         nest[512];
        size_t       at, used;
        int          inc;
        unsigned     d;
        static const struct { const char *json; const char *err; size_t at; }
                     pos[] = {
            { "{\"a\" 1}", "expected ':'", 5 },
            { "{\"a\":1 \"b\":2}", "expected ',' or '}'", 7 },
            { "[1 2]", "expected ',' or ']'", 3 },
            { "{\"a\":1,\"a\":2}", "duplicate key", 8 },
            { "{\"a\":1,}", "expected a key", 7 },
            { "[tru]", "unexpected character", 1 },
            { "{\"a\":\"x\\u00\"}", "\\u escape", 7 },
            /* the same with whitespace where compact JSON has none: the
             * parser looks at the expected byte first, then skips it */
            { "{ \"a\" \t1}", "expected ':'", 7 },
            { "{\"a\":1 ,\n}", "expected a key", 9 },
            { "[1 , 2 3]", "expected ',' or ']'", 7 },
            { "{\"a\":1 }x", "trailing data", 8 },
            { "{ ", "expected a key", 2 },
            { "[1, ", "unexpected end", 4 },
        };

        for (d = 63; d <= 201; d += (d == 66 ? 134 : 1)) {
            for (i = 0; i < d; i++) {
                nest[i] = '[';
                nest[2 * d - 1 - i] = ']';
            }
            n = fj_parse(&a, nest, 2 * d, d, &e, &at);
            CHECK(n != NULL && fj_write(&out, n) == 0 && out.len == 2 * d
                  && memcmp(out.data, nest, out.len) == 0,
                  "%u arrays deep, limit %u: parsed and written back", d, d);
            out.len = 0;
            n = fj_parse(&a, nest, 2 * d, d - 1, &e, &at);
            CHECK(n == NULL && strstr(e, "nested") && at == d - 1,
                  "%u arrays deep, limit %u: refused at %zu", d, d - 1, at);
            fj_arena_reset(&a);
        }

        for (i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
            n = fj_parse(&a, pos[i].json, strlen(pos[i].json), 8, &e, &at);
            CHECK(n == NULL && strstr(e, pos[i].err) && at == pos[i].at,
                  "%s: \"%s\" at %zu (got \"%s\" at %zu)", pos[i].json,
                  pos[i].err, pos[i].at, n ? "" : e, at);
            fj_arena_reset(&a);
        }

        /* whitespace wherever JSON allows it comes back compact */
        {
            static const char  ws[] =
                " \t\n{ \"a\" : [ 1 , { } , [ ] , \"x\" ] ,\r\n\"b\" :{\"c\":"
                "null }\r\n,\"d\":[{ \"e\":true}] } \n";
            static const char  compact[] =
                "{\"a\":[1,{},[],\"x\"],\"b\":{\"c\":null},\"d\":[{\"e\":true}]}";

            n = fj_parse(&a, ws, sizeof(ws) - 1, 8, &e, &at);
            out.len = 0;
            CHECK(n != NULL && fj_write(&out, n) == 0
                  && out.len == sizeof(compact) - 1
                  && memcmp(out.data, compact, out.len) == 0,
                  "whitespace everywhere is parsed and written compact (%s)",
                  n ? "" : e);
            out.len = 0;
            fj_arena_reset(&a);
        }

        /* after an escape or a UTF-8 sequence the scan goes on by words:
         * a control character far behind one is still found, and plain
         * runs between them come back byte for byte */
        {
            char  t[128];
            int   tl;

            tl = snprintf(t, sizeof(t), "[\"\\n%s\x01\"]",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
            n = fj_parse(&a, t, (size_t) tl, 8, &e, &at);
            CHECK(n == NULL && strstr(e, "control character") && at == 44,
                  "a control character 40 bytes after an escape (at %zu)", at);
            tl = snprintf(t, sizeof(t), "[\"\xc3\xa9%s\\t%s\\u00e9x\"]",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                          "bbbbbbbbbbbbbbbbbbbb");
            n = fj_parse(&a, t, (size_t) tl, 8, &e, &at);
            out.len = 0;
            CHECK(n != NULL && fj_write(&out, n) == 0 && out.len == (size_t) tl
                  && memcmp(out.data, t, out.len) == 0,
                  "plain runs between UTF-8 and escapes come back as sent");
            out.len = 0;
            fj_arena_reset(&a);
        }

        /* keys and values of every length the writer copies in its
         * short-copy classes and beyond, written back byte for byte: as
         * parsed ("key":"value" copied at once), with the value moved
         * (key and value copied apart), and as array elements (numbers
         * of 1-20 digits) */
        {
            char        t[512], w[512];
            int         tl, wl, kl, vl, bad = 0, fk = 0, fv = 0;
            fj_node_t  *m;

            for (kl = 0; kl <= 70 && !bad; kl++) {
                for (vl = 0; vl <= 70 && !bad; vl += (kl < 40 ? 1 : 7)) {
                    tl = snprintf(t, sizeof(t), "{\"%.*s\":\"%.*s\",\"n\":"
                                  "%.*s,\"a\":[\"%.*s\",%.*s]}",
                                  kl, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
                                  "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK",
                                  vl, "0123456789abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                                  vl % 20 + 1, "123456789012345678901",
                                  vl, "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"
                                  "zyxwvutsrqponmlkjihgfedcba9876543210",
                                  vl % 20 + 1, "987654321098765432109");
                    n = fj_parse(&a, t, (size_t) tl, 8, &e, &at);
                    out.len = 0;
                    bad = n == NULL || fj_write(&out, n) != 0
                          || out.len != (size_t) tl
                          || memcmp(out.data, t, out.len) != 0;
                    if (!bad) {
                        /* the value elsewhere: key and value apart */
                        m = n->child;
                        wl = snprintf(w, sizeof(w), "%.*s", (int) m->raw_len,
                                      m->raw);
                        m->raw = w;
                        out.len = 0;
                        bad = fj_write(&out, n) != 0
                              || out.len != (size_t) tl
                              || memcmp(out.data, t, out.len) != 0
                              || wl != vl;
                    }
                    if (bad) {
                        fk = kl;
                        fv = vl;
                    }
                    fj_arena_reset(&a);
                }
            }
            CHECK(!bad, "keys and values of 0-70 bytes are written back byte "
                  "for byte (first failure: key %d, value %d bytes)", fk, fv);
            out.len = 0;
        }

        n = fj_parse_prefix(&a, "{\"a\":[1,", 8, 8, &used, &inc, &e, &at);
        CHECK(n == NULL && inc == 1, "a cut prefix may still grow (%s)", e);
        n = fj_parse_prefix(&a, "{\"a\":[1]}x", 10, 8, &used, &inc, &e, &at);
        CHECK(n != NULL && used == 9, "a whole prefix ends at its brace (%s)",
              n ? "" : e);
        n = fj_parse_prefix(&a, "{\"a\":[1}", 8, 8, &used, &inc, &e, &at);
        CHECK(n == NULL && inc == 0, "a broken prefix is an error");
        fj_arena_free(&a);
    }

    /* one resource larger than the limit */
    CHECK(convert("{\"resourceType\":\"Patient\",\"id\":\"0123456789\"}", 44,
                  FHIR_STU3, 3, &out, err, sizeof(err), 20) != 0
          && strstr(err, "larger than") != NULL,
          "resource over the size limit is refused (%s)", err);

    /* a byte-order mark is tolerated */
    CHECK(convert("\xef\xbb\xbf{\"resourceType\":\"Patient\"}", 29,
                  FHIR_STU3, 1, &out, err, sizeof(err), 0) == 0,
          "a BOM is tolerated");

    fhir_buf_free(&out);
}


static void
test_conversions(void)
{
    char  *o;

    /* section 4: DSTU2 Condition */
    o = conv_str("{\"resourceType\":\"Condition\",\"patient\":{\"reference\":"
                 "\"Patient/1\"},\"clinicalStatus\":\"active\","
                 "\"verificationStatus\":\"unknown\",\"dateRecorded\":"
                 "\"2017-01-01\",\"notes\":\"n\",\"category\":{\"coding\":"
                 "[{\"system\":\"http://hl7.org/fhir/condition-category\","
                 "\"code\":\"diagnosis\"}]},\"abatementBoolean\":true,"
                 "\"code\":{\"text\":\"x\"}}", FHIR_DSTU2);
    CHECK(HAS(o, "\"subject\":{\"reference\":\"Patient/1\"}"),
          "Condition.patient -> subject: %s", o);
    CHECK(HAS(o, "\"clinicalStatus\":{\"coding\":[{\"system\":\"http://"
                 "terminology.hl7.org/CodeSystem/condition-clinical\","
                 "\"code\":\"active\"}]}"),
          "Condition.clinicalStatus with the R4 system (not HAPI's): %s", o);
    CHECK(HAS(o, "condition-ver-status\",\"code\":\"unconfirmed\""),
          "verificationStatus unknown -> unconfirmed: %s", o);
    CHECK(HAS(o, "\"recordedDate\":\"2017-01-01\""), "dateRecorded: %s", o);
    CHECK(HAS(o, "\"note\":[{\"text\":\"n\"}]"), "notes -> note: %s", o);
    CHECK(HAS(o, "\"category\":[{\"coding\":[{\"system\":\"http://terminology"
                 ".hl7.org/CodeSystem/condition-category\",\"code\":"
                 "\"encounter-diagnosis\"}"),
          "DSTU2 category diagnosis -> encounter-diagnosis first: %s", o);
    CHECK(HAS(o, "extension-Condition.abatementBoolean\",\"valueBoolean\":"
                 "true"), "abatementBoolean kept as an extension: %s", o);

    /* a DSTU2 _family whose first non-null part is not an object (not
     * valid FHIR): the value is kept as sent, not emptied */
    o = conv_str("{\"resourceType\":\"Patient\",\"name\":[{\"family\":"
                 "[\"A\"],\"_family\":[null,\"x\"]}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"_family\":\"x\""), "an odd _family kept: %s", o);

    /* a primitive's _twin goes with it: comments -> note[].text/_text */
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"comments\":\"c\",\"_comments\":{\"id\":\"x\"}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"note\":[{\"text\":\"c\",\"_text\":{\"id\":\"x\"}}]")
          && !HAS(o, "comments\""), "comments and _comments -> note: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"_comments\":{\"id\":\"y\"}}", FHIR_DSTU2);
    CHECK(HAS(o, "\"note\":[{\"_text\":{\"id\":\"y\"}}]")
          && !HAS(o, "comments\""), "_comments alone -> note: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"comment\":\"hi\",\"_comment\":{\"id\":\"n\"}}", FHIR_STU3);
    CHECK(HAS(o, "\"note\":[{\"text\":\"hi\",\"_text\":{\"id\":\"n\"}}]")
          && !HAS(o, "comment\""), "STU3 comment -> note: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"comment\":\"hi\",\"note\":[{\"text\":\"kept\"}]}",
                 FHIR_STU3);
    CHECK(HAS(o, "\"comment\":\"hi\",\"note\":[{\"text\":\"kept\"}]}"),
          "a note already there is not replaced: %s", o);

    /* a required primitive present only as its _twin (extensions, no
     * value) is not given a second, data-absent one */
    o = conv_str("{\"resourceType\":\"MedicationOrder\",\"status\":"
                 "\"active\",\"_dateWritten\":{\"extension\":[{\"url\":"
                 "\"http://e\",\"valueCode\":\"asked-unknown\"}]}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"_authoredOn\":{\"extension\":[{\"url\":\"http://e\"")
          && strstr(strstr(o, "_authoredOn") + 1, "_authoredOn") == NULL,
          "_dateWritten alone stands for authoredOn, once: %s", o);
    o = conv_str("{\"resourceType\":\"MedicationOrder\",\"status\":"
                 "\"active\"}", FHIR_DSTU2);
    CHECK(HAS(o, "\"_authoredOn\":{\"extension\":[{\"url\":\"http://hl7.org/"
                 "fhir/StructureDefinition/data-absent-reason\""),
          "no authoredOn at all -> data-absent-reason: %s", o);

    /* a Condition with no category gets a data-absent-reason */
    o = conv_str("{\"resourceType\":\"Condition\",\"subject\":{}}",
                 FHIR_STU3);
    CHECK(HAS(o, "\"category\":[{\"extension\":[{\"url\":\"http://hl7.org/"
                 "fhir/StructureDefinition/data-absent-reason\""),
          "missing category -> data-absent-reason: %s", o);

    /* section 6.1: DSTU2 AllergyIntolerance status split */
    o = conv_str("{\"resourceType\":\"AllergyIntolerance\",\"status\":"
                 "\"confirmed\",\"substance\":{\"text\":\"peanut\"},"
                 "\"criticality\":\"CRITH\",\"category\":\"food\","
                 "\"reporter\":{},\"lastOccurence\":\"2001\",\"note\":"
                 "{\"text\":\"t\"}}", FHIR_DSTU2);
    CHECK(HAS(o, "allergyintolerance-clinical\",\"code\":\"active\"")
          && HAS(o, "allergyintolerance-verification\",\"code\":"
                    "\"confirmed\""),
          "status confirmed -> active + confirmed (not HAPI's): %s", o);
    CHECK(HAS(o, "\"code\":{\"text\":\"peanut\"}"), "substance -> code: %s",
          o);
    CHECK(HAS(o, "\"criticality\":\"high\""), "CRITH -> high: %s", o);
    CHECK(HAS(o, "\"category\":[\"food\"]"), "category array: %s", o);
    CHECK(HAS(o, "\"asserter\":{}") && HAS(o, "\"lastOccurrence\":\"2001\""),
          "reporter, lastOccurence renamed: %s", o);
    CHECK(HAS(o, "\"note\":[{\"text\":\"t\"}]"), "note array: %s", o);

    o = conv_str("{\"resourceType\":\"AllergyIntolerance\",\"status\":"
                 "\"entered-in-error\"}", FHIR_DSTU2);
    CHECK(!HAS(o, "clinicalStatus") && HAS(o, "\"entered-in-error\""),
          "entered-in-error has no clinicalStatus: %s", o);

    /* section 5: DSTU2 Encounter class */
    o = conv_str("{\"resourceType\":\"Encounter\",\"status\":\"finished\","
                 "\"class\":\"inpatient\",\"patient\":{},\"reason\":[{}],"
                 "\"indication\":[{\"reference\":\"Condition/1\"}]}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"class\":{\"system\":\"http://terminology.hl7.org/"
                 "CodeSystem/v3-ActCode\",\"code\":\"IMP\"}"),
          "class inpatient -> IMP with the correct system: %s", o);
    CHECK(HAS(o, "\"subject\":{}") && HAS(o, "\"reasonCode\":[{}]")
          && HAS(o, "\"reasonReference\":[{\"reference\":\"Condition/1\"}]"),
          "Encounter renames: %s", o);
    o = conv_str("{\"resourceType\":\"Encounter\",\"reason\":{\"text\":\"r\"}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"reasonCode\":[{\"text\":\"r\"}]"),
          "a single reason becomes an array: %s", o);
    o = conv_str("{\"resourceType\":\"MedicationOrder\",\"dispenseRequest\":"
                 "{\"numberOfRepeatsAllowed\":\"1\"}}", FHIR_DSTU2);
    CHECK(HAS(o, "\"numberOfRepeatsAllowed\":1}"),
          "numberOfRepeatsAllowed written as a string becomes a number: %s", o);
    o = conv_str("{\"resourceType\":\"Encounter\",\"class\":\"other\"}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"class\":{\"extension\""),
          "class other -> data-absent-reason: %s", o);
    o = conv_str("{\"resourceType\":\"Encounter\",\"class\":{\"code\":"
                 "\"ambulatory\"}}", FHIR_STU3);
    CHECK(HAS(o, "v3-ActCode\",\"code\":\"AMB\""),
          "STU3 system-less class mapped: %s", o);
    /* US Core: Encounter.type 1..*: a data-absent-reason where the
     * source has none, in either version; one there stays */
    CHECK(HAS(o, "\"type\":[{\"extension\":[{\"url\":\"http://hl7.org/fhir/"
                 "StructureDefinition/data-absent-reason\",\"valueCode\":"
                 "\"unknown\"}]}]"), "STU3 Encounter without type: %s", o);
    o = conv_str("{\"resourceType\":\"Encounter\",\"class\":\"inpatient\"}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"type\":[{\"extension\":[{\"url\":\"http://hl7.org/fhir/"
                 "StructureDefinition/data-absent-reason\""),
          "DSTU2 Encounter without type: %s", o);
    o = conv_str("{\"resourceType\":\"Encounter\",\"type\":[{\"text\":\"t\"}],"
                 "\"class\":\"inpatient\"}", FHIR_DSTU2);
    CHECK(HAS(o, "\"type\":[{\"text\":\"t\"}]") && !HAS(o, "absent"),
          "an Encounter's type kept: %s", o);

    /* section 7.1: DSTU2 MedicationOrder */
    o = conv_str("{\"resourceType\":\"MedicationOrder\",\"id\":\"m\","
                 "\"dateWritten\":\"2017\",\"status\":\"active\",\"patient\":"
                 "{\"reference\":\"Patient/1\"},\"prescriber\":{\"display\":"
                 "\"Dr\"},\"encounter\":{\"reference\":\"Encounter/2\"},"
                 "\"dateEnded\":\"2018\",\"dosageInstruction\":[{\"text\":"
                 "\"1/d\",\"doseQuantity\":{\"value\":1.50},\"timing\":"
                 "{\"repeat\":{\"periodUnits\":\"d\",\"period\":1,\"when\":"
                 "\"HS\"}}}],\"substitution\":{\"type\":{\"text\":\"N\"}}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"resourceType\":\"MedicationRequest\""), "renamed: %s", o);
    CHECK(HAS(o, "\"intent\":\"order\""), "intent order: %s", o);
    CHECK(HAS(o, "\"authoredOn\":\"2017\"") && HAS(o, "\"requester\":")
          && HAS(o, "\"subject\":"), "renames: %s", o);
    CHECK(HAS(o, "\"encounter\":{\"reference\":\"Encounter/2\"}"),
          "encounter kept (not HAPI): %s", o);
    CHECK(HAS(o, "\"doseAndRate\":[{\"doseQuantity\":{\"value\":1.50}}]"),
          "dose -> doseAndRate, decimal exact: %s", o);
    CHECK(HAS(o, "\"periodUnit\":\"d\"") && HAS(o, "\"when\":[\"HS\"]"),
          "Timing.repeat renames: %s", o);
    CHECK(HAS(o, "\"allowedCodeableConcept\":{\"text\":\"N\"}"),
          "substitution.type -> allowed[x] (not HAPI): %s", o);
    CHECK(HAS(o, "extension-MedicationOrder.dateEnded"),
          "dateEnded kept as an extension: %s", o);

    /* section 7.4: STU3 MedicationRequest */
    o = conv_str("{\"resourceType\":\"MedicationRequest\",\"status\":"
                 "\"active\",\"intent\":\"order\",\"requester\":{\"agent\":"
                 "{\"display\":\"Dr\"},\"onBehalfOf\":{\"display\":\"Org\"}},"
                 "\"context\":{},\"authoredOn\":\"2017\",\"category\":{},"
                 "\"substitution\":{\"allowed\":true}}", FHIR_STU3);
    CHECK(HAS(o, "\"requester\":{\"display\":\"Dr\",\"extension\":[{\"url\":"
                 "\"http://hl7.org/fhir/3.0/StructureDefinition/extension-"
                 "MedicationRequest.requester.onBehalfOf\""),
          "requester.agent -> requester + onBehalfOf extension: %s", o);
    CHECK(HAS(o, "\"encounter\":{}") && HAS(o, "\"category\":[{}]")
          && HAS(o, "\"allowedBoolean\":true"), "STU3 med renames: %s", o);

    /* section 9: STU3 Coverage, lower-case class codes (not HAPI) */
    o = conv_str("{\"resourceType\":\"Coverage\",\"status\":\"active\","
                 "\"grouping\":{\"subGroup\":\"A\",\"plan\":\"P\","
                 "\"planDisplay\":\"Gold\"},\"beneficiary\":{},\"payor\":"
                 "[{}]}", FHIR_STU3);
    CHECK(HAS(o, "\"code\":\"subgroup\"}]},\"value\":\"A\"")
          && HAS(o, "\"code\":\"plan\"}]},\"value\":\"P\",\"name\":\"Gold\""),
          "grouping -> class[]: %s", o);

    /* section 10: DSTU2 Coverage (no HAPI converter) */
    o = conv_str("{\"resourceType\":\"Coverage\",\"issuer\":{\"display\":"
                 "\"Acme\"},\"subscriberId\":{\"value\":\"S1\"},\"plan\":"
                 "\"P\",\"subscriber\":{\"reference\":\"Patient/1\"},"
                 "\"type\":{\"code\":\"EHCPOL\"}}", FHIR_DSTU2);
    CHECK(HAS(o, "\"payor\":[{\"display\":\"Acme\"}]")
          && HAS(o, "\"subscriberId\":\"S1\"")
          && HAS(o, "\"beneficiary\":{\"reference\":\"Patient/1\"}")
          && HAS(o, "\"type\":{\"coding\":[{\"code\":\"EHCPOL\"}]}")
          && HAS(o, "\"_status\":{\"extension\""),
          "DSTU2 Coverage: %s", o);

    /* section 3: Observation */
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"category\":{\"coding\":[{\"system\":\"http://hl7.org/fhir"
                 "/observation-category\",\"code\":\"vital-signs\"}]},"
                 "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
                 "\"code\":\"55284-4\"}]},\"comments\":\"c\",\"related\":["
                 "{\"type\":\"has-member\",\"target\":{\"reference\":"
                 "\"Observation/s\"}}],\"component\":[{\"valueQuantity\":"
                 "{\"value\":120.0,\"system\":\"http://unitsofmeasure.org/\""
                 "}}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"category\":[{\"coding\":[{\"system\":\"http://terminology"
                 ".hl7.org/CodeSystem/observation-category\""),
          "category array with the R4 system: %s", o);
    CHECK(HAS(o, "\"coding\":[{\"system\":\"http://loinc.org\",\"code\":"
                 "\"85354-9\""), "BP panel code 85354-9 first: %s", o);
    CHECK(HAS(o, "\"note\":[{\"text\":\"c\"}]")
          && HAS(o, "\"hasMember\":[{\"reference\":\"Observation/s\"}]"),
          "comments, related: %s", o);
    CHECK(HAS(o, "{\"value\":120.0,\"system\":\"http://unitsofmeasure.org\""),
          "UCUM system without the slash, value exact: %s", o);

    /* every member the Observation converter reads (found in one pass) */
    o = conv_str("{\"resourceType\":\"Observation\",\"status\":\"final\","
                 "\"code\":{\"text\":\"x\"},\"category\":{\"text\":\"c\"},"
                 "\"_category\":{\"id\":\"cat\"},\"interpretation\":{\"text\":"
                 "\"H\"},\"_interpretation\":{\"id\":\"i\"},\"referenceRange\":"
                 "[{\"low\":{\"value\":1},\"meaning\":{\"text\":\"normal\"}}],"
                 "\"valueAttachment\":{\"url\":\"http://a/b\"},\"comments\":"
                 "\"hello\",\"_comments\":{\"id\":\"n\"},\"component\":[{"
                 "\"code\":{\"text\":\"s\"},\"interpretation\":{\"text\":\"L\"},"
                 "\"valueAttachment\":{\"url\":\"http://a/c\"}},\"junk\"]}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"category\":[{\"text\":\"c\"}],\"_category\":[{\"id\":"
                 "\"cat\"}],\"interpretation\":[{\"text\":\"H\"}],"
                 "\"_interpretation\":[{\"id\":\"i\"}],\"referenceRange\":[{"
                 "\"low\":{\"value\":1},\"type\":{\"text\":\"normal\"}}]"),
          "Observation arrays and referenceRange.meaning: %s", o);
    CHECK(HAS(o, "\"component\":[{\"code\":{\"text\":\"s\"},\"interpretation\""
                 ":[{\"text\":\"L\"}],\"extension\":[{\"url\":\"http://hl7.org"
                 "/fhir/1.0/StructureDefinition/extension-Observation."
                 "valueAttachment\",\"valueAttachment\":{\"url\":\"http://a/c\""
                 "}}]},\"junk\"]"), "a component converted: %s", o);
    CHECK(HAS(o, "\"note\":[{\"text\":\"hello\",\"_text\":{\"id\":\"n\"}}],"
                 "\"extension\":[{\"url\":\"http://hl7.org/fhir/1.0/"
                 "StructureDefinition/extension-Observation.valueAttachment\","
                 "\"valueAttachment\":{\"url\":\"http://a/b\"}}]")
          && !HAS(o, "comments"), "comments -> note, valueAttachment: %s", o);

    /* US Core: a valueQuantity's UCUM code is its unit where the source
     * gives none (the resource's and a component's, either version); not
     * with a unit or its twin already there, another system, or no code */
    o = conv_str("{\"resourceType\":\"Observation\",\"valueQuantity\":{"
                 "\"value\":79,\"system\":\"http://unitsofmeasure.org/\","
                 "\"code\":\"mm[Hg]\"},\"component\":[{\"valueQuantity\":{"
                 "\"value\":1,\"system\":\"http://unitsofmeasure.org\",\"code\":"
                 "\"%{HemoglobinSaturation}\"}},{\"valueQuantity\":{\"value\":2,"
                 "\"unit\":\"beats\",\"system\":\"http://unitsofmeasure.org\","
                 "\"code\":\"/min\"}},{\"valueQuantity\":{\"value\":3,\"_unit\":"
                 "{\"id\":\"u\"},\"system\":\"http://unitsofmeasure.org\",\"code\":"
                 "\"kg\"}},{\"valueQuantity\":{\"value\":4,\"system\":"
                 "\"http://example.org/units\",\"code\":\"kg\"}},{\"valueQuantity\":"
                 "{\"value\":5,\"system\":\"http://unitsofmeasure.org\"}},"
                 "{\"valueQuantity\":{\"value\":6,\"system\":"
                 "\"http://unitsofmeasure.org\",\"code\":\"\"}}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"valueQuantity\":{\"value\":79,\"unit\":\"mm[Hg]\","
                 "\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}")
          && HAS(o, "{\"value\":1,\"unit\":\"%{HemoglobinSaturation}\",")
          && HAS(o, "{\"value\":2,\"unit\":\"beats\",\"system\"")
          && HAS(o, "{\"value\":3,\"_unit\":{\"id\":\"u\"},\"system\"")
          && HAS(o, "{\"value\":4,\"system\":\"http://example.org/units\"")
          && HAS(o, "{\"value\":5,\"system\"")
          && HAS(o, "{\"value\":6,\"system\""),
          "UCUM code as the unit where none is given: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"valueQuantity\":{"
                 "\"system\":\"http://unitsofmeasure.org\",\"code\":\"Cel\"}}",
                 FHIR_STU3);
    CHECK(HAS(o, "\"valueQuantity\":{\"unit\":\"Cel\",\"system\""),
          "STU3, no value: the unit first: %s", o);

    /* US Core smoking status (LOINC 72166-2): issued 1..1 */
    o = conv_str("{\"resourceType\":\"Observation\",\"code\":{\"coding\":[{"
                 "\"system\":\"http://loinc.org\",\"code\":\"72166-2\"}]}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"_issued\":{\"extension\":[{\"url\":\"http://hl7.org/fhir/"
                 "StructureDefinition/data-absent-reason\""),
          "smoking status without issued: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"issued\":\"2017-01-01\","
                 "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
                 "\"code\":\"72166-2\"}]}}", FHIR_STU3);
    CHECK(!HAS(o, "_issued") && HAS(o, "\"issued\":\"2017-01-01\""),
          "smoking status with issued: %s", o);
    o = conv_str("{\"resourceType\":\"Observation\",\"code\":{\"coding\":[{"
                 "\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]}}",
                 FHIR_DSTU2);
    CHECK(!HAS(o, "issued"), "another Observation without issued: %s", o);

    /* an extension with an array of values becomes repeated extensions */
    o = conv_str("{\"resourceType\":\"Observation\",\"extension\":[{\"url\":"
                 "\"u\",\"valueString\":[\"a\",\"b\"]}],\"status\":\"final\"}",
                 FHIR_STU3);
    CHECK(HAS(o, "\"extension\":[{\"url\":\"u\",\"valueString\":\"a\"},"
                 "{\"url\":\"u\",\"valueString\":\"b\"}]"),
          "extension value arrays split: %s", o);

    /* US Core: a Patient identifier's system 1..1 */
    o = conv_str("{\"resourceType\":\"Patient\",\"identifier\":[{\"value\":"
                 "\"X1\"},{\"system\":\"urn:s\",\"value\":\"2\"},{\"_system\":"
                 "{\"id\":\"s\"},\"value\":\"3\"}]}", FHIR_DSTU2);
    CHECK(HAS(o, "{\"value\":\"X1\",\"_system\":{\"extension\":[{\"url\":"
                 "\"http://hl7.org/fhir/StructureDefinition/data-absent-reason\"")
          && HAS(o, "{\"system\":\"urn:s\",\"value\":\"2\"}")
          && HAS(o, "{\"_system\":{\"id\":\"s\"},\"value\":\"3\"}"),
          "Patient identifiers without a system: %s", o);

    /* section 2: Patient */
    o = conv_str("{\"resourceType\":\"Patient\",\"name\":[{\"family\":"
                 "[\"van\",\"Dyke\"]}],\"careProvider\":[{}],\"link\":[{"
                 "\"type\":\"replace\",\"other\":{}}],\"meta\":{\"profile\":"
                 "[\"http://fhir.org/guides/argonaut/StructureDefinition/"
                 "argo-patient\"]},\"fhir_comments\":[\"x\"]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"family\":\"van Dyke\""),
          "family parts joined (not HAPI's last part): %s", o);
    CHECK(HAS(o, "\"generalPractitioner\":[{}]")
          && HAS(o, "\"type\":\"replaced-by\""), "Patient renames: %s", o);
    CHECK(!HAS(o, "argo-patient") && !HAS(o, "fhir_comments"),
          "source profiles and comments dropped: %s", o);

    /* every key the generic walk acts on, each with a change of its own
     * (the walk tells them from other keys by a filter first) */
    o = conv_str("{\"resourceType\":\"MedicationOrder\",\"status\":\"active\","
                 "\"contained\":[{\"resourceType\":\"MedicationOrder\",\"id\":"
                 "\"c1\",\"status\":\"active\"}],\"priorPrescription\":{"
                 "\"reference\":\"MedicationOrder/9\"},\"modifierExtension\":"
                 "[{\"url\":\"u\",\"valueString\":[\"a\",\"b\"]}],"
                 "\"dosageInstruction\":[{\"timing\":{\"repeat\":{\"duration\""
                 ":1,\"durationUnits\":\"h\",\"_durationUnits\":{\"id\":\"d\"},"
                 "\"period\":1,\"periodUnits\":\"d\",\"_periodUnits\":{\"id\":"
                 "\"p\"},\"when\":\"HS\",\"_when\":{\"id\":\"w\"}}}}]}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"contained\":[{\"resourceType\":\"MedicationRequest\",\"id\""
                 ":\"c1\",\"status\":\"active\",\"intent\":\"order\""),
          "a contained resource converted: %s", o);
    CHECK(HAS(o, "{\"reference\":\"MedicationRequest/9\"}"),
          "a reference to a renamed type: %s", o);
    CHECK(HAS(o, "\"modifierExtension\":[{\"url\":\"u\",\"valueString\":\"a\"},"
                 "{\"url\":\"u\",\"valueString\":\"b\"}]"),
          "modifierExtension value arrays split: %s", o);
    CHECK(HAS(o, "\"durationUnit\":\"h\",\"_durationUnit\":{\"id\":\"d\"},"
                 "\"period\":1,\"periodUnit\":\"d\",\"_periodUnit\":{\"id\":"
                 "\"p\"},\"when\":[\"HS\"],\"_when\":[{\"id\":\"w\"}]"),
          "every Timing.repeat rename and array: %s", o);
    o = conv_str("{\"resourceType\":\"Patient\",\"name\":[{\"family\":[\"van\","
                 "\"Dyke\"],\"_family\":[{\"id\":\"f\"},null]}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"family\":\"van Dyke\",\"_family\":{\"id\":\"f\"}"),
          "family and its _family joined: %s", o);

    /* section 15: Conformance */
    o = conv_str("{\"resourceType\":\"Conformance\",\"fhirVersion\":\"1.0.2\""
                 ",\"format\":[\"application/json+fhir\"],\"rest\":[{\"mode\""
                 ":\"server\",\"resource\":[{\"type\":\"MedicationOrder\"}]}]}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"resourceType\":\"CapabilityStatement\"")
          && HAS(o, "\"fhirVersion\":\"4.0.1\"")
          && HAS(o, "\"type\":\"MedicationRequest\"")
          && HAS(o, "\"application/fhir+json\""), "Conformance: %s", o);

    /* MedicationStatement DSTU2 wasNotTaken (not HAPI) */
    o = conv_str("{\"resourceType\":\"MedicationStatement\",\"status\":"
                 "\"completed\",\"wasNotTaken\":true,\"patient\":{}}",
                 FHIR_DSTU2);
    CHECK(HAS(o, "\"status\":\"not-taken\"") && HAS(o, "\"subject\":{}"),
          "wasNotTaken -> not-taken: %s", o);

    /* an unmapped type is forwarded unchanged but for its references */
    o = conv_str("{\"resourceType\":\"MedicationDispense\",\"patient\":{},"
                 "\"authorizingPrescription\":[{\"reference\":"
                 "\"MedicationOrder/1\"}],\"x\":{\"system\":"
                 "\"http://hl7.org/fhir/v3/ActCode\"}}", FHIR_DSTU2);
    CHECK(strcmp(o, "{\"resourceType\":\"MedicationDispense\",\"patient\":"
                    "{},\"authorizingPrescription\":[{\"reference\":"
                    "\"MedicationRequest/1\"}],\"x\":{\"system\":"
                    "\"http://hl7.org/fhir/v3/ActCode\"}}") == 0,
          "unmapped type unchanged but for references: %s", o);

    /* references: only a first segment R4 renamed changes, with or without
     * a leading slash; others starting with the same letters stay; STU3
     * renames none */
    o = conv_str("{\"resourceType\":\"MedicationDispense\",\"a\":[{\"reference\":"
                 "\"/MedicationOrder/2\"},{\"reference\":\"Conformance\"},"
                 "{\"reference\":\"Medication/3\"},{\"reference\":"
                 "\"Condition/4\"},{\"reference\":\"MedicationOrder?x=1\"},"
                 "{\"reference\":\"\"},{\"reference\":\"#m1\"}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"/MedicationRequest/2\"") && HAS(o, "\"CapabilityStatement\"")
          && HAS(o, "\"Medication/3\"") && HAS(o, "\"Condition/4\"")
          && HAS(o, "\"MedicationRequest?x=1\"") && HAS(o, "\"reference\":\"\"")
          && HAS(o, "\"#m1\""), "DSTU2 references by first segment: %s", o);
    o = conv_str("{\"resourceType\":\"MedicationDispense\",\"a\":[{\"reference\":"
                 "\"MedicationOrder/1\"},{\"reference\":\"http://partner.example/"
                 "fhir/Patient/5\"}]}", FHIR_STU3);
    CHECK(HAS(o, "\"MedicationOrder/1\"")
          && HAS(o, "\"https://gw.example/fhir/p/Patient/5\""),
          "STU3 references: no rename, the partner's base rewritten: %s", o);

    /* a path on the partner's server under its base's path is the
     * gateway's route, as an absolute URL; one outside it, a network-path
     * ("//host/...") or a path that only starts with the same letters
     * stays */
    o = conv_str("{\"resourceType\":\"MedicationDispense\",\"a\":[{\"reference\":"
                 "\"/fhir/Patient/6\"},{\"reference\":\"/fhir\"},"
                 "{\"reference\":\"/fhir?x=1\"},{\"reference\":\"/fhirx/Patient/7\"},"
                 "{\"reference\":\"//partner.example/fhir/Patient/8\"},"
                 "{\"reference\":\"/other/Patient/9\"}]}", FHIR_STU3);
    CHECK(HAS(o, "\"https://gw.example/fhir/p/Patient/6\"")
          && HAS(o, "\"https://gw.example/fhir/p\"")
          && HAS(o, "\"https://gw.example/fhir/p?x=1\"")
          && HAS(o, "\"/fhirx/Patient/7\"")
          && HAS(o, "\"//partner.example/fhir/Patient/8\"")
          && HAS(o, "\"/other/Patient/9\""),
          "paths under the partner's base path: %s", o);
    o = conv_str("{\"resourceType\":\"MedicationDispense\",\"a\":[{\"reference\":"
                 "\"/fhir/MedicationOrder/2\"}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"https://gw.example/fhir/p/MedicationRequest/2\""),
          "a DSTU2 path under the partner's base path, renamed: %s", o);
    {
        fhir_conv_t   c;
        fj_arena_t    a = { NULL, 0 };
        const char   *out;
        size_t        n;

        /* a base with no path: every path is under it */
        memset(&c, 0, sizeof(c));
        c.from = FHIR_STU3;
        c.arena = &a;
        c.partner_base = "https://partner.example:8443";
        c.partner_base_len = strlen(c.partner_base);
        c.public_base = "https://gw.example/fhir/p";
        c.public_base_len = strlen(c.public_base);
        CHECK(fhir_rewrite_url(&c, "/Patient/1", 10, &out, &n) == 0
              && n == 35 && memcmp(out, "https://gw.example/fhir/p/Patient/1", n) == 0,
              "a path on a partner whose base has none: %.*s", (int) n, out);
        /* no public base (the core's tools): paths stay */
        c.public_base_len = 0;
        CHECK(fhir_rewrite_url(&c, "/Patient/1", 10, &out, &n) == 0
              && out[0] == '/' && n == 10, "no public base: a path stays");
        /* a base that is not a URL: paths stay */
        c.public_base_len = strlen(c.public_base);
        c.partner_base = "partner";
        c.partner_base_len = 7;
        CHECK(fhir_rewrite_url(&c, "/Patient/1", 10, &out, &n) == 0
              && out[0] == '/' && n == 10, "a base that is not a URL: a path stays");
        fj_arena_free(&a);
    }

    /* Bundle: URLs point at the gateway, types renamed */
    o = conv_str("{\"resourceType\":\"Bundle\",\"type\":\"searchset\","
                 "\"total\":1,\"link\":[{\"relation\":\"next\",\"url\":"
                 "\"http://partner.example/fhir/MedicationOrder?page=2\"}],"
                 "\"entry\":[{\"fullUrl\":\"http://partner.example/fhir/"
                 "MedicationOrder/1\",\"resource\":{\"resourceType\":"
                 "\"MedicationOrder\",\"id\":\"1\"}}]}", FHIR_DSTU2);
    CHECK(HAS(o, "\"url\":\"https://gw.example/fhir/p/MedicationRequest?"
                 "page=2\"")
          && HAS(o, "\"fullUrl\":\"https://gw.example/fhir/p/"
                    "MedicationRequest/1\"")
          && HAS(o, "\"total\":1"), "Bundle URLs: %s", o);
}


/* a stream reset after a document (or a failure) converts the next one as a
 * new stream would: the module reuses streams within a worker */
static void
test_reuse(void)
{
    const char     *a = "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":"
                        "{\"resourceType\":\"Patient\",\"id\":\"1\"}}]}";
    const char     *bad = "{\"resourceType\":\"Patient\",\"id\":";
    const char     *b = "{\"resourceType\":\"Condition\",\"patient\":{}}";
    fhir_conv_t     conv;
    fj_arena_t      arena = { NULL, 0 };
    fhir_stream_t  *s;
    fhir_buf_t      out = { NULL, 0, 0 };

    memset(&conv, 0, sizeof(conv));
    conv.from = FHIR_DSTU2;
    conv.arena = &arena;

    s = fhir_stream_create(&conv, 1 << 20, 64);
    CHECK(fhir_stream_feed(s, a, strlen(a), &out) == 0
          && fhir_stream_finish(s, &out) == 0, "reuse: first document");

    fhir_stream_reset(s, &conv);
    out.len = 0;
    CHECK(fhir_stream_feed(s, bad, strlen(bad), &out) == 0
          && fhir_stream_finish(s, &out) != 0, "reuse: a truncated document fails");

    fhir_stream_reset(s, &conv);
    out.len = 0;
    CHECK(fhir_stream_feed(s, b, strlen(b), &out) == 0
          && fhir_stream_finish(s, &out) == 0, "reuse: after a failure, a new one");
    fhir_buf_append(&out, "", 1);
    CHECK(strcmp(out.data, conv_str(b, FHIR_DSTU2)) == 0,
          "reuse: same bytes as a fresh stream: %s", out.data);

    fhir_stream_destroy(s);
    fj_arena_free(&arena);
    fhir_buf_free(&out);
}


static fhir_buf_t  batch_seen;

/* records each batch entry handed on: "POST URL|" */
static void
batch_entry(void *data, int post, const char *url, size_t len)
{
    (void) data;
    fhir_buf_append(&batch_seen, post ? "1 " : "0 ", 2);
    fhir_buf_append(&batch_seen, url, len);
    fhir_buf_append(&batch_seen, "|", 1);
}


static void
test_request(void)
{
    fhir_buf_t  out = { NULL, 0, 0 };

#define XLATE(v, path, args, want)                                            \
    out.len = 0;                                                              \
    fhir_request_translate(v, path, strlen(path), args, strlen(args), &out);  \
    fhir_buf_append(&out, "", 1);                                             \
    CHECK(strcmp(out.data, want) == 0, "translate %s?%s -> %s (got %s)",      \
          path, args, want, out.data)

    XLATE(FHIR_DSTU2, "MedicationRequest", "patient=1&_count=5",
          "MedicationOrder?patient=1&_count=5");
    XLATE(FHIR_DSTU2, "MedicationRequest/7", "", "MedicationOrder/7");
    XLATE(FHIR_DSTU2, "Observation", "patient=1&_sort=-date",
          "Observation?patient=1&_sort:desc=date");
    XLATE(FHIR_STU3, "Observation", "_sort:desc=date&x=1",
          "Observation?_sort=-date&x=1");
    XLATE(FHIR_STU3, "MedicationRequest", "patient=1",
          "MedicationRequest?patient=1");
    XLATE(FHIR_DSTU2, "Patient/_search", "", "Patient/_search");

    /* _format: JSON passes, in the partner's version's type where it
     * names the other version's; parameters otherwise byte for byte (a
     * paging link may be signed), empty ones included */
    XLATE(FHIR_DSTU2, "Patient/1", "_format=json", "Patient/1?_format=json");
    XLATE(FHIR_DSTU2, "Patient", "_format=application/fhir+json&name=x",
          "Patient?_format=application%2Fjson%2Bfhir&name=x");
    XLATE(FHIR_STU3, "Patient", "name=x&_format=application%2Fjson%2Bfhir",
          "Patient?name=x&_format=application%2Ffhir%2Bjson");
    XLATE(FHIR_STU3, "Patient", "_format=application/fhir%2Bjson;"
          "fhirVersion=4.0&_sort=-date",
          "Patient?_format=application%2Ffhir%2Bjson&_sort=-date");
    XLATE(FHIR_STU3, "Patient", "_format=application/fhir%2Bjson",
          "Patient?_format=application/fhir%2Bjson");
    XLATE(FHIR_DSTU2, "Patient", "_format=application/json%2Bfhir",
          "Patient?_format=application/json%2Bfhir");
    XLATE(FHIR_DSTU2, "Patient", "_format=json;x=1", "Patient?_format=json;x=1");
    CHECK(fhir_format_ok("family=x&_format=json", 21)
          && fhir_format_ok("family=x", 8)
          && fhir_format_ok("_format=&a=1&_format", 20)
          && fhir_format_ok("_format=application/json+fhir;x=1", 33)
          && !fhir_format_ok("family=x&_format=xml&y=1", 24),
          "a query's or form's _format: JSON or none passes, XML does not");
    XLATE(FHIR_STU3, "Patient", "a=1&&_format=JSON&_format=text/json&b=2&",
          "Patient?a=1&&_format=JSON&_format=text/json&b=2&");
    XLATE(FHIR_STU3, "Patient", "_format=&a=1", "Patient?_format=&a=1");
    XLATE(FHIR_STU3, "Patient", "_format&a=1&_formatx=2",
          "Patient?_format&a=1&_formatx=2");
    {
        static const char *const  refused[] = {
            "_format=xml", "a=1&_format=application/fhir+xml",
            "_format=ttl", "_format=html", "_format=jsonx",
            "_format=application/json+fhir+xml", NULL
        };
        int  i;

        for (i = 0; refused[i]; i++) {
            CHECK(!fhir_format_ok(refused[i], strlen(refused[i])),
                  "Patient?%s is refused as not JSON", refused[i]);
        }
    }

    {
        const char  *b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\","
                         "\"entry\":[{\"request\":{\"method\":\"GET\",\"url\":"
                         "\"MedicationRequest?patient=1&_sort=-date\"}},"
                         "{\"request\":{\"method\":\"POST\",\"url\":"
                         "\"Patient/_search\"}}]}";
        char         err[160];

        out.len = 0;
        CHECK(fhir_batch_translate(FHIR_DSTU2, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) == 0, "batch translated");
        fhir_buf_append(&out, "", 1);
        CHECK(HAS(out.data, "\"url\":\"MedicationOrder?patient=1&_sort:desc"
                            "=date\""), "batch entry url: %s", out.data);

        b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{"
            "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/1\"}}]}";
        CHECK(fhir_batch_translate(FHIR_DSTU2, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) != 0
              && HAS(err, "reads only"), "a write in a batch: %s", err);
        b = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\"}";
        CHECK(fhir_batch_translate(FHIR_STU3, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) != 0, "a transaction: %s", err);
        b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{"
            "\"request\":{\"method\":\"GET\",\"url\":\"Patient/1?_format=xml\"}}]}";
        CHECK(fhir_batch_translate(FHIR_STU3, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) != 0
              && HAS(err, "_format"), "an entry asking for XML: %s", err);
        b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{"
            "\"request\":{\"method\":\"GET\",\"url\":\"Patient/1?_format=json\"}}]}";
        out.len = 0;
        CHECK(fhir_batch_translate(FHIR_STU3, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) == 0
              && (fhir_buf_append(&out, "", 1), HAS(out.data, "\"url\":\"Patient/1?_format=json\"")),
              "an entry asking for JSON: as it is: %s", out.data);

        /* escapes: translated and handed on as the partner reads them */
        b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{"
            "\"request\":{\"method\":\"GET\",\"url\":"
            "\"MedicationRequest?patient\\u003d1\\u0026_sort=-date&x=a\\\"b\"}},"
            "{\"request\":{\"method\":\"POST\",\"url\":\"Patient\\/_search\"}}]}";
        out.len = 0;
        batch_seen.len = 0;
        CHECK(fhir_batch_translate(FHIR_DSTU2, b, strlen(b), 64, &out, err,
                                   sizeof(err), batch_entry, NULL) == 0,
              "a batch with escaped URLs: %s", err);
        fhir_buf_append(&out, "", 1);
        CHECK(HAS(out.data, "\"url\":\"MedicationOrder?patient=1&_sort:desc"
                            "=date&x=a\\\"b\""), "escaped entry url translated: %s",
              out.data);
        CHECK(HAS(out.data, "\"url\":\"Patient/_search\""),
              "an escaped /_search is a search: %s", out.data);
        fhir_buf_append(&batch_seen, "", 1);
        CHECK(batch_seen.data
              && strcmp(batch_seen.data, "0 MedicationRequest?patient=1&_sort=-date"
                                         "&x=a\"b|1 Patient/_search|") == 0,
              "the entries handed on decoded: %s", batch_seen.data);

        b = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{"
            "\"request\":{\"method\":\"GET\",\"url\":\"Patient/1\\r\\nX: 1\"}}]}";
        CHECK(fhir_batch_translate(FHIR_STU3, b, strlen(b), 64, &out, err,
                                   sizeof(err), NULL, NULL) != 0
              && HAS(err, "control character"), "an entry url with CR LF: %s", err);
    }

    fhir_buf_free(&out);
    fhir_buf_free(&batch_seen);
}


static void
test_oo(void)
{
    fhir_buf_t  out = { NULL, 0, 0 };

    fhir_oo_write(&out, "error", "invalid", "bad \"x\"\n", 8);
    fhir_buf_append(&out, "", 1);
    CHECK(strcmp(out.data, "{\"resourceType\":\"OperationOutcome\",\"issue\":"
                 "[{\"severity\":\"error\",\"code\":\"invalid\","
                 "\"diagnostics\":\"bad \\\"x\\\"\\u000a\"}]}") == 0,
          "OperationOutcome escapes its text: %s", out.data);
    CHECK(strcmp(fhir_oo_code_for_status(504), "timeout") == 0, "504 code");
    fhir_buf_free(&out);
}


/* t/golden/<version>/<name>.in.json -> exactly <name>.out.json */
static void
test_golden(const char *dir, fhir_version_t v)
{
    DIR            *d;
    struct dirent  *e;
    char            path[1024], err[256];
    char           *in, *want;
    size_t          len, wlen;
    fhir_buf_t      out = { NULL, 0, 0 };
    int             n = 0;

    d = opendir(dir);
    CHECK(d != NULL, "golden folder %s", dir);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        len = strlen(e->d_name);
        if (len < 9 || strcmp(e->d_name + len - 8, ".in.json") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        in = read_file(path, &len);
        snprintf(path + strlen(path) - 8, 10, ".out.json");
        want = read_file(path, &wlen);
        while (want && wlen && (want[wlen - 1] == '\n')) {
            want[--wlen] = '\0';
        }
        CHECK(in && want && convert(in, len, v, -1, &out, err, sizeof(err), 0)
                            == 0
              && out.len == wlen && memcmp(out.data, want, wlen) == 0,
              "golden %s", path);
        free(in);
        free(want);
        n++;
    }

    closedir(d);
    CHECK(n >= 10, "%s holds the golden cases (%d)", dir, n);
    fhir_buf_free(&out);
}


/* the chain: each seal is the HMAC of the line so far, the next links it */
static void
test_audit_chain(void)
{
    static const char   key[] = "0123456789abcdef0123456789abcdef";
    fhir_audit_chain_t  chain;
    fhir_buf_t          b = { NULL, 0, 0 };
    char                hex[FHIR_AUDIT_HMAC_HEX + 1], prev[FHIR_AUDIT_HMAC_HEX + 1];
    const char         *at;
    int                 i;

    memset(&chain, 0, sizeof(chain));
    fhir_audit_chain_init(&chain, key, sizeof(key) - 1);
    memset(prev, '0', FHIR_AUDIT_HMAC_HEX);
    prev[FHIR_AUDIT_HMAC_HEX] = '\0';

    for (i = 1; i <= 3; i++) {
        char  want[200];

        b.len = 0;
        CHECK(fhir_buf_puts(&b, "{") == 0
              && fhir_audit_str(&b, "event", "patient.read", 12) == 0
              && fhir_audit_seal(&chain, &b) == 0, "record %d sealed", i);
        snprintf(want, sizeof(want), "{\"event\":\"patient.read\",\"seq\":%d,"
                 "\"prev\":\"%s\",\"hmac\":\"", i, prev);
        CHECK(b.len == strlen(want) + FHIR_AUDIT_HMAC_HEX + 3
              && memcmp(b.data, want, strlen(want)) == 0,
              "record %d: seq and prev link the chain", i);
        at = b.data + strlen(want);
        CHECK(fhir_audit_hmac(key, sizeof(key) - 1, b.data, strlen(want), hex)
              == 0 && memcmp(at, hex, FHIR_AUDIT_HMAC_HEX) == 0,
              "record %d: hmac covers the line before it", i);
        memcpy(prev, at, FHIR_AUDIT_HMAC_HEX);
    }

    fhir_audit_chain_free(&chain);

    /* the chain's HMAC (a context keyed once, restarted per record) is
     * OpenSSL's HMAC() for keys shorter than, as long as and longer than
     * a SHA-256 block, and for lines across the block boundaries; and
     * HMAC() itself gives RFC 4231's test case 2 */
    CHECK(fhir_audit_hmac("Jefe", 4, "what do ya want for nothing?", 28, hex)
          == 0 && strcmp(hex, "5bdcc146bf60754e6a042426089575c7"
                              "5a003f089d2739839dec58b964ec3843") == 0,
          "HMAC-SHA256 of RFC 4231 test case 2: %s", hex);
    {
        static const size_t  key_lens[] = { 0, 1, 32, 63, 64, 65, 200, 256 };
        unsigned char        k[256];
        size_t               ki, n, len, bad = 0;
        char                 chained[FHIR_AUDIT_HMAC_HEX + 1];

        for (n = 0; n < sizeof(k); n++) {
            k[n] = (unsigned char) (n * 7 + 3);
        }

        for (ki = 0; ki < sizeof(key_lens) / sizeof(key_lens[0]); ki++) {
            for (len = 0; len <= 200; len++) {
                fhir_audit_chain_init(&chain, k, key_lens[ki]);
                b.len = 0;
                for (n = 0; n < len; n++) {
                    (void) fhir_buf_append(&b, &"abcdefghij"[n % 10], 1);
                }
                /* seq "1" and 64 zeros follow the text, then the seal */
                if (fhir_audit_seal_ext(&chain, &b, "", "", "", "") != 0
                    || b.len != len + 1 + 2 * FHIR_AUDIT_HMAC_HEX)
                {
                    bad++;
                    fhir_audit_chain_free(&chain);
                    continue;
                }
                memcpy(chained, b.data + len + 1 + FHIR_AUDIT_HMAC_HEX,
                       FHIR_AUDIT_HMAC_HEX);
                chained[FHIR_AUDIT_HMAC_HEX] = '\0';
                if (fhir_audit_hmac(k, key_lens[ki], b.data,
                                    len + 1 + FHIR_AUDIT_HMAC_HEX, hex) != 0
                    || strcmp(hex, chained) != 0)
                {
                    bad++;
                }
                fhir_audit_chain_free(&chain);
            }
        }

        CHECK(bad == 0, "the chain's HMAC is HMAC() for 8 key lengths and "
              "201 line lengths (%zu differ)", bad);
    }

    /* record members: escapes, null, numbers */
    b.len = 0;
    CHECK(fhir_buf_puts(&b, "{") == 0
          && fhir_audit_str(&b, "q", "a\"b\\c\n\001d", 8) == 0
          && fhir_audit_str(&b, "none", NULL, 0) == 0
          && fhir_audit_num(&b, "n", -1234567890123LL) == 0
          && fhir_audit_num(&b, "z", 0) == 0
          && b.len == strlen("{\"q\":\"a\\\"b\\\\c\\u000a\\u0001d\",\"none\":null,"
                             "\"n\":-1234567890123,\"z\":0")
          && memcmp(b.data, "{\"q\":\"a\\\"b\\\\c\\u000a\\u0001d\",\"none\":null,"
                    "\"n\":-1234567890123,\"z\":0", b.len) == 0,
          "audit members: %.*s", (int) b.len, b.data);

    /* a whole line: ts and chain first, every member in its place, nulls
     * for what is unknown, the seal last */
    {
#define T(s)  { (s), sizeof(s) - 1 }
        static const fhir_audit_record_t  f = {
            T("patient.read"), T("success"), T("rid"), { NULL, 0 },
            T("10.0.0.1"), T("dr \"x\""), { NULL, 0 }, T("app"), T("redox"),
            T("GET"), T("Patient"), T("p1"), T("p1"), { NULL, 0 },
            200, 200, 0, 1234
        };
#undef T
        static const char  want[] =
            "{\"ts\":\"2026-11-30T00:00:00.000Z\",\"chain\":\"h/1/2\","
            "\"event\":\"patient.read\",\"outcome\":\"success\","
            "\"request_id\":\"rid\",\"batch_id\":null,"
            "\"client_ip\":\"10.0.0.1\",\"subject\":\"dr \\\"x\\\"\","
            "\"tenant\":null,\"client_id\":\"app\",\"partner\":\"redox\","
            "\"method\":\"GET\",\"resource_type\":\"Patient\","
            "\"resource_id\":\"p1\",\"patient\":\"p1\",\"query\":null,"
            "\"status\":200,\"upstream_status\":200,\"entries\":0,"
            "\"bytes\":1234,\"seq\":1,\"prev\":\"";

        fhir_audit_chain_init(&chain, key, sizeof(key) - 1);
        b.len = 0;
        CHECK(fhir_audit_line(&chain, &b, "2026-11-30T00:00:00.000Z", 24,
                              "h/1/2", 5, &f) == 0
              && b.len > sizeof(want) - 1
              && memcmp(b.data, want, sizeof(want) - 1) == 0
              && b.data[b.len - 1] == '\n',
              "audit line: %.*s", (int) b.len, b.data);
        fhir_audit_chain_free(&chain);

        /* the record's own text (what an AuditEvent line carries): the
         * same members, from an opening brace on */
        {
            const char  *m = strstr(want, "\"event\"");
            size_t       n = (size_t) (strstr(want, ",\"seq\"") - m);

            b.len = 0;
            CHECK(fhir_audit_build(&b, &f) == 0
                  && b.len == n + 1 && b.data[0] == '{'
                  && memcmp(b.data + 1, m, n) == 0,
                  "audit record text: %.*s", (int) b.len, b.data);
        }
    }

    fhir_buf_free(&b);
}


/* the code systems that moved in R4 (MAPPING.md 1.4), and look-alikes that
 * did not: each looked up in the table it belongs to */
static void
test_code_systems(void)
{
#define THO  "http://terminology.hl7.org/CodeSystem/"
    static const char  *moved[][2] = {
        { "http://hl7.org/fhir/observation-category", THO "observation-category" },
        { "http://hl7.org/fhir/condition-category", THO "condition-category" },
        { "http://hl7.org/fhir/condition-clinical", THO "condition-clinical" },
        { "http://hl7.org/fhir/condition-ver-status", THO "condition-ver-status" },
        { "http://hl7.org/fhir/allergyintolerance-clinical", THO "allergyintolerance-clinical" },
        { "http://hl7.org/fhir/allergyintolerance-verification", THO "allergyintolerance-verification" },
        { "http://hl7.org/fhir/medication-request-category", THO "medicationrequest-category" },
        { "http://hl7.org/fhir/diagnosis-role", THO "diagnosis-role" },
        { "http://hl7.org/fhir/data-absent-reason", THO "data-absent-reason" },
        { "http://hl7.org/fhir/subscriber-relationship", THO "subscriber-relationship" },
        { "http://hl7.org/fhir/policyholder-relationship", THO "subscriber-relationship" },
        { "http://hl7.org/fhir/coverage-class", THO "coverage-class" },
        { "http://unitsofmeasure.org/", "http://unitsofmeasure.org" },
        { "http://hl7.org/fhir/v2/0203", THO "v2-0203" },
        { "http://hl7.org/fhir/v3/ActCode", THO "v3-ActCode" },
    };
    static const char  *kept[] = {
        "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org",
        "http://hl7.org/fhir/observation-categorx", "http://hl7.org/fhir/observation-category/",
        "https://hl7.org/fhir/observation-category", "http://hl7.org/fhir/v2/0203/x",
        "http://hl7.org/fhir/", "http://unitsofmeasure.org/x", "hxxp://hl7.org/fhir/coverage-class",
        "http://example.org/fhir/observation-category",
    };
#undef THO
    fj_arena_t    arena;
    fhir_conv_t   conv;
    const char   *to;
    size_t        i, n;

    memset(&arena, 0, sizeof(arena));
    memset(&conv, 0, sizeof(conv));
    conv.arena = &arena;

    for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        n = 0;
        to = fhir_code_system_r4(&conv, moved[i][0], strlen(moved[i][0]), &n);
        CHECK(to && n == strlen(moved[i][1]) && memcmp(to, moved[i][1], n) == 0,
              "code system %s -> %s", moved[i][0], moved[i][1]);
    }

    for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        CHECK(fhir_code_system_r4(&conv, kept[i], strlen(kept[i]), &n) == NULL,
              "code system %s kept", kept[i]);
    }

    fj_arena_free(&arena);
}


/* the token endpoint's form */
static void
test_form(void)
{
    static const char  form[] = "grant_type=client_credentials&client_id=a%2Bb"
                                "&scope=t1+t%20x&bad=%zz%4&client_secret=&x";
    char   out[sizeof(form)];
    long   n;

    n = fhir_form_arg(form, sizeof(form) - 1, "grant_type", out);
    CHECK(n == 18 && memcmp(out, "client_credentials", 18) == 0, "form: grant_type");
    n = fhir_form_arg(form, sizeof(form) - 1, "client_id", out);
    CHECK(n == 3 && memcmp(out, "a+b", 3) == 0, "form: %%2B is a plus");
    n = fhir_form_arg(form, sizeof(form) - 1, "scope", out);
    CHECK(n == 6 && memcmp(out, "t1 t x", 6) == 0, "form: + and %%20 are spaces");
    n = fhir_form_arg(form, sizeof(form) - 1, "bad", out);
    CHECK(n == 5 && memcmp(out, "%zz%4", 5) == 0, "form: broken escapes kept");
    CHECK(fhir_form_arg(form, sizeof(form) - 1, "client_secret", out) == 0, "form: empty value");
    CHECK(fhir_form_arg(form, sizeof(form) - 1, "x", out) == -1, "form: a name without = is no value");
    CHECK(fhir_form_arg(form, sizeof(form) - 1, "grant", out) == -1, "form: no prefix match");
    CHECK(fhir_form_arg("", 0, "scope", out) == -1, "form: empty form");
}



/* the audit's UTF-8 check and its %XX repair, on valid characters of
 * every length and on each kind of invalid sequence */
static void
test_utf8(void)
{
    static const struct {
        const char  *in;
        int          ok;
        const char  *fixed;
    } cases[] = {
        { "", 1, "" },
        { "patient=123&_count=10", 1, "patient=123&_count=10" },
        { "Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 1,
          "Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        { "name=\xff\xfe", 0, "name=%FF%FE" },
        { "\xc0\x80", 0, "%C0%80" },                      /* overlong NUL */
        { "\xe0\x80\xaf", 0, "%E0%80%AF" },              /* overlong '/' */
        { "\xed\xa0\x80", 0, "%ED%A0%80" },              /* a surrogate */
        { "\xf4\x90\x80\x80", 0, "%F4%90%80%80" },      /* > U+10FFFF */
        { "a\x80" "b", 0, "a%80b" },                          /* a lone continuation */
        { "\xe2\x82", 0, "%E2%82" },                      /* cut at the end */
        { "\xe2\x82x\xc3\xa9", 0, "%E2%82x\xc3\xa9" },  /* cut, then valid */
        { "abcdefgh\xff" "abcdefgh", 0, "abcdefgh%FFabcdefgh" },
    };
    char    out[64];
    size_t  i, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(fhir_audit_utf8_ok(cases[i].in, strlen(cases[i].in))
              == cases[i].ok, "utf8: case %zu is %svalid", i,
              cases[i].ok ? "" : "in");
        n = fhir_audit_utf8_fix(out, cases[i].in, strlen(cases[i].in));
        CHECK(n == strlen(cases[i].fixed)
              && memcmp(out, cases[i].fixed, n) == 0
              && fhir_audit_utf8_ok(out, n),
              "utf8: case %zu repaired as %s (%.*s)", i, cases[i].fixed,
              (int) n, out);
    }
}


/* the escaper against a byte-by-byte reference, on every byte value and
 * on runs of each length around the word sizes */
static void
test_escape(void)
{
    static const char  hex[] = "0123456789abcdef";
    fhir_buf_t         out = { NULL, 0, 0 };
    char               in[300], want[2000];
    size_t             i, j, n, w;
    unsigned           seed = 1;
    int                bad = 0;

    for (j = 0; j < 2000; j++) {
        n = j % 40 + (j % 7 == 0 ? 200 : 0);
        for (i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            /* mostly plain ASCII, sometimes a byte that must be escaped
             * or UTF-8 that must not */
            in[i] = (seed >> 16) % 10 ? (char) ('a' + (seed >> 8) % 26)
                                      : (char) (seed >> 20);
        }
        w = 0;
        for (i = 0; i < n; i++) {
            unsigned char  c = (unsigned char) in[i];

            if (c == '"' || c == '\\') {
                want[w++] = '\\';
                want[w++] = (char) c;
            } else if (c < 0x20) {
                memcpy(want + w, "\\u00", 4);
                want[w + 4] = hex[c >> 4];
                want[w + 5] = hex[c & 0xf];
                w += 6;
            } else {
                want[w++] = (char) c;
            }
        }
        out.len = 0;
        if (fhir_json_escape(&out, in, n) != 0 || out.len != w
            || memcmp(out.data, want, w) != 0)
        {
            bad++;
        }
    }

    CHECK(bad == 0, "the escaper agrees with the reference (%d differ)", bad);
    fhir_buf_free(&out);
}

/* the patient a search names, as the partner reads its parameters */
static void
test_audit_patient(void)
{
    static const struct {
        const char  *path, *args, *patient;
    } cases[] = {
        { "Observation", "patient=123&_count=2", "123" },
        { "Observation", "subject=Patient/123", "123" },
        { "Observation", "subject:Patient=123", "123" },
        { "Observation", "pati%65nt=123", "123" },
        { "Observation", "_count=1&subject=http://x/fhir/Patient/123", "123" },
        { "Coverage", "beneficiary=Patient%2F77", "77" },
        { "Patient", "_id=5", "5" },
        { "Observation", "_id=5", "" },
        { "Observation", "patient:missing=true", "" },
        { "Observation", "subject:Group=9", "" },
        { "Observation", "subject=Group/9", "" },
        { "Observation", "patient.name=Smith", "" },
    };
    fhir_audit_what_t  w;
    size_t             i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fhir_audit_classify(0, cases[i].path, strlen(cases[i].path),
                            cases[i].args, strlen(cases[i].args), &w);
        CHECK(strcmp(w.patient, cases[i].patient) == 0,
              "audit: %s?%s names patient \"%s\" (got \"%s\")", cases[i].path,
              cases[i].args, cases[i].patient, w.patient);
    }
}


/* the unescaper: the cases JSON has, and back from the escaper */
static void
test_unescape(void)
{
    static const struct {
        const char  *raw, *text;
        size_t       len;
    } cases[] = {
        { "plain", "plain", 5 },
        { "a\\\"b", "a\"b", 3 },
        { "\\\\ \\/ \\b\\f\\n\\r\\t", "\\ / \b\f\n\r\t", 9 },
        { "patient\\u003dX\\u0026_count=1", "patient=X&_count=1", 18 },
        { "\\u00e9\\u20ac", "\xc3\xa9\xe2\x82\xac", 5 },
        { "\\ud83d\\ude00!", "\xf0\x9f\x98\x80!", 5 },
        { "\\ud83dx", "\xef\xbf\xbdx", 4 },
        { "\\udc00\\ud800", "\xef\xbf\xbd\xef\xbf\xbd", 6 },
        { "\\u0000a", "\0a", 2 },
    };
    fhir_buf_t  out = { NULL, 0, 0 };
    char        buf[64], in[300], back[310];
    size_t      i, j, n;
    unsigned    seed = 7;
    int         bad = 0;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = fhir_json_unescape(buf, sizeof(buf), cases[i].raw,
                               strlen(cases[i].raw));
        CHECK(n == cases[i].len && memcmp(buf, cases[i].text, n) == 0
              && buf[n] == '\0', "unescape \"%s\"", cases[i].raw);
    }

    n = fhir_json_unescape(buf, 3, "abcdef", 6);
    CHECK(n == 2 && strcmp(buf, "ab") == 0, "unescape: cut to the room");
    n = fhir_json_unescape(buf, 3, "a\\u00e9", 7);
    CHECK(n == 1 && strcmp(buf, "a") == 0,
          "unescape: a character that does not fit is left out whole");

    for (j = 0; j < 2000; j++) {
        n = j % 40 + (j % 7 == 0 ? 200 : 0);
        for (i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            in[i] = (seed >> 16) % 10 ? (char) ('a' + (seed >> 8) % 26)
                                      : (char) (seed >> 20);
        }
        out.len = 0;
        if (fhir_json_escape(&out, in, n) != 0
            || fhir_json_unescape(back, sizeof(back), out.data, out.len) != n
            || memcmp(back, in, n) != 0)
        {
            bad++;
        }
    }

    CHECK(bad == 0, "unescape(escape(x)) == x (%d differ)", bad);
    fhir_buf_free(&out);
}

int
main(int argc, char **argv)
{
    const char  *data = argc > 1 ? argv[1] : "t/data/corpus";
    char         dir[512];

    srand(42);

    test_errors();
    test_conversions();
    test_request();
    test_reuse();
    test_oo();
    test_audit_chain();
    test_form();
    test_code_systems();
    test_escape();
    test_unescape();
    test_audit_patient();
    test_utf8();

    test_golden("t/golden/dstu2", FHIR_DSTU2);
    test_golden("t/golden/stu3", FHIR_STU3);

    snprintf(dir, sizeof(dir), "%s/dstu2", data);
    test_corpus(dir, FHIR_DSTU2);
    snprintf(dir, sizeof(dir), "%s/stu3", data);
    test_corpus(dir, FHIR_STU3);

    printf("core: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
