# daemon/logic.mk - libdaemon.a: the pure LLMInferenceService logic
# (validation, presets merge, templates, naming, derived children, placement,
# status conditions). Included at the end of daemon/local.mk; the daemon's own
# files append to daemon_libdaemon_a_SOURCES with += after that include.
noinst_LIBRARIES += daemon/libdaemon.a
daemon_libdaemon_a_SOURCES = \
	daemon/reconcile.h \
	daemon/reconcile.c \
	daemon/validate.c daemon/validate.h \
	daemon/merge.c daemon/merge.h \
	daemon/template.c daemon/template.h \
	daemon/naming.c daemon/naming.h \
	daemon/derive.c daemon/derive.h \
	daemon/placement.c daemon/placement.h \
	daemon/conditions.c daemon/conditions.h

