# engine/tokenizer.mk - engine tokenizer sources and tests (appends to engine_libengine_a_SOURCES).
