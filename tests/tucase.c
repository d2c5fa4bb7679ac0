/* Registering libcheck tests: see tucase.h. */
#include "tucase.h"

void tu_add_case(Suite *s, const char *name, const TTest *t, int timeout_s,
                 void (*setup)(void), void (*teardown)(void))
{
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout_s > 0)
        tcase_set_timeout(tc, timeout_s);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}

void tu_add_fixture_cases(Suite *s, const tu_fixture_case *c, size_t n, int timeout_s)
{
    for (size_t i = 0; i < n; i++)
        tu_add_case(s, c[i].name, c[i].test, timeout_s, c[i].setup, c[i].teardown);
}
