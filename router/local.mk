# router/local.mk - llmd-router.
bin_PROGRAMS += llmd-router
llmd_router_SOURCES = router/main.c
llmd_router_LDADD = $(LLMD_LIBS)
