/*
 * libFuzzer target: the JSON parser on its own.
 *   - what it accepts, cJSON accepts too (it is never the laxer one), and
 *     written back it is the same bytes less the whitespace, which parse
 *     again to the same bytes;
 *   - as a prefix parse, a whole container ends where fj_parse says, and
 *     every shorter cut of it is "incomplete", never an error or a value.
 */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fhir_json.h"


#define FAIL()  abort()


static int
fuzz_has(const char *s, size_t len, const char *what)
{
    size_t  i, n = strlen(what);

    for (i = 0; i + n <= len; i++) {
        if (memcmp(s + i, what, n) == 0) {
            return 1;
        }
    }
    return 0;
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fj_arena_t   a = { NULL, 0 };
    fj_node_t   *n, *m;
    fhir_buf_t   out = { NULL, 0, 0 }, again = { NULL, 0, 0 };
    const char  *err, *text = (const char *) data;
    size_t       at, used, k, step;
    int          inc;
    cJSON       *cj;

    if (size > 1 << 16) {
        return 0;
    }

    n = fj_parse(&a, text, size, 32, &err, &at);

    if (n == NULL) {
        if (at > size) {
            FAIL();
        }
        fj_arena_free(&a);
        return 0;
    }

    /* cJSON reads to a NUL; it also refuses a lone surrogate escape,
     * which RFC 8259 allows and fj_parse keeps as sent */
    if (memchr(data, '\0', size) == NULL && !fuzz_has(text, size, "\\u")) {
        cj = cJSON_ParseWithLength(text, size);
        if (cj == NULL) {
            FAIL();
        }
        cJSON_Delete(cj);
    }

    if (fj_write(&out, n) != 0) {
        FAIL();
    }
    m = fj_parse(&a, out.data, out.len, 32, &err, &at);
    if (m == NULL || fj_write(&again, m) != 0 || again.len != out.len
        || memcmp(again.data, out.data, out.len) != 0)
    {
        FAIL();
    }

    if (n->type == FJ_OBJECT || n->type == FJ_ARRAY) {
        /* the compact form as a prefix of itself and more */
        again.len = 0;
        if (fhir_buf_append(&again, out.data, out.len) != 0
            || fhir_buf_append(&again, "x", 1) != 0)
        {
            FAIL();
        }
        m = fj_parse_prefix(&a, again.data, again.len, 32, &used, &inc, &err,
                            &at);
        if (m == NULL || used != out.len) {
            FAIL();
        }

        /* cuts of it: at most 64 of them, spread over its length */
        step = out.len / 64 + 1;
        for (k = 0; k < out.len; k += step) {
            m = fj_parse_prefix(&a, out.data, k, 32, &used, &inc, &err, &at);
            if (m != NULL || !inc) {
                FAIL();
            }
        }
    }

    fhir_buf_free(&out);
    fhir_buf_free(&again);
    fj_arena_free(&a);
    return 0;
}
