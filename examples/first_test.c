#include <check.h>
#include <epx_check.h>

START_TEST(split_and_heal)
{
    epx_cluster *c = epx_check_cluster;             /* 3 fresh nodes: n1, n2, n3 */
    ck_assert_epx_ok(epx_fixture_split(c, "n1 n2,n3"));
    ck_assert_epx_partition(c, 10000);              /* until every node's nodes() agrees */
    ck_assert_epx_not_sees(c, "n1", "n2");
    ck_assert_epx_ok(epx_fixture_heal(c));
    ck_assert_epx_ok(epx_fixture_connect_all(c));
    ck_assert_epx_connected(c, 10000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("first");
    TCase *tc = tcase_create("split");
    epx_check_add_fixture(tc, 3, NULL);             /* a cluster around each test */
    tcase_add_test(tc, split_and_heal);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    return srunner_ntests_failed(sr) != 0;
}
