/*
 * cli/admin.h - what llmd-admin's commands share: the command table entry,
 * the connection settings, HTTP calls to the llmd API (libcurl), resource
 * paths, server error printing and output helpers (tables, YAML).
 */
#ifndef LLMD_CLI_ADMIN_H
#define LLMD_CLI_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "daemon/api.h"
#include "lib/buf.h"

struct admin_config;

struct admin {
	const char *server;     /* "http://127.0.0.1:7480" */
	const char *token;      /* bearer token or NULL */
	const char *ns;         /* -n before the command; NULL: "default" */
	const char *ca_file;    /* CA bundle verifying an https:// server; NULL: system's */
	const struct admin_config *config;  /* the config file read (cli/admin-config.h) */
};

struct cmd_entry {
	const char *name;
	const char *alias;
	const char *usage;
	/* argv[0] is the command name; returns the exit status (0, 1, 2). */
	int (*exec)(struct admin *a, int argc, char **argv);
};

/* cli/cmd.c: exact name, alias or unambiguous prefix; *cause on failure. */
const struct cmd_entry *cmd_find(const char *name, char **cause);
void cmd_print_usage(FILE *f);
extern const struct cmd_entry *const cmd_table[];

/* ---- HTTP (cli/client.c) ---- */

struct admin_resp {
	long code;          /* HTTP status, 0 on transport failure */
	struct buf body;
};

/*
 * method path (with query) -> resp. body may be NULL. Returns 0, or -EIO
 * after printing the transport error (connection refused...).
 */
int admin_call(struct admin *a, const char *method, const char *path,
    const char *content_type, const char *body, size_t len, struct admin_resp *resp);
void admin_resp_release(struct admin_resp *r);
/* Streams a watch: fn gets each complete line; non-zero from fn stops. */
int admin_stream(struct admin *a, const char *path,
    int (*fn)(const char *line, size_t len, void *arg), void *arg);
/* Prints "Error from server (Reason): message" (or the raw body); returns 1. */
int admin_server_error(const struct admin_resp *r);

/* ---- resources and paths (cli/util.c) ---- */

/* Resolves "llmisvc", "pods", "node"... or prints an error and returns NULL. */
const struct api_resource *admin_resource(const char *name);
/* "/apis/G/V[/namespaces/NS]/PLURAL[/NAME]" into out (ns ignored when cluster-scoped). */
void admin_path(struct buf *out, const struct api_resource *r, const char *ns,
    const char *name);
/* "llminferenceservice.serving.kserve.io" or "secret". */
void admin_kind_ref(struct buf *out, const struct api_resource *r);
const char *admin_ns(const struct admin *a, const char *flag_ns);
/* Splits "kind/name" (both required). */
int admin_split_ref(const char *ref, char *kind, size_t kl, char *name, size_t nl);
/* Parses the body of resp as JSON; NULL when it is not. */
cJSON *admin_resp_json(const struct admin_resp *r);

/*
 * GETs one object: 0, -ENOENT (after printing the server's error unless
 * quiet_404) or -EIO.
 */
int admin_get_obj(struct admin *a, const struct api_resource *r, const char *ns,
    const char *name, cJSON **out, int quiet_404);
/* Merge-patches and prints "KIND.GROUP/NAME VERB"; returns the exit status. */
int admin_patch(struct admin *a, const struct api_resource *r, const char *ns,
    const char *name, const char *patch, const char *verb);
/* Resolves "KIND NAME" or "KIND/NAME" operands at argv[*i]; advances *i. */
int admin_operand(int argc, char **argv, int *i, const struct api_resource **r,
    char *name, size_t nl);

/* ---- output (cli/print.c) ---- */

/* YAML rendering of v (a document, no leading "---"). */
void print_yaml(FILE *f, const cJSON *v);
/* "5s", "3m", "2h", "4d" since an RFC 3339 timestamp; "<unknown>" otherwise. */
void print_age(char *out, size_t len, const char *ts);

/* A simple aligned table: rows of cells, printed with two spaces between. */
struct table {
	int ncols;
	int nrows;
	char **cells;  /* nrows * ncols */
};
void table_init(struct table *t, int ncols);
void table_add(struct table *t, const char *const *row);
void table_print(FILE *f, const struct table *t);
void table_release(struct table *t);

/* The command entries (cli/cmd-*.c). */
extern const struct cmd_entry cmd_apply_entry;
extern const struct cmd_entry cmd_get_entry;
extern const struct cmd_entry cmd_describe_entry;
extern const struct cmd_entry cmd_delete_entry;
extern const struct cmd_entry cmd_wait_entry;
extern const struct cmd_entry cmd_scale_entry;
extern const struct cmd_entry cmd_patch_entry;
extern const struct cmd_entry cmd_create_entry;
extern const struct cmd_entry cmd_cordon_entry;
extern const struct cmd_entry cmd_uncordon_entry;
extern const struct cmd_entry cmd_drain_entry;
extern const struct cmd_entry cmd_node_entry;
extern const struct cmd_entry cmd_logs_entry;
extern const struct cmd_entry cmd_token_entry;
extern const struct cmd_entry cmd_slurm_entry;
extern const struct cmd_entry cmd_top_entry;
extern const struct cmd_entry cmd_config_entry;
/* "node add|remove HOST ..." over SSH (cli/cmd-node-ssh.c); argv[1] is the verb. */
int cmd_node_ssh(struct admin *a, int argc, char **argv);
/*
 * Drains node (cli/cmd-node.c): cordons and taints it llmd.ai/draining
 * (direct: only cordons and deletes every pod at once), deletes the pods
 * the daemon would not replace first; the exit status.
 */
int node_drain_start(struct admin *a, const char *node, int direct);
/* Waits until nodes have no pods left: 0, or 1 naming what is left at timeout. */
int node_drain_wait(struct admin *a, char *const *nodes, int n, int64_t timeout_ms);

#endif
