# cli/local.mk - llmd-admin.
bin_PROGRAMS += llmd-admin
llmd_admin_SOURCES = cli/main.c
llmd_admin_LDADD = $(LLMD_LIBS)
