/* nodeflow — what the oneDNN variants share (kernels/onednn.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/onednn.h"

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void create_engine(void)
{
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

dnnl_engine_t nf_dnnl_engine(void)
{
    pthread_once(&engine_once, create_engine);
    return engine;
}

/* Attributes with a user scratchpad, and with add: a sum post-op. */
static dnnl_primitive_attr_t make_attr(int add)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && add)
        ok = dnnl_post_ops_create(&ops) == dnnl_success && dnnl_post_ops_append_sum(ops, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (!ok && attr) {
        dnnl_primitive_attr_destroy(attr);
        attr = NULL;
    }
    return attr;
}

int nf_dnnl_make_prim(nf_dnnl_prim *p, const void *desc, const_dnnl_primitive_desc_t hint, const int *args,
                      const dnnl_query_t *queries, dnnl_primitive_desc_t *pd_out, char *name, size_t size)
{
    dnnl_primitive_attr_t attr = make_attr(0);
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    int ok = attr && dnnl_primitive_desc_create(&pd, desc, attr, nf_dnnl_engine(), hint) == dnnl_success &&
             dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
             !strstr(impl, "ref");
    if (ok)
        snprintf(name + strlen(name), size - strlen(name), "%s%s", *name ? ", " : "", impl);
    for (int i = 0; ok && i < NF_DNNL_SLOTS; i++) {
        p->arg[i] = args[i];
        if (!args[i])
            continue;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, queries[i], i == NF_DNNL_BIAS);
        ok = md != NULL;
        if (ok && i == NF_DNNL_SCRATCH && dnnl_memory_desc_get_size(md) == 0) {
            p->arg[i] = 0; /* no scratchpad */
            continue;
        }
        if (ok) {
            p->md[i] = *md;
            p->bytes[i] = dnnl_memory_desc_get_size(md);
            ok = dnnl_memory_create(&p->mem[i], md, nf_dnnl_engine(), DNNL_MEMORY_NONE) == dnnl_success;
        }
    }
    ok = ok && dnnl_primitive_create(&p->p, pd) == dnnl_success;
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (ok && pd_out)
        *pd_out = pd;
    else if (pd)
        dnnl_primitive_desc_destroy(pd);
    return ok;
}

int nf_dnnl_run_prim(dnnl_stream_t stream, const nf_dnnl_prim *p, const void *const *buffers)
{
    dnnl_exec_arg_t args[NF_DNNL_SLOTS];
    int n = 0;
    for (int i = 0; i < NF_DNNL_SLOTS; i++) {
        if (!p->arg[i])
            continue;
        if (dnnl_memory_set_data_handle_v2(p->mem[i], (void *)buffers[i], stream) != dnnl_success)
            return 0;
        args[n++] = (dnnl_exec_arg_t){p->arg[i], p->mem[i]};
    }
    return dnnl_primitive_execute(p->p, stream, n, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
}

void nf_dnnl_destroy_prim(nf_dnnl_prim *p)
{
    if (p->p)
        dnnl_primitive_destroy(p->p);
    for (int i = 0; i < NF_DNNL_SLOTS; i++)
        if (p->mem[i])
            dnnl_memory_destroy(p->mem[i]);
}

int nf_dnnl_make_move(nf_dnnl_move *m, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int add)
{
    m->bytes = dnnl_memory_desc_get_size(to);
    if (!add && dnnl_memory_desc_equal(from, to))
        return 1;
    dnnl_engine_t eng = nf_dnnl_engine();
    dnnl_primitive_attr_t attr = make_attr(add);
    dnnl_primitive_desc_t pd = NULL;
    int ok = attr && dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr) == dnnl_success &&
             /* a reorder that needs a scratchpad of its own is not expected here */
             dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)) == 0 &&
             dnnl_primitive_create(&m->reorder, pd) == dnnl_success &&
             dnnl_memory_create(&m->from, from, eng, DNNL_MEMORY_NONE) == dnnl_success &&
             dnnl_memory_create(&m->to, to, eng, DNNL_MEMORY_NONE) == dnnl_success;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return ok;
}

int nf_dnnl_run_move(dnnl_stream_t stream, const nf_dnnl_move *m, const void *from, void *to)
{
    if (!m->reorder)
        return 1;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, m->from}, {DNNL_ARG_TO, m->to}};
    return dnnl_memory_set_data_handle_v2(m->from, (void *)from, stream) == dnnl_success &&
           dnnl_memory_set_data_handle_v2(m->to, to, stream) == dnnl_success &&
           dnnl_primitive_execute(m->reorder, stream, 2, args) == dnnl_success;
}

const void *nf_dnnl_moved(const nf_dnnl_move *m, const void *from, void *to) { return m->reorder ? to : from; }

void nf_dnnl_destroy_move(nf_dnnl_move *m)
{
    if (m->reorder)
        dnnl_primitive_destroy(m->reorder);
    if (m->from)
        dnnl_memory_destroy(m->from);
    if (m->to)
        dnnl_memory_destroy(m->to);
}

size_t nf_dnnl_take(size_t *at, size_t bytes)
{
    size_t here = *at;
    *at += (bytes + NF_DNNL_ALIGN - 1) / NF_DNNL_ALIGN * NF_DNNL_ALIGN;
    return here;
}

char *nf_dnnl_aligned(void *scratch)
{
    return (char *)(((uintptr_t)scratch + NF_DNNL_ALIGN - 1) / NF_DNNL_ALIGN * NF_DNNL_ALIGN);
}
