/*
 * libFuzzer target: the streaming tokenizer and rewriter.  The first byte
 * picks the version and a chunk size; the rest is fed in those chunks, and
 * the output must be the same as with one chunk (or both must fail).
 */

#include <stdlib.h>
#include <string.h>

#include "fhir_stream.h"


static int
run(const char *data, size_t len, fhir_version_t v, size_t chunk,
    fhir_buf_t *out)
{
    fhir_conv_t     conv;
    fj_arena_t      arena = { NULL, 0 };
    fhir_stream_t  *s;
    size_t          off, n;
    int             rc = 0;

    memset(&conv, 0, sizeof(conv));
    conv.from = v;
    conv.arena = &arena;
    conv.partner_base = "http://p/fhir";
    conv.partner_base_len = 13;
    conv.public_base = "http://g/fhir/p";
    conv.public_base_len = 15;

    s = fhir_stream_create(&conv, 1 << 20, 32);
    out->len = 0;

    for (off = 0; off < len && rc == 0; off += n) {
        n = len - off < chunk ? len - off : chunk;
        rc = fhir_stream_feed(s, data + off, n, out);
    }
    if (rc == 0) {
        rc = fhir_stream_finish(s, out);
    }

    fhir_stream_destroy(s);
    fj_arena_free(&arena);
    return rc;
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static fhir_buf_t  a, b;
    fhir_version_t     v;
    size_t             chunk;
    int                ra, rb;

    if (size < 1) {
        return 0;
    }

    v = (data[0] & 3) == 0 ? FHIR_DSTU2 : (data[0] & 3) == 1 ? FHIR_STU3
                                                             : FHIR_R4;
    chunk = (data[0] >> 2) + 1;

    ra = run((const char *) data + 1, size - 1, v, size, &a);
    rb = run((const char *) data + 1, size - 1, v, chunk, &b);

    if (ra != rb || (ra == 0 && (a.len != b.len
                                 || memcmp(a.data, b.data, a.len) != 0)))
    {
        abort();   /* chunking changed the result */
    }

    return 0;
}
