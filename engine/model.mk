# engine/model.mk - engine model sources and tests (appends to engine_libengine_a_SOURCES).
# Model loading (safetensors, config), the paged KV cache, the forward pass and
# its CPU backend, the generation loop and the generate/make-model commands.
engine_libengine_a_SOURCES += \
	engine/safetensors.c engine/safetensors.h \
	engine/model-config.c engine/model-config.h \
	engine/model.c engine/model.h \
	engine/kvcache.c engine/kvcache.h \
	engine/forward.c engine/forward.h \
	engine/backend.c engine/backend-cpu.c \
	engine/generate.c engine/generate.h \
	engine/cmd-generate.c engine/cmd-make-model.c

TESTS += tests/integration/engine-forward.sh tests/integration/engine-badfiles.sh
EXTRA_DIST += tests/ref/forward_ref.py tests/ref/reshard.py \
	tests/integration/engine-forward.sh tests/integration/engine-badfiles.sh

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-model
TESTS += tests/unit/test-model
tests_unit_test_model_SOURCES = tests/unit/test-model-files.c tests/unit/test-model-forward.c \
	$(ENGINE_FIXTURE)
tests_unit_test_model_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_model_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif
