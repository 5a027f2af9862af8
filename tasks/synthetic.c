/* placeholder */
typedef int lra_placeholder_synth;
