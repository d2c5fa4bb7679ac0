/* Registering libcheck tests (apart from testutil.h: check.h defines
 * names, such as fail, that other test helpers use). */
#ifndef TUCASE_H
#define TUCASE_H

#include <check.h>

/* Add test t to s in a case of its own named name, with that fixture
 * (either may be NULL) and a timeout of timeout_s seconds (0: check's). */
void tu_add_case(Suite *s, const char *name, const TTest *t, int timeout_s,
                 void (*setup)(void), void (*teardown)(void));

#endif
