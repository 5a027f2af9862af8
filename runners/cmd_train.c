/* placeholder */
typedef int lra_placeholder_cmd_train;
