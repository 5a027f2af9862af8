/* placeholder */
typedef int lra_placeholder_softmax;
