# agent/local.mk - llmd-agent.
bin_PROGRAMS += llmd-agent
llmd_agent_SOURCES = agent/main.c
llmd_agent_LDADD = $(LLMD_LIBS)
