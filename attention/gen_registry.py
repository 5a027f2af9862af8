#!/usr/bin/env python3
"""Write the built-in attention registry (a C file) from the variant files in attention/.

Called by meson at configure time (and with --list, to name the sources). The list comes from
the directory itself, so adding a variant means dropping one .c file here and rebuilding.
"""
import os
import re
import sys


def variant_names(src_dir):
    return sorted(f[:-2] for f in os.listdir(src_dir) if f.endswith('.c'))


def registry_source(names):
    lines = ['/* Generated at configure time by attention/gen_registry.py from the files in',
             ' * attention/. Do not edit: add or remove a variant file and rebuild. */',
             '#include "registry.h"', '']
    lines += [f'extern const lra_attention lra_attn_{n};' for n in names]
    lines += ['', 'const lra_attention *const lra_builtin_attention[] = {']
    lines += [f'    &lra_attn_{n},' for n in names]
    lines += ['    NULL,', '};', '', 'const char *const lra_builtin_attention_files[] = {']
    lines += [f'    "{n}",' for n in names]
    lines += ['    NULL,', '};', '']
    return '\n'.join(lines)


def main():
    if sys.argv[1] == '--list':
        print('\n'.join(n + '.c' for n in variant_names(sys.argv[2])))
        return
    src_dir, out_path = sys.argv[1], sys.argv[2]
    names = variant_names(src_dir)
    for n in names:
        if not re.fullmatch(r'[a-z][a-z0-9_]*', n):
            sys.exit(f'attention/{n}.c: a variant file name must be a lower-case C identifier')
    text = registry_source(names)
    try:
        with open(out_path) as f:
            if f.read() == text:
                return  # unchanged: keep the mtime so nothing recompiles
    except OSError:
        pass
    with open(out_path, 'w') as f:
        f.write(text)


if __name__ == '__main__':
    main()
