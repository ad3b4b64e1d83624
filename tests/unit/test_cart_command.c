//  test_cart_command.c - the Redis command each cart request becomes

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cart_command.h"

static const char s_sha[] = "0123456789abcdef0123456789abcdef01234567";

//  A request of method with every field set, as if a client sent them all:
//  the command must carry only those its method takes.
static cmq_cart_request_t
s_request (cmq_cart_method_t method)
{
    cmq_cart_request_t request = { .method = method,
                                   .item = { .quantity = 3, .price = 250 } };
    request.user_id = cmq_cart_str ("u");
    request.item.id = cmq_cart_str ("it");
    request.item.name = cmq_cart_str ("Name");
    return request;
}

//  Asserts argument index of command is the bytes of expected.
static void
s_assert_arg (const cart_command_t *command, int index, const char *expected)
{
    assert_true (index < command->argc);
    assert_int_equal (command->sizes[index], strlen (expected));
    assert_memory_equal (command->argv[index], expected, strlen (expected));
}

static void
get_is_one_hgetall_of_the_cart_key (void **state)
{
    (void) state;
    cmq_cart_request_t request = s_request (CMQ_CART_GET);
    cart_command_t command;
    cart_command_build (&command, &request, s_sha);
    assert_int_equal (command.argc, 2);
    s_assert_arg (&command, 0, "HGETALL");
    s_assert_arg (&command, 1, "cart:{u}");
}

static void
add_passes_cart_lua_every_argument (void **state)
{
    (void) state;
    cmq_cart_request_t request = s_request (CMQ_CART_ADD);
    cart_command_t command;
    cart_command_build (&command, &request, s_sha);
    const char *expected[] = { "EVALSHA", s_sha,     "1",    "cart:{u}",
                               "2",       "it",      "3",    "250",
                               "Name",    "1000000", "1000", "86400" };
    assert_int_equal (command.argc, 12);
    for (int i = 0; i < 12; i++)
        s_assert_arg (&command, i, expected[i]);
}

static void
request_id_adds_its_key_in_the_same_hash_slot (void **state)
{
    (void) state;
    cmq_cart_request_t request = s_request (CMQ_CART_UPDATE);
    request.has_request_id = true;
    request.request_id = cmq_cart_str ("R1");
    cart_command_t command;
    cart_command_build (&command, &request, s_sha);
    assert_int_equal (command.argc, 13);
    s_assert_arg (&command, 2, "2");
    s_assert_arg (&command, 3, "cart:{u}");
    s_assert_arg (&command, 4, "cart:{u}:rid:5231");
    s_assert_arg (&command, 5, "4");  //  CMQ_CART_UPDATE
    s_assert_arg (&command, 7, "3");  //  the new quantity
    s_assert_arg (&command, 8, "0");  //  no price: only ADD sets one
    s_assert_arg (&command, 9, "");   //  nor a name
}

static void
fields_a_method_does_not_take_go_out_empty (void **state)
{
    (void) state;
    //  The request may hold stale item fields; the script must not see them.
    cmq_cart_request_t request = s_request (CMQ_CART_CLEAR);
    cart_command_t command;
    cart_command_build (&command, &request, s_sha);
    assert_int_equal (command.argc, 12);
    s_assert_arg (&command, 4, "5");  //  CMQ_CART_CLEAR
    s_assert_arg (&command, 5, "");
    s_assert_arg (&command, 6, "0");
    s_assert_arg (&command, 7, "0");
    s_assert_arg (&command, 8, "");

    request = s_request (CMQ_CART_REMOVE);
    cart_command_build (&command, &request, s_sha);
    s_assert_arg (&command, 4, "3");  //  CMQ_CART_REMOVE
    s_assert_arg (&command, 5, "it");
    s_assert_arg (&command, 6, "0");
    s_assert_arg (&command, 7, "0");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (get_is_one_hgetall_of_the_cart_key),
        cmocka_unit_test (add_passes_cart_lua_every_argument),
        cmocka_unit_test (request_id_adds_its_key_in_the_same_hash_slot),
        cmocka_unit_test (fields_a_method_does_not_take_go_out_empty),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
