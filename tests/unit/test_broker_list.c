//  test_broker_list.c - the core's intrusive lists

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "broker_list.h"

typedef struct {
    int value;
    broker_link_t first_link;  //  one object in two lists at once
    broker_link_t second_link;
} item_t;

#define FIRST(at)  BROKER_LIST_ITEM (at, item_t, first_link)
#define SECOND(at) BROKER_LIST_ITEM (at, item_t, second_link)

//  The values along a list, front to back, as a string ("123").
static void
s_values (broker_list_t *list, char *out)
{
    size_t length = 0;
    for (broker_link_t *link = broker_list_first (list); link;
         link = broker_list_next (list, link))
        out[length++] = (char) ('0' + FIRST (link)->value);
    out[length] = 0;
}

static void
a_new_list_is_empty (void **state)
{
    (void) state;
    broker_list_t list;
    broker_list_init (&list);
    assert_int_equal (broker_list_size (&list), 0);
    assert_null (broker_list_first (&list));
    assert_null (broker_list_last (&list));
    assert_null (FIRST (broker_list_first (&list)));
}

static void
adds_at_both_ends_keep_order (void **state)
{
    (void) state;
    broker_list_t list;
    broker_list_init (&list);
    item_t items[4];
    memset (items, 0, sizeof (items));
    for (int index = 0; index < 4; index++)
        items[index].value = index + 1;
    broker_list_add_end (&list, &items[1].first_link);
    broker_list_add_end (&list, &items[2].first_link);
    broker_list_add_start (&list, &items[0].first_link);
    broker_list_add_end (&list, &items[3].first_link);
    char values[8];
    s_values (&list, values);
    assert_string_equal (values, "1234");
    assert_int_equal (broker_list_size (&list), 4);
    assert_ptr_equal (FIRST (broker_list_first (&list)), &items[0]);
    assert_ptr_equal (FIRST (broker_list_last (&list)), &items[3]);
}

static void
remove_and_move_keep_the_rest_linked (void **state)
{
    (void) state;
    broker_list_t list;
    broker_list_init (&list);
    item_t items[3];
    memset (items, 0, sizeof (items));
    for (int index = 0; index < 3; index++) {
        items[index].value = index + 1;
        broker_list_add_end (&list, &items[index].first_link);
    }
    char values[8];
    broker_list_move_end (&list, &items[0].first_link);
    s_values (&list, values);
    assert_string_equal (values, "231");

    broker_list_remove (&list, &items[2].first_link);
    assert_false (broker_link_is_listed (&items[2].first_link));
    assert_true (broker_link_is_listed (&items[1].first_link));
    s_values (&list, values);
    assert_string_equal (values, "21");

    //  A removed link can join again, here or in another list.
    broker_list_add_start (&list, &items[2].first_link);
    s_values (&list, values);
    assert_string_equal (values, "321");

    broker_list_remove (&list, &items[2].first_link);
    broker_list_remove (&list, &items[1].first_link);
    broker_list_remove (&list, &items[0].first_link);
    assert_int_equal (broker_list_size (&list), 0);
    assert_null (broker_list_first (&list));
}

static void
one_object_sits_in_two_lists (void **state)
{
    (void) state;
    broker_list_t first, second;
    broker_list_init (&first);
    broker_list_init (&second);
    item_t items[2];
    memset (items, 0, sizeof (items));
    items[0].value = 1;
    items[1].value = 2;
    broker_list_add_end (&first, &items[0].first_link);
    broker_list_add_end (&first, &items[1].first_link);
    broker_list_add_end (&second, &items[1].second_link);
    broker_list_add_end (&second, &items[0].second_link);
    assert_ptr_equal (FIRST (broker_list_first (&first)), &items[0]);
    assert_ptr_equal (SECOND (broker_list_first (&second)), &items[1]);
    //  Leaving one list leaves the other as it was.
    broker_list_remove (&second, &items[1].second_link);
    assert_ptr_equal (SECOND (broker_list_first (&second)), &items[0]);
    assert_int_equal (broker_list_size (&first), 2);
    assert_true (broker_link_is_listed (&items[1].first_link));
}

//  Walks both ways, and inserting after the head puts a link first: how
//  the core merges re-dispatched requests into a queue in arrival order.
static void
walks_both_ways_and_inserts_in_the_middle (void **state)
{
    (void) state;
    broker_list_t list;
    broker_list_init (&list);
    item_t items[4];
    memset (items, 0, sizeof (items));
    for (int index = 0; index < 4; index++)
        items[index].value = index + 1;
    broker_list_add_end (&list, &items[1].first_link);
    broker_list_add_end (&list, &items[3].first_link);
    assert_ptr_equal (broker_list_next (&list, &list.head),
                      &items[1].first_link);
    assert_null (broker_list_prev (&list, &items[1].first_link));
    assert_ptr_equal (broker_list_prev (&list, &items[3].first_link),
                      &items[1].first_link);
    broker_list_insert_after (&list, &items[1].first_link,
                              &items[2].first_link);
    broker_list_insert_after (&list, &list.head, &items[0].first_link);
    char values[8];
    s_values (&list, values);
    assert_string_equal (values, "1234");
    assert_int_equal (broker_list_size (&list), 4);
    assert_null (broker_list_next (&list, &items[3].first_link));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (a_new_list_is_empty),
        cmocka_unit_test (adds_at_both_ends_keep_order),
        cmocka_unit_test (remove_and_move_keep_the_rest_linked),
        cmocka_unit_test (one_object_sits_in_two_lists),
        cmocka_unit_test (walks_both_ways_and_inserts_in_the_middle),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
