/*
 * cli/cmd.c - llmd-admin's command table and its lookup: exact name or
 * alias, else an unambiguous prefix (after tmux's cmd_find).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"
#include "lib/buf.h"

const struct cmd_entry *const cmd_table[] = {
	&cmd_apply_entry,
	&cmd_get_entry,
	&cmd_describe_entry,
	&cmd_delete_entry,
	&cmd_wait_entry,
	&cmd_scale_entry,
	&cmd_patch_entry,
	&cmd_create_entry,
	&cmd_cordon_entry,
	&cmd_uncordon_entry,
	&cmd_drain_entry,
	&cmd_node_entry,
	&cmd_logs_entry,
	&cmd_token_entry,
	&cmd_slurm_entry,
	&cmd_top_entry,
	&cmd_config_entry,
	NULL,
};

const struct cmd_entry *
cmd_find(const char *name, char **cause)
{
	const struct cmd_entry *found = NULL;
	struct buf amb = BUF_INIT;
	size_t n = strlen(name), i;
	int ambiguous = 0;

	for (i = 0; cmd_table[i]; i++) {
		if (strcmp(cmd_table[i]->name, name) == 0 ||
		    (cmd_table[i]->alias && strcmp(cmd_table[i]->alias, name) == 0)) {
			buf_release(&amb);
			return cmd_table[i];
		}
		if (n > 0 && strncmp(cmd_table[i]->name, name, n) == 0) {
			if (found)
				ambiguous = 1;
			found = cmd_table[i];
			buf_addf(&amb, "%s%s", amb.len ? ", " : "", cmd_table[i]->name);
		}
	}
	if (ambiguous) {
		struct buf b = BUF_INIT;

		buf_addf(&b, "ambiguous command: %s, could be: %s", name, amb.buf);
		*cause = buf_detach(&b, NULL);
		found = NULL;
	} else if (found == NULL) {
		struct buf b = BUF_INIT;

		buf_addf(&b, "unknown command: %s", name);
		*cause = buf_detach(&b, NULL);
	}
	buf_release(&amb);
	return found;
}

void
cmd_print_usage(FILE *f)
{
	size_t i;

	fprintf(f, "Commands:\n");
	for (i = 0; cmd_table[i]; i++)
		fprintf(f, "  %s %s\n", cmd_table[i]->name, cmd_table[i]->usage);
}
