/*
 * router/sidecar.h - `llmd-router sidecar`: the decode-side P/D coordinator
 * (llm-d's routing sidecar). It listens in front of the decode engine; a
 * completion or chat request carrying x-prefiller-host-port first runs on
 * that prefill engine (max_tokens 1, do_remote_decode), then on the local
 * decoder with the prefill's kv_transfer_params, streaming the decoder's
 * answer; everything else is proxied to the decoder unchanged.
 */
#ifndef LLMD_ROUTER_SIDECAR_H
#define LLMD_ROUTER_SIDECAR_H

/* argv[0] is "sidecar"; returns the exit status. */
int sidecar_main(int argc, char **argv);

#endif
