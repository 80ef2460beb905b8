/*
 * daemon/template.h - the Go text/template subset that preset and baseRef
 * strings use (docs/kserve-llmisvc-api.md section 4), rendered per string
 * value of the merged object (so rendered values can never break the JSON
 * structure: they are inserted as string contents, not as JSON text).
 *
 * Supported: {{ .Name }}, {{ .Namespace }}, {{ .ObjectMeta.Labels.key }},
 * {{ .Spec.Model.Name }}, {{ .Spec.Parallelism.Tensor }} ... (Go field names
 * are matched to JSON keys case-insensitively), {{ .GlobalConfig.X }},
 * string ("..." and `...`), number, true/false/nil literals, ( ) grouping,
 * pipes a | f, functions ChildName, or, and, not, eq, ne, printf (%s %d %v),
 * index, len, print; {{ if }} {{ else }} {{ end }} blocks and {{- -}} trim.
 * A missing field is an error when its value is printed; inside or/and/not/
 * eq/if it is treated as empty (upstream errors on nil pointers there).
 */
#ifndef LLMD_DAEMON_TEMPLATE_H
#define LLMD_DAEMON_TEMPLATE_H

#include <cjson/cJSON.h>

#include "lib/err.h"

/*
 * Renders one string. root is the object ({metadata, spec, status}) that
 * .Name/.Spec... refer to, global the .GlobalConfig object (may be NULL).
 * *out is malloc'ed. On error e->msg names the missing field or the syntax
 * problem. Returns 0 or -EINVAL.
 */
int template_render_string(const char *in, const cJSON *root, const cJSON *global, char **out,
    struct llmd_err *e);

/*
 * Renders every string value under tree in place (keys are left alone).
 * path is the JSON path of tree used in error fields ("spec").
 */
int template_render_tree(cJSON *tree, const char *path, const cJSON *root,
    const cJSON *global, struct llmd_err *e);

#endif
