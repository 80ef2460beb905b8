# engine/jinja.mk - the chat template renderer: a Jinja-subset interpreter
# (engine/jinja*.c) and OpenAI messages to prompt (engine/chat.c), with its
# unit tests, the render-chat test tool and the conformance test against
# @huggingface/jinja.
engine_libengine_a_SOURCES += engine/jinja.h engine/jinja-impl.h engine/jinja-arena.c \
	engine/jinja-lex.c engine/jinja-parse.c engine/jinja-value.c engine/jinja-eval.c \
	engine/jinja-builtins.c engine/chat.h engine/chat.c engine/chat-template.c

# Renders chat templates for tests (tests/integration/chat-template-conformance.sh).
check_PROGRAMS += tests/tools/render-chat
tests_tools_render_chat_SOURCES = tests/tools/render-chat.c
tests_tools_render_chat_LDADD = $(ENGINE_LIBS)

TESTS += tests/integration/chat-template-conformance.sh
EXTRA_DIST += tests/integration/chat-template-conformance.sh tests/fixtures/chat-templates \
	tests/node/chat-conformance.mjs tests/node/chat-cases.json

if HAVE_CRITERION
check_PROGRAMS += tests/unit/test-jinja
TESTS += tests/unit/test-jinja
tests_unit_test_jinja_SOURCES = tests/unit/test-jinja.c
tests_unit_test_jinja_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_jinja_LDADD = $(ENGINE_LIBS) $(CRITERION_LIBS)
endif
