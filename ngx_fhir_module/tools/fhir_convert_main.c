/*
 * fhir-convert: converts DSTU2 / STU3 FHIR JSON files to R4 with the same
 * streaming core as the nginx module, for hospital IT to check a partner's
 * payloads.  R4 JSON goes to stdout, one document per line.
 *
 *   fhir-convert [--from dstu2|stu3|r4|auto] [--chunk N] FILE...
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_stream.h"


static int
read_file(const char *path, fhir_buf_t *b)
{
    FILE    *f;
    size_t   n;

    f = (strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fhir-convert: %s: %s\n", path, strerror(errno));
        return -1;
    }

    b->len = 0;

    for ( ;; ) {
        if (fhir_buf_reserve(b, 65536) != 0) {
            fprintf(stderr, "fhir-convert: out of memory\n");
            return -1;
        }
        n = fread(b->data + b->len, 1, 65536, f);
        b->len += n;
        if (n < 65536) {
            break;
        }
    }

    if (ferror(f)) {
        fprintf(stderr, "fhir-convert: %s: read error\n", path);
        return -1;
    }

    if (f != stdin) {
        fclose(f);
    }

    return 0;
}


static void
usage(void)
{
    fprintf(stderr,
        "usage: fhir-convert [--from dstu2|stu3|r4|auto] [--chunk N] FILE...\n"
        "Converts FHIR DSTU2 or STU3 JSON to FHIR R4 (US Core aligned) and\n"
        "prints it on stdout.  FILE may be - for standard input.\n");
}


int
main(int argc, char **argv)
{
    fhir_version_t   from = FHIR_VERSION_UNKNOWN, v;
    fhir_stream_t   *s;
    fhir_conv_t      conv;
    fj_arena_t       arena = { NULL, 0 };
    fhir_buf_t       in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
    size_t           chunk = 0, off, n;
    int              i, rc = 0, auto_version = 1;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "auto") == 0) {
                auto_version = 1;
                continue;
            }
            from = fhir_version_from_string(argv[i]);
            if (from == FHIR_VERSION_UNKNOWN) {
                fprintf(stderr, "fhir-convert: unknown version \"%s\"\n",
                        argv[i]);
                usage();
                return 2;
            }
            auto_version = 0;

        } else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc) {
            chunk = (size_t) strtoul(argv[++i], NULL, 10);

        } else if (strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;

        } else {
            usage();
            return 2;
        }
    }

    if (i >= argc) {
        usage();
        return 2;
    }

    for ( /* void */ ; i < argc; i++) {

        if (read_file(argv[i], &in) != 0) {
            rc = 1;
            continue;
        }

        v = from;
        if (auto_version) {
            v = fhir_detect_version(in.data, in.len);
            if (v == FHIR_VERSION_UNKNOWN) {
                fprintf(stderr, "fhir-convert: %s: cannot tell the FHIR "
                        "version; use --from dstu2|stu3\n", argv[i]);
                rc = 1;
                continue;
            }
        }

        memset(&conv, 0, sizeof(conv));
        conv.from = v;
        conv.arena = &arena;

        s = fhir_stream_create(&conv, 64 * 1024 * 1024, 100);
        if (s == NULL) {
            fprintf(stderr, "fhir-convert: out of memory\n");
            return 1;
        }

        out.len = 0;

        for (off = 0; off < in.len; off += n) {
            n = chunk ? chunk : in.len;
            if (n > in.len - off) {
                n = in.len - off;
            }
            if (fhir_stream_feed(s, in.data + off, n, &out) != 0) {
                break;
            }
        }

        if (fhir_stream_finish(s, &out) != 0) {
            fprintf(stderr, "fhir-convert: %s: %s\n", argv[i],
                    fhir_stream_error(s));
            rc = 1;

        } else {
            fwrite(out.data, 1, out.len, stdout);
            fputc('\n', stdout);
            if (conv.unmapped) {
                fprintf(stderr, "fhir-convert: %s: %s, %lu resources "
                        "converted, %lu of unmapped types forwarded as "
                        "they are\n", argv[i], fhir_version_name(v),
                        conv.resources, conv.unmapped);
            }
        }

        fhir_stream_destroy(s);
        fj_arena_free(&arena);
    }

    fhir_buf_free(&in);
    fhir_buf_free(&out);
    return rc;
}
