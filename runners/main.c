/* placeholder */
typedef int lra_placeholder_main;
int main(void) { return 0; }
