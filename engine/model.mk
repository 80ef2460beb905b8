# engine/model.mk - engine model sources and tests (appends to engine_libengine_a_SOURCES).
