/*
 * bench/kvxfer-bench.c - KV-block transfer throughput between two processes
 * over TCP on loopback, as a fraction of a plain TCP stream measured in the
 * same run, and per-transfer latency for 1k- and 8k-token prompts, for a
 * Llama-3.1-8B-shaped layout (128 KiB of KV per token: 32 layers x 8 KV heads
 * x 128 dims x K,V x bf16; a 16-token block is 2 MiB).
 * usage: kvxfer-bench [--tokens 8192] [--streams 4] [--reps 5]
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "rdma/kvxfer.h"

#define TOKEN_BYTES (128u << 10)
#define BLOCK_TOKENS 16u

static double
secs(void)
{
	return (double)now_us() / 1e6;
}

/* Plain TCP: the child writes total bytes, the parent reads them. */
static double
plain_tcp_gbps(size_t total)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	size_t chunk = 4u << 20;
	char *buf = malloc(chunk);

	memset(buf, 7, chunk);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bind(ls, (struct sockaddr *)&sa, sizeof(sa));
	listen(ls, 1);
	getsockname(ls, (struct sockaddr *)&sa, &sl);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		for (size_t sent = 0; sent < total;) {
			ssize_t w = write(fd, buf, MIN(chunk, total - sent));
			if (w <= 0)
				_exit(1);
			sent += (size_t)w;
		}
		close(fd);
		_exit(0);
	}
	int fd = accept(ls, NULL, NULL);
	double t0 = secs();
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf, chunk);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	double dt = secs() - t0;
	close(fd);
	close(ls);
	waitpid(pid, NULL, 0);
	free(buf);
	return (double)got / dt / 1e9;
}

static struct kvx_layout
layout(void)
{
	struct kvx_layout l = { .block_size = BLOCK_TOKENS, .n_layers = 32, .n_kv_heads = 8, .head_dim = 128,
		.tp_rank = 0, .tp_size = 1, .block_bytes = (uint64_t)TOKEN_BYTES * BLOCK_TOKENS };
	snprintf(l.model, sizeof(l.model), "llama-3.1-8b-shaped");
	snprintf(l.dtype, sizeof(l.dtype), "bfloat16");
	return l;
}

/* The bench's producer lets its puller read every block (no holds here). */
static int
authorize_any(void *arg, const char *token, const struct kvx_run *runs, uint32_t n_runs)
{
	(void)arg;
	(void)token;
	(void)runs;
	(void)n_runs;
	return 0;
}

int
main(int argc, char **argv)
{
	uint32_t tokens = 8192, reps = 5;
	int streams = 4;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--tokens") == 0)
			tokens = (uint32_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--streams") == 0)
			streams = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--reps") == 0)
			reps = (uint32_t)atoi(argv[i + 1]);
	}
	uint32_t n_blocks = tokens / BLOCK_TOKENS;
	struct kvx_layout l = layout();
	size_t bytes = (size_t)n_blocks * l.block_bytes;
	int pipefd[2];

	if (pipe(pipefd) < 0)
		return 1;
	double base = plain_tcp_gbps(bytes * reps);
	printf("plain TCP stream (loopback, one connection): %.2f GB/s\n", base);

	/* producer in a child process */
	pid_t pid = fork();
	if (pid == 0) {
		struct kvx_engine *x;
		struct llmd_err e = LLMD_ERR_INIT;
		struct kvx_config c = { .transport = "tcp", .listen = "127.0.0.1:0", .n_streams = streams,
			.authorize = authorize_any };
		uint8_t *pool = malloc(bytes);
		memset(pool, 0x5a, bytes);
		if (kvx_engine_new(&c, &l, pool, n_blocks, l.block_bytes, &x, &e) < 0)
			_exit(1);
		int port = kvx_engine_port(x);
		if (write(pipefd[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		pause();
		_exit(0);
	}
	int port = 0;
	if (read(pipefd[0], &port, sizeof(port)) != sizeof(port))
		return 1;

	struct kvx_engine *me;
	struct llmd_err e = LLMD_ERR_INIT;
	struct kvx_config c = { .transport = "tcp", .listen = "127.0.0.1:0", .n_streams = streams };
	uint8_t *pool = calloc(1, bytes);
	if (kvx_engine_new(&c, &l, pool, n_blocks, l.block_bytes, &me, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	int32_t *rem = calloc(n_blocks, sizeof(int32_t)), *loc = calloc(n_blocks, sizeof(int32_t));
	/* realistic block tables: the producer's blocks are scattered in runs of 4 */
	for (uint32_t i = 0; i < n_blocks; i++) {
		rem[i] = (int32_t)(((i / 4) * 7 % (n_blocks / 4 ? n_blocks / 4 : 1)) * 4 + i % 4);
		loc[i] = (int32_t)i;
	}
	uint32_t sizes[] = { 1024, 8192 };
	for (size_t s = 0; s < 2; s++) {
		uint32_t nb = sizes[s] / BLOCK_TOKENS;
		if (nb > n_blocks)
			continue;
		double best = 1e9, sum = 0;
		for (uint32_t r = 0; r < reps; r++) {
			double t0 = secs();
			if (kvx_pull(me, "127.0.0.1", port, "bench", rem, loc, nb, &e) < 0) {
				fprintf(stderr, "pull: %s\n", e.msg);
				return 1;
			}
			double dt = secs() - t0;
			sum += dt;
			if (dt < best)
				best = dt;
		}
		double gbps = (double)nb * (double)l.block_bytes / (sum / reps) / 1e9;
		printf("%u-token prompt (%u blocks, %.0f MiB): %.1f ms per transfer (best %.1f), %.2f GB/s = %.0f%% of plain TCP\n",
		    sizes[s], nb, (double)nb * (double)l.block_bytes / 1048576.0, sum / reps * 1000, best * 1000,
		    gbps, 100.0 * gbps / base);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	kvx_engine_free(me);
	free(pool);
	free(rem);
	free(loc);
	return 0;
}
