/*
 * cli/print.c - llmd-admin output: aligned tables, ages, and a YAML
 * renderer for cJSON documents (-o yaml).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/admin.h"
#include "lib/util.h"

void
table_init(struct table *t, int ncols)
{
	t->ncols = ncols;
	t->nrows = 0;
	t->cells = NULL;
}

void
table_add(struct table *t, const char *const *row)
{
	int i;

	t->cells = xreallocarray(t->cells, (size_t)(t->nrows + 1) * (size_t)t->ncols,
	    sizeof(char *));
	for (i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = xstrdup(row[i] ? row[i] : "");
	t->nrows++;
}

void
table_print(FILE *f, const struct table *t)
{
	size_t *w = xcalloc((size_t)t->ncols, sizeof(size_t));
	int r, c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			w[c] = MAX(w[c], strlen(t->cells[r * t->ncols + c]));
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c == t->ncols - 1)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s   ", (int)w[c], s);
		}
	}
	free(w);
}

void
table_release(struct table *t)
{
	int i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

void
print_age(char *out, size_t len, const char *ts)
{
	struct tm tm;
	time_t then, now = time(NULL);
	long d;

	memset(&tm, 0, sizeof(tm));
	if (ts == NULL || strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) == NULL) {
		snprintf(out, len, "<unknown>");
		return;
	}
	then = timegm(&tm);
	d = (long)(now - then);
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(out, len, "%lds", d);
	else if (d < 3600 * 2)
		snprintf(out, len, "%ldm", d / 60);
	else if (d < 86400 * 2)
		snprintf(out, len, "%ldh", d / 3600);
	else
		snprintf(out, len, "%ldd", d / 86400);
}

/* Can s be written as a YAML plain scalar that reads back as this string? */
static int
plain_ok(const char *s)
{
	static const char *const special[] = { "true", "false", "yes", "no", "on",
		"off", "null", "~", "y", "n" };
	size_t i, n = strlen(s);
	char *end;

	if (n == 0 || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < ARRAY_SIZE(special); i++)
		if (strcasecmp(s, special[i]) == 0)
			return 0;
	strtod(s, &end);
	if (*end == '\0' || (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) || s[0] == '.')
		return 0;
	if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
		return s[0] == '-' && s[1] && s[1] != ' ' && plain_ok(s + 1) ? 1 : 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c == ':' && (i + 1 == n || s[i + 1] == ' '))
			return 0;
		if (c == '#' && i > 0 && s[i - 1] == ' ')
			return 0;
	}
	return 1;
}

static void
scalar(FILE *f, const cJSON *v)
{
	if (cJSON_IsString(v)) {
		if (plain_ok(v->valuestring)) {
			fputs(v->valuestring, f);
		} else {
			char *q = cJSON_PrintUnformatted(v);  /* JSON strings are YAML */

			fputs(q, f);
			free(q);
		}
	} else if (cJSON_IsNull(v)) {
		fputs("null", f);
	} else {
		char *q = cJSON_PrintUnformatted(v);

		fputs(q, f);
		free(q);
	}
}

static int
is_collection(const cJSON *v)
{
	return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child != NULL;
}

static void
key(FILE *f, const char *k)
{
	cJSON tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.type = cJSON_String;
	tmp.valuestring = (char *)(uintptr_t)k;
	scalar(f, &tmp);
}

static void
yaml_node(FILE *f, const cJSON *v, int indent, int inline_first)
{
	const cJSON *c;
	int first = 1;

	if (cJSON_IsObject(v) && v->child) {
		cJSON_ArrayForEach(c, v) {
			if (!(first && inline_first))
				fprintf(f, "%*s", indent, "");
			first = 0;
			key(f, c->string);
			fputc(':', f);
			if (is_collection(c)) {
				fputc('\n', f);
				yaml_node(f, c, cJSON_IsArray(c) ? indent : indent + 2, 0);
			} else {
				fputc(' ', f);
				if (cJSON_IsObject(c))
					fputs("{}", f);
				else if (cJSON_IsArray(c))
					fputs("[]", f);
				else
					scalar(f, c);
				fputc('\n', f);
			}
		}
	} else if (cJSON_IsArray(v) && v->child) {
		cJSON_ArrayForEach(c, v) {
			if (!(first && inline_first))
				fprintf(f, "%*s", indent, "");
			first = 0;
			fputs("- ", f);
			if (is_collection(c)) {
				yaml_node(f, c, indent + 2, 1);
			} else {
				if (cJSON_IsObject(c))
					fputs("{}", f);
				else if (cJSON_IsArray(c))
					fputs("[]", f);
				else
					scalar(f, c);
				fputc('\n', f);
			}
		}
	} else {
		fprintf(f, "%*s", inline_first ? 0 : indent, "");
		if (cJSON_IsObject(v))
			fputs("{}", f);
		else if (cJSON_IsArray(v))
			fputs("[]", f);
		else
			scalar(f, v);
		fputc('\n', f);
	}
}

void
print_yaml(FILE *f, const cJSON *v)
{
	yaml_node(f, v, 0, 0);
}
