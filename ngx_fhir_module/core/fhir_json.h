/*
 * ngx_fhir core: a small JSON tree that keeps every scalar as the exact bytes
 * the partner sent (numbers "72.0" stay "72.0", string escapes stay as they
 * were), so that a resource can be restructured without re-serialising its
 * values.  Plain C99, no nginx headers.
 */

#ifndef FHIR_JSON_H
#define FHIR_JSON_H

#include <stddef.h>
#include <string.h>

/* a growable byte buffer */
typedef struct {
    char    *data;
    size_t   len;
    size_t   cap;
} fhir_buf_t;

int  fhir_buf_grow(fhir_buf_t *b, size_t extra);

/* room for extra more bytes; the common case costs a comparison */
static inline int
fhir_buf_reserve(fhir_buf_t *b, size_t extra)
{
    return b->len + extra <= b->cap ? 0 : fhir_buf_grow(b, extra);
}
int  fhir_buf_append(fhir_buf_t *b, const void *p, size_t n);
int  fhir_buf_puts(fhir_buf_t *b, const char *s);
void fhir_buf_free(fhir_buf_t *b);

/* appends s as the inside of a JSON string (quotes, backslash, controls) */
int  fhir_json_escape(fhir_buf_t *out, const char *s, size_t len);

/*
 * The text a JSON string's raw (escaped) bytes stand for, as UTF-8: at most
 * size - 1 bytes written, then a NUL (the text is never longer than its raw
 * form, so size len + 1 holds it whole); a lone surrogate becomes U+FFFD.
 * Returns the text's length.  raw must be valid JSON string content (as a
 * parsed string's raw is).
 */
size_t fhir_json_unescape(char *dst, size_t size, const char *raw,
    size_t len);


/*
 * The UTF-8 character whose first byte (0x80 or above) is at p: its length
 * (2 to 4 bytes); 0 when it is not valid UTF-8 (a bad first or continuation
 * byte, an overlong form, a surrogate, a code point above U+10FFFF); -1 when
 * the text ends inside it (more bytes may complete it).
 */
static inline int
fhir_utf8_char(const unsigned char *p, const unsigned char *end)
{
    int       n, i;
    unsigned  c, cp;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1; cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2; cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3; cp = c & 0x07;
    } else {
        return 0;
    }

    if (end - p <= n) {
        return -1;
    }

    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
    {
        return 0;
    }

    return n + 1;
}


/* JSON's whitespace (RFC 8259: space, tab, line feed, carriage return) */
#define FJ_IS_WS(c)                                                           \
    ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')


typedef enum {
    FJ_NULL = 0,
    FJ_TRUE,
    FJ_FALSE,
    FJ_NUMBER,
    FJ_STRING,
    FJ_ARRAY,
    FJ_OBJECT
} fj_type_t;

typedef struct fj_node_s  fj_node_t;

struct fj_node_s {
    fj_type_t    type;
    /* scalars: the raw bytes; for strings the escaped text between quotes */
    const char  *raw;
    size_t       raw_len;
    /* members of an object: the raw key (escaped text between quotes) */
    const char  *key;
    size_t       key_len;
    fj_node_t   *child;        /* first element / member */
    fj_node_t   *next;         /* next sibling */
};


/* a chunked arena; fj_arena_reset() keeps the first chunk for reuse */
typedef struct fj_chunk_s  fj_chunk_t;

typedef struct {
    fj_chunk_t  *head;
    size_t       used;         /* bytes held by all chunks */
} fj_arena_t;

void *fj_alloc(fj_arena_t *a, size_t size);
void  fj_arena_reset(fj_arena_t *a);
void  fj_arena_free(fj_arena_t *a);


/*
 * Parses one complete JSON value of len bytes (the text must stay alive as
 * long as the tree).  Strict RFC 8259 with valid UTF-8; duplicate object keys
 * are refused; nesting is limited to max_depth.  Returns NULL and sets *err
 * to a static message on failure, *err_at to the byte offset.
 */
fj_node_t *fj_parse(fj_arena_t *a, const char *text, size_t len,
    unsigned max_depth, const char **err, size_t *err_at);

/*
 * Parses the one JSON value that starts text and sets *used to its length.
 * When the text ends inside the value, returns NULL with *incomplete set
 * (more bytes may complete it); any other failure is an error.  A value
 * that is a bare number is never complete here: objects and arrays only.
 */
fj_node_t *fj_parse_prefix(fj_arena_t *a, const char *text, size_t len,
    unsigned max_depth, size_t *used, int *incomplete, const char **err,
    size_t *err_at);

/* compact serialisation; scalars are written byte for byte */
int fj_write(fhir_buf_t *out, const fj_node_t *n);
/* the members of an object, each preceded by a comma when *first == 0 */
int fj_write_members(fhir_buf_t *out, const fj_node_t *obj, int *first);


/* is this member's key the string literal `lit`? (no strlen at run time) */
#define FJ_KEY(m, lit)                                                        \
    ((m)->key_len == sizeof(lit) - 1                                          \
     && memcmp((m)->key, lit, sizeof(lit) - 1) == 0)

/* tree helpers; keys and literal strings are plain ASCII C strings; inline
 * where a literal's length is then measured by the compiler */
static inline int
fj_key_is(const fj_node_t *m, const char *key)
{
    size_t  len = strlen(key);

    return m->key_len == len && memcmp(m->key, key, len) == 0;
}


static inline int
fj_str_is(const fj_node_t *n, const char *s)
{
    size_t  len = strlen(s);

    return n != NULL && n->type == FJ_STRING && n->raw_len == len
           && memcmp(n->raw, s, len) == 0;
}

/* the member named key (len bytes), or NULL; inline so that a literal key
 * is compared with a constant length */
static inline fj_node_t *
fj_getn(const fj_node_t *obj, const char *key, size_t len)
{
    fj_node_t  *m;

    if (obj == NULL || obj->type != FJ_OBJECT) {
        return NULL;
    }

    for (m = obj->child; m; m = m->next) {
        if (m->key_len == len && memcmp(m->key, key, len) == 0) {
            return m;
        }
    }

    return NULL;
}

fj_node_t *fj_detachn(fj_node_t *obj, const char *key, size_t len);
/* takes child (found before) out of parent's members or elements */
void       fj_unlink(fj_node_t *parent, fj_node_t *child);

/* with a literal key the compiler measures it: no strlen at run time */
#define fj_get(obj, key)     fj_getn((obj), (key), strlen(key))
#define fj_detach(obj, key)  fj_detachn((obj), (key), strlen(key))

/* the member named key if it is a string, or NULL */
static inline fj_node_t *
fj_get_str(const fj_node_t *obj, const char *key)
{
    fj_node_t  *m = fj_get(obj, key);

    return (m && m->type == FJ_STRING) ? m : NULL;
}

/* a scalar's text becomes s (a literal or other text that outlives the tree) */
static inline void
fj_set_raw(fj_node_t *n, const char *s)
{
    n->raw = s;
    n->raw_len = strlen(s);
}

void       fj_rename(fj_node_t *member, const char *key);
void       fj_append(fj_node_t *parent, fj_node_t *child);
void       fj_insert_after(fj_node_t *parent, fj_node_t *after,
               fj_node_t *child);
fj_node_t *fj_new(fj_arena_t *a, fj_type_t type);
fj_node_t *fj_new_str(fj_arena_t *a, const char *s);
fj_node_t *fj_new_strn(fj_arena_t *a, const char *s, size_t len);
fj_node_t *fj_member(fj_node_t *n, const char *key);
fj_node_t *fj_wrap_array(fj_arena_t *a, fj_node_t *member);
size_t     fj_count(const fj_node_t *n);

#endif /* FHIR_JSON_H */
