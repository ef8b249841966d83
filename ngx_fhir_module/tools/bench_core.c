/*
 * bench-core: the conversion core's own throughput on one core, without
 * nginx: converts FILE (in 32 KB chunks, as nginx would feed it) ROUNDS
 * times and prints MB/s of input.
 *
 *   bench-core --from dstu2|stu3 FILE [ROUNDS]
 *
 * With --audit, the audit trail's own work for one read event instead: a
 * record built and sealed (HMAC-SHA256 chained over the previous one) by
 * the functions the gateway calls, N times; prints microseconds per record.
 *
 *   bench-core --audit [N]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fhir_stream.h"
#include "fhir_audit.h"


#define T(s)  { (s), sizeof(s) - 1 }

static int
bench_audit(int n)
{
    int                  i;
    double               secs;
    fhir_buf_t           line = { NULL, 0, 0 };
    struct timespec      t0, t1;
    fhir_audit_chain_t   chain;
    static const char    key[32] = "bench-core audit key, 32 bytes.";
    /* a vital-signs search, with the values of a typical gateway record;
     * built by the same functions as the gateway's */
    static const fhir_audit_record_t  f = {
        T("vitals.search"), T("success"),
        T("cbec4674eae21ca9111c9ea893f281e8"), { NULL, 0 }, T("127.0.0.1"),
        T("clinician-7"), T("contoso-health"), T("teams-patients"),
        T("redox"), T("GET"), T("Observation"), { NULL, 0 },
        T("smart-1081332"), T("patient=smart-1081332&category=vital-signs"),
        200, 200, 10, 8270
    };

    memset(&chain, 0, sizeof(chain));
    fhir_audit_chain_init(&chain, key, sizeof(key));

    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < n; i++) {
        line.len = 0;
        if (fhir_audit_line(&chain, &line, "2026-11-30T03:04:12.122Z", 24,
                            "vm/6710/343051", 14, &f) != 0)
        {
            fprintf(stderr, "audit record not built\n");
            return 1;
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double) (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    printf("audit: %.2f us per record (%zu bytes, built and sealed, x %d)\n",
           secs * 1e6 / n, line.len, n);

    fhir_audit_chain_free(&chain);
    fhir_buf_free(&line);
    return 0;
}

#undef T


int
main(int argc, char **argv)
{
    FILE            *f;
    char            *text;
    long             len, off, n;
    int              rounds, i;
    double           secs;
    fhir_buf_t       out = { NULL, 0, 0 };
    fhir_conv_t      conv;
    fj_arena_t       arena = { NULL, 0 };
    fhir_stream_t   *s;
    struct timespec  t0, t1;

    if (argc >= 2 && strcmp(argv[1], "--audit") == 0) {
        return bench_audit(argc > 2 ? atoi(argv[2]) : 200000);
    }

    if (argc < 4 || strcmp(argv[1], "--from") != 0) {
        fprintf(stderr, "usage: bench-core --from dstu2|stu3 FILE [ROUNDS]\n"
                        "       bench-core --audit [N]\n");
        return 2;
    }

    f = fopen(argv[3], "rb");
    if (f == NULL) {
        perror(argv[3]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t) len);
    if (text == NULL || fread(text, 1, (size_t) len, f) != (size_t) len) {
        fprintf(stderr, "cannot read %s\n", argv[3]);
        return 1;
    }
    fclose(f);

    rounds = argc > 4 ? atoi(argv[4]) : 20;

    memset(&conv, 0, sizeof(conv));
    conv.from = fhir_version_from_string(argv[2]);
    conv.arena = &arena;
    conv.partner_base = "http://127.0.0.1:1/fhir";
    conv.partner_base_len = strlen(conv.partner_base);
    conv.public_base = "http://127.0.0.1:8080/fhir/p";
    conv.public_base_len = strlen(conv.public_base);

    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < rounds; i++) {
        s = fhir_stream_create(&conv, 16 * 1024 * 1024, 64);
        for (off = 0; off < len; off += n) {
            n = len - off < 32768 ? len - off : 32768;
            if (fhir_stream_feed(s, text + off, (size_t) n, &out) != 0) {
                break;
            }
            out.len = 0;   /* as the filter hands it on */
        }
        if (fhir_stream_finish(s, &out) != 0) {
            fprintf(stderr, "conversion failed: %s\n", fhir_stream_error(s));
            return 1;
        }
        out.len = 0;
        fhir_stream_destroy(s);
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double) (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    printf("core: %.1f MB/s (%ld bytes x %d in %.3f s)\n",
           (double) len * rounds / secs / 1e6, len, rounds, secs);

    free(text);
    fhir_buf_free(&out);
    fj_arena_free(&arena);
    return 0;
}
