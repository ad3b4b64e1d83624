//  curve.c - CurveZMQ certificates for clients, workers and the broker
//
//  We read certificate files ourselves instead of with zcert_load: that
//  first tries "PATH_secret", so given a public file it may quietly load
//  the secret one beside it, and given a secret file it cannot say whether
//  the user meant a public one. Reading "curve/public-key" and
//  "curve/secret-key" from the ZPL tree tells the two apart.

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cartmq/curve.h"
#include "cartmq/zpl_check.h"
#include "error.h"

//  A certificate is a few hundred bytes; more is not a certificate
#define S_MAX_CERT_BYTES (64 * 1024)
#define S_KEY_TXT_LEN    40  //  Z85 text of a 32-byte key

//  Decodes a Z85 key of exactly 40 characters into 32 bytes
static bool
s_decode_key (const char *text, byte *key)
{
    return text && strlen (text) == S_KEY_TXT_LEN &&
           zmq_z85_decode (key, text) != NULL;
}

//  Opens and parses a certificate file; *mode gets its permission bits
static zconfig_t *
s_load_tree (const char *path, mode_t *mode, char *error, size_t error_size)
{
    if (!path || !*path) {
        cmq_error_set (error, error_size, "no certificate file given");
        return NULL;
    }
    //  O_NONBLOCK: a FIFO given by mistake must not hang us in open()
    int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        cmq_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat info;
    FILE *file = NULL;
    if (fstat (fd, &info) || !S_ISREG (info.st_mode) ||
        !(file = fdopen (fd, "r"))) {
        cmq_error_set (error, error_size, "%s: not a regular file", path);
        close (fd);
        return NULL;
    }
    *mode = info.st_mode & 07777;
    char *text = (char *) zmalloc (S_MAX_CERT_BYTES + 1);
    size_t size = fread (text, 1, S_MAX_CERT_BYTES + 1, file);
    int read_errno = ferror (file) ? errno : 0;
    fclose (file);

    //  zconfig prints syntax errors on stdout, so a stray file given as a
    //  certificate is turned away by cmq_zpl_check before it gets there.
    zconfig_t *root = NULL;
    if (read_errno)
        cmq_error_set (error, error_size, "%s: %s", path,
                       strerror (read_errno));
    else if (size > S_MAX_CERT_BYTES || memchr (text, '\0', size) ||
             cmq_zpl_check (text, NULL, NULL, NULL) ||
             !(root = zconfig_str_load (text)))
        cmq_error_set (error, error_size, "%s: not a certificate file", path);
    free (text);
    return root;
}

//  Copies the "metadata" section, so logs can name a peer's certificate
static void
s_copy_metadata (zconfig_t *root, zcert_t *cert)
{
    zconfig_t *metadata = zconfig_locate (root, "metadata");
    for (zconfig_t *item = metadata ? zconfig_child (metadata) : NULL; item;
         item = zconfig_next (item))
        if (zconfig_value (item))
            zcert_set_meta (cert, zconfig_name (item), "%s",
                            zconfig_value (item));
}

zcert_t *
cmq_curve_load_secret (const char *path, char *error, size_t error_size)
{
    mode_t mode;
    zconfig_t *root = s_load_tree (path, &mode, error, error_size);
    if (!root)
        return NULL;
    byte public_key[32];
    byte secret_key[32];
    bool has_public =
      s_decode_key (zconfig_get (root, "curve/public-key", NULL), public_key);
    bool has_secret =
      s_decode_key (zconfig_get (root, "curve/secret-key", NULL), secret_key);
    zcert_t *cert = NULL;
    if (!has_secret && has_public)
        cmq_error_set (error, error_size,
                       "%s is a public certificate; give the %s_secret file",
                       path, path);
    else if (!has_secret)
        cmq_error_set (error, error_size, "%s: no valid curve/secret-key",
                       path);
    else if (mode & 0044)
        cmq_error_set (error, error_size,
                       "%s: secret certificate is readable by group or others "
                       "(mode %04o); chmod 600 it",
                       path, (unsigned) mode);
    else if (!has_public)
        cmq_error_set (error, error_size, "%s: no valid curve/public-key",
                       path);
    else {
        //  A hand-edited file could pair keys that do not belong together;
        //  the handshake would then fail with no useful message.
        byte derived[32];
        char public_txt[S_KEY_TXT_LEN + 1];
        char secret_txt[S_KEY_TXT_LEN + 1];
        zmq_z85_encode (public_txt, public_key, 32);
        zmq_z85_encode (secret_txt, secret_key, 32);
        char derived_txt[S_KEY_TXT_LEN + 1];
        if (zmq_curve_public (derived_txt, secret_txt) == 0 &&
            zmq_z85_decode (derived, derived_txt) &&
            memcmp (derived, public_key, 32) != 0)
            cmq_error_set (error, error_size,
                           "%s: public and secret keys do not belong together",
                           path);
        else {
            cert = zcert_new_from (public_key, secret_key);
            s_copy_metadata (root, cert);
        }
    }
    zconfig_destroy (&root);
    return cert;
}

zcert_t *
cmq_curve_load_public (const char *path, char *error, size_t error_size)
{
    mode_t mode;
    zconfig_t *root = s_load_tree (path, &mode, error, error_size);
    if (!root)
        return NULL;
    byte public_key[32];
    byte no_secret[32] = { 0 };
    zcert_t *cert = NULL;
    if (!s_decode_key (zconfig_get (root, "curve/public-key", NULL),
                       public_key))
        cmq_error_set (error, error_size,
                       "%s: not a certificate (no valid curve/public-key)",
                       path);
    else {
        //  Even from a secret file, we keep only the public half
        cert = zcert_new_from (public_key, no_secret);
        s_copy_metadata (root, cert);
    }
    zconfig_destroy (&root);
    return cert;
}

int
cmq_curve_setup_client (zsock_t *sock, const char *server_public,
                        const char *our_secret, char *error, size_t error_size)
{
    assert (sock);
    //  zsock's curve setters assert when libzmq lacks CURVE
    if (!zsys_has_curve ()) {
        cmq_error_set (error, error_size, "this libzmq has no CURVE support");
        return -1;
    }
    zcert_t *ours = cmq_curve_load_secret (our_secret, error, error_size);
    if (!ours)
        return -1;
    zcert_t *server = cmq_curve_load_public (server_public, error, error_size);
    if (!server) {
        zcert_destroy (&ours);
        return -1;
    }
    zcert_apply (ours, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (server));
    zcert_destroy (&server);
    zcert_destroy (&ours);
    return 0;
}

//  Creates path with mode and returns its descriptor, failing if anything
//  is there already (a file, or a symlink even to nowhere: O_EXCL does not
//  follow it). Everything keygen writes goes through this descriptor, so
//  no file or link that appears at the path meanwhile can take the keys.
static int
s_create_new (const char *path, mode_t mode, char *error, size_t error_size)
{
    int fd =
      open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd == -1) {
        if (errno == EEXIST)
            cmq_error_set (error, error_size,
                           "%s exists; not overwriting a certificate", path);
        else
            cmq_error_set (error, error_size, "%s: %s", path, strerror (errno));
    }
    return fd;
}

//  Removes a file keygen created and could not finish, only if the path
//  still names the file behind fd: never someone else's.
static void
s_remove_ours (const char *path, int fd)
{
    struct stat ours, there;
    if (fstat (fd, &ours) == 0 && lstat (path, &there) == 0 &&
        ours.st_dev == there.st_dev && ours.st_ino == there.st_ino)
        unlink (path);
}

//  The text of a certificate, laid out as zcert_save_public and
//  zcert_save_secret lay it out (a zconfig tree), so CZMQ's zcert_load and
//  zcertstore read it; the secret form adds curve/secret-key.
static char *
s_cert_text (zcert_t *cert, const char *base, bool is_secret)
{
    zconfig_t *root = zconfig_new ("root", NULL);
    zconfig_t *metadata = zconfig_new ("metadata", root);
    //  zconfig writes values in double quotes without escaping: a name it
    //  cannot write back readably is left out, the keys matter
    bool is_plain = true;
    for (const char *next = base; *next; next++)
        if (*next == '"' || (unsigned char) *next < 0x20 || *next == 0x7f)
            is_plain = false;
    if (is_plain)
        zconfig_set_value (zconfig_new ("name", metadata), "%s", base);
    zconfig_set_value (zconfig_new ("created-by", metadata), "cartmq");
    char timestamp[64];
    time_t now = time (NULL);
    struct tm local;
    strftime (timestamp, sizeof (timestamp), "%Y-%m-%dT%H:%M:%S",
              localtime_r (&now, &local));
    zconfig_set_comment (root, "   ****  Generated on %s by cartmq  ****",
                         timestamp);
    if (is_secret) {
        zconfig_set_comment (root, "   ZeroMQ CURVE **Secret** Certificate");
        zconfig_set_comment (root, "   DO NOT PROVIDE THIS FILE TO OTHER "
                                   "USERS nor change its permissions.");
    } else {
        zconfig_set_comment (root, "   ZeroMQ CURVE Public Certificate");
        zconfig_set_comment (root, "   Exchange securely, or use a secure "
                                   "mechanism to verify the contents");
        zconfig_set_comment (root, "   of this file after exchange.");
    }
    zconfig_put (root, "/curve/public-key", zcert_public_txt (cert));
    if (is_secret)
        zconfig_put (root, "/curve/secret-key", zcert_secret_txt (cert));
    char *text = zconfig_str_save (root);
    zconfig_destroy (&root);
    return text;
}

//  Writes all of text to fd and flushes it to disk. Returns 0, or -1
//  with errno.
static int
s_write_all (int fd, const char *text)
{
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t size = strlen (text);
    size_t done = 0;
    while (done < size) {
        ssize_t written = write (fd, text + done, size - done);
        if (written > 0)
            done += (size_t) written;
        else if (written < 0 && errno != EINTR)
            return -1;
    }
    return fsync (fd);
}

int
cmq_curve_keygen (const char *name, char *error, size_t error_size)
{
    //  "-" reads as stdout to many tools; refuse it as a file name
    if (!name || !*name || streq (name, "-")) {
        cmq_error_set (error, error_size, "keygen needs a file name");
        return -1;
    }
    char *secret_name = zsys_sprintf ("%s_secret", name);
    assert (secret_name);
    int rc = -1;
    int public_fd = s_create_new (name, 0644, error, error_size);
    int secret_fd =
      public_fd < 0 ? -1 : s_create_new (secret_name, 0600, error, error_size);
    if (secret_fd >= 0) {
        zcert_t *cert = zcert_new ();
        const char *base = strrchr (name, '/');
        base = base ? base + 1 : name;
        char *public_text = s_cert_text (cert, base, false);
        char *secret_text = s_cert_text (cert, base, true);
        zcert_destroy (&cert);
        //  Created 0600 less the umask: never wider, but say it exactly.
        if (fchmod (secret_fd, 0600) != 0)
            cmq_error_set (error, error_size, "%s: %s", secret_name,
                           strerror (errno));
        else if (s_write_all (public_fd, public_text) != 0)
            cmq_error_set (error, error_size, "%s: cannot write: %s", name,
                           strerror (errno));
        else if (s_write_all (secret_fd, secret_text) != 0)
            cmq_error_set (error, error_size, "%s: cannot write: %s",
                           secret_name, strerror (errno));
        else
            rc = 0;
        //  The secret key must not linger in freed memory.
        if (secret_text)
            explicit_bzero (secret_text, strlen (secret_text));
        zstr_free (&public_text);
        zstr_free (&secret_text);
    }
    //  A half-made pair is removed: only files this call created.
    if (secret_fd >= 0) {
        if (rc != 0)
            s_remove_ours (secret_name, secret_fd);
        close (secret_fd);
    }
    if (public_fd >= 0) {
        if (rc != 0)
            s_remove_ours (name, public_fd);
        close (public_fd);
    }
    free (secret_name);
    return rc;
}
