/*
 * cli/admin-config.h - llmd-admin's config file (a small kubeconfig) and
 * how its settings combine with flags and the environment.
 *
 *   server: https://llmd.example:7480
 *   token: llmd_...            # or tokenFile: PATH
 *   certificateAuthority: PATH # or certificateAuthorityData: |  (PEM)
 *
 * Relative paths are taken from the file's directory. Precedence: flags,
 * then $LLMD_SERVER / $LLMD_TOKEN / $LLMD_CA, then the file.
 */
#ifndef LLMD_CLI_ADMIN_CONFIG_H
#define LLMD_CLI_ADMIN_CONFIG_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

struct admin_config {
	char *path;          /* the file read, or NULL when there was none */
	char *server;
	char *token;
	char *token_file;    /* absolute, or relative to the working directory */
	char *ca_file;
	char *ca_data;       /* PEM */
};

/* Settings from one source (flags, environment, merge result); NULL: unset. */
struct admin_source {
	const char *server;
	const char *token;
	const char *token_file;
	const char *ca_file;
	const char *ca_data;
};

/*
 * The config file to read: flag (--config), else $LLMD_CONFIG (*explicit
 * set for both), else ~/.config/llmd/config.yaml; NULL without $HOME.
 */
const char *admin_config_path(const char *flag, char *buf, size_t len, int *explicit);
/*
 * Reads path into cfg. A missing file is an empty config unless explicit.
 * -EINVAL with e->field "FILE:LINE" for an unknown key, a non-string value,
 * token with tokenFile, certificateAuthority with certificateAuthorityData,
 * inline data that is not PEM; YAML errors as lib/yaml.h reports them.
 */
int admin_config_load(const char *path, int explicit, struct admin_config *cfg,
    struct llmd_err *e);
/* Same, from text; filename names it in errors and anchors relative paths. */
int admin_config_parse(const char *text, size_t len, const char *filename,
    struct admin_config *cfg, struct llmd_err *e);
void admin_config_release(struct admin_config *cfg);
/*
 * out = flags, else env, else file, per setting. The token (token or token
 * file) and the CA (file or PEM) each come whole from one source.
 */
void admin_config_merge(const struct admin_source *flags, const struct admin_source *env,
    const struct admin_config *file, struct admin_source *out);
/* Writes PEM to a new mode-0600 file in $TMPDIR (or /tmp); *path is malloc'd. */
int admin_config_ca_tempfile(const char *pem, char **path, struct llmd_err *e);
/* The file's settings as YAML, the token REDACTED, inline CA DATA+OMITTED. */
int admin_config_view(const struct admin_config *cfg, struct buf *out, struct llmd_err *e);

#endif
