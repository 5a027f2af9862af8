/* options.h — one generic parser for every plugin's options table (FFmpeg's AVOption idea). */
#ifndef LRA_OPTIONS_H
#define LRA_OPTIONS_H

#include <stddef.h>

#include "lra_attention.h"

/* Writes every option's default into priv. */
void lra_opts_defaults(const lra_attn_option *table, void *priv);
/* Sets one option from text. Returns 0, or -1 with a message naming the option and the accepted
 * values or range (unknown name, unparsable value, out of range, unknown choice). */
int lra_opts_set(const lra_attn_option *table, void *priv, const char *name, const char *value,
                 char *err, size_t errlen);
/* Current value of one option as text ("64", "0.5", "true", "relu"). */
void lra_opts_get(const lra_attn_option *opt, const void *priv, char *buf, size_t n);
/* Number of entries before the zero terminator. */
int lra_opts_count(const lra_attn_option *table);

#endif
