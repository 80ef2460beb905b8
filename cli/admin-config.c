/*
 * cli/admin-config.c - llmd-admin's config file, a small kubeconfig: which file
 * ($LLMD_CONFIG, else ~/.config/llmd/config.yaml), reading it with
 * lib/yaml.h (server, token or tokenFile, certificateAuthority or
 * certificateAuthorityData; anything else is an error at FILE:LINE),
 * relative paths taken from the file's directory, the precedence of flags
 * over the environment over the file, the inline CA written to a private
 * temporary file for libcurl and the SSH/Slurm commands, and the redacted
 * view `llmd-admin config view` prints.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/admin-config.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/yaml.h"

static const char *const keys[] = {
	"server", "token", "tokenFile", "certificateAuthority", "certificateAuthorityData", NULL,
};

/* 1-based line of top-level key `key` in text ("key:", quoted or not); 0 unknown. */
static int
key_line(const char *text, size_t len, const char *key)
{
	size_t kl = strlen(key), i = 0;
	int line = 1;

	while (i < len) {
		size_t j = i;

		if (j < len && (text[j] == '"' || text[j] == '\''))
			j++;
		if (j + kl <= len && strncmp(text + j, key, kl) == 0) {
			size_t k = j + kl;

			if (k < len && (text[k] == '"' || text[k] == '\'') && j > i)
				k++;
			while (k < len && (text[k] == ' ' || text[k] == '\t'))
				k++;
			if (k < len && text[k] == ':')
				return line;
		}
		while (i < len && text[i] != '\n')
			i++;
		i++;
		line++;
	}
	return 0;
}

static int
config_err(struct llmd_err *e, const char *filename, const char *text, size_t len,
    const char *key, const char *msg)
{
	char field[300];
	int line = key ? key_line(text, len, key) : 0;

	if (line > 0)
		snprintf(field, sizeof(field), "%s:%d", filename, line);
	else
		snprintf(field, sizeof(field), "%s", filename);
	return err_set(e, -EINVAL, field, "%s", msg);
}

/* A path relative to the config file's directory. */
static char *
relative_to(const char *filename, const char *path)
{
	const char *slash = strrchr(filename, '/');
	struct buf b = BUF_INIT;

	if (path[0] == '/' || slash == NULL)
		return xstrdup(path);
	buf_add(&b, filename, (size_t)(slash - filename + 1));
	buf_adds(&b, path);
	return buf_detach(&b, NULL);
}

int
admin_config_parse(const char *text, size_t len, const char *filename,
    struct admin_config *cfg, struct llmd_err *e)
{
	cJSON *doc = NULL;
	const cJSON *v;
	char msg[300];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = xstrdup(filename);
	rc = yaml_parse_one(text, len, filename, &doc, e);
	if (rc == -ENODATA)
		return 0;   /* an empty file: nothing set */
	if (rc < 0)
		goto fail;
	if (!cJSON_IsObject(doc)) {
		rc = config_err(e, filename, text, len, NULL,
		    "expected a mapping of server, token or tokenFile, certificateAuthority "
		    "or certificateAuthorityData");
		goto fail;
	}
	cJSON_ArrayForEach(v, doc) {
		size_t i;

		for (i = 0; keys[i] && strcmp(keys[i], v->string) != 0; i++)
			;
		if (keys[i] == NULL) {
			snprintf(msg, sizeof(msg), "unknown key \"%.100s\" (expected server, "
			    "token, tokenFile, certificateAuthority or certificateAuthorityData)",
			    v->string);
			rc = config_err(e, filename, text, len, v->string, msg);
			goto fail;
		}
		if (!cJSON_IsString(v) || !*v->valuestring) {
			snprintf(msg, sizeof(msg), "%s: expected a non-empty string", v->string);
			rc = config_err(e, filename, text, len, v->string, msg);
			goto fail;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(doc, "server");
	cfg->server = v ? xstrdup(v->valuestring) : NULL;
	v = cJSON_GetObjectItemCaseSensitive(doc, "token");
	cfg->token = v ? xstrdup(v->valuestring) : NULL;
	v = cJSON_GetObjectItemCaseSensitive(doc, "tokenFile");
	cfg->token_file = v ? relative_to(filename, v->valuestring) : NULL;
	v = cJSON_GetObjectItemCaseSensitive(doc, "certificateAuthority");
	cfg->ca_file = v ? relative_to(filename, v->valuestring) : NULL;
	v = cJSON_GetObjectItemCaseSensitive(doc, "certificateAuthorityData");
	cfg->ca_data = v ? xstrdup(v->valuestring) : NULL;
	if (cfg->token && cfg->token_file) {
		rc = config_err(e, filename, text, len, "tokenFile",
		    "token and tokenFile are exclusive");
		goto fail;
	}
	if (cfg->ca_file && cfg->ca_data) {
		rc = config_err(e, filename, text, len, "certificateAuthorityData",
		    "certificateAuthority and certificateAuthorityData are exclusive");
		goto fail;
	}
	if (cfg->ca_data && strstr(cfg->ca_data, "-----BEGIN ") == NULL) {
		rc = config_err(e, filename, text, len, "certificateAuthorityData",
		    "certificateAuthorityData: expected PEM (-----BEGIN CERTIFICATE-----...)");
		goto fail;
	}
	cJSON_Delete(doc);
	return 0;
fail:
	cJSON_Delete(doc);
	admin_config_release(cfg);
	return rc;
}

const char *
admin_config_path(const char *flag, char *buf, size_t len, int *explicit)
{
	const char *env = getenv("LLMD_CONFIG"), *home = getenv("HOME");

	*explicit = 1;
	if (flag && *flag)
		return flag;
	if (env && *env)
		return env;
	*explicit = 0;
	if (home == NULL || !*home)
		return NULL;
	snprintf(buf, len, "%s/.config/llmd/config.yaml", home);
	return buf;
}

int
admin_config_load(const char *path, int explicit, struct admin_config *cfg,
    struct llmd_err *e)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	struct stat st;
	size_t n;
	FILE *f;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (path == NULL)
		return 0;
	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !explicit)
			return 0;
		return err_set(e, -errno, path, "%s", strerror(errno));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < YAML_MAX_INPUT)
		buf_add(&b, chunk, n);
	if (fstat(fileno(f), &st) < 0)
		st.st_mode = 0;
	fclose(f);
	rc = admin_config_parse(b.buf ? b.buf : "", b.len, path, cfg, e);
	buf_release(&b);
	if (rc == 0 && cfg->token && (st.st_mode & 077))
		log_warnx("%s holds a token and is readable by others (chmod 600 it)", path);
	return rc;
}

void
admin_config_release(struct admin_config *cfg)
{
	free(cfg->path);
	free(cfg->server);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->ca_file);
	free(cfg->ca_data);
	memset(cfg, 0, sizeof(*cfg));
}

static const char *
first(const char *a, const char *b, const char *c)
{
	if (a && *a)
		return a;
	if (b && *b)
		return b;
	return c && *c ? c : NULL;
}

void
admin_config_merge(const struct admin_source *flags, const struct admin_source *env,
    const struct admin_config *file, struct admin_source *out)
{
	const struct admin_source *src[2] = { flags, env };
	int i;

	memset(out, 0, sizeof(*out));
	out->server = first(flags->server, env->server, file->server);
	/* A token or a token file, from the first source that has either. */
	for (i = 0; i < 2 && !out->token && !out->token_file; i++) {
		if (src[i]->token && *src[i]->token)
			out->token = src[i]->token;
		else if (src[i]->token_file && *src[i]->token_file)
			out->token_file = src[i]->token_file;
	}
	if (!out->token && !out->token_file) {
		out->token = file->token;
		out->token_file = file->token_file;
	}
	/* Likewise a CA bundle path or inline PEM. */
	for (i = 0; i < 2 && !out->ca_file && !out->ca_data; i++) {
		if (src[i]->ca_file && *src[i]->ca_file)
			out->ca_file = src[i]->ca_file;
		else if (src[i]->ca_data && *src[i]->ca_data)
			out->ca_data = src[i]->ca_data;
	}
	if (!out->ca_file && !out->ca_data) {
		out->ca_file = file->ca_file;
		out->ca_data = file->ca_data;
	}
}

int
admin_config_ca_tempfile(const char *pem, char **path, struct llmd_err *e)
{
	const char *dir = getenv("TMPDIR");
	struct buf b = BUF_INIT;
	size_t len = strlen(pem), off = 0;
	int fd;

	buf_addf(&b, "%s/llmd-admin-ca.XXXXXX", dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(b.buf)) < 0) {
		int rc = err_set(e, -errno, b.buf, "%s", strerror(errno));

		buf_release(&b);
		return rc;
	}
	fchmod(fd, 0600);
	while (off < len) {
		ssize_t n = write(fd, pem + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = err_set(e, -EIO, b.buf, "%s", strerror(errno));

			close(fd);
			unlink(b.buf);
			buf_release(&b);
			return rc;
		}
		off += (size_t)n;
	}
	close(fd);
	*path = buf_detach(&b, NULL);
	return 0;
}

int
admin_config_view(const struct admin_config *cfg, struct buf *out, struct llmd_err *e)
{
	cJSON *o = cJSON_CreateObject();
	int rc;

	if (cfg->server)
		cJSON_AddStringToObject(o, "server", cfg->server);
	if (cfg->token)
		cJSON_AddStringToObject(o, "token", "REDACTED");
	if (cfg->token_file)
		cJSON_AddStringToObject(o, "tokenFile", cfg->token_file);
	if (cfg->ca_file)
		cJSON_AddStringToObject(o, "certificateAuthority", cfg->ca_file);
	if (cfg->ca_data)
		cJSON_AddStringToObject(o, "certificateAuthorityData", "DATA+OMITTED");
	rc = cJSON_GetArraySize(o) > 0 ? yaml_emit(o, out, e) : 0;
	cJSON_Delete(o);
	return rc;
}
