/* nodeflow — a record of named values and tensors (see record.h). */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/record.h"

typedef struct entry {
    char *key;
    char *text;          /* a value, or NULL for a tensor */
    nf_shape shape;
    const float *data;
    const void *src;     /* or a source to read it from */
    void (*read)(const void *src, float *out);
} entry;

struct nf_record {
    entry *e;
    int n, cap;
    int failed;
    const struct entry **sorted; /* the entries by key, made at the first lookup */
    void *owner;
    void (*release)(void *owner);
};

nf_record *nf_record_new(void) { return calloc(1, sizeof(nf_record)); }

void nf_record_free(nf_record *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        free(r->e[i].key);
        free(r->e[i].text);
    }
    free(r->e);
    free(r->sorted);
    if (r->release)
        r->release(r->owner);
    free(r);
}

void nf_record_keep(nf_record *r, void *owner, void (*release)(void *owner))
{
    r->owner = owner;
    r->release = release;
}

int nf_record_failed(const nf_record *r) { return r->failed; }

static entry *add(nf_record *r, const char *key)
{
    if (r->failed)
        return NULL;
    free(r->sorted); /* the index is made again at the next lookup */
    r->sorted = NULL;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        entry *grown = realloc(r->e, (size_t)cap * sizeof *grown);
        if (!grown) {
            r->failed = 1;
            return NULL;
        }
        r->e = grown;
        r->cap = cap;
    }
    entry *e = &r->e[r->n];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key))) {
        r->failed = 1;
        return NULL;
    }
    r->n++;
    return e;
}

int nf_record_put_text(nf_record *r, const char *key, const char *text)
{
    entry *e = add(r, key);
    if (e && !(e->text = strdup(text))) {
        r->failed = 1;
        return 0;
    }
    return e != NULL;
}

int nf_record_put_int(nf_record *r, const char *key, int64_t value)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, value);
    return nf_record_put_text(r, key, text);
}

int nf_record_put_double(nf_record *r, const char *key, double value)
{
    char text[40];
    snprintf(text, sizeof text, "%.17g", value);
    return nf_record_put_text(r, key, text);
}

int nf_record_put_tensor(nf_record *r, const char *name, const nf_shape *shape, const float *data)
{
    entry *e = add(r, name);
    if (e) {
        e->shape = *shape;
        e->data = data;
    }
    return e != NULL;
}

int nf_record_put_source(nf_record *r, const char *name, const nf_shape *shape, const void *src,
                         void (*read)(const void *src, float *out))
{
    entry *e = add(r, name);
    if (e) {
        e->shape = *shape;
        e->src = src;
        e->read = read;
    }
    return e != NULL;
}

/* By key; of equal keys, the one written first (entries are one array). */
static int by_key(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x > y) - (x < y);
}

/* Binary search over the entries sorted by key (a checkpoint holds a few
 * entries per parameter, and every component looks each of its own up);
 * a linear search when there is no memory for the index. */
static const entry *find(const nf_record *r, const char *key)
{
    nf_record *w = (nf_record *)r; /* the index is a cache */
    if (!w->sorted && r->n > 0 && (w->sorted = malloc((size_t)r->n * sizeof *w->sorted))) {
        for (int i = 0; i < r->n; i++)
            w->sorted[i] = &r->e[i];
        qsort(w->sorted, (size_t)r->n, sizeof *w->sorted, by_key);
    }
    if (!r->sorted) {
        for (int i = 0; i < r->n; i++)
            if (!strcmp(r->e[i].key, key))
                return &r->e[i];
        return NULL;
    }
    int lo = 0, hi = r->n;
    while (lo < hi) { /* the first entry whose key is >= key */
        int mid = lo + (hi - lo) / 2;
        if (strcmp(r->sorted[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && !strcmp(r->sorted[lo]->key, key) ? r->sorted[lo] : NULL;
}

const char *nf_record_text(const nf_record *r, const char *key)
{
    const entry *e = find(r, key);
    return e ? e->text : NULL;
}

nf_status nf_record_int(const nf_record *r, const char *key, int64_t min, int64_t max, int64_t *out,
                        nf_error *err)
{
    const char *text = nf_record_text(r, key);
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || end == text || *end || errno == ERANGE || v < min || v > max)
        return nf_fail(err, NF_ERR_FORMAT, "'%s' is %s%s%s, not a whole number from %lld to %lld", key,
                       text ? "'" : "missing", text ? text : "", text ? "'" : "", (long long)min, (long long)max);
    *out = v;
    return NF_OK;
}

/* strtod over a whole field: NaN and values past double's range (which
 * strtod turns into HUGE_VAL with ERANGE) are refused; subnormal results,
 * also ERANGE, are what the writer wrote and are kept. */
static int parse_real(const char *text, char **end, double *out)
{
    errno = 0;
    double v = strtod(text, end);
    if (*end == text || isnan(v) || (errno == ERANGE && isinf(v)))
        return 0;
    *out = v;
    return 1;
}

nf_status nf_record_double(const nf_record *r, const char *key, double *out, nf_error *err)
{
    const char *text = nf_record_text(r, key);
    char *end;
    if (!text || !parse_real(text, &end, out) || *end)
        return nf_fail(err, NF_ERR_FORMAT, "'%s' is %s, not a number within double's range", key,
                       text ? text : "missing");
    return NF_OK;
}

static int field_ends(const char *end) { return *end == ' ' || *end == '\0'; }

int nf_scan_count(const char **p, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = **p >= '0' && **p <= '9' ? strtoll(*p, &end, 10) : -1;
    if (v < 0 || errno == ERANGE || v > NF_MAX_COUNT || !field_ends(end))
        return 0;
    *out = v;
    *p = *end ? end + 1 : end;
    return 1;
}

int nf_scan_real(const char **p, double *out)
{
    char *end;
    if (**p == ' ' || !**p || !parse_real(*p, &end, out) || !field_ends(end))
        return 0;
    *p = *end ? end + 1 : end;
    return 1;
}

nf_status nf_record_tensor(const nf_record *r, const char *name, const nf_shape *shape, float *out,
                           nf_error *err)
{
    const entry *e = find(r, name);
    if (!e || e->text || !nf_shape_equal(&e->shape, shape))
        return nf_fail(err, NF_ERR_FORMAT, "tensor '%s' is missing or misshapen", name);
    if (out && e->read)
        e->read(e->src, out);
    else if (out)
        memcpy(out, e->data, (size_t)nf_shape_size(shape) * sizeof(float));
    return NF_OK;
}

int nf_record_count(const nf_record *r) { return r->n; }

const char *nf_record_key(const nf_record *r, int i, const char **text, const nf_shape **shape,
                          const float **data)
{
    const entry *e = &r->e[i];
    *text = e->text;
    *shape = &e->shape;
    *data = e->data;
    return e->key;
}

/* ---- the graph's state ---------------------------------------------------- */

nf_status nf_graph_save_state(const nf_graph *g, nf_record *r, nf_error *err)
{
    for (int k = 0; k < g->n_params; k++)
        nf_record_put_tensor(r, g->params[k].name, &g->params[k].shape, g->values + g->params[k].offset);
    char runs[32];
    snprintf(runs, sizeof runs, "%" PRIu64, g->runs);
    nf_record_put_text(r, "graph_runs", runs);
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory saving the parameters") : NF_OK;
}

nf_status nf_graph_load_state(nf_graph *g, const nf_record *r, int apply, nf_error *err)
{
    int64_t runs;
    nf_status st = nf_record_int(r, "graph_runs", 0, INT64_MAX, &runs, err);
    for (int k = 0; st == NF_OK && k < g->n_params; k++)
        st = nf_record_tensor(r, g->params[k].name, &g->params[k].shape, apply ? g->values + g->params[k].offset : NULL,
                              err);
    if (st == NF_OK && apply)
        g->runs = (uint64_t)runs; /* dropout masks continue where they were */
    return st;
}
