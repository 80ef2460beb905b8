/*
 * tests/unit/test-cli-config.c - llmd-admin's config file: the fields,
 * relative paths, errors at FILE:LINE (unknown keys, wrong types, exclusive
 * fields, inline CA that is not PEM, YAML syntax), which file is read, the
 * precedence flags > environment > file, the inline CA's private temp file
 * and the redacted view.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/admin-config.h"

#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static int
parse(const char *text, struct admin_config *c, struct llmd_err *e)
{
	return admin_config_parse(text, strlen(text), "/etc/llmd/admin.yaml", c, e);
}

Test(cli_config, all_fields)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse("server: https://llmd.example:7480\n"
	    "tokenFile: tok\n"
	    "certificateAuthority: /pki/ca.crt\n", &c, &e), 0, "%s", e.msg);
	cr_assert_str_eq(c.path, "/etc/llmd/admin.yaml");
	cr_assert_str_eq(c.server, "https://llmd.example:7480");
	cr_assert_null(c.token);
	cr_assert_str_eq(c.token_file, "/etc/llmd/tok");   /* next to the file */
	cr_assert_str_eq(c.ca_file, "/pki/ca.crt");
	cr_assert_null(c.ca_data);
	admin_config_release(&c);

	cr_assert_eq(parse("token: llmd_abc.def\ncertificateAuthorityData: |\n"
	    "  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\n", &c, &e), 0,
	    "%s", e.msg);
	cr_assert_str_eq(c.token, "llmd_abc.def");
	cr_assert_str_eq(c.ca_data, PEM);
	cr_assert_null(c.server);
	admin_config_release(&c);
}

Test(cli_config, empty_file_is_empty_config)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse("", &c, &e), 0);
	cr_assert_null(c.server);
	cr_assert_null(c.token);
	admin_config_release(&c);
	cr_assert_eq(parse("# nothing yet\n", &c, &e), 0);
	admin_config_release(&c);
}

Test(cli_config, unknown_key_names_file_and_line)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse("server: http://x\n# a comment\n  \ncertificate-authority: ca.crt\n",
	    &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:4");
	cr_assert(strstr(e.msg, "unknown key \"certificate-authority\"") != NULL, "%s", e.msg);
	cr_assert_null(c.server);   /* nothing half-filled */
	cr_assert_eq(parse("\"srv\": http://x\n", &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:1");
}

Test(cli_config, wrong_types_and_exclusive_fields)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(parse("server: http://x\ntoken: 42\n", &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:2");
	cr_assert(strstr(e.msg, "token: expected a non-empty string") != NULL, "%s", e.msg);
	cr_assert_eq(parse("server: {host: x}\n", &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:1");
	cr_assert_eq(parse("token: a\ntokenFile: b\n", &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:2");
	cr_assert(strstr(e.msg, "exclusive") != NULL);
	cr_assert_eq(parse("certificateAuthority: a\ncertificateAuthorityData: b\n", &c, &e),
	    -EINVAL);
	cr_assert(strstr(e.msg, "exclusive") != NULL);
	cr_assert_eq(parse("server: x\ncertificateAuthorityData: TUlJQg==\n", &c, &e), -EINVAL);
	cr_assert_str_eq(e.field, "/etc/llmd/admin.yaml:2");
	cr_assert(strstr(e.msg, "PEM") != NULL);
	cr_assert_eq(parse("- server\n", &c, &e), -EINVAL);
	cr_assert(strstr(e.msg, "expected a mapping") != NULL);
}

Test(cli_config, yaml_syntax_error_has_location)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_lt(parse("server: [unclosed\n", &c, &e), 0);
	cr_assert(strncmp(e.field, "/etc/llmd/admin.yaml:", 21) == 0, "%s", e.field);
}

Test(cli_config, which_file)
{
	char buf[512];
	int explicit;

	setenv("HOME", "/home/op", 1);
	unsetenv("LLMD_CONFIG");
	cr_assert_str_eq(admin_config_path(NULL, buf, sizeof(buf), &explicit),
	    "/home/op/.config/llmd/config.yaml");
	cr_assert_eq(explicit, 0);
	setenv("LLMD_CONFIG", "/srv/llmd.yaml", 1);
	cr_assert_str_eq(admin_config_path(NULL, buf, sizeof(buf), &explicit), "/srv/llmd.yaml");
	cr_assert_eq(explicit, 1);
	cr_assert_str_eq(admin_config_path("flag.yaml", buf, sizeof(buf), &explicit),
	    "flag.yaml");
	cr_assert_eq(explicit, 1);
	unsetenv("LLMD_CONFIG");
}

Test(cli_config, missing_file)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;

	cr_assert_eq(admin_config_load("/nonexistent/llmd.yaml", 0, &c, &e), 0);
	cr_assert_null(c.path);
	cr_assert_eq(admin_config_load("/nonexistent/llmd.yaml", 1, &c, &e), -ENOENT);
	cr_assert_str_eq(e.field, "/nonexistent/llmd.yaml");
}

Test(cli_config, precedence_flags_env_file)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	struct admin_source none = { 0 }, flags = { 0 }, env = { 0 }, out;

	cr_assert_eq(parse("server: http://file\ntoken: file-token\n"
	    "certificateAuthorityData: \"" "-----BEGIN CERTIFICATE-----\\nx\\n"
	    "-----END CERTIFICATE-----\\n\"\n", &c, &e), 0, "%s", e.msg);
	/* the file alone */
	admin_config_merge(&none, &none, &c, &out);
	cr_assert_str_eq(out.server, "http://file");
	cr_assert_str_eq(out.token, "file-token");
	cr_assert_null(out.token_file);
	cr_assert_null(out.ca_file);
	cr_assert_not_null(out.ca_data);
	/* the environment over the file */
	env.server = "http://env";
	env.token = "env-token";
	env.ca_file = "/env/ca.crt";
	admin_config_merge(&none, &env, &c, &out);
	cr_assert_str_eq(out.server, "http://env");
	cr_assert_str_eq(out.token, "env-token");
	cr_assert_str_eq(out.ca_file, "/env/ca.crt");
	cr_assert_null(out.ca_data);   /* one CA source, never both */
	/* flags over both; a flag's token file beats the environment's token */
	flags.server = "http://flag";
	flags.token_file = "/flag/token";
	admin_config_merge(&flags, &env, &c, &out);
	cr_assert_str_eq(out.server, "http://flag");
	cr_assert_null(out.token);
	cr_assert_str_eq(out.token_file, "/flag/token");
	cr_assert_str_eq(out.ca_file, "/env/ca.crt");
	/* empty strings count as unset ($LLMD_TOKEN="") */
	env.token = "";
	flags.token_file = NULL;
	admin_config_merge(&flags, &env, &c, &out);
	cr_assert_str_eq(out.token, "file-token");
	admin_config_release(&c);
}

Test(cli_config, ca_tempfile_is_private)
{
	struct llmd_err e = LLMD_ERR_INIT;
	char *path = NULL, got[256];
	struct stat st;
	FILE *f;
	size_t n;

	setenv("TMPDIR", "/tmp", 1);
	cr_assert_eq(admin_config_ca_tempfile(PEM, &path, &e), 0, "%s", e.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	fclose(f);
	cr_assert_str_eq(got, PEM);
	unlink(path);
	free(path);
}

Test(cli_config, view_redacts)
{
	struct admin_config c;
	struct llmd_err e = LLMD_ERR_INIT;
	struct buf out = BUF_INIT;

	cr_assert_eq(parse("server: https://s\ntoken: llmd_topsecret.0123\n"
	    "certificateAuthorityData: \"" "-----BEGIN CERTIFICATE-----\\nx\\n"
	    "-----END CERTIFICATE-----\\n\"\n", &c, &e), 0, "%s", e.msg);
	cr_assert_eq(admin_config_view(&c, &out, &e), 0);
	cr_assert(strstr(out.buf, "server: https://s") != NULL, "%s", out.buf);
	cr_assert(strstr(out.buf, "token: REDACTED") != NULL, "%s", out.buf);
	cr_assert(strstr(out.buf, "certificateAuthorityData: DATA+OMITTED") != NULL, "%s", out.buf);
	cr_assert(strstr(out.buf, "topsecret") == NULL);
	cr_assert(strstr(out.buf, "BEGIN") == NULL);
	buf_release(&out);
	admin_config_release(&c);
}
