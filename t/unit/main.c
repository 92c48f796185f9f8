/*
 * The unit-test runner: one binary (built with ASan + UBSan) running every
 * group, or the groups named on its command line ("unit-tests store" runs
 * the store contract alone, as make store-contract-mongo does against
 * MongoDB).  Each t/unit/test_*.c file exports test_<name>_run().
 */

#include <stdio.h>
#include <string.h>

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
int test_prom_run(void);
int test_conf_run(void);

static const struct {
    const char  *name;
    int        (*run)(void);
} groups[] = {
    { "link", test_link_run },
    { "validate", test_validate_run },
    { "auth", test_auth_run },
    { "store", test_store_run },
    { "api", test_api_run },
    { "triage", test_triage_run },
    { "assign", test_assign_run },
    { "mail", test_mail_run },
    { "sio", test_sio_run },
    { "ws", test_ws_run },
    { "cache", test_cache_run },
    { "wire", test_wire_run },
    { "vocab", test_vocab_run },
    { "prom", test_prom_run },
    { "conf", test_conf_run },
};


int
main(int argc, char **argv)
{
    int     failed = 0, ran = 0, i;
    size_t  g;

    for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        for (i = 1; i < argc && strcmp(argv[i], groups[g].name) != 0; i++) {
            /* look on */
        }
        if (argc == 1 || i < argc) {
            failed += groups[g].run();
            ran++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "no such test group\n");
        return 2;
    }
    if (failed) {
        fprintf(stderr, "%d unit test(s) failed\n", failed);
        return 1;
    }
    return 0;
}
