/*
 * lib/log.h - logging for every llmd program.
 *
 * Vocabulary after OpenBSD's daemons: log_warn() appends strerror(errno),
 * log_warnx() does not; fatal()/fatalx() log and exit(1). Lines go to stderr as
 * "2026-11-25T13:00:00.123Z prog[pid] level: message". The level comes from
 * log_init() or the LLMD_LOG_LEVEL environment variable (error, warn, info,
 * debug), which wins when set. Thread-safe: one write(2) per line.
 */
#ifndef LLMD_LOG_H
#define LLMD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

#define LLMD_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug" (or 0-3); returns -1 when unknown. */
int log_level_parse(const char *s);
const char *log_progname(void);

void log_warn(const char *fmt, ...) LLMD_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LLMD_PRINTF(1, 2);
void log_error(const char *fmt, ...) LLMD_PRINTF(1, 2);
void log_info(const char *fmt, ...) LLMD_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LLMD_PRINTF(1, 2);
void log_vlog(enum log_level level, int with_errno, const char *fmt, va_list ap);
_Noreturn void fatal(const char *fmt, ...) LLMD_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LLMD_PRINTF(1, 2);

#endif
