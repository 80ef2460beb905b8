# rdma/local.mk - KV-cache transfer library (verbs when libibverbs is found, TCP always).
