/* regex.c - parser, code generator and backtracking matcher.
 *
 * The pattern is parsed into a tree, then compiled into a small instruction
 * program. Repetitions of a single-character atom (the common case in
 * pre-tokenizer patterns, e.g. \p{L}+) become one REPEAT instruction that
 * counts greedily and backs off without recursing once per character, so
 * long runs of input do not grow the stack. */
#include "text/regex.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"

/* ---- character classes ---------------------------------------------------- */

enum item_kind { ITEM_RANGE, ITEM_FLAGS, ITEM_NOT_FLAGS, ITEM_CAT, ITEM_NOT_CAT };

typedef struct class_item {
    enum item_kind kind;
    uint32_t lo, hi;  /* ITEM_RANGE */
    uint16_t flags;   /* ITEM_FLAGS / ITEM_NOT_FLAGS: any of these */
    char cat[3];      /* ITEM_CAT: two-letter general category */
} class_item;

typedef struct char_class {
    class_item *items;
    int n, cap;
    bool negate;
    bool icase;
    uint64_t ascii[2]; /* precomputed membership for codepoints < 128 */
} char_class;

static bool item_match(const class_item *it, uint32_t cp, uint16_t fl) {
    switch (it->kind) {
    case ITEM_RANGE: return cp >= it->lo && cp <= it->hi;
    case ITEM_FLAGS: return (fl & it->flags) != 0;
    case ITEM_NOT_FLAGS: return (fl & it->flags) == 0;
    case ITEM_CAT: return strcmp(unicode_category(cp), it->cat) == 0;
    case ITEM_NOT_CAT: return strcmp(unicode_category(cp), it->cat) != 0;
    }
    return false;
}

static bool class_match_slow(const char_class *c, uint32_t cp, uint16_t fl) {
    bool in = false;
    for (int i = 0; i < c->n && !in; i++) in = item_match(&c->items[i], cp, fl);
    if (!in && c->icase && cp < 128) {
        uint32_t alt = (cp >= 'a' && cp <= 'z') ? cp - 32 : (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        for (int i = 0; i < c->n && !in; i++) in = item_match(&c->items[i], alt, unicode_flags(alt));
    }
    return in != c->negate;
}

static inline bool class_match(const char_class *c, uint32_t cp, uint16_t fl) {
    if (cp < 128) return (c->ascii[cp >> 6] >> (cp & 63)) & 1;
    return class_match_slow(c, cp, fl);
}

static void class_finish(char_class *c) {
    c->ascii[0] = c->ascii[1] = 0;
    for (uint32_t cp = 0; cp < 128; cp++)
        if (class_match_slow(c, cp, unicode_flags(cp))) c->ascii[cp >> 6] |= 1ull << (cp & 63);
}

/* ---- syntax tree ---------------------------------------------------------- */

enum node_kind { N_EMPTY, N_CHAR, N_CLASS, N_ANY, N_CAT, N_ALT, N_REPEAT, N_LOOK, N_BOL, N_EOL };

typedef struct node node;
struct node {
    enum node_kind kind;
    uint32_t c;        /* N_CHAR */
    bool icase;        /* N_CHAR */
    int cls;           /* N_CLASS: index into classes */
    node **kids;       /* N_CAT / N_ALT */
    int n_kids;
    node *kid;         /* N_REPEAT / N_LOOK */
    int min, max;      /* N_REPEAT; max -1 = unbounded */
    bool greedy;
    bool negate;       /* N_LOOK */
};

enum op { OP_CHAR, OP_CLASS, OP_ANY, OP_REPEAT, OP_SPLIT, OP_JMP, OP_LOOK, OP_BOL, OP_EOL, OP_MATCH };

typedef struct inst {
    enum op op;
    uint32_t c;
    bool icase;
    int cls;
    int x, y;          /* jump targets; OP_LOOK: x = continuation */
    bool negate;
    /* OP_REPEAT: atom is (atom_op, c, icase, cls) */
    enum op atom_op;
    int min, max;
    bool greedy;
} inst;

struct regex {
    inst *code;
    int n_code, cap_code;
    char_class *classes;
    int n_classes, cap_classes;
};

typedef struct parser {
    const char *start, *p, *end;
    regex *re;
    al_err *err;
    bool icase;
    bool failed;
    node **all; /* every node, for freeing */
    int n_all, cap_all;
    int depth;
} parser;

static void *grow(void *p, int *cap, int need, size_t elem) {
    if (need <= *cap) return p;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *np = realloc(p, (size_t)nc * elem);
    if (np) *cap = nc;
    return np;
}

static int fail(parser *ps, const char *what) {
    if (!ps->failed) al_err_set(ps->err, "regex: %s at pattern byte %ld", what, (long)(ps->p - ps->start));
    ps->failed = true;
    return -1;
}

static node *new_node(parser *ps, enum node_kind k) {
    node *n = calloc(1, sizeof *n);
    node **na = grow(ps->all, &ps->cap_all, ps->n_all + 1, sizeof *na);
    if (!n || !na) {
        free(n);
        if (na) ps->all = na;
        fail(ps, "out of memory");
        return NULL;
    }
    ps->all = na;
    ps->all[ps->n_all++] = n;
    n->kind = k;
    return n;
}

static int add_kid(parser *ps, node *parent, node *kid) {
    node **k = realloc(parent->kids, (size_t)(parent->n_kids + 1) * sizeof *k);
    if (!k) return fail(ps, "out of memory");
    parent->kids = k;
    parent->kids[parent->n_kids++] = kid;
    return 0;
}

static bool at_end(parser *ps) { return ps->p >= ps->end; }

static uint32_t next_cp(parser *ps) {
    size_t adv;
    uint32_t cp = utf8_decode(ps->p, (size_t)(ps->end - ps->p), &adv);
    ps->p += adv;
    return cp;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int add_item(parser *ps, char_class *c, class_item it) {
    class_item *ni = grow(c->items, &c->cap, c->n + 1, sizeof *ni);
    if (!ni) return fail(ps, "out of memory");
    c->items = ni;
    c->items[c->n++] = it;
    return 0;
}

static uint16_t prop_flags(const char *name) {
    switch (name[0]) {
    case 'L': return UFLAG_LETTER;
    case 'N': return UFLAG_NUMBER;
    case 'P': return UFLAG_PUNCT;
    case 'S': return UFLAG_SYMBOL;
    case 'M': return UFLAG_MARK;
    case 'Z': return UFLAG_SEPARATOR;
    case 'C': return UFLAG_CONTROL | UFLAG_UNDEFINED;
    default: return 0;
    }
}

/* Parses an escape after '\'. Either yields a literal codepoint (*lit) or
 * appends class items to c. Returns 1 for literal, 0 for class items, -1 error. */
static int parse_escape(parser *ps, char_class *c, uint32_t *lit) {
    if (at_end(ps)) return fail(ps, "pattern ends with a backslash");
    char e = *ps->p++;
    class_item it = {0};
    switch (e) {
    case 'n': *lit = '\n'; return 1;
    case 'r': *lit = '\r'; return 1;
    case 't': *lit = '\t'; return 1;
    case 'f': *lit = '\f'; return 1;
    case 'v': *lit = '\v'; return 1;
    case '0': *lit = 0; return 1;
    case 'x': case 'u': {
        if (e == 'x' && !at_end(ps) && *ps->p == '{') { /* \x{HHHHHH} */
            uint32_t v = 0;
            int k = 0;
            ps->p++;
            while (!at_end(ps) && *ps->p != '}' && hexval(*ps->p) >= 0 && k < 6) v = v * 16 + (uint32_t)hexval(*ps->p++), k++;
            if (at_end(ps) || *ps->p != '}' || k == 0 || v > 0x10FFFF) return fail(ps, "bad \\x{...} escape");
            ps->p++;
            *lit = v;
            return 1;
        }
        int digits = e == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            if (at_end(ps) || hexval(*ps->p) < 0) return fail(ps, "bad hex escape");
            v = v * 16 + (uint32_t)hexval(*ps->p++);
        }
        *lit = v;
        return 1;
    }
    case 's': case 'S':
        it.kind = e == 's' ? ITEM_FLAGS : ITEM_NOT_FLAGS;
        it.flags = UFLAG_WHITESPACE;
        return add_item(ps, c, it) ? -1 : 0;
    case 'd': case 'D':
        if (e == 'd') return add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = '0', .hi = '9'}) ? -1 : 0;
        /* \D: everything but 0-9 */
        if (add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = 0, .hi = '0' - 1})) return -1;
        return add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = '9' + 1, .hi = 0x10FFFF}) ? -1 : 0;
    case 'w':
        if (add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = 'a', .hi = 'z'}) ||
            add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = 'A', .hi = 'Z'}) ||
            add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = '0', .hi = '9'}) ||
            add_item(ps, c, (class_item){.kind = ITEM_RANGE, .lo = '_', .hi = '_'}))
            return -1;
        return 0;
    case 'p': case 'P': {
        if (at_end(ps) || *ps->p != '{') return fail(ps, "expected { after \\p");
        ps->p++;
        char name[8];
        int k = 0;
        while (!at_end(ps) && *ps->p != '}' && k < 7) name[k++] = *ps->p++;
        name[k] = 0;
        if (at_end(ps) || *ps->p != '}') return fail(ps, "unterminated \\p{...}");
        ps->p++;
        if (k == 1 && prop_flags(name)) {
            it.kind = e == 'p' ? ITEM_FLAGS : ITEM_NOT_FLAGS;
            it.flags = prop_flags(name);
        } else if (k == 2 && prop_flags(name)) {
            it.kind = e == 'p' ? ITEM_CAT : ITEM_NOT_CAT;
            memcpy(it.cat, name, 3);
        } else {
            return fail(ps, "unknown Unicode property");
        }
        return add_item(ps, c, it) ? -1 : 0;
    }
    default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
            return fail(ps, "unsupported escape");
        ps->p--;
        *lit = next_cp(ps);
        return 1;
    }
}

static int new_class(parser *ps) {
    char_class *nc = grow(ps->re->classes, &ps->re->cap_classes, ps->re->n_classes + 1, sizeof *nc);
    if (!nc) return fail(ps, "out of memory");
    ps->re->classes = nc;
    memset(&nc[ps->re->n_classes], 0, sizeof *nc);
    nc[ps->re->n_classes].icase = ps->icase;
    return ps->re->n_classes++;
}

/* Parses [...] after the '['. */
static node *parse_bracket(parser *ps) {
    int ci = new_class(ps);
    if (ci < 0) return NULL;
    char_class *c = &ps->re->classes[ci];
    if (!at_end(ps) && *ps->p == '^') {
        c->negate = true;
        ps->p++;
    }
    bool first = true;
    while (!at_end(ps) && (*ps->p != ']' || first)) {
        first = false;
        uint32_t lo;
        if (*ps->p == '\\') {
            ps->p++;
            int r = parse_escape(ps, &ps->re->classes[ci], &lo);
            if (r < 0) return NULL;
            if (r == 0) continue;
        } else {
            lo = next_cp(ps);
        }
        uint32_t hi = lo;
        if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                int r = parse_escape(ps, &ps->re->classes[ci], &hi);
                if (r < 0) return NULL;
                if (r == 0) {
                    fail(ps, "class escape as range end");
                    return NULL;
                }
            } else {
                hi = next_cp(ps);
            }
            if (hi < lo) {
                fail(ps, "range out of order");
                return NULL;
            }
        }
        if (add_item(ps, &ps->re->classes[ci], (class_item){.kind = ITEM_RANGE, .lo = lo, .hi = hi})) return NULL;
    }
    if (at_end(ps)) {
        fail(ps, "unterminated [");
        return NULL;
    }
    ps->p++; /* ']' */
    node *n = new_node(ps, N_CLASS);
    if (n) n->cls = ci;
    return n;
}

static node *parse_alt(parser *ps);

static node *parse_atom(parser *ps) {
    char ch = *ps->p;
    if (ch == '(') {
        ps->p++;
        if (++ps->depth > 64) {
            fail(ps, "groups nested too deeply");
            return NULL;
        }
        bool saved_icase = ps->icase;
        node *look = NULL;
        if (!at_end(ps) && *ps->p == '?') {
            ps->p++;
            if (at_end(ps)) { fail(ps, "bad group"); return NULL; }
            char k = *ps->p++;
            if (k == ':') {
            } else if (k == '=' || k == '!') {
                look = new_node(ps, N_LOOK);
                if (!look) return NULL;
                look->negate = k == '!';
            } else if (k == 'i' && !at_end(ps) && *ps->p == ':') {
                ps->p++;
                ps->icase = true;
            } else {
                fail(ps, "unsupported group type");
                return NULL;
            }
        }
        node *inner = parse_alt(ps);
        ps->icase = saved_icase;
        ps->depth--;
        if (!inner) return NULL;
        if (at_end(ps) || *ps->p != ')') {
            fail(ps, "missing )");
            return NULL;
        }
        ps->p++;
        if (look) {
            look->kid = inner;
            return look;
        }
        return inner;
    }
    if (ch == '[') {
        ps->p++;
        return parse_bracket(ps);
    }
    if (ch == '.') {
        ps->p++;
        return new_node(ps, N_ANY);
    }
    if (ch == '^') {
        ps->p++;
        return new_node(ps, N_BOL);
    }
    if (ch == '$') {
        ps->p++;
        return new_node(ps, N_EOL);
    }
    if (ch == '\\') {
        ps->p++;
        int ci = new_class(ps);
        if (ci < 0) return NULL;
        uint32_t lit;
        int r = parse_escape(ps, &ps->re->classes[ci], &lit);
        if (r < 0) return NULL;
        if (r == 0) {
            node *n = new_node(ps, N_CLASS);
            if (n) n->cls = ci;
            return n;
        }
        ps->re->n_classes--; /* unused */
        node *n = new_node(ps, N_CHAR);
        if (n) {
            n->c = lit;
            n->icase = ps->icase;
        }
        return n;
    }
    if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
        fail(ps, "quantifier without an operand");
        return NULL;
    }
    node *n = new_node(ps, N_CHAR);
    if (n) {
        n->c = next_cp(ps);
        n->icase = ps->icase;
    }
    return n;
}

static int parse_int(parser *ps, int *v) {
    if (at_end(ps) || *ps->p < '0' || *ps->p > '9') return -1;
    long x = 0;
    while (!at_end(ps) && *ps->p >= '0' && *ps->p <= '9') {
        x = x * 10 + (*ps->p++ - '0');
        if (x > 1000) return fail(ps, "repeat count too large");
    }
    *v = (int)x;
    return 0;
}

static node *parse_repeat(parser *ps) {
    node *atom = parse_atom(ps);
    while (atom && !at_end(ps)) {
        int min, max;
        char q = *ps->p;
        if (q == '*') { min = 0; max = -1; ps->p++; }
        else if (q == '+') { min = 1; max = -1; ps->p++; }
        else if (q == '?') { min = 0; max = 1; ps->p++; }
        else if (q == '{') {
            const char *save = ps->p;
            ps->p++;
            if (parse_int(ps, &min)) { ps->p = save; break; }
            max = min;
            if (!at_end(ps) && *ps->p == ',') {
                ps->p++;
                max = -1;
                if (!at_end(ps) && *ps->p != '}' && parse_int(ps, &max)) return NULL;
            }
            if (at_end(ps) || *ps->p != '}') { fail(ps, "bad {n,m}"); return NULL; }
            ps->p++;
            if (max >= 0 && max < min) { fail(ps, "{n,m} with m < n"); return NULL; }
        } else break;
        if (atom->kind == N_LOOK || atom->kind == N_BOL || atom->kind == N_EOL) {
            fail(ps, "quantified assertion");
            return NULL;
        }
        node *r = new_node(ps, N_REPEAT);
        if (!r) return NULL;
        r->kid = atom;
        r->min = min;
        r->max = max;
        r->greedy = true;
        if (!at_end(ps) && *ps->p == '?') {
            r->greedy = false;
            ps->p++;
        }
        atom = r;
    }
    return atom;
}

static node *parse_cat(parser *ps) {
    node *cat = new_node(ps, N_CAT);
    if (!cat) return NULL;
    while (!at_end(ps) && *ps->p != '|' && *ps->p != ')') {
        node *n = parse_repeat(ps);
        if (!n || add_kid(ps, cat, n)) return NULL;
    }
    return cat;
}

static node *parse_alt(parser *ps) {
    node *first = parse_cat(ps);
    if (!first) return NULL;
    if (at_end(ps) || *ps->p != '|') return first;
    node *alt = new_node(ps, N_ALT);
    if (!alt || add_kid(ps, alt, first)) return NULL;
    while (!at_end(ps) && *ps->p == '|') {
        ps->p++;
        node *n = parse_cat(ps);
        if (!n || add_kid(ps, alt, n)) return NULL;
    }
    return alt;
}

/* ---- code generation -------------------------------------------------------- */

static int emit(parser *ps, inst in) {
    regex *re = ps->re;
    inst *nc = grow(re->code, &re->cap_code, re->n_code + 1, sizeof *nc);
    if (!nc) return fail(ps, "out of memory");
    re->code = nc;
    if (re->n_code > 100000) return fail(ps, "pattern too large");
    re->code[re->n_code] = in;
    return re->n_code++;
}

static bool single_char(const node *n) { return n->kind == N_CHAR || n->kind == N_CLASS || n->kind == N_ANY; }

static int gen(parser *ps, const node *n) {
    switch (n->kind) {
    case N_EMPTY: return 0;
    case N_CHAR: return emit(ps, (inst){.op = OP_CHAR, .c = n->c, .icase = n->icase}) < 0 ? -1 : 0;
    case N_CLASS: return emit(ps, (inst){.op = OP_CLASS, .cls = n->cls}) < 0 ? -1 : 0;
    case N_ANY: return emit(ps, (inst){.op = OP_ANY}) < 0 ? -1 : 0;
    case N_BOL: return emit(ps, (inst){.op = OP_BOL}) < 0 ? -1 : 0;
    case N_EOL: return emit(ps, (inst){.op = OP_EOL}) < 0 ? -1 : 0;
    case N_CAT:
        for (int i = 0; i < n->n_kids; i++)
            if (gen(ps, n->kids[i])) return -1;
        return 0;
    case N_ALT: {
        /* SPLIT L1, next; L1: a; JMP end; next: SPLIT L2, next2; ... last */
        int *jmps = malloc((size_t)n->n_kids * sizeof *jmps);
        if (!jmps) return fail(ps, "out of memory");
        for (int i = 0; i < n->n_kids; i++) {
            int split = -1;
            if (i + 1 < n->n_kids) {
                split = emit(ps, (inst){.op = OP_SPLIT});
                if (split < 0) { free(jmps); return -1; }
                ps->re->code[split].x = split + 1;
            }
            if (gen(ps, n->kids[i])) { free(jmps); return -1; }
            if (i + 1 < n->n_kids) {
                jmps[i] = emit(ps, (inst){.op = OP_JMP});
                if (jmps[i] < 0) { free(jmps); return -1; }
                ps->re->code[split].y = ps->re->n_code;
            }
        }
        for (int i = 0; i + 1 < n->n_kids; i++) ps->re->code[jmps[i]].x = ps->re->n_code;
        free(jmps);
        return 0;
    }
    case N_LOOK: {
        int look = emit(ps, (inst){.op = OP_LOOK, .negate = n->negate});
        if (look < 0 || gen(ps, n->kid) || emit(ps, (inst){.op = OP_MATCH}) < 0) return -1;
        ps->re->code[look].x = ps->re->n_code;
        return 0;
    }
    case N_REPEAT: {
        const node *k = n->kid;
        if (single_char(k)) {
            inst in = {.op = OP_REPEAT, .min = n->min, .max = n->max, .greedy = n->greedy};
            in.atom_op = k->kind == N_CHAR ? OP_CHAR : k->kind == N_CLASS ? OP_CLASS : OP_ANY;
            in.c = k->c;
            in.icase = k->icase;
            in.cls = k->cls;
            return emit(ps, in) < 0 ? -1 : 0;
        }
        /* general case: unroll the mandatory part, then optional copies */
        for (int i = 0; i < n->min; i++)
            if (gen(ps, k)) return -1;
        if (n->max < 0) {
            int split = emit(ps, (inst){.op = OP_SPLIT});
            if (split < 0 || gen(ps, k)) return -1;
            if (emit(ps, (inst){.op = OP_JMP, .x = split}) < 0) return -1;
            inst *s = &ps->re->code[split];
            if (n->greedy) { s->x = split + 1; s->y = ps->re->n_code; }
            else { s->y = split + 1; s->x = ps->re->n_code; }
        } else {
            int opt = n->max - n->min;
            int *splits = malloc((size_t)(opt ? opt : 1) * sizeof *splits);
            if (!splits) return fail(ps, "out of memory");
            for (int i = 0; i < opt; i++) {
                splits[i] = emit(ps, (inst){.op = OP_SPLIT});
                if (splits[i] < 0 || gen(ps, k)) { free(splits); return -1; }
            }
            for (int i = 0; i < opt; i++) {
                inst *s = &ps->re->code[splits[i]];
                if (n->greedy) { s->x = splits[i] + 1; s->y = ps->re->n_code; }
                else { s->y = splits[i] + 1; s->x = ps->re->n_code; }
            }
            free(splits);
        }
        return 0;
    }
    }
    return fail(ps, "internal: bad node");
}

regex *regex_compile(const char *pattern, al_err *err) {
    regex *re = calloc(1, sizeof *re);
    if (!re) {
        al_err_set(err, "out of memory");
        return NULL;
    }
    parser ps = {.start = pattern, .p = pattern, .end = pattern + strlen(pattern), .re = re, .err = err};
    node *root = parse_alt(&ps);
    if (root && !at_end(&ps)) {
        fail(&ps, "unbalanced )");
        root = NULL;
    }
    if (root && gen(&ps, root) == 0) emit(&ps, (inst){.op = OP_MATCH});
    for (int i = 0; i < ps.n_all; i++) {
        free(ps.all[i]->kids);
        free(ps.all[i]);
    }
    free(ps.all);
    if (ps.failed || !root) {
        regex_free(re);
        return NULL;
    }
    for (int i = 0; i < re->n_classes; i++) class_finish(&re->classes[i]);
    return re;
}

void regex_free(regex *re) {
    if (!re) return;
    for (int i = 0; i < re->n_classes; i++) free(re->classes[i].items);
    free(re->classes);
    free(re->code);
    free(re);
}

/* ---- matcher ---------------------------------------------------------------- */

#define MAX_DEPTH 10000

typedef struct mstate {
    const regex *re;
    const regex_subject *s;
    int depth;
} mstate;

static inline bool atom_match(const regex *re, enum op op, uint32_t c, bool icase, int cls, uint32_t cp, uint16_t fl) {
    switch (op) {
    case OP_CHAR:
        if (cp == c) return true;
        if (icase && cp < 128 && c < 128) {
            uint32_t a = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp, b = (c >= 'A' && c <= 'Z') ? c + 32 : c;
            return a == b;
        }
        return false;
    case OP_CLASS: return class_match(&re->classes[cls], cp, fl);
    case OP_ANY: return cp != '\n' && cp != '\r' && cp != 0x2028 && cp != 0x2029;
    default: return false;
    }
}

static long bt(mstate *m, int pc, size_t sp) {
    const regex *re = m->re;
    const regex_subject *s = m->s;
    if (++m->depth > MAX_DEPTH) {
        m->depth--;
        return -1;
    }
    long result = -1;
    for (;;) {
        const inst *in = &re->code[pc];
        switch (in->op) {
        case OP_CHAR: case OP_CLASS: case OP_ANY:
            if (sp < s->end && atom_match(re, in->op, in->c, in->icase, in->cls, s->cps[sp], s->flags[sp])) {
                sp++;
                pc++;
                continue;
            }
            goto done;
        case OP_REPEAT: {
            size_t k = 0;
            size_t lim = s->end - sp;
            if (in->max >= 0 && (size_t)in->max < lim) lim = (size_t)in->max;
            if (in->greedy) {
                while (k < lim && atom_match(re, in->atom_op, in->c, in->icase, in->cls, s->cps[sp + k], s->flags[sp + k])) k++;
                if (k < (size_t)in->min) goto done;
                /* fast path: nothing but MATCH follows */
                if (re->code[pc + 1].op == OP_MATCH) { result = (long)(sp + k); goto done; }
                for (size_t i = k + 1; i-- > (size_t)in->min;) {
                    long r = bt(m, pc + 1, sp + i);
                    if (r >= 0) { result = r; goto done; }
                }
                goto done;
            }
            for (size_t i = 0;; i++) {
                if (i >= (size_t)in->min) {
                    long r = bt(m, pc + 1, sp + i);
                    if (r >= 0) { result = r; goto done; }
                }
                if (i >= lim || !atom_match(re, in->atom_op, in->c, in->icase, in->cls, s->cps[sp + i], s->flags[sp + i])) goto done;
            }
        }
        case OP_SPLIT: {
            long r = bt(m, in->x, sp);
            if (r >= 0) { result = r; goto done; }
            pc = in->y;
            continue;
        }
        case OP_JMP: pc = in->x; continue;
        case OP_LOOK: {
            long r = bt(m, pc + 1, sp);
            if ((r >= 0) == in->negate) goto done;
            pc = in->x;
            continue;
        }
        case OP_BOL: if (sp != s->begin) goto done; pc++; continue;
        case OP_EOL: if (sp != s->end) goto done; pc++; continue;
        case OP_MATCH: result = (long)sp; goto done;
        }
    }
done:
    m->depth--;
    return result;
}

long regex_match_at(const regex *re, const regex_subject *s, size_t pos) {
    mstate m = {.re = re, .s = s};
    return bt(&m, 0, pos);
}

static int push_len(size_t **lens, size_t *n, size_t *cap, size_t v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        size_t *nl = realloc(*lens, nc * sizeof *nl);
        if (!nl) return -1;
        *lens = nl;
        *cap = nc;
    }
    (*lens)[(*n)++] = v;
    return 0;
}

int regex_split(const regex *re, const regex_subject *s, size_t **lens, size_t *n, size_t *cap) {
    size_t last = s->begin, p = s->begin;
    while (p < s->end) {
        long e = regex_match_at(re, s, p);
        if (e > (long)p) {
            if (p > last && push_len(lens, n, cap, p - last)) return -1;
            if (push_len(lens, n, cap, (size_t)e - p)) return -1;
            p = last = (size_t)e;
        } else {
            p++;
        }
    }
    if (s->end > last && push_len(lens, n, cap, s->end - last)) return -1;
    return 0;
}
