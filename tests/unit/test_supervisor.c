//  test_supervisor.c - the --processes supervisor's pure rules: when to
//  give up, the restart backoff and the children's argv. No processes.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "supervisor.h"

//  A wait status as waitpid reports an exit with code.
#define S_EXITED(code) (((code) &0xff) << 8)

static void
first_child_refusing_its_settings_gives_up (void **state)
{
    (void) state;
    assert_true (WIFEXITED (S_EXITED (2)) && WEXITSTATUS (S_EXITED (2)) == 2);
    assert_true (supervisor_gives_up (S_EXITED (2), 1));
}

static void
restarted_child_refusing_its_settings_is_retried (void **state)
{
    (void) state;
    //  The config or a certificate changed since the supervisor started:
    //  the other children keep serving, this slot is retried.
    assert_false (supervisor_gives_up (S_EXITED (2), 2));
    assert_false (supervisor_gives_up (S_EXITED (2), 50));
}

static void
other_deaths_never_give_up (void **state)
{
    (void) state;
    assert_false (supervisor_gives_up (S_EXITED (1), 1));
    assert_false (supervisor_gives_up (S_EXITED (0), 1));
    assert_false (supervisor_gives_up (SIGKILL, 1));  //  killed by a signal
    assert_false (supervisor_gives_up (SIGKILL, 3));
}

static void
backoff_doubles_to_its_cap_and_resets_after_a_stable_run (void **state)
{
    (void) state;
    int backoff = supervisor_next_backoff (0, 0);
    assert_int_equal (backoff, SUPERVISOR_BACKOFF_MIN_MS);
    for (int i = 0; i < 20; i++)
        backoff = supervisor_next_backoff (backoff, 5);
    assert_int_equal (backoff, SUPERVISOR_BACKOFF_MAX_MS);
    assert_int_equal (supervisor_next_backoff (backoff, SUPERVISOR_STABLE_MS),
                      SUPERVISOR_BACKOFF_MIN_MS);
}

static void
child_argv_replaces_processes_with_1 (void **state)
{
    (void) state;
    char *argv[] = { "cartmq-worker", "--processes", "4",     "--echo",
                     "--processes=3", "--config",    "w.cfg", NULL };
    char **child = supervisor_child_argv (7, argv);
    assert_non_null (child);
    const char *expected[] = { "cartmq-worker", "--echo",      "--config",
                               "w.cfg",         "--processes", "1" };
    for (size_t i = 0; i < 6; i++)
        assert_string_equal (child[i], expected[i]);
    assert_null (child[6]);
    free (child);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (first_child_refusing_its_settings_gives_up),
        cmocka_unit_test (restarted_child_refusing_its_settings_is_retried),
        cmocka_unit_test (other_deaths_never_give_up),
        cmocka_unit_test (
          backoff_doubles_to_its_cap_and_resets_after_a_stable_run),
        cmocka_unit_test (child_argv_replaces_processes_with_1),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
