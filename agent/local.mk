# agent/local.mk - llmd-agent, the per-GPU-host agent.
bin_PROGRAMS += llmd-agent
llmd_agent_SOURCES = agent/main.c agent/agent.h agent/gpu.c agent/translate.c \
	agent/storage.c agent/pods.c agent/control.c agent/logs.c
llmd_agent_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
llmd_agent_LDADD = $(LLMD_LIBS) $(CURL_LIBS) -ldl

