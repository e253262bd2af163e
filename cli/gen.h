/* Shell completion scripts and man pages generated from the command table
 * (hq_cmdtable.h): gen_completion.c and gen_man.c. */
#ifndef HQ_GEN_H
#define HQ_GEN_H

#include <stdio.h>

#include "hq_cmdtable.h"

/* Writes the completion script for shell (bash, elvish, fish, powershell, zsh);
 * returns -1 for another shell name (nothing written). */
int hq_gen_completion(const char *shell, FILE *out);

/* The i-th man page (NULL past the end): the root (hq(1)), then one per top-level
 * group and top-level command that is not hidden (hq-submit(1), hq-job(1), ...). */
const hq_cmd_spec_t *hq_gen_man_page_at(size_t i);
/* The man page that describes spec. */
const hq_cmd_spec_t *hq_gen_man_page_of(const hq_cmd_spec_t *spec);
/* Writes the man page (roff, man macros) of page. */
void hq_gen_man(const hq_cmd_spec_t *page, FILE *out);

#endif
