/* attn_kernel.c — placeholder while it is being written. */
typedef int lra_placeholder_attn_kernel;
