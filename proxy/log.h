/* Logging to stderr with a level; the daemon never logs per byte. */
#ifndef LOG_H
#define LOG_H

enum { LOG_ERR = 0, LOG_INFO = 1, LOG_DEBUG = 2, LOG_TRACE = 3 };

/* Messages at or below this level are printed (default LOG_ERR; -d raises it). */
extern int log_level;

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
