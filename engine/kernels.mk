# engine/kernels.mk - engine kernels sources and tests (appends to engine_libengine_a_SOURCES).
engine_libengine_a_SOURCES += engine/tensor.c engine/threadpool.c \
	engine/kernels-impl.h engine/kernels-matmul.c engine/kernels-scalar.c
