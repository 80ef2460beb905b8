/*
 * tests/unit/engine-fixture.h - tiny random-weight models for the engine's
 * unit tests: a two-word BPE tokenizer and `llmd-engine make-model` run in
 * process, in a temporary directory. Plain C (no criterion), so the GPU
 * test programs use it too.
 */
#ifndef LLMD_TESTS_ENGINE_FIXTURE_H
#define LLMD_TESTS_ENGINE_FIXTURE_H

#include <stddef.h>

/* mkdtemp("/tmp/PREFIX.XXXXXX") into dir (len bytes); 0 or -errno. */
int fx_tmpdir(char *dir, size_t len, const char *prefix);
/* Writes DIR/tok.json, a BPE tokenizer of "a", "b" and the special "</s>". */
int fx_write_tokenizer(const char *dir);
/*
 * Runs make-model with the arguments printf formats (split at spaces; no
 * quoting), e.g. fx_make_model("--arch llama --out %s/m --tokenizer
 * %s/tok.json --seed 3", dir, dir); its exit status.
 */
int fx_make_model(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* rm -rf dir; 0 when it is gone. */
int fx_remove_tree(const char *dir);

#endif
