/* Placeholder: replaced by the variant-specific test of this group. Exit 77 = skipped. */
int main(void) { return 77; }
