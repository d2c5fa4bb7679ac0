/* Logging to stderr with a level; the daemon never logs per byte. */
#ifndef LOG_H
#define LOG_H

enum { LOG_ERR = 0, LOG_INFO = 1, LOG_DEBUG = 2, LOG_TRACE = 3 };

/* Messages at or below this level are printed (default LOG_ERR; -d raises it). */
extern int log_level;

#include <stddef.h>

/* Copy in[0..n) to out as one printable line: \n \r \t \\ and \xNN for
 * other control bytes and for bytes that are not valid UTF-8 (valid UTF-8
 * passes unchanged).  Stops before an escape that would not fit; always
 * NUL-terminates (cap > 0).  Returns the length written. */
size_t log_escape(char *out, size_t cap, const char *in, size_t n);

/* Log one line; the formatted message goes through log_escape. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
