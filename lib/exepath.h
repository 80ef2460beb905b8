/*
 * lib/exepath.h - finding our own executable and sibling programs.
 *
 * The agent starts llmd-engine and llmd-router: they are looked up beside the
 * running executable first (in the build tree all programs sit in the top
 * build directory; a libtool ".libs/" wrapper directory is stepped out of),
 * then on PATH. LLMD_BINDIR, when set, is searched before both (tests).
 */
#ifndef LLMD_EXEPATH_H
#define LLMD_EXEPATH_H

#include <stddef.h>

/* Directory holding the running executable (without ".libs"). */
int exepath_self_dir(char *out, size_t outlen);
/* Full path of program `name`; 0 or -ENOENT. */
int exepath_find_sibling(const char *name, char *out, size_t outlen);
/* Directory for shared data files (tokenizers, presets): the build tree's
 * source dir when running uninstalled, LLMD_DATADIR otherwise. `rel` is
 * appended; returns 0 when the resulting path exists. */
int exepath_find_data(const char *rel, char *out, size_t outlen);

#endif
