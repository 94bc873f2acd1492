/* nodeflow — the registry of kernel variants. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

extern const nf_kernels nf_kernels_openblas, nf_kernels_reference;

static const nf_kernels *const variants[] = {&nf_kernels_openblas, &nf_kernels_reference};

int nf_kernels_count(void) { return (int)(sizeof variants / sizeof variants[0]); }

const nf_kernels *nf_kernels_at(int index) { return index >= 0 && index < nf_kernels_count() ? variants[index] : NULL; }

const nf_kernels *nf_kernels_find(const char *name)
{
    for (int i = 0; name && i < nf_kernels_count(); i++)
        if (!strcmp(variants[i]->name, name))
            return variants[i];
    return NULL;
}

const nf_kernels *nf_kernels_for_plan(void)
{
    const nf_kernels *chosen = nf_kernels_find(getenv("NODEFLOW_KERNELS"));
    return chosen ? chosen : variants[0];
}
