/*
 * ngx_fhir core: request translation (see fhir_request.h).
 *
 * Resource types R4 renamed go back to the partner's names (DSTU2:
 * MedicationRequest -> MedicationOrder).  Sorting: R4 and STU3 write
 * _sort=-date, DSTU2 _sort:desc=date (and _sort:asc=date); each is written
 * the partner's way.  _format: a JSON type of the other version becomes
 * the partner's (DSTU2: application/json+fhir); whether a format may be
 * asked for at all is fhir_format_ok()'s to say, before.  Every other
 * parameter passes byte for byte (a partner's paging link may be signed).
 */

#include <stdio.h>
#include <string.h>

#include "fhir_request.h"


const char *
fhir_partner_type_name(fhir_version_t to, const char *type, size_t len)
{
    if (to == FHIR_DSTU2) {
        if (len == 17 && memcmp(type, "MedicationRequest", 17) == 0) {
            return "MedicationOrder";
        }
        if (len == 19 && memcmp(type, "CapabilityStatement", 19) == 0) {
            return "Conformance";
        }
    }

    return NULL;
}


/* what a _format value names (fhir_format_kind) */
#define FHIR_FORMAT_OTHER       0
#define FHIR_FORMAT_JSON        1
#define FHIR_FORMAT_FHIR_JSON   2      /* application/fhir+json, STU3, R4 */
#define FHIR_FORMAT_JSON_FHIR   3      /* application/json+fhir, DSTU2 */


static int fhir_hex_digit(unsigned char c);
static int fhir_format_kind(const char *v, size_t len, int *params);


static int
fhir_starts(const char *p, size_t len, const char *s)
{
    size_t  n = strlen(s);

    return len >= n && memcmp(p, s, n) == 0;
}


/* one name=value pair of the query string */
static int
fhir_translate_param(fhir_version_t to, const char *p, size_t len,
    fhir_buf_t *out)
{
    int          kind, params;
    const char  *v;
    size_t       vlen;

    /* _format: a version's JSON type (the other one's, or with parameters
     * such as R4's ";fhirVersion=4.0") becomes the partner's */
    if (len > 8 && memcmp(p, "_format=", 8) == 0) {
        kind = fhir_format_kind(p + 8, len - 8, &params);

        if ((kind == FHIR_FORMAT_FHIR_JSON || kind == FHIR_FORMAT_JSON_FHIR)
            && (params
                || (kind == FHIR_FORMAT_FHIR_JSON) != (to != FHIR_DSTU2)))
        {
            return fhir_buf_puts(out, to == FHIR_DSTU2
                                      ? "_format=application%2Fjson%2Bfhir"
                                      : "_format=application%2Ffhir%2Bjson");
        }

        return fhir_buf_append(out, p, len);
    }

    if (to == FHIR_DSTU2) {
        /* _sort=-x -> _sort:desc=x; _sort=x stays (ascending) */
        if (fhir_starts(p, len, "_sort=-")) {
            return fhir_buf_puts(out, "_sort:desc=")
                   || fhir_buf_append(out, p + 7, len - 7);
        }

    } else {
        /* _sort:desc=x -> _sort=-x, _sort:asc=x -> _sort=x */
        if (fhir_starts(p, len, "_sort:desc=")) {
            v = p + 11;
            vlen = len - 11;
            return fhir_buf_puts(out, "_sort=-")
                   || fhir_buf_append(out, v, vlen);
        }
        if (fhir_starts(p, len, "_sort:asc=")) {
            return fhir_buf_puts(out, "_sort=")
                   || fhir_buf_append(out, p + 10, len - 10);
        }
    }

    return fhir_buf_append(out, p, len);
}


/*
 * What a _format value names, as in the query string (%XX escapes
 * decoded; a '+' taken as itself, as clients write "application/fhir+json";
 * any case; parameters after a ';' left aside): JSON in general (json,
 * text/json, application/json, or no value), one version's JSON type, or
 * something else.
 */
static int
fhir_format_kind(const char *v, size_t len, int *params)
{
    static const struct {
        const char  *name;
        int          kind;
    } formats[] = {
        { "json", FHIR_FORMAT_JSON },
        { "text/json", FHIR_FORMAT_JSON },
        { "application/json", FHIR_FORMAT_JSON },
        { "application/fhir+json", FHIR_FORMAT_FHIR_JSON },
        { "application/json+fhir", FHIR_FORMAT_JSON_FHIR },
        { NULL, 0 }
    };
    char           buf[32];
    size_t         n, i;
    int            hi, lo;
    unsigned char  c;

    *params = 0;

    for (i = 0, n = 0; i < len; i++) {
        c = (unsigned char) v[i];

        if (c == '%' && len - i > 2
            && (hi = fhir_hex_digit((unsigned char) v[i + 1])) >= 0
            && (lo = fhir_hex_digit((unsigned char) v[i + 2])) >= 0)
        {
            c = (unsigned char) (hi * 16 + lo);
            i += 2;
        }

        if (c == ';') {
            *params = 1;
            break;
        }

        if (n == sizeof(buf) - 1) {
            return FHIR_FORMAT_OTHER;
        }

        buf[n++] = (char) ((c >= 'A' && c <= 'Z') ? c | 0x20 : c);
    }

    buf[n] = '\0';

    if (n == 0) {
        return FHIR_FORMAT_JSON;       /* none named: the default */
    }

    for (i = 0; formats[i].name; i++) {
        if (strcmp(buf, formats[i].name) == 0) {
            return formats[i].kind;
        }
    }

    return FHIR_FORMAT_OTHER;
}


int
fhir_request_translate(fhir_version_t to, const char *path, size_t path_len,
    const char *args, size_t args_len, fhir_buf_t *out)
{
    const char  *seg, *name, *amp, *end;
    size_t       n;

    seg = memchr(path, '/', path_len);
    n = seg ? (size_t) (seg - path) : path_len;

    name = fhir_partner_type_name(to, path, n);

    if (name) {
        if (fhir_buf_puts(out, name) != 0
            || fhir_buf_append(out, path + n, path_len - n) != 0)
        {
            return -1;
        }

    } else if (fhir_buf_append(out, path, path_len) != 0) {
        return -1;
    }

    if (args_len == 0) {
        return 0;
    }

    if (fhir_buf_append(out, "?", 1) != 0) {
        return -1;
    }

    end = args + args_len;

    while (args < end) {
        amp = memchr(args, '&', (size_t) (end - args));
        n = amp ? (size_t) (amp - args) : (size_t) (end - args);

        if (fhir_translate_param(to, args, n, out) != 0) {
            return -1;
        }

        args += n;

        if (amp) {
            if (fhir_buf_append(out, "&", 1) != 0) {
                return -1;
            }
            args++;
        }
    }

    return 0;
}


int
fhir_format_ok(const char *args, size_t len)
{
    int          params;
    const char  *p, *end, *amp;
    size_t       n;

    end = args + len;

    for (p = args; p < end; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }
        n = (size_t) (amp - p);

        if (n > 8 && memcmp(p, "_format=", 8) == 0
            && fhir_format_kind(p + 8, n - 8, &params) == FHIR_FORMAT_OTHER)
        {
            return 0;
        }
    }

    return 1;
}


int
fhir_batch_translate(fhir_version_t to, const char *body, size_t len,
    unsigned max_depth, fhir_buf_t *out, char *err, size_t err_len,
    fhir_batch_entry_pt on_entry, void *data)
{
    int          rc = -1;
    char        *p, *text;
    size_t       at, n, i, tlen;
    fhir_buf_t   url = { NULL, 0, 0 }, esc = { NULL, 0, 0 };
    fj_node_t   *bundle, *entries, *e, *req, *method, *u;
    fj_arena_t   arena = { NULL, 0 };
    const char  *perr, *q;

    bundle = fj_parse(&arena, body, len, max_depth, &perr, &at);
    if (bundle == NULL) {
        snprintf(err, err_len, "the batch is not valid JSON: %s at byte %zu",
                 perr, at);
        goto done;
    }

    if (!fj_str_is(fj_get(bundle, "resourceType"), "Bundle")
        || !fj_str_is(fj_get(bundle, "type"), "batch"))
    {
        snprintf(err, err_len, "only a Bundle of type \"batch\" can be "
                 "posted to the base");
        goto done;
    }

    entries = fj_get(bundle, "entry");
    if (entries && entries->type != FJ_ARRAY) {
        snprintf(err, err_len, "Bundle.entry is not an array");
        goto done;
    }

    for (e = entries ? entries->child : NULL; e; e = e->next) {
        req = fj_get(e, "request");
        method = fj_get(req, "method");
        u = fj_get_str(req, "url");

        if (u == NULL || method == NULL) {
            snprintf(err, err_len, "a batch entry has no request.method or "
                     "request.url");
            goto done;
        }

        /* the URL the partner will read, its JSON escapes decoded (a
         * client may write "=" or "&" as \u003d, \u0026): what is checked,
         * translated and audited is what the partner gets */
        text = fj_alloc(&arena, u->raw_len + 1);
        if (text == NULL) {
            snprintf(err, err_len, "out of memory");
            goto done;
        }
        tlen = fhir_json_unescape(text, u->raw_len + 1, u->raw, u->raw_len);

        for (i = 0; i < tlen; i++) {
            if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f) {
                snprintf(err, err_len, "a batch entry's request.url holds a "
                         "control character");
                goto done;
            }
        }

        if (tlen == 0) {
            snprintf(err, err_len, "a batch entry's request.url is empty");
            goto done;
        }

        if (!fj_str_is(method, "GET")
            && !(fj_str_is(method, "POST") && tlen > 8
                 && memcmp(text + tlen - 8, "/_search", 8) == 0))
        {
            snprintf(err, err_len, "the gateway serves reads only: a batch "
                     "entry asks for %.*s", (int) method->raw_len,
                     method->raw);
            goto done;
        }

        if (on_entry) {
            on_entry(data, fj_str_is(method, "POST"), text, tlen);
        }

        q = memchr(text, '?', tlen);
        n = q ? (size_t) (q - text) : tlen;

        if (q && !fhir_format_ok(q + 1, tlen - n - 1)) {
            snprintf(err, err_len, "a batch entry asks for a _format other "
                     "than JSON (the gateway answers in FHIR JSON only)");
            goto done;
        }

        url.len = 0;
        if (fhir_request_translate(to, text[0] == '/' ? text + 1 : text,
                                   text[0] == '/' ? n - 1 : n,
                                   q ? q + 1 : "", q ? tlen - n - 1 : 0,
                                   &url)
            != 0)
        {
            snprintf(err, err_len, "out of memory");
            goto done;
        }

        /* back into the Bundle as JSON string content */
        esc.len = 0;
        if (fhir_json_escape(&esc, url.data, url.len) != 0) {
            snprintf(err, err_len, "out of memory");
            goto done;
        }

        p = fj_alloc(&arena, esc.len);
        if (p == NULL) {
            snprintf(err, err_len, "out of memory");
            goto done;
        }
        memcpy(p, esc.data, esc.len);
        u->raw = p;
        u->raw_len = esc.len;
    }

    if (fj_write(out, bundle) != 0) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }

    rc = 0;

done:

    fhir_buf_free(&url);
    fhir_buf_free(&esc);
    fj_arena_free(&arena);
    return rc;
}


static int
fhir_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


long
fhir_form_arg(const char *form, size_t len, const char *name, char *out)
{
    const char  *p, *end, *amp, *eq, *s;
    size_t       nlen = strlen(name);
    char        *d;
    int          hi, lo;

    end = form + len;

    for (p = form; p < end; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', (size_t) (amp - p));
        if (eq == NULL || (size_t) (eq - p) != nlen
            || memcmp(p, name, nlen) != 0)
        {
            continue;
        }

        d = out;

        for (s = eq + 1; s < amp; s++) {
            if (*s == '+') {
                *d++ = ' ';

            } else if (*s == '%' && amp - s > 2
                       && (hi = fhir_hex_digit((unsigned char) s[1])) >= 0
                       && (lo = fhir_hex_digit((unsigned char) s[2])) >= 0)
            {
                *d++ = (char) (hi * 16 + lo);
                s += 2;

            } else {
                *d++ = *s;
            }
        }

        return (long) (d - out);
    }

    return -1;
}
