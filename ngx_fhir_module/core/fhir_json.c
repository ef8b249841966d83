/*
 * ngx_fhir core: byte-exact JSON tree (see fhir_json.h).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_json.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif


#define FJ_ONES  0x0101010101010101ULL
#define FJ_HIGH  0x8080808080808080ULL


static inline const unsigned char *fj_scan_plain(const unsigned char *p,
    const unsigned char *end);


/* buffers */

int
fhir_buf_grow(fhir_buf_t *b, size_t extra)
{
    size_t  cap;
    char   *p;

    if (b->len + extra <= b->cap) {
        return 0;
    }

    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->cap = cap;
    return 0;
}


int
fhir_buf_append(fhir_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }

    if (fhir_buf_reserve(b, n) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}


int
fhir_buf_puts(fhir_buf_t *b, const char *s)
{
    return fhir_buf_append(b, s, strlen(s));
}


void
fhir_buf_free(fhir_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


int
fhir_json_escape(fhir_buf_t *out, const char *s, size_t len)
{
    static const char     hex[] = "0123456789abcdef";
    unsigned char         c;
    size_t                i, run;
    char                 *p;
    const unsigned char  *q, *e;

    e = (const unsigned char *) s + len;

    for (i = 0; i < len; i += run) {

        /* a run of bytes that stay as they are, found a word at a time
         * (the scan also stops at UTF-8, which stays too) and copied at
         * once */
        q = fj_scan_plain((const unsigned char *) s + i, e);
        while (q < e) {
            c = *q;
            if (c < 0x20 || c == '"' || c == '\\') {
                break;
            }
            q++;
            if (c >= 0x80) {
                q = fj_scan_plain(q, e);
            }
        }
        run = (size_t) (q - ((const unsigned char *) s + i));

        if (run) {
            if (fhir_buf_reserve(out, run) != 0) {
                return -1;
            }
            memcpy(out->data + out->len, s + i, run);
            out->len += run;
            continue;
        }

        if (fhir_buf_reserve(out, 6) != 0) {
            return -1;
        }

        p = out->data + out->len;
        c = (unsigned char) s[i];
        run = 1;
        *p++ = '\\';

        if (c == '"' || c == '\\') {
            *p++ = (char) c;

        } else {
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }

        out->len = (size_t) (p - out->data);
    }

    return 0;
}


static int fj_hex(int c);


size_t
fhir_json_unescape(char *dst, size_t size, const char *raw, size_t len)
{
    size_t    i, n;
    unsigned  cp, lo;
    int       k, h;
    char      u[4];

    if (size == 0) {
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {

        if (raw[i] != '\\' || i + 1 >= len) {
            if (n + 1 >= size) {
                break;
            }
            dst[n++] = raw[i];
            continue;
        }

        i++;

        switch (raw[i]) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            cp = 0;
            for (k = 1; k <= 4 && i + k < len; k++) {
                h = fj_hex((unsigned char) raw[i + k]);
                cp = cp * 16 + (unsigned) (h < 0 ? 0 : h);
            }
            i += 4;

            if (cp >= 0xd800 && cp <= 0xdbff && i + 6 < len
                && raw[i + 1] == '\\' && raw[i + 2] == 'u')
            {
                lo = 0;
                for (k = 3; k <= 6; k++) {
                    h = fj_hex((unsigned char) raw[i + k]);
                    lo = lo * 16 + (unsigned) (h < 0 ? 0 : h);
                }
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }

            if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            break;
        default:
            /* " \ / stand for themselves */
            cp = (unsigned char) raw[i];
            break;
        }

        if (cp < 0x80) {
            u[0] = (char) cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (char) (0xc0 | (cp >> 6));
            u[1] = (char) (0x80 | (cp & 0x3f));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (char) (0xe0 | (cp >> 12));
            u[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
            u[2] = (char) (0x80 | (cp & 0x3f));
            k = 3;
        } else {
            u[0] = (char) (0xf0 | (cp >> 18));
            u[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
            u[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
            u[3] = (char) (0x80 | (cp & 0x3f));
            k = 4;
        }

        if (n + (size_t) k >= size) {
            break;
        }
        memcpy(dst + n, u, (size_t) k);
        n += (size_t) k;
    }

    dst[n] = '\0';
    return n;
}


/* arena */

struct fj_chunk_s {
    fj_chunk_t  *next;
    size_t       size;
    size_t       used;
    /* data follows, aligned */
};

#define FJ_CHUNK_HDR  ((sizeof(fj_chunk_t) + 15) & ~(size_t) 15)
#define FJ_CHUNK_MIN  (64 * 1024)


void *
fj_alloc(fj_arena_t *a, size_t size)
{
    fj_chunk_t  *c;
    size_t       want;
    char        *p;

    size = (size + 15) & ~(size_t) 15;
    c = a->head;

    if (c == NULL || c->size - c->used < size) {
        want = size > FJ_CHUNK_MIN ? size : FJ_CHUNK_MIN;
        c = malloc(FJ_CHUNK_HDR + want);
        if (c == NULL) {
            return NULL;
        }
        c->size = want;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->used += want;
    }

    p = (char *) c + FJ_CHUNK_HDR + c->used;
    c->used += size;
    return p;
}


void
fj_arena_reset(fj_arena_t *a)
{
    fj_chunk_t  *c, *next;

    if (a->head == NULL) {
        return;
    }

    /* keep the oldest chunk only if it is the minimum size */
    for (c = a->head; c->next; c = next) {
        next = c->next;
        free(c);
    }

    if (c->size > FJ_CHUNK_MIN) {
        free(c);
        a->head = NULL;
        a->used = 0;
        return;
    }

    c->used = 0;
    a->head = c;
    a->used = c->size;
}


void
fj_arena_free(fj_arena_t *a)
{
    fj_chunk_t  *c, *next;

    for (c = a->head; c; c = next) {
        next = c->next;
        free(c);
    }

    a->head = NULL;
    a->used = 0;
}


/* parser */

typedef struct {
    fj_arena_t   *arena;
    fj_node_t    *pool;        /* nodes taken from the arena in blocks */
    fj_node_t    *pool_end;
    const char   *p;
    const char   *end;
    unsigned      max_depth;
    const char   *err;
} fj_parser_t;


/* nodes per block: a parse wastes at most one block's tail */
#define FJ_POOL  32



static int
fj_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


/*
 * The bytes of the word at p that end a plain run of a string: a quote, a
 * backslash, a control character or a byte of 0x80 and up, each flagged by
 * its high bit.  No false flag comes before the first true one.
 */
static inline uint64_t
fj_special8(const unsigned char *p)
{
    uint64_t  w;

    memcpy(&w, p, 8);

    return (w & FJ_HIGH)
           | ((w - FJ_ONES * 0x20) & ~w & FJ_HIGH)
           | (((w ^ (FJ_ONES * '"')) - FJ_ONES) & ~(w ^ (FJ_ONES * '"'))
              & FJ_HIGH)
           | (((w ^ (FJ_ONES * '\\')) - FJ_ONES) & ~(w ^ (FJ_ONES * '\\'))
              & FJ_HIGH);
}


/*
 * The first byte from p on that ends a plain run of a string (a quote, a
 * backslash, a control character or a byte from 0x80 on), or the last
 * fewer-than-eight bytes of the text, which the caller looks at one by one.
 */
static inline const unsigned char *
fj_scan_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__) && defined(__GNUC__)
    /* sixteen bytes at a time; a signed compare with 0x20 flags both the
     * control characters and the bytes from 0x80 on */
    while (end - p >= 16) {
        __m128i   v;
        unsigned  mask;

        v = _mm_loadu_si128((const __m128i *) (const void *) p);
        mask = (unsigned) _mm_movemask_epi8(
                   _mm_or_si128(
                       _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
        if (mask) {
            return p + __builtin_ctz(mask);
        }
        p += 16;
    }
#endif

#if defined(__GNUC__) && defined(__BYTE_ORDER__)                              \
    && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t  x = fj_special8(p);

        if (x) {
            /* no false flag comes before the first true one */
            return p + (__builtin_ctzll(x) >> 3);
        }
        p += 8;
    }
#endif

    return p;
}


/*
 * The rest of a string from p on, where fj_scan_plain() stopped: escapes,
 * UTF-8 sequences, and the last bytes of the text.  *raw is already set.
 */
static int
fj_parse_string_slow(fj_parser_t *ps, const char **raw, size_t *raw_len,
    const unsigned char *p)
{
    int                   n;
    unsigned              c, i;
    const unsigned char  *end;

    end = (const unsigned char *) ps->end;

    for ( ;; ) {

        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            p++;
        }

        if (p >= end) {
            ps->err = "unterminated string";
            ps->p = ps->end;
            return -1;
        }

        c = *p;

        if (c == '"') {
            *raw_len = (size_t) ((const char *) p - *raw);
            ps->p = (const char *) p + 1;
            return 0;
        }

        if (c == '\\') {
            if (p + 1 >= end) {
                ps->err = "unterminated escape";
                ps->p = ps->end;
                return -1;
            }

            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                p += 2;
                goto plain;
            case 'u':
                if (p + 6 > end) {
                    ps->err = "truncated \\u escape";
                    ps->p = ps->end;
                    return -1;
                }
                for (i = 2; i < 6; i++) {
                    if (fj_hex(p[i]) < 0) {
                        ps->err = "bad \\u escape";
                        ps->p = (const char *) p;
                        return -1;
                    }
                }
                p += 6;
                goto plain;
            default:
                ps->err = "bad escape in string";
                ps->p = (const char *) p;
                return -1;
            }
        }

        if (c < 0x20) {
            ps->err = "control character in string";
            ps->p = (const char *) p;
            return -1;
        }

        /* UTF-8 multi-byte sequence */
        n = fhir_utf8_char(p, end);

        if (n == -1) {
            ps->err = "unterminated string";
            ps->p = ps->end;
            return -1;
        }

        if (n == 0) {
            ps->err = "invalid UTF-8 in string";
            ps->p = (const char *) p;
            return -1;
        }

        p += n;

    plain:

        /* the next plain run, a word at a time */
        p = fj_scan_plain(p, end);
    }
}


static int
fj_parse_number(fj_parser_t *ps)
{
    const char  *p = ps->p, *end = ps->end;

    if (p < end && *p == '-') {
        p++;
    }

    if (p >= end) {
        goto bad;
    }

    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        goto bad;
    }

    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            goto bad;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            goto bad;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    /* FHIR decimals carry at most 18 digits; far longer is an attack */
    if (p - ps->p > 64) {
        ps->err = "number too long";
        return -1;
    }

    ps->p = p;
    return 0;

bad:
    ps->p = p;
    ps->err = "malformed number";
    return -1;
}


static int
fj_literal(fj_parser_t *ps, const char *lit, size_t len)
{
    size_t  left = (size_t) (ps->end - ps->p);

    if (left < len && memcmp(ps->p, lit, left) == 0) {
        ps->err = "unexpected end of JSON";
        ps->p = ps->end;
        return -1;
    }

    if (left < len || memcmp(ps->p, lit, len) != 0) {
        ps->err = "unexpected character";
        return -1;
    }
    ps->p += len;
    return 0;
}


/* a node from the parser's block, its links cleared (the parser sets the
 * rest: key, type, raw) */
static inline fj_node_t *
fj_node(fj_parser_t *ps)
{
    fj_node_t  *n;

    if (ps->pool == ps->pool_end) {
        ps->pool = fj_alloc(ps->arena, FJ_POOL * sizeof(fj_node_t));
        if (ps->pool == NULL) {
            ps->pool_end = NULL;
            ps->err = "out of memory";
            return NULL;
        }
        ps->pool_end = ps->pool + FJ_POOL;
    }

    n = ps->pool++;
    n->child = NULL;
    n->next = NULL;

    return n;
}


/* whitespace from p on (compact JSON has none: one comparison) */
#define FJ_SKIP_WS(p, end)                                                    \
    while ((p) < (end) && (unsigned char) *(p) <= ' ' && FJ_IS_WS(*(p))) {     \
        (p)++;                                                                \
    }


/* a string from *pp (just after its opening quote) on */
static inline int
fj_string_at(fj_parser_t *ps, const char **pp, const char **raw,
    size_t *raw_len)
{
    const unsigned char  *q;

    *raw = *pp;
    q = fj_scan_plain((const unsigned char *) *pp,
                      (const unsigned char *) ps->end);

    if ((const char *) q < ps->end && *q == '"') {
        *raw_len = (size_t) ((const char *) q - *raw);
        *pp = (const char *) q + 1;
        return 0;
    }

    if (fj_parse_string_slow(ps, raw, raw_len, q) != 0) {
        return -1;
    }

    *pp = ps->p;
    return 0;
}


/* the open objects and arrays of a parse */
typedef struct {
    fj_node_t   *node;
    fj_node_t  **tail;         /* where its next member or element goes */
    uint64_t     seen;         /* objects: a filter of the keys seen */
    char         close;        /* '}' or ']' */
} fj_frame_t;

#define FJ_FRAMES  64


/*
 * One JSON value from ps->p on, without recursion: the open containers are
 * on an explicit stack and the cursor stays in a register.  On failure
 * ps->p is where the text went wrong and ps->err says how.
 */
static fj_node_t *
fj_parse_value(fj_parser_t *ps)
{
    fj_frame_t   frames[FJ_FRAMES + 1], *st, *top, *limit;
    fj_node_t   *n, *root, *k;
    uint64_t     bit;
    const char  *p, *end, *key, *start;
    size_t       key_len;

    p = ps->p;
    end = ps->end;
    root = NULL;
    key = NULL;
    key_len = 0;
    st = frames;

    if (ps->max_depth > FJ_FRAMES) {
        st = fj_alloc(ps->arena, (ps->max_depth + 1) * sizeof(fj_frame_t));
        if (st == NULL) {
            ps->err = "out of memory";
            return NULL;
        }
    }

    /* top is the innermost open container; st itself stands for none */
    top = st;
    limit = st + ps->max_depth;

value:

    FJ_SKIP_WS(p, end);

    if (p >= end) {
        ps->err = "unexpected end of JSON";
        goto failed;
    }

    n = fj_node(ps);
    if (n == NULL) {
        goto failed;
    }

    n->key = key;
    n->key_len = key_len;

    if (top != st) {
        *top->tail = n;
        top->tail = &n->next;
    } else {
        root = n;
    }

    switch (*p) {

    case '"':
        n->type = FJ_STRING;
        p++;
        if (fj_string_at(ps, &p, &n->raw, &n->raw_len) != 0) {
            return NULL;
        }
        break;

    case '{':
    case '[':
        if (top == limit) {
            ps->err = "JSON nested too deep";
            goto failed;
        }
        top++;
        top->node = n;
        top->tail = &n->child;
        top->seen = 0;
        n->type = (*p == '{') ? FJ_OBJECT : FJ_ARRAY;
        top->close = (*p == '{') ? '}' : ']';
        n->raw = NULL;
        n->raw_len = 0;
        p++;

        /* compact JSON: a key follows at once */
        if (n->type == FJ_OBJECT && p < end && *p == '"') {
            goto key;
        }

        FJ_SKIP_WS(p, end);

        if (n->type == FJ_OBJECT) {
            if (p < end && *p == '}') {
                p++;
                top--;
                goto next;
            }
            goto member;
        }

        if (p < end && *p == ']') {
            p++;
            top--;
            goto next;
        }
        key = NULL;
        key_len = 0;
        goto value;

    case 't':
        n->type = FJ_TRUE;
        n->raw = p;
        n->raw_len = 4;
        ps->p = p;
        if (fj_literal(ps, "true", 4) != 0) {
            return NULL;
        }
        p = ps->p;
        break;

    case 'f':
        n->type = FJ_FALSE;
        n->raw = p;
        n->raw_len = 5;
        ps->p = p;
        if (fj_literal(ps, "false", 5) != 0) {
            return NULL;
        }
        p = ps->p;
        break;

    case 'n':
        n->type = FJ_NULL;
        n->raw = p;
        n->raw_len = 4;
        ps->p = p;
        if (fj_literal(ps, "null", 4) != 0) {
            return NULL;
        }
        p = ps->p;
        break;

    default:
        start = p;
        ps->p = p;
        if (fj_parse_number(ps) != 0) {
            return NULL;
        }
        p = ps->p;
        n->type = FJ_NUMBER;
        n->raw = start;
        n->raw_len = (size_t) (p - start);
        break;
    }

next:
    /* after a value: the next member or element, or the end of some */

    if (top == st) {
        ps->p = p;
        return root;
    }

    /* the byte that follows, looked at before whitespace is skipped: in
     * compact JSON there is none */
separator:

    if (p < end && *p == ',') {
        p++;
        if (top->close == '}') {
            goto member;
        }
        key = NULL;
        key_len = 0;
        goto value;
    }

    if (p < end && *p == top->close) {
        p++;
        top--;
        goto next;
    }

    if (p < end && FJ_IS_WS(*p)) {
        FJ_SKIP_WS(p, end);
        goto separator;
    }

    ps->err = top->close == '}' ? "expected ',' or '}'"
                                : "expected ',' or ']'";
    goto failed;

member:

    if (p >= end || *p != '"') {
        FJ_SKIP_WS(p, end);

        if (p >= end || *p != '"') {
            ps->err = "expected a key";
            goto failed;
        }
    }

key:

    p++;

    if (fj_string_at(ps, &p, &key, &key_len) != 0) {
        return NULL;
    }

    /* a duplicate is looked for only when a key of the same length and
     * first byte was seen in this object */
    bit = (uint64_t) 1 << ((key_len * 5 + (unsigned char) key[0]) & 63);
    if (top->seen & bit) {
        for (k = top->node->child; k; k = k->next) {
            if (k->key_len == key_len && memcmp(k->key, key, key_len) == 0) {
                p = key;
                ps->err = "duplicate key in object";
                goto failed;
            }
        }
    }
    top->seen |= bit;

    if (p >= end || *p != ':') {
        FJ_SKIP_WS(p, end);

        if (p >= end || *p != ':') {
            ps->err = "expected ':'";
            goto failed;
        }
    }
    p++;

    /* compact JSON, the commonest member: a string value at once */
    if (p < end && *p == '"') {
        n = fj_node(ps);
        if (n == NULL) {
            goto failed;
        }

        n->key = key;
        n->key_len = key_len;
        n->type = FJ_STRING;
        *top->tail = n;
        top->tail = &n->next;

        p++;
        if (fj_string_at(ps, &p, &n->raw, &n->raw_len) != 0) {
            return NULL;
        }

        /* inside an object: a separator follows */
        goto separator;
    }

    goto value;

failed:

    ps->p = p;
    return NULL;
}


static void
fj_parser_init(fj_parser_t *ps, fj_arena_t *a, const char *text, size_t len,
    unsigned max_depth)
{
    ps->arena = a;
    ps->pool = NULL;
    ps->pool_end = NULL;
    ps->p = text;
    ps->end = text + len;
    ps->max_depth = max_depth;
    ps->err = NULL;
}


fj_node_t *
fj_parse(fj_arena_t *a, const char *text, size_t len, unsigned max_depth,
    const char **err, size_t *err_at)
{
    fj_parser_t   ps;
    fj_node_t    *n;

    fj_parser_init(&ps, a, text, len, max_depth);

    n = fj_parse_value(&ps);

    if (n != NULL) {
        FJ_SKIP_WS(ps.p, ps.end);
        if (ps.p != ps.end) {
            ps.err = "trailing data after JSON value";
            n = NULL;
        }
    }

    if (n == NULL) {
        *err = ps.err ? ps.err : "invalid JSON";
        *err_at = (size_t) (ps.p - text);
    }

    return n;
}


fj_node_t *
fj_parse_prefix(fj_arena_t *a, const char *text, size_t len,
    unsigned max_depth, size_t *used, int *incomplete, const char **err,
    size_t *err_at)
{
    fj_parser_t   ps;
    fj_node_t    *n;

    fj_parser_init(&ps, a, text, len, max_depth);

    *incomplete = 0;

    n = fj_parse_value(&ps);

    if (n == NULL) {
        /* a number may end exactly at the end of the text: so may all */
        *incomplete = (ps.p >= ps.end);
        *err = ps.err ? ps.err : "invalid JSON";
        *err_at = (size_t) (ps.p - text);
        return NULL;
    }

    *used = (size_t) (ps.p - text);
    return n;
}


/* serialiser */

/*
 * Copies n bytes as the writer does, most of them a key, a short value or
 * a "key":"value" pair: inline, without memcpy's call; two overlapping
 * loads and stores of one width cover any length from that width to twice
 * it, so no byte outside the source or the destination is touched.
 */
static inline void
fj_copy(char *d, const char *s, size_t n)
{
    uint64_t  a, b;
    char      x[16], y[16];

    if (n > 32) {
        memcpy(d, s, n);

    } else if (n >= 16) {
        memcpy(x, s, 16);
        memcpy(y, s + n - 16, 16);
        memcpy(d, x, 16);
        memcpy(d + n - 16, y, 16);

    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);

    } else if (n >= 4) {
        uint32_t  u, v;

        memcpy(&u, s, 4);
        memcpy(&v, s + n - 4, 4);
        memcpy(d, &u, 4);
        memcpy(d + n - 4, &v, 4);

    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}


/*
 * When a key and its scalar value still lie in the source text as
 * "key":"value" (or "key":123), the bytes between them are checked and the
 * member is copied in one piece: the same bytes as written one by one.
 */
int
fj_write_members(fhir_buf_t *out, const fj_node_t *obj, int *first)
{
    int               empty;
    char             *d;
    size_t            n, q, key_len, raw_len;
    fj_type_t         type;
    const char       *k, *raw;
    const fj_node_t  *m;

    /* the node's fields are read into locals before any byte is stored:
     * a char store may alias anything, and would have the compiler load
     * them (and the buffer's) again after each byte */
    empty = *first;          /* no member written yet: no comma */

    for (m = obj->child; m; m = m->next) {
        k = m->key;
        key_len = m->key_len;
        raw = m->raw;
        raw_len = m->raw_len;
        type = m->type;

        /* the key, and a scalar value copied with it, in one reservation */
        if (fhir_buf_reserve(out, key_len + raw_len + 6) != 0) {
            return -1;
        }

        d = out->data + out->len;

        if (!empty) {
            *d++ = ',';
        }
        empty = 0;
        *d++ = '"';

        /* a scalar still as parsed: "key":"value" or "key":123 in the
         * source (addresses compared as integers: k and raw may lie in
         * different objects when a converter changed either) */
        q = (type == FJ_STRING);

        if (type != FJ_OBJECT && type != FJ_ARRAY
            && (uintptr_t) raw == (uintptr_t) k + key_len + 2 + q
            && k[key_len] == '"' && k[key_len + 1] == ':'
            && (!q || k[key_len + 2] == '"'))
        {
            n = (size_t) (raw + raw_len - k);
            fj_copy(d, k, n);
            d += n;
            if (q) {
                *d++ = '"';
            }
            out->len = (size_t) (d - out->data);
            continue;
        }

        fj_copy(d, k, key_len);
        d += key_len;
        *d++ = '"';
        *d++ = ':';
        out->len = (size_t) (d - out->data);

        if (fj_write(out, m) != 0) {
            return -1;
        }
    }

    *first = empty;
    return 0;
}


int
fj_write(fhir_buf_t *out, const fj_node_t *n)
{
    const fj_node_t  *c;
    int               first;

    switch (n->type) {

    case FJ_OBJECT:
        if (fhir_buf_reserve(out, 1) != 0) {
            return -1;
        }
        out->data[out->len++] = '{';
        first = 1;
        if (fj_write_members(out, n, &first) != 0
            || fhir_buf_reserve(out, 1) != 0)
        {
            return -1;
        }
        out->data[out->len++] = '}';
        return 0;

    case FJ_ARRAY:
        for (c = n->child; c; c = c->next) {
            if (fhir_buf_reserve(out, 1) != 0) {
                return -1;
            }
            out->data[out->len++] = (c == n->child) ? '[' : ',';
            if (fj_write(out, c) != 0) {
                return -1;
            }
        }
        if (fhir_buf_reserve(out, 2) != 0) {
            return -1;
        }
        if (n->child == NULL) {
            out->data[out->len++] = '[';
        }
        out->data[out->len++] = ']';
        return 0;

    case FJ_STRING:
        if (fhir_buf_reserve(out, n->raw_len + 2) != 0) {
            return -1;
        }
        out->data[out->len++] = '"';
        fj_copy(out->data + out->len, n->raw, n->raw_len);
        out->len += n->raw_len;
        out->data[out->len++] = '"';
        return 0;

    default:
        if (fhir_buf_reserve(out, n->raw_len) != 0) {
            return -1;
        }
        fj_copy(out->data + out->len, n->raw, n->raw_len);
        out->len += n->raw_len;
        return 0;
    }
}


/* helpers */

fj_node_t *
fj_detachn(fj_node_t *parent, const char *key, size_t len)
{
    fj_node_t  **pp, *m;

    if (parent == NULL || parent->type != FJ_OBJECT) {
        return NULL;
    }

    for (pp = &parent->child; *pp; pp = &(*pp)->next) {
        m = *pp;
        if (m->key_len == len && memcmp(m->key, key, len) == 0) {
            *pp = m->next;
            m->next = NULL;
            return m;
        }
    }

    return NULL;
}


void
fj_unlink(fj_node_t *parent, fj_node_t *child)
{
    fj_node_t  **pp;

    if (parent == NULL || child == NULL) {
        return;
    }

    for (pp = &parent->child; *pp; pp = &(*pp)->next) {
        if (*pp == child) {
            *pp = child->next;
            child->next = NULL;
            return;
        }
    }
}


void
fj_rename(fj_node_t *m, const char *key)
{
    m->key = key;
    m->key_len = strlen(key);
}


void
fj_append(fj_node_t *parent, fj_node_t *child)
{
    fj_node_t  **pp;

    for (pp = &parent->child; *pp; pp = &(*pp)->next) { /* void */ }

    child->next = NULL;
    *pp = child;
}


void
fj_insert_after(fj_node_t *parent, fj_node_t *after, fj_node_t *child)
{
    if (after == NULL) {
        child->next = parent->child;
        parent->child = child;
        return;
    }

    child->next = after->next;
    after->next = child;
}


fj_node_t *
fj_new(fj_arena_t *a, fj_type_t type)
{
    fj_node_t  *n = fj_alloc(a, sizeof(fj_node_t));

    if (n) {
        memset(n, 0, sizeof(fj_node_t));
        n->type = type;
        if (type == FJ_TRUE) {
            n->raw = "true"; n->raw_len = 4;
        } else if (type == FJ_FALSE) {
            n->raw = "false"; n->raw_len = 5;
        } else if (type == FJ_NULL) {
            n->raw = "null"; n->raw_len = 4;
        }
    }

    return n;
}


fj_node_t *
fj_new_strn(fj_arena_t *a, const char *s, size_t len)
{
    fj_node_t  *n = fj_new(a, FJ_STRING);

    if (n) {
        n->raw = s;
        n->raw_len = len;
    }

    return n;
}


fj_node_t *
fj_new_str(fj_arena_t *a, const char *s)
{
    return fj_new_strn(a, s, strlen(s));
}


/* sets a member key on n and returns it, for chaining */
fj_node_t *
fj_member(fj_node_t *n, const char *key)
{
    if (n) {
        fj_rename(n, key);
    }
    return n;
}


/* replaces the value of an object member by an array holding that value */
fj_node_t *
fj_wrap_array(fj_arena_t *a, fj_node_t *m)
{
    fj_node_t  *copy;

    if (m->type == FJ_ARRAY) {
        return m;
    }

    copy = fj_alloc(a, sizeof(fj_node_t));
    if (copy == NULL) {
        return NULL;
    }

    *copy = *m;
    copy->next = NULL;
    copy->key = NULL;
    copy->key_len = 0;

    m->type = FJ_ARRAY;
    m->raw = NULL;
    m->raw_len = 0;
    m->child = copy;
    return m;
}


size_t
fj_count(const fj_node_t *n)
{
    size_t            i = 0;
    const fj_node_t  *c;

    for (c = n->child; c; c = c->next) {
        i++;
    }

    return i;
}
