#define _GNU_SOURCE
#include "cshim.h"
#include <sys/auxv.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const uint32_t CSHIM_EPOLLIN = EPOLLIN, CSHIM_EPOLLOUT = EPOLLOUT, CSHIM_EPOLLHUP = EPOLLHUP,
               CSHIM_EPOLLERR = EPOLLERR;

int cshim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.u64 = data;
  return epoll_ctl(epfd, op, fd, &ev);
}
int cshim_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) { return ctl(epfd, EPOLL_CTL_ADD, fd, events, data); }
int cshim_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data) { return ctl(epfd, EPOLL_CTL_MOD, fd, events, data); }
int cshim_epoll_del(int epfd, int fd) { return ctl(epfd, EPOLL_CTL_DEL, fd, 0, 0); }

int cshim_epoll_wait(int epfd, uint64_t *data, uint32_t *events, int max, int timeout_ms) {
  struct epoll_event evs[256];
  if (max > 256) max = 256;
  int n;
  do { n = epoll_wait(epfd, evs, max, timeout_ms); } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++) { data[i] = evs[i].data.u64; events[i] = evs[i].events; }
  return n;
}

int cshim_pipe(int fds[2], int nonblock) { return pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)); }

int cshim_set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}
int cshim_set_cloexec(int fd, int on) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFD, on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC));
}

int cshim_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }
int cshim_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int cshim_set_thread_name(const char *name) { return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0); }
#include <sys/resource.h>
#include <sys/syscall.h>
int cshim_set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice); }

#include <sys/syscall.h>
int cshim_pidfd_open(pid_t pid) {
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}
int cshim_execve(const char *path, char *const argv[], char *const envp[]) { return execve(path, argv, envp); }

int cshim_wifexited(int s) { return WIFEXITED(s); }
int cshim_wexitstatus(int s) { return WEXITSTATUS(s); }
int cshim_wifsignaled(int s) { return WIFSIGNALED(s); }
int cshim_wtermsig(int s) { return WTERMSIG(s); }

pid_t cshim_spawn(const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int fd0, int fd1, int fd2, int fd3, int new_pgroup, int *err) {
  // Move the sources above the targets first: a dup2 onto itself would keep FD_CLOEXEC set.
  int src[4] = {fd0, fd1, fd2, fd3}, moved[4] = {-1, -1, -1, -1};
  for (int i = 0; i < 4; i++) {
    if (src[i] < 0) continue;
    moved[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10);
    if (moved[i] < 0) { *err = errno; for (int j = 0; j < i; j++) if (moved[j] >= 0) close(moved[j]); return -1; }
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  for (int i = 0; i < 4; i++) if (moved[i] >= 0) posix_spawn_file_actions_adddup2(&fa, moved[i], i);
  if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_pgroup) { flags |= POSIX_SPAWN_SETPGROUP; posix_spawnattr_setpgroup(&at, 0); }
  posix_spawnattr_setflags(&at, flags);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, file, &fa, &at, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  for (int i = 0; i < 4; i++) if (moved[i] >= 0) close(moved[i]);
  if (rc != 0) { *err = rc; return -1; }
  *err = 0;
  return pid;
}

static int fill_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a->sun_path) { errno = ENAMETOOLONG; return -1; }
  strcpy(a->sun_path, path);
  return 0;
}

int cshim_unix_listen(const char *path, int backlog) {
  struct sockaddr_un a;
  if (fill_addr(&a, path) < 0) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  mode_t old = umask(0177);
  int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (rc < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
}

int cshim_unix_connect(const char *path) {
  struct sockaddr_un a;
  if (fill_addr(&a, path) < 0) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  do { rc = connect(fd, (struct sockaddr *)&a, sizeof a); } while (rc < 0 && errno == EINTR);
  if (rc < 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
}

int cshim_accept(int fd) {
  int c;
  do { c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); } while (c < 0 && errno == EINTR);
  return c;
}

/// Fills a for a datagram name: a path, or '@name' in the abstract namespace. Returns the
/// address length, or -1 (ENAMETOOLONG, EINVAL for an empty name).
static socklen_t fill_dgram_addr(struct sockaddr_un *a, const char *name) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n == 0 || (name[0] == '@' && n == 1)) { errno = EINVAL; return (socklen_t)-1; }
  if (n >= sizeof a->sun_path) { errno = ENAMETOOLONG; return (socklen_t)-1; }
  memcpy(a->sun_path, name, n);
  if (name[0] == '@') {
    a->sun_path[0] = 0;
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  }
  return (socklen_t)sizeof *a;
}

int cshim_dgram_bind(const char *name) {
  struct sockaddr_un a;
  socklen_t len = fill_dgram_addr(&a, name);
  if (len == (socklen_t)-1) return -1;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, len) < 0) { int e = errno; close(fd); errno = e; return -1; }
  return fd;
}

long cshim_dgram_send(const char *name, const void *buf, unsigned long len) {
  struct sockaddr_un a;
  socklen_t alen = fill_dgram_addr(&a, name);
  if (alen == (socklen_t)-1) return -1;
  // Non-blocking: a receiver whose queue is full (max_dgram_qlen) must never stall the caller's
  // loop; the message is dropped with EAGAIN instead.
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  ssize_t n;
  do { n = sendto(fd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&a, alen); } while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  errno = e;
  return (long)n;
}

static volatile sig_atomic_t signal_fd = -1;
static void on_signal(int sig) {
  int saved = errno;  // async-signal-safe: one write(2), errno preserved
  unsigned char b = (unsigned char)sig;
  if (signal_fd >= 0) { ssize_t r = write(signal_fd, &b, 1); (void)r; }
  errno = saved;
}
int cshim_signal_pipe(int write_fd, int sig) {
  signal_fd = write_fd;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}
int cshim_signal_ignore(int sig) { return signal(sig, SIG_IGN) == SIG_ERR ? -1 : 0; }
int cshim_signal_default(int sig) { return signal(sig, SIG_DFL) == SIG_ERR ? -1 : 0; }
int cshim_signal_block(int sig, int block) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  return pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
}

int64_t cshim_realtime_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
int64_t cshim_monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

long cshim_raise_nofile(long want) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) < 0) return -1;
  if ((long)r.rlim_cur >= want) return (long)r.rlim_cur;
  rlim_t target = (rlim_t)want;
  if (r.rlim_max != RLIM_INFINITY && target > r.rlim_max) target = r.rlim_max;
  r.rlim_cur = target;
  if (setrlimit(RLIMIT_NOFILE, &r) < 0) return -1;
  return (long)r.rlim_cur;
}

int cshim_errno(void) { return errno; }

#include <sys/file.h>
static void fill_status(const struct stat *st, struct cshim_file_status *out) {
  out->mode = st->st_mode;
  out->uid = st->st_uid;
  out->gid = st->st_gid;
  out->size = st->st_size;
  out->blocks = st->st_blocks;
}
int cshim_stat(const char *path, int follow, struct cshim_file_status *out) {
  struct stat st;
  if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) return -1;
  fill_status(&st, out);
  return 0;
}
int cshim_fstat(int fd, struct cshim_file_status *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -1;
  fill_status(&st, out);
  return 0;
}
#include <sys/statvfs.h>
int cshim_statvfs(const char *path, long long *available, long long *total) {
  struct statvfs s;
  if (statvfs(path, &s) < 0) return -1;
  *available = (long long)s.f_bavail * (long long)s.f_frsize;
  *total = (long long)s.f_blocks * (long long)s.f_frsize;
  return 0;
}
int cshim_posix_fallocate(int fd, long long offset, long long len) {
  int rc = posix_fallocate(fd, (off_t)offset, (off_t)len);
  if (rc != 0) { errno = rc; return -1; }
  return 0;
}
int cshim_fallocate_keep_size(int fd, long long offset, long long len) {
  return fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len);
}
long long cshim_fstat_size(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -1;
  return st.st_size;
}
int cshim_flock_try(int fd) {
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

int cshim_malloc_trim(void) { return malloc_trim(0); }

#include <termios.h>
size_t cshim_termios_size(void) { return sizeof(struct termios); }
int cshim_tty_get(int fd, void *saved) {
  int r;
  do { r = tcgetattr(fd, (struct termios *)saved); } while (r < 0 && errno == EINTR);
  return r;
}
int cshim_tty_set(int fd, const void *mode) {
  int r;
  do { r = tcsetattr(fd, TCSANOW, (const struct termios *)mode); } while (r < 0 && errno == EINTR);
  return r;
}
int cshim_tty_raw_input(int fd) {
  struct termios t;
  if (cshim_tty_get(fd, &t) < 0) return -1;
  t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  return cshim_tty_set(fd, &t);
}
int cshim_tty_is_raw_input(int fd) {
  struct termios t;
  if (cshim_tty_get(fd, &t) < 0) return -1;
  return (t.c_lflag & (ICANON | ECHO | ISIG)) == 0;
}
#include <sys/ioctl.h>
int cshim_tty_size(int fd, int *rows, int *columns) {
  struct winsize w;
  if (ioctl(fd, TIOCGWINSZ, &w) < 0) return -1;
  *rows = w.ws_row;
  *columns = w.ws_col;
  return 0;
}

#include <stdlib.h>
int cshim_openpt(char *name, size_t size) {
  int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (grantpt(fd) < 0 || unlockpt(fd) < 0 || ptsname_r(fd, name, size) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

#include <poll.h>
int cshim_poll_readable(const int *fds, int n, int timeout_ms) {
  struct pollfd p[8];
  if (n > 8) n = 8;
  for (int i = 0; i < n; i++) { p[i].fd = fds[i]; p[i].events = POLLIN; p[i].revents = 0; }
  int r;
  do { r = poll(p, (nfds_t)n, timeout_ms); } while (r < 0 && errno == EINTR);
  if (r <= 0) return r < 0 ? -1 : -2;
  for (int i = 0; i < n; i++) if (p[i].revents) return i;
  return -2;
}

static int saved_argc;
static char **saved_argv;
static int swift_root_set;
/* glibc calls ELF constructors with (argc, argv, envp). Priority 101: before the Swift runtime's
   own initializers, which run at the default priority. */
__attribute__((constructor(101))) static void cshim_save_arguments(int argc, char **argv, char **envp) {
  (void)envp;
  saved_argc = argc;
  saved_argv = argv;
  /* The Swift runtime linked into a static executable finds its own path (for its backtracer)
     through /proc/self/exe and aborts, "Unable to obtain Swift runtime path", where there is no
     /proc: a chroot, a minimal sandbox. SWIFT_ROOT spares it that lookup; it is set only then,
     and taken out again when main starts (cshim_unset_swift_root), so no child inherits it. */
  if (getauxval(AT_BASE) == 0 && getenv("SWIFT_ROOT") == NULL && access("/proc/self/exe", F_OK) != 0) {
    swift_root_set = setenv("SWIFT_ROOT", "/", 1) == 0;
  }
}
void cshim_unset_swift_root(void) {
  if (swift_root_set) unsetenv("SWIFT_ROOT");
  swift_root_set = 0;
}
int cshim_argc(void) { return saved_argc; }
// The dynamic loader's address: 0 when none mapped this program (linked -static-executable).
int cshim_is_static_executable(void) { return getauxval(AT_BASE) == 0; }
char **cshim_argv(void) { return saved_argv; }

/* Swift's `CommandLine.arguments` asks the runtime for argv through these two functions. The
   runtime's own definitions (CommandLine.cpp in libswiftCore) come with a static constructor that
   opens /proc/self/maps and sscanf-parses every line to find the stack, at the start of every
   process: about a tenth of a `cortex --version`'s CPU. Defined here, from the arguments glibc
   hands the constructors, the static link never pulls that object in. Same contract: an override
   set by `_swift_stdlib_overrideUnsafeArgvArgc` wins. */
static char **override_argv;
static int override_argc;
__attribute__((swiftcall)) char **_swift_stdlib_getUnsafeArgvArgc(int *out_count) {
  if (override_argv) {
    *out_count = override_argc;
    return override_argv;
  }
  static char *empty[] = {0};
  if (!saved_argv) {
    *out_count = 0;
    return empty;
  }
  *out_count = saved_argc;
  return saved_argv;
}
__attribute__((swiftcall)) void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
  override_argv = argv;
  override_argc = argc;
}

// The `on_finish` hook guard (`cortex hook-guard`): runs argv as its child in its own process
// group (the guard leads it) and dies with the group when the daemon that spawned it dies, so
// no hook outlives its daemon's kill -9 unbounded. PR_SET_PDEATHSIG delivers SIGTERM to the
// guard when that daemon (the thread that spawned it) exits; the guard then kills its whole
// group, itself included. SIGTERM and SIGCHLD are taken with sigwait(3), so no handler runs.
int cshim_hook_guard(pid_t parent, char *const argv[], char *const envp[]) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) return 127;
  // The daemon died before the line above: nobody would tell this guard.
  if (getppid() != parent) { kill(0, SIGKILL); return 137; }
  pid_t child = fork();
  if (child < 0) return 127;
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    signal(SIGPIPE, SIG_DFL);  // the CLI ignores it; an ignored signal stays ignored across exec
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
    _exit(127);
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGTERM) {
      kill(0, SIGKILL);
      continue;
    }
    int status = 0;
    pid_t r;
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
      if (r != child) continue;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      int s = WTERMSIG(status);
      // Ends as its child did, so the daemon logs the same outcome.
      signal(s, SIG_DFL);
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, s);
      sigprocmask(SIG_UNBLOCK, &one, NULL);
      raise(s);
      return 128 + s;
    }
  }
}
