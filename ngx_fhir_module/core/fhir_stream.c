/*
 * ngx_fhir core: the streaming driver (see fhir_stream.h).
 *
 * The top-level object is read member by member.  Members are captured as
 * raw text (a structural scan that only tracks strings and nesting) and
 * gathered into a compact object text.  When the document is a Bundle and
 * its "entry" array starts, the members seen so far are converted and
 * written, then each entry is captured, parsed, converted and written on its
 * own; members after the array are written at the end.  Any other document
 * is parsed and converted whole at its end.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_stream.h"


typedef enum {
    ST_START = 0,
    ST_KEY_OR_END,      /* after '{': a key or '}' */
    ST_KEY_NEXT,        /* after ',': a key */
    ST_KEY,             /* inside a key */
    ST_COLON,
    ST_VALUE,           /* before a member value */
    ST_CAPTURE,         /* inside a member value */
    ST_AFTER_VALUE,     /* ',' or '}' */
    ST_ENTRY_FIRST,     /* after "entry":[ : an entry or ']' */
    ST_ENTRY_NEXT,      /* after ',': an entry */
    ST_ENTRY_CAPTURE,
    ST_ENTRY_AFTER,     /* ',' or ']' */
    ST_DONE,
    ST_FAILED
} fhir_stream_state_e;


struct fhir_stream_s {
    fhir_conv_t         *conv;
    size_t               max_resource;
    unsigned             max_depth;

    fhir_stream_state_e  state;

    fhir_buf_t           key;        /* the current member's raw key */
    fhir_buf_t           obj;        /* "{" + members gathered so far */
    fhir_buf_t           cap;        /* the value being captured */

    /* capture scanner */
    unsigned             depth;
    unsigned             in_string:1;
    unsigned             escape:1;
    unsigned             scalar:1;

    unsigned             key_escape:1;
    unsigned             bundle:1;   /* resourceType is "Bundle" */
    unsigned             streamed:1; /* the entry array has been opened */
    unsigned             bom:1;

    unsigned long        entries;
    unsigned long long   offset;

    char                 err[224];
};


static int fhir_stream_fail(fhir_stream_t *s, const char *msg);


fhir_stream_t *
fhir_stream_create(fhir_conv_t *conv, size_t max_resource, unsigned max_depth)
{
    fhir_stream_t  *s;

    s = calloc(1, sizeof(fhir_stream_t));
    if (s == NULL) {
        return NULL;
    }

    s->conv = conv;
    s->max_resource = max_resource;
    s->max_depth = max_depth;
    s->state = ST_START;

    return s;
}


void
fhir_stream_limits(fhir_stream_t *s, size_t max_resource, unsigned max_depth)
{
    s->max_resource = max_resource;
    s->max_depth = max_depth;
}


void
fhir_stream_reset(fhir_stream_t *s, fhir_conv_t *conv)
{
    fhir_buf_t  key = s->key, obj = s->obj, cap = s->cap;
    size_t      max_resource = s->max_resource;
    unsigned    max_depth = s->max_depth;

    memset(s, 0, sizeof(fhir_stream_t));

    s->conv = conv;
    s->max_resource = max_resource;
    s->max_depth = max_depth;
    s->key = key;
    s->obj = obj;
    s->cap = cap;
    s->key.len = 0;
    s->obj.len = 0;
    s->cap.len = 0;
}


void
fhir_stream_destroy(fhir_stream_t *s)
{
    if (s == NULL) {
        return;
    }

    fhir_buf_free(&s->key);
    fhir_buf_free(&s->obj);
    fhir_buf_free(&s->cap);
    free(s);
}


const char *
fhir_stream_error(const fhir_stream_t *s)
{
    return s->err[0] ? s->err : "no error";
}


unsigned long
fhir_stream_entries(const fhir_stream_t *s)
{
    return s->entries;
}


int
fhir_stream_is_bundle(const fhir_stream_t *s)
{
    return s->bundle;
}


unsigned long long
fhir_stream_offset(const fhir_stream_t *s)
{
    return s->offset;
}


static int
fhir_stream_fail(fhir_stream_t *s, const char *msg)
{
    snprintf(s->err, sizeof(s->err), "%s at byte %llu", msg, s->offset);
    s->state = ST_FAILED;
    return FHIR_STREAM_ERROR;
}


/*
 * Captures bytes of one JSON value into s->cap.  Returns the number of bytes
 * consumed; sets *done when the value is complete.  A scalar (number or
 * literal) ends before its delimiter, which is left unconsumed.
 */
static size_t
fhir_stream_capture(fhir_stream_t *s, const char *p, size_t len, int *done)
{
    const char  *q = p, *end = p + len;
    size_t       n;

    *done = 0;

    if (s->scalar) {
        while (q < end && *q != ',' && *q != '}' && *q != ']'
               && !FJ_IS_WS((unsigned char) *q))
        {
            q++;
        }
        if (q < end) {
            *done = 1;
        }
        goto copy;
    }

    while (q < end) {

        if (s->in_string) {
            if (s->escape) {
                s->escape = 0;
                q++;
                continue;
            }
            /* skip plain string bytes quickly */
            {
                const char  *dq, *bs;

                dq = memchr(q, '"', (size_t) (end - q));
                bs = memchr(q, '\\', (size_t) ((dq ? dq : end) - q));
                q = bs ? bs : (dq ? dq : end);
            }
            if (q == end) {
                break;
            }
            if (*q == '\\') {
                s->escape = 1;
                q++;
                continue;
            }
            s->in_string = 0;
            q++;
            if (s->depth == 0) {
                *done = 1;
                break;
            }
            continue;
        }

        switch (*q) {
        case '"':
            s->in_string = 1;
            break;
        case '{':
        case '[':
            if (++s->depth > s->max_depth) {
                s->offset += (unsigned long long) (q - p);
                snprintf(s->err, sizeof(s->err),
                         "JSON nested deeper than %u levels at byte %llu",
                         s->max_depth, s->offset);
                s->state = ST_FAILED;
                return (size_t) -1;
            }
            break;
        case '}':
        case ']':
            if (s->depth == 0) {
                s->offset += (unsigned long long) (q - p);
                fhir_stream_fail(s, q[0] == '}' ? "unexpected '}'" : "unexpected ']'");
                return (size_t) -1;
            }
            if (--s->depth == 0) {
                q++;
                *done = 1;
                goto copy;
            }
            break;
        default:
            break;
        }

        q++;
    }

copy:

    n = (size_t) (q - p);

    if (s->cap.len + s->obj.len + n > s->max_resource) {
        s->offset += n;
        snprintf(s->err, sizeof(s->err),
                 "resource larger than the limit of %zu bytes at byte %llu",
                 s->max_resource, s->offset);
        s->state = ST_FAILED;
        return (size_t) -1;
    }

    if (fhir_buf_append(&s->cap, p, n) != 0) {
        fhir_stream_fail(s, "out of memory");
        return (size_t) -1;
    }

    return n;
}


static void
fhir_stream_capture_start(fhir_stream_t *s, int c)
{
    s->cap.len = 0;
    s->depth = 0;
    s->in_string = 0;
    s->escape = 0;
    s->scalar = (c != '{' && c != '[' && c != '"');
}


static int
fhir_stream_parse(fhir_stream_t *s, const char *text, size_t len,
    fj_node_t **out)
{
    const char  *err;
    size_t       at;

    *out = fj_parse(s->conv->arena, text, len, s->max_depth, &err, &at);

    if (*out == NULL) {
        snprintf(s->err, sizeof(s->err), "%s (near byte %llu)", err,
                 s->offset);
        s->state = ST_FAILED;
        return FHIR_STREAM_ERROR;
    }

    return FHIR_STREAM_OK;
}


/* adds the captured member to the gathered object text */
static int
fhir_stream_add_member(fhir_stream_t *s)
{
    if (s->obj.len == 0) {
        if (fhir_buf_append(&s->obj, "{", 1) != 0) {
            return -1;
        }
    } else if (fhir_buf_append(&s->obj, ",", 1) != 0) {
        return -1;
    }

    if (fhir_buf_append(&s->obj, "\"", 1) != 0
        || fhir_buf_append(&s->obj, s->key.data, s->key.len) != 0
        || fhir_buf_append(&s->obj, "\":", 2) != 0
        || fhir_buf_append(&s->obj, s->cap.data, s->cap.len) != 0)
    {
        return -1;
    }

    if (s->key.len == 12 && memcmp(s->key.data, "resourceType", 12) == 0
        && s->cap.len == 8 && memcmp(s->cap.data, "\"Bundle\"", 8) == 0)
    {
        s->bundle = 1;
    }

    return 0;
}


/* parses the gathered members as an object; empty text gives {} */
static int
fhir_stream_members(fhir_stream_t *s, fj_node_t **obj)
{
    if (s->obj.len == 0 && fhir_buf_append(&s->obj, "{", 1) != 0) {
        return fhir_stream_fail(s, "out of memory");
    }

    if (fhir_buf_append(&s->obj, "}", 1) != 0) {
        return fhir_stream_fail(s, "out of memory");
    }

    return fhir_stream_parse(s, s->obj.data, s->obj.len, obj);
}


/* "entry": [ has been read in a Bundle: writes the head of the Bundle */
static int
fhir_stream_open_entries(fhir_stream_t *s, fhir_buf_t *out)
{
    fj_node_t  *head;
    int         first = 1;

    fj_arena_reset(s->conv->arena);

    if (fhir_stream_members(s, &head) != FHIR_STREAM_OK) {
        return FHIR_STREAM_ERROR;
    }

    if (fhir_convert_bundle_head(s->conv, head) != 0) {
        return fhir_stream_fail(s, s->conv->err);
    }

    if (fhir_buf_append(out, "{", 1) != 0
        || fj_write_members(out, head, &first) != 0
        || fhir_buf_puts(out, first ? "\"entry\":[" : ",\"entry\":[") != 0)
    {
        return fhir_stream_fail(s, "out of memory");
    }

    s->obj.len = 0;
    s->streamed = 1;
    return FHIR_STREAM_OK;
}


static int
fhir_stream_convert_entry(fhir_stream_t *s, fj_node_t *entry, fhir_buf_t *out)
{
    if (entry->type != FJ_OBJECT) {
        return fhir_stream_fail(s, "Bundle entry is not an object");
    }

    if (fhir_convert_entry(s->conv, entry) != 0) {
        return fhir_stream_fail(s, s->conv->err);
    }

    if (s->conv->observe) {
        s->conv->observe(s->conv->observe_data, FHIR_OBSERVE_ENTRY, entry);
    }

    if ((s->entries && fhir_buf_append(out, ",", 1) != 0)
        || fj_write(out, entry) != 0)
    {
        return fhir_stream_fail(s, "out of memory");
    }

    s->entries++;
    return FHIR_STREAM_OK;
}


/* an entry captured across chunks */
static int
fhir_stream_write_entry(fhir_stream_t *s, fhir_buf_t *out)
{
    fj_node_t  *entry;

    fj_arena_reset(s->conv->arena);

    if (fhir_stream_parse(s, s->cap.data, s->cap.len, &entry)
        != FHIR_STREAM_OK)
    {
        return FHIR_STREAM_ERROR;
    }

    return fhir_stream_convert_entry(s, entry, out);
}


/*
 * The fast path: an entry that lies whole in the current chunk is parsed
 * where it is, without being copied.  Returns the bytes used, 0 when the
 * chunk ends inside the entry (the caller captures it instead), -1 on error.
 */
static long
fhir_stream_entry_in_place(fhir_stream_t *s, const char *p, size_t len,
    fhir_buf_t *out)
{
    fj_node_t   *entry;
    const char  *err;
    size_t       used, at;
    int          incomplete;

    fj_arena_reset(s->conv->arena);

    entry = fj_parse_prefix(s->conv->arena, p, len, s->max_depth, &used,
                            &incomplete, &err, &at);

    if (entry == NULL) {
        if (incomplete && len <= s->max_resource) {
            return 0;
        }
        s->offset += at;
        if (incomplete) {
            snprintf(s->err, sizeof(s->err),
                     "resource larger than the limit of %zu bytes at byte "
                     "%llu", s->max_resource, s->offset);
        } else {
            snprintf(s->err, sizeof(s->err), "%s at byte %llu", err,
                     s->offset);
        }
        s->state = ST_FAILED;
        return -1;
    }

    if (used > s->max_resource) {
        s->offset += used;
        snprintf(s->err, sizeof(s->err),
                 "resource larger than the limit of %zu bytes at byte %llu",
                 s->max_resource, s->offset);
        s->state = ST_FAILED;
        return -1;
    }

    if (fhir_stream_convert_entry(s, entry, out) != FHIR_STREAM_OK) {
        return -1;
    }

    return (long) used;
}


/* the top-level '}' has been read */
static int
fhir_stream_close(fhir_stream_t *s, fhir_buf_t *out)
{
    fj_node_t  *obj;
    int         first;

    fj_arena_reset(s->conv->arena);

    if (fhir_stream_members(s, &obj) != FHIR_STREAM_OK) {
        return FHIR_STREAM_ERROR;
    }

    if (s->streamed) {
        /* members after the entry array */
        if (fhir_convert_bundle_head(s->conv, obj) != 0) {
            return fhir_stream_fail(s, s->conv->err);
        }
        first = 0;
        if (fj_write_members(out, obj, &first) != 0
            || fhir_buf_append(out, "}", 1) != 0)
        {
            return fhir_stream_fail(s, "out of memory");
        }

    } else {
        if (fj_get(obj, "resourceType") == NULL) {
            return fhir_stream_fail(s, "the document has no resourceType");
        }
        if (fhir_convert_resource(s->conv, obj) != 0) {
            return fhir_stream_fail(s, s->conv->err);
        }
        if (s->conv->observe) {
            s->conv->observe(s->conv->observe_data,
                             fj_str_is(fj_get(obj, "resourceType"), "Bundle")
                             ? 0 : FHIR_OBSERVE_RESOURCE, obj);
        }
        if (fj_write(out, obj) != 0) {
            return fhir_stream_fail(s, "out of memory");
        }
    }

    s->obj.len = 0;
    s->state = ST_DONE;
    return FHIR_STREAM_OK;
}


int
fhir_stream_feed(fhir_stream_t *s, const char *data, size_t len,
    fhir_buf_t *out)
{
    const char  *p = data, *end = data + len;
    size_t       n;
    int          c, done;

    while (p < end) {

        c = (unsigned char) *p;

        switch (s->state) {

        case ST_FAILED:
            return FHIR_STREAM_ERROR;

        case ST_START:
            /* a UTF-8 byte-order mark is tolerated before the value */
            if (s->offset == 0 && c == 0xef) {
                s->bom = 1;
                break;
            }
            if (s->bom && s->offset < 3) {
                if ((s->offset == 1 && c != 0xbb)
                    || (s->offset == 2 && c != 0xbf))
                {
                    return fhir_stream_fail(s, "invalid byte-order mark");
                }
                break;
            }
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c != '{') {
                return fhir_stream_fail(s,
                           "a FHIR resource must be a JSON object");
            }
            s->state = ST_KEY_OR_END;
            break;

        case ST_KEY_OR_END:
        case ST_KEY_NEXT:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c == '}' && s->state == ST_KEY_OR_END) {
                s->offset++;
                p++;
                if (fhir_stream_close(s, out) != FHIR_STREAM_OK) {
                    return FHIR_STREAM_ERROR;
                }
                continue;
            }
            if (c != '"') {
                return fhir_stream_fail(s, "expected a key");
            }
            s->key.len = 0;
            s->key_escape = 0;
            s->state = ST_KEY;
            break;

        case ST_KEY:
            if (s->key_escape) {
                s->key_escape = 0;
            } else if (c == '\\') {
                s->key_escape = 1;
            } else if (c == '"') {
                s->state = ST_COLON;
                break;
            }
            if (s->key.len >= 256) {
                return fhir_stream_fail(s, "key too long");
            }
            if (fhir_buf_append(&s->key, p, 1) != 0) {
                return fhir_stream_fail(s, "out of memory");
            }
            break;

        case ST_COLON:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c != ':') {
                return fhir_stream_fail(s, "expected ':'");
            }
            s->state = ST_VALUE;
            break;

        case ST_VALUE:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (s->bundle && !s->streamed && s->key.len == 5
                && memcmp(s->key.data, "entry", 5) == 0)
            {
                if (c != '[') {
                    return fhir_stream_fail(s,
                               "Bundle.entry is not an array");
                }
                if (fhir_stream_open_entries(s, out) != FHIR_STREAM_OK) {
                    return FHIR_STREAM_ERROR;
                }
                s->state = ST_ENTRY_FIRST;
                break;
            }
            if (s->bundle && s->streamed && s->key.len == 5
                && memcmp(s->key.data, "entry", 5) == 0)
            {
                return fhir_stream_fail(s, "duplicate key \"entry\"");
            }
            fhir_stream_capture_start(s, c);
            s->state = ST_CAPTURE;
            continue;

        case ST_CAPTURE:
        case ST_ENTRY_CAPTURE:
            n = fhir_stream_capture(s, p, (size_t) (end - p), &done);
            if (n == (size_t) -1) {
                return FHIR_STREAM_ERROR;
            }
            s->offset += n;
            p += n;
            if (!done) {
                continue;
            }
            if (s->state == ST_CAPTURE) {
                if (fhir_stream_add_member(s) != 0) {
                    return fhir_stream_fail(s, "out of memory");
                }
                s->state = ST_AFTER_VALUE;
            } else {
                if (fhir_stream_write_entry(s, out) != FHIR_STREAM_OK) {
                    return FHIR_STREAM_ERROR;
                }
                s->state = ST_ENTRY_AFTER;
            }
            continue;

        case ST_AFTER_VALUE:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c == ',') {
                s->state = ST_KEY_NEXT;
                break;
            }
            if (c == '}') {
                s->offset++;
                p++;
                if (fhir_stream_close(s, out) != FHIR_STREAM_OK) {
                    return FHIR_STREAM_ERROR;
                }
                continue;
            }
            return fhir_stream_fail(s, "expected ',' or '}'");

        case ST_ENTRY_FIRST:
        case ST_ENTRY_NEXT:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c == ']' && s->state == ST_ENTRY_FIRST) {
                if (fhir_buf_append(out, "]", 1) != 0) {
                    return fhir_stream_fail(s, "out of memory");
                }
                s->state = ST_AFTER_VALUE;
                break;
            }
            if (c != '{') {
                return fhir_stream_fail(s, "Bundle entry is not an object");
            }
            {
                long  used;

                used = fhir_stream_entry_in_place(s, p, (size_t) (end - p),
                                                  out);
                if (used < 0) {
                    return FHIR_STREAM_ERROR;
                }
                if (used > 0) {
                    s->offset += (unsigned long long) used;
                    p += used;
                    s->state = ST_ENTRY_AFTER;
                    continue;
                }
            }
            fhir_stream_capture_start(s, c);
            s->state = ST_ENTRY_CAPTURE;
            continue;

        case ST_ENTRY_AFTER:
            if (FJ_IS_WS(c)) {
                break;
            }
            if (c == ',') {
                s->state = ST_ENTRY_NEXT;
                break;
            }
            if (c == ']') {
                if (fhir_buf_append(out, "]", 1) != 0) {
                    return fhir_stream_fail(s, "out of memory");
                }
                s->state = ST_AFTER_VALUE;
                break;
            }
            return fhir_stream_fail(s, "expected ',' or ']'");

        case ST_DONE:
            if (FJ_IS_WS(c)) {
                break;
            }
            return fhir_stream_fail(s, "trailing data after the resource");
        }

        /* one byte consumed */
        s->offset++;
        p++;
    }

    return s->state == ST_FAILED ? FHIR_STREAM_ERROR : FHIR_STREAM_OK;
}


int
fhir_stream_done(const fhir_stream_t *s)
{
    return s->state == ST_DONE;
}


int
fhir_stream_finish(fhir_stream_t *s, fhir_buf_t *out)
{
    (void) out;

    if (s->state == ST_FAILED) {
        return FHIR_STREAM_ERROR;
    }

    if (s->state != ST_DONE) {
        return fhir_stream_fail(s,
                   "truncated JSON: the document ended early");
    }

    return FHIR_STREAM_OK;
}
