/* attn_blocks.c — placeholder while it is being written. */
typedef int lra_placeholder_attn_blocks;
