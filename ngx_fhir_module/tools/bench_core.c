/*
 * bench-core: the conversion core's own throughput on one core, without
 * nginx: converts FILE (in 32 KB chunks, as nginx would feed it) ROUNDS
 * times and prints MB/s of input.
 *
 *   bench-core --from dstu2|stu3 FILE [ROUNDS]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fhir_stream.h"


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

    if (argc < 4 || strcmp(argv[1], "--from") != 0) {
        fprintf(stderr, "usage: bench-core --from dstu2|stu3 FILE [ROUNDS]\n");
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
