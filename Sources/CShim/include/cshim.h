// cshim: the few Linux calls Swift's Glibc module does not export (epoll, pipe2, prctl, the
// wait-status macros), plus spawn, Unix-socket and signal helpers that are simpler and safer in C.
// Every function returns -1 and leaves errno set on failure unless its comment says otherwise.
#ifndef CSHIM_H
#define CSHIM_H
#include <stdint.h>
#include <sys/types.h>

// epoll(7)
int cshim_epoll_create(void);
int cshim_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int cshim_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int cshim_epoll_del(int epfd, int fd);
/// epoll_wait(2): fills data[i] and events[i]; returns the count.
int cshim_epoll_wait(int epfd, uint64_t *data, uint32_t *events, int max, int timeout_ms);
extern const uint32_t CSHIM_EPOLLIN, CSHIM_EPOLLOUT, CSHIM_EPOLLHUP, CSHIM_EPOLLERR;

// pipe2(2) with O_CLOEXEC, plus O_NONBLOCK on both ends when nonblock != 0.
int cshim_pipe(int fds[2], int nonblock);
int cshim_set_nonblock(int fd, int on);
int cshim_set_cloexec(int fd, int on);

// prctl(2)
int cshim_set_pdeathsig(int sig);
int cshim_set_child_subreaper(void);
int cshim_set_thread_name(const char *name);
/// setpriority(2) of the calling thread only (Linux: a thread is a PRIO_PROCESS id).
int cshim_set_thread_nice(int nice);

/// pidfd_open(2): a descriptor that becomes readable when pid exits (any process, not only a child).
int cshim_pidfd_open(pid_t pid);
/// execve(2): returns only on failure (-1, errno set).
int cshim_execve(const char *path, char *const argv[], char *const envp[]);

// wait(2) status macros
int cshim_wifexited(int status);
int cshim_wexitstatus(int status);
int cshim_wifsignaled(int status);
int cshim_wtermsig(int status);

/// posix_spawnp(3) of argv with envp in directory cwd (NULL: inherit), stdin/stdout/stderr from
/// fd0/fd1/fd2 and fd3 as descriptor 3 (-1: none). When new_pgroup != 0 the child leads a new
/// process group. The child's signal mask is empty and every signal has its default action.
/// Returns the pid, or -1 with *err set to the errno.
pid_t cshim_spawn(const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int fd0, int fd1, int fd2, int fd3, int new_pgroup, int *err);

/// The hook guard (`cortex hook-guard`): runs argv[0] (a path) with argv and envp as its child,
/// in the caller's process group, and returns the child's exit code (or ends by its signal). When
/// `parent` (the daemon) dies first, the caller's whole group is killed, the caller included.
int cshim_hook_guard(pid_t parent, char *const argv[], char *const envp[]);

// Unix domain stream sockets (SOCK_CLOEXEC).
int cshim_unix_listen(const char *path, int backlog);
int cshim_unix_connect(const char *path);
int cshim_accept(int fd);

// Unix domain datagram sockets (sd_notify(3) protocol). A name starting with '@' is in the
// abstract namespace (the '@' becomes a NUL byte), as systemd's $NOTIFY_SOCKET may be.
/// A socket bound to name (SOCK_CLOEXEC); for receiving.
int cshim_dgram_bind(const char *name);
/// Sends one datagram of len bytes to name from a fresh non-blocking socket; returns the bytes
/// sent, or -1 with EAGAIN when the receiver's queue is full (the message is dropped).
long cshim_dgram_send(const char *name, const void *buf, unsigned long len);

// Signals: a handler that writes the signal number as one byte to a pipe and nothing else.
int cshim_signal_pipe(int write_fd, int sig);
int cshim_signal_ignore(int sig);
int cshim_signal_default(int sig);
/// Blocks or unblocks sig in the calling thread.
int cshim_signal_block(int sig, int block);

// Clocks
int64_t cshim_realtime_ms(void);
int64_t cshim_monotonic_ns(void);

/// Raises RLIMIT_NOFILE's soft limit to at least want (bounded by the hard limit); returns the new soft limit.
long cshim_raise_nofile(long want);

/// The process's argc and argv as the C runtime passed them to the constructors (the Swift
/// runtime's own lookup scans /proc/self/maps, which a chroot may lack; cshim.c also answers
/// `CommandLine.arguments` from these, so that scan is not linked in at all).
int cshim_argc(void);
char **cshim_argv(void);
int cshim_is_static_executable(void);
void cshim_unset_swift_root(void);

/// Returns the errno of the calling thread.
int cshim_errno(void);

// stat(2)/fstat(2)/statvfs(3)/flock(2): their struct names collide with the functions in Swift.
/// What stat(2) says about a file, in fixed-width fields.
struct cshim_file_status {
  unsigned mode;        // st_mode: type and permission bits
  unsigned uid, gid;    // owner
  long long size;       // st_size in bytes
  long long blocks;     // st_blocks, in 512-byte units (what is allocated on disk)
};
/// stat(2) (follow != 0) or lstat(2) of path into *out; returns 0 or -1.
int cshim_stat(const char *path, int follow, struct cshim_file_status *out);
/// fstat(2) of fd into *out; returns 0 or -1.
int cshim_fstat(int fd, struct cshim_file_status *out);
long long cshim_fstat_size(int fd);
/// statvfs(3): bytes available to unprivileged users (f_bavail * f_frsize) and the file system's
/// size (f_blocks * f_frsize); returns 0 or -1.
int cshim_statvfs(const char *path, long long *available, long long *total);
/// posix_fallocate(3) of [offset, offset + len): returns 0, or -1 with errno set (posix_fallocate
/// itself returns the error number instead of setting errno).
int cshim_posix_fallocate(int fd, long long offset, long long len);
/// fallocate(2) with FALLOC_FL_KEEP_SIZE: allocates [offset, offset + len) without changing the
/// file's size, so later appends into that range need no new space.
int cshim_fallocate_keep_size(int fd, long long offset, long long len);
/// flock(LOCK_EX|LOCK_NB): 1 locked, 0 held by another process, -1 error.
int cshim_flock_try(int fd);

/* malloc_trim(3): return free heap pages to the kernel (after a burst the daemon goes idle). */
int cshim_malloc_trim(void);

// termios(3): a terminal's mode as opaque bytes (cshim_termios_size of them).
size_t cshim_termios_size(void);
int cshim_tty_get(int fd, void *saved);
int cshim_tty_set(int fd, const void *mode);
/// Input byte by byte (no ICANON), no echo, no signal keys (Ctrl-C arrives as byte 3).
int cshim_tty_raw_input(int fd);
/// 1 when ICANON, ECHO and ISIG are all off, 0 when not, -1 on error.
int cshim_tty_is_raw_input(int fd);
/// ioctl(2) TIOCGWINSZ: the terminal's rows and columns (0 when it does not say); -1 on error.
int cshim_tty_size(int fd, int *rows, int *columns);

/// posix_openpt(3) + grantpt + unlockpt + ptsname_r: the master's fd, the slave's path in name.
int cshim_openpt(char *name, size_t size);

/// poll(2) for input on up to 8 descriptors: the index of the first ready one, -2 on timeout.
int cshim_poll_readable(const int *fds, int n, int timeout_ms);

/// Whether this CPU has SSE4.2's crc32 instruction (cshim_crc32c needs it).
int cshim_crc32c_available(void);
/// CRC-32C (Castagnoli) of `count` bytes continuing from `seed` (0 to start; the CRC of what came
/// before to continue), with the crc32 instruction. Only where cshim_crc32c_available() says so.
uint32_t cshim_crc32c(uint32_t seed, const void *bytes, size_t count);

#endif
