# engine/kernels.mk - engine kernels sources and tests (appends to engine_libengine_a_SOURCES).
