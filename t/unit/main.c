/*
 * The unit-test runner: one binary (built with ASan + UBSan) running every
 * group.  Each t/unit/test_*.c file exports test_<name>_run().
 */

#include <stdio.h>

int test_link_run(void);
int test_validate_run(void);
int test_auth_run(void);
int test_store_run(void);
int test_api_run(void);
int test_triage_run(void);
int test_assign_run(void);
int test_mail_run(void);
int test_sio_run(void);
int test_ws_run(void);
int test_cache_run(void);
int test_wire_run(void);
int test_vocab_run(void);

int
main(void)
{
    int  failed = 0;

    failed += test_link_run();
    failed += test_validate_run();
    failed += test_auth_run();
    failed += test_store_run();
    failed += test_api_run();
    failed += test_triage_run();
    failed += test_assign_run();
    failed += test_mail_run();
    failed += test_sio_run();
    failed += test_ws_run();
    failed += test_cache_run();
    failed += test_wire_run();
    failed += test_vocab_run();

    if (failed) {
        fprintf(stderr, "%d unit test(s) failed\n", failed);
        return 1;
    }
    return 0;
}
