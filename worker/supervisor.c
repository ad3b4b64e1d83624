//  supervisor.c - runs N worker processes and keeps them running

#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cartmq/log.h"
#include "supervisor.h"

#define S_POLL_MS 50

typedef struct {
    pid_t pid;              //  0 while not running
    int64_t started_ms;     //  when the running child started
    int64_t restart_at_ms;  //  when to start it again
    int backoff_ms;         //  the last restart delay, 0 for none
    int starts;             //  children started in this slot so far
} s_child_t;

typedef struct {
    char exe[PATH_MAX];  //  our own binary
    char **argv;         //  the children's argv
    s_child_t *children;
    int count;
    bool is_misconfigured;  //  a first child exited 2: restarting won't help
} s_supervisor_t;

char **
supervisor_child_argv (int argc, char **argv)
{
    char **child_argv = (char **) calloc ((size_t) argc + 3, sizeof (char *));
    if (!child_argv)
        return NULL;
    int size = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && streq (argv[i], "--processes")) {
            i++;  //  and its value
            continue;
        }
        if (i > 0 && strncmp (argv[i], "--processes=", 12) == 0)
            continue;
        child_argv[size++] = argv[i];
    }
    child_argv[size++] = (char *) "--processes";
    child_argv[size++] = (char *) "1";
    child_argv[size] = NULL;
    return child_argv;
}

bool
supervisor_gives_up (int status, int starts)
{
    return WIFEXITED (status) && WEXITSTATUS (status) == 2 && starts <= 1;
}

int
supervisor_next_backoff (int backoff_ms, int64_t ran_ms)
{
    if (backoff_ms <= 0 || ran_ms >= SUPERVISOR_STABLE_MS)
        return SUPERVISOR_BACKOFF_MIN_MS;
    int next = backoff_ms * 2;
    return next > SUPERVISOR_BACKOFF_MAX_MS ? SUPERVISOR_BACKOFF_MAX_MS : next;
}

//  Forks and execs one child; between fork and exec only async-signal-safe
//  calls, as the parent may hold CZMQ threads and locks.
static void
s_start (s_supervisor_t *self, int slot)
{
    s_child_t *child = &self->children[slot];
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        //  A supervisor killed with SIGKILL must not leave orphans serving.
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (1);
        //  SIGHUP stays blocked across exec (the mask is inherited), so
        //  one passed on before the child's main takes over waits for it.
        execv (self->exe, self->argv);
        _exit (127);
    }
    int64_t now = zclock_mono ();
    if (pid < 0) {
        child->backoff_ms = supervisor_next_backoff (child->backoff_ms, 0);
        child->restart_at_ms = now + child->backoff_ms;
        cmq_log_error ("fork failed slot=%d error=\"%s\" retry_ms=%d", slot,
                       strerror (errno), child->backoff_ms);
        return;
    }
    child->pid = pid;
    child->started_ms = now;
    child->starts++;
    cmq_log_info ("child %s slot=%d pid=%d",
                  child->backoff_ms ? "restarted" : "started", slot, (int) pid);
}

static int
s_slot_of (s_supervisor_t *self, pid_t pid)
{
    for (int slot = 0; slot < self->count; slot++)
        if (self->children[slot].pid == pid)
            return slot;
    return -1;
}

static void
s_describe_status (int status, char *buffer, size_t size)
{
    if (WIFEXITED (status))
        snprintf (buffer, size, "exit=%d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status))
        snprintf (buffer, size, "signal=%d", WTERMSIG (status));
    else
        snprintf (buffer, size, "status=%d", status);
}

//  Collects every child that died; with is_stopping false, schedules its
//  restart.
static void
s_reap (s_supervisor_t *self, bool is_stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid (-1, &status, WNOHANG)) > 0) {
        int slot = s_slot_of (self, pid);
        if (slot < 0)
            continue;
        s_child_t *child = &self->children[slot];
        int64_t now = zclock_mono ();
        int64_t ran_ms = now - child->started_ms;
        char how[32];
        s_describe_status (status, how, sizeof (how));
        child->pid = 0;
        if (is_stopping) {
            cmq_log_info ("child stopped slot=%d pid=%d %s", slot, (int) pid,
                          how);
            continue;
        }
        if (supervisor_gives_up (status, child->starts)) {
            //  Exit 2 from a first child is the worker refusing the
            //  settings we started with (a bad cert, a bad endpoint):
            //  every restart would fail the same way.
            cmq_log_error ("child refused its settings slot=%d pid=%d %s, "
                           "giving up",
                           slot, (int) pid, how);
            self->is_misconfigured = true;
            continue;
        }
        child->backoff_ms = supervisor_next_backoff (child->backoff_ms, ran_ms);
        child->restart_at_ms = now + child->backoff_ms;
        if (WIFEXITED (status) && WEXITSTATUS (status) == 2)
            //  Settings that worked before were changed (a config or a
            //  certificate mid-rotation): retry, the others keep serving.
            cmq_log_error ("child refused its settings slot=%d pid=%d %s "
                           "ran_ms=%" PRId64 " retry_in_ms=%d",
                           slot, (int) pid, how, ran_ms, child->backoff_ms);
        else
            cmq_log_warning ("child died slot=%d pid=%d %s ran_ms=%" PRId64
                             " restart_in_ms=%d",
                             slot, (int) pid, how, ran_ms, child->backoff_ms);
    }
}

static int
s_running (s_supervisor_t *self)
{
    int running = 0;
    for (int slot = 0; slot < self->count; slot++)
        if (self->children[slot].pid > 0)
            running++;
    return running;
}

static void
s_signal_all (s_supervisor_t *self, int signal_number)
{
    for (int slot = 0; slot < self->count; slot++)
        if (self->children[slot].pid > 0)
            kill (self->children[slot].pid, signal_number);
}

//  SIGTERM to all, a grace period, then SIGKILL to the stragglers.
static void
s_stop_all (s_supervisor_t *self)
{
    cmq_log_info ("stopping children=%d", s_running (self));
    s_signal_all (self, SIGTERM);
    int64_t deadline = zclock_mono () + SUPERVISOR_GRACE_MS;
    while (s_running (self) > 0 && zclock_mono () < deadline) {
        zclock_sleep (20);
        s_reap (self, true);
    }
    if (s_running (self) > 0) {
        cmq_log_warning ("killing children=%d after grace_ms=%d",
                         s_running (self), SUPERVISOR_GRACE_MS);
        s_signal_all (self, SIGKILL);
        for (int slot = 0; slot < self->count; slot++)
            if (self->children[slot].pid > 0) {
                waitpid (self->children[slot].pid, NULL, 0);
                self->children[slot].pid = 0;
            }
    }
}

int
supervisor_run (int argc, char **argv, int processes, bool (*is_hangup) (void))
{
    assert (argv && processes > 0);
    s_supervisor_t self;
    memset (&self, 0, sizeof (self));
    //  Resolved once, here: under valgrind the kernel's /proc/self/exe in
    //  the child would name valgrind, while readlink is told the truth.
    ssize_t size = readlink ("/proc/self/exe", self.exe, sizeof (self.exe) - 1);
    if (size <= 0) {
        cmq_log_error ("cannot find own binary error=\"%s\"", strerror (errno));
        return 2;
    }
    self.exe[size] = 0;
    self.argv = supervisor_child_argv (argc, argv);
    self.children =
      (s_child_t *) calloc ((size_t) processes, sizeof (s_child_t));
    if (!self.argv || !self.children) {
        free (self.argv);
        free (self.children);
        cmq_log_error ("out of memory");
        return 2;
    }
    self.count = processes;
    cmq_log_info ("supervisor started processes=%d pid=%d", processes,
                  (int) getpid ());
    while (!zsys_interrupted && !self.is_misconfigured) {
        int64_t now = zclock_mono ();
        for (int slot = 0;
             slot < self.count && !zsys_interrupted && !self.is_misconfigured;
             slot++)
            if (self.children[slot].pid == 0 &&
                now >= self.children[slot].restart_at_ms)
                s_start (&self, slot);
        zclock_sleep (S_POLL_MS);
        s_reap (&self, false);
        if (is_hangup && is_hangup ()) {
            cmq_log_info ("passing SIGHUP on to children=%d",
                          s_running (&self));
            s_signal_all (&self, SIGHUP);
        }
    }
    s_stop_all (&self);
    free (self.argv);
    free (self.children);
    cmq_log_info ("supervisor stopped");
    return self.is_misconfigured ? 2 : 0;
}
