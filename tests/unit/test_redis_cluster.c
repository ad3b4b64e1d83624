//  test_redis_cluster.c - key slots, the slot map and cluster errors

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis_cluster.h"

//  A reply tree as hiredis builds it, from RESP text.
static redisReply *
s_reply (const char *resp)
{
    redisReader *reader = redisReaderCreate ();
    assert_non_null (reader);
    assert_int_equal (redisReaderFeed (reader, resp, strlen (resp)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal (redisReaderGetReply (reader, &reply), REDIS_OK);
    assert_non_null (reply);
    redisReaderFree (reader);
    return (redisReply *) reply;
}

static int
s_slot (const char *key)
{
    return redis_cluster_key_slot (key, strlen (key));
}

static void
crc16_matches_the_specification (void **state)
{
    (void) state;
    //  The cluster specification's test vector for CRC16-XMODEM.
    assert_int_equal (redis_cluster_crc16 ("123456789", 9), 0x31C3);
    assert_int_equal (redis_cluster_crc16 ("", 0), 0);
    //  As CLUSTER KEYSLOT answers on a real Redis.
    assert_int_equal (s_slot ("foo"), 12182);
    assert_int_equal (s_slot ("bar"), 5061);
    assert_int_equal (s_slot ("123456789"), 0x31C3 % 16384);
}

static void
hash_tag_is_the_first_non_empty_braces (void **state)
{
    (void) state;
    //  The specification's examples.
    assert_int_equal (s_slot ("{user1000}.following"),
                      s_slot ("{user1000}.followers"));
    assert_int_equal (s_slot ("{user1000}.following"), s_slot ("user1000"));
    assert_int_equal (s_slot ("foo{{bar}}zap"), s_slot ("{bar"));
    assert_int_equal (s_slot ("foo{bar}{zap}"), s_slot ("bar"));
    //  "{}" is no tag: the whole key is hashed.
    assert_int_equal (s_slot ("foo{}{bar}"),
                      redis_cluster_crc16 ("foo{}{bar}", 10) %
                        REDIS_CLUSTER_SLOTS);
    assert_int_equal (s_slot ("{foo"), redis_cluster_crc16 ("{foo", 4) % 16384);
    //  A cart and its request-id records share the user's slot.
    assert_int_equal (s_slot ("cart:{alice}"), s_slot ("alice"));
    assert_int_equal (s_slot ("cart:{alice}:rid:00ff"), s_slot ("alice"));
    //  Bytes after a NUL count: the key is counted, not a C string.
    assert_int_equal (redis_cluster_key_slot ("{a\0b}", 5),
                      redis_cluster_crc16 ("a\0b", 3) % 16384);
}

static void
slot_map_is_built_from_cluster_slots (void **state)
{
    (void) state;
    redis_cluster_map_t *map = (redis_cluster_map_t *) malloc (sizeof (*map));
    redis_cluster_map_reset (map);
    //  Redis 7's shape: node = [ip, port, id, {metadata}], replicas after.
    redisReply *answer =
      s_reply ("*3\r\n"
               "*4\r\n:0\r\n:5460\r\n"
               "*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n*0\r\n"
               "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nid\r\n*0\r\n"
               "*3\r\n:5461\r\n:10922\r\n"
               "*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n"
               "*3\r\n:10923\r\n:16383\r\n"
               "*2\r\n$0\r\n\r\n:7002\r\n");
    char error[200] = "";
    assert_int_equal (
      redis_cluster_map_update (map, answer, "10.1.1.1", error, sizeof (error)),
      16384);
    freeReplyObject (answer);
    assert_int_equal (map->node_count, 3);
    assert_int_equal (map->owner[0], 0);
    assert_int_equal (map->owner[5460], 0);
    assert_int_equal (map->owner[5461], 1);
    assert_int_equal (map->owner[16383], 2);
    assert_int_equal (map->nodes[1].port, 7001);
    //  An empty host is the node that answered.
    assert_string_equal (map->nodes[2].host, "10.1.1.1");
    //  A later map keeps the known nodes' indexes.
    answer = s_reply ("*1\r\n*3\r\n:0\r\n:100\r\n"
                      "*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n");
    assert_int_equal (
      redis_cluster_map_update (map, answer, "x", error, sizeof (error)), 101);
    freeReplyObject (answer);
    assert_int_equal (map->owner[100], 1);
    assert_int_equal (map->owner[101], 0);
    assert_int_equal (map->node_count, 3);
    free (map);
}

static void
bad_slot_answers_leave_the_map_alone (void **state)
{
    (void) state;
    redis_cluster_map_t *map = (redis_cluster_map_t *) malloc (sizeof (*map));
    redis_cluster_map_reset (map);
    const struct {
        const char *resp;
        const char *reason;
    } cases[] = {
        { "-ERR This instance has cluster support disabled\r\n",
          "cluster support disabled" },
        { "+OK\r\n", "not a slot list" },
        { "*1\r\n:1\r\n", "malformed" },
        { "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n", "malformed" },
        { "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", "malformed" },
        { "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n", "malformed" },
        { "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n", "malformed" },
        { "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n", "malformed" },
        { "*1\r\n*2\r\n:0\r\n:1\r\n", "malformed" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
        redisReply *answer = s_reply (cases[i].resp);
        char error[200] = "";
        assert_int_equal (
          redis_cluster_map_update (map, answer, "h", error, sizeof (error)),
          -1);
        freeReplyObject (answer);
        if (!strstr (error, cases[i].reason))
            print_error ("case %zu: %s\n", i, error);
        assert_non_null (strstr (error, cases[i].reason));
        assert_int_equal (map->owner[0], -1);
        assert_int_equal (map->owner[1], -1);
    }
    free (map);
}

static void
map_holds_a_bounded_number_of_nodes (void **state)
{
    (void) state;
    redis_cluster_map_t *map = (redis_cluster_map_t *) malloc (sizeof (*map));
    redis_cluster_map_reset (map);
    for (int i = 0; i < REDIS_CLUSTER_MAX_NODES; i++)
        assert_int_equal (redis_cluster_map_node (map, "h", 1 + i), i);
    assert_int_equal (redis_cluster_map_node (map, "h", 5), 4);
    assert_int_equal (redis_cluster_map_node (map, "h", 60000), -1);
    free (map);
}

static void
s_error (const char *text, redis_cluster_error_t *error)
{
    redis_cluster_parse_error (text, strlen (text), "answered", error);
}

static void
cluster_errors_are_read (void **state)
{
    (void) state;
    redis_cluster_error_t error;
    s_error ("MOVED 3999 127.0.0.1:6381", &error);
    assert_int_equal (error.kind, REDIS_CLUSTER_MOVED);
    assert_int_equal (error.slot, 3999);
    assert_string_equal (error.host, "127.0.0.1");
    assert_int_equal (error.port, 6381);
    s_error ("ASK 16383 ::1:7000", &error);
    assert_int_equal (error.kind, REDIS_CLUSTER_ASK);
    assert_int_equal (error.slot, 16383);
    assert_string_equal (error.host, "::1");
    assert_int_equal (error.port, 7000);
    s_error ("MOVED 0 :7001", &error);  //  unknown endpoint: the same host
    assert_int_equal (error.kind, REDIS_CLUSTER_MOVED);
    assert_string_equal (error.host, "answered");
    s_error ("TRYAGAIN Multiple keys request during rehashing of slot", &error);
    assert_int_equal (error.kind, REDIS_CLUSTER_TRYAGAIN);
    s_error ("CLUSTERDOWN The cluster is down", &error);
    assert_int_equal (error.kind, REDIS_CLUSTER_CLUSTERDOWN);
    s_error ("READONLY You can't write against a read only replica.", &error);
    assert_int_equal (error.kind, REDIS_CLUSTER_READONLY);
    const char *others[] = {
        "ERR unknown command", "MOVED",      "MOVED 16384 h:1",
        "MOVED x h:1",         "MOVED 1 h",  "MOVED 1 h:0",
        "MOVED 1 h:99999",     "MOVED 1 h:", "ASK 1",
        "MOVE 1 h:1",
    };
    for (size_t i = 0; i < sizeof (others) / sizeof (others[0]); i++) {
        s_error (others[i], &error);
        if (error.kind != REDIS_CLUSTER_OTHER)
            print_error ("read as a cluster error: %s\n", others[i]);
        assert_int_equal (error.kind, REDIS_CLUSTER_OTHER);
        assert_string_equal (error.host, "");
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (crc16_matches_the_specification),
        cmocka_unit_test (hash_tag_is_the_first_non_empty_braces),
        cmocka_unit_test (slot_map_is_built_from_cluster_slots),
        cmocka_unit_test (bad_slot_answers_leave_the_map_alone),
        cmocka_unit_test (map_holds_a_bounded_number_of_nodes),
        cmocka_unit_test (cluster_errors_are_read),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
