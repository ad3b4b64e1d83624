//  broker_guard.c - the broker's socket monitor, and what to do when the
//  process runs out of file descriptors

#define _GNU_SOURCE
#include "broker_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker_ratelimit.h"
#include "cartmq/log.h"

//  Kinds of refused handshake, each rate-limited on its own
#define S_REFUSAL_KINDS 6

typedef struct {
    broker_guard_config_t config;
    zsock_t *pipe;
    zsock_t *monitor;
    int spare;       //  a descriptor held back for shedding, or -1
    rlim_t limit;    //  open files limit (soft)
    rlim_t reserve;  //  descriptors kept free below it
    bool is_paused;  //  SYNs dropped on every listener
    broker_ratelimit_t accept_limit;
    broker_ratelimit_t refusal_limits[S_REFUSAL_KINDS];  //  one per kind
    uint64_t shed;  //  connections closed at once since the last line
} s_guard_t;

//  A peer that closed its connection before the handshake was done. A
//  peer that does not use CURVE often does that rather than send its
//  mechanism: libzmq sends each side's greeting as the other's arrives,
//  and a plain-text libzmq peer that reads our CURVE greeting before we
//  read its NULL one closes at once and for good (a mechanism mismatch
//  is no reason to reconnect). All the monitor then says is how the
//  connection ended, the same as for a port probe.
static bool
s_is_peer_closed (uint16_t event, uint32_t value)
{
    return event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
           (value == EPIPE || value == ECONNRESET);
}

//  Which kind of refusal, 0..S_REFUSAL_KINDS-1, so that one kind repeating
//  (a peer with the wrong server key retries forever, a load balancer
//  probes the port) does not hide the others.
static size_t
s_refusal_kind (uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return 0;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return 1;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        return 2;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        return 3;
    if (s_is_peer_closed (event, value))
        return 4;
    return 5;
}

static void
s_log_refusal (uint16_t event, uint32_t value, const char *endpoint)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        cmq_log_warning ("refused connection endpoint=%s reason=\"key not "
                         "allowed\" zap_status=%u (the ZAP lines above give "
                         "its address and client_key)",
                         endpoint, (unsigned) value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        cmq_log_warning ("refused connection endpoint=%s reason=\"peer does "
                         "not use CURVE (plain text?)\"",
                         endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
             value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        cmq_log_warning ("refused connection endpoint=%s reason=\"CURVE "
                         "handshake failed (peer has the wrong server "
                         "key?)\"",
                         endpoint);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        cmq_log_warning ("refused connection endpoint=%s reason=\"handshake "
                         "protocol error 0x%08x\"",
                         endpoint, (unsigned) value);
    else if (s_is_peer_closed (event, value))
        //  Info, not a warning: port probes (health checks) are routine
        cmq_log_info ("handshake not completed endpoint=%s reason=\"peer "
                      "closed the connection (%s): a peer that does not "
                      "use CURVE, or a port probe\"",
                      endpoint, strerror ((int) value));
    else
        cmq_log_info ("handshake not completed endpoint=%s reason=\"%s\"",
                      endpoint, strerror ((int) value));
}

static int
s_open_spare (void)
{
    return open ("/dev/null", O_RDONLY | O_CLOEXEC);
}

//  Frees the spare descriptor, accepts and closes every connection waiting
//  on each listening socket, and takes the spare back. The last resort
//  when an accept failed anyway (libzmq's I/O thread may win the freed
//  descriptor: then that peer is simply accepted).
static void
s_shed (s_guard_t *self)
{
    if (self->spare >= 0)
        close (self->spare);
    self->spare = -1;
    for (size_t index = 0; index < self->config.listener_count; index++) {
        int fd;
        while ((fd = accept4 (self->config.listeners[index], NULL, NULL,
                              SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            close (fd);
            self->shed++;
        }
    }
    self->spare = s_open_spare ();
}

//  Stops new TCP connections before they are made: a socket filter that
//  drops every packet, on a listening socket, drops the SYNs (the kernel
//  runs it before the listener sees them), so nothing enters the backlog
//  and the peer's kernel retries the SYN later (1 s, 3 s, ...).
//  Connections already made are other sockets and go on as before.
static void
s_pause (s_guard_t *self, const char *why)
{
    if (self->is_paused)
        return;
    struct sock_filter drop[] = { BPF_STMT (BPF_RET | BPF_K, 0) };
    struct sock_fprog program = { 1, drop };
    for (size_t index = 0; index < self->config.listener_count; index++)
        setsockopt (self->config.listeners[index], SOL_SOCKET, SO_ATTACH_FILTER,
                    &program, sizeof (program));
    self->is_paused = true;
    cmq_log_error ("not accepting new connections: %s (open files limit "
                   "%llu, %llu kept free); accepting again once peers "
                   "leave; raise the limit (LimitNOFILE=) for more peers",
                   why, (unsigned long long) self->limit,
                   (unsigned long long) self->reserve);
}

static size_t
s_open_count (void)
{
    size_t count = 0;
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir)
        return 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        count += entry->d_name[0] != '.';
    closedir (dir);
    return count;
}

//  Each second while paused: accept again once twice the reserve is free.
static void
s_check_resume (s_guard_t *self)
{
    size_t open_count = s_open_count ();
    if (!self->is_paused || open_count + 2 * self->reserve > self->limit)
        return;
    int dummy = 0;
    for (size_t index = 0; index < self->config.listener_count; index++)
        setsockopt (self->config.listeners[index], SOL_SOCKET, SO_DETACH_FILTER,
                    &dummy, sizeof (dummy));
    self->is_paused = false;
    cmq_log_info ("accepting new connections again (%zu descriptors open, "
                  "limit %llu)",
                  open_count, (unsigned long long) self->limit);
}

//  libzmq accepted a connection on descriptor fd. Descriptors are handed
//  out lowest first, so every one below fd is in use: once fd reaches
//  the reserve, pause before an accept can fail.
static void
s_on_accepted (s_guard_t *self, uint32_t fd)
{
    if (!self->is_paused && (rlim_t) fd + self->reserve >= self->limit)
        s_pause (self, "near the open files limit");
}

static void
s_on_accept_failed (s_guard_t *self, uint32_t value, const char *endpoint)
{
    bool is_out_of_fds = value == EMFILE || value == ENFILE;
    if (is_out_of_fds) {
        s_pause (self, "out of file descriptors");
        s_shed (self);
    }
    uint64_t held;
    if (!broker_ratelimit_allow (&self->accept_limit, zclock_usecs (), &held))
        return;
    if (is_out_of_fds) {
        cmq_log_error ("cannot accept connections endpoint=%s: %s (open "
                       "files limit %llu): closed %" PRIu64
                       " waiting connections at once (%" PRIu64
                       " similar lines held back)",
                       endpoint, strerror ((int) value),
                       (unsigned long long) self->limit, self->shed, held);
        self->shed = 0;
    } else
        cmq_log_warning ("cannot accept a connection endpoint=%s: %s (%" PRIu64
                         " similar lines held back)",
                         endpoint, strerror ((int) value), held);
}

//  A monitor event is [uint16 event, uint32 value][endpoint], in host
//  byte order (zmq_socket_monitor(3)).
static void
s_on_event (s_guard_t *self)
{
    zmsg_t *msg = zmsg_recv (self->monitor);
    if (!msg)
        return;
    zframe_t *header = zmsg_first (msg);
    zframe_t *address = zmsg_next (msg);
    if (header && zframe_size (header) == 6 && address) {
        uint16_t event;
        uint32_t value;
        memcpy (&event, zframe_data (header), sizeof (event));
        memcpy (&value, zframe_data (header) + 2, sizeof (value));
        char endpoint[CMQ_LOG_ESCAPED_BYTES (256)];
        cmq_log_escape (zframe_data (address), zframe_size (address), endpoint,
                        sizeof (endpoint));
        uint64_t held;
        if (event == ZMQ_EVENT_ACCEPTED)
            s_on_accepted (self, value);
        else if (event == ZMQ_EVENT_ACCEPT_FAILED)
            s_on_accept_failed (self, value, endpoint);
        else if (broker_ratelimit_allow (
                   &self->refusal_limits[s_refusal_kind (event, value)],
                   zclock_usecs (), &held)) {
            s_log_refusal (event, value, endpoint);
            if (held)
                cmq_log_info ("%" PRIu64 " earlier handshake lines held back "
                              "(at most %d a second)",
                              held, BROKER_RATELIMIT_LINES);
        }
    }
    zmsg_destroy (&msg);
}

void
broker_guard_actor (zsock_t *pipe, void *args)
{
    s_guard_t self;
    memset (&self, 0, sizeof (self));
    self.config = *(broker_guard_config_t *) args;
    self.pipe = pipe;
    self.spare = s_open_spare ();
    self.monitor = zsock_new (ZMQ_PAIR);
    if (!self.monitor ||
        zsock_connect (self.monitor, "%s", self.config.monitor)) {
        cmq_log_error ("cannot connect the socket monitor: %s",
                       zmq_strerror (zmq_errno ()));
        zsock_destroy (&self.monitor);
        if (self.spare >= 0)
            close (self.spare);
        zsock_signal (pipe, 1);
        return;
    }
    //  libzmq leaves its listening sockets blocking (it accepts only when
    //  its poller says so); ours must never wait in accept.
    for (size_t index = 0; index < self.config.listener_count; index++) {
        int fd = self.config.listeners[index];
        fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
    }
    struct rlimit limit;
    getrlimit (RLIMIT_NOFILE, &limit);
    self.limit = limit.rlim_cur;
    self.reserve = BROKER_GUARD_RESERVE < self.limit / 4 ? BROKER_GUARD_RESERVE
                                                         : self.limit / 4;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, self.monitor, NULL);
    //  Only $TERM ends this thread, not SIGTERM: libzmq's I/O thread blocks
    //  sending a monitor event to a PAIR whose reader is gone, holding the
    //  socket's monitor lock, and the shell's shutdown then waits on it.
    zpoller_set_nonstop (poller, true);
    while (true) {
        zsock_t *which =
          (zsock_t *) zpoller_wait (poller, self.is_paused ? 1000 : -1);
        if (self.is_paused)
            s_check_resume (&self);
        if (!which && (zpoller_expired (poller) || errno == EINTR))
            continue;
        if (which == self.monitor)
            s_on_event (&self);
        else if (which == pipe) {
            //  Anything on the pipe is $TERM
            zmsg_t *msg = zmsg_recv (pipe);
            zmsg_destroy (&msg);
            break;
        } else
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self.monitor);
    if (self.spare >= 0)
        close (self.spare);
}

//  Port of tcp://HOST:PORT, ws://HOST:PORT/PATH; 0 if none
static int
s_port_of (const char *address)
{
    size_t hostport = strcspn (address, "/");
    const char *colon = NULL;
    for (const char *scan = address; scan < address + hostport; scan++)
        if (*scan == ':')
            colon = scan;
    return colon ? atoi (colon + 1) : 0;
}

static bool
s_is_known (int fd, const int *known, size_t count)
{
    for (size_t index = 0; index < count; index++)
        if (known[index] == fd)
            return true;
    return false;
}

int
broker_guard_find_listener (const char *endpoint, const int *known,
                            size_t count)
{
    const char *address = strstr (endpoint, "://");
    if (!address)
        return -1;
    address += 3;
    bool is_ipc = strncmp (endpoint, "ipc://", 6) == 0;
    int port = is_ipc ? 0 : s_port_of (address);
    int family = *address == '[' ? AF_INET6 : AF_INET;
    if (!is_ipc && port <= 0)
        return -1;
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir)
        return -1;
    int found = -1;
    struct dirent *entry;
    while (found < 0 && (entry = readdir (dir))) {
        int fd = atoi (entry->d_name);
        if (entry->d_name[0] == '.' || fd == dirfd (dir) ||
            s_is_known (fd, known, count))
            continue;
        int accepting = 0;
        socklen_t size = sizeof (accepting);
        if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) ||
            !accepting)
            continue;
        struct sockaddr_storage name;
        size = sizeof (name);
        if (getsockname (fd, (struct sockaddr *) &name, &size))
            continue;
        if (is_ipc && name.ss_family == AF_UNIX)
            found = streq (((struct sockaddr_un *) &name)->sun_path, address)
                      ? fd
                      : -1;
        else if (!is_ipc && name.ss_family == family && family == AF_INET)
            found = ntohs (((struct sockaddr_in *) &name)->sin_port) == port
                      ? fd
                      : -1;
        else if (!is_ipc && name.ss_family == family)
            found = ntohs (((struct sockaddr_in6 *) &name)->sin6_port) == port
                      ? fd
                      : -1;
    }
    closedir (dir);
    return found;
}
