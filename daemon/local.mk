# daemon/local.mk - llmd.
bin_PROGRAMS += llmd
llmd_SOURCES = daemon/main.c
llmd_LDADD = $(LLMD_LIBS)
include daemon/logic.mk
