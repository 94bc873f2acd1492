/* nodeflow — parsing model description files (.nfg).
 *
 * Grammar (docs/model-format.md):
 *   file      = header { line }
 *   header    = "nodeflow" "1"
 *   line      = [ statement | section | setting ] [ "#" comment ]
 *   statement = NAME "=" OP { INPUT } { KEY "=" VALUE }
 *   section   = "[train]"
 *   setting   = KEY "=" VALUE                      (inside [train])
 *
 * Parsing runs in two passes over the statements: the first records every
 * name (so that an undefined name and a forward reference can be told
 * apart), the second builds the nodes in order through the generic graph
 * API, so that the parser knows nothing of particular node types: the node
 * tables say which attributes exist. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/util.h"
#include "io/settings.h"

#define MAX_TOKENS (NF_MAX_INPUTS + NF_MAX_ATTRS + 2)
#define MAX_MODEL_BYTES ((size_t)64 << 20)

typedef struct token {
    const char *text;   /* into the parser's copy of the line */
    const char *value;  /* after '=' for key=value tokens, else NULL */
    int column;
} token;

typedef struct statement {
    int line;
    token name, op;
    int n_tokens;
    token tokens[MAX_TOKENS];
    char *storage;      /* the line's text, split in place */
} statement;

typedef struct parser {
    const char *filename;
    const char *text;
    size_t len;
    nf_error *err;
    statement *stmts;
    int n_stmts, cap_stmts;
    nf_graph *g;
    nf_train_config *train;
    nf_name_index names;  /* statement name -> index into stmts */
} parser;

/* ---- errors ------------------------------------------------------------ */

/* Returns the text of line `line` (1-based) and its length. */
static const char *line_text(const parser *p, int line, int *length)
{
    const char *s = p->text, *end = p->text + p->len;
    for (int l = 1; l < line && s < end; l++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        s = nl ? nl + 1 : end;
    }
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    int n = (int)((nl ? nl : end) - s);
    if (n > 0 && s[n - 1] == '\r')
        n--;
    *length = n;
    return s;
}

/* "file:line:col: error: ...", the line, and a caret under column. */
static nf_status parse_error(const parser *p, nf_status code, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static nf_status parse_error(const parser *p, nf_status code, int line, int column, const char *fmt, ...)
{
    if (!p->err)
        return code;
    char what[NF_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int length;
    const char *text = line_text(p, line, &length);
    int shown = length > 120 ? 120 : length;
    int caret = column - 1 < 120 ? column - 1 : 120;
    char pad[128];
    for (int i = 0; i < caret; i++)
        pad[i] = (i < length && text[i] == '\t') ? '\t' : ' ';
    pad[caret > 0 ? caret : 0] = '\0';
    nf_fail(p->err, code, "%s:%d:%d: error: %s\n  %.*s\n  %s^", p->filename, line, column, what, shown,
            text, pad);
    p->err->line = line;
    p->err->column = column;
    return code;
}

/* ", did you mean 'x'?" or "" */
static const char *hint(char *buf, size_t size, const char *word, const char *const *candidates)
{
    const char *best = nf_suggest(word, candidates);
    if (best)
        snprintf(buf, size, "; did you mean '%s'?", best);
    else
        buf[0] = '\0';
    return buf;
}

/* ---- lexing ------------------------------------------------------------- */

static int is_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

/* Copies a line without its comment and '\r', or NULL on no memory. */
static char *clean_line(const char *s, size_t n)
{
    char *line = malloc(n + 1);
    if (!line)
        return NULL;
    memcpy(line, s, n);
    line[n] = '\0';
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    for (char *c = line; *c; c++)
        if (*c == '\r')
            *c = ' ';
    return line;
}

/* Splits `s` at white space into tokens with 1-based columns. */
static int split_tokens(char *s, const char *line_start, token *out, int max, int *count)
{
    *count = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return 1;
        if (*count == max)
            return 0;
        token *t = &out[(*count)++];
        t->text = s;
        t->column = (int)(s - line_start) + 1;
        t->value = NULL;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
        char *eq = strchr(t->text, '=');
        if (eq) {
            *eq = '\0';
            t->value = eq + 1;
        }
    }
}

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

/* ---- the [train] section ------------------------------------------------ */

/* Where each optimizer setting was written, for errors found once the
 * whole section is read (the optimizer line may come last). */
typedef struct train_lines {
    int line[NF_TRAIN_MAX_HPARAMS], column[NF_TRAIN_MAX_HPARAMS];
} train_lines;

static nf_status parse_train_line(parser *p, int line, char *s, train_lines *where)
{
    /* "key = value", with or without spaces around '=' */
    char *eq = strchr(s, '=');
    if (!eq) {
        token t[2];
        int n = 0;
        split_tokens(s, s, t, 2, &n);
        return parse_error(p, NF_ERR_FORMAT, line, n ? t[0].column : 1, "expected 'key = value' in [train]");
    }
    *eq = ' ';
    token t[3];
    int n = 0;
    if (!split_tokens(s, s, t, 3, &n) || n != 2)
        return parse_error(p, NF_ERR_FORMAT, line, n > 2 ? t[2].column : (int)(eq - s) + 1,
                           "expected one key and one value: 'key = value'");
    if (nf_train_config_has(p->train, t[0].text))
        return parse_error(p, NF_ERR_INVALID_ARGUMENT, line, t[0].column, "'%s' is set twice", t[0].text);
    /* the key's own faults: one more setting than there is room for, or too long */
    int schedule = !strncmp(t[0].text, "schedule.", 9), table = 0;
    for (int i = 0; i < nf_train_setting_count(); i++)
        table |= !strcmp(nf_train_setting_at(i)->key, t[0].text);
    if (!table && (strlen(t[0].text + (schedule ? 9 : 0)) >= sizeof p->train->hparam_key[0] ||
                   (schedule ? p->train->n_schedule : p->train->n_hparams) == NF_TRAIN_MAX_HPARAMS))
        return parse_error(p, NF_ERR_INVALID_ARGUMENT, line, t[0].column, "'%s': too many or too long settings (at most %d "
                           "optimizer and %d schedule settings, keys under 32 characters)", t[0].text,
                           NF_TRAIN_MAX_HPARAMS, NF_TRAIN_MAX_HPARAMS);
    nf_error why; /* else the value is at fault */
    int hparams = p->train->n_hparams;
    if (nf_train_config_set(p->train, t[0].text, t[1].text, &why) != NF_OK)
        return parse_error(p, why.code, line, t[1].column, "%s", why.message);
    if (p->train->n_hparams > hparams) {
        where->line[hparams] = line;
        where->column[hparams] = t[0].column;
    }
    return NF_OK;
}

static nf_status check_train(parser *p, const train_lines *where)
{
    nf_error why;
    int bad = 0;
    if (nf_train_config_check(p->train, &bad, &why) == NF_OK)
        return NF_OK;
    return bad >= 0 ? parse_error(p, why.code, where->line[bad], where->column[bad], "%s", why.message)
                    : parse_error(p, why.code, 1, 1, "%s", why.message); /* not an optimizer setting */
}

/* ---- statements ------------------------------------------------------- */

static nf_status parse_statement(parser *p, int line, char *s, statement *st)
{
    memset(st, 0, sizeof *st);
    st->line = line;
    st->storage = s;
    char *eq = strchr(s, '=');
    token head[2];
    int n = 0;
    if (!eq) {
        split_tokens(s, s, head, 1, &n);
        return parse_error(p, NF_ERR_FORMAT, line, head[0].column, "expected 'name = op inputs... key=value...'");
    }
    *eq = '\0';
    if (!split_tokens(s, s, head, 1, &n) || n != 1)
        return parse_error(p, NF_ERR_FORMAT, line, n ? head[1 - 1].column : 1,
                           n ? "expected one name before '='" : "expected a node name before '='");
    st->name = head[0];
    if (st->name.value || !is_name(st->name.text))
        return parse_error(p, NF_ERR_FORMAT, line, st->name.column,
                           "'%s' is not a name (a letter or '_', then letters, digits or '_')", st->name.text);
    if (strlen(st->name.text) >= NF_NAME_MAX)
        return parse_error(p, NF_ERR_FORMAT, line, st->name.column, "names are at most %d characters",
                           NF_NAME_MAX - 1);
    token rest[MAX_TOKENS + 1];
    if (!split_tokens(eq + 1, s, rest, MAX_TOKENS + 1, &n) || n > MAX_TOKENS)
        return parse_error(p, NF_ERR_FORMAT, line, rest[MAX_TOKENS].column, "too many inputs and attributes");
    if (n == 0 || rest[0].value)
        return parse_error(p, NF_ERR_FORMAT, line, n ? rest[0].column : (int)(eq - s) + 2,
                           "expected an operation after '='");
    st->op = rest[0];
    st->n_tokens = n - 1;
    memcpy(st->tokens, rest + 1, (size_t)(n - 1) * sizeof(token));
    return NF_OK;
}

static const char *statement_name(const void *parser_p, int i)
{
    return ((const struct parser *)parser_p)->stmts[i].name.text;
}

/* The index of the statement named `name`, or -1. */
static int find_statement(const parser *p, const char *name) { return nf_name_index_find(&p->names, name); }

/* Adds the last statement's name to the index. */
static int remember_name(parser *p) { return nf_name_index_add(&p->names, p->n_stmts - 1); }

static nf_status add_statement(parser *p, int line, char *s)
{
    if (p->n_stmts == p->cap_stmts) {
        int cap = p->cap_stmts ? 2 * p->cap_stmts : 32;
        statement *grown = realloc(p->stmts, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(s);
            return nf_fail(p->err, NF_ERR_NO_MEMORY, "%s: out of memory", p->filename);
        }
        p->stmts = grown;
        p->cap_stmts = cap;
    }
    statement *st = &p->stmts[p->n_stmts];
    nf_status rc = parse_statement(p, line, s, st);
    if (rc != NF_OK) {
        free(s);
        return rc;
    }
    int first = find_statement(p, st->name.text);
    p->n_stmts++;
    if (first >= 0)
        return parse_error(p, NF_ERR_GRAPH, line, st->name.column, "'%s' is already defined on line %d",
                           st->name.text, p->stmts[first].line);
    if (!remember_name(p))
        return nf_fail(p->err, NF_ERR_NO_MEMORY, "%s: out of memory", p->filename);
    return NF_OK;
}

/* ---- pass 1: lines ------------------------------------------------------ */

static nf_status check_header(parser *p, const char *first, int line)
{
    token t[3];
    int n = 0;
    char *copy = strdup(first);
    if (!copy)
        return nf_fail(p->err, NF_ERR_NO_MEMORY, "out of memory");
    split_tokens(copy, copy, t, 3, &n);
    nf_status st = NF_OK;
    if (n < 1 || strcmp(t[0].text, "nodeflow") != 0)
        st = parse_error(p, NF_ERR_FORMAT, line, n ? t[0].column : 1,
                         "a model file starts with the line 'nodeflow 1'");
    else if (n != 2 || strcmp(t[1].text, "1") != 0 || t[1].value)
        st = parse_error(p, NF_ERR_FORMAT, line, n > 1 ? t[1].column : (int)strlen(first) + 1,
                         "this reader knows format version 1 ('nodeflow 1')");
    free(copy);
    return st;
}

static nf_status read_lines(parser *p)
{
    const char *s = p->text, *end = p->text + p->len;
    int line = 0, in_train = 0, seen_header = 0;
    train_lines where;
    nf_status st = NF_OK;
    while (st == NF_OK && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = (size_t)((nl ? nl : end) - s);
        line++;
        if (memchr(s, '\0', n))
            return parse_error(p, NF_ERR_FORMAT, line, (int)((const char *)memchr(s, '\0', n) - s) + 1,
                               "a NUL byte; model files are text");
        char *text = clean_line(s, n);
        s = nl ? nl + 1 : end;
        if (!text)
            return nf_fail(p->err, NF_ERR_NO_MEMORY, "%s: out of memory", p->filename);
        if (is_blank(text)) {
            free(text);
            continue;
        }
        if (!seen_header) {
            st = line == 1 ? check_header(p, text, line)
                           : parse_error(p, NF_ERR_FORMAT, line, 1,
                                         "a model file starts with the line 'nodeflow 1' (line 1)");
            seen_header = 1;
            free(text);
            continue;
        }
        char *first = text + strspn(text, " \t");
        if (*first == '[') {
            char *close = strchr(first, ']');
            if (close && (close[1] == '\0' || is_blank(close + 1)) && strncmp(first, "[train]", 7) == 0 &&
                close == first + 6 && !in_train)
                in_train = 1;
            else
                st = parse_error(p, NF_ERR_FORMAT, line, (int)(first - text) + 1,
                                 in_train ? "only one [train] section is allowed"
                                          : "unknown section; the only section is [train]");
            free(text);
        } else if (in_train) {
            st = parse_train_line(p, line, text, &where);
            free(text);
        } else {
            st = add_statement(p, line, text);
        }
    }
    if (st == NF_OK && !seen_header)
        return parse_error(p, NF_ERR_FORMAT, 1, 1, "empty file; a model file starts with the line 'nodeflow 1'");
    if (st == NF_OK && p->n_stmts == 0)
        return parse_error(p, NF_ERR_FORMAT, line, 1, "no nodes; add lines such as 'x = input shape=784'");
    if (st == NF_OK)
        st = check_train(p, &where);
    return st;
}

/* ---- pass 2: nodes -------------------------------------------------- */

/* A non-memory statement that uses a later name: report the cycle it is
 * on, if any, else the forward reference. on_cycle searches depth-first,
 * without recursion, along input edges (not memory back edges) from
 * `from`; when it reaches `target` it leaves the statements of the way in
 * path[0 .. return value - 1]. */
static int on_cycle(const parser *p, int from, int target, int *path, int *next_token, unsigned char *seen)
{
    int depth = 0;
    path[0] = from;
    next_token[0] = 0;
    seen[from] = 1;
    while (depth >= 0) {
        const statement *st = &p->stmts[path[depth]];
        int t = next_token[depth]++;
        if (t >= st->n_tokens || strcmp(st->op.text, "memory") == 0) {
            depth--; /* done with this statement */
            continue;
        }
        if (st->tokens[t].value)
            continue;
        int next = find_statement(p, st->tokens[t].text);
        if (next == target)
            return depth + 1;
        if (next < 0 || seen[next])
            continue;
        seen[next] = 1;
        path[++depth] = next;
        next_token[depth] = 0;
    }
    return 0;
}

static nf_status forward_reference(const parser *p, int index, const token *t, int later)
{
    int *path = malloc(2 * (size_t)p->n_stmts * sizeof *path);
    unsigned char *seen = calloc((size_t)p->n_stmts, 1);
    int length = path && seen ? on_cycle(p, later, index, path, path + p->n_stmts, seen) : 0;
    nf_status st;
    if (length) {
        /* index -> t (= path[0]) -> ... -> path[length - 1] -> index */
        char names[NF_ERROR_MESSAGE_MAX / 2];
        size_t used = (size_t)snprintf(names, sizeof names, "%s", p->stmts[index].name.text);
        for (int i = 0; i < length && used < sizeof names; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, " -> %s", p->stmts[path[i]].name.text);
        if (used < sizeof names)
            snprintf(names + used, sizeof names - used, " -> %s", p->stmts[index].name.text);
        st = parse_error(p, NF_ERR_GRAPH, p->stmts[index].line, t->column,
                         "cycle %s; a cycle must pass through a memory node", names);
    } else {
        st = parse_error(p, NF_ERR_GRAPH, p->stmts[index].line, t->column,
                         "'%s' is defined later (line %d); only a memory node may refer to a later node", t->text,
                         p->stmts[later].line);
    }
    free(path);
    free(seen);
    return st;
}

static nf_status undefined_name(const parser *p, const statement *st, const token *t)
{
    const char **names = malloc(((size_t)p->n_stmts + 1) * sizeof *names);
    char buf[96] = "";
    if (names) {
        for (int i = 0; i < p->n_stmts; i++)
            names[i] = p->stmts[i].name.text;
        names[p->n_stmts] = NULL;
        hint(buf, sizeof buf, t->text, names);
        free(names);
    }
    return parse_error(p, NF_ERR_GRAPH, st->line, t->column, "undefined name '%s'%s", t->text, buf);
}

/* Takes the graph's sticky error (left by the generic API) and reports
 * it at a token. */
static nf_status graph_error_at(parser *p, const statement *st, int column)
{
    nf_error ge = p->g->error;
    memset(&p->g->error, 0, sizeof p->g->error);
    return parse_error(p, ge.code, st->line, column, "%s", ge.message);
}

static nf_status resolve_inputs(parser *p, int index, nf_node **inputs, int *n_inputs, int *memory_source)
{
    const statement *st = &p->stmts[index];
    int is_memory = strcmp(st->op.text, "memory") == 0, attrs_started = 0;
    *n_inputs = 0;
    *memory_source = -1;
    for (int t = 0; t < st->n_tokens; t++) {
        const token *tok = &st->tokens[t];
        if (tok->value) {
            attrs_started = 1;
            continue;
        }
        if (attrs_started)
            return parse_error(p, NF_ERR_FORMAT, st->line, tok->column,
                               "input '%s' after attributes; inputs come first", tok->text);
        int at = find_statement(p, tok->text);
        if (at < 0)
            return undefined_name(p, st, tok);
        if (is_memory) {
            if (*memory_source >= 0)
                return parse_error(p, NF_ERR_GRAPH, st->line, tok->column, "a memory node has one source");
            *memory_source = at;
            continue;
        }
        if (at >= index)
            return forward_reference(p, index, tok, at);
        if (*n_inputs == NF_MAX_INPUTS)
            return parse_error(p, NF_ERR_GRAPH, st->line, tok->column, "more than %d inputs", NF_MAX_INPUTS);
        inputs[(*n_inputs)++] = nf_graph_find(p->g, tok->text);
    }
    if (is_memory && *memory_source < 0)
        return parse_error(p, NF_ERR_GRAPH, st->line, st->op.column,
                           "a memory node needs its source: 'name = memory SOURCE shape=...'");
    return NF_OK;
}

static nf_status apply_attributes(parser *p, const statement *st, nf_node *node)
{
    for (int t = 0; t < st->n_tokens; t++) {
        const token *tok = &st->tokens[t];
        if (!tok->value)
            continue;
        for (int u = 0; u < t; u++)
            if (st->tokens[u].value && strcmp(st->tokens[u].text, tok->text) == 0)
                return parse_error(p, NF_ERR_INVALID_ARGUMENT, st->line, tok->column,
                                   "attribute '%s' is given twice", tok->text);
        if (strcmp(tok->text, "share") == 0) {
            int src = find_statement(p, tok->value);
            int column = tok->column + (int)strlen(tok->text) + 1;
            if (src < 0)
                return undefined_name(p, st, &(token){tok->value, NULL, column});
            if (src >= st - p->stmts)
                return parse_error(p, NF_ERR_GRAPH, st->line, column, "share a node defined before this one");
            if (nf_node_share_params(p->g, node, nf_graph_find(p->g, tok->value)) != NF_OK)
                return graph_error_at(p, st, column);
            continue;
        }
        if (nf_op_attr_index(node->op, tok->text) < 0) {
            const char *names[NF_MAX_ATTRS + 2];
            int n = 0;
            for (int a = 0; a < node->op->n_attrs; a++)
                names[n++] = node->op->attrs[a].name;
            names[n++] = "share";
            names[n] = NULL;
            char buf[96];
            return parse_error(p, NF_ERR_INVALID_ARGUMENT, st->line, tok->column,
                               "%s '%s' has no attribute '%s'%s", node->op->name, node->name, tok->text,
                               hint(buf, sizeof buf, tok->text, names));
        }
        if (!*tok->value)
            return parse_error(p, NF_ERR_INVALID_ARGUMENT, st->line, tok->column + (int)strlen(tok->text) + 1,
                               "attribute '%s' has no value", tok->text);
        if (nf_node_set_attr(p->g, node, tok->text, tok->value) != NF_OK)
            return graph_error_at(p, st, tok->column + (int)strlen(tok->text) + 1);
    }
    return NF_OK;
}

static nf_status build_node(parser *p, int index, int *memory_source)
{
    const statement *st = &p->stmts[index];
    if (!nf_op_find(st->op.text)) {
        char buf[96];
        return parse_error(p, NF_ERR_INVALID_ARGUMENT, st->line, st->op.column, "unknown operation '%s'%s",
                           st->op.text, hint(buf, sizeof buf, st->op.text, nf_op_names()));
    }
    nf_node *inputs[NF_MAX_INPUTS];
    int n_inputs;
    nf_status rc = resolve_inputs(p, index, inputs, &n_inputs, memory_source);
    if (rc != NF_OK)
        return rc;
    nf_node *node = nf_graph_add(p->g, st->op.text, st->name.text, n_inputs, inputs);
    if (!node)
        return graph_error_at(p, st, st->op.column);
    return apply_attributes(p, st, node);
}

static nf_status build_graph(parser *p)
{
    int *sources = malloc((size_t)p->n_stmts * sizeof *sources);
    if (!sources)
        return nf_fail(p->err, NF_ERR_NO_MEMORY, "%s: out of memory", p->filename);
    nf_status st = NF_OK;
    for (int i = 0; i < p->n_stmts && st == NF_OK; i++)
        st = build_node(p, i, &sources[i]);
    for (int i = 0; i < p->n_stmts && st == NF_OK; i++)
        if (sources[i] >= 0 &&
            nf_memory_connect(p->g, p->g->nodes[i], nf_graph_find(p->g, p->stmts[sources[i]].name.text)) != NF_OK)
            st = graph_error_at(p, &p->stmts[i], p->stmts[i].op.column);
    free(sources);
    if (st != NF_OK)
        return st;
    nf_error verr;
    st = nf_graph_validate(p->g, &verr);
    if (st != NF_OK) {
        int at = p->g->error_node >= 0 ? p->g->error_node : 0;
        return parse_error(p, st, p->stmts[at].line, p->stmts[at].name.column, "%s", verr.message);
    }
    return NF_OK;
}

nf_status nf_model_parse(const char *text, size_t len, const char *filename, nf_graph **out,
                         nf_train_config *train, nf_error *err)
{
    if (!text || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_model_parse: NULL argument");
    *out = NULL;
    nf_train_config local;
    parser p = {.filename = filename ? filename : "<model>", .text = text, .len = len, .err = err,
                .train = train ? train : &local};
    nf_train_config_init(p.train);
    nf_name_index_init(&p.names, statement_name, &p);
    if (err)
        err->line = err->column = 0;
    nf_status st = read_lines(&p);
    if (st == NF_OK) {
        p.g = nf_graph_new();
        st = p.g ? build_graph(&p) : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < p.n_stmts; i++)
        free(p.stmts[i].storage);
    free(p.stmts);
    nf_name_index_free(&p.names);
    if (st != NF_OK) {
        nf_graph_free(p.g);
        if (train)
            nf_train_config_init(train);
        return st;
    }
    *out = p.g;
    return NF_OK;
}

nf_status nf_model_load(const char *path, nf_graph **out, nf_train_config *train, nf_error *err)
{
    if (!path || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_model_load: NULL argument");
    *out = NULL;
    char *text;
    size_t len;
    nf_status st = nf_read_file(path, MAX_MODEL_BYTES, &text, &len, err);
    if (st != NF_OK)
        return st;
    st = nf_model_parse(text, len, path, out, train, err);
    free(text);
    return st;
}
