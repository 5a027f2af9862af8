/* ops.c — placeholder while it is being written. */
typedef int lra_placeholder_ops;
