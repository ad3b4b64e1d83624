//  test_curve.c - certificate files: keygen, loading, client setup

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartmq/curve.h"

typedef struct {
    char dir[64];
    char public_path[128];  //  DIR/alice
    char secret_path[128];  //  DIR/alice_secret
    char error[512];
} fixture_t;

static int
setup (void **state)
{
    fixture_t *fx = (fixture_t *) zmalloc (sizeof (fixture_t));
    strcpy (fx->dir, "/tmp/cmq-test-curve-XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    snprintf (fx->public_path, sizeof (fx->public_path), "%s/alice", fx->dir);
    snprintf (fx->secret_path, sizeof (fx->secret_path), "%s/alice_secret",
              fx->dir);
    *state = fx;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fx = *state;
    zdir_t *dir = zdir_new (fx->dir, NULL);
    if (dir) {
        zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
    free (fx);
    return 0;
}

static void
s_keygen (fixture_t *fx)
{
    int rc = cmq_curve_keygen (fx->public_path, fx->error, sizeof (fx->error));
    if (rc)
        fail_msg ("keygen: %s", fx->error);
}

static void
s_write (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (chmod (path, mode), 0);
}

static void
keygen_writes_public_and_private_secret_files (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    struct stat info;
    assert_int_equal (stat (fx->public_path, &info), 0);
    assert_true (S_ISREG (info.st_mode));
    assert_int_equal (stat (fx->secret_path, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0600);

    //  Both files hold the same public key; only one holds the secret
    zconfig_t *public_tree = zconfig_load (fx->public_path);
    zconfig_t *secret_tree = zconfig_load (fx->secret_path);
    assert_non_null (public_tree);
    assert_non_null (secret_tree);
    assert_string_equal (zconfig_get (public_tree, "curve/public-key", ""),
                         zconfig_get (secret_tree, "curve/public-key", ""));
    assert_null (zconfig_get (public_tree, "curve/secret-key", NULL));
    assert_int_equal (
      strlen (zconfig_get (secret_tree, "curve/secret-key", "")), 40);
    assert_string_equal (zconfig_get (public_tree, "metadata/name", ""),
                         "alice");
    zconfig_destroy (&public_tree);
    zconfig_destroy (&secret_tree);
}

static void
keygen_refuses_to_overwrite_either_file (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    zcert_t *before = cmq_curve_load_secret (fx->secret_path, NULL, 0);
    assert_non_null (before);
    assert_int_equal (
      cmq_curve_keygen (fx->public_path, fx->error, sizeof (fx->error)), -1);
    assert_non_null (strstr (fx->error, "exists"));
    zcert_t *after = cmq_curve_load_secret (fx->secret_path, NULL, 0);
    assert_non_null (after);
    assert_true (zcert_eq (before, after));
    zcert_destroy (&before);
    zcert_destroy (&after);

    //  A lone leftover secret file blocks keygen and survives it
    assert_int_equal (unlink (fx->public_path), 0);
    assert_int_equal (
      cmq_curve_keygen (fx->public_path, fx->error, sizeof (fx->error)), -1);
    assert_non_null (strstr (fx->error, "alice_secret exists"));
    assert_int_equal (access (fx->public_path, F_OK), -1);
    assert_int_equal (access (fx->secret_path, F_OK), 0);
}

//  Reads a whole small file, or "" if it cannot.
static void
s_read (const char *path, char *text, size_t size)
{
    text[0] = '\0';
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    size_t got = fread (text, 1, size - 1, file);
    text[got] = '\0';
    fclose (file);
}

static void
keygen_refuses_a_symlink_at_either_path_and_writes_nothing_through_it (
  void **state)
{
    fixture_t *fx = *state;
    char target[160], text[64];
    snprintf (target, sizeof (target), "%s/precious", fx->dir);
    s_write (target, "precious\n", 0644);
    for (int which = 0; which < 2; which++) {
        const char *link = which ? fx->secret_path : fx->public_path;
        const char *other = which ? fx->public_path : fx->secret_path;
        assert_int_equal (symlink (target, link), 0);
        assert_int_equal (
          cmq_curve_keygen (fx->public_path, fx->error, sizeof (fx->error)),
          -1);
        assert_non_null (strstr (fx->error, "exists; not overwriting"));
        assert_non_null (strstr (fx->error, link));
        s_read (target, text, sizeof (text));
        assert_string_equal (text, "precious\n");
        struct stat info;
        assert_int_equal (lstat (link, &info), 0);
        assert_true (S_ISLNK (info.st_mode));
        assert_int_equal (lstat (other, &info), -1);  //  nothing left
        assert_int_equal (unlink (link), 0);
    }
    //  A link to nowhere is refused too, and nothing appears where it points
    char nowhere[160];
    snprintf (nowhere, sizeof (nowhere), "%s/stolen", fx->dir);
    assert_int_equal (symlink (nowhere, fx->secret_path), 0);
    assert_int_equal (
      cmq_curve_keygen (fx->public_path, fx->error, sizeof (fx->error)), -1);
    assert_non_null (strstr (fx->error, "alice_secret exists"));
    assert_int_equal (access (nowhere, F_OK), -1);
    assert_int_equal (access (fx->public_path, F_OK), -1);
}

static void
keygen_secret_is_0600_whatever_the_umask_and_czmq_reads_both_files (
  void **state)
{
    fixture_t *fx = *state;
    mode_t old = umask (0);
    s_keygen (fx);
    umask (old);
    struct stat info;
    assert_int_equal (stat (fx->secret_path, &info), 0);
    assert_int_equal (info.st_mode & 07777, 0600);
    assert_int_equal (stat (fx->public_path, &info), 0);
    assert_int_equal (info.st_mode & 07777, 0644);
    //  CZMQ's own loader (zauth's certificate store uses it) reads them
    zcert_t *public_cert = zcert_load (fx->public_path);
    zcert_t *secret_cert = zcert_load (fx->secret_path);
    assert_non_null (public_cert);
    assert_non_null (secret_cert);
    assert_string_equal (zcert_public_txt (public_cert),
                         zcert_public_txt (secret_cert));
    assert_string_equal (zcert_meta (public_cert, "name"), "alice");
    assert_string_equal (zcert_meta (public_cert, "created-by"), "cartmq");
    zcert_destroy (&public_cert);
    zcert_destroy (&secret_cert);
}

static void
keygen_name_zconfig_cannot_quote_still_gives_loadable_certificates (
  void **state)
{
    fixture_t *fx = *state;
    char path[160], secret[170];
    snprintf (path, sizeof (path), "%s/we\"ird\nname", fx->dir);
    snprintf (secret, sizeof (secret), "%s_secret", path);
    assert_int_equal (cmq_curve_keygen (path, fx->error, sizeof (fx->error)),
                      0);
    zcert_t *cert =
      cmq_curve_load_secret (secret, fx->error, sizeof (fx->error));
    if (!cert)
        fail_msg ("load: %s", fx->error);
    assert_null (zcert_meta (cert, "name"));
    assert_string_equal (zcert_meta (cert, "created-by"), "cartmq");
    zcert_destroy (&cert);
}

static void
keygen_into_a_missing_directory_fails_with_reason (void **state)
{
    fixture_t *fx = *state;
    char path[160];
    snprintf (path, sizeof (path), "%s/no/such/dir/bob", fx->dir);
    assert_int_equal (cmq_curve_keygen (path, fx->error, sizeof (fx->error)),
                      -1);
    assert_non_null (strstr (fx->error, "No such file"));
}

static void
secret_file_loads_with_both_keys (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    zcert_t *cert =
      cmq_curve_load_secret (fx->secret_path, fx->error, sizeof (fx->error));
    if (!cert)
        fail_msg ("load_secret: %s", fx->error);
    const byte zero[32] = { 0 };
    assert_memory_not_equal (zcert_secret_key (cert), zero, 32);
    assert_string_equal (zcert_meta (cert, "created-by"), "cartmq");
    zcert_destroy (&cert);
}

static void
public_file_given_as_secret_says_which_file_to_give (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    assert_null (
      cmq_curve_load_secret (fx->public_path, fx->error, sizeof (fx->error)));
    char expected[512];
    snprintf (expected, sizeof (expected),
              "%s is a public certificate; give the %s_secret file",
              fx->public_path, fx->public_path);
    assert_string_equal (fx->error, expected);
}

static void
secret_file_readable_by_others_is_refused (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    assert_int_equal (chmod (fx->secret_path, 0644), 0);
    assert_null (
      cmq_curve_load_secret (fx->secret_path, fx->error, sizeof (fx->error)));
    assert_non_null (strstr (fx->error, "readable by group or others"));
    assert_int_equal (chmod (fx->secret_path, 0640), 0);
    assert_null (cmq_curve_load_secret (fx->secret_path, NULL, 0));
    assert_int_equal (chmod (fx->secret_path, 0400), 0);
    zcert_t *cert = cmq_curve_load_secret (fx->secret_path, NULL, 0);
    assert_non_null (cert);
    zcert_destroy (&cert);
}

static void
missing_file_fails_with_reason (void **state)
{
    fixture_t *fx = *state;
    assert_null (
      cmq_curve_load_secret (fx->secret_path, fx->error, sizeof (fx->error)));
    assert_non_null (strstr (fx->error, "No such file"));
    assert_null (
      cmq_curve_load_public (fx->public_path, fx->error, sizeof (fx->error)));
    assert_non_null (strstr (fx->error, "No such file"));
}

static void
public_load_takes_either_file_and_keeps_only_the_public_key (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    zcert_t *from_public =
      cmq_curve_load_public (fx->public_path, fx->error, sizeof (fx->error));
    zcert_t *from_secret =
      cmq_curve_load_public (fx->secret_path, fx->error, sizeof (fx->error));
    assert_non_null (from_public);
    assert_non_null (from_secret);
    assert_string_equal (zcert_public_txt (from_public),
                         zcert_public_txt (from_secret));
    const byte zero[32] = { 0 };
    assert_memory_equal (zcert_secret_key (from_secret), zero, 32);
    zcert_destroy (&from_public);
    zcert_destroy (&from_secret);
}

static void
files_that_are_not_certificates_are_refused (void **state)
{
    fixture_t *fx = *state;
    //  Bad ZPL must not reach zconfig, which would print on stdout
    const char *texts[] = {
        "just some text\n",
        "curve\n   public-key = \"x\"\n",
        "curve\n    public-key = \"short\"\n",
        ("curve\n    public-key = "
         "\"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n"),
        "",
    };
    for (size_t index = 0; index < 5; index++) {
        s_write (fx->public_path, texts[index], 0600);
        assert_null (cmq_curve_load_public (fx->public_path, fx->error,
                                            sizeof (fx->error)));
        assert_non_null (strstr (fx->error, "not a certificate"));
    }
    assert_null (
      cmq_curve_load_public (fx->dir, fx->error, sizeof (fx->error)));
    assert_non_null (strstr (fx->error, "not a regular file"));
}

static void
secret_file_with_keys_that_do_not_match_is_refused (void **state)
{
    fixture_t *fx = *state;
    zcert_t *one = zcert_new ();
    zcert_t *two = zcert_new ();
    char text[300];
    snprintf (text, sizeof (text),
              "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
              zcert_public_txt (one), zcert_secret_txt (two));
    s_write (fx->secret_path, text, 0600);
    assert_null (
      cmq_curve_load_secret (fx->secret_path, fx->error, sizeof (fx->error)));
    assert_non_null (strstr (fx->error, "do not belong together"));
    zcert_destroy (&one);
    zcert_destroy (&two);
}

static void
setup_client_makes_a_dealer_a_curve_client (void **state)
{
    fixture_t *fx = *state;
    s_keygen (fx);
    char server[128];
    snprintf (server, sizeof (server), "%s/server", fx->dir);
    assert_int_equal (cmq_curve_keygen (server, NULL, 0), 0);

    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    int rc = cmq_curve_setup_client (dealer, server, fx->secret_path, fx->error,
                                     sizeof (fx->error));
    if (rc)
        fail_msg ("setup_client: %s", fx->error);
    assert_int_equal (zsock_mechanism (dealer), ZMQ_CURVE);
    char *server_key = zsock_curve_serverkey (dealer);
    zcert_t *server_cert = cmq_curve_load_public (server, NULL, 0);
    assert_string_equal (server_key, zcert_public_txt (server_cert));
    zstr_free (&server_key);
    zcert_destroy (&server_cert);

    //  Swapped files: our "secret" is a public file
    assert_int_equal (cmq_curve_setup_client (dealer, server, fx->public_path,
                                              fx->error, sizeof (fx->error)),
                      -1);
    assert_non_null (strstr (fx->error, "is a public certificate"));
    zsock_destroy (&dealer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown (name, setup, teardown)
        T (keygen_writes_public_and_private_secret_files),
        T (keygen_refuses_to_overwrite_either_file),
        T (
          keygen_refuses_a_symlink_at_either_path_and_writes_nothing_through_it),
        T (keygen_secret_is_0600_whatever_the_umask_and_czmq_reads_both_files),
        T (keygen_name_zconfig_cannot_quote_still_gives_loadable_certificates),
        T (keygen_into_a_missing_directory_fails_with_reason),
        T (secret_file_loads_with_both_keys),
        T (public_file_given_as_secret_says_which_file_to_give),
        T (secret_file_readable_by_others_is_refused),
        T (missing_file_fails_with_reason),
        T (public_load_takes_either_file_and_keeps_only_the_public_key),
        T (files_that_are_not_certificates_are_refused),
        T (secret_file_with_keys_that_do_not_match_is_refused),
        T (setup_client_makes_a_dealer_a_curve_client),
#undef T
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return rc;
}
