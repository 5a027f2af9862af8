#!/usr/bin/env python3
"""Make ninja re-run meson when a variant file is added to or removed from attention/.

Meson 1.0 only accepts regular files as dependencies of the build configuration, and it has no
globbing, so on its own it would not notice a new attention/<name>.c. A directory's mtime changes
exactly when an entry is added, removed or renamed, so this post-configure script adds the
directory to the inputs of ninja's regenerate rule. Editing a variant file does not change the
directory's mtime and rebuilds only that file, as usual.
"""
import os
import sys

def main():
    build_ninja = os.path.join(os.environ['MESON_BUILD_ROOT'], 'build.ninja')
    watched = os.path.join(os.environ['MESON_SOURCE_ROOT'], 'attention')
    with open(build_ninja) as f:
        lines = f.read().split('\n')
    escaped = watched.replace(' ', '$ ').replace(':', '$:')
    for i, line in enumerate(lines):
        # Compare whole inputs: a relative path such as ../../work/main/attention/meson.build
        # contains the directory's name without being the directory.
        if line.startswith('build build.ninja: REGENERATE_BUILD ') and \
                escaped not in line.split(' '):
            lines[i] = line + ' ' + escaped
            break
    else:
        return  # already present, or meson changed the rule's name: stay harmless
    tmp = build_ninja + '.tmp'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines))
    os.replace(tmp, build_ninja)

main()
