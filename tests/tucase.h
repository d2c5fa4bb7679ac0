/* Registering libcheck tests (apart from testutil.h: check.h defines
 * names, such as fail, that other test helpers use). */
#ifndef TUCASE_H
#define TUCASE_H

#include <check.h>

/* Add test t to s in a case of its own named name, with that fixture
 * (either may be NULL) and a timeout of timeout_s seconds (0: check's). */
void tu_add_case(Suite *s, const char *name, const TTest *t, int timeout_s,
                 void (*setup)(void), void (*teardown)(void));

/* A case table whose tests each have a fixture of their own. */
typedef struct tu_fixture_case {
    const char *name;
    const TTest *test;
    void (*setup)(void);
    void (*teardown)(void);
} tu_fixture_case;

/* tu_add_case for each of the n cases of c, all with timeout_s. */
void tu_add_fixture_cases(Suite *s, const tu_fixture_case *c, size_t n, int timeout_s);

#endif
