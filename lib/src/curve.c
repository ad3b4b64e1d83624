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
#include <unistd.h>

#include "cartmq/curve.h"
#include "cartmq/zpl_check.h"

//  A certificate is a few hundred bytes; more is not a certificate
#define S_MAX_CERT_BYTES (64 * 1024)
#define S_KEY_TXT_LEN    40  //  Z85 text of a 32-byte key

static void s_fail (char *error, size_t error_size, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
s_fail (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

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
        s_fail (error, error_size, "no certificate file given");
        return NULL;
    }
    //  O_NONBLOCK: a FIFO given by mistake must not hang us in open()
    int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        s_fail (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat info;
    FILE *file = NULL;
    if (fstat (fd, &info) || !S_ISREG (info.st_mode) ||
        !(file = fdopen (fd, "r"))) {
        s_fail (error, error_size, "%s: not a regular file", path);
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
        s_fail (error, error_size, "%s: %s", path, strerror (read_errno));
    else if (size > S_MAX_CERT_BYTES || memchr (text, '\0', size) ||
             cmq_zpl_check (text, NULL, NULL, NULL) ||
             !(root = zconfig_str_load (text)))
        s_fail (error, error_size, "%s: not a certificate file", path);
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
        s_fail (error, error_size,
                "%s is a public certificate; give the %s_secret file", path,
                path);
    else if (!has_secret)
        s_fail (error, error_size, "%s: no valid curve/secret-key", path);
    else if (mode & 0044)
        s_fail (error, error_size,
                "%s: secret certificate is readable by group or others "
                "(mode %04o); chmod 600 it",
                path, (unsigned) mode);
    else if (!has_public)
        s_fail (error, error_size, "%s: no valid curve/public-key", path);
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
            s_fail (error, error_size,
                    "%s: public and secret keys do not belong together", path);
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
        s_fail (error, error_size,
                "%s: not a certificate (no valid curve/public-key)", path);
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
        s_fail (error, error_size, "this libzmq has no CURVE support");
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

//  Creates path empty with mode, failing if anything is there already, so
//  keys are never overwritten even by a file that appears meanwhile.
static int
s_create_new (const char *path, mode_t mode, char *error, size_t error_size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd == -1) {
        if (errno == EEXIST)
            s_fail (error, error_size,
                    "%s exists; not overwriting a certificate", path);
        else
            s_fail (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    close (fd);
    return 0;
}

int
cmq_curve_keygen (const char *name, char *error, size_t error_size)
{
    //  zconfig_save treats "-" as stdout
    if (!name || !*name || streq (name, "-")) {
        s_fail (error, error_size, "keygen needs a file name");
        return -1;
    }
    char *secret_name = zsys_sprintf ("%s_secret", name);
    assert (secret_name);
    int rc = -1;
    if (s_create_new (name, 0644, error, error_size) == 0) {
        if (s_create_new (secret_name, 0600, error, error_size) == 0) {
            zcert_t *cert = zcert_new ();
            const char *base = strrchr (name, '/');
            base = base ? base + 1 : name;
            //  zconfig writes values in double quotes without escaping
            if (!strchr (base, '"'))
                zcert_set_meta (cert, "name", "%s", base);
            zcert_set_meta (cert, "created-by", "cartmq");
            if (zcert_save_public (cert, name) ||
                zcert_save_secret (cert, secret_name))
                s_fail (error, error_size, "%s: cannot write: %s", name,
                        strerror (errno));
            //  zcert_save_secret narrows the umask only for new files
            else if (chmod (secret_name, 0600))
                s_fail (error, error_size, "%s: %s", secret_name,
                        strerror (errno));
            else
                rc = 0;
            zcert_destroy (&cert);
            if (rc)
                unlink (secret_name);
        }
        if (rc)
            unlink (name);
    }
    free (secret_name);
    return rc;
}
