# engine/tokenizer.mk - engine tokenizer sources and tests (appends to engine_libengine_a_SOURCES).

# The default tokenizer (Qwen3, Apache-2.0; see etc/tokenizers/qwen3/NOTICE),
# found at run time through exepath_find_data("tokenizers/qwen3/...").
tokenizersqwen3dir = $(pkgdatadir)/tokenizers/qwen3
dist_tokenizersqwen3_DATA = etc/tokenizers/qwen3/tokenizer.json \
	etc/tokenizers/qwen3/tokenizer_config.json etc/tokenizers/qwen3/NOTICE

engine_libengine_a_SOURCES += engine/tokenizer.h engine/tokenizer-internal.h \
	engine/tokenizer-load.c engine/tokenizer-map.c engine/tokenizer-utf8.c \
	engine/tokenizer-bpe.c engine/tokenizer-encode.c engine/tokenizer-decode.c \
	engine/cmd-tokenize.c

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-tokenizer
TESTS += tests/unit/test-tokenizer
tests_unit_test_tokenizer_SOURCES = tests/unit/test-tokenizer.c
tests_unit_test_tokenizer_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) \
	-DTOP_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_tokenizer_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif

TESTS += tests/integration/tokenizer-conformance.sh
EXTRA_DIST += tests/node/package.json tests/node/corpus.mjs tests/node/conformance.mjs \
	tests/node/make-sp-tokenizer.mjs
