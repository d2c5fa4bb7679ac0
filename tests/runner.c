/* The one test runner: every suite from tests/check_*.c, in file-name order.
 * CK_RUN_SUITE / CK_RUN_CASE select, CK_FORK=no runs in-process (gdb). */
#include <check.h>
#include <stdlib.h>
#include "testutil.h"

#define SUITE(name) Suite *name##_suite(void);
#include "suites.inc"
#undef SUITE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define SUITE(name) srunner_add_suite(sr, name##_suite());
#include "suites.inc"
#undef SUITE
    testutil_init();
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    testutil_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
