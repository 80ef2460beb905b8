# engine/serve.mk - llmd-engine serve: the OpenAI/vLLM-compatible server.
engine_libengine_a_SOURCES += engine/openai.c engine/openai.h \
	engine/serve.h engine/engine-core.c engine/server.c engine/server.h engine/cmd-serve.c \
	engine/kv-connector.c engine/kv-connector.h

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-engine-serve
TESTS += tests/unit/test-engine-serve
tests_unit_test_engine_serve_SOURCES = tests/unit/test-openai.c tests/unit/test-kv-connector.c
tests_unit_test_engine_serve_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_engine_serve_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif

TESTS += tests/integration/engine-serve.sh tests/integration/engine-simulate.sh \
	tests/integration/engine-pd.sh tests/integration/engine-pd-netns.sh
EXTRA_DIST += tests/integration/engine-serve.sh tests/integration/engine-simulate.sh \
	tests/integration/engine-pd.sh tests/integration/engine-pd-netns.sh \
	tests/node/openai-serve.mjs
