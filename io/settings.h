/* nodeflow — the [train] settings: one table (io/settings.c) read by the
 * model-file parser and writer, the generated reference, `nodeflow train
 * --help` and `--set`, and the training session. */
#ifndef NF_IO_SETTINGS_H
#define NF_IO_SETTINGS_H

#include "io/util.h"

/* Writes the [train] section of `c` (nothing when no setting is given). */
void nf_train_config_write(nf_text *t, const nf_train_config *c);

#endif
