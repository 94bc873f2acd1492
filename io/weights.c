/* nodeflow — graph weights and checkpoint files as safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint_file.h"
#include "io/safetensors.h"
#include "io/util.h"

#define CHECKPOINT_FORMAT "nodeflow-checkpoint-1"

/* ---- weights --------------------------------------------------------- */

static nf_st_entry *param_entries(const nf_graph *g)
{
    nf_st_entry *e = calloc((size_t)g->n_params + 1, sizeof *e);
    for (int k = 0; e && k < g->n_params; k++)
        e[k] = (nf_st_entry){g->params[k].name, g->params[k].shape, g->values + g->params[k].offset};
    return e;
}

#define VOCAB_KEY "nodeflow.vocab"

/* Adds the graph's vocabulary (hex) to meta, made if NULL; NULL without a
 * vocabulary or out of memory. */
static cJSON *vocab_meta(const nf_graph *g, cJSON *meta)
{
    if (!g->vocab_size)
        return meta;
    char hex[2 * 256 + 1];
    for (int i = 0; i < g->vocab_size; i++)
        snprintf(hex + 2 * i, 3, "%02x", g->vocab[i]);
    cJSON *m = meta ? meta : cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, VOCAB_KEY, hex)) {
        if (!meta)
            cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* The vocabulary of a weights file's metadata, if it has one. */
static nf_status vocab_from(nf_graph *g, const nf_st_file *f, nf_error *err)
{
    const char *hex = nf_st_meta(f, VOCAB_KEY);
    if (!hex)
        return NF_OK;
    size_t len = strlen(hex);
    unsigned char bytes[256];
    if (len % 2 || len / 2 > 256 || len == 0)
        return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s must hold 1 to 256 bytes in hex", f->path, VOCAB_KEY);
    if (!nf_hex_decode(hex, bytes, len / 2))
        return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s is not hex", f->path, VOCAB_KEY);
    nf_error why;
    if (nf_graph_set_vocab(g, bytes, (int)(len / 2), &why) != NF_OK) /* a message of its own, then ours around it */
        return nf_fail(err, NF_ERR_FORMAT, "%s: metadata %s: %s", f->path, VOCAB_KEY, why.message);
    return NF_OK;
}

nf_status nf_weights_save(const nf_graph *g, const char *path, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_weights_save: NULL argument");
    if (g->validated_version != g->version)
        return nf_fail(err, NF_ERR_STATE, "validate the graph before saving its weights");
    nf_st_entry *e = param_entries(g);
    if (!e)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    cJSON *meta = vocab_meta(g, NULL);
    nf_status st = g->vocab_size && !meta ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory")
                                          : nf_st_write(path, e, g->n_params, meta, err);
    cJSON_Delete(meta);
    free(e);
    return st;
}

/* The tensors a checkpoint holds besides the parameters: optimizer state,
 * accumulated gradients, averaged and best weights. A checkpoint loads as
 * weights; a weights file with such tensors is held to the usual rule. */
static int is_checkpoint_extra(const nf_st_file *f, const char *name)
{
    const char *format = nf_st_meta(f, "format");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        return 0;
    static const char *const prefixes[] = {"optim.", "grad.", "average.", "best.", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return 1;
    return 0;
}

/* Every parameter present with its shape; extra tensors only if allowed
 * (a checkpoint's own always are). */
static nf_status check_params(const nf_graph *g, const nf_st_file *f, unsigned flags, nf_error *err)
{
    for (int k = 0; k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        const nf_st_tensor *t = nf_st_find(f, p->name);
        char want[64], have[64];
        if (!t)
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is missing", f->path, p->name);
        if (!nf_shape_equal(&t->shape, &p->shape))
            return nf_fail(err, NF_ERR_SHAPE, "%s: tensor '%s': expected shape %s, found %s", f->path, p->name,
                           nf_shape_format(&p->shape, want, sizeof want), nf_shape_format(&t->shape, have, sizeof have));
        double value;
        int64_t at = flags & NF_WEIGHTS_ALLOW_NONFINITE ? -1 : nf_st_first_nonfinite(t, &value);
        if (at >= 0)
            return nf_fail(err, NF_ERR_FORMAT,
                           "%s: tensor '%s' element %lld is %g, not a finite float32 (allow non-finite weights to load it)",
                           f->path, p->name, (long long)at, value);
    }
    for (int i = 0; i < f->count && !(flags & NF_WEIGHTS_ALLOW_EXTRA); i++)
        if (nf_graph_find_param(g, f->tensors[i].name) < 0 && !is_checkpoint_extra(f, f->tensors[i].name))
            return nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' is not a parameter of the graph (allow extra tensors to ignore it)",
                           f->path, f->tensors[i].name);
    return NF_OK;
}

static void copy_params(nf_graph *g, const nf_st_file *f)
{
    for (int k = 0; k < g->n_params; k++)
        nf_st_read(nf_st_find(f, g->params[k].name), g->values + g->params[k].offset);
}

nf_status nf_weights_load(nf_graph *g, const char *path, unsigned flags, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_weights_load: NULL argument");
    nf_status st = nf_graph_validate(g, err);
    if (st != NF_OK)
        return st;
    nf_st_file f;
    if ((st = nf_st_open(path, &f, err)) != NF_OK)
        return st;
    st = nf_weights_from(g, &f, flags, err);
    nf_st_close(&f);
    return st;
}

nf_status nf_weights_from(nf_graph *g, const nf_st_file *f, unsigned flags, nf_error *err)
{
    nf_status st = check_params(g, f, flags, err);
    if (st == NF_OK)
        st = vocab_from(g, f, err);
    if (st == NF_OK)
        copy_params(g, f);
    return st;
}

/* Appends "name [shape]" to a ", "-joined list, cut with "...". */
static void list_add(char *list, size_t size, const char *name, const nf_shape *shape)
{
    char dims[64], item[NF_PARAM_NAME_MAX + 80];
    snprintf(item, sizeof item, "%s%s %s", list[0] ? ", " : "", name, nf_shape_format(shape, dims, sizeof dims));
    size_t at = strlen(list);
    if (strstr(list, "...") || at + strlen(item) + 4 >= size) {
        if (!strstr(list, "...") && at + 4 < size)
            memcpy(list + at, "...", 4);
        return;
    }
    memcpy(list + at, item, strlen(item) + 1);
}

/* The file's tensor that parameter p takes, or NULL. */
static const nf_st_tensor *matching(const nf_st_file *f, const nf_param *p)
{
    const nf_st_tensor *t = nf_st_find(f, p->name);
    return t && nf_shape_equal(&t->shape, &p->shape) ? t : NULL;
}

nf_status nf_weights_init(nf_graph *g, const char *path, nf_init_report *report, nf_error *err)
{
    if (!g || !path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_weights_init: NULL argument");
    nf_init_report local;
    report = report ? report : &local;
    memset(report, 0, sizeof *report);
    nf_status st = nf_graph_validate(g, err);
    nf_st_file f;
    if (st != NF_OK || (st = nf_st_open(path, &f, err)) != NF_OK)
        return st;
    for (int k = 0; st == NF_OK && k < g->n_params; k++) { /* everything checked before anything is copied */
        const nf_st_tensor *t = matching(&f, &g->params[k]);
        double value;
        int64_t at = t ? nf_st_first_nonfinite(t, &value) : -1;
        if (at >= 0)
            st = nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' element %lld is %g, not a finite float32", path,
                         t->name, (long long)at, value);
    }
    for (int k = 0; st == NF_OK && k < g->n_params; k++) {
        const nf_param *p = &g->params[k];
        const nf_st_tensor *t = matching(&f, p);
        if (t) {
            nf_st_read(t, g->values + p->offset);
            report->loaded++;
        } else {
            report->left++;
            list_add(report->left_names, sizeof report->left_names, p->name, &p->shape);
        }
    }
    for (int i = 0; st == NF_OK && i < f.count; i++) {
        const nf_st_tensor *t = &f.tensors[i];
        int k = nf_graph_find_param(g, t->name);
        if (k < 0 || !nf_shape_equal(&t->shape, &g->params[k].shape)) {
            report->skipped++;
            list_add(report->skipped_names, sizeof report->skipped_names, t->name, &t->shape);
        }
    }
    nf_st_close(&f);
    return st;
}

/* ---- checkpoint files ------------------------------------------------- */

nf_status nf_checkpoint_write(const char *path, const nf_graph *g, const nf_record *r, nf_error *err)
{
    int n = nf_record_count(r), count = 0;
    nf_st_entry *entries = calloc((size_t)n + 1, sizeof *entries);
    cJSON *meta = cJSON_CreateObject();
    int ok = entries && meta && cJSON_AddStringToObject(meta, "format", CHECKPOINT_FORMAT) &&
             (!g->vocab_size || vocab_meta(g, meta));
    for (int i = 0; ok && i < n; i++) {
        const char *text;
        const nf_shape *shape;
        const float *data;
        const char *key = nf_record_key(r, i, &text, &shape, &data);
        if (text)
            ok = cJSON_AddStringToObject(meta, key, text) != NULL;
        else
            entries[count++] = (nf_st_entry){key, *shape, data};
    }
    nf_status st = ok ? nf_st_write(path, entries, count, meta, err)
                      : nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    free(entries);
    cJSON_Delete(meta);
    return st;
}

static void read_tensor(const void *tensor, float *out) { nf_st_read(tensor, out); }

static void close_file(void *file)
{
    nf_st_close(file);
    free(file);
}

/* Every metadata string and every tensor of an opened checkpoint file;
 * tensors are converted to float32 when a component reads them, from the
 * file, which the record keeps open until it is freed. */
static nf_status record_from(nf_st_file *f, nf_record *r, nf_error *err)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, f->metadata)
        if (cJSON_IsString(item) && strcmp(item->string, "format") != 0)
            nf_record_put_text(r, item->string, item->valuestring);
    for (int i = 0; i < f->count; i++)
        nf_record_put_source(r, f->tensors[i].name, &f->tensors[i].shape, &f->tensors[i], read_tensor);
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory reading the checkpoint", f->path)
                               : NF_OK;
}

nf_status nf_checkpoint_read(const char *path, const nf_graph *g, nf_record **out, nf_error *err)
{
    *out = NULL;
    nf_st_file *f = malloc(sizeof *f);
    nf_record *r = f ? nf_record_new() : NULL;
    if (!r) {
        free(f);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    nf_status st = nf_st_open(path, f, err);
    if (st != NF_OK) {
        free(f);
        nf_record_free(r);
        return st;
    }
    nf_record_keep(r, f, close_file);
    const char *format = nf_st_meta(f, "format");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0)
        st = nf_fail(err, NF_ERR_FORMAT, "%s: not a nodeflow checkpoint (no format '%s' in __metadata__)", path,
                     CHECKPOINT_FORMAT);
    else
        st = check_params(g, f, NF_WEIGHTS_STRICT, err);
    for (int i = 0; st == NF_OK && i < f->count; i++) { /* optimizer state, averages, best weights: all finite */
        double value;
        int64_t at = nf_st_first_nonfinite(&f->tensors[i], &value);
        if (at >= 0)
            st = nf_fail(err, NF_ERR_FORMAT, "%s: tensor '%s' element %lld is %g, not a finite float32", path,
                         f->tensors[i].name, (long long)at, value);
    }
    if (st == NF_OK)
        st = record_from(f, r, err);
    f->path = NULL; /* the caller's string: the record may outlive it */
    if (st != NF_OK)
        nf_record_free(r);
    else
        *out = r;
    return st;
}
